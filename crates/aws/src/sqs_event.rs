//! TODO(sqs_event): being written.
