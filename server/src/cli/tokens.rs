//! `orgsync tokens create|list|delete`: API tokens, for scripts, `curl`
//! (`Authorization: Bearer TOKEN`) and the CLI of users who sign in through
//! OIDC (`orgsync login URL --token TOKEN`). A token's secret is shown once.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{self, ApiClient, str_of};
use super::output::{self, OutputArgs, cell, find_id};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token and print it once (`--quiet`: only the token).
    Create(CreateArgs),
    /// List your API tokens (never their secrets).
    List(UserArg),
    /// Delete an API token (by name or id): requests with it are refused from then on.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct UserArg {
    /// Whose tokens (username or id) [default: yours]; others' need the policies' leave.
    #[arg(long, value_name = "USER", default_value = "me")]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The token's name, unique among your tokens (e.g. `ci`, `laptop-curl`).
    #[arg(long)]
    pub name: Option<String>,
    /// How long the token works, e.g. `12h`, `30d`, `1w` (1 minute to 365 days) [default: 30d]
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub lifetime: Option<chrono::Duration>,
    /// Print only the token (for `export ORGSYNC_TOKEN=$(orgsync tokens create --quiet)`).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub user: UserArg,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The token (name or id).
    pub token: String,
    #[command(flatten)]
    pub user: UserArg,
}

pub fn run(out: OutputArgs, cmd: TokensCommand) -> ExitCode {
    client::run_with_session(async move |api| match cmd {
        TokensCommand::Create(a) => create(&api, out, a).await,
        TokensCommand::List(a) => {
            let tokens = api.get(&["users", &a.user, "keys", "tokens"]).await?;
            out.list(
                &tokens,
                &[
                    ("NAME", "token_name"),
                    ("ID", "id"),
                    ("CREATED", "created_at"),
                    ("EXPIRES", "expires_at"),
                    ("LAST USED", "last_used_at"),
                ],
            )
        }
        TokensCommand::Delete(a) => delete(&api, out, a).await,
    })
}

async fn create(api: &ApiClient, out: OutputArgs, args: CreateArgs) -> Result<()> {
    let body = client::fields([
        ("token_name", args.name.clone().map(Into::into)),
        (
            "lifetime_seconds",
            args.lifetime.map(|d| json!(d.num_seconds())),
        ),
    ]);
    let token = api
        .post(&["users", &args.user.user, "keys", "tokens"], Some(&body))
        .await
        .context("cannot create a token")?;
    if args.quiet && !out.json() {
        return output::line(str_of(&token, "key")?);
    }
    out.show(&token, || {
        output::line(format!(
            "created token `{}` (id {}, expires {}); it is shown only once:\n\n{}\n\n\
             Send it as `Authorization: Bearer TOKEN`, or log in with it: \
             `orgsync login URL --token TOKEN`",
            args.name.as_deref().unwrap_or("-"),
            cell(&token, "id"),
            cell(&token, "expires_at"),
            str_of(&token, "key")?
        ))
    })
}

async fn delete(api: &ApiClient, out: OutputArgs, args: DeleteArgs) -> Result<()> {
    let user = args.user.user.as_str();
    let tokens = api.get(&["users", user, "keys", "tokens"]).await?;
    let id = find_id(&tokens, &args.token, "token_name").ok_or_else(|| {
        anyhow!(
            "token `{}` not found; `orgsync tokens list` lists them",
            args.token
        )
    })?;
    let body = api
        .delete(&["users", user, "keys", &id])
        .await
        .with_context(|| format!("cannot delete token `{}`", args.token))?;
    out.show(&body, || {
        output::line(format!("deleted token `{}` (id {id})", args.token))
    })
}
