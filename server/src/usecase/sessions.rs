//! Sessions and API tokens: the one session-issuing operation of every login
//! path (first user, password, OIDC), password login with its throttle,
//! logout, tokens.

use std::net::IpAddr;

use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::json;

use super::users::{load, load_in, user_resource};
use super::{Caller, Ctx, Work};
use crate::audit::{AuditCtx, Change};
use crate::authz::{Permit, System};
use crate::clock;
use crate::error::{Error, Result};
use crate::model::{LoginType, User, UserStatus, parse_email, parse_text};
use crate::secrets::{self, sha256_hex};
use crate::store;
pub use crate::store::tokens::TokenInfo;
use crate::throttle;

/// A key just issued: its id, its secret (shown once) and its expiry.
#[derive(Debug)]
pub struct Session {
    pub key_id: String,
    pub secret: String,
    pub expires_at: String,
    pub lifetime_seconds: i64,
}

/// Issues a session (or token) key for `user_id` in the operation, under
/// `permit` (`user:create_token`); only the hash of its secret is stored.
pub async fn issue(
    work: &mut Work<'_>,
    permit: &Permit,
    user_id: &str,
    kind: &str,
    token_name: &str,
    lifetime_seconds: i64,
) -> Result<Session> {
    let secret = secrets::new_token();
    let id = store::new_id();
    let expires = clock::fmt(work.now + chrono::Duration::seconds(lifetime_seconds));
    let now_s = work.now_s.clone();
    store::tokens::insert(
        &mut work.write(permit)?,
        &store::tokens::NewKey {
            id: &id,
            user_id,
            hashed_secret: &sha256_hex(&secret),
            kind,
            token_name,
            lifetime_seconds,
            expires_at: &expires,
            now: &now_s,
        },
    )
    .await?;
    Ok(Session {
        key_id: id,
        secret,
        expires_at: expires,
        lifetime_seconds,
    })
}

/// Opens a login session for `user` (waking a dormant account) and audits the
/// login with `status_code`, in the name of the user.
pub async fn open(
    work: &mut Work<'_>,
    user: &User,
    lifetime_seconds: i64,
    status_code: u16,
) -> Result<Session> {
    let permit = work.require(Action::USER_CREATE_TOKEN, &user_resource(user), "user")?;
    if user.status == UserStatus::Dormant {
        let now_s = work.now_s.clone();
        let wake = work.require(Action::USER_UPDATE, &user_resource(user), "user")?;
        let mut w = work.write(&wake)?;
        store::users::set_status(&mut w, &user.id, UserStatus::Active, &now_s).await?;
        work.touch(user.id.clone());
    }
    let session = issue(work, &permit, &user.id, "session", "", lifetime_seconds).await?;
    work.audit_as(
        &permit,
        &user.id,
        Change::api_key(
            "login",
            &session.key_id,
            &user.username,
            json!({}),
            status_code,
        ),
    )
    .await?;
    Ok(session)
}

/// A password login as asked.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLogin {
    pub email: String,
    pub password: String,
}

/// How a password login ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in: the new session.
    Session(Session),
    /// Too many failures: retry after this many seconds (the password was not
    /// checked).
    Throttled { retry_after: u64 },
}

/// What a failed login's audit entry names as its target: the email as typed
/// only when it is an email address, so that nobody can write text of their
/// choosing into the audit log without logging in.
fn login_target(email: &str) -> String {
    parse_email("email", email).unwrap_or_else(|_| "(invalid)".to_owned())
}

/// A password login. Failures say nothing about whether the email exists.
/// Attempts are throttled per account and per client address
/// ([`crate::throttle`]), counted before the password is checked; failures
/// are audited once per account, kind and window. `audit` is the request's
/// metadata.
pub async fn password_login(
    ctx: Ctx<'_>,
    audit: AuditCtx,
    addr: Option<IpAddr>,
    limits: throttle::Limits,
    req: &PasswordLogin,
    lifetime_seconds: i64,
) -> Result<LoginOutcome> {
    let now = clock::now();
    let caller = Caller::System {
        actor: System::PasswordLogin,
        audit,
    };
    let attempt = match throttle::attempt(ctx, &caller, limits, &req.email, addr, now).await? {
        throttle::Verdict::Proceed(attempt) => attempt,
        throttle::Verdict::Throttled { retry_after } => {
            tracing::info!(addr = ?addr, retry_after_seconds = retry_after, "password login throttled");
            return Ok(LoginOutcome::Throttled { retry_after });
        }
    };
    let mut conn = ctx.conn().await?;
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
        let error = match failure {
            throttle::Failure::Credentials => Error::unauthorized("incorrect email or password"),
            throttle::Failure::Suspended => {
                Error::refused("your account is suspended; ask an administrator to reactivate it")
            }
        };
        // Who tried is logged by id only (an email typed by mistake into the
        // password field must not reach the log); unknown accounts have none.
        tracing::info!(
            user_id = user.map_or("", |u| u.id.as_str()),
            addr = ?addr,
            reason = ?failure,
            "password login failed"
        );
        if attempt.failed(ctx, &caller, failure).await? {
            let mut work = Work::begin(ctx, &caller).await?;
            // Audited on the login's authority for what it attempted.
            let permit = work.require(Action::USER_CREATE_TOKEN, &Resource::site(), "login")?;
            work.audit_for(
                &permit,
                user.map(|u| u.id.as_str()),
                Change::api_key(
                    "login_failed",
                    user.map_or("", |u| u.id.as_str()),
                    &login_target(&req.email),
                    json!({}),
                    error.status_code(),
                ),
            )
            .await?;
            work.commit().await?;
        }
        return Err(error);
    }
    let Some(user) = user else {
        return Err(Error::unauthorized("incorrect email or password"));
    };
    let mut work = Work::begin(ctx, &caller).await?;
    let session = open(&mut work, user, lifetime_seconds, 201).await?;
    work.commit().await?;
    tracing::info!(user_id = %user.id, user = %user.username, addr = ?addr, "password login");
    // The session exists: a failure to withdraw the count must not hide it.
    if let Err(e) = attempt.succeeded(ctx, &caller).await {
        tracing::warn!(error = ?e, "cannot withdraw a successful login from its throttle counts");
    }
    Ok(LoginOutcome::Session(session))
}

/// Ends the caller's session `key_id`, on the authority of
/// [`System::Sessions`] (ending one's own session needs no decision: a
/// suspended account may sign out), audited as the caller.
pub async fn logout(ctx: Ctx<'_>, caller: &Caller, key_id: &str, username: &str) -> Result<()> {
    let sessions = Caller::System {
        actor: System::Sessions,
        audit: caller.audit_ctx().clone(),
    };
    let mut work = Work::begin(ctx, &sessions).await?;
    let permit = work.require(Action::USER_UPDATE, &Resource::site(), "session")?;
    store::tokens::delete(&mut work.write(&permit)?, key_id).await?;
    let change = Change::api_key("logout", key_id, username, json!({}), 200);
    work.audit(&permit, change).await?;
    work.commit().await
}

/// An API token as asked.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    pub token_name: String,
    /// Lifetime in seconds (default 30 days, at most 365 days).
    pub lifetime_seconds: Option<i64>,
}

/// Creates an API token for the user `key`; its secret is returned once.
pub async fn create_token(
    ctx: Ctx<'_>,
    caller: &Caller,
    key: &str,
    req: &NewToken,
) -> Result<Session> {
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = load_in(&mut work, key, Action::USER_CREATE_TOKEN).await?;
    let lifetime = req.lifetime_seconds.unwrap_or(30 * 86_400);
    if !(60..=365 * 86_400).contains(&lifetime) {
        return Err(Error::validation(
            "lifetime_seconds",
            "must be between 60 and 31536000",
        ));
    }
    let token_name = parse_text("token_name", &req.token_name, 64)?;
    if !token_name.is_empty() {
        let now_s = work.now_s.clone();
        let taken = store::tokens::list_tokens(work.conn(), &user.id)
            .await?
            .into_iter()
            .any(|t| t.expires_at > now_s && t.token_name.eq_ignore_ascii_case(&token_name));
        if taken {
            return Err(Error::conflict(format!(
                "`{}` already has a token named `{token_name}`; delete it first or choose another name",
                user.username
            )));
        }
    }
    let token = issue(&mut work, &permit, &user.id, "token", &token_name, lifetime).await?;
    work.audit(
        &permit,
        Change::api_key(
            "create",
            &token.key_id,
            &token_name,
            json!({"token_name": {"old": null, "new": token_name}, "expires_at": {"old": null, "new": token.expires_at}}),
            201,
        ),
    )
    .await?;
    work.commit().await?;
    Ok(token)
}

/// The API tokens of the user `key` (never their secrets), newest first.
pub async fn list_tokens(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<Vec<TokenInfo>> {
    let mut conn = ctx.conn().await?;
    let (user, _) = load(&mut conn, ctx, caller, key, Action::USER_READ_TOKENS).await?;
    Ok(store::tokens::list_tokens(&mut conn, &user.id).await?)
}

/// Deletes the key `id` (an API token, or a session) of the user `key`:
/// requests made with it are refused from then on.
pub async fn delete_token(ctx: Ctx<'_>, caller: &Caller, key: &str, id: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = load_in(&mut work, key, Action::USER_DELETE_TOKEN).await?;
    let token = store::tokens::find_for_user(work.conn(), &user.id, id)
        .await?
        .ok_or_else(|| Error::not_found("token"))?;
    store::tokens::delete(&mut work.write(&permit)?, &token.id).await?;
    work.audit(
        &permit,
        Change::api_key(
            "delete",
            &token.id,
            &token.token_name,
            json!({"token_name": {"old": token.token_name, "new": null}, "expires_at": {"old": token.expires_at, "new": null}}),
            204,
        ),
    )
    .await?;
    work.commit().await
}

/// A request's credential, checked.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub key_id: String,
    pub principal: std::sync::Arc<crate::authz::CachedPrincipal>,
}

/// Who a session or API token belongs to: 401 unless it is known and not
/// expired. Bookkeeping at most once a minute per key: last use, and the
/// sliding expiry of sessions.
pub async fn authenticate(ctx: Ctx<'_>, token: &str) -> Result<SignedIn> {
    let invalid = || Error::unauthorized("the session token is invalid or expired");
    let now = clock::now();
    let now_s = clock::fmt(now);
    let mut conn = ctx.conn().await?;
    let key = store::tokens::find_by_hash(&mut conn, &sha256_hex(token))
        .await?
        .filter(|k| k.expires_at > now_s)
        .ok_or_else(invalid)?;
    let user = store::users::find_by_id(&mut conn, &key.user_id)
        .await?
        .ok_or_else(invalid)?;
    let stale = clock::parse(&key.last_used_at).is_none_or(|t| (now - t).num_seconds() >= 60);
    drop(conn);
    if stale {
        let expires = if key.kind == "session" {
            clock::fmt(now + chrono::Duration::seconds(key.lifetime_seconds))
        } else {
            key.expires_at.clone()
        };
        let caller = Caller::system(System::Sessions);
        let mut work = Work::begin_at(ctx, &caller, now).await?;
        let permit = work.require(Action::USER_UPDATE, &user_resource(&user), "user")?;
        let mut w = work.write(&permit)?;
        store::tokens::touch(&mut w, &key.id, &expires, &now_s).await?;
        store::users::touch_last_seen(&mut w, &user.id, &now_s).await?;
        work.commit().await?;
    }
    let principal = ctx
        .authz
        .principal(ctx.db, &user.id, Some(key.authz_version))
        .await?
        .ok_or_else(invalid)?;
    Ok(SignedIn {
        user,
        key_id: key.id,
        principal,
    })
}
