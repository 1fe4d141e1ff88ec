//! Integration tests of the policy crate (one test binary).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod custom_roles;
mod differential;
mod engine;
mod policy_files;
