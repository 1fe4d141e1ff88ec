//! Signing in and out: `/` (to the workspaces, the login or the setup),
//! `/login` (password; a link to the OIDC login when it is configured),
//! `/setup` (the first user, only while there is none), `/logout`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::form::{self, FormErrors};
use super::page::{Chrome, PageResult, Viewer, error_page, redirect, render};
use crate::api::extract::RequestMeta;
use crate::app::AppState;
use crate::config::is_local_path;
use crate::throttle;
use crate::usecase::sessions::{self, LoginOutcome, PasswordLogin};
use crate::usecase::users::{self, FirstUser};

/// Where a signed-in user lands.
const HOME: &str = "/workspaces";

/// The page to go to after login: `redirect` when it is a path on this
/// server, else the workspaces.
fn after_login(redirect: Option<&str>) -> String {
    match redirect {
        Some(r) if is_local_path(r) && !r.starts_with("/login") && !r.starts_with("/setup") => {
            r.to_owned()
        }
        _ => HOME.to_owned(),
    }
}

/// `GET /`: the workspaces when signed in, else the login (or the setup of a
/// deployment without a user).
pub async fn root(State(app): State<AppState>, viewer: Result<Viewer, Response>) -> Response {
    if viewer.is_ok() {
        return redirect(HOME);
    }
    match users::first_exists(app.ctx()).await {
        Ok(true) => redirect("/login"),
        Ok(false) => redirect("/setup"),
        Err(e) => error_page(&e),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    redirect: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    redirect: String,
    /// The OIDC login route with the redirect, when OIDC is configured.
    oidc: Option<String>,
    errors: FormErrors,
}

fn login_page_of(
    app: &AppState,
    email: String,
    redirect: String,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let oidc = app.config.oidc.as_ref().map(|_| {
        format!(
            "/api/v2/users/oidc/login?redirect={}",
            form::encode(&after_login(Some(&redirect)))
        )
    });
    let page = LoginPage {
        chrome: Chrome::anonymous("Sign in"),
        email,
        redirect,
        oidc,
        errors,
    };
    render(app, status, &page, false)
}

/// `GET /login[?redirect=/path]`.
pub async fn login_page(State(app): State<AppState>, Query(q): Query<LoginQuery>) -> PageResult {
    if !users::first_exists(app.ctx()).await? {
        return Ok(redirect("/setup"));
    }
    let redirect = after_login(q.redirect.as_deref());
    Ok(login_page_of(
        &app,
        String::new(),
        redirect,
        FormErrors::default(),
        StatusCode::OK,
    ))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    redirect: Option<String>,
}

/// `POST /login`: [`sessions::password_login`]; the session cookie and a
/// redirect, or the form again with what went wrong.
pub async fn login(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let f: LoginForm = form::public(&headers, &app.config.access_url, &body)?;
    let redirect_to = after_login(f.redirect.as_deref());
    let lifetime = app.config.session_lifetime_seconds;
    let outcome = sessions::password_login(
        app.ctx(),
        meta.audit(None),
        meta.addr,
        throttle::Limits::of(&app.config),
        &PasswordLogin {
            email: f.email.clone(),
            password: f.password,
        },
        lifetime,
    )
    .await;
    match outcome {
        Ok(LoginOutcome::Session(session)) => {
            let mut resp = redirect(&redirect_to);
            crate::api::csrf::append_session_cookie(
                resp.headers_mut(),
                &app.config.access_url,
                &session.secret,
                lifetime,
            );
            Ok(resp)
        }
        Ok(LoginOutcome::Throttled { retry_after }) => Ok(login_page_of(
            &app,
            f.email,
            redirect_to,
            FormErrors::message(format!(
                "Too many failed sign-ins. Try again in {retry_after} seconds."
            )),
            StatusCode::TOO_MANY_REQUESTS,
        )),
        Err(e) if e.kind == crate::error::Kind::Unauthenticated => Ok(login_page_of(
            &app,
            f.email,
            redirect_to,
            FormErrors::message("Incorrect email or password."),
            StatusCode::UNAUTHORIZED,
        )),
        Err(e) => {
            let status = StatusCode::from_u16(e.kind.code()).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = FormErrors::from_error(e)?;
            Ok(login_page_of(&app, f.email, redirect_to, errors, status))
        }
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct SetupPage {
    chrome: Chrome,
    username: String,
    email: String,
    name: String,
    errors: FormErrors,
}

/// `GET /setup`: the first user's form, only while there is no user.
pub async fn setup_page(State(app): State<AppState>) -> PageResult {
    if users::first_exists(app.ctx()).await? {
        return Ok(redirect("/login"));
    }
    let page = SetupPage {
        chrome: Chrome::anonymous("Set up orgsync"),
        username: String::new(),
        email: String::new(),
        name: String::new(),
        errors: FormErrors::default(),
    };
    Ok(render(&app, StatusCode::OK, &page, false))
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /setup`: [`users::create_first`]; the owner is signed in.
pub async fn setup(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let f: SetupForm = form::public(&headers, &app.config.access_url, &body)?;
    let lifetime = app.config.session_lifetime_seconds;
    let req = FirstUser {
        username: f.username.clone(),
        email: f.email.clone(),
        password: f.password,
        name: f.name.clone(),
    };
    match users::create_first(app.ctx(), meta.audit(None), req, lifetime).await {
        Ok(created) => {
            let mut resp = redirect(HOME);
            crate::api::csrf::append_session_cookie(
                resp.headers_mut(),
                &app.config.access_url,
                &created.session.secret,
                lifetime,
            );
            Ok(resp)
        }
        Err(e) if e.kind == crate::error::Kind::Conflict => Ok(redirect("/login")),
        Err(e) => {
            let status = StatusCode::from_u16(e.kind.code()).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = FormErrors::from_error(e)?;
            let page = SetupPage {
                chrome: Chrome::anonymous("Set up orgsync"),
                username: f.username,
                email: f.email,
                name: f.name,
                errors,
            };
            Ok(render(&app, status, &page, false))
        }
    }
}

/// `POST /logout` (the form of the user menu): ends the session.
pub async fn logout(viewer: Viewer, body: Bytes) -> PageResult {
    let _: form::CsrfOnly = form::parse(&viewer, &body)?;
    sessions::logout(
        viewer.ctx(),
        &viewer.caller,
        &viewer.actor.key_id,
        &viewer.actor.user.username,
    )
    .await?;
    let mut resp = redirect("/login");
    crate::api::csrf::append_session_cookie(
        resp.headers_mut(),
        &viewer.app.config.access_url,
        "",
        0,
    );
    Ok(resp)
}
