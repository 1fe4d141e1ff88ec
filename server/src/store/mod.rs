//! SQL, per table. Functions that read take a connection (inside an
//! operation, the connection of its transaction: `Work::conn`); functions
//! that write take a [`Write`] handle, which exists only under a `Permit`
//! (`Work::write`): no code reaches a write without an Allow decision or a
//! system actor's named authority. The use cases call them; HTTP handlers
//! never do. Both are checked by `layering.rs`.
//!
//! A statement is one call: its SQL and a tuple of arguments
//! ([`query::execute`], [`query::optional`], ...), rows read into
//! `#[derive(sqlx::FromRow)]` types.

pub mod audit;
pub mod bulk;
pub mod directory;
pub mod directory_runs;
pub mod groups;
pub mod jobs;
pub mod links;
pub mod login_throttle;
pub mod members;
pub mod oidc_states;
pub mod orgs;
pub mod principals;
pub mod problems;
pub mod provisioners;
mod query;
pub mod roles;
pub mod settings;
pub mod templates;
pub mod tokens;
pub mod users;
pub mod workspaces;

pub use sqlx::AnyConnection as Conn;

pub use crate::authz::Write;
pub(crate) use query::{Flag, Text};

pub(crate) fn to_json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
