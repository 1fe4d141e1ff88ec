//! The `orgsync` command line: the server, offline policy tools, and client
//! commands that talk to a server's API.

mod policy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ServerArgs, ServerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "orgsync",
    version,
    about = "Organizations, IdP sync and Cedar authorization for a developer platform"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the orgsync server (SQLite in ./.orgsync by default, PostgreSQL with --database-url).
    Server(ServerArgs),
    /// Validate, test and format Cedar policy files (offline; no server needed).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// Exit codes: 0 ok, 1 failure, 2 usage (clap), 3 invalid policies / failed policy tests.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => run_server(&args),
        Command::Policy(cmd) => policy::run(cmd),
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_server(args: &ServerArgs) -> ExitCode {
    let config = match ServerConfig::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
