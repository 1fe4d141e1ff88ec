//! The database: one pool over SQLite or PostgreSQL through sqlx's `Any` driver.
//!
//! Business logic never branches on the database. The few statements that differ
//! per dialect live in [`Dialect`], here and nowhere else.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions as _, Connection as _, Executor};

/// A transaction; every use case that writes runs in exactly one.
pub type Tx = sqlx::Transaction<'static, Any>;

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of_url(url: &str) -> Dialect {
        if url.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }

    /// The statement that opens a write transaction. SQLite takes the write lock
    /// up front so that two writers wait (busy timeout) instead of deadlocking on
    /// a read-to-write upgrade.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// The row-locking clause of the job queue's candidate scan.
    pub fn skip_locked(self) -> &'static str {
        match self {
            // SQLite has one writer at a time (BEGIN IMMEDIATE): nothing to skip.
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Per-connection settings.
    fn on_connect(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
            }
            Dialect::Postgres => "SET TIME ZONE 'UTC'",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

/// Why the database cannot be opened. Each message stands alone (it names
/// the server and the cause once; no source chain repeats it).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("cannot connect to the database at {at}: {cause}")]
    Unreachable { at: String, cause: String },
    #[error(
        "the PostgreSQL database `{database}` does not exist on {at}; create it with \
         `createdb -h {host} -p {port} -U {user} {database}` (or point --database-url at \
         an existing one)"
    )]
    MissingDatabase {
        database: String,
        at: String,
        host: String,
        port: u16,
        user: String,
    },
    #[error("cannot migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// How long the first connection may take before startup gives up: an
/// unreachable database is an error in seconds, not a pool timing out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server of a PostgreSQL URL, for messages: host, port, database, user
/// (never the password).
struct PgTarget {
    host: String,
    port: u16,
    database: String,
    user: String,
}

impl PgTarget {
    fn of_url(url: &str) -> Option<PgTarget> {
        let o = sqlx::postgres::PgConnectOptions::from_str(url).ok()?;
        Some(PgTarget {
            host: o.get_host().to_owned(),
            port: o.get_port(),
            database: o
                .get_database()
                .unwrap_or_else(|| o.get_username())
                .to_owned(),
            user: o.get_username().to_owned(),
        })
    }

    fn at(&self) -> String {
        if self.host.starts_with('/') {
            format!("the socket in `{}` (port {})", self.host, self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The first connection's failure, said once with what it names.
    fn error(&self, e: &sqlx::Error) -> DbError {
        match e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
                DbError::MissingDatabase {
                    database: self.database.clone(),
                    at: self.at(),
                    host: self.host.clone(),
                    port: self.port,
                    user: self.user.clone(),
                }
            }
            sqlx::Error::Io(io) => DbError::Unreachable {
                at: self.at(),
                cause: io.to_string(),
            },
            sqlx::Error::Tls(tls) => DbError::Unreachable {
                at: self.at(),
                cause: format!("TLS: {tls}"),
            },
            sqlx::Error::Database(db) => DbError::Unreachable {
                at: self.at(),
                cause: db.message().to_owned(),
            },
            other => DbError::Unreachable {
                at: self.at(),
                cause: other.to_string(),
            },
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl Db {
    /// Connects (creating a SQLite file if needed) and applies the migrations.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let dialect = Dialect::of_url(url);
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let max = match dialect {
            Dialect::Sqlite => 4,
            Dialect::Postgres => 16,
        };
        // No SQL in the logs, whatever the filter (`--log debug`).
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| DbError::Connect(e.to_string()))?
            .disable_statement_logging();
        // One connection first, within a few seconds, so that an unreachable
        // or missing database is said at once, naming the server.
        if let Some(target) = (dialect == Dialect::Postgres)
            .then(|| PgTarget::of_url(&url))
            .flatten()
        {
            match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options)).await
            {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                }
                Ok(Err(e)) => return Err(target.error(&e)),
                Err(_) => {
                    return Err(DbError::Unreachable {
                        at: target.at(),
                        cause: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                    });
                }
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(dialect.on_connect()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| DbError::Connect(e.to_string()))?;
        let db = Db { pool, dialect };
        // PostgreSQL migrations take an advisory lock; SQLite's do not, so two
        // processes starting on one new file can race: the loser retries and
        // then finds the migrations applied.
        let mut attempt = 0;
        loop {
            match MIGRATOR.run(&db.pool).await {
                Ok(()) => break,
                Err(e) if dialect == Dialect::Sqlite && attempt < 5 => {
                    attempt += 1;
                    tracing::info!(error = %e, attempt, "migration raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(DbError::Migrate(e)),
            }
        }
        Ok(db)
    }

    /// The pool's connections: (open, idle, the most it opens).
    pub fn pool_stats(&self) -> (u32, u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (
            self.pool.size(),
            idle,
            self.pool.options().get_max_connections(),
        )
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// How many write transactions may usefully run side by side, up to
    /// `wanted`: SQLite has one writer at a time.
    pub fn write_concurrency(&self, wanted: usize) -> usize {
        match self.dialect {
            Dialect::Sqlite => 1,
            Dialect::Postgres => wanted,
        }
    }

    /// Opens the one transaction of a use case that writes.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin_with(self.dialect.begin_write()).await
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether an error is a unique-constraint violation (mapped to 409 in one place).
/// Cross-replica wake-ups of idle provisioner daemons: on PostgreSQL a
/// `NOTIFY orgsync_jobs` sent in the enqueueing transaction (delivered at commit)
/// and a listener task; SQLite is single-process, the in-process signal suffices.
impl Db {
    pub async fn notify_jobs(
        &self,
        conn: &mut sqlx::AnyConnection,
        org_id: &str,
    ) -> Result<(), sqlx::Error> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_notify('orgsync_jobs', $1)")
                .bind(org_id)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// Calls `wake` for every job notification from any replica (PostgreSQL
    /// only; returns at once on SQLite). Reconnects after errors.
    pub async fn listen_jobs(url: String, dialect: Dialect, wake: impl Fn() + Send + 'static) {
        if dialect != Dialect::Postgres {
            return;
        }
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if listener.listen("orgsync_jobs").await.is_ok() {
                        // Anything queued while we were away: wake once.
                        wake();
                        while listener.recv().await.is_ok() {
                            wake();
                        }
                    }
                }
                Err(e) => tracing::warn!("job notification listener: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db
                    .code()
                    .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

/// Booleans are stored as BIGINT 0/1 (the `Any` driver has no SQLite bool).
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}
