//! `orgsync templates push|list|delete|versions list`, and following a job's
//! logs to its end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{self, ApiClient};
use super::output::{self, OutputArgs, Table, cell, items};
use super::provisioner::{OrgFlag, parse_pairs};
use crate::provisioner::archive;

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Upload DIR as a new version of template NAME (created if missing), wait
    /// for its import job while streaming its logs, and make it active.
    Push(PushArgs),
    /// List the templates you may see (of one org with --org).
    List {
        /// Only this organization's templates (name or id).
        #[arg(long, short = 'O', value_name = "ORG")]
        org: Option<String>,
    },
    /// Delete a template (refused while workspaces use it: delete them first).
    Delete(TemplateArgs),
    /// A template's versions.
    #[command(subcommand)]
    Versions(VersionsCommand),
}

#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// List a template's versions, newest first, marking the active one.
    List(TemplateArgs),
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// The template's name.
    pub name: String,
    #[command(flatten)]
    pub org: OrgFlag,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The template's name (a lowercase slug).
    pub name: String,
    /// The organization (name or id).
    #[arg(long, short = 'O', value_name = "ORG")]
    pub org: String,
    /// The template's directory.
    #[arg(
        short = 'd',
        long = "directory",
        value_name = "DIR",
        default_value = "."
    )]
    pub dir: PathBuf,
    /// The provisioner type of the template.
    #[arg(long, default_value = "terraform", value_parser = ["terraform", "echo"])]
    pub provisioner: String,
    /// A tag the import job and builds need on their daemon, `key=value` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// How long to wait for the import job (`30s`, `5m`, `1h`); when it has
    /// not finished by then the command fails (exit 1) and the job stays
    /// queued.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses a duration: a number and a unit (`ms`, `s`, `m`, `h`); a bare
/// number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration such as 30s, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        other => return Err(format!("unknown unit `{other}` in `{raw}` (ms, s, m or h)")),
    };
    Ok(Duration::from_secs(seconds))
}

pub fn run(args: TemplatesArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        TemplatesCommand::Push(p) => push(&api, args.out, p).await,
        TemplatesCommand::List { org } => list(&api, args.out, org.as_deref()).await,
        TemplatesCommand::Delete(t) => delete(&api, args.out, &t).await,
        TemplatesCommand::Versions(VersionsCommand::List(t)) => versions(&api, args.out, &t).await,
    })
}

/// The template of that name in an organization, if the caller may see it.
async fn find_template(api: &ApiClient, org: &str, name: &str) -> Result<Option<Value>> {
    let templates = api.get(&["organizations", org, "templates"]).await?;
    Ok(items(&templates)
        .iter()
        .find(|t| cell(t, "name") == name || cell(t, "id") == name)
        .cloned())
}

async fn require_template(api: &ApiClient, t: &TemplateArgs) -> Result<Value> {
    find_template(api, &t.org.org, &t.name)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "no template `{}` in `{}` that you may see",
                t.name,
                t.org.org
            )
        })
}

async fn delete(api: &ApiClient, out: OutputArgs, t: &TemplateArgs) -> Result<()> {
    let template = require_template(api, t).await?;
    let body = api
        .delete(&["templates", client::str_of(&template, "id")?])
        .await
        .with_context(|| format!("cannot delete template `{}`", t.name))?;
    out.show(&body, || {
        output::line(format!("deleted template `{}` of `{}`", t.name, t.org.org))
    })
}

async fn versions(api: &ApiClient, out: OutputArgs, t: &TemplateArgs) -> Result<()> {
    let template = require_template(api, t).await?;
    let id = client::str_of(&template, "id")?;
    let all = api
        .get(&["organizations", &t.org.org, "templateversions"])
        .await?;
    let mine: Vec<Value> = items(&all)
        .iter()
        .filter(|v| cell(v, "template_id") == id)
        .cloned()
        .collect();
    let active = cell(&template, "active_version_id");
    out.show(&Value::Array(mine.clone()), || {
        output::table_of(
            &mine,
            &["NAME", "ACTIVE", "IMPORT", "VARIABLES", "CREATED", "ID"],
            |v| {
                let job = v.get("job").cloned().unwrap_or(Value::Null);
                vec![
                    cell(v, "name"),
                    if cell(v, "id") == active { "yes" } else { "" }.to_owned(),
                    cell(&job, "status"),
                    variables_cell(v),
                    cell(v, "created_at"),
                    cell(v, "id"),
                ]
            },
        )
    })
}

/// A version's declared variables: `name` (optional) or `name*` (required).
fn variables_cell(version: &Value) -> String {
    let vars = version.get("variables").map_or(&[][..], items);
    if vars.is_empty() {
        return "-".to_owned();
    }
    vars.iter()
        .map(|v| {
            let star = if v.get("required") == Some(&Value::Bool(true)) {
                "*"
            } else {
                ""
            };
            format!("{}{star}", cell(v, "name"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a job's log lines after the line `after` to stderr; returns the
/// last line's id.
async fn print_logs(api: &ApiClient, job_id: &str, mut after: i64) -> Result<i64> {
    let logs = api
        .get_query(
            &["provisionerjobs", job_id, "logs"],
            &[("after", after.to_string())],
        )
        .await?;
    for l in items(&logs) {
        after = after.max(l.get("id").and_then(Value::as_i64).unwrap_or(after));
        eprintln!("{:>9} | {}", cell(l, "stage"), cell(l, "output"));
    }
    Ok(after)
}

/// How [`follow_job`] follows a job.
#[derive(Debug, Clone, Copy)]
pub struct Follow<'a> {
    /// The job in messages: "the import job", "the build".
    pub what: &'a str,
    /// The organization the job runs in, named in the hint printed while no
    /// daemon serves it.
    pub org: Option<&'a str>,
    /// Give up (exit 1, the job left as it is) after this long.
    pub timeout: Option<Duration>,
}

/// Streams a job's logs to stderr until it finishes; fails unless it
/// succeeded, or when `follow.timeout` passes first (the job is not canceled).
/// While the job waits for a daemon, says why once, with a hint naming the
/// commands that start one.
pub async fn follow_job(api: &ApiClient, job_id: &str, follow: &Follow<'_>) -> Result<Value> {
    let what = follow.what;
    let deadline = follow.timeout.map(|t| (tokio::time::Instant::now() + t, t));
    let mut after = 0i64;
    let mut waited_msg = false;
    loop {
        after = print_logs(api, job_id, after).await?;
        let job = api.get(&["provisionerjobs", job_id]).await?;
        let status = cell(&job, "status");
        match status.as_str() {
            "succeeded" => {
                // Lines written between the last two reads.
                print_logs(api, job_id, after).await?;
                return Ok(job);
            }
            "failed" | "canceled" => bail!("{what} {status}: {}", cell(&job, "error")),
            _ => {}
        }
        let queued = job.get("queue_message").and_then(Value::as_str);
        if !waited_msg && let Some(m) = queued {
            eprintln!("waiting: {m}");
            eprintln!("{}", no_daemon_hint(follow.org.unwrap_or("ORG")));
            waited_msg = true;
        }
        if let Some((at, limit)) = deadline
            && tokio::time::Instant::now() >= at
        {
            let why = queued.map(|m| format!(": {m}")).unwrap_or_default();
            bail!(
                "{what} did not finish within {} (still {status}{why}); it was not canceled \
                 and runs when a daemon takes it (cancel it with `orgsync provisioner jobs \
                 cancel {job_id}`)",
                show_duration(limit)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What to run so that an organization's jobs have a daemon.
fn no_daemon_hint(org: &str) -> String {
    format!(
        "hint: no provisioner daemon of `{org}` can take this job; one is started with a key \
         of that organization:\n  orgsync provisioner keys create KEY-NAME --org {org}\n  \
         ORGSYNC_URL=... ORGSYNC_PROVISIONER_DAEMON_KEY=<the key> orgsync provisionerd start \
         --org {org}\n  (see `orgsync provisioner daemons list --org {org}`)"
    )
}

fn show_duration(d: Duration) -> String {
    match d.as_secs() {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

async fn push(api: &ApiClient, out: OutputArgs, args: PushArgs) -> Result<()> {
    let tags = parse_pairs("--tag", &args.tags)?;
    let tar = archive::pack_dir(&args.dir)
        .with_context(|| format!("cannot read template directory {}", args.dir.display()))?;
    archive::check(&tar)
        .with_context(|| format!("{} holds no template files", args.dir.display()))?;
    let file = api
        .upload_tar(&args.org, tar)
        .await
        .context("cannot upload the template")?;
    let existing = find_template(api, &args.org, &args.name).await?;
    let mut body = json!({"file_hash": client::str_of(&file, "hash")?, "provisioner": args.provisioner, "tags": tags});
    if let Some(t) = &existing {
        body["template_id"] = json!(client::str_of(t, "id")?);
    }
    let version = api
        .post(
            &["organizations", &args.org, "templateversions"],
            Some(&body),
        )
        .await
        .context("cannot create the template version")?;
    let job_id = version
        .get("job")
        .and_then(|j| j.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    eprintln!(
        "import job {job_id} queued for version {}",
        cell(&version, "name")
    );
    let follow = Follow {
        what: "the import job",
        org: Some(&args.org),
        timeout: Some(args.timeout),
    };
    follow_job(api, &job_id, &follow).await?;
    let version_id = client::str_of(&version, "id")?;
    let template = match existing {
        Some(t) => api
            .patch(
                &["templates", client::str_of(&t, "id")?],
                &json!({"active_version_id": version_id}),
            )
            .await
            .context("cannot activate the new version")?,
        None => api
            .post(
                &["organizations", &args.org, "templates"],
                Some(&json!({"name": args.name, "version_id": version_id})),
            )
            .await
            .context("cannot create the template")?,
    };
    out.show(&template, || {
        output::line(format!(
            "template `{}` in `{}` now runs version `{}`",
            cell(&template, "name"),
            args.org,
            cell(&version, "name")
        ))
    })
}

async fn list(api: &ApiClient, out: OutputArgs, org: Option<&str>) -> Result<()> {
    let templates = match org {
        Some(o) => api.get(&["organizations", o, "templates"]).await?,
        None => api.get(&["templates"]).await?,
    };
    if out.json() {
        return output::json(&templates);
    }
    let orgs = api.get(&["organizations"]).await.unwrap_or(Value::Null);
    let org_name = |id: &str| {
        items(&orgs)
            .iter()
            .find(|o| cell(o, "id") == id)
            .map(|o| cell(o, "name"))
            .unwrap_or_else(|| id.to_owned())
    };
    let mut table = Table::new(&[
        "NAME",
        "ORGANIZATION",
        "PROVISIONER",
        "ACTIVE VERSION",
        "ID",
    ]);
    for t in items(&templates) {
        table.row(vec![
            cell(t, "name"),
            org_name(&cell(t, "organization_id")),
            cell(t, "provisioner"),
            cell(t, "active_version_id"),
            cell(t, "id"),
        ]);
    }
    table.print()
}
