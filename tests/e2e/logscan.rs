//! Secrets never reach a log: every log this suite's servers write is scanned
//! for every secret the suite used (passwords, session and API tokens,
//! provisioner keys, LDAP bind passwords, OIDC client secrets), and a hit
//! fails the suite.
//!
//! - **Capture.** The in-process servers log through `tracing`: [`install`]
//!   (called by the harness at every server start, effective once per test
//!   process) makes the global subscriber one that formats every event of
//!   every crate at `trace` (the most a user can choose with `--log`), with
//!   its fields, its spans' fields and the opening and closing of spans, into
//!   memory; `log` records (ldap3, rustls) are captured too. Only the cookie
//!   jar of the tests' own HTTP clients is left out ([`CAPTURE_FILTER`]).
//!   Server and daemon processes run with `--log trace` ([`LOG_FILTER`]) and
//!   write to files that their harness registers with [`register_log_file`];
//!   the output of finished CLI runs is added with [`register_cli_run`].
//! - **Registration.** [`register_json`] takes the value of every secret
//!   field (`password`, `*_password`, `bind_password`, `session_token`,
//!   `*client_secret*`, `token`, and `key` in the answers of the routes that
//!   issue API tokens and provisioner keys) of a JSON body, at any depth. The
//!   harness `Client` calls it on every body it sends and receives and
//!   registers the bearer token it sends, so a new test is covered without
//!   doing anything; the harness also registers each server's configured
//!   secrets ([`register_config`]). Tests that send requests of their own
//!   use [`register_request`] and [`register_answer`]. Values shorter than
//!   [`MIN_LEN`] are not registered: words that short appear by chance.
//! - **Scan.** [`check`] runs when a `TestServer` or a `TestDb` is dropped
//!   (process harnesses call it too when their children end). It looks for
//!   every form of every secret (as is, URL-encoded with `+` or `%20`,
//!   escaped as in `Debug` or JSON) in what was logged since the last scan,
//!   and for a secret registered since then, in what was logged since it
//!   could first appear; on a hit it panics naming the kind of secret, the
//!   test that registered it, the log and the line, the secret redacted.
//!   The tests at the end of this file prove the scan finds secrets logged
//!   the ways a server logs, with [`Scanner`]s of their own.

use std::collections::HashSet;
use std::fmt;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use aho_corasick::AhoCorasick;
use serde_json::Value;

/// The log filter of the server processes the suite runs: everything, at the
/// most verbose level.
pub const LOG_FILTER: &str = "trace";

/// The filter of the in-process capture: everything at the most verbose
/// level, except the cookie jar of the tests' own HTTP clients (test
/// browsers), which logs the cookies it stores, session cookies included, at
/// debug: no server code keeps cookies.
const CAPTURE_FILTER: &str = "trace,cookie_store=off";

/// Shorter values are not registered.
pub const MIN_LEN: usize = 8;

/// What a secret is, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Password,
    SessionToken,
    ApiToken,
    ProvisionerKey,
    /// A bearer token of unknown origin (session, API token or key).
    BearerToken,
    BindPassword,
    ClientSecret,
    /// Another secret of a configuration (a database URL's password).
    ConfigSecret,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Password => "password",
            Kind::SessionToken => "session token",
            Kind::ApiToken => "API token",
            Kind::ProvisionerKey => "provisioner key",
            Kind::BearerToken => "bearer token",
            Kind::BindPassword => "LDAP bind password",
            Kind::ClientSecret => "OIDC client secret",
            Kind::ConfigSecret => "configuration secret",
        })
    }
}

/// A position in the in-process capture: secrets issued by a request cannot
/// be logged before the request was sent.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

impl Mark {
    /// The start of the capture: for a secret of unknown origin.
    pub const START: Mark = Mark(0);
}

/// A secret found in a log.
#[derive(Debug, Clone)]
pub struct Leak {
    pub kind: Kind,
    /// Which log: the in-process capture, or a child's file or output.
    pub source: String,
    /// The line, with every registered secret on it redacted.
    pub line: String,
    /// The test (thread) that registered the secret first.
    pub test: String,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} (first registered by `{}`) is in {}:\n    {}",
            self.kind, self.test, self.source, self.line
        )
    }
}

// ---------------------------------------------------------------------------
// Capture of the in-process servers' logs.

/// What the in-process servers logged, whole lines only.
static CAPTURE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&CAPTURE).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CaptureWriter {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter
    }
}

/// Installs the capturing subscriber (once per process). Fails loudly if
/// another global subscriber was installed first: nothing would be scanned.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::fmt::format::FmtSpan;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(true)
            // The test that logged a line: its server runs on its thread
            // (unless it uses a multi-threaded runtime).
            .with_thread_names(true)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_writer(CaptureWriter);
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(CAPTURE_FILTER))
            .with(layer)
            .try_init()
            .expect(
                "logscan: another global tracing subscriber (or `log` logger) was installed first",
            );
    });
}

/// The current end of the capture.
pub fn mark() -> Mark {
    Mark(lock(&CAPTURE).len())
}

// ---------------------------------------------------------------------------
// Secrets and the logs to scan for them.

struct Secret {
    kind: Kind,
    forms: Vec<String>,
    /// Where in the capture it may first appear.
    since: usize,
    test: String,
}

struct Source {
    label: String,
    path: Option<PathBuf>,
    /// Everything read so far.
    text: Vec<u8>,
    /// `text[..scanned]` was scanned for the secrets known at the last scan
    /// (a line boundary: a partial last line is scanned again).
    scanned: usize,
}

/// Secrets and the logs to scan for them: the suite's own (behind
/// [`check`]), or one of a test of the scanner.
pub struct Scanner {
    secrets: Vec<Secret>,
    values: HashSet<String>,
    /// Secrets `[0, scanned_secrets)` were looked for in all text scanned.
    scanned_secrets: usize,
    /// Nothing before this offset of the capture is scanned.
    capture_start: usize,
    /// `capture[capture_start..capture_scanned]` was scanned for those secrets.
    capture_scanned: usize,
    sources: Vec<Source>,
    /// (secret, source or `CAPTURE_SOURCE`, line start): reported once.
    reported: HashSet<(usize, usize, usize)>,
}

const CAPTURE_SOURCE: usize = usize::MAX;

impl Scanner {
    /// A scanner of the capture from `start` on (and of the files it is
    /// given).
    pub fn new(start: Mark) -> Scanner {
        Scanner {
            secrets: Vec::new(),
            values: HashSet::new(),
            scanned_secrets: 0,
            capture_start: start.0,
            capture_scanned: start.0,
            sources: Vec::new(),
            reported: HashSet::new(),
        }
    }

    /// See [`register_since`]; returns whether the value is a new secret.
    pub fn register_since(&mut self, kind: Kind, value: &str, since: Mark) -> bool {
        if value.len() < MIN_LEN || !self.values.insert(value.to_owned()) {
            return false;
        }
        let since = match kind {
            Kind::SessionToken | Kind::ApiToken | Kind::ProvisionerKey => since.0,
            Kind::BearerToken
            | Kind::Password
            | Kind::BindPassword
            | Kind::ClientSecret
            | Kind::ConfigSecret => 0,
        };
        self.secrets.push(Secret {
            kind,
            forms: forms(value),
            since: since.max(self.capture_start),
            test: test_name(),
        });
        true
    }

    /// See [`register_log_file`].
    pub fn register_log_file(&mut self, label: impl Into<String>, path: impl Into<PathBuf>) {
        let path = path.into();
        if self.sources.iter().any(|s| s.path.as_ref() == Some(&path)) {
            return;
        }
        self.sources.push(Source {
            label: format!("{} ({})", label.into(), path.display()),
            path: Some(path),
            text: Vec::new(),
            scanned: 0,
        });
    }

    /// See [`register_output`].
    pub fn register_output(&mut self, label: impl Into<String>, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        let mut text = text.to_vec();
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        self.sources.push(Source {
            label: label.into(),
            path: None,
            text,
            scanned: 0,
        });
    }

    /// Scans what was not scanned yet: the text logged since the last scan
    /// for every secret, and for the secrets registered since then, the text
    /// logged since each may have appeared. Returns the hits not reported yet.
    pub fn scan(&mut self) -> Vec<Leak> {
        let old: Vec<(usize, &[String])> = (0..self.scanned_secrets)
            .map(|i| (i, self.secrets[i].forms.as_slice()))
            .collect();
        let new: Vec<(usize, &[String])> = (self.scanned_secrets..self.secrets.len())
            .map(|i| (i, self.secrets[i].forms.as_slice()))
            .collect();
        let old_ac = automaton(&old);
        let new_ac = automaton(&new);
        let new_since = self.secrets[self.scanned_secrets..]
            .iter()
            .map(|s| s.since)
            .min();
        let redact: Vec<(Kind, &[String])> = self
            .secrets
            .iter()
            .map(|s| (s.kind, s.forms.as_slice()))
            .collect();
        // (secret, source, redacted line)
        let mut found: Vec<(usize, usize, String)> = Vec::new();
        {
            let capture = lock(&CAPTURE);
            let end = capture
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let mut hit = Vec::new();
            if let Some(ac) = &old_ac {
                hit.extend(hits(ac, &capture, self.capture_scanned, end));
            }
            if let (Some(ac), Some(since)) = (&new_ac, new_since) {
                hit.extend(hits(ac, &capture, since, end));
            }
            for (secret, line) in hit {
                if self.reported.insert((secret, CAPTURE_SOURCE, line)) {
                    found.push((
                        secret,
                        CAPTURE_SOURCE,
                        redacted_line(&capture, line, &redact),
                    ));
                }
            }
            self.capture_scanned = end.max(self.capture_start);
        }
        for (n, source) in self.sources.iter_mut().enumerate() {
            source.refresh();
            let text = &source.text;
            let mut hit = Vec::new();
            if let Some(ac) = &old_ac {
                hit.extend(hits(ac, text, source.scanned, text.len()));
            }
            if let Some(ac) = &new_ac {
                hit.extend(hits(ac, text, 0, text.len()));
            }
            for (secret, line) in hit {
                if self.reported.insert((secret, n, line)) {
                    found.push((secret, n, redacted_line(text, line, &redact)));
                }
            }
            source.scanned = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        }
        self.scanned_secrets = self.secrets.len();
        found
            .into_iter()
            .map(|(secret, source, line)| Leak {
                kind: self.secrets[secret].kind,
                source: match self.sources.get(source) {
                    Some(s) => s.label.clone(),
                    None => "the log of the in-process servers".to_owned(),
                },
                line,
                test: self.secrets[secret].test.clone(),
            })
            .collect()
    }
}

impl Source {
    /// Reads what a file gained since the last scan.
    fn refresh(&mut self) {
        let Some(path) = &self.path else {
            return;
        };
        let Ok(mut file) = std::fs::File::open(path) else {
            return;
        };
        // A file not there (yet) has nothing to scan; one that cannot be
        // read is said, not hidden.
        if let Err(e) = file
            .seek(SeekFrom::Start(self.text.len() as u64))
            .and_then(|_| file.read_to_end(&mut self.text))
        {
            eprintln!("logscan: cannot read {}: {e}", path.display());
        }
    }
}

/// The suite's scanner.
static SCANNER: Mutex<Option<Scanner>> = Mutex::new(None);

fn with_scanner<R>(f: impl FnOnce(&mut Scanner) -> R) -> R {
    let mut guard = lock(&SCANNER);
    f(guard.get_or_insert_with(|| Scanner::new(Mark::START)))
}

/// The forms a secret takes in a log: as is, URL-encoded (`+` and `%20` for
/// a space), escaped in a `Debug` string or JSON.
fn forms(value: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let candidates = [
        value.to_owned(),
        form.replace('+', "%20"),
        form,
        format!("{value:?}").trim_matches('"').to_owned(),
        serde_json::to_string(value)
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned(),
    ];
    let mut out: Vec<String> = Vec::new();
    for c in candidates {
        if c.len() >= MIN_LEN && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_owned()
}

/// Registers a secret that may have been logged since `since`: a secret the
/// server issued in answer to a request sent at `since` (a session token,
/// API token or provisioner key). Other secrets (chosen by a test, or of
/// unknown origin) may have been used before they are registered: they are
/// looked for in the whole capture. Values shorter than [`MIN_LEN`] are
/// ignored; a known value keeps its first registration.
pub fn register_since(kind: Kind, value: &str, since: Mark) {
    with_scanner(|s| s.register_since(kind, value, since));
}

/// Registers a secret of unknown origin: it is looked for in the whole
/// capture.
pub fn register(kind: Kind, value: &str) {
    register_since(kind, value, Mark::START);
}

/// Registers every secret field of a JSON body sent to or received from
/// `path` (an API path such as `/users/me/keys/tokens`), at any depth.
pub fn register_json(path: &str, body: &Value, since: Mark) {
    let key_kind = if path.contains("/provisionerkeys") {
        Some(Kind::ProvisionerKey)
    } else if path.contains("/keys/tokens") {
        Some(Kind::ApiToken)
    } else {
        None
    };
    walk(body, key_kind, since);
}

/// The kind of a secret field, by its name.
fn field_kind(name: &str, key_kind: Option<Kind>) -> Option<Kind> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "bind_password" => Some(Kind::BindPassword),
        "session_token" => Some(Kind::SessionToken),
        "key" => key_kind,
        "token" | "api_token" | "access_token" | "refresh_token" => Some(Kind::BearerToken),
        n if n == "password" || n.ends_with("_password") => Some(Kind::Password),
        n if n.contains("client_secret") => Some(Kind::ClientSecret),
        _ => None,
    }
}

fn walk(v: &Value, key_kind: Option<Kind>, since: Mark) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (field_kind(k, key_kind), v) {
                    (Some(kind), Value::String(s)) => register_since(kind, s, since),
                    _ => walk(v, key_kind, since),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| walk(v, key_kind, since)),
        _ => {}
    }
}

/// Registers what a request built with `reqwest` carries (secret fields of
/// its JSON body, a bearer token, a session cookie, a provisioner key), for
/// tests that do not send through the harness `Client`; returns the mark to
/// pass to [`register_answer`].
pub fn register_request(req: &reqwest::RequestBuilder) -> Mark {
    let since = mark();
    let Some(req) = req.try_clone().and_then(|r| r.build().ok()) else {
        return since;
    };
    for (name, value) in req.headers() {
        let Ok(value) = value.to_str() else {
            continue;
        };
        match name.as_str() {
            "authorization" => {
                if let Some(token) = value.strip_prefix("Bearer ") {
                    register(Kind::BearerToken, token);
                }
            }
            "cookie" => {
                for cookie in value.split(';') {
                    if let Some(token) = cookie.trim().strip_prefix("orgsync_session=") {
                        register(Kind::SessionToken, token);
                    }
                }
            }
            "orgsync-provisioner-key" => register(Kind::ProvisionerKey, value),
            _ => {}
        }
    }
    if let Some(body) = req.body().and_then(reqwest::Body::as_bytes)
        && let Ok(json) = serde_json::from_slice::<Value>(body)
    {
        register_json(req.url().path(), &json, since);
    }
    since
}

/// Registers what an answer to a request sent at `since` carries: secret
/// fields of its JSON body and the session cookie it sets.
pub fn register_answer(path: &str, headers: &reqwest::header::HeaderMap, body: &str, since: Mark) {
    for value in headers.get_all(reqwest::header::SET_COOKIE) {
        if let Some(token) = value
            .to_str()
            .ok()
            .and_then(|c| c.strip_prefix("orgsync_session="))
            .and_then(|c| c.split(';').next())
        {
            register_since(Kind::SessionToken, token, since);
        }
    }
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        register_json(path, &json, since);
    }
}

/// Registers the secrets of a server's configuration: the OIDC client
/// secret, the bind password of a config file's LDAP sync settings, the
/// password of the database URL.
pub fn register_config(config: &orgsync::config::ServerConfig) {
    if let Some(secret) = config.oidc.as_ref().and_then(|o| o.client_secret.as_ref()) {
        register(Kind::ClientSecret, secret.expose());
    }
    if let Some(ldap) = &config.ldapsync {
        register(Kind::BindPassword, &ldap.bind_password);
    }
    if let Ok(url) = reqwest::Url::parse(config.database_url.expose())
        && let Some(password) = url.password()
    {
        register(Kind::ConfigSecret, password);
    }
}

/// Registers a file a child process logs to (its stdout or stderr); it is
/// read at each [`check`], so call [`check`] before deleting it.
pub fn register_log_file(label: impl Into<String>, path: impl Into<PathBuf>) {
    with_scanner(|s| s.register_log_file(label, path));
}

/// Adds the captured output of a finished child process.
pub fn register_output(label: impl Into<String>, text: &[u8]) {
    with_scanner(|s| s.register_output(label, text));
}

/// Registers the secrets a run of the CLI used (`--password`-like flags,
/// secret variables, the session `orgsync login` stored in `config_dir`) and
/// adds its output. `stdout` is left out for commands that print a new secret
/// by design (`provisioner keys create`, `tokens create`), whose secret is
/// registered instead.
pub fn register_cli_run(
    args: &[&str],
    env: &[(String, String)],
    config_dir: Option<&Path>,
    stdout: &[u8],
    stderr: &[u8],
    since: Mark,
) {
    for pair in args.windows(2) {
        if pair[0].ends_with("password") {
            register_since(Kind::Password, pair[1], since);
        }
        if pair[0] == "--token" && pair[1] != "-" {
            register_since(Kind::ApiToken, pair[1], since);
        }
    }
    for arg in args {
        if let Some((flag, value)) = arg.split_once('=')
            && flag.ends_with("password")
        {
            register_since(Kind::Password, value, since);
        }
    }
    for (k, v) in env {
        match k.as_str() {
            k if k.ends_with("PASSWORD") => register_since(Kind::Password, v, since),
            "ORGSYNC_SESSION_TOKEN" => register_since(Kind::BearerToken, v, since),
            "ORGSYNC_PROVISIONER_DAEMON_KEY" => register_since(Kind::ProvisionerKey, v, since),
            _ => {}
        }
    }
    // Every stored profile: the default one and the named ones.
    let profiles = config_dir
        .and_then(|d| std::fs::read_dir(d.join("profiles")).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()));
    for path in config_dir
        .map(|d| d.join("session.json"))
        .into_iter()
        .chain(profiles)
    {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(session) = serde_json::from_str::<Value>(&text)
        {
            register_json("", &session, since);
        }
    }
    let what = args
        .iter()
        .take_while(|a| !a.starts_with('-'))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let prints_secret = args
        .windows(3)
        .any(|w| w == ["provisioner", "keys", "create"]);
    let prints_token = args.windows(2).any(|w| w == ["tokens", "create"]);
    if prints_secret {
        if let Some(key) = String::from_utf8_lossy(stdout).lines().last() {
            register_since(Kind::ProvisionerKey, key.trim(), since);
        }
    } else if prints_token {
        // The token alone (`--quiet`), on a line of its own (table), or as
        // `key` (JSON).
        let text = String::from_utf8_lossy(stdout);
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => register_json("/keys/tokens", &v, since),
            Err(_) => {
                for line in text.lines().map(str::trim) {
                    if !line.is_empty() && !line.contains(' ') {
                        register_since(Kind::ApiToken, line, since);
                    }
                }
            }
        }
    } else {
        register_output(format!("the stdout of `orgsync {what}`"), stdout);
    }
    register_output(format!("the stderr of `orgsync {what}`"), stderr);
}

// ---------------------------------------------------------------------------
// Scanning.

/// The secrets `which` as patterns: every form, with its secret's index.
fn automaton(secrets: &[(usize, &[String])]) -> Option<(AhoCorasick, Vec<usize>)> {
    let mut patterns = Vec::new();
    let mut owner = Vec::new();
    for (i, forms) in secrets {
        for f in forms.iter() {
            patterns.push(f.as_str());
            owner.push(*i);
        }
    }
    if patterns.is_empty() {
        return None;
    }
    let ac = AhoCorasick::new(&patterns).expect("logscan: patterns");
    Some((ac, owner))
}

/// Hits of `ac` in `text[from..to]`: (secret index, line start).
fn hits(
    ac: &(AhoCorasick, Vec<usize>),
    text: &[u8],
    from: usize,
    to: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    for m in ac.0.find_overlapping_iter(&text[from..to]) {
        let at = from + m.start();
        let line = text[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        out.push((ac.1[m.pattern().as_usize()], line));
    }
    out
}

/// The line at `start`, every form of `secrets` in it redacted, cut to a
/// readable length.
fn redacted_line(text: &[u8], start: usize, secrets: &[(Kind, &[String])]) -> String {
    let end = text[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| start + p);
    let mut line = String::from_utf8_lossy(&text[start..end]).into_owned();
    let mut all: Vec<(&Kind, &String)> = secrets
        .iter()
        .flat_map(|(k, forms)| forms.iter().map(move |f| (k, f)))
        .collect();
    // Longest first, so a secret containing another is redacted whole.
    all.sort_by_key(|(_, f)| std::cmp::Reverse(f.len()));
    for (kind, form) in all {
        line = line.replace(form.as_str(), &format!("[REDACTED {kind}]"));
    }
    // Colours of a server process's log, for a readable report.
    static ANSI: OnceLock<regex::Regex> = OnceLock::new();
    let ansi = ANSI.get_or_init(|| regex::Regex::new("\x1b\\[[0-9;]*m").expect("regex"));
    line = ansi.replace_all(&line, "").into_owned();
    if line.chars().count() > 600 {
        line = format!("{}...", line.chars().take(600).collect::<String>());
    }
    line
}

/// Scans every log for every registered secret; panics on a hit (or prints
/// it, when the thread is already panicking). Each hit is reported once.
pub fn check() {
    let leaks = with_scanner(Scanner::scan);
    if leaks.is_empty() {
        return;
    }
    let report = leaks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if std::thread::panicking() {
        eprintln!("secrets in logs:\n{report}");
    } else {
        panic!("secrets in logs:\n{report}");
    }
}

// ---------------------------------------------------------------------------
// The scan finds what it must: secrets logged the ways a server would log
// them, in-process and by a child process. These secrets are registered with
// scanners of their own, never with the suite's (which would fail).

/// A secret nobody else uses, with a space (so its URL-encoded forms differ).
fn proof_secret(what: &str) -> String {
    format!("{what} {}", uuid::Uuid::new_v4().simple())
}

fn percent(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn assert_found(leaks: &[Leak], kind: Kind, secret: &str, in_line: &str) {
    let leak = leaks
        .iter()
        .find(|l| l.kind == kind && l.line.contains(in_line))
        .unwrap_or_else(|| panic!("no {kind} found on a line with `{in_line}` in {leaks:#?}"));
    assert!(
        !leak.line.contains(secret) && !leak.line.contains(&percent(secret)),
        "the report shows the secret: {leak}"
    );
    assert!(leak.line.contains(&format!("[REDACTED {kind}]")), "{leak}");
}

#[tokio::test]
async fn the_scan_finds_a_secret_an_in_process_server_logs() {
    let s = crate::harness::TestServer::start().await;
    let start = mark();
    let mut scanner = Scanner::new(start);
    let in_path = proof_secret("path-token");
    let in_event = proof_secret("event-key");
    let late = proof_secret("late-password");
    let never = proof_secret("never-logged");
    scanner.register_since(Kind::SessionToken, &in_path, start);
    scanner.register_since(Kind::ApiToken, &in_event, start);
    scanner.register_since(Kind::ClientSecret, &never, start);
    // Short values are not secrets here, logged or not.
    assert!(!scanner.register_since(Kind::Password, "short", start));

    // A server logs the path of a request it has no route for (the request
    // span's `route`): the secret is there URL-encoded.
    let (status, _) = s
        .client()
        .get(&format!("/no-such-route/{}", percent(&in_path)))
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    // An event in a request span, as a handler would log a field.
    let span = tracing::info_span!("request", method = "POST", route = "/proof");
    span.in_scope(|| {
        tracing::debug!(target: "orgsync::api::proof", key = %in_event, "proof of the scan");
        tracing::debug!(target: "orgsync::api::proof", password = ?late, "proof of the scan");
    });

    let leaks = scanner.scan();
    assert_found(&leaks, Kind::SessionToken, &in_path, "/no-such-route/");
    assert_found(&leaks, Kind::ApiToken, &in_event, "orgsync::api::proof");
    assert!(
        leaks.iter().all(|l| l.kind != Kind::ClientSecret),
        "{leaks:#?}"
    );
    // The span's fields are on the event's line.
    assert!(
        leaks
            .iter()
            .any(|l| l.kind == Kind::ApiToken && l.line.contains("route=\"/proof\"")),
        "{leaks:#?}"
    );
    // A secret registered after it was logged is found in what was scanned
    // before, in its `Debug` form; each hit is reported once.
    scanner.register_since(Kind::Password, &late, start);
    let leaks = scanner.scan();
    assert_eq!(leaks.len(), 1, "{leaks:#?}");
    assert_found(&leaks, Kind::Password, &late, "orgsync::api::proof");
    assert!(scanner.scan().is_empty());
}

#[tokio::test]
async fn the_scan_finds_a_secret_a_server_process_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, database_url, data_dir) = crate::harness::TestDb::new().await;
    let log = dir.path().join("server.log");
    let mut scanner = Scanner::new(mark());
    let secret = proof_secret("child-key");
    scanner.register_since(Kind::ProvisionerKey, &secret, Mark::START);
    scanner.register_log_file("the proof server's log", &log);
    assert!(scanner.scan().is_empty(), "nothing logged yet");

    let (server, base) = crate::walkthrough::spawn_server(
        &database_url,
        &data_dir,
        &log,
        &["--provisioner-daemons", "0"],
    )
    .await;
    let resp = reqwest::get(format!("{base}/api/v2/no-such-route/{}", percent(&secret)))
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
    drop(server);
    let leaks = scanner.scan();
    assert_found(&leaks, Kind::ProvisionerKey, &secret, "/no-such-route/");
    assert!(
        leaks
            .iter()
            .all(|l| l.source.contains("the proof server's log"))
    );
}
