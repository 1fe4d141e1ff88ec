//! `orgsync templates push|list`, and following a job's logs to its end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{self, ApiClient};
use super::output::{self, OutputArgs, Table, cell, items};
use super::provisioner::parse_pairs;
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
}

pub fn run(args: TemplatesArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        TemplatesCommand::Push(p) => push(&api, args.out, p).await,
        TemplatesCommand::List { org } => list(&api, args.out, org.as_deref()).await,
    })
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

/// Streams a job's logs to stderr until it finishes; fails unless it succeeded.
pub async fn follow_job(api: &ApiClient, job_id: &str, what: &str) -> Result<Value> {
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
        if !waited_msg && let Some(m) = job.get("queue_message").and_then(Value::as_str) {
            eprintln!("waiting: {m}");
            waited_msg = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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
    let templates = api.get(&["organizations", &args.org, "templates"]).await?;
    let existing = items(&templates)
        .iter()
        .find(|t| cell(t, "name") == args.name)
        .cloned();
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
    follow_job(api, &job_id, "the import job").await?;
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
