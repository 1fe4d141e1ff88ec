//! `orgsync policy validate|test|fmt`: the policy workflow, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use orgsync_policy::{Engine, PolicySources, format_policies, testing::run_tests};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and strictly validate the schema and policies; exit 3 when invalid.
    Validate(DirArg),
    /// Run the cases of `tests/*.json`; exit 3 when a case fails.
    Test(DirArg),
    /// Format the policy files in place (`--check`: only report, exit 3 if unformatted).
    Fmt(FmtArgs),
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
    match run_inner(cmd) {
        Ok(code) | Err(code) => code,
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
