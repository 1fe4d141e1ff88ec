//! Startup: bind the listen address, load the policies, open the database,
//! make sure the default org exists, serve the API until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::authz::Authz;
use crate::clock;
use crate::config::ServerConfig;
use crate::db::Db;
use crate::store;

/// Everything a request handler can reach.
pub struct App {
    pub db: Db,
    pub authz: Arc<Authz>,
    pub config: ServerConfig,
    pub jobs: crate::jobs::JobsHub,
    /// This process's identity among replicas (run leases, claimed ticks).
    pub node_id: String,
    /// Cancelled when the server stops: background tasks end with it.
    pub shutdown: tokio_util::sync::CancellationToken,
}

pub type AppState = Arc<App>;

impl App {
    /// What the use cases run against.
    pub fn ctx(&self) -> crate::usecase::Ctx<'_> {
        crate::usecase::Ctx::new(&self.db, &self.authz)
    }

    /// What the job queue service runs against.
    pub fn queue(&self) -> crate::jobs::Queue<'_> {
        crate::jobs::Queue {
            ctx: self.ctx(),
            hub: &self.jobs,
            poll_interval: std::time::Duration::from_millis(self.config.job_poll_interval_ms),
        }
    }

    /// Loads policies first (refusing to start on invalid ones), then opens and
    /// migrates the database and creates the default organization if missing.
    pub async fn init(config: ServerConfig) -> anyhow::Result<AppState> {
        let authz = Authz::load(config.policy_dir.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        // The data dir is private (0700) on both databases; on PostgreSQL
        // nothing in it is needed to serve, so a failure there only warns.
        match (
            private_dir(&config.data_dir),
            sqlite_file(config.database_url.expose()),
        ) {
            (Err(e), Some(_)) => {
                return Err(e).with_context(|| {
                    format!("cannot create data dir `{}`", config.data_dir.display())
                });
            }
            (Err(e), None) => tracing::warn!(
                data_dir = %config.data_dir.display(),
                "cannot create the data dir or make it private: {e}"
            ),
            (Ok(()), _) => {}
        }
        if let Some(file) = sqlite_file(config.database_url.expose()) {
            private_file(&file)
                .with_context(|| format!("cannot create the SQLite file `{}`", file.display()))?;
        }
        // Its errors name the server and the cause (`DbError`).
        let db = Db::open(config.database_url.expose()).await?;
        crate::usecase::orgs::ensure_default(crate::usecase::Ctx::new(&db, &authz))
            .await
            .map_err(|e| startup_error("cannot create the default organization", e))?;
        if let Some(ldap) = &config.ldapsync {
            let ctx = crate::usecase::Ctx::new(&db, &authz);
            crate::ldapsync::apply_file_settings(ctx, ldap, clock::now())
                .await
                .map_err(|e| {
                    startup_error("cannot store the config file's LDAP sync settings", e)
                })?;
        }
        let shutdown = tokio_util::sync::CancellationToken::new();
        let app = Arc::new(App {
            db,
            authz: Arc::new(authz),
            config,
            jobs: crate::jobs::JobsHub::default(),
            node_id: store::new_id(),
            shutdown,
        });
        app.start_background().await?;
        Ok(app)
    }

    /// The directory sync service over this app's database and authorizer.
    pub fn directory_sync(&self) -> crate::ldapsync::DirectorySync {
        crate::ldapsync::DirectorySync::new(
            self.db.clone(),
            self.authz.clone(),
            self.node_id.clone(),
            self.shutdown.clone(),
            crate::ldapsync::RunLimits {
                lease_seconds: self.config.ldapsync_lease_seconds,
                batch_size: self.config.ldapsync_batch_size,
                apply_concurrency: self.config.ldapsync_apply_concurrency,
            },
        )
    }

    /// The job reaper, cross-replica job notifications, the built-in daemons.
    async fn start_background(self: &Arc<Self>) -> anyhow::Result<()> {
        let timeout = std::time::Duration::from_millis(self.config.job_heartbeat_timeout_ms);
        let weak = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = reaper(weak, timeout) => {}
                () = stop.cancelled() => {}
            }
        });
        let weak = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        let url = self.config.database_url.expose().to_owned();
        let dialect = self.db.dialect();
        tokio::spawn(async move {
            let wake = move || {
                if let Some(app) = weak.upgrade() {
                    app.jobs.wake();
                }
            };
            tokio::select! {
                () = Db::listen_jobs(url, dialect, wake) => {}
                () = stop.cancelled() => {}
            }
        });
        let weak = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            // Ends when the app is dropped, or when the server stops.
            let sync = move || weak.upgrade().map(|app| app.directory_sync());
            tokio::select! {
                () = crate::ldapsync::scheduler(sync) => {}
                () = stop.cancelled() => {}
            }
        });
        crate::provisioner::builtin::start(
            self,
            self.config.provisioner_daemons,
            self.shutdown.clone(),
        )
        .await
        .context("cannot start the built-in provisioner daemons")?;
        Ok(())
    }
}

/// The file of a SQLite URL (`sqlite://PATH` or `sqlite:PATH`, options after
/// `?`); `None` for PostgreSQL and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || options.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Mode bits of the data dir and of the SQLite file (and its `-wal`/`-shm`).
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) readable by this user only, and tightens an
/// existing one that group or others could read: it holds the database, with
/// password hashes and the LDAP bind password.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        tighten(dir, DIR_MODE)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates the SQLite file readable by this user only (before SQLite creates
/// it with the umask's mode), and tightens an existing one and its `-wal` and
/// `-shm` companions.
fn private_file(file: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            private_dir(parent)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(file)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        tighten(file, FILE_MODE)?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = file.as_os_str().to_owned();
            companion.push(suffix);
            let companion = std::path::PathBuf::from(companion);
            if companion.exists() {
                tighten(&companion, FILE_MODE)?;
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// Sets `mode` on `path` when group or others have any access to it (or when
/// the owner lacks a bit of `mode`), with a warning for an existing path.
#[cfg(unix)]
fn tighten(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current != mode {
        if current & 0o077 != 0 {
            tracing::warn!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"),
                "tightening the permissions of the data dir / database file");
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A use case's failure at startup, with its internal cause.
fn startup_error(what: &str, e: crate::error::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: {}{}",
        e.body.message,
        e.internal.map(|c| format!(" ({c})")).unwrap_or_default()
    )
}

/// A server bound to its port, serving until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(dir) = state.authz.policy_dir().cloned() {
        tokio::spawn(watch_policies(state.clone(), dir));
    }
    let router = crate::api::router(state.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("server failed")?;
    state.shutdown.cancel();
    state.db.close().await;
    Ok(())
}

/// `orgsync server`: runs until SIGINT/SIGTERM; SIGHUP reloads the policies.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let listen = config.listen;
    // The address first: a port already taken fails before anything is
    // created on disk (the data dir, the SQLite file) or migrated.
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let state = App::init(config).await?;
    let engine = state.authz.engine();
    tracing::info!(
        %listen,
        access_url = %state.config.access_url,
        policies = engine.policies().len(),
        policy_hash = engine.hash(),
        "orgsync is serving"
    );
    // The bound address, whatever the log filter: with `--listen HOST:0` this
    // line is how a supervisor (or the e2e process harness,
    // `tests/e2e/process.rs`) learns the port the system picked.
    // With `--log-format json` it is a JSON line like every other, with the
    // same message and the address as a field of its own.
    let bound = listener.local_addr()?;
    match state.config.log_format {
        crate::config::LogFormat::Text => eprintln!("orgsync listening on http://{bound}"),
        crate::config::LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": crate::clock::fmt(crate::clock::now()),
                "level": "INFO",
                "fields": {"message": format!("orgsync listening on http://{bound}"), "address": bound.to_string()},
                "target": "orgsync::app",
            })
        ),
    }
    #[cfg(unix)]
    {
        let reload_state = state.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                if let Err(e) = reload_state.authz.reload() {
                    tracing::error!("policy reload rejected, keeping the running policies:\n{e}");
                }
            }
        });
    }
    serve(state, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Fingerprint of a policy directory: every file's path, size and mtime.
fn fingerprint(
    dir: &std::path::Path,
) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => out.push((path, m.len(), m.modified().ok())),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Reloads the policies when a file of the policy directory changes (polled
/// every second). A set that fails validation is rejected; the running one stays.
async fn watch_policies(state: AppState, dir: std::path::PathBuf) {
    let mut last = fingerprint(&dir);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if state.shutdown.is_cancelled() {
            return;
        }
        let now = fingerprint(&dir);
        if now != last {
            last = now;
            match state.authz.reload() {
                Ok(engine) => {
                    tracing::info!(hash = engine.hash(), "policy files changed: reloaded")
                }
                Err(e) => tracing::error!(
                    "policy files changed but are invalid; keeping the running policies:\n{e}"
                ),
            }
        }
    }
}

impl crate::jobs::QueueHandle for App {
    fn queue(&self) -> crate::jobs::Queue<'_> {
        App::queue(self)
    }
}

/// The job reaper: every quarter of `timeout` (between 200 ms and 10 s) fails
/// the jobs whose daemon stopped heartbeating for `timeout`; runs until the app
/// is dropped.
async fn reaper(app: std::sync::Weak<App>, timeout: std::time::Duration) {
    let period = (timeout / 4).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(10),
    );
    loop {
        tokio::time::sleep(period).await;
        let Some(app) = app.upgrade() else { return };
        if let Err(e) = crate::jobs::reap(app.ctx(), timeout, clock::now()).await {
            tracing::error!(
                "job reaper: {}",
                e.internal.as_deref().unwrap_or(&e.body.message)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::sqlite_file;

    #[test]
    fn sqlite_files_of_urls() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/orgsync/orgsync.db"),
            Some(PathBuf::from("/var/lib/orgsync/orgsync.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://data/o.db?mode=rwc"),
            Some(PathBuf::from("data/o.db"))
        );
        assert_eq!(sqlite_file("sqlite:o.db"), Some(PathBuf::from("o.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://postgres@127.0.0.1/orgsync"), None);
    }
}
