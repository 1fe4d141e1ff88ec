//! Request extractors: JSON bodies, query parameters and route parameters
//! whose rejections use the API error shape, and the authenticated actor.
//!
//! Text the databases cannot store alike is refused here, before any handler
//! runs: a string with NUL (`\u0000`), which PostgreSQL refuses in `text`
//! columns, is a 400 naming the field (the JSON path of the first such string
//! or key of a body, the query parameter, the route parameter).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::authz::CachedPrincipal;
use crate::config::ProxyNet;
use crate::error::{ApiError, Validation};
use crate::model::User;

/// The session cookie.
pub const SESSION_COOKIE: &str = "orgsync_session";

/// Why `text` cannot be stored, or `None` when it can. PostgreSQL refuses NUL
/// in `text` columns (SQLite would store it): refusing it everywhere keeps
/// both databases alike. Rust strings are valid UTF-8 and JSON's lone
/// surrogates are refused by the parser, so NUL is the one case left.
pub fn invalid_text(text: &str) -> Option<&'static str> {
    text.contains('\0')
        .then_some("must not contain NUL characters (`\\u0000`)")
}

/// The 400 for invalid text in `field` (a NUL shown as `\u0000` in the name).
fn invalid_text_error(field: &str, detail: &str) -> ApiError {
    ApiError::validation(&field.replace('\0', "\\u0000"), detail)
}

/// The first string or object key of a JSON value holding invalid text: its
/// path below `path` (`a.b[2].c`, as serde names fields; `body` for the root
/// of a body, `path` empty) and why.
pub fn invalid_json_text(value: &Value, path: &str) -> Option<(String, &'static str)> {
    match value {
        Value::String(s) => invalid_text(s).map(|d| {
            let field = if path.is_empty() { "body" } else { path };
            (field.to_owned(), d)
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| invalid_json_text(x, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match invalid_text(k) {
                Some(d) => Some((p, d)),
                None => invalid_json_text(x, &p),
            }
        }),
        _ => None,
    }
}

/// Invalid text in a JSON body, found without parsing it twice in the common
/// case: a NUL can only be written `\u0000` in JSON, so a body without that
/// sequence has none. With it (or a look-alike such as `\\u0000`), the body
/// is parsed as a value and walked.
fn invalid_json_body_text(body: &[u8]) -> Option<(String, &'static str)> {
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| invalid_json_text(&v, ""))
}

/// `Content-Type: application/json` (or `application/*+json`), as axum's own
/// JSON extractor decides it.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .rsplit_once('+')
                .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json")))
}

/// A JSON body. Malformed JSON, wrong types and unknown fields are 400 with the
/// API error shape, and so is text with NUL (naming the field); a missing
/// content type 415; an oversized body 413.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = json_body(req, state).await?;
        if let Some((field, detail)) = invalid_json_body_text(&body) {
            return Err(invalid_text_error(&field, detail));
        }
        parse_json(&body).map(ApiJson)
    }
}

/// A JSON body whose strings may hold NUL: for the daemon protocol's log and
/// failure calls, whose text is cleaned (NUL stripped) before it is stored.
/// Otherwise exactly [`ApiJson`].
pub struct ApiJsonAnyText<T>(pub T);

impl<T, S> FromRequest<S> for ApiJsonAnyText<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = json_body(req, state).await?;
        parse_json(&body).map(ApiJsonAnyText)
    }
}

/// The bytes of a JSON body: 415 without a JSON content type, 413 over the
/// body limit.
async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !json_content_type(req.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected `Content-Type: application/json`",
        ));
    }
    ApiBytes::from_request(req, state).await.map(|b| b.0)
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    match axum::Json::<T>::from_bytes(body) {
        Ok(axum::Json(v)) => Ok(v),
        Err(rejection) => Err(json_rejection(rejection)),
    }
}

/// A raw body; a body over the route's limit is a 413 in the API error shape.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(ApiBytes(b)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large())
            }
            Err(rejection) => Err(
                ApiError::new(rejection.status(), "cannot read request body")
                    .with_detail(rejection.body_text()),
            ),
        }
    }
}

/// The 413 of a body over the limit.
pub fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            // "Failed to deserialize the JSON body into the target type: PATH: MESSAGE at line L column C"
            let detail = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, d)| d)
                .to_owned();
            let (field, message) = match detail.split_once(": ") {
                Some((path, msg)) if !path.contains(' ') => (path.to_owned(), msg.to_owned()),
                _ => ("body".to_owned(), detail.clone()),
            };
            let mut e = ApiError::bad_request("invalid request body").with_detail(detail);
            e.body.validations.push(Validation {
                field,
                detail: message,
            });
            e
        }
        JsonRejection::JsonSyntaxError(_) => {
            let detail = text
                .split_once(": ")
                .map_or(text.as_str(), |(_, d)| d)
                .to_owned();
            ApiError::bad_request("malformed JSON").with_detail(detail)
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected `Content-Type: application/json`",
        ),
        other => {
            let status = other.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(status, "cannot read request body").with_detail(other.body_text())
            }
        }
    }
}

/// Route parameters; a rejection (a segment that is not UTF-8, a wrong type)
/// is a 400 in the API error shape, and so is a segment with NUL (`%00`),
/// naming the parameter.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Segments that are not UTF-8 are the typed extractor's rejection below.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await
            && let Some((name, detail)) = raw
                .iter()
                .find_map(|(name, value)| invalid_text(value).map(|d| (name, d)))
        {
            return Err(invalid_text_error(name, detail));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => {
                Err(ApiError::bad_request("invalid route parameter")
                    .with_detail(rejection.body_text()))
            }
        }
    }
}

/// Query parameters; a rejection (wrong type, unknown value) is a 400 in the
/// API error shape naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((field, detail)) =
            form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| {
                invalid_text(&k)
                    .or_else(|| invalid_text(&v))
                    .map(|d| (k.into_owned(), d))
            })
        {
            return Err(invalid_text_error(&field, detail));
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(v) => Ok(ApiQuery(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                // serde names unknown fields in its message, not in the path.
                let field = if path.is_empty() || path == "." {
                    inner.split('`').nth(1).unwrap_or("query").to_owned()
                } else {
                    path
                };
                let mut err =
                    ApiError::bad_request("invalid query parameters").with_detail(inner.clone());
                err.body.validations.push(Validation {
                    field,
                    detail: inner,
                });
                Err(err)
            }
        }
    }
}

/// Where a request came from, for audit entries and login throttling.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: String,
    /// The client's address (see [`client_addr`]); `None` when unknown.
    pub addr: Option<IpAddr>,
    pub user_agent: String,
    pub request_id: String,
}

impl RequestMeta {
    pub fn audit(&self, user_id: Option<&str>) -> AuditCtx {
        AuditCtx {
            user_id: user_id.map(str::to_owned),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            source: "api",
        }
    }
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| client_addr(c.0.ip(), &parts.headers, &state.config.trusted_proxies));
        Ok(RequestMeta {
            ip: addr.map(|a| a.to_string()).unwrap_or_default(),
            addr,
            user_agent: bounded(&header("user-agent"), MAX_USER_AGENT),
            request_id: bounded(&header("x-request-id"), MAX_REQUEST_ID),
        })
    }
}

/// Client-chosen text an audit entry keeps (`User-Agent`, `X-Request-Id`) is
/// bounded, so requests that need no login cannot grow the audit log at will.
const MAX_USER_AGENT: usize = 256;
const MAX_REQUEST_ID: usize = 128;

/// `text` cut to at most `max` bytes on a character boundary, control
/// characters dropped.
fn bounded(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// The client's address: the socket peer, unless the peer is one of the
/// `trusted` proxies; then `X-Forwarded-For` is read from the right (each
/// trusted hop vouches for the address it appended) and the first address that
/// is not a trusted proxy is the client. An entry that is not an IP address
/// stops the walk at the last trusted hop.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[ProxyNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(*ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => client = ip.to_canonical(),
            Err(_) => break,
        }
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// Where the secret of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer` (or `Coder-Session-Token`): sent deliberately by the client.
    Bearer,
    /// The `orgsync_session` cookie: attached by the browser, also to requests
    /// other sites make it send (see [`super::csrf`]).
    Cookie,
}

/// The header Coder's clients send their token in.
pub const CODER_SESSION_TOKEN: &str = "coder-session-token";

/// The secret of a request and where it came from: `Authorization: Bearer`,
/// else the `Coder-Session-Token` header, else the session cookie. The one definition of which credential a request
/// carries, for authentication and the cross-site check alike.
pub fn credential(headers: &HeaderMap) -> Option<(String, CredentialSource)> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    if let Some(t) = bearer {
        return Some((t.trim().to_owned(), CredentialSource::Bearer));
    }
    // Coder's header, for clients written against Coder's API. A browser
    // sends a custom header cross-site only after a CORS preflight, which
    // this server never grants: deliberate, like a bearer.
    if let Some(t) = headers
        .get(CODER_SESSION_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some((t.to_owned(), CredentialSource::Bearer));
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| (v.to_owned(), CredentialSource::Cookie))
}

/// The authenticated user of a request and its authorization slice.
pub struct Actor {
    pub user: User,
    pub key_id: String,
    pub principal: Arc<CachedPrincipal>,
    pub meta: RequestMeta,
    /// Where the session or token came from.
    pub credential: CredentialSource,
    /// The CSRF token of a cookie session (see [`super::csrf`]).
    csrf_token: Option<String>,
}

impl Actor {
    pub fn audit(&self) -> AuditCtx {
        self.meta.audit(Some(&self.user.id))
    }

    pub fn id(&self) -> &str {
        &self.user.id
    }

    /// The caller of a use case: this user, audited with this request's metadata.
    pub fn caller(&self) -> crate::usecase::Caller {
        crate::usecase::Caller::User {
            principal: self.principal.clone(),
            audit: self.audit(),
        }
    }

    /// Resolves a `{user}` route segment: `me`, an id or a username.
    pub fn resolve_user_key<'a>(&'a self, key: &'a str) -> &'a str {
        if key == "me" { &self.user.id } else { key }
    }

    /// The CSRF token that forms rendered for this cookie session carry (in a
    /// hidden `csrf_token` field); `None` for bearer requests, which need none.
    pub fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }

    /// Checks the CSRF token a form submitted: 403 unless it is this cookie
    /// session's token. Bearer requests pass (no browser attaches a bearer).
    pub fn verify_csrf(&self, submitted: &str) -> Result<(), ApiError> {
        match &self.csrf_token {
            None => Ok(()),
            Some(expected)
                if bool::from(expected.as_bytes().ct_eq(submitted.trim().as_bytes())) =>
            {
                Ok(())
            }
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or does not belong to this session; reload the \
                 page and try again",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        let (token, source) = credential(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("authentication required: send `Authorization: Bearer <token>`")
        })?;
        let signed_in = crate::usecase::sessions::authenticate(state.ctx(), &token).await?;
        let (user, key_id, principal) = (signed_in.user, signed_in.key_id, signed_in.principal);
        tracing::Span::current().record("user_id", user.id.as_str());
        let csrf_token =
            (source == CredentialSource::Cookie).then(|| super::csrf::token_for_session(&token));
        Ok(Actor {
            user,
            key_id,
            principal,
            meta,
            credential: source,
            csrf_token,
        })
    }
}

/// A use case called by this request: the application to run it against, the
/// signed-in caller and the route parameters (`P`, parsed as [`Path`] parses
/// them: `String` for one, a tuple for several; `()` when the handler reads
/// none). The extractor of every handler that calls one. The caller is
/// authenticated before the route parameters are read.
pub struct Call<P = ()> {
    pub app: AppState,
    pub caller: crate::usecase::Caller,
    pub actor: Actor,
    pub path: P,
}

impl<P> Call<P> {
    pub fn ctx(&self) -> crate::usecase::Ctx<'_> {
        self.app.ctx()
    }
}

impl<P> FromRequestParts<AppState> for Call<P>
where
    P: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let actor = Actor::from_request_parts(parts, state).await?;
        let Path(path) = Path::<P>::from_request_parts(parts, state).await?;
        Ok(Call {
            app: state.clone(),
            caller: actor.caller(),
            actor,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = v.parse() {
            h.insert("x-forwarded-for", v);
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() -> Result<(), String> {
        let trusted = [ProxyNet::parse("10.0.0.0/8")?, ProxyNet::parse("::1")?];
        let spoofed = xff("6.6.6.6, 203.0.113.9");
        // No trusted proxies, or a peer that is not one: the peer.
        assert_eq!(
            client_addr(ip("198.51.100.1"), &spoofed, &[]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_addr(ip("198.51.100.1"), &spoofed, &trusted),
            ip("198.51.100.1")
        );
        // Through a trusted proxy: the rightmost untrusted entry, not the spoofable left.
        assert_eq!(
            client_addr(ip("10.0.0.2"), &spoofed, &trusted),
            ip("203.0.113.9")
        );
        let chain = xff("6.6.6.6, 203.0.113.9, 10.1.1.1");
        assert_eq!(client_addr(ip("::1"), &chain, &trusted), ip("203.0.113.9"));
        // Garbage stops at the last trusted hop; no header: the proxy itself.
        assert_eq!(
            client_addr(ip("10.0.0.2"), &xff("evil, 10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_addr(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_addr(ip("::ffff:10.0.0.2"), &spoofed, &trusted),
            ip("203.0.113.9")
        );
        Ok(())
    }

    #[test]
    fn client_text_kept_for_the_audit_is_bounded() {
        assert_eq!(bounded("curl/8.0", MAX_USER_AGENT), "curl/8.0");
        assert_eq!(bounded(&"é".repeat(200), 5), "éé");
        assert_eq!(bounded("a\tb\u{7f}c", 10), "abc");
        assert_eq!(
            bounded(&"x".repeat(90_000), MAX_USER_AGENT).len(),
            MAX_USER_AGENT
        );
    }

    #[test]
    fn the_bearer_header_wins_over_the_cookie() {
        use axum::http::HeaderValue;
        use axum::http::header::{AUTHORIZATION, COOKIE};
        let mut h = HeaderMap::new();
        let cookie = Some(("c".to_owned(), CredentialSource::Cookie));
        h.insert(COOKIE, HeaderValue::from_static("a=b; orgsync_session=c"));
        assert_eq!(credential(&h), cookie);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic x"));
        assert_eq!(credential(&h), cookie);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let bearer = Some(("t".to_owned(), CredentialSource::Bearer));
        assert_eq!(credential(&h), bearer);
        assert_eq!(credential(&HeaderMap::new()), None);
    }

    #[test]
    fn json_text_with_nul_is_found_with_its_path() {
        assert_eq!(invalid_json_text(&json!({"a": ["x", "y"]}), ""), None);
        let found = |v: Value| invalid_json_text(&v, "").map(|(f, _)| f);
        assert_eq!(found(json!("a\0")).as_deref(), Some("body"));
        assert_eq!(
            found(json!({"claims": {"groups": ["ok", "b\0"]}})).as_deref(),
            Some("claims.groups[1]")
        );
        assert_eq!(found(json!({"k\0": 1})).as_deref(), Some("k\0"));
        assert_eq!(found(json!([{"x": "\0"}])).as_deref(), Some("[0].x"));
    }

    #[test]
    fn only_a_real_nul_escape_is_invalid_body_text() {
        assert_eq!(invalid_json_body_text(br#"{"a": "plain"}"#), None);
        // An escaped backslash followed by `u0000` is text, not NUL.
        assert_eq!(invalid_json_body_text(br#"{"a": "\\u0000"}"#), None);
        assert_eq!(
            invalid_json_body_text(br#"{"a": "x\u0000"}"#).map(|(f, _)| f),
            Some("a".to_owned())
        );
        // Malformed JSON is left to the parser's own error.
        assert_eq!(invalid_json_body_text(br#"{"a": "\u0000"#), None);
    }

    #[test]
    fn json_content_types_as_axum_decides_them() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_str(v)
                    .unwrap_or(axum::http::HeaderValue::from_static("x")),
            );
            json_content_type(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("application/json; charset=utf-8"));
        assert!(ct("Application/JSON"));
        assert!(ct("application/cloudevents+json"));
        assert!(!ct("text/json"));
        assert!(!ct("application/x-tar"));
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
