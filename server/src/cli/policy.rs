//! `orgsync policy validate|test|fmt`: the policy workflow, offline;
//! `orgsync policy diff|reload`: the impact of a change on real data.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use orgsync_policy::{Engine, PolicySources, format_policies, testing::run_tests};
use serde_json::{Value, json};

use super::client::{self, ApiClient};
use super::output::{self, OutputArgs};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and strictly validate the schema and policies; exit 3 when invalid.
    Validate(DirArg),
    /// Run the cases of `tests/*.json`; exit 3 when a case fails.
    Test(DirArg),
    /// Format the policy files in place (`--check`: only report, exit 3 if unformatted).
    Fmt(FmtArgs),
    /// What the policies of --policy-dir would change on real data: sent to the
    /// logged-in server's `POST /policies/impact`, or with --database-url
    /// evaluated here against that database.
    Diff(DiffArgs),
    /// Reload the server's policies from its policy directory (`--dry-run`:
    /// only show what the reload would change).
    Reload(ReloadArgs),
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The proposed policy directory.
    #[arg(long)]
    pub policy_dir: PathBuf,
    /// Evaluate locally against this database instead of a running server.
    #[arg(long)]
    pub database_url: Option<String>,
    /// With --database-url: the policies in force [default: the built-in ones].
    #[arg(long, requires = "database_url")]
    pub current_policy_dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Reload nothing; show what reloading would change.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DirArg {
    /// The policy directory [default: the policies built into this binary]
    #[arg(long, env = "ORGSYNC_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Do not write; exit 3 if a file is not formatted.
    #[arg(long)]
    pub check: bool,
}

const INVALID: u8 = 3;

fn sources(dir: &DirArg) -> Result<PolicySources, ExitCode> {
    match &dir.policy_dir {
        Some(d) => PolicySources::from_dir(d),
        None => PolicySources::builtin(),
    }
    .map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(INVALID)
    })
}

pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Diff(args) => match args.database_url.clone() {
            Some(url) => client::run(diff_local(args, url)),
            None => client::run_with_session(async |api| diff_remote(&api, &args).await),
        },
        PolicyCommand::Reload(args) => {
            client::run_with_session(async |api| reload(&api, &args).await)
        }
        other => match run_inner(other) {
            Ok(code) | Err(code) => code,
        },
    }
}

fn load(sources: &PolicySources) -> Result<Engine, ExitCode> {
    Engine::load(sources).map_err(|e| {
        for d in e.diagnostics() {
            eprintln!("error: {d}");
        }
        if e.diagnostics().is_empty() {
            eprintln!("error: {e}");
        }
        ExitCode::from(INVALID)
    })
}

fn run_inner(cmd: PolicyCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        PolicyCommand::Validate(dir) => {
            let sources = sources(&dir)?;
            let engine = load(&sources)?;
            println!(
                "ok: {} policies in {} files validate against the schema ({})",
                engine.policies().len(),
                sources.policies.len(),
                sources.origin
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test(dir) => {
            let sources = sources(&dir)?;
            let engine = load(&sources)?;
            let results = run_tests(&engine, &sources.tests);
            let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
            for r in &failed {
                eprintln!(
                    "FAIL {} / {}: {}",
                    r.file,
                    r.name,
                    r.detail.as_deref().unwrap_or("")
                );
            }
            println!(
                "{} passed, {} failed",
                results.len() - failed.len(),
                failed.len()
            );
            if results.is_empty() {
                eprintln!("error: no test cases found under tests/");
                return Err(ExitCode::from(INVALID));
            }
            Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(INVALID)
            })
        }
        PolicyCommand::Diff(_) | PolicyCommand::Reload(_) => Err(ExitCode::from(2)),
        PolicyCommand::Fmt(args) => {
            let Some(dir) = &args.dir.policy_dir else {
                eprintln!(
                    "error: `policy fmt` needs --policy-dir (the built-in policies are read-only)"
                );
                return Err(ExitCode::from(2));
            };
            let sources = sources(&args.dir)?;
            let mut unformatted = 0;
            for file in &sources.policies {
                let formatted = format_policies(file).map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(INVALID)
                })?;
                if formatted != file.text {
                    unformatted += 1;
                    if args.check {
                        eprintln!("not formatted: {}", file.path);
                    } else {
                        let path = dir.join(&file.path);
                        std::fs::write(&path, formatted).map_err(|e| {
                            eprintln!("error: cannot write {}: {e}", path.display());
                            ExitCode::FAILURE
                        })?;
                        println!("formatted {}", file.path);
                    }
                }
            }
            if args.check && unformatted > 0 {
                return Err(ExitCode::from(INVALID));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads a policy directory, or fails with its diagnostics.
fn read_dir(dir: &std::path::Path) -> Result<PolicySources> {
    PolicySources::from_dir(dir).with_context(|| format!("cannot read {}", dir.display()))
}

/// `policy diff` against the logged-in server: the directory's files as the
/// proposed set.
async fn diff_remote(api: &ApiClient, args: &DiffArgs) -> Result<()> {
    let sources = read_dir(&args.policy_dir)?;
    let files: serde_json::Map<String, Value> = sources
        .policies
        .iter()
        .chain(std::iter::once(&sources.schema))
        .map(|f| (f.path.clone(), Value::String(f.text.clone())))
        .collect();
    let answer = api
        .post(&["policies", "impact"], Some(&json!({"files": files})))
        .await?;
    show_impact(args.output, &answer)
}

/// `policy diff --database-url`: evaluated here, on that database's data.
async fn diff_local(args: DiffArgs, url: String) -> Result<()> {
    let after = load_engine(&read_dir(&args.policy_dir)?)?;
    let before = match &args.current_policy_dir {
        Some(dir) => load_engine(&read_dir(dir)?)?,
        None => Engine::builtin().context("the built-in policies")?,
    };
    let db = crate::db::Db::open(&url)
        .await
        .context("cannot open the database")?;
    let answer = crate::usecase::impact::between(&db, before.into(), after.into())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.body.message))?;
    db.close().await;
    show_impact(args.output, &answer)
}

fn load_engine(sources: &PolicySources) -> Result<Engine> {
    Engine::load(sources).map_err(|e| {
        for d in e.diagnostics() {
            eprintln!("error: {d}");
        }
        anyhow::anyhow!("the policies of {} are invalid", sources.origin)
    })
}

/// `policy reload [--dry-run]`.
async fn reload(api: &ApiClient, args: &ReloadArgs) -> Result<()> {
    if args.dry_run {
        let body = json!({"policy_dir": true});
        let answer = api.post(&["policies", "impact"], Some(&body)).await?;
        return show_impact(args.output, &answer);
    }
    let answer = api.post(&["policies", "reload"], None).await?;
    args.output.show(&answer, || {
        output::line(format!(
            "reloaded: {} policies, hash {}",
            answer["policies"],
            output::cell(&answer, "hash")
        ))?;
        if answer["grants_more"].as_bool() == Some(true) {
            output::line(format!(
                "warning: the new policies grant {} decisions the old ones denied",
                answer["granted"]
            ))?;
        }
        Ok(())
    })
}

/// An impact for people: the totals, one row per group, then its examples.
fn show_impact(out: OutputArgs, answer: &Value) -> Result<()> {
    out.show(answer, || {
        output::line(format!(
            "{} users, {} actions, {} decisions: {} change ({} granted, {} revoked)",
            answer["users"],
            answer["actions"],
            answer["decisions"],
            answer["changed"],
            answer["granted"],
            answer["revoked"]
        ))?;
        for s in output::items(&answer["sample"]["sampled"]) {
            output::line(format!(
                "sampled: {} of {} {} in organization {}",
                s["evaluated"],
                s["total"],
                output::cell(s, "kind"),
                output::cell(s, "organization_id")
            ))?;
        }
        let groups = output::items(&answer["groups"]);
        if groups.is_empty() {
            return output::line("no decision changes");
        }
        let policies = |v: &Value, key: &str| -> String {
            let ids: Vec<&str> = output::items(&v[key])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            }
        };
        output::table_of(
            groups,
            &[
                "ACTION",
                "ROLE",
                "CHANGE",
                "COUNT",
                "POLICIES BEFORE",
                "POLICIES AFTER",
                "EXAMPLE",
            ],
            |g| {
                let example = output::items(&g["examples"])
                    .first()
                    .map(|e| {
                        format!(
                            "{} on {}",
                            output::cell(e, "user"),
                            output::cell(e, "resource")
                        )
                    })
                    .unwrap_or_default();
                vec![
                    output::cell(g, "action"),
                    output::cell(g, "role"),
                    format!(
                        "{} -> {}",
                        output::cell(g, "before"),
                        output::cell(g, "after")
                    ),
                    g["count"].to_string(),
                    policies(g, "policies_before"),
                    policies(g, "policies_after"),
                    example,
                ]
            },
        )
    })
}
