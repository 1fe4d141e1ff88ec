//! The `orgsync` command line: the server, offline policy tools, and client
//! commands that talk to a server's API (`login`, `organizations`, `users`,
//! `groups`, ...; see `client` for where the session comes from and how
//! `--profile` selects one of several stored logins).
//!
//! Global flags, accepted before or after the subcommand: `-o/--output
//! table|json` and `--profile NAME` (`ORGSYNC_PROFILE`). `-O` is short for
//! `--org` everywhere.
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

mod audit;
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
mod roles;
mod session;
mod templates;
mod tokens;
mod users;
mod version;
mod workspaces;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{ServerArgs, ServerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "orgsync",
    version,
    about = "Organizations, IdP sync and Cedar authorization for a developer platform"
)]
pub struct Cli {
    /// Which stored login to use (`orgsync login URL --profile NAME` stores one)
    /// [default: the default profile]
    #[arg(
        long,
        global = true,
        env = client::ENV_PROFILE,
        value_name = "NAME",
        value_parser = client::parse_profile
    )]
    pub profile: Option<String>,
    #[command(flatten)]
    pub out: output::OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The organization a command acts in: `--org ORG` or `-O ORG`.
#[derive(Debug, Clone, Args)]
pub struct OrgArg {
    /// The organization (name or id).
    #[arg(long, short = 'O', value_name = "ORG")]
    pub org: String,
}

/// A duration such as `90s`, `45m`, `12h`, `30d`, `2w` or `1d12h`.
pub fn parse_duration(raw: &str) -> Result<chrono::Duration, String> {
    let bad = || format!("`{raw}` is not a duration such as 90s, 45m, 12h, 30d, 2w or 1d12h");
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in raw.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || total <= 0 {
        return Err(bad());
    }
    chrono::Duration::try_seconds(total).ok_or_else(bad)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the orgsync server (SQLite in ./.orgsync by default, PostgreSQL with --database-url).
    Server(ServerArgs),
    /// Validate, test and format Cedar policy files (offline; no server needed).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Log in to a deployment (password, or `--token` for OIDC users), or create its first user, and store the session.
    Login(login::LoginArgs),
    /// Show who you are logged in as: the server, your user, roles and organizations.
    Whoami,
    /// Log out: revoke the stored session on the server and forget it.
    Logout,
    /// Create, list and delete your API tokens (for scripts, curl, CI, OIDC users' CLI).
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Read the audit log (`orgsync audit [--org O] [--user U] [--action A] ...`).
    Audit(audit::AuditArgs),
    /// Print the CLI's version and commit, and the server's when logged in.
    Version,
    /// Print a shell completion script (`orgsync completion bash > /etc/bash_completion.d/orgsync`).
    Completion(version::CompletionArgs),
    /// Create, list, show, update and delete organizations; manage their members and roles.
    #[command(visible_alias = "orgs")]
    Organizations(orgs::OrgsArgs),
    /// Create, list, suspend, activate and delete users.
    Users(users::UsersArgs),
    /// Create, list, update and delete an organization's groups; add and remove their members.
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
    client::select_profile(cli.profile);
    let out = cli.out;
    match cli.command {
        Command::Server(args) => run_server(&args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Login(args) => login::run(args),
        Command::Whoami => session::whoami(out),
        Command::Logout => session::logout(out),
        Command::Tokens(cmd) => tokens::run(out, cmd),
        Command::Audit(args) => audit::run(out, args),
        Command::Version => version::version(out),
        Command::Completion(args) => version::completion(&args),
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
