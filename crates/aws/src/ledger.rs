//! TODO(ledger): being written.
