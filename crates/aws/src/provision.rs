//! TODO(provision): being written.
