//! The rez-aws integration tests against the shared moto server, one module per concern.
//!
//! They are one test binary on purpose: each binary links the AWS SDK (about 130 MB in a
//! debug build), so six binaries cost six links and most of a gigabyte of disk in CI.

mod agent;
mod approvals;
mod bedrock;
mod common;
mod pipeline;
mod port_suite;
mod provision;
mod scheduler;
mod secrets;
mod shards;
mod stores;
