//! Server configuration. Layering: defaults < config file (TOML) < `ORGSYNC_*`
//! environment < flags. Unknown keys in the file are an error. Loading has no
//! side effects (the data dir is created by the server at start, not here).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::secrets::Secret;

/// `orgsync server` flags. Every flag also reads its `ORGSYNC_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:3000]
    #[arg(long, env = "ORGSYNC_LISTEN")]
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
    /// A running job whose daemon sent no heartbeat for this long fails, in milliseconds [default: 60000]
    #[arg(long, env = "ORGSYNC_JOB_HEARTBEAT_TIMEOUT_MS")]
    pub job_heartbeat_timeout_ms: Option<u64>,
}

/// The config file: the same keys as the flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub access_url: Option<String>,
    pub policy_dir: Option<PathBuf>,
    pub provisioner_daemons: Option<u32>,
    pub session_lifetime_seconds: Option<i64>,
    pub max_body_bytes: Option<usize>,
    pub log: Option<String>,
    pub job_heartbeat_timeout_ms: Option<u64>,
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
    pub job_heartbeat_timeout_ms: u64,
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
    #[error("invalid setting `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
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
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    fn merge(args: &ServerArgs, file: FileConfig) -> Result<Self, ConfigError> {
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
        if !(access_url.starts_with("http://") || access_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                field: "access_url",
                message: format!("`{access_url}` is not an http(s) URL"),
            });
        }
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
            job_heartbeat_timeout_ms: args
                .job_heartbeat_timeout_ms
                .or(file.job_heartbeat_timeout_ms)
                .unwrap_or(60_000)
                .max(100),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("lissten = \"x\"").is_err());
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
