//! What the client commands share: the stored session, which server and token
//! a command uses, the HTTP client, and how failures become exit codes.
//!
//! A command uses `ORGSYNC_URL` and `ORGSYNC_SESSION_TOKEN` when set, else the
//! session `orgsync login` stored in `ORGSYNC_CONFIG_DIR` (default: the user's
//! config dir + `orgsync`): the default profile as `session.json`, a named
//! profile (`--profile NAME` or `ORGSYNC_PROFILE`) as `profiles/NAME.json`,
//! each mode 0600. A stored token is only ever sent to the URL it was issued by.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Exit code of API and server errors, network failures and local I/O errors.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of usage errors (clap's own, and missing input the CLI may not prompt for).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when not logged in, or the server answered 401.
pub const EXIT_UNAUTHENTICATED: u8 = 4;

pub const ENV_URL: &str = "ORGSYNC_URL";
pub const ENV_TOKEN: &str = "ORGSYNC_SESSION_TOKEN";
pub const ENV_CONFIG_DIR: &str = "ORGSYNC_CONFIG_DIR";
pub const ENV_PROFILE: &str = "ORGSYNC_PROFILE";

/// The name of the profile stored as `session.json`.
pub const DEFAULT_PROFILE: &str = "default";

/// The profile this run uses (see [`select_profile`]).
static PROFILE: OnceLock<String> = OnceLock::new();

/// Selects the stored login this run uses (`--profile`/`ORGSYNC_PROFILE`,
/// checked by [`parse_profile`]); the default profile when never called.
pub fn select_profile(name: Option<String>) {
    let _ = PROFILE.set(name.unwrap_or_else(|| DEFAULT_PROFILE.to_owned()));
}

/// The profile this run uses.
pub fn profile() -> &'static str {
    PROFILE.get().map_or(DEFAULT_PROFILE, String::as_str)
}

/// A profile name: 1-64 ASCII letters, digits, `-` or `_` (it names a file).
pub fn parse_profile(raw: &str) -> std::result::Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("a profile name is 1-64 letters, digits, `-` or `_`".to_owned())
    }
}

/// ` (profile `NAME`)` for messages, empty for the default profile.
pub fn profile_note() -> String {
    match profile() {
        DEFAULT_PROFILE => String::new(),
        name => format!(" (profile `{name}`)"),
    }
}

/// ` --profile NAME` for hints, empty for the default profile.
pub fn profile_flag() -> String {
    match profile() {
        DEFAULT_PROFILE => String::new(),
        name => format!(" --profile {name}"),
    }
}

/// One `{field, detail}` of an API error.
#[derive(Debug, Clone, Deserialize)]
pub struct Validation {
    pub field: String,
    pub detail: String,
}

/// An error answer of the API: `{message, detail?, validations?}` and its status.
#[derive(Debug, Clone, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    #[serde(skip)]
    pub status: u16,
    pub message: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub validations: Vec<Validation>,
}

/// There is no session to use, or it was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotAuthenticated(pub String);

/// The command line lacks something the CLI may not prompt for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs an async command on a fresh runtime and turns its outcome into an
/// exit code, printing any error to stderr.
pub fn run(command: impl Future<Output = Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Runs a client command against the logged-in deployment (see [`run`] and
/// [`ApiClient::from_session`]).
pub fn run_with_session(command: impl AsyncFnOnce(ApiClient) -> Result<()>) -> ExitCode {
    run(async move { command(ApiClient::from_session()?).await })
}

/// The exit code an error means (see the codes above).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<ApiFailure>() {
            return if f.status == StatusCode::UNAUTHORIZED.as_u16() {
                EXIT_UNAUTHENTICATED
            } else {
                EXIT_FAILURE
            };
        }
        if cause.is::<NotAuthenticated>() {
            return EXIT_UNAUTHENTICATED;
        }
        if cause.is::<UsageError>() {
            return EXIT_USAGE;
        }
    }
    EXIT_FAILURE
}

/// Prints an error to stderr: the message chain, then the server's detail and
/// validations, one per line.
pub fn report(err: &anyhow::Error) {
    eprintln!("error: {err:#}");
    if let Some(f) = err.chain().find_map(|c| c.downcast_ref::<ApiFailure>()) {
        if let Some(detail) = f.detail.as_deref().filter(|d| !d.is_empty()) {
            eprintln!("  detail: {detail}");
        }
        // The message often is the one validation already ("invalid `x`: ...").
        for v in &f.validations {
            if !(f.message.contains(&v.field) && f.message.contains(&v.detail)) {
                eprintln!("  {}: {}", v.field, v.detail);
            }
        }
        if f.status == StatusCode::UNAUTHORIZED.as_u16() {
            eprintln!(
                "  hint: log in again with `orgsync login URL{}`, or set {ENV_URL} and {ENV_TOKEN}",
                profile_flag()
            );
        }
    }
}

/// The value of an environment variable, unless unset or empty.
pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses a deployment URL (`http(s)://host[:port][/prefix]`), without a
/// trailing slash.
pub fn parse_url(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|e| {
        UsageError(format!(
            "`{raw}` is not a URL ({e}); e.g. http://127.0.0.1:3000"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UsageError(format!("`{raw}` is not an http:// or https:// URL")).into());
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(UsageError(format!("`{raw}` has no host")).into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UsageError(format!("`{raw}` must not have a query or fragment")).into());
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// The URL as stored and compared: no trailing slash.
pub fn url_text(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// What `orgsync login` stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    pub url: String,
    pub session_token: String,
    #[serde(default)]
    pub username: String,
}

/// `ORGSYNC_CONFIG_DIR`, else the user's config dir + `orgsync`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(dir) = env_nonempty(ENV_CONFIG_DIR) {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|d| d.join("orgsync"))
        .ok_or_else(|| anyhow!("cannot find the user's config directory; set {ENV_CONFIG_DIR}"))
}

/// The file of the selected profile's session.
pub fn session_path() -> Result<PathBuf> {
    let dir = config_dir()?;
    Ok(match profile() {
        DEFAULT_PROFILE => dir.join("session.json"),
        name => dir.join("profiles").join(format!("{name}.json")),
    })
}

/// Removes the selected profile's stored session; false if there was none.
pub fn remove_session() -> Result<bool> {
    let path = session_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

pub fn load_session() -> Result<Option<StoredSession>> {
    let path = session_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "cannot read the session in {}; run `orgsync login URL{}` again",
                path.display(),
                profile_flag()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the session file readable by its owner only (0600, in a 0700
/// directory when the CLI creates it), replacing any previous one atomically.
pub fn save_session(session: &StoredSession) -> Result<PathBuf> {
    let path = session_path()?;
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", profile(), std::process::id()));
    let text = serde_json::to_string_pretty(session).context("cannot encode the session")?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(path)
}

/// The server and token a client command uses.
pub fn resolve_target() -> Result<(Url, String)> {
    let env_url = env_nonempty(ENV_URL);
    let env_token = env_nonempty(ENV_TOKEN);
    if let (Some(url), Some(token)) = (&env_url, &env_token) {
        let url = parse_url(url).with_context(|| format!("in {ENV_URL}"))?;
        return Ok((url, token.trim().to_owned()));
    }
    let stored = load_session()?;
    match (env_url, env_token, stored) {
        (Some(url), None, stored) => {
            let url = parse_url(&url).with_context(|| format!("in {ENV_URL}"))?;
            match stored {
                Some(s) if s.url == url_text(&url) => Ok((url, s.session_token)),
                _ => Err(NotAuthenticated(format!(
                    "not logged in to {}: run `orgsync login {}{}` or set {ENV_TOKEN}",
                    url_text(&url),
                    url_text(&url),
                    profile_flag()
                ))
                .into()),
            }
        }
        (None, Some(token), Some(s)) => {
            let url = parse_url(&s.url).context("in the stored session")?;
            Ok((url, token.trim().to_owned()))
        }
        (None, Some(_), None) => Err(UsageError(format!(
            "{ENV_TOKEN} is set but no server is known: set {ENV_URL} too"
        ))
        .into()),
        (None, None, Some(s)) => {
            let url = parse_url(&s.url).context("in the stored session")?;
            Ok((url, s.session_token))
        }
        _ => Err(NotAuthenticated(format!(
            "not logged in{}: run `orgsync login URL{}`, or set {ENV_URL} and {ENV_TOKEN}",
            profile_note(),
            profile_flag()
        ))
        .into()),
    }
}

/// A JSON client of one deployment's `/api/v2`.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl ApiClient {
    pub fn new(base: Url, token: Option<String>) -> Result<ApiClient> {
        ApiClient::with_timeout(base, token, Duration::from_secs(120))
    }

    /// A client whose requests give up after `timeout` (connecting: at most 10 s).
    pub fn with_timeout(base: Url, token: Option<String>, timeout: Duration) -> Result<ApiClient> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("orgsync-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        Ok(ApiClient { http, base, token })
    }

    /// A client for the logged-in deployment (see [`resolve_target`]).
    pub fn from_session() -> Result<ApiClient> {
        let (url, token) = resolve_target()?;
        ApiClient::new(url, Some(token))
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// `base/api/v2/<segments>`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("`{}` cannot be a base URL", self.base))?
            .pop_if_empty()
            .extend(["api", "v2"])
            .extend(segments);
        Ok(url)
    }

    /// Sends a request and returns the JSON body (`null` when empty), or an
    /// [`ApiFailure`] for an error status.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut url = self.endpoint(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            req = req.json(body);
        }
        self.exchange(req, &format!("{method} {}", url.path()))
            .await
    }

    /// Sends a request with the token and reads its answer: the JSON body
    /// (`null` when empty), or an [`ApiFailure`] for an error status. `what`
    /// names the request in errors (`GET /api/v2/...`).
    async fn exchange(&self, mut req: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach the orgsync server at {}",
                url_text(&self.base)
            )
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("cannot read the answer to {what}"))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).with_context(|| {
                format!(
                    "the answer to {what} is not JSON; is {} an orgsync server?",
                    url_text(&self.base)
                )
            });
        }
        let failure = match serde_json::from_str::<ApiFailure>(&text) {
            Ok(f) => ApiFailure {
                status: status.as_u16(),
                ..f
            },
            Err(_) => ApiFailure {
                status: status.as_u16(),
                message: format!("the server answered {status} to {what}"),
                detail: Some(text.chars().take(500).collect::<String>())
                    .filter(|t| !t.trim().is_empty()),
                validations: Vec::new(),
            },
        };
        Err(failure.into())
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::GET, segments, &[], None).await
    }

    pub async fn get_query(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        self.send(Method::GET, segments, query, None).await
    }

    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> Result<Value> {
        self.send(Method::POST, segments, &[], body).await
    }

    pub async fn put(&self, segments: &[&str], body: Option<&Value>) -> Result<Value> {
        self.send(Method::PUT, segments, &[], body).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::PATCH, segments, &[], Some(body)).await
    }

    /// Uploads a tar archive (`POST /files?organization=ORG`); returns `{hash}`.
    pub async fn upload_tar(&self, org: &str, tar: Vec<u8>) -> Result<Value> {
        let mut url = self.endpoint(&["files"])?;
        url.query_pairs_mut().append_pair("organization", org);
        let req = self
            .http
            .post(url)
            .header("Content-Type", "application/x-tar")
            .body(tar);
        self.exchange(req, "the upload").await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::DELETE, segments, &[], None).await
    }
}

/// The HTTP status of an API failure in an error chain, if it is one.
pub fn api_status(err: &anyhow::Error) -> Option<u16> {
    err.chain()
        .find_map(|c| c.downcast_ref::<ApiFailure>())
        .map(|f| f.status)
}

/// A request body of the fields given: a `None` field is left out, so the
/// server applies its default.
pub fn fields<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect(),
    )
}

/// Fails when a required value is absent from a JSON answer.
pub fn str_of<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    match value.get(key).and_then(Value::as_str) {
        Some(s) => Ok(s),
        None => bail!("the server's answer has no `{key}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized_without_trailing_slash() {
        let u = parse_url("http://127.0.0.1:3000/");
        assert!(matches!(&u, Ok(u) if url_text(u) == "http://127.0.0.1:3000"));
        let u = parse_url("https://example.com/orgsync/");
        assert!(matches!(&u, Ok(u) if url_text(u) == "https://example.com/orgsync"));
        for bad in ["127.0.0.1:3000", "ftp://x", "http://x/?a=b", "not a url"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_encode_segments() {
        let base = parse_url("http://h:1/prefix").map_err(|e| e.to_string());
        let client = base.and_then(|b| ApiClient::new(b, None).map_err(|e| e.to_string()));
        let url = client.and_then(|c| {
            c.endpoint(&["organizations", "a b/c"])
                .map_err(|e| e.to_string())
        });
        assert_eq!(
            url.map(|u| u.to_string()),
            Ok("http://h:1/prefix/api/v2/organizations/a%20b%2Fc".to_owned())
        );
    }

    #[test]
    fn exit_codes_follow_the_error_kind() {
        let api = |status| {
            anyhow::Error::from(ApiFailure {
                status,
                message: "m".into(),
                detail: None,
                validations: Vec::new(),
            })
        };
        assert_eq!(exit_code(&api(404)), EXIT_FAILURE);
        assert_eq!(exit_code(&api(401)), EXIT_UNAUTHENTICATED);
        assert_eq!(
            exit_code(&api(401).context("while doing x")),
            EXIT_UNAUTHENTICATED
        );
        assert_eq!(
            exit_code(&NotAuthenticated("x".into()).into()),
            EXIT_UNAUTHENTICATED
        );
        assert_eq!(exit_code(&UsageError("x".into()).into()), EXIT_USAGE);
        assert_eq!(exit_code(&anyhow!("other")), EXIT_FAILURE);
    }
}
