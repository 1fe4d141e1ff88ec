//! The web console in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, started here on a free 127.0.0.1 port) against a real
//! orgsync server started in process by the e2e harness, with a real
//! provisioner daemon speaking the HTTP protocol (echo executor).
//!
//! Run once, on SQLite, by `scripts/test`:
//! `ORGSYNC_TEST_DB=sqlite cargo test -p orgsync --features browser-tests --test console`.
//! A missing `chromium` or `chromedriver` fails the tests (Debian packages
//! `chromium` and `chromium-driver`, installed by `scripts/install-deps`).
//! Screenshots are written to `target/console-screenshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod admin;
mod browser;
#[path = "../e2e/harness.rs"]
#[allow(
    dead_code,
    reason = "the e2e harness; the browser tests use part of it"
)]
mod harness;
mod idpsync;
mod ldap;
#[path = "../support/slapd.rs"]
mod slapd;
#[path = "../support/testkit.rs"]
mod testkit;
mod walkthrough;
mod xsite;

/// The e2e harness reports to the e2e suite's scan of logs for secrets
/// (`tests/e2e/logscan.rs`); the browser tests run the same server code
/// paths through pages and leave that scan to the e2e suite.
mod logscan {
    #[derive(Debug, Clone, Copy)]
    pub enum Kind {
        BearerToken,
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Mark;

    pub fn install() {}
    pub fn check() {}
    pub fn mark() -> Mark {
        Mark
    }
    pub fn register(_kind: Kind, _value: &str) {}
    pub fn register_json(_path: &str, _body: &serde_json::Value, _since: Mark) {}
    pub fn register_config(_config: &orgsync::config::ServerConfig) {}
}
