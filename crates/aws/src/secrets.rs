//! TODO(secrets): being written.
