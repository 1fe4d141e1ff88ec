//! orgsync server: configuration, storage, the HTTP API, authorization glue and
//! the CLI. The only crate of the workspace that knows HTTP, SQL and config.

pub mod api;
pub mod app;
pub mod audit;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod idpsync;
pub mod jobs;
pub mod ldapsync;
pub mod metrics;
pub mod model;
pub mod oidc;
pub mod provisioner;
pub mod secrets;
pub mod store;
pub mod throttle;
pub mod usecase;

#[cfg(test)]
mod layering;
