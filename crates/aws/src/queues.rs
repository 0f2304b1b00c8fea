//! TODO(queues): being written.
