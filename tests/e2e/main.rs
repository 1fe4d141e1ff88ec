//! End-to-end tests: real servers (orgsync itself on SQLite or PostgreSQL, the
//! CLI binary), driven over HTTP like a user would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod api_basics;
mod audit;
mod authz_api;
mod bad_input;
mod cli;
mod cli_admin;
mod cli_workspaces;
mod console;
mod console_deployment;
mod console_orgs;
mod crash;
mod grants;
mod harness;
mod idpsync;
mod isolation;
mod ldapsync;
mod logscan;
mod metrics;
mod oidc;
mod openapi;
mod operability;
mod policies;
mod policy_impact;
mod process;
mod provisioning;
mod queue;
mod readme;
mod replicas;
mod sec_input;
mod sec_web;
#[path = "../support/slapd.rs"]
mod slapd;
mod startup;
#[path = "../support/testkit.rs"]
mod testkit;
mod trial;
mod walkthrough;
