//! Startup errors of the real `orgsync server` binary: an unreachable
//! database fails in seconds naming the server and the OS error; a missing
//! database is said once, with what to do; a config file's error names the
//! line and the key; a port already taken fails before anything is created
//! on disk.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TestDb, backend};
use crate::testkit::ClosedPort;

const BIN: &str = env!("CARGO_BIN_EXE_orgsync");

/// Runs `orgsync server ARGS` in `dir` with no `ORGSYNC_*` from the
/// environment; it must exit within `within` (a server that starts instead
/// is killed and the test fails). Returns its output and how long it ran.
fn server_exits(dir: &Path, args: &[&str], within: Duration) -> (Output, Duration) {
    let mut cmd = Command::new(BIN);
    cmd.arg("server")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ORGSYNC_") {
            cmd.env_remove(key);
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("run orgsync server");
    loop {
        if child.try_wait().expect("wait").is_some() {
            let took = started.elapsed();
            return (child.wait_with_output().expect("output"), took);
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "`orgsync server {}` still running after {within:?}:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn an_unreachable_database_fails_within_five_seconds_naming_host_port_and_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let closed = ClosedPort::new();
    let url = format!("postgres://postgres@127.0.0.1:{}/orgsync", closed.port());
    let (out, took) = server_exits(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--provisioner-daemons",
            "0",
        ],
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    let at = format!("127.0.0.1:{}", closed.port());
    assert!(err.contains(&at), "names {at}: {err}");
    assert!(
        err.to_lowercase().contains("connection refused"),
        "names the OS error: {err}"
    );
    assert_eq!(err.matches("refused").count(), 1, "said once: {err}");
    assert!(!err.contains("pool timed out"), "{err}");
}

#[tokio::test]
async fn a_missing_database_is_said_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    if backend() == "postgres" {
        // A database name nobody created, on the suite's PostgreSQL server.
        let (_db, url, _) = TestDb::new().await;
        let (base, _) = url.rsplit_once('/').unwrap();
        let missing = format!("orgsync_missing_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{base}/{missing}");
        let (out, took) = server_exits(
            dir.path(),
            &[
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
                "--provisioner-daemons",
                "0",
            ],
            Duration::from_secs(30),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
        assert_eq!(err.matches("does not exist").count(), 1, "once: {err}");
        assert_eq!(
            err.matches(&missing).count(),
            2,
            "named in the message and the hint: {err}"
        );
        assert!(err.contains("createdb"), "a createdb hint: {err}");
        assert!(
            err.contains(&format!(" {missing}`")),
            "the hint names the database: {err}"
        );
        assert_eq!(
            err.lines().filter(|l| !l.trim().is_empty()).count(),
            1,
            "{err}"
        );
    } else {
        // SQLite creates a missing database file; one that cannot be
        // created (its directory is a file) is said once, naming the file.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let file = blocker.join("orgsync.db");
        let url = format!("sqlite://{}", file.display());
        let (out, _) = server_exits(
            dir.path(),
            &[
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
                "--provisioner-daemons",
                "0",
            ],
            Duration::from_secs(30),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(
            err.matches(&file.display().to_string()).count(),
            1,
            "named once: {err}"
        );
    }
}

#[test]
fn config_file_errors_name_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, line, key) in [
        (
            "# orgsync\nlisten = \"127.0.0.1:0\"\nprovisioner_daemons = \"three\"\n",
            "line 3",
            "provisioner_daemons",
        ),
        (
            "listen = \"127.0.0.1:0\"\n\nlissten = \"127.0.0.1:0\"\n",
            "line 3",
            "lissten",
        ),
        (
            "log_format = \"json\"\n[ldapsync]\nenabled = \"yes\"\n",
            "line 3",
            "ldapsync.enabled",
        ),
    ] {
        let config = dir.path().join("orgsync.toml");
        std::fs::write(&config, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let (out, _) = server_exits(
            dir.path(),
            &["--config", config.to_str().unwrap()],
            Duration::from_secs(30),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(line), "{line} in: {err}");
        assert!(err.contains(&format!("`{key}`")), "`{key}` in: {err}");
        assert!(!dir.path().join(".orgsync").exists(), "nothing created");
    }
}

#[test]
fn a_taken_port_fails_before_anything_is_created_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // The default data dir (`./.orgsync`, SQLite inside), and an explicit one.
    let explicit = dir.path().join("state");
    for args in [
        vec!["--listen", addr.as_str(), "--provisioner-daemons", "0"],
        vec![
            "--listen",
            addr.as_str(),
            "--provisioner-daemons",
            "0",
            "--data-dir",
            explicit.to_str().unwrap(),
        ],
    ] {
        let (out, _) = server_exits(dir.path(), &args, Duration::from_secs(30));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("cannot listen on {addr}")),
            "names the address: {err}"
        );
        assert!(err.to_lowercase().contains("in use"), "the OS error: {err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "created before the port was bound: {left:?}"
        );
    }
    drop(taken);
}
