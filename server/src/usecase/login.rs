//! OIDC login: after the provider vouched for an identity (the relying party's
//! round trips done, [`crate::oidc`]), the `allowed_groups` check, then one
//! transaction on the authority of [`System::OidcLogin`]: find the user by
//! subject, else link it by verified email, else create it (the one
//! user-creation operation); refuse suspended users; store the claims; run IdP
//! sync; open the session (the one session-issuing operation); audit. A refusal
//! of the identity leaves a `login_failed` audit entry. The audit source is
//! always `oidc_login`.

use chrono::{DateTime, Utc};
use orgsync_policy::{Action, Resource};
use serde_json::{Value, json};

use super::sessions::{self, Session};
use super::users::{self, CreatedBy, NewAccount, user_resource};
use super::{Caller, Ctx, Work};
use crate::audit::{AuditCtx, Change};
use crate::authz::System;
use crate::config::OidcConfig;
use crate::error::{Error, Result};
use crate::model::{LoginType, User, UserStatus, parse_email};
use crate::oidc::{self, Identity};
use crate::store::{self, Conn};

/// The caller of a login's own steps: [`System::OidcLogin`], audited with the
/// request's metadata under the source `oidc_login`.
fn oidc_caller(audit: &AuditCtx) -> Caller {
    Caller::System {
        actor: System::OidcLogin,
        audit: AuditCtx {
            source: System::OidcLogin.audit_source(),
            ..audit.clone()
        },
    }
}

/// Keeps the state of a login just sent to the provider (by the hash of
/// `state`, so that any replica can finish it), dropping states older than
/// [`oidc::STATE_TTL`]; on the authority of [`System::OidcLogin`] for what the
/// login attempts (`user:create_token`).
pub async fn oidc_begin(
    ctx: Ctx<'_>,
    state: &str,
    stored: &oidc::StoredState,
    now: DateTime<Utc>,
) -> Result<()> {
    let caller = oidc_caller(&AuditCtx::default());
    let mut work = Work::begin_at(ctx, &caller, now).await?;
    let permit = work.require(Action::USER_CREATE_TOKEN, &Resource::site(), "login")?;
    let cutoff = crate::clock::fmt(now - oidc::STATE_TTL);
    oidc::insert_state(&mut work.write(&permit)?, state, stored, &cutoff).await?;
    work.commit().await
}

/// Takes the state a callback names: deleted and returned once, committed
/// on its own before anything else happens, so that a state is good for one
/// try (a replay or a racing callback finds nothing).
pub async fn oidc_take_state(
    ctx: Ctx<'_>,
    state: &str,
    now: DateTime<Utc>,
) -> Result<Option<oidc::StoredState>> {
    let caller = oidc_caller(&AuditCtx::default());
    let mut work = Work::begin_at(ctx, &caller, now).await?;
    let permit = work.require(Action::USER_CREATE_TOKEN, &Resource::site(), "login")?;
    let stored = oidc::take_state(&mut work.write(&permit)?, state).await?;
    work.commit().await?;
    Ok(stored)
}

/// Signs in the identity the provider vouched for, at `now`.
pub async fn oidc(
    ctx: Ctx<'_>,
    cfg: &OidcConfig,
    session_lifetime_seconds: i64,
    identity: &Identity,
    audit: &AuditCtx,
    now: DateTime<Utc>,
) -> Result<LoggedIn> {
    let caller = oidc_caller(audit);
    if let Err(message) = oidc::check_allowed_groups(cfg, &identity.claims) {
        let refusal = Refusal::new(Error::refused(message), None);
        return Err(refuse(ctx, &caller, cfg, identity, refusal, now).await);
    }
    let mut work = Work::begin_at(ctx, &caller, now).await?;
    let done = match login_tx(&mut work, cfg, identity, session_lifetime_seconds).await {
        Ok(done) => done,
        Err(refusal) => {
            drop(work);
            return Err(refuse(ctx, &caller, cfg, identity, refusal, now).await);
        }
    };
    work.commit().await?;
    crate::metrics::idpsync_changes(&done.sync_changes, "oidc_login");
    tracing::info!(user = %done.user.username, created = done.created, linked = done.linked, "oidc login");
    Ok(done)
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    pub user: User,
    pub session: Session,
    /// The account was created by this login.
    pub created: bool,
    /// The account was linked to the identity by its verified email.
    pub linked: bool,
    /// The kinds of the IdP sync changes the login wrote (counted once
    /// committed).
    pub sync_changes: Vec<&'static str>,
}

/// A refused login: the answer, and whether it is worth a `login_failed`
/// audit entry (a refusal of a verified identity; not a database failure).
struct Refusal {
    error: Error,
    user_id: Option<String>,
    audit: bool,
}

impl Refusal {
    fn new(error: Error, user_id: Option<&str>) -> Self {
        Self {
            error,
            user_id: user_id.map(str::to_owned),
            audit: true,
        }
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Self {
            error,
            user_id: None,
            audit: false,
        }
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Error::from(e).into()
    }
}

/// The login transaction: find the user by subject, else by verified email
/// (linking it), else create it; refuse suspended users; store the claims; run
/// IdP sync; open a session; audit.
async fn login_tx(
    work: &mut Work<'_>,
    cfg: &OidcConfig,
    identity: &Identity,
    session_lifetime_seconds: i64,
) -> Result<LoggedIn, Refusal> {
    let subject = identity.subject.as_str();
    let claims = &identity.claims;
    // Before setup, a login would make a user and leave the deployment
    // without an owner for good (`POST /users/first` needs no users).
    if !store::users::any(work.conn()).await? {
        return Err(Error::refused(
            "this deployment is not set up yet: create the first user (`POST /api/v2/users/first`) \
             before logging in with OIDC",
        )
        .into());
    }
    let (mut user, created, linked) = match oidc::linked_user(work.conn(), subject).await? {
        Some(id) => {
            let user = store::users::find_by_id(work.conn(), &id)
                .await?
                .ok_or_else(|| Error::internal("linked user vanished"))?;
            (user, false, false)
        }
        None => match find_by_email(work.conn(), cfg, claims).await? {
            Some(user) => (user, false, true),
            None => (create_user(work, cfg, claims).await?, true, false),
        },
    };
    if user.status == UserStatus::Suspended {
        return Err(Refusal::new(
            Error::refused("your account is suspended; ask an administrator to reactivate it"),
            Some(&user.id),
        ));
    }
    let now_s = work.now_s.clone();
    // The link holds the claims of each login.
    let permit = work.require(Action::USER_LINK, &user_resource(&user), "user")?;
    oidc::upsert_link(&mut work.write(&permit)?, &user.id, subject, claims, &now_s).await?;
    if linked {
        work.audit_as(
            &permit,
            &user.id,
            Change::user(
                &user,
                "update",
                json!({"oidc_subject": {"old": null, "new": subject}}),
                200,
            ),
        )
        .await?;
    }
    let audit = AuditCtx {
        user_id: Some(user.id.clone()),
        ..work.caller().audit_ctx().clone()
    };
    // IdP sync on the login's own authority: each action a plan may take
    // is required first.
    let mut permits = Vec::new();
    for action in crate::authz::PLAN_ACTIONS {
        permits.push(work.require(*action, &Resource::site(), "IdP sync")?);
    }
    let mut w = work.write(&permits[0])?;
    let synced = match crate::idpsync::sync_at_login(&mut w, &user.id, claims, &now_s, &audit).await
    {
        Ok(synced) => synced,
        Err(r) => {
            let error = if r.status >= 500 {
                Error::internal(r.message)
            } else {
                Error::with_status(r.status, r.message)
            };
            return Err(Refusal::new(error, (!created).then_some(user.id.as_str())));
        }
    };
    work.touch(user.id.clone());
    let session = sessions::open(work, &user, session_lifetime_seconds, 302).await?;
    if let Some(u) = store::users::find_by_id(work.conn(), &user.id).await? {
        user = u;
    }
    Ok(LoggedIn {
        user,
        session,
        created,
        linked,
        sync_changes: synced.changes,
    })
}

/// An existing user to link by email: only with a verified email (or when
/// `ignore_email_verified`), and only a user not linked to another subject.
async fn find_by_email(
    conn: &mut Conn,
    cfg: &OidcConfig,
    claims: &oidc::Claims,
) -> Result<Option<User>, Refusal> {
    let Some(email) = oidc::email(cfg, claims) else {
        return Ok(None);
    };
    let verified = oidc::email_verified(claims);
    if !cfg.ignore_email_verified && verified == Some(false) {
        return Err(Refusal::new(
            Error::refused(format!(
                "your email address `{email}` is not verified at the identity provider; \
                 verify it there, then log in again"
            )),
            None,
        ));
    }
    let Some((user, password_hash)) = store::users::find_for_login(conn, &email).await? else {
        return Ok(None);
    };
    // An account that signs in with a password is never taken over by whoever
    // shows its email at the identity provider: an owner links it explicitly.
    if user.login_type == LoginType::Password || password_hash.is_some() {
        return Err(Refusal::new(
            Error::refused(format!(
                "an account with the email `{email}` already exists and signs in with a \
                 password; an administrator must link your identity to that account \
                 before you can sign in with it here"
            )),
            Some(&user.id),
        ));
    }
    if !(cfg.ignore_email_verified || verified == Some(true)) {
        return Err(Refusal::new(
            Error::conflict(format!(
                "an account with the email `{email}` exists; it can be linked only when the \
                 identity provider marks the email as verified (`email_verified`)"
            )),
            None,
        ));
    }
    if oidc::subject_of(conn, &user.id).await?.is_some() {
        return Err(Refusal::new(
            Error::conflict(format!(
                "the account with the email `{email}` is linked to another identity at the \
                 identity provider"
            )),
            Some(&user.id),
        ));
    }
    Ok(Some(user))
}

/// Creates an `oidc` user with the one user-creation operation: username
/// from the username claim (normalized, de-duplicated), email from the email
/// claim.
async fn create_user(
    work: &mut Work<'_>,
    cfg: &OidcConfig,
    claims: &oidc::Claims,
) -> Result<User, Refusal> {
    let raw_email = oidc::email(cfg, claims).ok_or_else(|| {
        Refusal::new(
            Error::refused(format!(
                "the identity provider sent no email address (claim `{}`); an account needs one",
                cfg.email_claim
            )),
            None,
        )
    })?;
    let email = parse_email("email", &raw_email).map_err(|_| {
        Refusal::new(
            Error::refused(format!(
                "the identity provider sent `{raw_email}`, which is not an email address"
            )),
            None,
        )
    })?;
    let raw_username = claims
        .get(&cfg.username_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&email);
    let username = free_username(work.conn(), &oidc::username_base(raw_username)).await?;
    let name: String = claims
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let permit = work.require(Action::USER_CREATE, &Resource::site(), "users")?;
    Ok(users::insert(
        work,
        &permit,
        &NewAccount {
            id: NewAccount::id(),
            username,
            email,
            name,
            login_type: LoginType::Oidc,
            password_hash: None,
            roles: Vec::new(),
        },
        CreatedBy::Itself,
        302,
    )
    .await?)
}

/// The first free username among `base`, `base-2`, `base-3`, ...
async fn free_username(conn: &mut Conn, base: &str) -> Result<String, Refusal> {
    for n in 1..=50 {
        let candidate = oidc::username_candidate(base, n);
        if store::users::find(conn, &candidate).await?.is_none() {
            return Ok(candidate);
        }
    }
    // A crowded name: a random suffix.
    Ok(oidc::username_candidate(
        base,
        rand::random::<u32>().max(51),
    ))
}

/// Answers a refusal; a refusal of a verified identity leaves a
/// `login_failed` audit entry (written after the login transaction rolled back).
async fn refuse(
    ctx: Ctx<'_>,
    caller: &Caller,
    cfg: &OidcConfig,
    identity: &Identity,
    refusal: Refusal,
    now: DateTime<Utc>,
) -> Error {
    if !refusal.audit {
        return refusal.error;
    }
    let target = oidc::email(cfg, &identity.claims).unwrap_or_else(|| identity.subject.clone());
    let written = async {
        let mut work = Work::begin_at(ctx, caller, now).await?;
        // Audited on the login's authority for what it attempted.
        let permit = work.require(Action::USER_CREATE_TOKEN, &Resource::site(), "login")?;
        work.audit_for(
            &permit,
            refusal.user_id.as_deref(),
            Change::api_key(
                "login_failed",
                refusal.user_id.as_deref().unwrap_or(""),
                &target,
                json!({}),
                refusal.error.status_code(),
            ),
        )
        .await?;
        work.commit().await
    }
    .await;
    if let Err(e) = written {
        tracing::error!("cannot audit a refused oidc login: {}", e.body.message);
    }
    refusal.error
}
