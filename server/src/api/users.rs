//! Users, sessions and tokens: the HTTP adapter of [`crate::usecase::users`]
//! and [`crate::usecase::sessions`].

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{ApiJson, ApiQuery, Call, RequestMeta};
use super::reply::{Created, Message, created};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::model::{Organization, User, UserStatus};
use crate::throttle;
use crate::usecase::sessions::{self, LoginOutcome, NewToken, PasswordLogin};
use crate::usecase::users::{self, FirstUser, NewUser, UserChanges, UserQuery};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FirstUserResponse {
    pub user_id: String,
    pub organization_id: String,
    pub user: User,
    pub session_token: String,
}

/// `POST /users/login`: the session's token (also set as the session cookie).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub session_token: String,
}

/// `GET /users`: a page of users and how many match in all.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
    pub count: i64,
}

/// `POST /users/{user}/keys/tokens`: the token's id, its key (shown once) and
/// its expiry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub key: String,
    pub expires_at: String,
}

/// Whether the first user exists (200) or not yet (404).
///
/// `GET /users/first`: 200 once the first user exists, 404 before.
#[utoipa::path(get, path = "/users/first", tag = "users", security(()), responses((status = 200, description = "The first user exists", body = Message)))]
pub async fn first_exists(State(app): State<AppState>) -> ApiResult<Json<Message>> {
    if !users::first_exists(app.ctx()).await? {
        return Err(ApiError::not_found("first user")
            .with_detail("create it with POST /api/v2/users/first"));
    }
    Ok(Message::json("the first user has been created"))
}

/// The `Set-Cookie` of a session (empty `token`, `max_age` 0: clears it),
/// made by the one cookie builder ([`super::csrf::append_session_cookie`]).
fn session_cookie(app: &AppState, token: &str, max_age: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    super::csrf::append_session_cookie(&mut headers, &app.config.access_url, token, max_age);
    headers
}

/// Create the first user (site owner), signed in.
///
/// `POST /users/first`: the first user becomes site owner, signed in.
#[utoipa::path(post, path = "/users/first", tag = "users", request_body = FirstUser, security(()), responses((status = 201, description = "The first user, its default organization and a session token", body = FirstUserResponse)))]
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

/// Sign in with a password.
///
/// `POST /users/login`: password login (see [`sessions::password_login`]);
/// past the throttle's limit, 429 with `Retry-After`.
#[utoipa::path(post, path = "/users/login", tag = "users", request_body = PasswordLogin, security(()), responses((status = 201, description = "A session (also set as the session cookie)", body = LoginResponse), (status = 429, description = "Too many failed logins; `Retry-After` says when to try again", body = crate::error::ErrorBody)))]
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
            Json(LoginResponse {
                session_token: session.secret,
            }),
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

/// End the current session.
///
/// `POST /users/logout`: ends the current session.
#[utoipa::path(post, path = "/users/logout", tag = "users", responses((status = 200, description = "Logged out; the session cookie is cleared", body = Message)))]
pub async fn logout(c: Call) -> ApiResult<Response> {
    sessions::logout(c.ctx(), &c.caller, &c.actor.key_id, &c.actor.user.username).await?;
    Ok((session_cookie(&c.app, "", 0), Message::json("logged out")).into_response())
}

/// Get a user.
#[utoipa::path(get, path = "/users/{user}", tag = "users", responses((status = 200, description = "OK", body = User)))]
pub async fn get(c: Call<String>) -> ApiResult<Json<User>> {
    Ok(Json(users::get(c.ctx(), &c.caller, &c.path).await?))
}

/// List users.
#[utoipa::path(get, path = "/users", tag = "users", params(UserQuery), responses((status = 200, description = "OK", body = UserList)))]
pub async fn list(c: Call, ApiQuery(q): ApiQuery<UserQuery>) -> ApiResult<Json<UserList>> {
    let (users, count) = users::list(c.ctx(), &c.caller, &q).await?;
    Ok(Json(UserList { users, count }))
}

/// Create a user.
///
/// `POST /users`: the user joins the default org and any orgs listed.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser, responses((status = 201, description = "Created", body = User)))]
pub async fn create(c: Call, ApiJson(req): ApiJson<NewUser>) -> ApiResult<Created<User>> {
    Ok(created(users::create(c.ctx(), &c.caller, req).await?))
}

/// Update a user's profile.
#[utoipa::path(patch, path = "/users/{user}", tag = "users", request_body = UserChanges, responses((status = 200, description = "OK", body = User)))]
pub async fn update(c: Call<String>, ApiJson(req): ApiJson<UserChanges>) -> ApiResult<Json<User>> {
    Ok(Json(users::update(c.ctx(), &c.caller, &c.path, req).await?))
}

/// Delete a user.
#[utoipa::path(delete, path = "/users/{user}", tag = "users", responses((status = 204, description = "No content")))]
pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    users::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suspend a user.
#[utoipa::path(put, path = "/users/{user}/status/suspend", tag = "users", responses((status = 200, description = "OK", body = User)))]
pub async fn suspend(c: Call<String>) -> ApiResult<Json<User>> {
    Ok(Json(
        users::set_status(c.ctx(), &c.caller, &c.path, UserStatus::Suspended).await?,
    ))
}

/// Activate a user.
#[utoipa::path(put, path = "/users/{user}/status/activate", tag = "users", responses((status = 200, description = "OK", body = User)))]
pub async fn activate(c: Call<String>) -> ApiResult<Json<User>> {
    Ok(Json(
        users::set_status(c.ctx(), &c.caller, &c.path, UserStatus::Active).await?,
    ))
}

/// Get a user's site roles and the assignable ones.
#[utoipa::path(get, path = "/users/{user}/roles", tag = "users", responses((status = 200, description = "OK", body = super::openapi::UserRoles)))]
pub async fn get_roles(c: Call<String>) -> ApiResult<Json<Value>> {
    Ok(Json(users::roles(c.ctx(), &c.caller, &c.path).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

/// Replace a user's site roles.
#[utoipa::path(put, path = "/users/{user}/roles", tag = "users", request_body = RolesRequest, responses((status = 200, description = "OK", body = User)))]
pub async fn set_roles(
    c: Call<String>,
    ApiJson(RolesRequest { roles }): ApiJson<RolesRequest>,
) -> ApiResult<Json<User>> {
    let user = users::set_roles(c.ctx(), &c.caller, &c.path, &roles).await?;
    Ok(Json(user))
}

/// List the organizations a user belongs to.
#[utoipa::path(get, path = "/users/{user}/organizations", tag = "users", responses((status = 200, description = "OK", body = Vec<Organization>)))]
pub async fn organizations(c: Call<String>) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(
        users::organizations(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Create an API token (the key is shown once).
#[utoipa::path(post, path = "/users/{user}/keys/tokens", tag = "users", request_body = NewToken, responses((status = 201, description = "Created", body = TokenCreated)))]
pub async fn create_token(
    c: Call<String>,
    ApiJson(req): ApiJson<NewToken>,
) -> ApiResult<Created<TokenCreated>> {
    let token = sessions::create_token(c.ctx(), &c.caller, &c.path, &req).await?;
    Ok(created(TokenCreated {
        id: token.key_id,
        key: token.secret,
        expires_at: token.expires_at,
    }))
}

/// List a user's API tokens (never their secrets).
#[utoipa::path(get, path = "/users/{user}/keys/tokens", tag = "users", responses((status = 200, description = "OK", body = Vec<sessions::TokenInfo>)))]
pub async fn list_tokens(c: Call<String>) -> ApiResult<Json<Vec<sessions::TokenInfo>>> {
    Ok(Json(
        sessions::list_tokens(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Delete one of a user's API tokens (or sessions).
#[utoipa::path(delete, path = "/users/{user}/keys/{id}", tag = "users", responses((status = 204, description = "No content")))]
pub async fn delete_token(c: Call<(String, String)>) -> ApiResult<StatusCode> {
    let (user, id) = &c.path;
    sessions::delete_token(c.ctx(), &c.caller, user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
