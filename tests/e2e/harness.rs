//! The test harness: a real orgsync server on a free 127.0.0.1 port, backed by a
//! fresh database: SQLite in a temp dir, or (with `ORGSYNC_TEST_DB=postgres`) a
//! new PostgreSQL database on `ORGSYNC_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends.

use std::net::SocketAddr;
use std::path::PathBuf;

use orgsync::app::{App, AppState, serve};
use orgsync::config::{ServerArgs, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Which database the suite runs on.
pub fn backend() -> &'static str {
    match std::env::var("ORGSYNC_TEST_DB").as_deref() {
        Ok("postgres") => "postgres",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("ORGSYNC_TEST_DB must be `sqlite` or `postgres`, not `{other}`"),
    }
}

fn pg_admin_url() -> String {
    std::env::var("ORGSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database for one test; dropped with it.
pub enum TestDb {
    /// Another server's database (a second replica); owned by that server.
    Shared,
    /// Holds the temp dir (SQLite file) until the test ends.
    Sqlite(#[allow(dead_code, reason = "kept for its Drop")] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    pub async fn new() -> (TestDb, String, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        if backend() == "postgres" {
            use sqlx::Connection;
            let admin_url = pg_admin_url();
            let name = format!("orgsync_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {admin_url} is required for ORGSYNC_TEST_DB=postgres: {e}"
                    )
                });
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let url = match admin_url.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => panic!("bad ORGSYNC_TEST_PG_URL"),
            };
            // Keep the temp dir alive via leak-free ownership: it only holds logs.
            std::mem::forget(dir);
            (TestDb::Postgres { admin_url, name }, url, data_dir)
        } else {
            let url = format!("sqlite://{}", data_dir.join("orgsync.db").display());
            (TestDb::Sqlite(dir), url, data_dir)
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let label = name.clone();
            // Drop may run inside a runtime: use a thread with its own. A
            // failed clean-up is reported, not a panic (this runs in Drop,
            // maybe while a failed test unwinds); it leaves a database behind.
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async move {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&admin_url)
                        .await
                        .map_err(|e| e.to_string())?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
                })
            })
            .join();
            match dropped {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("cannot drop the test database {label}: {e}"),
                Err(_) => eprintln!("dropping the test database {label} panicked"),
            }
        }
        // Secrets in logs: the child processes of a test that runs them on
        // this database have written everything by now (logscan.rs).
        crate::logscan::check();
    }
}

/// A running server.
pub struct TestServer {
    #[allow(dead_code, reason = "for tests that need the socket address")]
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    // Declared last: dropped after the server stopped.
    #[allow(dead_code, reason = "kept for its Drop")]
    pub db: TestDb,
}

impl TestServer {
    /// Starts a server with default settings on a fresh database.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a second replica on this server's database.
    pub async fn replica(&self) -> TestServer {
        self.replica_with(|_| {}).await
    }

    /// Starts a second replica on this server's database after `tweak`
    /// adjusted its flags.
    pub async fn replica_with(&self, tweak: impl FnOnce(&mut ServerArgs)) -> TestServer {
        let url = self.database_url.clone();
        let dir = tempfile::tempdir().expect("temp dir").keep();
        Self::start_on(TestDb::Shared, url, dir, tweak).await
    }

    /// Starts a server after `tweak` adjusted its flags.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerArgs)) -> TestServer {
        let (db, url, data_dir) = TestDb::new().await;
        Self::start_on(db, url, data_dir, tweak).await
    }

    async fn start_on(
        db: TestDb,
        url: String,
        data_dir: PathBuf,
        tweak: impl FnOnce(&mut ServerArgs),
    ) -> TestServer {
        // Secrets in logs: capture what the server logs, know its secrets
        // (logscan.rs).
        crate::logscan::install();
        // Bound first: `listen` is the real address, so the default access
        // URL is where the server is reached, and `tweak` can read the port.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut args = ServerArgs {
            data_dir: Some(data_dir),
            database_url: Some(url.clone()),
            listen: Some(addr),
            provisioner_daemons: Some(0),
            ..Default::default()
        };
        tweak(&mut args);
        let config = ServerConfig::resolve(&args).expect("config");
        crate::logscan::register_config(&config);
        let state = App::init(config).await.expect("server init");
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let handle = tokio::spawn(async move {
            serve(st, listener, async move {
                // Err: the TestServer was dropped without a send; stop too.
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestServer {
            addr,
            base: format!("http://{addr}"),
            state,
            database_url: url,
            shutdown: Some(tx),
            handle: Some(handle),
            db,
        }
    }

    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("{}/api/v2", self.base),
            token: None,
        }
    }

    /// Creates the first user (site owner) and returns its client.
    pub async fn owner(&self) -> Client {
        let mut c = self.client();
        let (status, body) = c
            .post("/users/first", json!({"username": "admin", "email": "admin@example.com", "password": "password123"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        c.token = Some(body["session_token"].as_str().expect("token").to_owned());
        c
    }

    /// Stops the server and waits for it; panics if serving failed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).expect("the server is still serving");
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("the server stopped cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some(tx) = self.shutdown.take() {
            // Err: the server task already ended; it is aborted below anyway.
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        // Secrets in logs: fails the test if the server logged one (logscan.rs).
        crate::logscan::check();
    }
}

/// A JSON API client, optionally authenticated.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    #[must_use]
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        // Secrets in logs: every secret sent or received is looked for in
        // the logs (logscan.rs).
        let since = crate::logscan::mark();
        if let Some(t) = &self.token {
            crate::logscan::register(crate::logscan::Kind::BearerToken, t);
        }
        if let Some(b) = &body {
            crate::logscan::register_json(path, b, since);
        }
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        crate::logscan::register_json(path, &value, since);
        (status, value)
    }

    #[must_use]
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    #[must_use]
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    #[must_use]
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, Some(body)).await
    }

    #[must_use]
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    #[must_use]
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }

    /// GET that must answer 200; returns the body.
    #[must_use]
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Creates a password user (as this client, which must be allowed to) and
    /// returns a client logged in as it, with its id.
    pub async fn create_user(&self, username: &str) -> (Client, String) {
        let email = format!("{username}@example.com");
        let (status, body) = self
            .post(
                "/users",
                json!({"username": username, "email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "create user {username}: {body}"
        );
        let id = body["id"].as_str().expect("id").to_owned();
        let mut c = Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: None,
        };
        let (status, body) = c
            .post(
                "/users/login",
                json!({"email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "login {username}: {body}");
        c.token = Some(body["session_token"].as_str().expect("token").to_owned());
        (c, id)
    }

    /// Creates an organization and returns its id.
    pub async fn create_org(&self, name: &str) -> String {
        let (status, body) = self.post("/organizations", json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "create org {name}: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Adds a user to an org, then sets its org roles (if any).
    pub async fn add_member(&self, org: &str, user: &str, roles: &[&str]) {
        let (status, body) = self
            .post(&format!("/organizations/{org}/members/{user}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "add {user} to {org}: {body}");
        if !roles.is_empty() {
            let (status, body) = self
                .put(
                    &format!("/organizations/{org}/members/{user}/roles"),
                    json!({"roles": roles}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "roles of {user} in {org}: {body}");
        }
    }

    /// Sets site roles.
    pub async fn set_site_roles(&self, user: &str, roles: &[&str]) {
        let (status, body) = self
            .put(&format!("/users/{user}/roles"), json!({"roles": roles}))
            .await;
        assert_eq!(status, StatusCode::OK, "site roles of {user}: {body}");
    }
}
