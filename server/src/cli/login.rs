//! `orgsync login URL`: creates the first user (site owner) of a new
//! deployment, or logs in with email and password, and stores the session.
//!
//! With the `--first-user-*` flags on a deployment that already has users, the
//! command logs in instead (with `--email`/`--password` when given, else the
//! first-user email and password), so a setup script can run it again.
//!
//! `--token T` stores an API token instead (made in the console or by
//! `orgsync tokens create`): how users who sign in through OIDC use the CLI.
//! The token is checked with `GET /users/me` first; a refused one is not stored.
//!
//! `--profile NAME` stores the login under that name, beside the others.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};

use super::client::{
    self, ApiClient, StoredSession, UsageError, api_status, parse_url, str_of, url_text,
};
use super::output::{self, OutputArgs};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The deployment's URL, e.g. http://127.0.0.1:3000
    #[arg(env = "ORGSYNC_URL", value_name = "URL")]
    pub url: String,

    /// Username of the first user (site owner), created if the deployment has no user yet.
    #[arg(
        long,
        env = "ORGSYNC_FIRST_USER_USERNAME",
        requires_all = ["first_user_email", "first_user_password"]
    )]
    pub first_user_username: Option<String>,

    /// Email of the first user.
    #[arg(
        long,
        env = "ORGSYNC_FIRST_USER_EMAIL",
        requires_all = ["first_user_username", "first_user_password"]
    )]
    pub first_user_email: Option<String>,

    /// Password of the first user.
    #[arg(
        long,
        env = "ORGSYNC_FIRST_USER_PASSWORD",
        hide_env_values = true,
        requires_all = ["first_user_username", "first_user_email"]
    )]
    pub first_user_password: Option<String>,

    /// Email to log in with (prompted for on a terminal when absent).
    #[arg(long, env = "ORGSYNC_EMAIL")]
    pub email: Option<String>,

    /// Password to log in with (prompted for on a terminal when absent).
    #[arg(long, env = "ORGSYNC_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Log in with this API token instead of a password (OIDC users: make one in
    /// the console or with `orgsync tokens create`); `-` reads it from stdin.
    #[arg(
        long,
        value_name = "TOKEN",
        conflicts_with_all = ["first_user_username", "email", "password"]
    )]
    pub token: Option<String>,

    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(args: LoginArgs) -> std::process::ExitCode {
    client::run(login(args))
}

async fn login(args: LoginArgs) -> Result<()> {
    let url = parse_url(&args.url)?;
    let mut api = ApiClient::new(url.clone(), None)?;
    let mut created = false;
    let token = if let Some(token) = &args.token {
        read_token(token)?
    } else {
        match (
            &args.first_user_username,
            &args.first_user_email,
            &args.first_user_password,
        ) {
            (Some(username), Some(email), Some(password)) => {
                if has_users(&api).await? {
                    eprintln!(
                        "note: the deployment already has users: logging in instead of creating the first user"
                    );
                    let email = args.email.clone().unwrap_or_else(|| email.clone());
                    let password = args.password.clone().unwrap_or_else(|| password.clone());
                    password_login(&api, &email, &password).await?
                } else {
                    let body = json!({"username": username, "email": email, "password": password});
                    match api.post(&["users", "first"], Some(&body)).await {
                        Ok(v) => {
                            created = true;
                            str_of(&v, "session_token")?.to_owned()
                        }
                        // Another client created it first: log in like a second run would.
                        Err(e) if api_status(&e) == Some(409) => {
                            eprintln!("note: the first user was created meanwhile: logging in");
                            password_login(&api, email, password).await?
                        }
                        Err(e) => return Err(e.context("cannot create the first user")),
                    }
                }
            }
            _ => {
                let email = match &args.email {
                    Some(e) => e.clone(),
                    None => prompt("Email: ", false, "--email", "ORGSYNC_EMAIL")?,
                };
                let password = match &args.password {
                    Some(p) => p.clone(),
                    None => prompt("Password: ", true, "--password", "ORGSYNC_PASSWORD")?,
                };
                password_login(&api, &email, &password).await?
            }
        }
    };
    api.set_token(token.clone());
    let me = api
        .get(&["users", "me"])
        .await
        .context(if args.token.is_some() {
            "the token was refused; nothing was stored"
        } else {
            "the new session does not work"
        })?;
    let username = str_of(&me, "username")?.to_owned();
    let path = client::save_session(&StoredSession {
        url: url_text(&url),
        session_token: token,
        username: username.clone(),
    })?;
    if args.out.json() {
        return output::json(&json!({
            "url": url_text(&url),
            "profile": client::profile(),
            "first_user_created": created,
            "session_file": path.display().to_string(),
            "user": me,
        }));
    }
    if created {
        output::line(format!(
            "created the first user `{username}` (site owner) on {}",
            url_text(&url)
        ))?;
    }
    output::line(format!(
        "logged in to {} as `{username}`{}; session stored in {}",
        url_text(&url),
        client::profile_note(),
        path.display()
    ))
}

/// The token of `--token`: as given, or the first line of stdin for `-`.
fn read_token(raw: &str) -> Result<String> {
    let token = if raw == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the token from stdin")?;
        line
    } else {
        raw.to_owned()
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(UsageError("--token is empty".into()).into());
    }
    Ok(token.to_owned())
}

/// Whether the deployment's first user exists (`GET /users/first`: 200 or 404).
async fn has_users(api: &ApiClient) -> Result<bool> {
    match api.get(&["users", "first"]).await {
        Ok(_) => Ok(true),
        Err(e) if api_status(&e) == Some(404) => Ok(false),
        Err(e) => Err(e.context(format!(
            "cannot tell whether {} has users; is it an orgsync server?",
            url_text(api.base())
        ))),
    }
}

async fn password_login(api: &ApiClient, email: &str, password: &str) -> Result<String> {
    let body = json!({"email": email, "password": password});
    let v: Value = api
        .post(&["users", "login"], Some(&body))
        .await
        .with_context(|| format!("cannot log in as `{email}`"))?;
    Ok(str_of(&v, "session_token")?.to_owned())
}

/// Reads a value from the terminal; refuses when stdin is not one.
fn prompt(label: &str, secret: bool, flag: &str, env: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(UsageError(format!(
            "{flag} (or {env}) is required: stdin is not a terminal, so orgsync does not prompt"
        ))
        .into());
    }
    if secret && !set_echo(false) {
        return Err(UsageError(format!(
            "cannot turn off the terminal's echo to read a password; use {flag} or {env}"
        ))
        .into());
    }
    eprint!("{label}");
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if secret {
        set_echo(true);
        eprintln!();
    }
    read.context("cannot read from the terminal")?;
    let value = line.trim_end_matches(['\r', '\n']).to_owned();
    if value.is_empty() {
        return Err(UsageError(format!("no value given for {flag}")).into());
    }
    Ok(value)
}

/// Turns terminal echo on or off with `stty` (no unsafe code); false if it failed.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
