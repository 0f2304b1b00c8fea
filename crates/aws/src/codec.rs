//! TODO(codec): being written.
