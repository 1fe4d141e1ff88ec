//! OIDC login over HTTP. `GET /users/oidc/login` sends the browser to the
//! provider; `GET /users/oidc/callback` checks the login state, lets
//! [`crate::oidc`] exchange the code and verify the tokens, then finds, links or
//! creates the user, runs IdP sync and opens a session, all in one transaction.
//!
//! The login state lives in the database (any replica can finish a login) and
//! is bound to the browser by a cookie holding the `state` value. Refusals are
//! answered with an HTML page when the browser asks for HTML, else with the API
//! error shape; nothing of a refused login is kept but a `login_failed` audit
//! entry once the provider has vouched for the identity.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::csrf::{append_cookie, append_session_cookie};
use super::extract::RequestMeta;
use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::clock;
use crate::config::{OidcConfig, is_local_path};
use crate::error::ApiError;
use crate::model::User;
use crate::oidc::{self, Identity, OidcError, RelyingParty, StoredState};
use crate::usecase::login;

/// The cookie that binds a login state to the browser that started it.
pub const STATE_COOKIE: &str = "orgsync_oidc_state";
const STATE_COOKIE_PATH: &str = "/api/v2/users/oidc";
const LOGIN_PATH: &str = "/api/v2/users/oidc/login";

/// Start an OIDC login (302 to the provider).
///
/// `GET /users/oidc/login[?redirect=/path]`: 302 to the provider.
#[utoipa::path(get, path = "/users/oidc/login", tag = "users", params(("redirect" = Option<String>, Query, description = "A path of this server to land on after the login")), security(()), responses((status = 302, description = "To the OpenID provider")))]
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match start(&app, query.as_deref()).await {
        Ok(r) => r,
        Err(e) => error_page(e, wants_html(&headers)),
    }
}

/// Finish an OIDC login (sets the session cookie, 302 on).
///
/// `GET /users/oidc/callback?code&state`: finishes the login, sets the session
/// cookie and sends the browser on.
#[utoipa::path(get, path = "/users/oidc/callback", tag = "users", params(("code" = Option<String>, Query, description = "The authorization code"), ("state" = Option<String>, Query, description = "The login state this server sent"), ("iss" = Option<String>, Query, description = "The issuer (RFC 9207), checked when present"), ("error" = Option<String>, Query, description = "The provider's error code"), ("error_description" = Option<String>, Query, description = "The provider's description of that error")), security(()), responses((status = 302, description = "Signed in; to the redirect target")))]
pub async fn callback(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match finish(&app, &meta, &headers, query.as_deref()).await {
        Ok(r) => r,
        Err(e) => error_page(e, wants_html(&headers)),
    }
}

async fn start(app: &AppState, query: Option<&str>) -> Result<Response, ApiError> {
    let cfg = config(app)?;
    let params = query_params(query)?;
    let redirect = match params.get("redirect") {
        Some(r) if is_local_path(r) => r.clone(),
        Some(_) => {
            return Err(ApiError::validation(
                "redirect",
                "must be a path on this server, like `/`",
            ));
        }
        None => cfg.post_login_redirect.clone(),
    };
    let rp = RelyingParty::new(cfg, &app.config.access_url).map_err(oidc_error)?;
    let login = rp.start().await.map_err(oidc_error)?;
    let now = clock::now();
    let stored = StoredState {
        nonce: login.nonce,
        pkce_verifier: login.pkce_verifier,
        redirect,
        created_at: clock::fmt(now),
    };
    login::oidc_begin(app.ctx(), &login.state, &stored, now).await?;
    let mut headers = no_store();
    insert_header(&mut headers, header::LOCATION, &login.authorize_url);
    append_cookie(
        &mut headers,
        &app.config.access_url,
        STATE_COOKIE,
        &login.state,
        STATE_COOKIE_PATH,
        oidc::STATE_TTL.num_seconds(),
    );
    Ok((StatusCode::FOUND, headers).into_response())
}

async fn finish(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let cfg = config(app)?;
    let params = query_params(query)?;
    let state = params
        .get("state")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| start_again("the callback carries no login state (`state`)"))?;
    // The state must come back to the browser that started the login.
    let bound = cookie_value(headers, STATE_COOKIE)
        .is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())));
    if !bound {
        return Err(start_again(
            "this login was not started in this browser (the login state cookie is missing or \
             different)",
        ));
    }
    let now = clock::now();
    // Consumed on its own, before anything else: a state is good for one try.
    let stored = login::oidc_take_state(app.ctx(), state, now)
        .await?
        .ok_or_else(|| start_again("unknown or already used login state"))?;
    if clock::parse(&stored.created_at).is_none_or(|t| now - t > oidc::STATE_TTL) {
        return Err(start_again(
            "the login state expired (logins must finish within 10 minutes)",
        ));
    }
    if let Some(error) = params.get("error") {
        let status = if error == "access_denied" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut e = ApiError::new(
            status,
            format!("the identity provider refused the login: `{error}`"),
        );
        if let Some(d) = params.get("error_description") {
            e = e.with_detail(d.clone());
        }
        return Err(e);
    }
    if let Some(iss) = params.get("iss")
        && *iss != cfg.issuer_url
    {
        return Err(start_again(&format!(
            "the authorization response names another issuer (`{iss}`)"
        )));
    }
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| start_again("the callback carries no authorization code (`code`)"))?;
    let rp = RelyingParty::new(cfg, &app.config.access_url).map_err(oidc_error)?;
    let identity = rp
        .finish(code, &stored.pkce_verifier, &stored.nonce, now)
        .await
        .map_err(oidc_error)?;

    let (_, token) = complete_login(app, &identity, &meta.audit(None), now).await?;
    let mut headers = no_store();
    insert_header(
        &mut headers,
        header::LOCATION,
        &format!("{}{}", app.config.access_url, stored.redirect),
    );
    append_session_cookie(
        &mut headers,
        &app.config.access_url,
        &token,
        app.config.session_lifetime_seconds,
    );
    append_cookie(
        &mut headers,
        &app.config.access_url,
        STATE_COOKIE,
        "",
        STATE_COOKIE_PATH,
        0,
    );
    Ok((StatusCode::FOUND, headers).into_response())
}

/// The callback after the provider vouched for `identity`: the login use case
/// ([`crate::usecase::login::oidc`]). Returns the user and the session token.
///
/// Public so the benchmark measures the real code path (`benches/login.rs`).
pub async fn complete_login(
    app: &AppState,
    identity: &Identity,
    ctx: &AuditCtx,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(User, String), ApiError> {
    let cfg = config(app)?;
    let done = login::oidc(
        app.ctx(),
        cfg,
        app.config.session_lifetime_seconds,
        identity,
        ctx,
        now,
    )
    .await?;
    Ok((done.user, done.session.secret))
}

fn config(app: &AppState) -> Result<&OidcConfig, ApiError> {
    app.config.oidc.as_ref().ok_or_else(|| {
        ApiError::not_found("OIDC login")
            .with_detail("OIDC login is not configured: set `oidc_issuer_url` and `oidc_client_id`")
    })
}

fn start_again(message: &str) -> ApiError {
    ApiError::bad_request(format!("{message}; start the login again"))
}

/// Maps relying-party failures to answers, in one place.
fn oidc_error(e: OidcError) -> ApiError {
    let internal = crate::oidc::describe(&e);
    let mut api = match &e {
        OidcError::Unreachable { step, .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the identity provider is unreachable; try again later",
        )
        .with_detail(format!(
            "the {step} request to the identity provider failed"
        )),
        OidcError::BadResponse { step, message } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the identity provider sent an invalid response",
        )
        .with_detail(format!("{step}: {message}")),
        OidcError::CodeRefused(message) => ApiError::bad_request(
            "the identity provider refused the authorization code; start the login again",
        )
        .with_detail(message.clone()),
        OidcError::InvalidIdToken(message) => {
            ApiError::unauthorized("the ID token from the identity provider failed verification")
                .with_detail(message.clone())
        }
        OidcError::Config(_) => ApiError::internal(&internal),
        OidcError::InvalidClaim { field, detail } => ApiError::validation(field, detail.clone()),
    };
    api.internal = Some(internal);
    api
}

/// The query parameters; a repeated parameter is refused (no ambiguity about
/// which `state` or `code` counts).
fn query_params(query: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(ApiError::bad_request(format!(
                "the query parameter `{k}` is repeated"
            )));
        }
    }
    Ok(out)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn no_store() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

fn insert_header(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// An error as the browser sees it: an HTML page when it asks for HTML, else
/// the API error shape. 5xx causes are logged, never shown.
fn error_page(err: ApiError, html: bool) -> Response {
    if !err.http_status().is_server_error() {
        tracing::info!(
            status = %err.http_status(),
            message = %err.body.message,
            detail = err.body.detail.as_deref().unwrap_or(""),
            "oidc login refused"
        );
    }
    if !html {
        // Logs 5xx with their cause.
        let mut resp = err.into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    if err.http_status().is_server_error() {
        tracing::error!(status = %err.http_status(), error = err.internal.as_deref().unwrap_or(""), "request failed");
    }
    let title = if err.http_status() == StatusCode::FORBIDDEN {
        "Login refused"
    } else {
        "Login failed"
    };
    let detail = err
        .body
        .detail
        .as_deref()
        .map(|d| format!("<p class=\"detail\">{}</p>\n", escape(d)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body>\n<h1>{title}</h1>\n<p class=\"message\">{}</p>\n{detail}\
         <p>HTTP {}</p>\n<p><a href=\"{LOGIN_PATH}\">Log in again</a></p>\n</body>\n</html>\n",
        escape(&err.body.message),
        err.status_code(),
    );
    let mut headers = no_store();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (err.http_status(), headers, body).into_response()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(query_params(Some("state=a&state=b")).is_err());
        let p = query_params(Some("code=c%2B1&state=s")).ok();
        assert_eq!(
            p.as_ref().and_then(|p| p.get("code")).map(String::as_str),
            Some("c+1")
        );
    }

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
