//! `orgsync version` (the CLI's, and the server's when logged in) and
//! `orgsync completion bash|zsh|fish`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, ValueEnum};
use serde_json::{Value, json};

use super::client::{self, ApiClient, url_text};
use super::output::{self, OutputArgs, cell};

/// The commit the binary was built from (`unknown` outside a git checkout).
const COMMIT: &str = env!("ORGSYNC_COMMIT");

/// `orgsync version`: never fails for want of a server; the server's build
/// info (`GET /buildinfo`) is asked for only when logged in, for at most 5 s.
pub fn version(out: OutputArgs) -> ExitCode {
    client::run(async move {
        let server = match client::resolve_target() {
            Err(_) => Value::Null,
            Ok((url, token)) => {
                let info =
                    match ApiClient::with_timeout(url.clone(), Some(token), Duration::from_secs(5))
                    {
                        Ok(api) => api.get(&["buildinfo"]).await,
                        Err(e) => Err(e),
                    };
                match info {
                    Ok(info) => json!({"url": url_text(&url), "buildinfo": info}),
                    Err(e) => json!({"url": url_text(&url), "error": format!("{e:#}")}),
                }
            }
        };
        let answer = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": COMMIT,
            "server": server,
        });
        out.show(&answer, || {
            let mut lines = vec![
                ("Version", env!("CARGO_PKG_VERSION").to_owned()),
                ("Commit", COMMIT.to_owned()),
            ];
            if !server.is_null() {
                lines.push(("Server", cell(&server, "url")));
            }
            match server.get("buildinfo") {
                Some(info) => {
                    lines.push(("Server version", cell(info, "version")));
                    lines.push(("Server commit", cell(info, "commit")));
                    lines.push(("Policies hash", cell(info, "policy_hash")));
                }
                None if !server.is_null() => {
                    lines.push(("Server error", cell(&server, "error")));
                }
                None => {}
            }
            output::fields(&lines)
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `orgsync completion SHELL`: the script on stdout.
pub fn completion(args: &CompletionArgs) -> ExitCode {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "orgsync", &mut script);
    match output::write_stdout(&String::from_utf8_lossy(&script)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            client::report(&e);
            ExitCode::from(client::EXIT_FAILURE)
        }
    }
}
