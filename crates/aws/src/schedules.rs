//! TODO(schedules): being written.
