//! TODO(sweeper): being written.
