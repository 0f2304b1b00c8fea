//! TODO(scheduler): being written.
