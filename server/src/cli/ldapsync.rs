//! `orgsync ldapsync run [--dry-run] [--force]`, `orgsync ldapsync runs`,
//! `orgsync ldapsync show ID`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{self, ApiClient};
use super::output::{self, OutputArgs, Table, cell, items};

#[derive(Debug, Args)]
pub struct LdapsyncArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: LdapsyncCommand,
}

#[derive(Debug, Subcommand)]
pub enum LdapsyncCommand {
    /// Run a directory sync now and wait for it, printing its progress.
    Run {
        /// Compute the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Go on even when the run would suspend or remove more than
        /// `max_removal_percent`.
        #[arg(long)]
        force: bool,
        /// A full run even when an incremental one would do.
        #[arg(long, conflicts_with = "incremental")]
        full: bool,
        /// An incremental run even when a full one is due.
        #[arg(long)]
        incremental: bool,
        /// Start the run and print it without waiting for the end.
        #[arg(long)]
        no_wait: bool,
    },
    /// List recent runs.
    Runs {
        /// At most this many runs, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one run (with its plan for dry and aborted runs).
    Show {
        /// The run's id.
        id: String,
    },
}

pub fn run(args: LdapsyncArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        LdapsyncCommand::Run {
            dry_run,
            force,
            full,
            incremental,
            no_wait,
        } => {
            let mut body = json!({"dry_run": dry_run, "force": force});
            if full {
                body["full"] = json!(true);
            } else if incremental {
                body["full"] = json!(false);
            }
            let started = api.post(&["ldapsync", "runs"], Some(&body)).await?;
            if no_wait {
                return print_run(&started, args.out.json());
            }
            let id = cell(&started, "id");
            let done = wait(&api, &id).await?;
            print_run(&done, args.out.json())?;
            match done.get("status").and_then(Value::as_str) {
                Some("succeeded") => Ok(()),
                Some(status) => Err(anyhow!(
                    "the run {status}: {}",
                    done.get("error").and_then(Value::as_str).unwrap_or("")
                )),
                None => Err(anyhow!("the run has no status")),
            }
        }
        LdapsyncCommand::Runs { limit } => {
            let list = api
                .get_query(&["ldapsync", "runs"], &[("limit", limit.to_string())])
                .await?;
            args.out.show(&list, || {
                let mut t = Table::new(&[
                    "ID",
                    "STARTED",
                    "STATUS",
                    "TRIGGER",
                    "KIND",
                    "SEEN",
                    "CREATED",
                    "SUSPENDED",
                    "ERROR",
                ]);
                for r in items(list.get("runs").unwrap_or(&Value::Null)) {
                    t.row(vec![
                        cell(r, "id"),
                        cell(r, "started_at"),
                        cell(r, "status"),
                        cell(r, "trigger"),
                        kind(r),
                        stat(r, "users_seen"),
                        stat(r, "users_created"),
                        stat(r, "users_suspended"),
                        cell(r, "error"),
                    ]);
                }
                t.print()
            })
        }
        LdapsyncCommand::Show { id } => {
            let r = api.get(&["ldapsync", "runs", &id]).await?;
            print_run(&r, args.out.json())
        }
    })
}

fn kind(r: &Value) -> String {
    let mut k = if r.get("full").and_then(Value::as_bool) == Some(true) {
        "full".to_owned()
    } else {
        "incremental".to_owned()
    };
    if r.get("dry_run").and_then(Value::as_bool) == Some(true) {
        k.push_str(", dry run");
    }
    k
}

fn stat(r: &Value, key: &str) -> String {
    r.get("stats")
        .and_then(|s| s.get(key))
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// Polls the run until it ends; a progress line on stderr meanwhile (rewritten
/// in place on a terminal, one line per change otherwise).
async fn wait(api: &ApiClient, id: &str) -> Result<Value> {
    let tty = std::io::stderr().is_terminal();
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(6 * 3600);
    loop {
        let r = api.get(&["ldapsync", "runs", id]).await?;
        if r.get("status").and_then(Value::as_str) != Some("running") {
            if tty && !last.is_empty() {
                eprintln!();
            }
            return Ok(r);
        }
        let p = r.get("progress").cloned().unwrap_or(Value::Null);
        let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
        let line = format!(
            "{}: {} users and {} groups read, {} users planned, {}/{} applied",
            p.get("phase").and_then(Value::as_str).unwrap_or("starting"),
            n("users_read"),
            n("groups_read"),
            n("users_planned"),
            n("users_applied"),
            n("users_to_apply"),
        );
        if line != last {
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            last = line;
        }
        if std::time::Instant::now() > deadline {
            return Err(anyhow!("gave up waiting for run {id}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_run(r: &Value, json: bool) -> Result<()> {
    if json {
        return output::json(r);
    }
    let stats = r.get("stats").cloned().unwrap_or(Value::Null);
    let mut pairs = vec![
        ("id", cell(r, "id")),
        ("status", cell(r, "status")),
        ("trigger", cell(r, "trigger")),
        ("kind", kind(r)),
        ("started", cell(r, "started_at")),
        ("finished", cell(r, "finished_at")),
    ];
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        pairs.push(("error", e.to_owned()));
    }
    output::fields(&pairs)?;
    if let Value::Object(m) = &stats {
        let mut t = Table::new(&["STAT", "VALUE"]);
        for (k, v) in m {
            t.row(vec![k.clone(), v.to_string()]);
        }
        t.print()?;
    }
    let problems = items(r.get("problems").unwrap_or(&Value::Null));
    if !problems.is_empty() {
        output::line(format!("problems ({}):", problems.len()))?;
        for p in problems.iter().take(50) {
            output::line(format!(
                "  {} x{}: {}",
                cell(p, "kind"),
                cell(p, "count"),
                cell(p, "detail")
            ))?;
        }
    }
    if let Some(plan) = r.get("plan").and_then(Value::as_array) {
        output::line(format!("planned changes ({} shown):", plan.len()))?;
        for c in plan.iter().take(200) {
            output::line(format!(
                "  {} {}",
                cell(c, "action"),
                c.get("username")
                    .and_then(Value::as_str)
                    .unwrap_or(&cell(c, "user_id"))
            ))?;
        }
    }
    Ok(())
}
