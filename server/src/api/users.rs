//! Users, sessions and tokens.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orgsync_policy::{Action, Resource, is_site_role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Page;
use super::extract::{Actor, ApiJson, ApiQuery, Path, RequestMeta};
use crate::app::AppState;
use crate::audit::{self, Change, to_value};
use crate::authz::Grant;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{
    LoginType, Organization, User, UserStatus, Username, parse_email, parse_password, parse_text,
};
use crate::secrets::{self, sha256_hex};
use crate::store::{self, Conn};
use crate::throttle;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstUserRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct FirstUserResponse {
    pub user_id: String,
    pub organization_id: String,
    pub user: User,
    pub session_token: String,
}

/// `GET /users/first`: 200 once the first user exists, 404 before.
pub async fn first_exists(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let mut conn = app.db.pool().acquire().await?;
    if store::users::count(&mut conn).await? == 0 {
        return Err(ApiError::not_found("first user")
            .with_detail("create it with POST /api/v2/users/first"));
    }
    Ok(Json(json!({"message": "the first user has been created"})))
}

/// Creates a session (or token) key and returns its secret.
pub(crate) async fn issue_key(
    conn: &mut Conn,
    user_id: &str,
    kind: &str,
    token_name: &str,
    lifetime_seconds: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<(String, String, String)> {
    let secret = secrets::new_token();
    let id = store::new_id();
    let expires = clock::fmt(now + chrono::Duration::seconds(lifetime_seconds));
    store::tokens::insert(
        conn,
        &store::tokens::NewKey {
            id: &id,
            user_id,
            hashed_secret: &sha256_hex(&secret),
            kind,
            token_name,
            lifetime_seconds,
            expires_at: &expires,
            now: &clock::fmt(now),
        },
    )
    .await?;
    Ok((id, secret, expires))
}

/// The `Set-Cookie` of a session (empty `token`, `max_age` 0: clears it),
/// made by the one cookie builder ([`super::csrf::append_session_cookie`]).
fn session_cookie(app: &AppState, token: &str, max_age: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    super::csrf::append_session_cookie(&mut headers, &app.config.access_url, token, max_age);
    headers
}

/// `POST /users/first`: the first user becomes site owner. Only while no user
/// exists; a unique marker row makes two racing requests create one owner.
pub async fn create_first(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<FirstUserRequest>,
) -> ApiResult<Response> {
    let username = Username::parse("username", &req.username)?;
    let email = parse_email("email", &req.email)?;
    parse_password("password", &req.password)?;
    let name = parse_text("name", &req.name, 128)?;
    let hash = secrets::hash_password(&req.password).map_err(ApiError::internal)?;
    let now = clock::now();
    let now_s = clock::fmt(now);
    let mut tx = app.db.begin().await?;
    if store::users::count(&mut tx).await? > 0 {
        return Err(ApiError::conflict(
            "the first user has already been created",
        ));
    }
    let id = store::new_id();
    sqlx::query(
        "INSERT INTO deployment_settings (key, value, updated_at) VALUES ('first_user_id', $1, $2)",
    )
    .bind(&id)
    .bind(&now_s)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::on_unique(
        "the first user has already been created",
    ))?;
    let roles = vec!["owner".to_owned()];
    store::users::insert(
        &mut tx,
        &store::users::NewUser {
            id: &id,
            username: username.as_str(),
            email: &email,
            name: &name,
            login_type: LoginType::Password,
            password_hash: Some(&hash),
            roles: &roles,
            now: &now_s,
        },
    )
    .await?;
    let org = store::orgs::default_org(&mut tx)
        .await?
        .ok_or_else(|| ApiError::internal("default organization missing"))?;
    store::members::insert(&mut tx, &org.id, &id, &[], &now_s).await?;
    let user = store::users::find_by_id(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished"))?;
    let ctx = meta.audit(Some(&id));
    audit::record(
        &mut tx,
        &ctx,
        &now_s,
        Change {
            organization_id: None,
            action: "create",
            resource_type: "user",
            resource_id: &id,
            resource_target: &user.username,
            diff: audit::created(&to_value(&user)),
            status_code: 201,
        },
    )
    .await?;
    let lifetime = app.config.session_lifetime_seconds;
    let (_, token, _) = issue_key(&mut tx, &id, "session", "", lifetime, now).await?;
    tx.commit().await?;
    let body = FirstUserResponse {
        user_id: id,
        organization_id: org.id,
        user,
        session_token: token.clone(),
    };
    Ok((
        StatusCode::CREATED,
        session_cookie(&app, &token, lifetime),
        Json(body),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// What a failed login's audit entry names as its target: the email as typed
/// only when it is an email address, so that nobody can write text of their
/// choosing into the audit log without logging in.
fn login_target(email: &str) -> String {
    parse_email("email", email).unwrap_or_else(|_| "(invalid)".to_owned())
}

/// `POST /users/login`: password login. Failures say nothing about whether
/// the email exists. Attempts are throttled per account and per client
/// address ([`crate::throttle`]): past a limit the answer is 429 with
/// `Retry-After`, the same for every email, and the password is not checked.
/// Failures are audited once per account, kind and window.
pub async fn login(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let now = clock::now();
    let now_s = clock::fmt(now);
    let limits = throttle::Limits::of(&app.config);
    let attempt = match throttle::attempt(&app.db, limits, &req.email, meta.addr, now).await? {
        throttle::Verdict::Proceed(attempt) => attempt,
        throttle::Verdict::Throttled { retry_after } => {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            let err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins; try again later",
            )
            .with_detail("the `Retry-After` header says in how many seconds");
            return Ok((headers, err).into_response());
        }
    };
    let mut conn = app.db.pool().acquire().await?;
    let found = store::users::find_for_login(&mut conn, req.email.trim()).await?;
    drop(conn);
    let (user, hash) = match &found {
        Some((u, h)) => (Some(u), h.as_deref()),
        None => (None, None),
    };
    let password_ok = secrets::verify_password(
        &req.password,
        hash.unwrap_or(secrets::dummy_password_hash()),
    );
    let failure = match user {
        _ if !password_ok => Some(throttle::Failure::Credentials),
        Some(u) if u.login_type != LoginType::Password => Some(throttle::Failure::Credentials),
        Some(u) if u.status == UserStatus::Suspended => Some(throttle::Failure::Suspended),
        Some(_) => None,
        None => Some(throttle::Failure::Credentials),
    };
    if let Some(failure) = failure {
        let (status, message) = match failure {
            throttle::Failure::Credentials => {
                (StatusCode::UNAUTHORIZED, "incorrect email or password")
            }
            throttle::Failure::Suspended => (
                StatusCode::FORBIDDEN,
                "your account is suspended; ask an administrator to reactivate it",
            ),
        };
        if attempt.failed(&app.db, failure).await? {
            let mut tx = app.db.begin().await?;
            let ctx = meta.audit(user.map(|u| u.id.as_str()));
            audit::record(
                &mut tx,
                &ctx,
                &now_s,
                Change {
                    organization_id: None,
                    action: "login_failed",
                    resource_type: "api_key",
                    resource_id: user.map_or("", |u| u.id.as_str()),
                    resource_target: &login_target(&req.email),
                    diff: json!({}),
                    status_code: status.as_u16(),
                },
            )
            .await?;
            tx.commit().await?;
        }
        return Err(ApiError::new(status, message));
    }
    let Some(user) = user else {
        return Err(ApiError::unauthorized("incorrect email or password"));
    };
    let mut tx = app.db.begin().await?;
    if user.status == UserStatus::Dormant {
        store::users::set_status(&mut tx, &user.id, UserStatus::Active, &now_s).await?;
    }
    let lifetime = app.config.session_lifetime_seconds;
    let (key_id, token, _) = issue_key(&mut tx, &user.id, "session", "", lifetime, now).await?;
    audit::record(
        &mut tx,
        &meta.audit(Some(&user.id)),
        &now_s,
        Change {
            organization_id: None,
            action: "login",
            resource_type: "api_key",
            resource_id: &key_id,
            resource_target: &user.username,
            diff: json!({}),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    // The session exists: a failure to withdraw the count must not hide it.
    if let Err(e) = attempt.succeeded(&app.db).await {
        tracing::warn!(error = %e, "cannot withdraw a successful login from its throttle counts");
    }
    app.authz.invalidate([user.id.as_str()]);
    Ok((
        StatusCode::CREATED,
        session_cookie(&app, &token, lifetime),
        Json(json!({"session_token": token})),
    )
        .into_response())
}

/// `POST /users/logout`: ends the current session.
pub async fn logout(State(app): State<AppState>, actor: Actor) -> ApiResult<Response> {
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    store::tokens::delete(&mut tx, &actor.key_id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "logout",
            resource_type: "api_key",
            resource_id: &actor.key_id,
            resource_target: &actor.user.username,
            diff: json!({}),
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        session_cookie(&app, "", 0),
        Json(json!({"message": "logged out"})),
    )
        .into_response())
}

/// Loads the user of a `{user}` segment and requires `action` on it.
pub(super) async fn target_user(
    app: &AppState,
    actor: &Actor,
    key: &str,
    action: Action,
) -> ApiResult<(User, crate::authz::Permit)> {
    let key = actor.resolve_user_key(key);
    let mut conn = app.db.pool().acquire().await?;
    let user = store::users::find(&mut conn, key)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let permit = app.authz.require(
        &actor.principal.entity,
        action,
        &user_resource(&user),
        "user",
    )?;
    Ok((user, permit))
}

/// A user as the object of a decision, with the site roles guardrails read.
pub(crate) fn user_resource(user: &User) -> Resource {
    Resource::user(&user.id, user.status.as_str()).with_site_roles(&user.roles)
}

/// Authority over the whole account of `user` (see
/// [`crate::authz::Authz::require_authority_over`]).
pub(crate) async fn require_authority_over(
    app: &AppState,
    actor: &Actor,
    user: &User,
    what: &str,
) -> ApiResult<()> {
    let target = app
        .authz
        .principal(&app.db, &user.id, None)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let mut conn = app.db.pool().acquire().await?;
    let orgs = store::orgs::list(&mut conn).await?;
    app.authz
        .require_authority_over(&actor.principal.entity, &target.data, &orgs, what)
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
) -> ApiResult<Json<User>> {
    let (user, _) = target_user(&app, &actor, &user, Action::USER_READ).await?;
    Ok(Json(user))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    pub q: Option<String>,
    pub status: Option<UserStatus>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> ApiResult<Json<Value>> {
    app.authz.require(
        &actor.principal.entity,
        Action::USER_LIST,
        &Resource::site(),
        "users",
    )?;
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve(50, 1000)?;
    let mut conn = app.db.pool().acquire().await?;
    let (users, count) = store::users::list(
        &mut conn,
        &store::users::UserFilter {
            search: q.q.as_deref().filter(|s| !s.is_empty()),
            status: q.status.map(UserStatus::as_str),
            limit,
            offset,
        },
    )
    .await?;
    Ok(Json(json!({"users": users, "count": count})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub password: Option<String>,
    pub login_type: Option<LoginType>,
    #[serde(default)]
    pub organization_ids: Vec<String>,
}

/// `POST /users`: creates a user; it joins the default org and any orgs listed
/// (each needs `member:create` there).
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let permit = app.authz.require(
        &actor.principal.entity,
        Action::USER_CREATE,
        &Resource::site(),
        "users",
    )?;
    let username = Username::parse("username", &req.username)?;
    let email = parse_email("email", &req.email)?;
    let name = parse_text("name", &req.name, 128)?;
    let login_type = req.login_type.unwrap_or(if req.password.is_some() {
        LoginType::Password
    } else {
        LoginType::None
    });
    let hash = match (login_type, &req.password) {
        (LoginType::Password, Some(p)) => {
            parse_password("password", p)?;
            Some(secrets::hash_password(p).map_err(ApiError::internal)?)
        }
        (LoginType::Password, None) => {
            return Err(ApiError::validation(
                "password",
                "is required for login_type `password`",
            ));
        }
        (LoginType::None, None) => None,
        (LoginType::None, Some(_)) => {
            return Err(ApiError::validation(
                "password",
                "must be absent for login_type `none`",
            ));
        }
        (other, _) => {
            return Err(ApiError::validation(
                "login_type",
                format!(
                    "`{}` users are created by their identity provider",
                    other.as_str()
                ),
            ));
        }
    };
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let id = store::new_id();
    create_user_tx(
        &mut tx,
        &permit,
        &store::users::NewUser {
            id: &id,
            username: username.as_str(),
            email: &email,
            name: &name,
            login_type,
            password_hash: hash.as_deref(),
            roles: &[],
            now: &now_s,
        },
    )
    .await?;
    let mut orgs: Vec<Organization> = Vec::new();
    for (i, key) in req.organization_ids.iter().enumerate() {
        let org = store::orgs::find(&mut tx, key).await?.ok_or_else(|| {
            ApiError::validation(
                &format!("organization_ids[{i}]"),
                format!("organization `{key}` not found"),
            )
        })?;
        if org.is_default || orgs.iter().any(|o| o.id == org.id) {
            continue;
        }
        app.authz.require(
            &actor.principal.entity,
            Action::MEMBER_CREATE,
            &Resource::member(&org.org_ref(), &id),
            "organization",
        )?;
        app.authz.require_grants(
            &actor.principal.entity,
            &[Grant::org(&org, "organization-member")],
            "adding a member",
        )?;
        store::members::insert(&mut tx, &org.id, &id, &[], &now_s).await?;
        orgs.push(org);
    }
    let user = store::users::find_by_id(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "create",
            resource_type: "user",
            resource_id: &id,
            resource_target: &user.username,
            diff: audit::created(&to_value(&user)),
            status_code: 201,
        },
    )
    .await?;
    for org in &orgs {
        audit::record(
            &mut tx,
            &actor.audit(),
            &now_s,
            Change {
                organization_id: Some(&org.id),
                action: "create",
                resource_type: "organization_member",
                resource_id: &id,
                resource_target: &user.username,
                diff: json!({"roles": {"old": null, "new": []}}),
                status_code: 201,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Inserts a user and its default-org membership: every new user joins it.
pub(crate) async fn create_user_tx(
    tx: &mut Conn,
    _permit: &crate::authz::Permit,
    new: &store::users::NewUser<'_>,
) -> ApiResult<()> {
    store::users::insert(tx, new)
        .await
        .map_err(ApiError::on_unique(
            "a user with this username or email already exists",
        ))?;
    let org = store::orgs::default_org(tx)
        .await?
        .ok_or_else(|| ApiError::internal("default organization missing"))?;
    store::members::insert(tx, &org.id, new.id, &[], new.now).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    /// `password` (with `password`) or `none`; `oidc` and `ldap` are set by
    /// the identity provider and the directory.
    pub login_type: Option<LoginType>,
    /// A new password; only for `password` users (or with `login_type: password`).
    pub password: Option<String>,
}

pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let (user, _permit) = target_user(&app, &actor, &key, Action::USER_UPDATE).await?;
    let username = match &req.username {
        Some(u) => Username::parse("username", u)?.as_str().to_owned(),
        None => user.username.clone(),
    };
    let email = match &req.email {
        Some(e) => parse_email("email", e)?,
        None => user.email.clone(),
    };
    let name = match &req.name {
        Some(n) => parse_text("name", n, 128)?,
        None => user.name.clone(),
    };
    let avatar_url = match &req.avatar_url {
        Some(a) => parse_text("avatar_url", a, 2048)?,
        None => user.avatar_url.clone(),
    };
    let login = login_change(&user, req.login_type, req.password.as_deref())?;
    let identity_changes = username != user.username
        || email.to_lowercase() != user.email.to_lowercase()
        || login.is_some();
    if !identity_changes
        && email == user.email
        && name == user.name
        && avatar_url == user.avatar_url
    {
        return Ok(Json(user));
    }
    if identity_changes {
        // Whoever controls how an account signs in holds all its roles.
        require_authority_over(
            &app,
            &actor,
            &user,
            &format!(
                "changing how `{}` signs in (username, email or login type)",
                user.username
            ),
        )
        .await?;
    }
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    store::users::update_profile(
        &mut tx,
        &user.id,
        &username,
        &email,
        &name,
        &avatar_url,
        &now_s,
    )
    .await
    .map_err(ApiError::on_unique(
        "a user with this username or email already exists",
    ))?;
    if let Some((login_type, hash)) = &login {
        store::users::set_login(&mut tx, &user.id, *login_type, hash.as_deref(), &now_s).await?;
    }
    let updated = store::users::find_by_id(&mut tx, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let mut diff = audit::diff(&to_value(&user), &to_value(&updated));
    if login.as_ref().is_some_and(|(_, h)| h.is_some()) {
        // Never the password itself: only that it changed.
        if let Value::Object(d) = &mut diff {
            d.insert(
                "password".to_owned(),
                json!({"old": null, "new": "(changed)"}),
            );
        }
    }
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "update",
            resource_type: "user",
            resource_id: &user.id,
            resource_target: &updated.username,
            diff,
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(updated))
}

/// The sign-in change a PATCH asks for: the new login type and password hash.
fn login_change(
    user: &User,
    login_type: Option<LoginType>,
    password: Option<&str>,
) -> ApiResult<Option<(LoginType, Option<String>)>> {
    let target = login_type.unwrap_or(user.login_type);
    let changes_type = target != user.login_type;
    if changes_type && !matches!(target, LoginType::Password | LoginType::None) {
        return Err(ApiError::validation(
            "login_type",
            format!(
                "`{}` is set by the identity provider or the directory, not by hand",
                target.as_str()
            ),
        ));
    }
    match (target, password) {
        (LoginType::Password, Some(p)) => {
            parse_password("password", p)?;
            let hash = secrets::hash_password(p).map_err(ApiError::internal)?;
            Ok(Some((LoginType::Password, Some(hash))))
        }
        (LoginType::Password, None) if changes_type => Err(ApiError::validation(
            "password",
            "is required to change the login type to `password`",
        )),
        (LoginType::None, Some(_)) => Err(ApiError::validation(
            "password",
            "must be absent for login_type `none`",
        )),
        (LoginType::None, None) if changes_type => Ok(Some((LoginType::None, None))),
        (_, None) => Ok(None),
        (other, Some(_)) => Err(ApiError::validation(
            "password",
            format!("`{}` users have no password here", other.as_str()),
        )),
    }
}

pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let (user, _permit) = target_user(&app, &actor, &key, Action::USER_DELETE).await?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let owned = store::workspaces::count_for_owner(&mut tx, &user.id).await?;
    if owned > 0 {
        return Err(ApiError::conflict(format!(
            "user `{}` still owns {owned} workspace(s); delete them first",
            user.username
        )));
    }
    store::users::delete(&mut tx, &user.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "delete",
            resource_type: "user",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: audit::deleted(&to_value(&user)),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([user.id.as_str()]);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    app: &AppState,
    actor: &Actor,
    key: &str,
    status: UserStatus,
) -> ApiResult<Json<User>> {
    let (user, _permit) = target_user(app, actor, key, Action::USER_SUSPEND).await?;
    if user.status == status {
        return Ok(Json(user));
    }
    if status == UserStatus::Active {
        // Reactivation gives the account its roles back.
        require_authority_over(
            app,
            actor,
            &user,
            &format!("reactivating `{}`", user.username),
        )
        .await?;
    }
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    store::users::set_status(&mut tx, &user.id, status, &now_s).await?;
    // An administrator's decision: the directory sync no longer owns this
    // user's status (it reactivates only users it suspended itself).
    sqlx::query("UPDATE user_links SET suspended_by_sync = 0 WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    let updated = store::users::find_by_id(&mut tx, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "update",
            resource_type: "user",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: audit::diff(&to_value(&user), &to_value(&updated)),
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([user.id.as_str()]);
    Ok(Json(updated))
}

pub async fn suspend(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<User>> {
    set_status(&app, &actor, &key, UserStatus::Suspended).await
}

pub async fn activate(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<User>> {
    set_status(&app, &actor, &key, UserStatus::Active).await
}

pub async fn get_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let (user, _) = target_user(&app, &actor, &key, Action::USER_READ).await?;
    let principal = app
        .authz
        .principal(&app.db, &user.id, None)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let org_roles: serde_json::Map<String, Value> = principal
        .data
        .memberships
        .iter()
        .map(|m| (m.org_id.clone(), json!(m.roles)))
        .collect();
    Ok(Json(
        json!({"roles": user.roles, "organization_roles": org_roles}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

/// Validates requested site roles; `member` is implicit and dropped.
fn parse_site_roles(roles: &[String]) -> ApiResult<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (i, r) in roles.iter().enumerate() {
        if !is_site_role(r) {
            return Err(ApiError::validation(
                &format!("roles[{i}]"),
                format!("`{r}` is not a site role"),
            ));
        }
        if r != "member" {
            out.insert(r.clone());
        }
    }
    Ok(out)
}

/// Roles added or removed between two sets.
pub(crate) fn roles_changed(old: &BTreeSet<String>, new: &BTreeSet<String>) -> Vec<String> {
    old.symmetric_difference(new).cloned().collect()
}

pub async fn set_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<User>> {
    let key = actor.resolve_user_key(&key).to_owned();
    let wanted = parse_site_roles(&req.roles)?;
    let mut conn = app.db.pool().acquire().await?;
    let user = store::users::find(&mut conn, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    drop(conn);
    let current: BTreeSet<String> = store::users::explicit_roles(&user).into_iter().collect();
    let changed = roles_changed(&current, &wanted);
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::USER_UPDATE_ROLES,
        &user_resource(&user),
        "user",
    )?;
    let grants: Vec<Grant> = changed.iter().cloned().map(Grant::Site).collect();
    app.authz.require_grants(
        &actor.principal.entity,
        &grants,
        &format!("changing the site roles of `{}`", user.username),
    )?;
    if !changed.is_empty() {
        let mut conn = app.db.pool().acquire().await?;
        crate::idpsync::guard_manual_site_role_change(&mut conn, user.login_type, &user.username)
            .await?;
    }
    if changed.is_empty() {
        return Ok(Json(user));
    }
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let list: Vec<String> = wanted.into_iter().collect();
    store::users::set_roles(&mut tx, &user.id, &list, &now_s).await?;
    let updated = store::users::find_by_id(&mut tx, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "update",
            resource_type: "user",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: audit::diff(
                &json!({"roles": user.roles}),
                &json!({"roles": updated.roles}),
            ),
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([user.id.as_str()]);
    Ok(Json(updated))
}

pub async fn organizations(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<Organization>>> {
    let (user, _) = target_user(&app, &actor, &key, Action::USER_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let orgs = store::users::organizations(&mut conn, &user.id).await?;
    // Only the orgs the caller may see.
    let visible = orgs
        .into_iter()
        .filter(|o| {
            app.authz.allowed(
                &actor.principal.entity,
                Action::ORGANIZATION_READ,
                &Resource::organization(&o.org_ref()),
            )
        })
        .collect();
    Ok(Json(visible))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    pub token_name: String,
    /// Lifetime in seconds (default 30 days, at most 365 days).
    pub lifetime_seconds: Option<i64>,
}

pub async fn create_token(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (user, _permit) = target_user(&app, &actor, &key, Action::USER_CREATE_TOKEN).await?;
    let lifetime = req.lifetime_seconds.unwrap_or(30 * 86_400);
    if !(60..=365 * 86_400).contains(&lifetime) {
        return Err(ApiError::validation(
            "lifetime_seconds",
            "must be between 60 and 31536000",
        ));
    }
    let token_name = parse_text("token_name", &req.token_name, 64)?;
    let now = clock::now();
    let now_s = clock::fmt(now);
    let mut tx = app.db.begin().await?;
    let (id, secret, expires_at) =
        issue_key(&mut tx, &user.id, "token", &token_name, lifetime, now).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "create",
            resource_type: "api_key",
            resource_id: &id,
            resource_target: &token_name,
            diff: json!({"token_name": {"old": null, "new": token_name}, "expires_at": {"old": null, "new": expires_at}}),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "key": secret, "expires_at": expires_at})),
    ))
}
