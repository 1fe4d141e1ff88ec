//! OIDC login against a real OpenID Provider (npm `oidc-provider`, started from
//! `tests/support/oidc/provider.mjs`), driven by a test browser: a cookie jar
//! and redirects followed by hand, from `/users/oidc/login` through the
//! provider's login form and back to the callback.
//!
//! orgsync is reached as `http://orgsync.test` (its access URL): the browser
//! resolves that name to the test server, so the provider's redirect URI is
//! known before the server's port, and the two sites keep separate cookies as
//! they would in a real deployment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use orgsync::config::ServerArgs;
use reqwest::header::{ACCEPT, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};
use crate::testkit::{ClosedPort, wait_for_blocking};

pub(crate) const SITE: &str = "http://orgsync.test";
const CLIENT_ID: &str = "orgsync";
const CLIENT_SECRET: &str = "orgsync-test-secret";

fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/oidc")
}

/// A running OpenID Provider; killed on drop. It listens on port 0 and
/// prints the port it got (`{"issuer": .., "port": ..}` on stdout).
pub(crate) struct Provider {
    pub(crate) issuer: String,
    port: u16,
    child: Option<Child>,
    /// After `stop`: its port, held closed so that it stays down.
    held: Option<ClosedPort>,
    dir: tempfile::TempDir,
}

impl Provider {
    /// Starts the provider with `accounts` (`{sub: claims}`); with
    /// `conform_id_token_claims` the scope claims are in userinfo only.
    pub(crate) fn start(accounts: Value, conform_id_token_claims: bool) -> Provider {
        let support = support_dir();
        let node = Command::new("node").arg("--version").output();
        if !node.as_ref().is_ok_and(|o| o.status.success()) {
            panic!(
                "the OIDC tests need Node.js (`node` on PATH) to run the OpenID Provider: \
                 install it, then run scripts/install-deps ({node:?})"
            );
        }
        if !support
            .join("node_modules/oidc-provider/package.json")
            .exists()
        {
            panic!(
                "the OIDC tests need the npm package `oidc-provider` in {}: run scripts/install-deps \
                 (or `npm ci` there)",
                support.display()
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let p = Provider {
            issuer: String::new(),
            port: 0,
            child: None,
            held: None,
            dir,
        };
        p.set_accounts(accounts);
        let stdout = std::fs::File::create(p.dir.path().join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(p.dir.path().join("stderr")).expect("stderr file");
        let child = Command::new("node")
            .arg(support.join("provider.mjs"))
            .current_dir(&support)
            .env("OP_PORT", "0")
            .env("OP_CLIENT_ID", CLIENT_ID)
            .env("OP_CLIENT_SECRET", CLIENT_SECRET)
            .env(
                "OP_REDIRECT_URI",
                format!("{SITE}/api/v2/users/oidc/callback"),
            )
            .env("OP_ACCOUNTS_FILE", p.dir.path().join("accounts.json"))
            .env("OP_TAMPER_FILE", p.dir.path().join("tamper.json"))
            .env("OP_ID_TOKEN_LOG", p.dir.path().join("id_token.json"))
            .env(
                "OP_CONFORM_ID_TOKEN_CLAIMS",
                conform_id_token_claims.to_string(),
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `node provider.mjs`: {e}"));
        let mut p = p;
        p.child = Some(child);
        let stdout = p.dir.path().join("stdout");
        let ready = wait_for_blocking(
            "the OpenID Provider to print its issuer and port",
            Duration::from_secs(60),
            || {
                let out = std::fs::read_to_string(&stdout).unwrap_or_default();
                if let Some(status) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    panic!(
                        "the OpenID Provider exited ({status}) before it was ready:\n{}",
                        p.log()
                    );
                }
                out.lines()
                    .next()
                    .and_then(|line| serde_json::from_str::<Value>(line).ok())
                    .ok_or_else(|| format!("stdout {out:?}, stderr {:?}", p.log()))
            },
        );
        p.issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        p.port = ready["port"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .expect("port");
        assert_eq!(p.issuer, format!("http://127.0.0.1:{}", p.port));
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// The payload of the last ID token the provider issued (after tampering).
    fn last_id_token(&self) -> Value {
        let raw = std::fs::read_to_string(self.dir.path().join("id_token.json"))
            .expect("no ID token issued yet");
        serde_json::from_str(&raw).expect("ID token JSON")
    }

    /// Replaces a file the provider re-reads, atomically.
    fn write(&self, name: &str, value: &Value) {
        let tmp = self.dir.path().join(format!("{name}.tmp"));
        std::fs::write(&tmp, value.to_string()).expect("write");
        std::fs::rename(&tmp, self.dir.path().join(name)).expect("rename");
    }

    fn set_accounts(&self, accounts: Value) {
        self.write("accounts.json", &accounts);
    }

    /// Rewrites (and re-signs) the next ID tokens: `{"set": {..}, "unset": [..],
    /// "sign_with_other_key": bool}`; `Value::Null` stops tampering.
    fn tamper_id_token(&self, tamper: Value) {
        self.write("tamper.json", &json!({"id_token": tamper}));
    }

    /// Stops the provider: from then on its port refuses connections (held
    /// closed, so that no other process is handed it while the test runs).
    fn stop(&mut self) {
        self.kill();
        self.held = Some(ClosedPort::hold(self.port).unwrap_or_else(|e| {
            panic!(
                "port {} of the stopped provider was taken before it could be held: {e}",
                self.port
            )
        }));
    }

    /// Kills and reaps the provider. Also runs in `Drop`, so it reports
    /// instead of panicking: `kill` fails only when the provider already
    /// exited (what is wanted), and `wait` then reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Err(e) = c.kill() {
                eprintln!("the OpenID Provider had already exited: {e}");
            }
            if let Err(e) = c.wait() {
                eprintln!("cannot reap the OpenID Provider: {e}");
            }
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server with OIDC login against `issuer`, after `more` adjusted its flags.
pub(crate) async fn server(issuer: &str, more: impl FnOnce(&mut ServerArgs)) -> TestServer {
    let issuer = issuer.to_owned();
    TestServer::start_with(move |a| {
        a.access_url = Some(SITE.to_owned());
        a.oidc.oidc_issuer_url = Some(issuer);
        a.oidc.oidc_client_id = Some(CLIENT_ID.to_owned());
        a.oidc.oidc_client_secret = Some(CLIENT_SECRET.to_owned());
        a.oidc.oidc_scopes = Some("openid profile email groups".to_owned());
        more(a);
    })
    .await
}

/// What the browser got back from the callback.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn session(&self) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("orgsync_session="))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }
}

/// A browser: one cookie jar, redirects followed by hand, `orgsync.test`
/// resolved to the server.
pub(crate) struct Browser {
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    html: bool,
}

impl Browser {
    pub(crate) fn new(server: &TestServer) -> Browser {
        Self::at(server.addr)
    }

    fn at(addr: SocketAddr) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .resolve("orgsync.test", addr)
            .no_proxy()
            .build()
            .expect("browser");
        Browser {
            http,
            jar,
            html: true,
        }
    }

    pub(crate) async fn get(&self, url: &str) -> Answer {
        let mut req = self.http.get(url);
        if self.html {
            req = req.header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8");
        }
        let since = crate::logscan::mark();
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let answer = Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap_or_default(),
        };
        // Secrets in logs: the session a login sets (logscan.rs).
        crate::logscan::register_answer("", &answer.headers, "", since);
        answer
    }

    /// Starts a login at orgsync and goes through the provider (logging in as
    /// `sub` on its form) until the provider sends the browser back: returns
    /// that callback URL, not yet visited.
    pub(crate) async fn authorize(&self, sub: &str) -> String {
        self.authorize_from(&format!("{SITE}/api/v2/users/oidc/login"), sub)
            .await
    }

    async fn authorize_from(&self, start: &str, sub: &str) -> String {
        let first = self.get(start).await;
        assert_eq!(
            first.status,
            StatusCode::FOUND,
            "login start: {}",
            first.body
        );
        let mut url = Url::parse(first.location()).expect("provider URL");
        for _ in 0..10 {
            if url.as_str().starts_with(&format!("{SITE}/")) {
                return url.to_string();
            }
            let page = self.get(url.as_str()).await;
            match page.status {
                s if s.is_redirection() => {
                    url = url.join(page.location()).expect("redirect");
                }
                StatusCode::OK if page.body.contains("<form") => {
                    let action = page
                        .body
                        .split("action=\"")
                        .nth(1)
                        .and_then(|s| s.split('"').next())
                        .expect("form action");
                    let resp = self
                        .http
                        .post(url.join(action).expect("action"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("login={sub}"))
                        .send()
                        .await
                        .expect("login form");
                    assert!(
                        resp.status().is_redirection(),
                        "provider login as {sub}: {}",
                        resp.status()
                    );
                    let next = resp
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    url = url.join(&next).expect("redirect");
                }
                other => panic!("provider answered {other} at {url}: {}", page.body),
            }
        }
        panic!("too many redirects at the provider")
    }

    /// A whole login that must succeed: returns the final redirect and the
    /// session token.
    pub(crate) async fn login(&self, sub: &str) -> (String, String) {
        let cb = self.authorize(sub).await;
        let done = self.get(&cb).await;
        assert_eq!(
            done.status,
            StatusCode::FOUND,
            "callback for {sub}: {}",
            done.body
        );
        let token = done.session().expect("session cookie");
        (done.location().to_owned(), token)
    }

    /// `GET /users/me` with the browser's cookies, which must answer 200.
    pub(crate) async fn me_ok(&self) -> Value {
        let (status, me) = self.me().await;
        assert_eq!(status, StatusCode::OK, "{me}");
        me
    }

    /// `GET /users/me` with the browser's cookies.
    #[must_use]
    pub(crate) async fn me(&self) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{SITE}/api/v2/users/me"))
            .send()
            .await
            .expect("me");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A request to orgsync with the browser's cookies and `headers` (a
    /// browser sends `Origin` on writes; cookie writes without it are refused).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        let mut req = self.http.request(method, format!("{SITE}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request").status()
    }

    fn state_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = Url::parse(&format!("{SITE}/api/v2/users/oidc/callback")).expect("url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .find_map(|c| c.trim().strip_prefix("orgsync_oidc_state="))
            .map(str::to_owned)
    }
}

fn query_param(url: &str, name: &str) -> String {
    Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no `{name}` in {url}"))
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// Row counts that a refused login must leave alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    users: i64,
    sessions: i64,
    links: i64,
    states: i64,
}

async fn scalar(s: &TestServer, sql: &str) -> i64 {
    let mut conn = s.state.db.pool().acquire().await.expect("conn");
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    n
}

pub(crate) async fn counts(s: &TestServer) -> Counts {
    Counts {
        users: scalar(s, "SELECT COUNT(*) FROM users").await,
        sessions: scalar(s, "SELECT COUNT(*) FROM api_keys WHERE kind = 'session'").await,
        links: scalar(s, "SELECT COUNT(*) FROM user_links").await,
        states: scalar(s, "SELECT COUNT(*) FROM oidc_states").await,
    }
}

/// The stored claims of a subject.
async fn stored_claims(s: &TestServer, sub: &str) -> Value {
    let mut conn = s.state.db.pool().acquire().await.expect("conn");
    let (claims,): (String,) =
        sqlx::query_as("SELECT claims FROM user_links WHERE source = 'oidc' AND external_id = $1")
            .bind(sub)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("claims of {sub}: {e}"));
    serde_json::from_str(&claims).expect("claims JSON")
}

async fn audit_actions(s: &TestServer, source: &str) -> Vec<(String, String)> {
    let mut conn = s.state.db.pool().acquire().await.expect("conn");
    sqlx::query_as(
        "SELECT action, resource_type FROM audit_logs WHERE source = $1 ORDER BY time, id",
    )
    .bind(source)
    .fetch_all(&mut *conn)
    .await
    .expect("audit")
}

pub(crate) fn account(email: &str, username: &str, groups: &[&str]) -> Value {
    json!({
        "email": email,
        "email_verified": true,
        "preferred_username": username,
        "name": format!("{username} Example"),
        "groups": groups,
        "roles": ["dev"],
        "department": "r&d",
    })
}

/// Checks a refusal page: status, an HTML page naming the reason, nothing
/// written, and the login state consumed (`states` back to `before`).
pub(crate) async fn assert_refused(
    s: &TestServer,
    answer: &Answer,
    status: StatusCode,
    reason: &str,
    before: Counts,
) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/html")),
        "an HTML page: {:?}",
        answer.headers
    );
    assert!(
        answer.body.to_lowercase().contains(&reason.to_lowercase()),
        "the page should say `{reason}`:\n{}",
        answer.body
    );
    assert!(answer.session().is_none(), "no session cookie on a refusal");
    assert_eq!(counts(s).await, before, "a refused login writes nothing");
}

#[tokio::test]
async fn first_login_creates_the_user_and_the_next_finds_it_by_subject() {
    let op = Provider::start(
        json!({"sub-alice": account("alice@example.com", "Alice Smith", &["eng"])}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    let before = counts(&s).await;

    let browser = Browser::new(&s);
    let (to, token) = browser.login("sub-alice").await;
    assert_eq!(to, format!("{SITE}/"));
    assert_eq!(browser.state_cookie(), None, "the state cookie is cleared");
    let (status, me) = browser.me().await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["login_type"], "oidc");
    assert_eq!(me["username"], "Alice-Smith");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["name"], "Alice Smith Example");
    let alice_id = me["id"].as_str().unwrap().to_owned();
    // The session works as a bearer token too, and the user is in the default org.
    let mut alice = s.client();
    alice.token = Some(token);
    let orgs = alice.get_ok("/users/me/organizations").await;
    assert_eq!(orgs[0]["name"], "coder", "{orgs}");
    assert_eq!(
        counts(&s).await,
        Counts {
            users: before.users + 1,
            sessions: before.sessions + 1,
            links: before.links + 1,
            states: before.states,
        }
    );
    let claims = stored_claims(&s, "sub-alice").await;
    assert_eq!(claims["sub"], "sub-alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], json!(["eng"]));
    assert_eq!(claims["roles"], json!(["dev"]));
    assert!(claims.get("nonce").is_none() && claims.get("exp").is_none());
    assert_eq!(
        audit_actions(&s, "oidc_login").await,
        [
            ("create".to_owned(), "user".to_owned()),
            ("login".to_owned(), "api_key".to_owned())
        ]
    );

    // Between logins the provider changes the claims, even the username and
    // email: the user is found by subject, the new claims are stored.
    op.set_accounts(json!({"sub-alice": {
        "email": "alice.smith@example.com", "email_verified": true,
        "preferred_username": "asmith", "groups": ["eng", "ops"], "roles": []
    }}));
    let again = Browser::new(&s);
    again.login("sub-alice").await;
    let me2 = again.me_ok().await;
    assert_eq!(me2["id"], json!(alice_id));
    assert_eq!(me2["username"], "Alice-Smith", "the username is kept");
    let claims = stored_claims(&s, "sub-alice").await;
    assert_eq!(claims["groups"], json!(["eng", "ops"]));
    assert_eq!(claims["email"], "alice.smith@example.com");
    assert_eq!(claims["roles"], json!([]));
    let now = counts(&s).await;
    assert_eq!(now.users, before.users + 1);
    assert_eq!(now.links, before.links + 1);
    assert_eq!(now.sessions, before.sessions + 2);

    // The owner sees one oidc user.
    let list = owner.get_ok("/users?q=alice").await;
    assert_eq!(list["count"], 1, "{list}");
}

#[tokio::test]
async fn usernames_are_normalized_and_deduplicated_and_redirects_kept() {
    let op = Provider::start(
        json!({
            "sub-dave": account("dave.oidc@example.com", "dave", &[]),
            "sub-erin": {"email": "erin@example.com", "email_verified": true},
        }),
        false,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    owner.create_user("dave").await;

    let b = Browser::new(&s);
    let cb = b
        .authorize_from(
            &format!("{SITE}/api/v2/users/oidc/login?redirect=/workspaces%3Fmine%3D1"),
            "sub-dave",
        )
        .await;
    let done = b.get(&cb).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    assert_eq!(done.location(), format!("{SITE}/workspaces?mine=1"));
    assert_eq!(b.me_ok().await["username"], "dave-2");

    // No username claim: the email's local part.
    let b = Browser::new(&s);
    b.login("sub-erin").await;
    assert_eq!(b.me_ok().await["username"], "erin");

    // Only paths on this server are accepted as redirects.
    let bad = Browser::new(&s)
        .get(&format!(
            "{SITE}/api/v2/users/oidc/login?redirect=//evil.example.com/"
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

/// Creates a user who signs in with no password (`login_type: none`).
async fn create_passwordless(owner: &Client, username: &str) -> String {
    let (status, body) = owner
        .post(
            "/users",
            json!({"username": username, "email": format!("{username}@example.com"), "login_type": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_existing_user_is_linked_by_verified_email_only() {
    let op = Provider::start(
        json!({
            "sub-dave": account("dave@example.com", "davey", &[]),
            "sub-carol": {"email": "carol@example.com", "email_verified": false, "preferred_username": "carol"},
            "sub-carol-2": {"email": "carol@example.com", "preferred_username": "carol"},
        }),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    let dave_id = create_passwordless(&owner, "dave").await;
    let carol_id = create_passwordless(&owner, "carol").await;

    // Verified email, an account without a password and without a subject: linked.
    let b = Browser::new(&s);
    b.login("sub-dave").await;
    let me = b.me_ok().await;
    assert_eq!(me["id"], json!(dave_id));
    assert_eq!(me["login_type"], "none", "linking keeps the login type");
    assert_eq!(
        stored_claims(&s, "sub-dave").await["email"],
        "dave@example.com"
    );
    assert!(
        audit_actions(&s, "oidc_login")
            .await
            .contains(&("update".to_owned(), "user".to_owned()))
    );

    // `email_verified: false`: refused, nothing linked, nothing created.
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-carol").await;
    assert_eq!(counts(&s).await.states, before.states + 1);
    let answer = b.get(&cb).await;
    assert_refused(&s, &answer, StatusCode::FORBIDDEN, "not verified", before).await;
    let failed = audit_actions(&s, "oidc_login").await;
    assert_eq!(
        failed.last(),
        Some(&("login_failed".to_owned(), "api_key".to_owned()))
    );

    // No `email_verified` at all: not linked either (and the email is taken).
    let b = Browser::new(&s);
    let cb = b.authorize("sub-carol-2").await;
    let answer = b.get(&cb).await;
    assert_refused(&s, &answer, StatusCode::CONFLICT, "email_verified", before).await;

    // With `ignore_email_verified`, the same account links.
    drop(s);
    let s = server(&op.issuer, |a| {
        a.oidc.oidc_ignore_email_verified = Some(true);
    })
    .await;
    let owner = s.owner().await;
    let carol_id2 = create_passwordless(&owner, "carol").await;
    assert_ne!(carol_id, carol_id2);
    let b = Browser::new(&s);
    b.login("sub-carol").await;
    assert_eq!(b.me_ok().await["id"], json!(carol_id2));
}

/// Attack: a user-admin set the owner's email to an address it controls at the
/// identity provider, and the next OIDC login linked the attacker to the owner.
/// Now a password account is never linked by email (an owner links it), and
/// nobody below owner edits an owner or links identities.
#[tokio::test]
async fn a_password_account_is_never_taken_over_by_email_and_only_an_owner_links() {
    let op = Provider::start(
        json!({
            "sub-mallory": account("mallory@evil.test", "mallory", &[]),
            "sub-bob": account("bob@example.com", "bobby", &[]),
        }),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    let (ua, _) = owner.create_user("ua").await;
    owner.set_site_roles("ua", &["user-admin"]).await;
    let (_, bob_id) = owner.create_user("bob").await;

    // The user-admin may not touch the owner's email (nor suspend or delete it).
    let (status, body) = ua
        .patch("/users/admin", json!({"email": "mallory@evil.test"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("guardrail.owner-protected"),
        "{body}"
    );
    let (status, reply) = ua.put("/users/admin/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, reply) = ua.delete("/users/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let admin = owner.get_ok("/users/admin").await;
    assert_eq!(admin["email"], "admin@example.com");
    assert_eq!(admin["status"], "active");

    // Even with the owner's email, a login is refused: the account has a password.
    let (status, reply) = owner
        .patch("/users/admin", json!({"email": "mallory@evil.test"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-mallory").await;
    let answer = b.get(&cb).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::FORBIDDEN,
        "an administrator must link",
        before,
    )
    .await;
    let links = owner.get_ok("/users/admin/links").await;
    assert_eq!(links, json!([]), "nothing linked to the owner");

    // The same for a plain password user with a verified email.
    let b = Browser::new(&s);
    let cb = b.authorize("sub-bob").await;
    let answer = b.get(&cb).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::FORBIDDEN,
        "an administrator must link",
        before,
    )
    .await;

    // Only an owner links: the user-admin may not (bob has only `member`,
    // which it could assign, but linking is an owner's act).
    let (status, reply) = ua
        .post("/users/bob/links", json!({"external_id": "sub-bob"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, link) = owner
        .post("/users/bob/links", json!({"external_id": "sub-bob"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["source"], "oidc");
    assert_eq!(link["external_id"], "sub-bob");
    // One subject per account, one account per subject.
    let (status, reply) = owner
        .post("/users/bob/links", json!({"external_id": "sub-other"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, reply) = owner
        .post("/users/ua/links", json!({"external_id": "sub-bob"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, reply) = owner
        .post(
            "/users/ua/links",
            json!({"source": "ldap", "external_id": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let b = Browser::new(&s);
    b.login("sub-bob").await;
    let me = b.me_ok().await;
    assert_eq!(me["id"], json!(bob_id));
    assert_eq!(me["login_type"], "password");
    let audit = owner
        .get_ok("/audit?q=resource_type:user%20action:update")
        .await;
    assert!(
        audit["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["diff"]["oidc_subject"]["new"] == "sub-bob"),
        "{audit}"
    );

    // Unlinked: the next login is refused again.
    let (status, reply) = ua.delete("/users/bob/links?source=oidc").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, reply) = owner.delete("/users/bob/links?source=oidc").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    assert_eq!(owner.get_ok("/users/bob/links").await, json!([]));
    let (status, reply) = owner.delete("/users/bob/links?source=oidc").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-bob").await;
    let answer = b.get(&cb).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::FORBIDDEN,
        "an administrator must link",
        before,
    )
    .await;
}

#[tokio::test]
async fn claims_only_in_userinfo_and_in_the_id_token_are_merged_userinfo_winning() {
    for conform in [true, false] {
        let op = Provider::start(
            json!({"sub-fay": account("fay@example.com", "fay", &["eng", "sre"])}),
            conform,
        );
        // The ID token also carries a claim userinfo does not have, and (when
        // scope claims are in it) a username userinfo contradicts.
        op.tamper_id_token(
            json!({"set": {"only_in_id_token": "yes", "preferred_username": "from-id-token"}}),
        );
        let s = server(&op.issuer, |_| {}).await;
        s.owner().await;
        let b = Browser::new(&s);
        b.login("sub-fay").await;
        let id_token = op.last_id_token();
        assert_eq!(id_token["only_in_id_token"], "yes");
        if conform {
            assert!(
                id_token.get("groups").is_none() && id_token.get("email").is_none(),
                "scope claims only in userinfo: {id_token}"
            );
        } else {
            assert_eq!(id_token["groups"], json!(["eng", "sre"]), "{id_token}");
            assert_eq!(id_token["email"], "fay@example.com", "{id_token}");
        }
        let claims = stored_claims(&s, "sub-fay").await;
        assert_eq!(claims["groups"], json!(["eng", "sre"]), "conform={conform}");
        assert_eq!(claims["email_verified"], true, "conform={conform}");
        assert_eq!(claims["department"], "r&d", "conform={conform}");
        assert_eq!(claims["only_in_id_token"], "yes", "conform={conform}");
        assert_eq!(
            claims["preferred_username"], "fay",
            "userinfo wins (conform={conform})"
        );
        assert_eq!(b.me_ok().await["username"], "fay");
    }
}

#[tokio::test]
async fn wrong_expired_and_replayed_states_and_replayed_codes_are_refused() {
    let op = Provider::start(
        json!({"sub-gus": account("gus@example.com", "gus", &[])}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    s.owner().await;

    // A state this browser did not start: refused before anything is touched;
    // the genuine callback still works afterwards.
    let b = Browser::new(&s);
    let cb = b.authorize("sub-gus").await;
    let before = counts(&s).await;
    let forged = b.get(&with_param(&cb, "state", "forged-state")).await;
    assert_refused(
        &s,
        &forged,
        StatusCode::BAD_REQUEST,
        "not started in this browser",
        before,
    )
    .await;
    // No state at all.
    let none = b
        .get(&format!("{SITE}/api/v2/users/oidc/callback?code=x"))
        .await;
    assert_refused(&s, &none, StatusCode::BAD_REQUEST, "no login state", before).await;
    // A state unknown to the server, even with a matching cookie.
    let unknown = b
        .http
        .get(with_param(&cb, "state", "never-issued"))
        .header(COOKIE, "orgsync_oidc_state=never-issued")
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown or already used"),
        "{body}"
    );
    assert_eq!(counts(&s).await, before);
    let state = query_param(&cb, "state");
    let first: (String, String) =
        sqlx::query_as("SELECT pkce_verifier, nonce FROM oidc_states WHERE state_hash = $1")
            .bind(orgsync::secrets::sha256_hex(&state))
            .fetch_one(s.state.db.pool())
            .await
            .unwrap();
    let done = b.get(&cb).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    let after_login = counts(&s).await;
    assert_eq!(
        after_login.states,
        before.states - 1,
        "the state is used up"
    );

    // Replaying the whole callback (with the state cookie put back): refused.
    let replay = b
        .http
        .get(&cb)
        .header(COOKIE, format!("orgsync_oidc_state={state}"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.unwrap().contains("already used"));
    assert_eq!(counts(&s).await, after_login);

    // The used code again, in a fresh login whose stored state is given the
    // first login's PKCE verifier and nonce: only the code's reuse is wrong,
    // and the provider refuses it.
    let b2 = Browser::new(&s);
    let cb2 = b2.authorize("sub-gus").await;
    sqlx::query("UPDATE oidc_states SET pkce_verifier = $1, nonce = $2 WHERE state_hash = $3")
        .bind(&first.0)
        .bind(&first.1)
        .bind(orgsync::secrets::sha256_hex(&query_param(&cb2, "state")))
        .execute(s.state.db.pool())
        .await
        .unwrap();
    let code = query_param(&cb, "code");
    let before = counts(&s).await;
    let answer = b2.get(&with_param(&cb2, "code", &code)).await;
    let before_consumed = Counts {
        states: before.states - 1,
        ..before
    };
    assert_refused(
        &s,
        &answer,
        StatusCode::BAD_REQUEST,
        "refused the authorization code",
        before_consumed,
    )
    .await;
    assert!(answer.body.contains("invalid_grant"), "{}", answer.body);
    assert!(
        op.log().contains("authorization code already consumed"),
        "{}",
        op.log()
    );

    // An expired state (older than 10 minutes): refused and gone.
    let b3 = Browser::new(&s);
    let cb3 = b3.authorize("sub-gus").await;
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    sqlx::query("UPDATE oidc_states SET created_at = '2000-01-01T00:00:00.000000Z'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let before = counts(&s).await;
    let answer = b3.get(&cb3).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::BAD_REQUEST,
        "expired",
        Counts {
            states: before.states - 1,
            ..before
        },
    )
    .await;
    // Expired states are also swept when a login starts.
    let b4 = Browser::new(&s);
    b4.authorize("sub-gus").await;
    sqlx::query("UPDATE oidc_states SET created_at = '2000-01-01T00:00:00.000000Z'")
        .execute(s.state.db.pool())
        .await
        .unwrap();
    Browser::new(&s).authorize("sub-gus").await;
    assert_eq!(counts(&s).await.states, 1);
}

#[tokio::test]
async fn id_tokens_that_fail_verification_are_refused() {
    let op = Provider::start(
        json!({"sub-hal": account("hal@example.com", "hal", &[])}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    s.owner().await;
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (json!({"sign_with_other_key": true}), "signature"),
        (json!({"set": {"aud": "someone-else"}}), "audience"),
        (
            json!({"set": {"aud": [CLIENT_ID, "someone-else"]}}),
            "audience",
        ),
        (
            json!({"set": {"exp": now - 60, "iat": now - 660}}),
            "expired",
        ),
        (json!({"set": {"iss": "http://127.0.0.1:1"}}), "issuer"),
        (json!({"set": {"nonce": "another-nonce"}}), "nonce"),
        (json!({"unset": ["nonce"]}), "nonce"),
        (
            json!({"set": {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}}),
            "access token hash",
        ),
    ];
    for (tamper, reason) in cases {
        op.tamper_id_token(tamper.clone());
        let b = Browser::new(&s);
        let cb = b.authorize("sub-hal").await;
        let before = counts(&s).await;
        let answer = b.get(&cb).await;
        assert_refused(
            &s,
            &answer,
            StatusCode::UNAUTHORIZED,
            reason,
            Counts {
                states: before.states - 1,
                ..before
            },
        )
        .await;
        assert!(
            answer.body.contains("failed verification"),
            "{tamper}: {}",
            answer.body
        );
    }
    assert_eq!(counts(&s).await.users, 1, "only the owner");
    assert!(audit_actions(&s, "oidc_login").await.is_empty());
    // The same provider, untampered: the login works.
    op.tamper_id_token(Value::Null);
    Browser::new(&s).login("sub-hal").await;
}

#[tokio::test]
async fn a_provider_that_is_down_gets_a_clear_page_and_nothing_changes() {
    // Down before the login starts: nothing listens at the issuer (a port
    // held bound and closed for the whole test).
    let dead = ClosedPort::new();
    let dead_issuer = format!("http://127.0.0.1:{}", dead.port());
    let s = server(&dead_issuer, |_| {}).await;
    s.owner().await;
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let answer = b.get(&format!("{SITE}/api/v2/users/oidc/login")).await;
    assert_refused(&s, &answer, StatusCode::BAD_GATEWAY, "unreachable", before).await;
    let mut json_browser = Browser::new(&s);
    json_browser.html = false;
    let answer = json_browser
        .get(&format!("{SITE}/api/v2/users/oidc/login"))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        body["message"],
        "the identity provider is unreachable; try again later"
    );
    assert_eq!(
        body["detail"],
        "the discovery request to the identity provider failed"
    );
    drop(s);

    // Down between the login and the callback.
    let mut op = Provider::start(
        json!({"sub-ida": account("ida@example.com", "ida", &[])}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    s.owner().await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-ida").await;
    op.stop();
    let before = counts(&s).await;
    let answer = b.get(&cb).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::BAD_GATEWAY,
        "unreachable",
        Counts {
            states: before.states - 1,
            ..before
        },
    )
    .await;
    assert_eq!(before.users, 1, "no user");
}

#[tokio::test]
async fn allowed_groups_refuse_everyone_else() {
    let op = Provider::start(
        json!({
            "sub-jo": account("jo@example.com", "jo", &["eng"]),
            "sub-kim": account("kim@example.com", "kim", &["eng", "ops"]),
            "sub-lee": {"email": "lee@example.com", "email_verified": true, "teams": "ops"},
        }),
        true,
    );
    let s = server(&op.issuer, |a| {
        a.oidc.oidc_allowed_groups = Some("admins, ops".to_owned());
    })
    .await;
    s.owner().await;
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-jo").await;
    let answer = b.get(&cb).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::FORBIDDEN,
        "not a member of a group allowed to log in",
        before,
    )
    .await;
    assert!(answer.body.contains("Login refused"));
    assert_eq!(
        audit_actions(&s, "oidc_login").await,
        [("login_failed".to_owned(), "api_key".to_owned())]
    );
    // In one of the groups: welcome.
    Browser::new(&s).login("sub-kim").await;

    // The allow-list reads another claim when told to.
    drop(s);
    let s = server(&op.issuer, |a| {
        a.oidc.oidc_allowed_groups = Some("ops".to_owned());
        a.oidc.oidc_allowed_groups_field = Some("teams".to_owned());
    })
    .await;
    s.owner().await;
    Browser::new(&s).login("sub-lee").await;
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-kim").await;
    let answer = b.get(&cb).await;
    assert_refused(&s, &answer, StatusCode::FORBIDDEN, "claim `teams`", before).await;
}

#[tokio::test]
async fn suspended_users_are_refused_and_logins_wait_for_the_first_user() {
    let op = Provider::start(
        json!({"sub-max": account("max@example.com", "max", &[])}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;

    // No user yet: an OIDC login would leave the deployment without an owner.
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-max").await;
    let answer = b.get(&cb).await;
    assert_refused(&s, &answer, StatusCode::FORBIDDEN, "not set up yet", before).await;

    let owner = s.owner().await;
    let b = Browser::new(&s);
    b.login("sub-max").await;
    let max_id = b.me_ok().await["id"].as_str().unwrap().to_owned();
    let (status, body) = owner
        .put(&format!("/users/{max_id}/status/suspend"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner.get_ok("/users/max").await["status"], "suspended");
    // The suspended user's open session stops working, and a new login is refused.
    let (status, body) = b.me().await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-max").await;
    let answer = b.get(&cb).await;
    assert_refused(&s, &answer, StatusCode::FORBIDDEN, "suspended", before).await;
    // Reactivated: in again.
    let (status, body) = owner
        .put(&format!("/users/{max_id}/status/activate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner.get_ok("/users/max").await["status"], "active");
    let b = Browser::new(&s);
    b.login("sub-max").await;
    assert_eq!(b.me_ok().await["id"], json!(max_id));
}

#[tokio::test]
async fn without_oidc_settings_the_routes_say_so() {
    let s = TestServer::start().await;
    let b = Browser::at(s.addr);
    let answer = b.get(&format!("{}/api/v2/users/oidc/login", s.base)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.body.contains("not configured"), "{}", answer.body);
    let answer = b
        .get(&format!(
            "{}/api/v2/users/oidc/callback?code=a&state=b",
            s.base
        ))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn idp_sync_runs_in_the_login_and_its_refusal_rolls_back() {
    let op = Provider::start(
        json!({
            "sub-nia": account("nia@example.com", "nia", &["eng"]),
            "sub-oz": {"email": "oz@example.com", "email_verified": true, "groups": "eng,ops"},
        }),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (status, body) = owner
        .patch(
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each change a login's sync writes is counted by kind and source.
    let joins = r#"orgsync_idpsync_changes_total{kind="organization_join",source="oidc_login"}"#;
    let leaves = r#"orgsync_idpsync_changes_total{kind="organization_leave",source="oidc_login"}"#;
    let joins_before = crate::metrics::sample(&s.base, joins).await;
    let b = Browser::new(&s);
    let (_, token) = b.login("sub-nia").await;
    let mut nia = s.client();
    nia.token = Some(token);
    assert!(crate::metrics::sample(&s.base, joins).await >= joins_before + 1.0);
    let names = |orgs: &Value| -> Vec<String> {
        orgs.as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let orgs = nia.get_ok("/users/me/organizations").await;
    assert_eq!(names(&orgs), ["coder", "data-platform"], "{orgs}");

    // The claim changes at the provider: the next login leaves the org.
    op.set_accounts(json!({
        "sub-nia": account("nia@example.com", "nia", &[]),
        "sub-oz": {"email": "oz@example.com", "email_verified": true, "groups": "eng,ops"},
    }));
    let leaves_before = crate::metrics::sample(&s.base, leaves).await;
    let b = Browser::new(&s);
    let (_, token) = b.login("sub-nia").await;
    nia.token = Some(token);
    let orgs = nia.get_ok("/users/me/organizations").await;
    assert_eq!(names(&orgs), ["coder"], "{orgs}");
    assert!(crate::metrics::sample(&s.base, leaves).await >= leaves_before + 1.0);

    // A claim org sync cannot parse refuses the login: the new user is not kept.
    let before = counts(&s).await;
    let b = Browser::new(&s);
    let cb = b.authorize("sub-oz").await;
    let answer = b.get(&cb).await;
    assert_refused(
        &s,
        &answer,
        StatusCode::FORBIDDEN,
        "organization sync: claim `groups` is the comma-separated string",
        before,
    )
    .await;
}
