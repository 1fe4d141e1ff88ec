//! `orgsync users create|list|suspend|activate|delete`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::client::{self, ApiClient, str_of};
use super::output::{self, OutputArgs, Table, cell, items};

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; it joins the default organization.
    Create(CreateArgs),
    /// List all users.
    List,
    /// Suspend a user: every action is denied until it is activated again.
    Suspend {
        /// The user (username or id).
        user: String,
    },
    /// Activate a suspended (or dormant) user.
    Activate {
        /// The user (username or id).
        user: String,
    },
    /// Delete a user; refused while it owns workspaces.
    Delete {
        /// The user (username or id).
        user: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoginType {
    /// Logs in with email and password.
    Password,
    /// Cannot log in with a password (API tokens only).
    None,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The username: a lowercase slug, unique.
    #[arg(long)]
    pub username: String,
    /// The email address, unique.
    #[arg(long)]
    pub email: String,
    /// Password (8-256 characters); implies `--login-type password`.
    #[arg(long)]
    pub password: Option<String>,
    /// Login type [default: `password` with --password, else `none`].
    #[arg(long, value_enum)]
    pub login_type: Option<LoginType>,
}

pub fn run(args: UsersArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        UsersCommand::Create(c) => create(&api, args.out, c).await,
        UsersCommand::List => list(&api, args.out).await,
        UsersCommand::Suspend { user } => status(&api, args.out, &user, "suspend").await,
        UsersCommand::Activate { user } => status(&api, args.out, &user, "activate").await,
        UsersCommand::Delete { user } => delete(&api, args.out, &user).await,
    })
}

async fn delete(api: &ApiClient, out: OutputArgs, user: &str) -> Result<()> {
    let body = api
        .delete(&["users", user])
        .await
        .with_context(|| format!("cannot delete user `{user}`"))?;
    out.show(&body, || output::line(format!("deleted user `{user}`")))
}

async fn create(api: &ApiClient, out: OutputArgs, args: CreateArgs) -> Result<()> {
    let login_type = args.login_type.map(|t| match t {
        LoginType::Password => json!("password"),
        LoginType::None => json!("none"),
    });
    let body = client::fields([
        ("username", Some(json!(args.username))),
        ("email", Some(json!(args.email))),
        ("password", args.password.map(Value::from)),
        ("login_type", login_type),
    ]);
    let user = api
        .post(&["users"], Some(&body))
        .await
        .with_context(|| format!("cannot create user `{}`", args.username))?;
    out.show(&user, || {
        output::line(format!(
            "created user `{}` (login type {}, id {})",
            cell(&user, "username"),
            cell(&user, "login_type"),
            cell(&user, "id")
        ))
    })
}

/// Every user, fetched page by page; printed as the API's `{users, count}`.
async fn list(api: &ApiClient, out: OutputArgs) -> Result<()> {
    const PAGE: usize = 1000;
    let mut users: Vec<Value> = Vec::new();
    let count = loop {
        let page = api
            .get_query(
                &["users"],
                &[
                    ("limit", PAGE.to_string()),
                    ("offset", users.len().to_string()),
                ],
            )
            .await?;
        let count = page.get("count").and_then(Value::as_u64).unwrap_or(0);
        let got = items(page.get("users").unwrap_or(&Value::Null));
        let done = got.len() < PAGE;
        users.extend_from_slice(got);
        if done || users.len() as u64 >= count {
            break count;
        }
    };
    if out.json() {
        return output::json(&json!({"users": users, "count": count}));
    }
    let mut table = Table::new(&["USERNAME", "EMAIL", "STATUS", "LOGIN TYPE", "ROLES", "ID"]);
    for u in &users {
        table.row(vec![
            cell(u, "username"),
            cell(u, "email"),
            cell(u, "status"),
            cell(u, "login_type"),
            cell(u, "roles"),
            cell(u, "id"),
        ]);
    }
    table.print()
}

async fn status(api: &ApiClient, out: OutputArgs, user: &str, verb: &str) -> Result<()> {
    let updated = api
        .put(&["users", user, "status", verb], None)
        .await
        .with_context(|| format!("cannot {verb} user `{user}`"))?;
    out.show(&updated, || {
        output::line(format!(
            "user `{}` is {}",
            str_of(&updated, "username")?,
            str_of(&updated, "status")?
        ))
    })
}
