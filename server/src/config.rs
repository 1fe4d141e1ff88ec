//! Server configuration. Layering: defaults < config file (TOML) < `ORGSYNC_*`
//! environment < flags. Unknown keys in the file are an error. Loading has no
//! side effects (the data dir is created by the server at start, not here).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::secrets::Secret;

/// `orgsync server` flags. Every flag also reads its `ORGSYNC_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Address to listen on: `HOST:PORT`, the host a name or an IP address [default: 127.0.0.1:3000]
    #[arg(long, env = "ORGSYNC_LISTEN", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Directory for local state; holds the SQLite database by default [default: ./.orgsync]
    #[arg(long, env = "ORGSYNC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `postgres://...` or `sqlite://PATH` [default: SQLite in the data dir]
    #[arg(long, env = "ORGSYNC_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The URL users reach this server at (for redirects and links) [default: http://LISTEN]
    #[arg(long, env = "ORGSYNC_ACCESS_URL")]
    pub access_url: Option<String>,
    /// Directory of Cedar schema, policies and policy tests [default: the policies built into the binary]
    #[arg(long, env = "ORGSYNC_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// TOML config file; its keys are the long flag names with `_` for `-`
    #[arg(long, env = "ORGSYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Number of built-in provisioner daemons (they serve the default org only) [default: 3]
    #[arg(long, env = "ORGSYNC_PROVISIONER_DAEMONS")]
    pub provisioner_daemons: Option<u32>,
    /// Lifetime of a login session in seconds, extended on use [default: 86400]
    #[arg(long, env = "ORGSYNC_SESSION_LIFETIME_SECONDS")]
    pub session_lifetime_seconds: Option<i64>,
    /// Maximum size of a JSON request body in bytes [default: 1048576]
    #[arg(long, env = "ORGSYNC_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Log filter (tracing `EnvFilter` syntax) [default: info]
    #[arg(long, env = "ORGSYNC_LOG")]
    pub log: Option<String>,
    /// Log line format: `text` (colours only on a terminal) or `json` (one object per line) [default: text]
    #[arg(long, env = "ORGSYNC_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A running job whose daemon sent no heartbeat for this long fails, in milliseconds [default: 60000]
    #[arg(long, env = "ORGSYNC_JOB_HEARTBEAT_TIMEOUT_MS")]
    pub job_heartbeat_timeout_ms: Option<u64>,
    /// An idle daemon waiting for a job looks at the queue this often even
    /// when no notification woke it (a safety net for a lost notification),
    /// in milliseconds [default: 5000]
    #[arg(long, env = "ORGSYNC_JOB_POLL_INTERVAL_MS")]
    pub job_poll_interval_ms: Option<u64>,
    /// A directory sync run whose replica sent no heartbeat for this long is
    /// considered dead: the next run may start (and marks it failed), in seconds [default: 30]
    #[arg(long, env = "ORGSYNC_LDAPSYNC_LEASE_SECONDS")]
    pub ldapsync_lease_seconds: Option<u64>,
    /// Users per transaction when a directory sync applies its changes [default: 250]
    #[arg(long, env = "ORGSYNC_LDAPSYNC_BATCH_SIZE")]
    pub ldapsync_batch_size: Option<usize>,
    /// Batches a directory sync applies side by side, each in its own
    /// transaction and connection (PostgreSQL; SQLite applies one at a time) [default: 2]
    #[arg(long, env = "ORGSYNC_LDAPSYNC_APPLY_CONCURRENCY")]
    pub ldapsync_apply_concurrency: Option<usize>,
    /// Boxed: the OIDC flags would make every `ServerArgs` (and the CLI's
    /// command enum) much larger.
    #[command(flatten)]
    pub oidc: Box<OidcArgs>,
    /// Boxed like the OIDC flags.
    #[command(flatten)]
    pub throttle: Box<ThrottleArgs>,
}

/// Login throttling flags, and who the client is.
#[derive(Debug, Clone, Default, Args)]
pub struct ThrottleArgs {
    /// Failed logins per account (normalized email) within a window before
    /// logins to it are refused with 429; 0: no limit [default: 10]
    #[arg(long, env = "ORGSYNC_LOGIN_MAX_FAILURES_PER_ACCOUNT")]
    pub login_max_failures_per_account: Option<u32>,
    /// Failed logins per client address within a window before logins from it
    /// are refused with 429; 0: no limit [default: 50]
    #[arg(long, env = "ORGSYNC_LOGIN_MAX_FAILURES_PER_ADDRESS")]
    pub login_max_failures_per_address: Option<u32>,
    /// Length of a login throttling window in seconds; it opens at the first
    /// failure [default: 300]
    #[arg(long, env = "ORGSYNC_LOGIN_FAILURE_WINDOW_SECONDS")]
    pub login_failure_window_seconds: Option<u64>,
    /// Reverse proxies whose `X-Forwarded-For` is believed, comma-separated IP
    /// addresses or CIDR prefixes (`10.0.0.0/8`) [default: none; the socket
    /// peer is the client]
    #[arg(long, env = "ORGSYNC_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
}

/// OIDC login flags (`ORGSYNC_OIDC_*`). Login is enabled when the issuer URL
/// and the client id are both set.
#[derive(Debug, Clone, Default, Args)]
pub struct OidcArgs {
    /// The OpenID Provider's issuer URL (exactly as its discovery document says)
    #[arg(long, env = "ORGSYNC_OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,
    /// The client id registered at the provider
    #[arg(long, env = "ORGSYNC_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The client secret (sent with HTTP Basic auth to the token endpoint)
    #[arg(long, env = "ORGSYNC_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Scopes to request, separated by spaces or commas [default: openid profile email]
    #[arg(long, env = "ORGSYNC_OIDC_SCOPES")]
    pub oidc_scopes: Option<String>,
    /// The claim a new user's username comes from [default: preferred_username]
    #[arg(long, env = "ORGSYNC_OIDC_USERNAME_CLAIM")]
    pub oidc_username_claim: Option<String>,
    /// The claim holding the user's email address [default: email]
    #[arg(long, env = "ORGSYNC_OIDC_EMAIL_CLAIM")]
    pub oidc_email_claim: Option<String>,
    /// Only users in one of these groups (comma-separated) may log in [default: anyone]
    #[arg(long, env = "ORGSYNC_OIDC_ALLOWED_GROUPS")]
    pub oidc_allowed_groups: Option<String>,
    /// The claim `oidc_allowed_groups` is checked against [default: groups]
    #[arg(long, env = "ORGSYNC_OIDC_ALLOWED_GROUPS_FIELD")]
    pub oidc_allowed_groups_field: Option<String>,
    /// Where the browser goes after a login (a path on this server) [default: /]
    #[arg(long, env = "ORGSYNC_OIDC_POST_LOGIN_REDIRECT")]
    pub oidc_post_login_redirect: Option<String>,
    /// Treat every email from the provider as verified (links accounts by email) [default: false]
    #[arg(long, env = "ORGSYNC_OIDC_IGNORE_EMAIL_VERIFIED", num_args = 0..=1, default_missing_value = "true")]
    pub oidc_ignore_email_verified: Option<bool>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, message, fields, spans).
    Json,
}

/// `--listen`: `HOST:PORT` where the host is an IP address or a name
/// (`localhost:3000`), resolved once at start; the first address wins.
pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if value
        .rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "`{value}` is not HOST:PORT (for example 127.0.0.1:3000 or localhost:3000)"
        ));
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("`{value}`: the host name has no address")),
        Err(e) => Err(format!("`{value}`: cannot resolve the host name: {e}")),
    }
}

fn listen_from_file<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    value
        .map(|v| parse_listen(&v).map_err(serde::de::Error::custom))
        .transpose()
}

/// The config file: the same keys as the flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, deserialize_with = "listen_from_file")]
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub access_url: Option<String>,
    pub policy_dir: Option<PathBuf>,
    pub provisioner_daemons: Option<u32>,
    pub session_lifetime_seconds: Option<i64>,
    pub max_body_bytes: Option<usize>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    pub job_heartbeat_timeout_ms: Option<u64>,
    pub job_poll_interval_ms: Option<u64>,
    pub ldapsync_lease_seconds: Option<u64>,
    pub ldapsync_batch_size: Option<usize>,
    pub ldapsync_apply_concurrency: Option<usize>,
    pub login_max_failures_per_account: Option<u32>,
    pub login_max_failures_per_address: Option<u32>,
    pub login_failure_window_seconds: Option<u64>,
    pub trusted_proxies: Option<String>,
    /// LDAP sync settings (SPEC §5) applied at start when they differ from the
    /// stored ones; the API can still change them until the next start.
    pub ldapsync: Option<orgsync_sync::ldap::LdapSettings>,
    pub oidc_issuer_url: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<Secret>,
    pub oidc_scopes: Option<String>,
    pub oidc_username_claim: Option<String>,
    pub oidc_email_claim: Option<String>,
    pub oidc_allowed_groups: Option<String>,
    pub oidc_allowed_groups_field: Option<String>,
    pub oidc_post_login_redirect: Option<String>,
    pub oidc_ignore_email_verified: Option<bool>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Secret,
    pub access_url: String,
    pub policy_dir: Option<PathBuf>,
    pub provisioner_daemons: u32,
    pub session_lifetime_seconds: i64,
    pub max_body_bytes: usize,
    pub log: String,
    pub log_format: LogFormat,
    pub job_heartbeat_timeout_ms: u64,
    /// How often an idle daemon re-checks the queue without a notification.
    pub job_poll_interval_ms: u64,
    pub ldapsync_lease_seconds: u64,
    pub ldapsync_batch_size: usize,
    pub ldapsync_apply_concurrency: usize,
    /// Login throttling: failures allowed per account and per client address
    /// in a window (0: no limit), and the window's length.
    pub login_max_failures_per_account: u32,
    pub login_max_failures_per_address: u32,
    pub login_failure_window_seconds: u64,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ProxyNet>,
    /// LDAP sync settings from the config file, validated.
    pub ldapsync: Option<orgsync_sync::ldap::LdapSettings>,
    /// OIDC login; `None` when not configured.
    pub oidc: Option<OidcConfig>,
}

/// Resolved OIDC login settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub email_claim: String,
    /// Empty: anyone may log in.
    pub allowed_groups: Vec<String>,
    pub allowed_groups_field: String,
    /// A path on this server.
    pub post_login_redirect: String,
    pub ignore_email_verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file `{path}`: {message}")]
    Parse { path: String, message: String },
    #[error(
        "config file `{path}` is writable by users other than its owner (mode {mode:o}): it \
         holds settings and secrets that are authority over the whole deployment; \
         `chmod o-w,g-w` it"
    )]
    Shared { path: String, mode: u32 },
    #[error("invalid setting `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// A config file others may write would let them write the deployment's
/// settings (directory sync, OIDC secrets): refuse it, as sshd refuses shared
/// `authorized_keys`.
fn check_not_shared(path: &std::path::Path) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o022 != 0 {
            return Err(ConfigError::Shared {
                path: path.display().to_string(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

/// Parses a config file; an error names the line (and column) and the key:
/// `line 3, column 23: key `provisioner_daemons`: invalid type: ...`, or for
/// an unknown key `line 1, column 1: unknown field `lissten`, expected ...`.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize::<_, FileConfig>(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let mut out = String::new();
        if let Some(span) = inner.span() {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit_once('\n')
                .map_or(before, |(_, l)| l)
                .chars()
                .count()
                + 1;
            out.push_str(&format!("line {line}, column {column}: "));
        }
        if !key.is_empty() && key != "." && key != "?" {
            out.push_str(&format!("key `{key}`: "));
        }
        out.push_str(inner.message().trim_end());
        out
    })
}

impl ServerConfig {
    /// Resolves flags/env (`args`) over the config file over defaults.
    pub fn resolve(args: &ServerArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                check_not_shared(path)?;
                parse_file(&text).map_err(|message| ConfigError::Parse {
                    path: path.display().to_string(),
                    message,
                })?
            }
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    fn merge(args: &ServerArgs, file: FileConfig) -> Result<Self, ConfigError> {
        let oidc = resolve_oidc(&args.oidc, &file)?;
        let ldapsync = file.ldapsync.clone();
        if let Some(l) = &ldapsync
            && let Err(errors) = l.validate()
        {
            let message = errors
                .iter()
                .map(|e| format!("`{}`: {}", e.field, e.detail))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ConfigError::Invalid {
                field: "ldapsync",
                message,
            });
        }
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(".orgsync"));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("orgsync.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                field: "database_url",
                message: "must start with `sqlite:` or `postgres://`".to_owned(),
            });
        }
        let access_url = args
            .access_url
            .clone()
            .or(file.access_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let has_host = reqwest::Url::parse(&access_url).is_ok_and(|u| u.host().is_some());
        if !(access_url.starts_with("http://") || access_url.starts_with("https://")) || !has_host {
            return Err(ConfigError::Invalid {
                field: "access_url",
                message: format!("`{access_url}` is not an http(s) URL"),
            });
        }
        let login_failure_window_seconds = args
            .throttle
            .login_failure_window_seconds
            .or(file.login_failure_window_seconds)
            .unwrap_or(300);
        if !(1..=86_400).contains(&login_failure_window_seconds) {
            return Err(ConfigError::Invalid {
                field: "login_failure_window_seconds",
                message: "must be between 1 and 86400".to_owned(),
            });
        }
        let trusted_proxies = match args
            .throttle
            .trusted_proxies
            .as_ref()
            .or(file.trusted_proxies.as_ref())
        {
            Some(list) => split_list(list, true)
                .iter()
                .map(|s| ProxyNet::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| ConfigError::Invalid {
                    field: "trusted_proxies",
                    message,
                })?,
            None => Vec::new(),
        };
        let session_lifetime_seconds = args
            .session_lifetime_seconds
            .or(file.session_lifetime_seconds)
            .unwrap_or(86_400);
        if session_lifetime_seconds <= 0 {
            return Err(ConfigError::Invalid {
                field: "session_lifetime_seconds",
                message: "must be positive".to_owned(),
            });
        }
        Ok(Self {
            listen,
            data_dir,
            database_url: Secret::new(database_url),
            access_url: access_url.trim_end_matches('/').to_owned(),
            policy_dir: args.policy_dir.clone().or(file.policy_dir),
            provisioner_daemons: args
                .provisioner_daemons
                .or(file.provisioner_daemons)
                .unwrap_or(3),
            session_lifetime_seconds,
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1 << 20),
            log: args
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            job_heartbeat_timeout_ms: args
                .job_heartbeat_timeout_ms
                .or(file.job_heartbeat_timeout_ms)
                .unwrap_or(60_000)
                .max(100),
            job_poll_interval_ms: args
                .job_poll_interval_ms
                .or(file.job_poll_interval_ms)
                .unwrap_or(5_000)
                .clamp(10, 86_400_000),
            ldapsync_lease_seconds: args
                .ldapsync_lease_seconds
                .or(file.ldapsync_lease_seconds)
                .unwrap_or(30)
                .max(1),
            ldapsync_batch_size: args
                .ldapsync_batch_size
                .or(file.ldapsync_batch_size)
                .unwrap_or(250)
                .clamp(1, 10_000),
            ldapsync_apply_concurrency: args
                .ldapsync_apply_concurrency
                .or(file.ldapsync_apply_concurrency)
                .unwrap_or(2)
                .clamp(1, 8),
            login_max_failures_per_account: args
                .throttle
                .login_max_failures_per_account
                .or(file.login_max_failures_per_account)
                .unwrap_or(10),
            login_max_failures_per_address: args
                .throttle
                .login_max_failures_per_address
                .or(file.login_max_failures_per_address)
                .unwrap_or(50),
            login_failure_window_seconds,
            trusted_proxies,
            ldapsync,
            oidc,
        })
    }
}

/// An IP address or CIDR prefix (`10.0.0.0/8`, `fd00::/8`) of trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    pub fn parse(s: &str) -> Result<ProxyNet, String> {
        let bad = || format!("`{s}` is not an IP address or CIDR prefix");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(ProxyNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
            IpAddr::V6(v6) => u128::from(v6),
        };
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        bits(ip) & mask == bits(self.addr) & mask
    }
}

/// Splits a list setting on commas (and, with `spaces`, whitespace); drops empty items.
fn split_list(raw: &str, spaces: bool) -> Vec<String> {
    raw.split(|c: char| c == ',' || (spaces && c.is_whitespace()))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn resolve_oidc(args: &OidcArgs, file: &FileConfig) -> Result<Option<OidcConfig>, ConfigError> {
    let pick = |flag: &Option<String>, key: &Option<String>| {
        flag.clone()
            .or_else(|| key.clone())
            .filter(|s| !s.trim().is_empty())
    };
    let issuer = pick(&args.oidc_issuer_url, &file.oidc_issuer_url);
    let client_id = pick(&args.oidc_client_id, &file.oidc_client_id);
    let (issuer_url, client_id) = match (issuer, client_id) {
        (None, None) => return Ok(None),
        (Some(i), Some(c)) => (i, c),
        (None, Some(_)) => {
            return Err(ConfigError::Invalid {
                field: "oidc_issuer_url",
                message: "is required when `oidc_client_id` is set".to_owned(),
            });
        }
        (Some(_), None) => {
            return Err(ConfigError::Invalid {
                field: "oidc_client_id",
                message: "is required when `oidc_issuer_url` is set".to_owned(),
            });
        }
    };
    if !(issuer_url.starts_with("http://") || issuer_url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            field: "oidc_issuer_url",
            message: format!("`{issuer_url}` is not an http(s) URL"),
        });
    }
    let client_secret = args
        .oidc_client_secret
        .clone()
        .map(Secret::new)
        .or_else(|| file.oidc_client_secret.clone())
        .filter(|s| !s.is_empty());
    let scopes = split_list(
        &pick(&args.oidc_scopes, &file.oidc_scopes)
            .unwrap_or_else(|| "openid profile email".to_owned()),
        true,
    );
    let text = |flag: &Option<String>, key: &Option<String>, default: &str| {
        pick(flag, key)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| default.to_owned())
    };
    let post_login_redirect = text(
        &args.oidc_post_login_redirect,
        &file.oidc_post_login_redirect,
        "/",
    );
    if !is_local_path(&post_login_redirect) {
        return Err(ConfigError::Invalid {
            field: "oidc_post_login_redirect",
            message: format!("`{post_login_redirect}` is not a path on this server (like `/`)"),
        });
    }
    Ok(Some(OidcConfig {
        issuer_url,
        client_id,
        client_secret,
        scopes,
        username_claim: text(
            &args.oidc_username_claim,
            &file.oidc_username_claim,
            "preferred_username",
        ),
        email_claim: text(&args.oidc_email_claim, &file.oidc_email_claim, "email"),
        allowed_groups: pick(&args.oidc_allowed_groups, &file.oidc_allowed_groups)
            .map(|g| split_list(&g, false))
            .unwrap_or_default(),
        allowed_groups_field: text(
            &args.oidc_allowed_groups_field,
            &file.oidc_allowed_groups_field,
            "groups",
        ),
        post_login_redirect,
        ignore_email_verified: args
            .oidc_ignore_email_verified
            .or(file.oidc_ignore_email_verified)
            .unwrap_or(false),
    }))
}

/// Whether `s` is a path on this server: starts with one `/`, no scheme or
/// host (`//evil`), no backslash (`/\evil`), no control characters. Guards
/// post-login redirects.
pub fn is_local_path(s: &str) -> bool {
    s.starts_with('/') && !s.starts_with("//") && !s.chars().any(|c| c.is_control() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_config_file_others_may_write_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("orgsync.toml");
        std::fs::write(&path, "provisioner_daemons = 1\n")?;
        let args = ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        for (mode, ok) in [(0o600, true), (0o644, true), (0o664, false), (0o646, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            match ServerConfig::resolve(&args) {
                Ok(c) => {
                    assert!(ok, "mode {mode:o} accepted");
                    assert_eq!(c.provisioner_daemons, 1);
                }
                Err(e) => {
                    assert!(!ok, "mode {mode:o} refused: {e}");
                    assert!(matches!(e, ConfigError::Shared { .. }), "{e}");
                    assert!(
                        e.to_string()
                            .contains("writable by users other than its owner")
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn flags_beat_file_beats_defaults() -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:4000\"\ndata_dir = \"/tmp/x\"\nprovisioner_daemons = 1\n",
        )
        .map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.to_string(),
        })?;
        let args = ServerArgs {
            provisioner_daemons: Some(5),
            ..Default::default()
        };
        let c = ServerConfig::merge(&args, file)?;
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.provisioner_daemons, 5);
        assert_eq!(c.database_url.expose(), "sqlite:///tmp/x/orgsync.db");
        assert_eq!(c.access_url, "http://127.0.0.1:4000");
        Ok(())
    }

    #[test]
    fn oidc_is_enabled_by_issuer_and_client_id() -> Result<(), ConfigError> {
        assert_eq!(
            ServerConfig::merge(&ServerArgs::default(), FileConfig::default())?.oidc,
            None
        );
        let file: FileConfig = toml::from_str(
            "oidc_issuer_url = \"https://idp.example.com\"\noidc_client_id = \"file\"\n\
             oidc_client_secret = \"s3cret\"\noidc_allowed_groups = \"eng, ops\"\n",
        )
        .map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.to_string(),
        })?;
        let mut args = ServerArgs::default();
        args.oidc.oidc_client_id = Some("flag".into());
        args.oidc.oidc_scopes = Some("openid,email groups".into());
        let c = ServerConfig::merge(&args, file)?
            .oidc
            .ok_or_else(|| ConfigError::Parse {
                path: "t".into(),
                message: "oidc missing".into(),
            })?;
        assert_eq!(c.client_id, "flag");
        assert_eq!(c.scopes, ["openid", "email", "groups"]);
        assert_eq!(c.allowed_groups, ["eng", "ops"]);
        assert_eq!(c.username_claim, "preferred_username");
        assert_eq!(c.allowed_groups_field, "groups");
        assert_eq!(c.post_login_redirect, "/");
        assert!(!c.ignore_email_verified);
        assert_eq!(c.client_secret.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        Ok(())
    }

    #[test]
    fn oidc_settings_are_checked() {
        let only_issuer = ServerArgs {
            oidc: Box::new(OidcArgs {
                oidc_issuer_url: Some("https://idp.example.com".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(ServerConfig::merge(&only_issuer, FileConfig::default()).is_err());
        let mut bad_redirect = only_issuer.clone();
        bad_redirect.oidc.oidc_client_id = Some("c".into());
        bad_redirect.oidc.oidc_post_login_redirect = Some("//evil.example.com".into());
        assert!(ServerConfig::merge(&bad_redirect, FileConfig::default()).is_err());
        for ok in ["/", "/workspaces?x=1"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in ["", "https://x", "//x", "/\\x", "x", "/a\nb"] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn login_throttle_settings_layer_and_are_checked() -> Result<(), ConfigError> {
        let c = ServerConfig::merge(&ServerArgs::default(), FileConfig::default())?;
        assert_eq!(
            (
                c.login_max_failures_per_account,
                c.login_max_failures_per_address,
                c.login_failure_window_seconds
            ),
            (10, 50, 300)
        );
        assert!(c.trusted_proxies.is_empty());
        let file: FileConfig = toml::from_str(
            "login_max_failures_per_account = 3\nlogin_failure_window_seconds = 60\n\
             trusted_proxies = \"10.0.0.0/8, ::1\"\n",
        )
        .map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.to_string(),
        })?;
        let mut args = ServerArgs::default();
        args.throttle.login_failure_window_seconds = Some(2);
        let c = ServerConfig::merge(&args, file)?;
        assert_eq!(c.login_max_failures_per_account, 3);
        assert_eq!(c.login_failure_window_seconds, 2);
        assert_eq!(c.trusted_proxies.len(), 2);
        for bad in [
            ServerArgs {
                throttle: Box::new(ThrottleArgs {
                    login_failure_window_seconds: Some(0),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ServerArgs {
                throttle: Box::new(ThrottleArgs {
                    trusted_proxies: Some("10.0.0.0/33".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ServerArgs {
                access_url: Some("https://".into()),
                ..Default::default()
            },
        ] {
            assert!(
                ServerConfig::merge(&bad, FileConfig::default()).is_err(),
                "{bad:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn proxy_nets_match_their_prefix() -> Result<(), String> {
        let ip = |s: &str| s.parse::<IpAddr>().map_err(|e| e.to_string());
        let net = ProxyNet::parse("10.1.0.0/16")?;
        assert!(net.contains(ip("10.1.200.3")?));
        assert!(net.contains(ip("::ffff:10.1.0.1")?));
        assert!(!net.contains(ip("10.2.0.1")?));
        assert!(!net.contains(ip("::1")?));
        assert!(ProxyNet::parse("0.0.0.0/0")?.contains(ip("192.0.2.1")?));
        assert!(ProxyNet::parse("127.0.0.1")?.contains(ip("127.0.0.1")?));
        assert!(!ProxyNet::parse("127.0.0.1")?.contains(ip("127.0.0.2")?));
        assert!(ProxyNet::parse("fd00::/8")?.contains(ip("fd12::1")?));
        assert!(!ProxyNet::parse("fd00::/8")?.contains(ip("fe80::1")?));
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0.0/x",
        ] {
            assert!(ProxyNet::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("lissten = \"x\"").is_err());
    }

    #[test]
    fn file_errors_name_the_line_and_the_key() {
        for (text, starts, names) in [
            (
                "listen = \"127.0.0.1:3000\"\nlissten = \"x\"\n",
                "line 2, column 1: ",
                "unknown field `lissten`",
            ),
            (
                "# daemons\n\nprovisioner_daemons = \"three\"\n",
                "line 3, column 23: ",
                "key `provisioner_daemons`: invalid type",
            ),
            ("[ldapsync]\nurl = 3\n", "line 2, ", "key `ldapsync.url`"),
            (
                "log = \"info\"\nlog_format = \"yaml\"\n",
                "line 2, ",
                "key `log_format`",
            ),
        ] {
            let e = parse_file(text).err().unwrap_or_default();
            assert!(e.starts_with(starts), "{text}: {e}");
            assert!(e.contains(names), "{text}: {e}");
        }
    }

    #[test]
    fn bad_database_url_is_refused() {
        let args = ServerArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(ServerConfig::merge(&args, FileConfig::default()).is_err());
    }
}
