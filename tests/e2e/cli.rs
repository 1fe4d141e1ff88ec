//! The client commands of the `orgsync` binary against a real server: login
//! (first user, then password login), organizations, members, users, groups,
//! `--output json`, and the exit codes of errors (1 API, 2 usage, 4 not
//! authenticated).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::Command;

use crate::harness::TestServer;

pub(crate) const OWNER: [&str; 6] = [
    "--first-user-username",
    "admin",
    "--first-user-email",
    "admin@example.com",
    "--first-user-password",
    "password123",
];

/// Variables of the CLI a developer's shell may have set: never inherited.
const CLI_ENV: [&str; 9] = [
    "ORGSYNC_URL",
    "ORGSYNC_PROFILE",
    "ORGSYNC_SESSION_TOKEN",
    "ORGSYNC_EMAIL",
    "ORGSYNC_PASSWORD",
    "ORGSYNC_FIRST_USER_USERNAME",
    "ORGSYNC_FIRST_USER_EMAIL",
    "ORGSYNC_FIRST_USER_PASSWORD",
    "ORGSYNC_CONFIG_DIR",
];

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The CLI with its own config dir (so its own stored session).
pub(crate) struct Cli {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) env: Vec<(String, String)>,
}

impl Cli {
    pub(crate) fn new(s: &TestServer) -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
            url: s.base.clone(),
            env: Vec::new(),
        }
    }

    pub(crate) fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub(crate) fn with_env(mut self, key: &str, value: &str) -> Cli {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgsync"));
        for var in CLI_ENV {
            cmd.env_remove(var);
        }
        cmd.env("ORGSYNC_CONFIG_DIR", self.config_dir())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stdin(Stdio::null());
        let since = crate::logscan::mark();
        let out = cmd.output().await.unwrap();
        // Secrets in logs: what this run used, and its output (logscan.rs).
        crate::logscan::register_cli_run(
            args,
            &self.env,
            Some(&self.config_dir()),
            &out.stdout,
            &out.stderr,
            since,
        );
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(
            out.code, 0,
            "orgsync {args:?} failed\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs a command with `--output json` that must succeed; parses stdout.
    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let stdout = self.ok(&args).await;
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("orgsync {args:?}: not JSON ({e}): {stdout}"))
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub(crate) async fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(
            out.code, code,
            "orgsync {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "orgsync {args:?}: no message"
        );
        out.stderr
    }

    /// `orgsync login URL` with the owner's first-user flags.
    pub(crate) async fn login_owner(&self) -> String {
        let mut args = vec!["login", self.url.as_str()];
        args.extend(OWNER);
        self.ok(&args).await
    }
}

/// Logs in as the owner (creating it) and returns the CLI.
pub(crate) async fn owner_cli(s: &TestServer) -> Cli {
    let cli = Cli::new(s);
    cli.login_owner().await;
    cli
}

pub(crate) fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

/// The line of a table whose first column is `first`.
pub(crate) fn row<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row `{first}` in\n{table}"))
}

fn session_file(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("session.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn login_creates_the_first_user_then_logs_in() {
    let s = TestServer::start().await;
    let (status, reply) = s.client().get("/users/first").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");

    let cli = Cli::new(&s);
    let stdout = cli.login_owner().await;
    assert!(
        stdout.contains("created the first user `admin`"),
        "{stdout}"
    );
    assert!(stdout.contains("logged in to"), "{stdout}");
    let (status, reply) = s.client().get("/users/first").await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    // The session is stored, readable by its owner only, and works.
    let path = cli.config_dir().join("session.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let session = session_file(&cli.config_dir());
    assert_eq!(session["url"], s.base);
    assert_eq!(session["username"], "admin");
    let mut c = s.client();
    c.token = Some(session["session_token"].as_str().unwrap().to_owned());
    let (status, me) = c.get("/users/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["roles"], serde_json::json!(["member", "owner"]));
    let orgs = cli.json(&["organizations", "list"]).await;
    assert_eq!(names(&orgs, "name"), ["coder"]);

    // Again with the first-user flags (a setup script run twice): the
    // deployment has users, so it logs in with those credentials instead.
    let again = Cli::new(&s);
    let out = again
        .run(&[&["login", s.base.as_str()][..], &OWNER[..]].concat())
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("created"), "{}", out.stdout);
    assert!(out.stderr.contains("already has users"), "{}", out.stderr);
    assert_ne!(
        session_file(&again.config_dir())["session_token"],
        session["session_token"]
    );
    let list = again.json(&["organizations", "list"]).await;
    assert_eq!(names(&list, "name"), ["coder"]);

    // ... and a wrong first-user password is a failed login: exit 4.
    let wrong = Cli::new(&s);
    let err = wrong
        .fails(
            4,
            &[
                "login",
                &s.base,
                "--first-user-username",
                "admin",
                "--first-user-email",
                "admin@example.com",
                "--first-user-password",
                "not-the-password",
            ],
        )
        .await;
    assert!(err.contains("incorrect email or password"), "{err}");
    assert!(!wrong.config_dir().join("session.json").exists());

    // Plain password login, flags or environment, JSON output.
    let plain = Cli::new(&s);
    let v = plain
        .json(&[
            "login",
            &s.base,
            "--email",
            "admin@example.com",
            "--password",
            "password123",
        ])
        .await;
    assert_eq!(v["first_user_created"], false);
    assert_eq!(v["user"]["username"], "admin");
    assert!(v.get("session_token").is_none(), "{v}");
    let by_env = Cli::new(&s)
        .with_env("ORGSYNC_URL", &s.base)
        .with_env("ORGSYNC_EMAIL", "admin@example.com")
        .with_env("ORGSYNC_PASSWORD", "password123");
    let out = by_env.ok(&["login"]).await;
    assert!(out.contains("logged in to"), "{out}");
    let list = by_env.json(&["organizations", "list"]).await;
    assert_eq!(names(&list, "name"), ["coder"]);

    // No credentials and stdin is not a terminal: a usage error, no prompt.
    let err = Cli::new(&s).fails(2, &["login", &s.base]).await;
    assert!(err.contains("--email"), "{err}");
    assert!(err.contains("not a terminal"), "{err}");
    let err = Cli::new(&s)
        .fails(2, &["login", &s.base, "--email", "admin@example.com"])
        .await;
    assert!(err.contains("--password"), "{err}");
    // The first-user flags go together.
    Cli::new(&s)
        .fails(2, &["login", &s.base, "--first-user-username", "x"])
        .await;
    // Not a URL; nothing listening.
    Cli::new(&s)
        .fails(
            2,
            &[
                "login",
                "not a url",
                "--email",
                "a@b.c",
                "--password",
                "password123",
            ],
        )
        .await;
    let err = Cli::new(&s)
        .fails(
            1,
            &[
                "login",
                "http://127.0.0.1:9",
                "--email",
                "a@b.c",
                "--password",
                "password123",
            ],
        )
        .await;
    assert!(err.contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn organizations_create_list_show_delete() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;

    let out = cli
        .ok(&[
            "organizations",
            "create",
            "data-platform",
            "--display-name",
            "Data Platform",
            "--description",
            "Pipelines and warehouses",
        ])
        .await;
    assert!(
        out.contains("created organization `data-platform`"),
        "{out}"
    );
    let ml = cli.json(&["organizations", "create", "ml"]).await;
    assert_eq!(ml["name"], "ml");
    assert_eq!(ml["display_name"], "ml");
    assert_eq!(ml["is_default"], false);

    // Table: a header, aligned columns.
    let table = cli.ok(&["organizations", "list"]).await;
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("NAME"), "{table}");
    let col = header.find("DISPLAY NAME").unwrap();
    let dp = row(&table, "data-platform");
    assert_eq!(dp.find("Data Platform"), Some(col), "{table}");
    assert_eq!(row(&table, "coder").find("Coder"), Some(col), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    // The `orgs` alias and the flag before the subcommand.
    let list = cli.json(&["orgs", "list"]).await;
    let mut got = names(&list, "name");
    got.sort();
    assert_eq!(got, ["coder", "data-platform", "ml"]);
    let list: Value =
        serde_json::from_str(&cli.ok(&["organizations", "--output", "json", "list"]).await)
            .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);

    let shown = cli.ok(&["organizations", "show", "data-platform"]).await;
    assert!(shown.contains("Data Platform"), "{shown}");
    assert!(shown.contains("Pipelines and warehouses"), "{shown}");
    let v = cli.json(&["organizations", "show", "data-platform"]).await;
    assert_eq!(v["description"], "Pipelines and warehouses");
    // By id too.
    let by_id = cli
        .json(&["organizations", "show", ml["id"].as_str().unwrap()])
        .await;
    assert_eq!(by_id["name"], "ml");

    let out = cli.ok(&["organizations", "delete", "ml"]).await;
    assert!(out.contains("deleted organization `ml`"), "{out}");
    let err = cli.fails(1, &["organizations", "show", "ml"]).await;
    assert!(err.contains("organization not found"), "{err}");
    let err = cli.fails(1, &["organizations", "delete", "nope"]).await;
    assert!(err.contains("organization not found"), "{err}");
    // The default org cannot be deleted; an invalid name is explained.
    cli.fails(1, &["organizations", "delete", "coder"]).await;
    let err = cli
        .fails(1, &["organizations", "create", "Not A Slug"])
        .await;
    assert!(err.contains("`name`"), "{err}");
    assert!(err.contains("not a lowercase slug"), "{err}");
    let err = cli
        .fails(1, &["organizations", "create", "data-platform"])
        .await;
    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn members_add_list_set_roles_remove() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    cli.ok(&["organizations", "create", "data-platform"]).await;
    cli.ok(&[
        "users",
        "create",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
        "--password",
        "password123",
    ])
    .await;

    let out = cli
        .ok(&[
            "organizations",
            "members",
            "add",
            "alice",
            "--org",
            "data-platform",
        ])
        .await;
    assert!(
        out.contains("added `alice` to organization `data-platform`"),
        "{out}"
    );
    let err = cli
        .fails(
            1,
            &[
                "organizations",
                "members",
                "add",
                "alice",
                "--org",
                "data-platform",
            ],
        )
        .await;
    assert!(err.contains("already a member"), "{err}");

    let table = cli
        .ok(&["organizations", "members", "list", "--org", "data-platform"])
        .await;
    assert!(table.starts_with("USERNAME"), "{table}");
    assert!(
        row(&table, "alice").contains("alice@example.com"),
        "{table}"
    );
    row(&table, "admin");
    let members = cli
        .json(&["organizations", "members", "list", "--org", "data-platform"])
        .await;
    let mut got = names(&members, "username");
    got.sort();
    assert_eq!(got, ["admin", "alice"]);

    let m = cli
        .json(&[
            "organizations",
            "members",
            "set-roles",
            "alice",
            "organization-admin",
            "organization-auditor",
            "--org",
            "data-platform",
        ])
        .await;
    let mut roles: Vec<&str> = m["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, ["organization-admin", "organization-auditor"]);
    let table = cli
        .ok(&["organizations", "members", "list", "--org", "data-platform"])
        .await;
    assert!(
        row(&table, "alice").contains("organization-admin, organization-auditor"),
        "{table}"
    );
    let err = cli
        .fails(
            1,
            &[
                "organizations",
                "members",
                "set-roles",
                "alice",
                "site-king",
                "--org",
                "data-platform",
            ],
        )
        .await;
    assert!(err.contains("roles[0]"), "{err}");
    // No roles: cleared.
    let out = cli
        .ok(&[
            "organizations",
            "members",
            "set-roles",
            "alice",
            "--org",
            "data-platform",
        ])
        .await;
    assert!(out.contains("none besides organization-member"), "{out}");
    let members = cli
        .json(&["organizations", "members", "list", "--org", "data-platform"])
        .await;
    let alice = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "alice")
        .unwrap_or_else(|| panic!("{members}"));
    assert_eq!(alice["roles"], serde_json::json!([]), "{members}");

    let out = cli
        .ok(&[
            "organizations",
            "members",
            "remove",
            "alice",
            "--org",
            "data-platform",
        ])
        .await;
    assert!(out.contains("removed `alice`"), "{out}");
    let members = cli
        .json(&["organizations", "members", "list", "--org", "data-platform"])
        .await;
    assert_eq!(names(&members, "username"), ["admin"]);
    let err = cli
        .fails(
            1,
            &[
                "organizations",
                "members",
                "remove",
                "alice",
                "--org",
                "data-platform",
            ],
        )
        .await;
    assert!(err.contains("member not found"), "{err}");
    let err = cli
        .fails(1, &["organizations", "members", "list", "--org", "nope"])
        .await;
    assert!(err.contains("organization not found"), "{err}");
    // --org is required.
    cli.fails(2, &["organizations", "members", "list"]).await;
}

#[tokio::test]
async fn users_create_list_suspend_activate() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;

    let out = cli
        .ok(&[
            "users",
            "create",
            "--username",
            "bob",
            "--email",
            "bob@example.com",
            "--password",
            "password123",
        ])
        .await;
    assert!(
        out.contains("created user `bob` (login type password"),
        "{out}"
    );
    let carol = cli
        .json(&[
            "users",
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.com",
            "--login-type",
            "none",
        ])
        .await;
    assert_eq!(carol["login_type"], "none");
    assert_eq!(carol["status"], "active");
    let err = cli
        .fails(
            1,
            &[
                "users",
                "create",
                "--username",
                "dave",
                "--email",
                "dave@example.com",
                "--login-type",
                "password",
            ],
        )
        .await;
    assert!(err.contains("`password`: is required"), "{err}");
    cli.fails(
        2,
        &[
            "users",
            "create",
            "--username",
            "dave",
            "--email",
            "dave@example.com",
            "--login-type",
            "ldap",
        ],
    )
    .await;
    let err = cli
        .fails(
            1,
            &[
                "users",
                "create",
                "--username",
                "bob",
                "--email",
                "bob2@example.com",
                "--password",
                "password123",
            ],
        )
        .await;
    assert!(err.contains("already exists"), "{err}");

    let table = cli.ok(&["users", "list"]).await;
    assert!(table.starts_with("USERNAME"), "{table}");
    assert!(row(&table, "bob").contains("active"), "{table}");
    assert!(row(&table, "carol").contains("none"), "{table}");
    let list = cli.json(&["users", "list"]).await;
    assert_eq!(list["count"], 3);
    let mut got = names(&list["users"], "username");
    got.sort();
    assert_eq!(got, ["admin", "bob", "carol"]);

    let out = cli.ok(&["users", "suspend", "bob"]).await;
    assert!(out.contains("user `bob` is suspended"), "{out}");
    let list = cli.json(&["users", "list"]).await;
    let bob = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(bob["status"], "suspended");
    // A suspended user cannot log in (403: exit 1, the server's reason).
    let bob_cli = Cli::new(&s);
    let err = bob_cli
        .fails(
            1,
            &[
                "login",
                &s.base,
                "--email",
                "bob@example.com",
                "--password",
                "password123",
            ],
        )
        .await;
    assert!(err.contains("suspended"), "{err}");

    let v = cli.json(&["users", "activate", "bob"]).await;
    assert_eq!(v["status"], "active");
    bob_cli
        .ok(&[
            "login",
            &s.base,
            "--email",
            "bob@example.com",
            "--password",
            "password123",
        ])
        .await;
    // bob is a plain member: creating an org is forbidden (exit 1, reason on stderr).
    let err = bob_cli.fails(1, &["organizations", "create", "x"]).await;
    assert!(err.contains("forbidden"), "{err}");
    let err = cli.fails(1, &["users", "suspend", "nobody"]).await;
    assert!(err.contains("user not found"), "{err}");
}

#[tokio::test]
async fn groups_create_list_add_remove() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    cli.ok(&["organizations", "create", "data-platform"]).await;
    for u in ["alice", "bob", "eve"] {
        let email = format!("{u}@example.com");
        cli.ok(&["users", "create", "--username", u, "--email", &email])
            .await;
    }
    for u in ["alice", "bob"] {
        cli.ok(&[
            "organizations",
            "members",
            "add",
            u,
            "--org",
            "data-platform",
        ])
        .await;
    }

    let out = cli
        .ok(&["groups", "create", "backend", "--org", "data-platform"])
        .await;
    assert!(out.contains("created group `backend`"), "{out}");
    let g = cli
        .json(&[
            "groups",
            "create",
            "frontend",
            "--display-name",
            "Front end",
            "--org",
            "data-platform",
        ])
        .await;
    assert_eq!(g["display_name"], "Front end");
    assert_eq!(g["source"], "user");

    let table = cli.ok(&["groups", "list", "--org", "data-platform"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    row(&table, "Everyone");
    row(&table, "backend");
    assert!(row(&table, "frontend").contains("Front end"), "{table}");
    let list = cli
        .json(&["groups", "list", "--org", "data-platform"])
        .await;
    let mut got = names(&list, "name");
    got.sort();
    assert_eq!(got, ["Everyone", "backend", "frontend"]);

    let g = cli
        .json(&[
            "groups",
            "add",
            "backend",
            "alice",
            "bob",
            "--org",
            "data-platform",
        ])
        .await;
    let mut members = names(&g["members"], "username");
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    let out = cli
        .ok(&[
            "groups",
            "remove",
            "backend",
            "alice",
            "--org",
            "data-platform",
        ])
        .await;
    assert!(out.contains("removed alice from group `backend`"), "{out}");
    assert!(out.contains("1 member"), "{out}");
    let list = cli
        .json(&["groups", "list", "--org", "data-platform"])
        .await;
    let backend = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "backend")
        .unwrap();
    assert_eq!(names(&backend["members"], "username"), ["bob"]);
    let table = cli.ok(&["groups", "list", "--org", "data-platform"]).await;
    assert!(
        row(&table, "backend").split_whitespace().any(|c| c == "1"),
        "{table}"
    );

    // Errors: unknown group, a user outside the org, no users, unknown org.
    let err = cli
        .fails(
            1,
            &["groups", "add", "nope", "alice", "--org", "data-platform"],
        )
        .await;
    assert!(
        err.contains("group `nope` not found in organization `data-platform`"),
        "{err}"
    );
    let err = cli
        .fails(
            1,
            &["groups", "add", "backend", "eve", "--org", "data-platform"],
        )
        .await;
    assert!(err.contains("not a member"), "{err}");
    assert!(err.contains("add_users[0]"), "{err}");
    cli.fails(2, &["groups", "add", "backend", "--org", "data-platform"])
        .await;
    let err = cli
        .fails(1, &["groups", "create", "x", "--org", "nope"])
        .await;
    assert!(err.contains("organization not found"), "{err}");
}

#[tokio::test]
async fn sessions_from_the_environment_and_errors() {
    let s = TestServer::start().await;

    // Not logged in: exit 4 with a clear message.
    let nobody = Cli::new(&s);
    let err = nobody.fails(4, &["organizations", "list"]).await;
    assert!(err.contains("not logged in"), "{err}");
    assert!(err.contains("orgsync login"), "{err}");
    let err = Cli::new(&s)
        .with_env("ORGSYNC_URL", &s.base)
        .fails(4, &["users", "list"])
        .await;
    assert!(err.contains("not logged in to"), "{err}");
    let err = Cli::new(&s)
        .with_env("ORGSYNC_SESSION_TOKEN", "whatever")
        .fails(2, &["users", "list"])
        .await;
    assert!(err.contains("ORGSYNC_URL"), "{err}");

    // ORGSYNC_URL + ORGSYNC_SESSION_TOKEN, no stored session.
    let owner = s.owner().await;
    let token = owner.token.clone().unwrap();
    let by_env = Cli::new(&s)
        .with_env("ORGSYNC_URL", &s.base)
        .with_env("ORGSYNC_SESSION_TOKEN", &token);
    by_env.ok(&["organizations", "create", "from-env"]).await;
    assert_eq!(
        owner.get_ok("/organizations/from-env").await["name"],
        "from-env"
    );
    assert!(!by_env.config_dir().join("session.json").exists());
    // A bad token: 401, exit 4, the server's message and a hint.
    let err = Cli::new(&s)
        .with_env("ORGSYNC_URL", &s.base)
        .with_env("ORGSYNC_SESSION_TOKEN", "not-a-token")
        .fails(4, &["organizations", "list"])
        .await;
    assert!(err.contains("invalid or expired"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    // A stored session is sent only to the URL it came from.
    let stored = Cli::new(&s);
    stored
        .ok(&[
            "login",
            &s.base,
            "--email",
            "admin@example.com",
            "--password",
            "password123",
        ])
        .await;
    let other_url = format!("http://localhost:{}", s.addr.port());
    let moved = Cli {
        dir: stored.dir,
        url: stored.url,
        env: vec![("ORGSYNC_URL".to_owned(), other_url)],
    };
    let err = moved.fails(4, &["organizations", "list"]).await;
    assert!(err.contains("not logged in to http://localhost:"), "{err}");
    // The token of the environment with the stored URL.
    let token_only = Cli {
        env: vec![("ORGSYNC_SESSION_TOKEN".to_owned(), token.clone())],
        ..moved
    };
    token_only.ok(&["organizations", "show", "from-env"]).await;

    // Usage errors: exit 2.
    let err = nobody.fails(2, &["organizations", "list", "--bogus"]).await;
    assert!(err.contains("--bogus"), "{err}");
    nobody
        .fails(2, &["organizations", "list", "--output", "yaml"])
        .await;
    nobody.fails(2, &["organizations", "frobnicate"]).await;
    nobody
        .fails(2, &["users", "create", "--username", "x"])
        .await;
    nobody.fails(2, &["groups", "create", "g"]).await;
}

#[tokio::test]
async fn idpsync_preview_prints_the_plan_and_writes_nothing() {
    use serde_json::json;

    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    let mut api = s.client();
    api.token = Some(
        session_file(&cli.config_dir())["session_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    api.create_org("data-platform").await;
    let (status, body) = api
        .post(
            "/organizations/data-platform/groups",
            json!({"name": "backend"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (path, body) in [
        (
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"], "ghosts": ["no-such-org"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/groups",
            json!({"field": "groups", "regex_filter": "^(eng|team-.*)$", "auto_create_missing_groups": true,
                   "mapping": {"eng": ["backend"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/roles",
            json!({"field": "roles", "mapping": {"lead": ["organization-admin"]}}),
        ),
    ] {
        let (status, body) = api.patch(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let files = tempfile::tempdir().unwrap();
    let claims = files.path().join("claims.json");
    std::fs::write(
        &claims,
        json!({"groups": ["eng", "ghosts", "team-ml", "random"], "roles": ["lead"]}).to_string(),
    )
    .unwrap();
    let claims = claims.to_str().unwrap();
    let audit_count = || async {
        api.get_ok("/audit?limit=1").await["count"]
            .as_i64()
            .unwrap()
    };
    let before = audit_count().await;

    // JSON: the API's plan as is, for a new user.
    let plan = cli.json(&["idpsync", "preview", "--claims", claims]).await;
    assert_eq!(plan["refused"], Value::Null, "{plan}");
    assert_eq!(
        plan["organizations"]["result"],
        json!(["coder", "data-platform"]),
        "{plan}"
    );
    let added: Vec<(&str, &str)> = plan["organizations"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        added,
        [
            ("coder", "assign_default"),
            ("data-platform", r#"mapping "eng" -> data-platform"#)
        ],
        "{plan}"
    );
    let dp = &plan["groups"]["data-platform"];
    assert_eq!(
        dp["result"],
        json!(["Everyone", "backend", "team-ml"]),
        "{plan}"
    );
    let team_ml = dp["add"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "team-ml")
        .unwrap_or_else(|| panic!("team-ml is not added: {plan}"));
    assert_eq!(team_ml["create"], true);
    assert_eq!(
        plan["roles"]["data-platform"]["result"],
        json!(["organization-admin"]),
        "{plan}"
    );
    assert!(
        plan["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "unknown_organization" && p["organization"].is_null()),
        "{plan}"
    );

    // Table: the same plan for people.
    let table = cli.ok(&["idpsync", "preview", "--claims", claims]).await;
    for expected in [
        "organizations:",
        r#"+ organization data-platform in the deployment   (mapping "eng" -> data-platform)"#,
        "+ organization coder in the deployment   (assign_default)",
        "= organizations in the deployment: coder, data-platform",
        "+ group team-ml (create) in data-platform",
        "= groups in data-platform: Everyone, backend, team-ml",
        "= roles in data-platform: organization-admin",
        "site roles:",
        "problems:",
        "! [deployment] unknown_organization:",
    ] {
        assert!(table.contains(expected), "no `{expected}` in\n{table}");
    }

    // Nothing was written: no audit entry, no group, no problem recorded.
    assert_eq!(audit_count().await, before);
    let groups = api.get_ok("/organizations/data-platform/groups").await;
    assert!(
        !groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "team-ml"),
        "{groups}"
    );
    let problems = api.get_ok("/idpsync/problems").await;
    assert_eq!(problems["problems"], json!([]), "{problems}");

    // --user: the plan for an existing user, from its current state.
    cli.ok(&[
        "users",
        "create",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
    ])
    .await;
    cli.ok(&[
        "organizations",
        "members",
        "add",
        "alice",
        "--org",
        "data-platform",
    ])
    .await;
    let other = files.path().join("other.json");
    std::fs::write(&other, r#"{"groups": "random"}"#).unwrap();
    let other = other.to_str().unwrap();
    let plan = cli
        .json(&["idpsync", "preview", "--claims", other, "--user", "alice"])
        .await;
    assert_eq!(plan["organizations"]["add"], json!([]), "{plan}");
    let removed = &plan["organizations"]["remove"];
    assert_eq!(removed.as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(removed[0]["name"], "data-platform", "{plan}");
    assert!(!removed[0]["reason"].as_str().unwrap().is_empty(), "{plan}");
    assert_eq!(plan["organizations"]["result"], json!(["coder"]), "{plan}");
    let table = cli
        .ok(&["idpsync", "preview", "--claims", other, "--user", "alice"])
        .await;
    assert!(
        table.contains("- organization data-platform in the deployment"),
        "{table}"
    );
    // The same claims for a new user: nothing to leave.
    let plan = cli.json(&["idpsync", "preview", "--claims", other]).await;
    assert_eq!(plan["organizations"]["remove"], json!([]), "{plan}");
    // One organization only: its group and role sync, alice kept a member.
    let args = [
        "idpsync",
        "preview",
        "--claims",
        other,
        "--user",
        "alice",
        "--organization",
        "data-platform",
    ];
    let plan = cli.json(&args).await;
    assert_eq!(plan["organization"], "data-platform", "{plan}");
    assert!(plan.get("organizations").is_none(), "{plan}");
    assert!(
        plan["groups"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k == "data-platform"),
        "{plan}"
    );
    let table = cli.ok(&args).await;
    assert!(
        !table.contains("organizations:") && !table.contains("site roles:"),
        "{table}"
    );
    // Still nothing written; alice is still in data-platform.
    assert_eq!(audit_count().await, before + 2);
    let orgs = api.get_ok("/users/alice/organizations").await;
    assert_eq!(names(&orgs, "name"), ["coder", "data-platform"]);
    // An unknown user: the API's validation error, exit 1.
    let err = cli
        .fails(
            1,
            &["idpsync", "preview", "--claims", other, "--user", "nobody"],
        )
        .await;
    assert!(err.contains("nobody"), "{err}");

    // A claim the planner cannot read: the plan says the login is refused.
    let bad_claim = files.path().join("bad-claim.json");
    std::fs::write(&bad_claim, r#"{"groups": "eng,ops"}"#).unwrap();
    let bad_claim = bad_claim.to_str().unwrap();
    let plan = cli
        .json(&["idpsync", "preview", "--claims", bad_claim])
        .await;
    assert_eq!(plan["refused"]["status"], 403, "{plan}");
    let table = cli.ok(&["idpsync", "preview", "--claims", bad_claim]).await;
    assert!(table.starts_with("login refused (403): "), "{table}");

    // A missing file, a file that is not JSON, JSON that is not an object:
    // a clear message on stderr, nothing on stdout, a non-zero exit.
    let missing = files.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let out = cli.run(&["idpsync", "preview", "--claims", missing]).await;
    assert_ne!(out.code, 0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("cannot read") && out.stderr.contains("missing.json"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("No such file"), "{}", out.stderr);
    // The file is read before the session is needed: same message logged out.
    let out = Cli::new(&s)
        .run(&["idpsync", "preview", "--claims", missing])
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("missing.json"), "{}", out.stderr);
    // `-` reads standard input (empty here).
    let err = cli.fails(2, &["idpsync", "preview", "--claims", "-"]).await;
    assert!(err.contains("standard input is not JSON"), "{err}");
    let not_json = files.path().join("not-json.json");
    std::fs::write(&not_json, "{\"groups\": [\"eng\",").unwrap();
    let err = cli
        .fails(
            2,
            &["idpsync", "preview", "--claims", not_json.to_str().unwrap()],
        )
        .await;
    assert!(err.contains("not JSON"), "{err}");
    assert!(err.contains("not-json.json"), "{err}");
    let array = files.path().join("array.json");
    std::fs::write(&array, r#"["eng"]"#).unwrap();
    let err = cli
        .fails(
            2,
            &["idpsync", "preview", "--claims", array.to_str().unwrap()],
        )
        .await;
    assert!(err.contains("JSON object"), "{err}");
    // No --claims: clap's usage error.
    cli.fails(2, &["idpsync", "preview"]).await;
    assert_eq!(audit_count().await, before + 2);
}
