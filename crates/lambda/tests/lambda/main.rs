//! The rez-lambda end-to-end tests: the real binary as each function against a fake Lambda
//! Runtime API and moto, one module per flow.
//!
//! They are one test binary on purpose: each binary links the AWS SDK (about 130 MB in a
//! debug build), so one link instead of three saves CI time and disk.

mod aws_agent;
mod aws_approvals;
mod aws_dashboard;
mod aws_flow;
mod aws_iam;
mod aws_schedules;
mod common;
mod container;
mod iam;
