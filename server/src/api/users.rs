//! Users, sessions and tokens: the HTTP adapter of [`crate::usecase::users`]
//! and [`crate::usecase::sessions`].

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{ApiJson, ApiQuery, Call, RequestMeta};
use super::reply::{Created, created};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::model::{Organization, User, UserStatus};
use crate::throttle;
use crate::usecase::sessions::{self, LoginOutcome, NewToken, PasswordLogin};
use crate::usecase::users::{self, FirstUser, NewUser, UserChanges, UserQuery};

#[derive(Debug, Serialize)]
pub struct FirstUserResponse {
    pub user_id: String,
    pub organization_id: String,
    pub user: User,
    pub session_token: String,
}

/// `GET /users/first`: 200 once the first user exists, 404 before.
pub async fn first_exists(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    if !users::first_exists(app.ctx()).await? {
        return Err(ApiError::not_found("first user")
            .with_detail("create it with POST /api/v2/users/first"));
    }
    Ok(Json(json!({"message": "the first user has been created"})))
}

/// The `Set-Cookie` of a session (empty `token`, `max_age` 0: clears it),
/// made by the one cookie builder ([`super::csrf::append_session_cookie`]).
fn session_cookie(app: &AppState, token: &str, max_age: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    super::csrf::append_session_cookie(&mut headers, &app.config.access_url, token, max_age);
    headers
}

/// `POST /users/first`: the first user becomes site owner, signed in.
pub async fn create_first(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<FirstUser>,
) -> ApiResult<Response> {
    let lifetime = app.config.session_lifetime_seconds;
    let created = users::create_first(app.ctx(), meta.audit(None), req, lifetime).await?;
    let token = created.session.secret;
    let body = FirstUserResponse {
        user_id: created.user.id.clone(),
        organization_id: created.organization_id,
        user: created.user,
        session_token: token.clone(),
    };
    Ok((
        StatusCode::CREATED,
        session_cookie(&app, &token, lifetime),
        Json(body),
    )
        .into_response())
}

/// `POST /users/login`: password login (see [`sessions::password_login`]);
/// past the throttle's limit, 429 with `Retry-After`.
pub async fn login(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<PasswordLogin>,
) -> ApiResult<Response> {
    let lifetime = app.config.session_lifetime_seconds;
    let outcome = sessions::password_login(
        app.ctx(),
        meta.audit(None),
        meta.addr,
        throttle::Limits::of(&app.config),
        &req,
        lifetime,
    )
    .await?;
    match outcome {
        LoginOutcome::Session(session) => Ok((
            StatusCode::CREATED,
            session_cookie(&app, &session.secret, lifetime),
            Json(json!({"session_token": session.secret})),
        )
            .into_response()),
        LoginOutcome::Throttled { retry_after } => {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            let err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins; try again later",
            )
            .with_detail("the `Retry-After` header says in how many seconds");
            Ok((headers, err).into_response())
        }
    }
}

/// `POST /users/logout`: ends the current session.
pub async fn logout(c: Call) -> ApiResult<Response> {
    sessions::logout(c.ctx(), &c.caller, &c.actor.key_id, &c.actor.user.username).await?;
    Ok((
        session_cookie(&c.app, "", 0),
        Json(json!({"message": "logged out"})),
    )
        .into_response())
}

pub async fn get(c: Call<String>) -> ApiResult<Json<User>> {
    Ok(Json(users::get(c.ctx(), &c.caller, &c.path).await?))
}

pub async fn list(c: Call, ApiQuery(q): ApiQuery<UserQuery>) -> ApiResult<Json<Value>> {
    let (users, count) = users::list(c.ctx(), &c.caller, &q).await?;
    Ok(Json(json!({"users": users, "count": count})))
}

/// `POST /users`: the user joins the default org and any orgs listed.
pub async fn create(c: Call, ApiJson(req): ApiJson<NewUser>) -> ApiResult<Created<User>> {
    Ok(created(users::create(c.ctx(), &c.caller, req).await?))
}

pub async fn update(c: Call<String>, ApiJson(req): ApiJson<UserChanges>) -> ApiResult<Json<User>> {
    Ok(Json(users::update(c.ctx(), &c.caller, &c.path, req).await?))
}

pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    users::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn suspend(c: Call<String>) -> ApiResult<Json<User>> {
    Ok(Json(
        users::set_status(c.ctx(), &c.caller, &c.path, UserStatus::Suspended).await?,
    ))
}

pub async fn activate(c: Call<String>) -> ApiResult<Json<User>> {
    Ok(Json(
        users::set_status(c.ctx(), &c.caller, &c.path, UserStatus::Active).await?,
    ))
}

pub async fn get_roles(c: Call<String>) -> ApiResult<Json<Value>> {
    Ok(Json(users::roles(c.ctx(), &c.caller, &c.path).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

pub async fn set_roles(
    c: Call<String>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        users::set_roles(c.ctx(), &c.caller, &c.path, &req.roles).await?,
    ))
}

pub async fn organizations(c: Call<String>) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(
        users::organizations(c.ctx(), &c.caller, &c.path).await?,
    ))
}

pub async fn create_token(
    c: Call<String>,
    ApiJson(req): ApiJson<NewToken>,
) -> ApiResult<Created<Value>> {
    let token = sessions::create_token(c.ctx(), &c.caller, &c.path, &req).await?;
    Ok(created(
        json!({"id": token.key_id, "key": token.secret, "expires_at": token.expires_at}),
    ))
}

/// `GET /users/{user}/keys/tokens`: the user's API tokens, never their secrets.
pub async fn list_tokens(c: Call<String>) -> ApiResult<Json<Value>> {
    let tokens = sessions::list_tokens(c.ctx(), &c.caller, &c.path).await?;
    Ok(Json(json!(tokens)))
}

/// `DELETE /users/{user}/keys/{id}`: deletes one of the user's tokens (or sessions).
pub async fn delete_token(c: Call<(String, String)>) -> ApiResult<StatusCode> {
    let (user, id) = &c.path;
    sessions::delete_token(c.ctx(), &c.caller, user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
