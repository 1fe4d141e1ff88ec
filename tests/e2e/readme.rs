//! The documentation cannot drift: the README's walkthrough runs as written,
//! and the README and `docs/` name nothing outside the repository.
//!
//! - The walkthrough: every shell block of README.md that follows a line
//!   `<!-- tested -->` is run, in order, as one `bash -euo pipefail` script,
//!   with the built `orgsync` binary first on `PATH`, against a fresh server
//!   of the harness (the README's `http://127.0.0.1:3000` replaced by the
//!   server's address), in a scratch directory where `examples/` is the
//!   repository's. The environment is a new user's: a fresh `HOME`, no
//!   `ORGSYNC_*` variables. Background jobs the script starts (the
//!   provisioner daemon) are killed when it ends.
//! - The links: every relative link of README.md and `docs/*.md` points to a
//!   file of the repository (and its `#anchor` to a heading of that file), and
//!   no page mentions the product specification, which users do not have.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::harness::TestServer;
use crate::logscan::{self, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_orgsync");

/// The line that marks the next shell block as run by this test.
const MARK: &str = "<!-- tested -->";

/// How long the walkthrough may take (a few seconds when all is well).
const WITHIN: std::time::Duration = std::time::Duration::from_secs(300);

/// The server address the README's examples use.
const README_URL: &str = "http://127.0.0.1:3000";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate is in the repository")
        .to_path_buf()
}

/// The shell blocks of `markdown` marked with [`MARK`], in order. A mark that
/// is not followed by a ```` ```sh ```` block, or a block that is never
/// closed, fails the test.
fn tested_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != MARK {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(
            fence.trim(),
            "```sh",
            "`{MARK}` must be followed by a ```sh block"
        );
        let mut block = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            block.push_str(l);
            block.push('\n');
        }
        assert!(closed, "a tested block is not closed:\n{block}");
        blocks.push(block);
    }
    blocks
}

/// The passwords a script types: `--...password 'X'` flags and
/// `"password": "X"` JSON fields. Registered as secrets, so that the server's
/// logs are scanned for them (logscan.rs).
fn passwords(script: &str) -> Vec<String> {
    let flag = regex::Regex::new(r#"password[= ]'([^']+)'"#).unwrap();
    let field = regex::Regex::new(r#""password":\s*"([^"]+)""#).unwrap();
    flag.captures_iter(script)
        .chain(field.captures_iter(script))
        .map(|c| c[1].to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_walkthrough_runs_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = tested_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "README.md has {} blocks marked `{MARK}`; the walkthrough has more",
        blocks.len()
    );
    let examples = root.join("examples/templates/hello");
    assert!(
        examples.join("main.tf").is_file(),
        "the README's example template {} is missing",
        examples.display()
    );
    // Declared before the server: it outlives the server, whose drop scans
    // the files registered below.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let bin = dir.join("bin");
    let home = dir.join("home");
    let cwd = dir.join("checkout");
    for d in [&bin, &home, &cwd] {
        std::fs::create_dir(d).unwrap();
    }
    std::os::unix::fs::symlink(BIN, bin.join("orgsync")).unwrap();
    std::os::unix::fs::symlink(root.join("examples"), cwd.join("examples")).unwrap();

    let s = TestServer::start().await;
    // The secrets the walkthrough made, written out at its end so that the
    // logs are scanned for them too.
    let secrets = dir.join("secrets.txt");
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n{}\n\
         printf '%s\\n' \"${{KEY:-}}\" \"${{TOKEN:-}}\" \"${{SESSION:-}}\" > '{}'\n",
        blocks.join("\n").replace(README_URL, &s.base),
        secrets.display()
    );
    for p in passwords(&script) {
        logscan::register(Kind::Password, &p);
    }
    let stdout = dir.join("stdout.txt");
    let stderr = dir.join("stderr.txt");
    logscan::register_log_file("the README walkthrough's stderr", &stderr);
    logscan::register_log_file(
        "the README's provisioner daemon log",
        cwd.join("provisionerd.log"),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &script])
        .current_dir(&cwd)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap());
    if let Some(tf) = std::env::var_os("ORGSYNC_TERRAFORM_BINARY") {
        cmd.env("ORGSYNC_TERRAFORM_BINARY", tf);
    }
    // Its own process group, so that a walkthrough that hangs is killed whole
    // (the CLI, the daemon) when it runs out of time.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the README walkthrough failed ({}):\n--- script\n{script}\n--- stdout\n{}\n--- \
         stderr\n{}\n--- provisionerd.log\n{}",
        status.map_or_else(|| format!("killed after {WITHIN:?}"), |s| s.to_string()),
        read(&stdout),
        read(&stderr),
        read(&cwd.join("provisionerd.log")),
    );

    let made = read(&secrets);
    let mut made = made.lines();
    for kind in [Kind::ProvisionerKey, Kind::ApiToken, Kind::SessionToken] {
        let secret = made.next().unwrap_or_default();
        assert!(
            kind == Kind::SessionToken || secret.len() >= logscan::MIN_LEN,
            "the walkthrough made no {kind} (`KEY`, `TOKEN`)"
        );
        logscan::register(kind, secret);
    }
    // The sessions the CLI stored.
    let stored = home.join(".config/orgsync");
    for entry in std::fs::read_dir(&stored).into_iter().flatten().flatten() {
        if let Ok(v) = serde_json::from_str(&read(&entry.path())) {
            logscan::register_json("", &v, logscan::Mark::START);
        }
    }

    // What the walkthrough says it did, seen through the API as the owner.
    let mut owner = s.client();
    let admin_password = passwords(&script)
        .into_iter()
        .next()
        .expect("the walkthrough logs in with a password");
    let (status, body) = owner
        .post(
            "/users/login",
            json!({"email": "admin@example.com", "password": admin_password}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    owner.token = Some(body["session_token"].as_str().unwrap().to_owned());
    let templates = owner.get_ok("/organizations/data-platform/templates").await;
    assert!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "hello"),
        "{templates}"
    );
    let members = owner.get_ok("/organizations/data-platform/members").await;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["username"] == "alice"),
        "{members}"
    );
    let daemons = owner
        .get_ok("/organizations/data-platform/provisionerdaemons")
        .await;
    assert!(!daemons.as_array().unwrap().is_empty(), "{daemons}");
    let workspaces = owner.get_ok("/workspaces?owner=alice").await;
    assert_eq!(workspaces["count"], 0, "`dev` was deleted: {workspaces}");
    let settings = owner.get_ok("/settings/idpsync/organization").await;
    assert_eq!(settings["field"], "groups", "{settings}");
    drop(s);
}

/// Every `](target)` link of a Markdown text, outside code blocks and code
/// spans.
fn links(markdown: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut in_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let code = regex::Regex::new(r"`[^`]*`").unwrap();
    let prose = code.replace_all(&prose, "");
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    link.captures_iter(&prose)
        .map(|c| c[1].to_owned())
        .collect()
}

/// The anchors of a Markdown file's headings, as GitHub makes them: lower
/// case, punctuation other than `-` and `_` dropped, spaces as `-`.
fn anchors(markdown: &str) -> HashSet<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn docs_link_only_to_files_of_the_repository() {
    let root = repo_root().canonicalize().unwrap();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    assert!(pages.len() > 5, "{pages:?}");
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        for word in ["SPEC", "§", "../shared", "/work/"] {
            if text.contains(word) {
                problems.push(format!(
                    "{name} mentions `{word}`, which users of the repository do not have"
                ));
            }
        }
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let file = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let Ok(file) = file.canonicalize() else {
                problems.push(format!("{name}: the link `{target}` names no file"));
                continue;
            };
            if !file.starts_with(&root) {
                problems.push(format!("{name}: the link `{target}` leaves the repository"));
                continue;
            }
            if let Some(anchor) = anchor
                && file.extension().is_some_and(|e| e == "md")
                && !anchors(&std::fs::read_to_string(&file).unwrap()).contains(anchor)
            {
                problems.push(format!(
                    "{name}: the link `{target}` names no heading of that file"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_find_what_they_look_for() {
    let md = "a\n<!-- tested -->\n```sh\necho one\n```\n```sh\nuntested\n```\n<!-- tested -->\n```sh\necho 'two'\n```\n";
    assert_eq!(tested_blocks(md), vec!["echo one\n", "echo 'two'\n"]);
    assert_eq!(
        links(
            "see [a](docs/a.md#x-y) and [b](https://e.com/) [c](#top) `[d](e)`\n```\n[f](g)\n```\n"
        ),
        vec!["docs/a.md#x-y", "https://e.com/", "#top"]
    );
    let a = anchors("# Top\n## Cross-site requests and cookies\n### `orgsync` CLI: (new)\n");
    assert!(a.contains("top"));
    assert!(a.contains("cross-site-requests-and-cookies"));
    assert!(a.contains("orgsync-cli-new"), "{a:?}");
    assert_eq!(
        passwords("x --first-user-password 'a b' -d '{\"password\": \"c d\"}'"),
        vec!["a b", "c d"]
    );
}

/// docs/oidc.md, "Using the CLI as an OIDC user": signed in through the
/// provider, the user makes an API token with its browser session (the
/// developer tools' `fetch` from orgsync's own page: the session cookie,
/// `Origin` and `Sec-Fetch-Site: same-origin`), and the CLI works with it.
/// The same request from another site is refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_user_gets_a_cli_token_as_the_oidc_docs_say() {
    use crate::oidc::{Browser, Provider, SITE, account, server};

    let op = Provider::start(
        json!({"sub-olga": account("olga@example.com", "olga", &["eng"])}),
        false,
    );
    let s = server(&op.issuer, |_| {}).await;
    let _owner = s.owner().await;
    let (_, session) = Browser::new(&s).login("sub-olga").await;
    let http = reqwest::Client::builder()
        .resolve("orgsync.test", s.addr)
        .no_proxy()
        .build()
        .unwrap();
    let fetch = |site: &'static str, origin: &'static str| {
        http.post(format!("{SITE}/api/v2/users/me/keys/tokens"))
            .header("Cookie", format!("orgsync_session={session}"))
            .header("Origin", origin)
            .header("Sec-Fetch-Site", site)
            .header("Content-Type", "application/json")
            .body(json!({"token_name": "cli", "lifetime_seconds": 30 * 86400}).to_string())
    };
    let refused = fetch("cross-site", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    let since = logscan::mark();
    let made = fetch("same-origin", SITE).send().await.unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::CREATED);
    let body: serde_json::Value = made.json().await.unwrap();
    logscan::register_json("/users/me/keys/tokens", &body, since);
    let token = body["key"].as_str().unwrap().to_owned();

    let home = tempfile::tempdir().unwrap();
    let args = ["organizations", "list"];
    let env = [
        ("ORGSYNC_URL".to_owned(), s.base.clone()),
        ("ORGSYNC_SESSION_TOKEN".to_owned(), token.clone()),
    ];
    let since = logscan::mark();
    let out = tokio::task::spawn_blocking({
        let (env, home) = (env.clone(), home.path().to_path_buf());
        move || {
            Command::new(BIN)
                .args(args)
                .envs(env)
                .env("HOME", home)
                .env_remove("ORGSYNC_CONFIG_DIR")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    logscan::register_cli_run(&args, &env, None, &out.stdout, &out.stderr, since);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("coder"), "{stdout}");
    drop(s);
}
