//! `orgsync provisioner keys create|list|delete`, `provisioner daemons list`,
//! `provisioner jobs list|cancel` and `orgsync provisionerd start`.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::client::{self, UsageError, env_nonempty};
use super::output::{self, OutputArgs, cell, items};
use crate::provisioner::daemon::{DaemonTiming, SourceError, serve};
use crate::provisioner::executor::Executor;
use crate::provisioner::http::HttpSource;

#[derive(Debug, Args)]
pub struct ProvisionerArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: ProvisionerCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProvisionerCommand {
    /// Manage provisioner keys: the credentials of an organization's daemons.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// An organization's provisioner daemons.
    #[command(subcommand)]
    Daemons(DaemonsCommand),
    /// An organization's provisioner jobs (template imports, workspace builds).
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Debug, Subcommand)]
pub enum DaemonsCommand {
    /// List the daemons connected to an organization: name, tags, status
    /// (idle, busy, offline) and when each was last seen.
    List(OrgFlag),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List an organization's jobs you may read, newest first, with why a
    /// pending job waits.
    List(JobsListArgs),
    /// Cancel a job: a pending job at once, a running one as soon as its
    /// daemon hears of it.
    Cancel(JobIdArg),
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    #[command(flatten)]
    pub org: OrgFlag,
    /// Only jobs with this status.
    #[arg(long, value_parser = ["pending", "running", "succeeded", "failed", "canceling", "canceled"])]
    pub status: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobIdArg {
    /// The job's id (see `orgsync provisioner jobs list`).
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once and can never be shown again.
    Create(CreateKeyArgs),
    /// List an organization's keys (never their secrets).
    List(OrgFlag),
    /// Delete a key; daemons using it are disconnected within seconds.
    Delete(DeleteKeyArgs),
}

#[derive(Debug, Args)]
pub struct OrgFlag {
    /// The organization (name or id).
    #[arg(long, short = 'O', value_name = "ORG")]
    pub org: String,
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// The key's name (a lowercase slug; `built-in`, `user-auth`, `psk` are reserved).
    pub name: String,
    #[command(flatten)]
    pub org: OrgFlag,
    /// A tag of the daemons using this key, `key=value` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteKeyArgs {
    /// The key's name.
    pub name: String,
    #[command(flatten)]
    pub org: OrgFlag,
}

/// Parses `key=value` pairs.
pub fn parse_pairs(flag: &str, raw: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in raw {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(UsageError(format!("{flag} `{pair}` is not `key=value`")).into());
        };
        if k.trim().is_empty() {
            return Err(UsageError(format!("{flag} `{pair}` has an empty key")).into());
        }
        out.insert(k.trim().to_owned(), json!(v));
    }
    Ok(out)
}

pub fn run(args: ProvisionerArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        ProvisionerCommand::Keys(cmd) => keys(&api, args.out, cmd).await,
        ProvisionerCommand::Daemons(DaemonsCommand::List(o)) => {
            let daemons = api
                .get(&["organizations", &o.org, "provisionerdaemons"])
                .await?;
            args.out.show(&daemons, || {
                output::table_of(
                    items(&daemons),
                    &["NAME", "PROVISIONERS", "TAGS", "STATUS", "LAST SEEN", "ID"],
                    |d| {
                        vec![
                            cell(d, "name"),
                            cell(d, "provisioners"),
                            output::pairs_cell(d, "tags"),
                            cell(d, "status"),
                            cell(d, "last_seen_at"),
                            cell(d, "id"),
                        ]
                    },
                )
            })
        }
        ProvisionerCommand::Jobs(JobsCommand::List(a)) => {
            let query: Vec<(&str, String)> =
                a.status.iter().map(|s| ("status", s.clone())).collect();
            let jobs = api
                .get_query(&["organizations", &a.org.org, "provisionerjobs"], &query)
                .await?;
            args.out.show(&jobs, || {
                output::table_of(
                    items(&jobs),
                    &["ID", "TYPE", "STATUS", "CREATED", "WHY / ERROR"],
                    |j| {
                        let why = j
                            .get("queue_message")
                            .filter(|m| !m.is_null())
                            .map_or_else(|| cell(j, "error"), |_| cell(j, "queue_message"));
                        vec![
                            cell(j, "id"),
                            cell(j, "type"),
                            cell(j, "status"),
                            cell(j, "created_at"),
                            why,
                        ]
                    },
                )
            })
        }
        ProvisionerCommand::Jobs(JobsCommand::Cancel(a)) => {
            let reply = api
                .post(&["provisionerjobs", &a.id, "cancel"], None)
                .await
                .with_context(|| format!("cannot cancel job `{}`", a.id))?;
            args.out.show(&reply, || {
                output::line(format!("job {}: {}", a.id, cell(&reply, "status")))
            })
        }
    })
}

async fn keys(api: &client::ApiClient, out: OutputArgs, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create(a) => {
            let body = json!({"name": a.name, "tags": parse_pairs("--tag", &a.tags)?});
            let path = ["organizations", a.org.org.as_str(), "provisionerkeys"];
            let created = api.post(&path, Some(&body)).await;
            let key =
                created.with_context(|| format!("cannot create provisioner key `{}`", a.name))?;
            // The secret, on a line of its own for scripts that take the last line.
            let said = format!(
                "created provisioner key `{}` for organization `{}`; its secret is shown only now:\n{}",
                cell(&key, "name"),
                a.org.org,
                cell(&key, "key")
            );
            out.show(&key, || output::line(said))
        }
        KeysCommand::List(o) => {
            let keys = api
                .get(&["organizations", &o.org, "provisionerkeys"])
                .await?;
            out.show(&keys, || {
                output::table_of(items(&keys), &["NAME", "TAGS", "CREATED", "ID"], |k| {
                    vec![
                        cell(k, "name"),
                        output::pairs_cell(k, "tags"),
                        cell(k, "created_at"),
                        cell(k, "id"),
                    ]
                })
            })
        }
        KeysCommand::Delete(a) => {
            let body = api
                .delete(&["organizations", &a.org.org, "provisionerkeys", &a.name])
                .await
                .with_context(|| format!("cannot delete provisioner key `{}`", a.name))?;
            out.show(&body, || {
                output::line(format!("deleted provisioner key `{}`", a.name))
            })
        }
    }
}

#[derive(Debug, Args)]
pub struct ProvisionerdArgs {
    #[command(subcommand)]
    pub command: ProvisionerdCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProvisionerdCommand {
    /// Run a provisioner daemon for one organization, authenticated by a
    /// provisioner key (`ORGSYNC_PROVISIONER_DAEMON_KEY`) against `ORGSYNC_URL`.
    Start(StartArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The organization the key belongs to (name or id); checked against the key.
    #[arg(long, short = 'O', value_name = "ORG")]
    pub org: String,
    /// The daemon's name [default: the host name]
    #[arg(long)]
    pub name: Option<String>,
    /// Which executor runs jobs: `terraform` (real) or `echo` (for tests).
    #[arg(long, default_value = "terraform", value_parser = ["terraform", "echo"])]
    pub executor: String,
    /// The server [env: ORGSYNC_URL]
    #[arg(long, env = "ORGSYNC_URL")]
    pub url: Option<String>,
}

pub fn run_daemon(args: ProvisionerdArgs) -> ExitCode {
    let ProvisionerdCommand::Start(args) = args.command;
    super::init_tracing(
        &std::env::var("ORGSYNC_LOG").unwrap_or_else(|_| "info".to_owned()),
        log_format_from_env(),
    );
    client::run(start(args))
}

async fn start(args: StartArgs) -> Result<()> {
    let url = args
        .url
        .clone()
        .or_else(|| env_nonempty(client::ENV_URL))
        .ok_or_else(|| UsageError(format!("no server: set {} or pass --url", client::ENV_URL)))?;
    let url = client::url_text(&client::parse_url(&url)?);
    let key = env_nonempty("ORGSYNC_PROVISIONER_DAEMON_KEY").ok_or_else(|| {
        UsageError("set ORGSYNC_PROVISIONER_DAEMON_KEY to the provisioner key's secret".to_owned())
    })?;
    let executor = Executor::parse(&args.executor)
        .ok_or_else(|| anyhow!("unknown executor `{}`", args.executor))?;
    let name = args.name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "provisionerd".to_owned())
    });
    let source = HttpSource::register(&url, &key, &name, &[executor.provisioner().to_owned()])
        .await
        .map_err(|e| match e {
            SourceError::Unauthorized(m) => anyhow::Error::from(client::NotAuthenticated(format!(
                "the server refused the provisioner key: {m}"
            ))),
            SourceError::Transient(m) => anyhow!("cannot register the daemon: {m}"),
        })?;
    if source.organization_id != args.org && source.organization_name != args.org {
        bail!(
            "the provisioner key belongs to organization `{}`, not `{}`",
            source.organization_name,
            args.org
        );
    }
    eprintln!(
        "provisioner daemon `{name}` ({}) serving organization `{}` with the {} executor",
        source.daemon_id,
        source.organization_name,
        executor.provisioner()
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            } else {
                let _ = ctrl_c.await;
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        stop.cancel();
    });
    match serve(&source, &[executor], DaemonTiming::default(), &shutdown).await {
        Ok(()) => {
            eprintln!("provisioner daemon stopped");
            Ok(())
        }
        Err(SourceError::Unauthorized(m)) => Err(client::NotAuthenticated(format!(
            "disconnected: the provisioner key was deleted or is no longer valid ({m})"
        ))
        .into()),
        Err(SourceError::Transient(m)) => bail!("{m}"),
    }
}

/// The daemon's log format: `ORGSYNC_LOG_FORMAT` (`text` or `json`), like the server's.
fn log_format_from_env() -> crate::config::LogFormat {
    match std::env::var("ORGSYNC_LOG_FORMAT").as_deref() {
        Ok("json") => crate::config::LogFormat::Json,
        _ => crate::config::LogFormat::Text,
    }
}
