//! A process harness: the real `orgsync server` binary as a child process, on
//! a test database (a SQLite file or a PostgreSQL database from
//! [`TestDb`](crate::harness::TestDb)), so tests can SIGKILL it mid-work,
//! start it again on the same database, and run two of them side by side.
//!
//! The server listens on `127.0.0.1:0` and reports the port the system gave
//! it on stderr (`orgsync listening on http://ADDR`, `server/src/app.rs`);
//! no port is picked, released and reused. Readiness is `GET /healthz`,
//! polled until a deadline. Stdout and stderr of every start go to files in
//! a temp dir that is removed when the test passes and kept (its path printed)
//! when it fails. A process still running when dropped is killed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Client;

const BIN: &str = env!("CARGO_BIN_EXE_orgsync");
/// How long a start may take (two cores shared by several test binaries).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// The line `orgsync server` prints once it is bound.
const LISTENING: &str = "orgsync listening on http://";

/// An `orgsync server` child process and the files of its runs.
pub(crate) struct ServerProcess {
    name: String,
    database_url: String,
    args: Vec<String>,
    /// Logs (`NAME-N.stdout`, `NAME-N.stderr` per start) and the data dir.
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    /// Starts so far (1 after `start`).
    starts: u32,
    /// `http://127.0.0.1:PORT` of the current start.
    pub(crate) base: String,
    /// The `--listen` of the next start: `127.0.0.1:0` unless a restart
    /// keeps the address ([`Self::restart_at_same_address`]).
    listen: String,
}

impl ServerProcess {
    /// Starts `orgsync server --listen 127.0.0.1:0` on `database_url` with
    /// `args` added (e.g. `["--provisioner-daemons", "2"]`; the built-in
    /// daemons are off unless `args` says otherwise), and waits until it
    /// answers `/healthz`. `name` names its log files.
    pub(crate) async fn start(name: &str, database_url: &str, args: &[&str]) -> ServerProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("orgsync-proc-{name}-"))
            .tempdir()
            .expect("temp dir");
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        if !args.iter().any(|a| a == "--provisioner-daemons") {
            args.extend(["--provisioner-daemons".to_owned(), "0".to_owned()]);
        }
        let mut p = ServerProcess {
            name: name.to_owned(),
            database_url: database_url.to_owned(),
            args,
            dir: Some(dir),
            child: None,
            starts: 0,
            base: String::new(),
            listen: "127.0.0.1:0".to_owned(),
        };
        p.spawn().await;
        p
    }

    fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .expect("log dir")
    }

    fn log_file(&self, start: u32, stream: &str) -> PathBuf {
        self.dir().join(format!("{}-{start}.{stream}", self.name))
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.starts += 1;
        let stdout = std::fs::File::create(self.log_file(self.starts, "stdout")).expect("stdout");
        let stderr_path = self.log_file(self.starts, "stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr");
        // Secrets in logs: everything the server can log, scanned for the
        // suite's secrets (`logscan.rs`).
        crate::logscan::register_log_file(
            format!("server process `{}` stdout", self.name),
            self.log_file(self.starts, "stdout"),
        );
        crate::logscan::register_log_file(
            format!("server process `{}` stderr", self.name),
            &stderr_path,
        );
        let mut cmd = Command::new(BIN);
        cmd.args(["server", "--listen", &self.listen])
            .args(["--log", crate::logscan::LOG_FILTER])
            .arg("--data-dir")
            .arg(self.dir().join("data"))
            .arg("--database-url")
            .arg(&self.database_url)
            .args(&self.args);
        // Only what this harness passes configures the server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ORGSYNC_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        self.child = Some(child);
        let started = Instant::now();
        // The bound address, from the server's own startup line.
        let addr = loop {
            let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            // A text log has the plain line; a JSON log the same message as
            // a JSON line with the address as a field.
            let json_address = |l: &str| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .filter(|v| {
                        v["fields"]["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with(LISTENING))
                    })
                    .and_then(|v| v["fields"]["address"].as_str().map(str::to_owned))
            };
            if let Some(addr) = text.lines().find_map(|l| {
                l.strip_prefix(LISTENING)
                    .map(str::to_owned)
                    .or_else(|| json_address(l))
            }) {
                break addr.trim().to_owned();
            }
            self.assert_alive("before it listened");
            assert!(
                started.elapsed() < START_DEADLINE,
                "{} did not report its address within {START_DEADLINE:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.base = format!("http://{addr}");
        let http = reqwest::Client::new();
        loop {
            match http.get(format!("{}/healthz", self.base)).send().await {
                Ok(r) if r.status() == StatusCode::OK => break,
                _ => {}
            }
            self.assert_alive("before /healthz answered");
            assert!(
                started.elapsed() < START_DEADLINE,
                "{} did not answer /healthz within {START_DEADLINE:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn assert_alive(&mut self, when: &str) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("{} exited ({status}) {when}:\n{}", self.name, self.log());
        }
    }

    /// SIGKILLs the server (`Child::kill` is SIGKILL on unix): no shutdown
    /// code runs, transactions in flight are cut off as in a crash. Checks that
    /// the process died of that signal.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("a running server to kill");
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(
                status.signal(),
                Some(9),
                "{} did not die of SIGKILL: {status}",
                self.name
            );
        }
    }

    /// Starts the server again on the same database and flags (a new port:
    /// clients must be made again from [`Self::client`]).
    pub(crate) async fn restart(&mut self) {
        self.spawn().await;
    }

    /// Starts the server again on the same database, flags and address (so
    /// clients and daemons that know its URL reach it again).
    pub(crate) async fn restart_at_same_address(&mut self) {
        self.listen = self
            .base
            .strip_prefix("http://")
            .expect("a started server")
            .to_owned();
        self.spawn().await;
    }

    /// An unauthenticated API client of the current start.
    pub(crate) fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("{}/api/v2", self.base),
            token: None,
        }
    }

    /// An API client of the current start with `token`.
    pub(crate) fn client_as(&self, token: &Option<String>) -> Client {
        let mut c = self.client();
        c.token.clone_from(token);
        c
    }

    /// Creates the first user (site owner) and returns its client.
    pub(crate) async fn owner(&self) -> Client {
        let mut c = self.client();
        let (status, body) = c
            .post(
                "/users/first",
                json!({"username": "admin", "email": "admin@example.com", "password": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        c.token = Some(body["session_token"].as_str().expect("token").to_owned());
        c
    }

    /// Stderr (the server's log) of every start so far, oldest first.
    pub(crate) fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                format!(
                    "--- {} start {n} ---\n{}",
                    self.name,
                    std::fs::read_to_string(self.log_file(n, "stderr")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && let Err(e) = child.kill().and_then(|()| child.wait().map(drop))
        {
            eprintln!("cannot stop server process `{}`: {e}", self.name);
        }
        // Scan its logs before they go with the temp dir.
        crate::logscan::check();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "logs of server process `{}` kept in {}",
                self.name,
                kept.display()
            );
        }
    }
}

/// `text` without ANSI escape sequences (in case a log is colored anyway).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The test database, opened the way the server opens it (for checks in SQL).
pub(crate) async fn open_db(database_url: &str) -> orgsync::db::Db {
    orgsync::db::Db::open(database_url)
        .await
        .unwrap_or_else(|e| panic!("cannot open the test database: {e}"))
}
