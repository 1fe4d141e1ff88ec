//! Integration tests of the IdP sync planner (one test binary).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod claims;
mod common;
mod ldap;
mod model;
mod preview;
mod semantics;
mod settings;
#[path = "../../../tests/support/testkit.rs"]
mod testkit;
