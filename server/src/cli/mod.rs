//! The `orgsync` command line: the server, offline policy tools, and client
//! commands that talk to a server's API (`login`, `organizations`, `users`,
//! `groups`; see `client` for where the session comes from).
//!
//! Exit codes:
//! - 0: success.
//! - 1: failure: an API error answer (4xx other than 401, 5xx; its message,
//!   detail and validations go to stderr), the server cannot be reached, a
//!   local I/O error.
//! - 2: usage: bad flags or arguments (clap), or input missing that the CLI may
//!   not prompt for because stdin is not a terminal.
//! - 3: invalid policies or failed policy tests (`orgsync policy ...`).
//! - 4: not authenticated: not logged in, or the server answered 401 (expired
//!   or revoked session, wrong email or password at `orgsync login`).

mod client;
mod groups;
mod idpsync;
mod ldapsync;
mod login;
mod members;
mod orgs;
mod output;
mod policy;
mod provisioner;
mod templates;
mod users;
mod workspaces;

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
    /// Log in to a deployment, or create its first user (site owner), and store the session.
    Login(login::LoginArgs),
    /// Create, list, show and delete organizations; manage their members.
    #[command(visible_alias = "orgs")]
    Organizations(orgs::OrgsArgs),
    /// Create, list, suspend and activate users.
    Users(users::UsersArgs),
    /// Create and list an organization's groups; add and remove their members.
    Groups(groups::GroupsArgs),
    /// Provisioner keys, daemons and jobs (`orgsync provisioner keys|daemons|jobs ...`).
    Provisioner(provisioner::ProvisionerArgs),
    /// Run a provisioner daemon for one organization (`orgsync provisionerd start`).
    Provisionerd(provisioner::ProvisionerdArgs),
    /// Push, list and delete templates; list their versions.
    Templates(templates::TemplatesArgs),
    /// Create a workspace from a template and wait for its build.
    Create(workspaces::CreateArgs),
    /// List your workspaces (with --all, every workspace you may read).
    List(workspaces::ListArgs),
    /// Show a workspace: owner, organization, template, version, latest build.
    Show(workspaces::NameArgs),
    /// Start a workspace (a new `start` build) and wait for its build.
    Start(workspaces::StartArgs),
    /// Stop a workspace and wait for its build.
    Stop(workspaces::NameArgs),
    /// Stop, then start a workspace, waiting for each build.
    Restart(workspaces::StartArgs),
    /// Delete a workspace (destroys its resources; --orphan skips destroy).
    Delete(workspaces::DeleteArgs),
    /// IdP sync tools (`orgsync idpsync preview --claims FILE [--user U]`).
    Idpsync(idpsync::IdpsyncArgs),
    /// LDAP directory sync (`orgsync ldapsync run [--dry-run] [--force]`, `runs`, `show ID`).
    Ldapsync(ldapsync::LdapsyncArgs),
}

/// Exit codes: see the module documentation.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => run_server(&args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Login(args) => login::run(args),
        Command::Organizations(args) => orgs::run(args),
        Command::Users(args) => users::run(args),
        Command::Groups(args) => groups::run(args),
        Command::Provisioner(args) => provisioner::run(args),
        Command::Provisionerd(args) => provisioner::run_daemon(args),
        Command::Templates(args) => templates::run(args),
        Command::Create(args) => workspaces::create(args),
        Command::List(args) => workspaces::list(args),
        Command::Show(args) => workspaces::show(args),
        Command::Start(args) => workspaces::start(args),
        Command::Stop(args) => workspaces::stop(args),
        Command::Restart(args) => workspaces::restart(args),
        Command::Delete(args) => workspaces::delete(args),
        Command::Idpsync(args) => idpsync::run(args),
        Command::Ldapsync(args) => ldapsync::run(args),
    }
}

/// Logs go to standard error: `text` with ANSI colours only when it is a
/// terminal (never escape codes in a file or a journal), or `json`, one object
/// a line.
fn init_tracing(filter: &str, format: crate::config::LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        crate::config::LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

fn run_server(args: &ServerArgs) -> ExitCode {
    let config = match ServerConfig::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log, config.log_format);
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
