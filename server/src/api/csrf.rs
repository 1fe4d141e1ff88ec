//! Cross-site request forgery protection and the cookies it relies on.
//!
//! A browser attaches the session cookie `orgsync_session` to requests that
//! other sites make it send. So a state-changing request (any method but GET,
//! HEAD, OPTIONS) authenticated by that cookie is served only when it provably
//! comes from the server's own origin, the origin of the access URL
//! ([`guard`], decided by [`check`]):
//!
//! 1. `Sec-Fetch-Site`, when sent: `same-origin` is good; `cross-site`,
//!    `same-site` and unknown values are refused; `none` (a navigation the user
//!    started: typed URL, bookmark) is refused under `/api/`, whose writes are
//!    never navigations, and elsewhere (the web console) gives no verdict.
//! 2. `Origin`, when sent, must be the access URL's origin (`null` is refused).
//! 3. Only when neither header is sent: `Referer`'s origin must be the access
//!    URL's origin.
//!
//! Any header that names another origin refuses the request, and a request that
//! names none at all is refused too: browsers send at least one of these on
//! cross-origin writes, and clients that are not browsers authenticate with
//! `Authorization: Bearer`, which browsers never attach by themselves. Bearer
//! requests and requests without credentials (login) are not checked.
//!
//! The server-rendered console adds a token to its forms on top of this check:
//! [`token_for_session`] derives it from the session secret (an HMAC keyed by
//! the secret, so the token reveals nothing of the session and needs no server
//! state, the same on every replica, gone with the session), and
//! [`verify_token`] checks a submitted one. [`super::extract::Actor`] exposes
//! both for cookie sessions (`csrf_token`, `verify_csrf`).
//!
//! Every cookie orgsync sets is built by [`append_cookie`]: `HttpOnly`,
//! `SameSite=Lax`, and `Secure` when the access URL is `https://`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::extract::{CredentialSource, SESSION_COOKIE, credential};
use crate::error::ApiError;

/// The origin (`scheme://host[:port]`, default port omitted) of `url`, as a
/// browser serializes it in `Origin`. `None` for what is not an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// State of [`guard`]: the origin every cookie-authenticated write must come from.
#[derive(Debug, Clone)]
pub struct SameOrigin {
    /// `None` when the access URL has no origin: every cookie write is refused.
    pub origin: Option<String>,
}

impl SameOrigin {
    pub fn new(access_url: &str) -> Arc<SameOrigin> {
        Arc::new(SameOrigin {
            origin: origin_of(access_url),
        })
    }
}

/// Middleware: refuses (403: the API's JSON error under `/api/`, the console's
/// "Not allowed" page elsewhere) a state-changing request authenticated by the
/// session cookie unless [`check`] finds it same-origin.
pub async fn guard(State(same): State<Arc<SameOrigin>>, req: Request, next: Next) -> Response {
    if let Err(reason) = check(
        same.origin.as_deref(),
        req.method(),
        req.uri().path(),
        req.headers(),
    ) {
        tracing::info!(reason, "cross-site request refused");
        let mut resp = if is_api(req.uri().path()) {
            api_refusal(reason)
        } else {
            // A console form: the console's own 403 page, not the API's JSON.
            crate::console::page::error_page(&crate::error::Error::refused(
                "This form is out of date or was sent from another site. Open the page on this \
                 server and try again.",
            ))
        };
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    next.run(req).await
}

/// Whether `path` is the JSON API's (its refusals are JSON; the console's are pages).
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn api_refusal(reason: &'static str) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross-site request refused: a write authenticated by the session cookie must come \
             from this server's own pages",
    )
    .with_detail(reason)
    .into_response()
}

/// Whether a request may proceed; `Err` says why not. Safe methods, bearer
/// requests and requests without the session cookie always may.
pub fn check(
    origin: Option<&str>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if !matches!(credential(headers), Some((_, CredentialSource::Cookie))) {
        return Ok(());
    }
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_owned())
    };
    let same = |url: &str| origin.is_some() && origin_of(url).as_deref() == origin;
    let mut vouched = false;
    let fetch_site = header(header::HeaderName::from_static("sec-fetch-site"));
    match fetch_site.as_deref() {
        None => {}
        Some("same-origin") => vouched = true,
        Some("none") if path.starts_with("/api/") => {
            return Err("`Sec-Fetch-Site: none`: an API write is never a navigation");
        }
        Some("none") => {}
        Some("same-site") => return Err("`Sec-Fetch-Site: same-site` is another origin"),
        Some(_) => return Err("`Sec-Fetch-Site` says the request is cross-site"),
    }
    let sent_origin = header(header::ORIGIN);
    if let Some(o) = &sent_origin {
        if !same(o) {
            return Err("`Origin` is not this server's access URL");
        }
        vouched = true;
    }
    if fetch_site.is_none()
        && sent_origin.is_none()
        && let Some(r) = header(header::REFERER)
    {
        if !same(&r) {
            return Err("`Referer` is not on this server's access URL");
        }
        vouched = true;
    }
    if vouched {
        Ok(())
    } else {
        Err(
            "the request names no origin (`Sec-Fetch-Site`, `Origin` or `Referer`); \
             clients that are not browsers should send `Authorization: Bearer`",
        )
    }
}

const TOKEN_CONTEXT: &[u8] = b"orgsync csrf token v1";

/// The CSRF token of the session whose secret (the cookie's value) is
/// `session_secret`: HMAC-SHA256 keyed by the secret, hex. Stable for the
/// session's life, different for every session; learning it reveals nothing
/// of the secret.
pub fn token_for_session(session_secret: &str) -> String {
    hex::encode(token_bytes(session_secret))
}

fn token_bytes(session_secret: &str) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    match Hmac::<Sha256>::new_from_slice(session_secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(TOKEN_CONTEXT);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Whether `submitted` is the CSRF token of the session `session_secret`
/// (compared in constant time; an empty or malformed token never is).
pub fn verify_token(session_secret: &str, submitted: &str) -> bool {
    let Ok(submitted) = hex::decode(submitted.trim()) else {
        return false;
    };
    let expected = token_bytes(session_secret);
    !expected.is_empty() && bool::from(expected.as_slice().ct_eq(submitted.as_slice()))
}

/// Appends a `Set-Cookie` header: the one place cookies are made.
/// `HttpOnly; SameSite=Lax`, `Secure` when `access_url` is https; `max_age`
/// 0 clears the cookie.
pub fn append_cookie(
    headers: &mut HeaderMap,
    access_url: &str,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) {
    let secure = if access_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        "; Secure"
    } else {
        ""
    };
    let cookie =
        format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Appends the session cookie (`token` empty and `max_age` 0: clears it), for
/// every way of logging in and out.
pub fn append_session_cookie(headers: &mut HeaderMap, access_url: &str, token: &str, max_age: i64) {
    append_cookie(headers, access_url, SESSION_COOKIE, token, "/", max_age);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "https://orgsync.example.com";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap_or(header::WARNING),
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("bad")),
            );
        }
        h
    }

    fn verdict(method: Method, path: &str, pairs: &[(&str, &str)]) -> Result<(), &'static str> {
        check(origin_of(SITE).as_deref(), &method, path, &headers(pairs))
    }

    const COOKIE: (&str, &str) = ("cookie", "orgsync_session=abc");

    #[test]
    fn origins_are_normalized() {
        assert_eq!(
            origin_of("https://A.example.com:443/x?y").as_deref(),
            Some("https://a.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("file:///etc/passwd"), None);
    }

    #[test]
    fn only_cookie_writes_are_checked() {
        let foreign = ("origin", "https://evil.example");
        assert!(verdict(Method::GET, "/api/v2/users/me", &[COOKIE, foreign]).is_ok());
        assert!(verdict(Method::HEAD, "/api/v2/users/me", &[COOKIE, foreign]).is_ok());
        assert!(verdict(Method::POST, "/api/v2/users/login", &[foreign]).is_ok());
        let bearer = ("authorization", "Bearer t");
        assert!(
            verdict(
                Method::POST,
                "/api/v2/users/logout",
                &[COOKIE, bearer, foreign]
            )
            .is_ok()
        );
        // Another scheme does not replace the cookie: it still authenticates.
        let basic = ("authorization", "Basic dTpw");
        assert!(
            verdict(
                Method::POST,
                "/api/v2/users/logout",
                &[COOKIE, basic, foreign]
            )
            .is_err()
        );
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(verdict(m, "/api/v2/x", &[COOKIE, foreign]).is_err());
        }
    }

    #[test]
    fn sec_fetch_site_and_origin_decide() {
        let post = |pairs: &[(&str, &str)]| verdict(Method::POST, "/api/v2/x", pairs);
        let site = |v| ("sec-fetch-site", v);
        let own = ("origin", SITE);
        assert!(post(&[COOKIE, site("same-origin")]).is_ok());
        assert!(post(&[COOKIE, site("same-origin"), own]).is_ok());
        assert!(post(&[COOKIE, own]).is_ok());
        assert!(post(&[COOKIE, ("origin", "https://orgsync.example.com:443")]).is_ok());
        assert!(post(&[COOKIE, site("cross-site"), own]).is_err());
        assert!(post(&[COOKIE, site("same-site")]).is_err());
        assert!(post(&[COOKIE, site("whatever")]).is_err());
        assert!(post(&[COOKIE, site("none")]).is_err());
        assert!(
            post(&[
                COOKIE,
                site("same-origin"),
                ("origin", "https://evil.example")
            ])
            .is_err()
        );
        assert!(post(&[COOKIE, ("origin", "null")]).is_err());
        assert!(post(&[COOKIE, ("origin", "http://orgsync.example.com")]).is_err());
        assert!(
            post(&[
                COOKIE,
                ("origin", "https://orgsync.example.com.evil.example")
            ])
            .is_err()
        );
        // Nothing at all: refused.
        assert!(post(&[COOKIE]).is_err());
        // The console (outside /api/): `none` gives no verdict either way.
        let console = |pairs: &[(&str, &str)]| verdict(Method::POST, "/organizations/new", pairs);
        assert!(console(&[COOKIE, site("none"), own]).is_ok());
        assert!(console(&[COOKIE, site("none")]).is_err());
    }

    #[test]
    fn referer_counts_only_without_the_other_headers() {
        let post = |pairs: &[(&str, &str)]| verdict(Method::POST, "/api/v2/x", pairs);
        assert!(
            post(&[
                COOKIE,
                ("referer", "https://orgsync.example.com/organizations")
            ])
            .is_ok()
        );
        assert!(
            post(&[
                COOKIE,
                ("referer", "https://evil.example/orgsync.example.com")
            ])
            .is_err()
        );
        assert!(
            post(&[
                COOKIE,
                ("origin", "https://evil.example"),
                ("referer", "https://orgsync.example.com/")
            ])
            .is_err()
        );
    }

    #[test]
    fn no_access_origin_refuses_every_cookie_write() {
        let h = headers(&[COOKIE, ("origin", SITE)]);
        assert!(check(None, &Method::POST, "/api/v2/x", &h).is_err());
        assert!(check(None, &Method::GET, "/api/v2/x", &h).is_ok());
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = token_for_session("session-a");
        assert_eq!(a, token_for_session("session-a"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, token_for_session("session-b"));
        assert_ne!(
            a,
            crate::secrets::sha256_hex("session-a"),
            "not the stored hash"
        );
        assert!(verify_token("session-a", &a));
        assert!(!verify_token("session-b", &a));
        assert!(!verify_token("session-a", ""));
        assert!(!verify_token("session-a", "not hex"));
        assert!(!verify_token("session-a", &a[..62]));
    }

    #[test]
    fn cookies_are_secure_on_https() {
        let mut h = HeaderMap::new();
        append_session_cookie(&mut h, "https://orgsync.example.com", "tok", 60);
        append_session_cookie(&mut h, "http://127.0.0.1:3000", "", 0);
        let all: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            all,
            [
                "orgsync_session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure",
                "orgsync_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ]
        );
    }
}
