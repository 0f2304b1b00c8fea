//! TODO(inbox): being written.
