//! User accounts: the one user-creation operation every path uses (the first
//! user, `POST /users`, OIDC login), reading, profile and sign-in changes,
//! status, site roles, deletion.

use std::collections::BTreeSet;

use orgsync_policy::{Action, Resource, is_site_role};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, Ctx, Page, Work, roles_changed};
use crate::audit::{self, AuditCtx, Change, to_value};
use crate::authz::{Grant, Permit, System};
use crate::error::{Error, Result};
use crate::idpsync::Managed;
use crate::idpsync::apply::Rows;
use crate::model::{
    LoginType, Organization, User, UserStatus, Username, parse_email, parse_password, parse_text,
};
use crate::secrets;
use crate::store::bulk::Arg;
use crate::store::{self, Conn};

/// A new account, its fields already validated.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// A new id ([`NewAccount::id`]).
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub login_type: LoginType,
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
}

impl NewAccount {
    /// A fresh account id.
    pub fn id() -> String {
        store::new_id()
    }
}

/// Who the audit entry of a new account names as the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedBy {
    /// The caller (an administrator creating it).
    Caller,
    /// The account itself (the first user, a self-service login).
    Itself,
}

/// The one user-creation operation: inserts the account, makes it a member of
/// the default organization (every user is), and writes the audit entry with
/// `status_code` (the answer the entry point gives). Inside the caller's
/// operation, under a `user:create` permit. A directory run creates its users
/// in bulk with the same rows ([`add_to_batch`]).
pub async fn insert(
    work: &mut Work<'_>,
    permit: &Permit,
    new: &NewAccount,
    created_by: CreatedBy,
    status_code: u16,
) -> Result<User> {
    let as_user = (created_by == CreatedBy::Itself).then_some(new.id.as_str());
    let audit = work.audit_ctx(permit, as_user)?;
    let org = store::orgs::default_org(work.conn())
        .await?
        .ok_or_else(|| Error::internal("default organization missing"))?;
    let now_s = work.now_s.clone();
    let mut rows = Rows::default();
    add_to_batch(
        &mut rows,
        new,
        Some((&org.id, &[])),
        &[],
        &audit,
        &now_s,
        status_code,
    );
    rows.flush(&mut work.write(permit)?)
        .await
        .map_err(Error::on_unique(
            "a user with this username or email already exists",
        ))?;
    let user = store::users::find_by_id(work.conn(), &new.id)
        .await?
        .ok_or_else(|| Error::internal("user vanished"))?;
    work.touch(new.id.clone());
    Ok(user)
}

/// Gathers a new account into a batch's rows: the account, its membership of
/// the default organization with `default_roles` (none when `default_org` is
/// `None`: the batch's sync takes the user out of it at once), and its audit
/// entry (`extra` fields added to the diff, e.g. the directory entry's DN),
/// written by [`Rows::flush`].
pub fn add_to_batch(
    rows: &mut Rows,
    new: &NewAccount,
    default_org: Option<(&str, &[String])>,
    extra: &[(&str, Value)],
    audit: &AuditCtx,
    now: &str,
    status_code: u16,
) {
    rows.users.push(vec![
        Arg::Text(new.id.clone()),
        Arg::Text(new.username.clone()),
        Arg::Text(new.username.to_lowercase()),
        Arg::Text(new.email.clone()),
        Arg::Text(new.email.to_lowercase()),
        Arg::Text(new.name.clone()),
        Arg::Text(String::new()),
        Arg::Text(UserStatus::Active.as_str().to_owned()),
        Arg::Text(new.login_type.as_str().to_owned()),
        Arg::Opt(new.password_hash.clone()),
        Arg::Text(store::to_json_list(&new.roles)),
        Arg::Text(now.to_owned()),
        Arg::Text(now.to_owned()),
        Arg::Int(1),
    ]);
    let mut roles = new.roles.clone();
    roles.insert(0, "member".to_owned());
    let mut diff = json!({
        "id": {"old": null, "new": new.id},
        "username": {"old": null, "new": new.username},
        "email": {"old": null, "new": new.email},
        "name": {"old": null, "new": new.name},
        "status": {"old": null, "new": UserStatus::Active.as_str()},
        "login_type": {"old": null, "new": new.login_type.as_str()},
        "roles": {"old": null, "new": roles},
    });
    if let Value::Object(d) = &mut diff {
        for (field, value) in extra {
            d.insert((*field).to_owned(), json!({"old": null, "new": value}));
        }
    }
    rows.audit(
        audit,
        now,
        None,
        "create",
        "user",
        &new.id,
        &new.username,
        diff,
        status_code,
    );
    if let Some((org, default_roles)) = default_org {
        rows.org_member(org, &new.id, default_roles, now);
    }
}

/// Whether the first user exists yet.
pub async fn first_exists(ctx: Ctx<'_>) -> Result<bool> {
    let mut conn = ctx.conn().await?;
    Ok(store::users::count(&mut conn).await? > 0)
}

/// The first user of a deployment, as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstUser {
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub name: String,
}

/// The first user, its default organization and its first session.
#[derive(Debug)]
pub struct FirstUserCreated {
    pub user: User,
    pub organization_id: String,
    pub session: super::sessions::Session,
}

/// Creates the first user as site owner, with a session. Only while no user
/// exists; a unique marker row makes two racing requests create one owner.
/// `audit` is the request's metadata (the entry names the new user).
pub async fn create_first(
    ctx: Ctx<'_>,
    audit: AuditCtx,
    req: FirstUser,
    session_lifetime_seconds: i64,
) -> Result<FirstUserCreated> {
    let username = Username::parse("username", &req.username)?;
    let email = parse_email("email", &req.email)?;
    parse_password("password", &req.password)?;
    let name = parse_text("name", &req.name, 128)?;
    let hash = secrets::hash_password(&req.password).map_err(Error::internal)?;
    let caller = Caller::System {
        actor: System::Setup,
        audit,
    };
    let mut work = Work::begin(ctx, &caller).await?;
    let permit = work.require(Action::USER_CREATE, &Resource::site(), "users")?;
    if store::users::count(work.conn()).await? > 0 {
        return Err(Error::conflict("the first user has already been created"));
    }
    let id = NewAccount::id();
    let now_s = work.now_s.clone();
    store::users::mark_first_user(&mut work.write(&permit)?, &id, &now_s)
        .await
        .map_err(Error::on_unique("the first user has already been created"))?;
    let user = insert(
        &mut work,
        &permit,
        &NewAccount {
            id,
            username: username.as_str().to_owned(),
            email,
            name,
            login_type: LoginType::Password,
            password_hash: Some(hash),
            roles: vec!["owner".to_owned()],
        },
        CreatedBy::Itself,
        201,
    )
    .await?;
    let org = store::orgs::default_org(work.conn())
        .await?
        .ok_or_else(|| Error::internal("default organization missing"))?;
    let token = work.require(Action::USER_CREATE_TOKEN, &user_resource(&user), "user")?;
    let lifetime = session_lifetime_seconds;
    let session =
        super::sessions::issue(&mut work, &token, &user.id, "session", "", lifetime).await?;
    work.commit().await?;
    Ok(FirstUserCreated {
        user,
        organization_id: org.id,
        session,
    })
}

/// A user as the object of a decision, with the site roles guardrails read.
pub fn user_resource(user: &User) -> Resource {
    Resource::user(&user.id, user.status.as_str()).with_site_roles(&user.roles)
}

/// Loads the user `key` (id, username or `me`) and decides `action` on it.
pub async fn load(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    key: &str,
    action: Action,
) -> Result<(User, Permit)> {
    let user = store::users::find(conn, caller.resolve_user_key(key))
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let permit = caller.require(ctx.authz, action, &user_resource(&user), "user")?;
    Ok((user, permit))
}

/// [`load`] inside an operation's transaction.
pub async fn load_in(work: &mut Work<'_>, key: &str, action: Action) -> Result<(User, Permit)> {
    let key = work.caller().resolve_user_key(key).to_owned();
    let user = store::users::find(work.conn(), &key)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let permit = work.require(action, &user_resource(&user), "user")?;
    Ok((user, permit))
}

/// Authority over the whole account of `user` (see
/// [`crate::authz::Authz::require_authority_over`]), read in the operation.
pub async fn require_authority_over(work: &mut Work<'_>, user: &User, what: &str) -> Result<()> {
    let (target, _) = store::principals::load(work.conn(), &user.id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let orgs = store::orgs::list(work.conn()).await?;
    work.require_authority_over(&target, &orgs, what)
}

pub async fn get(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<User> {
    let mut conn = ctx.conn().await?;
    Ok(load(&mut conn, ctx, caller, key, Action::USER_READ)
        .await?
        .0)
}

/// `?q=&status=&limit=&offset=` of the user list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    pub q: Option<String>,
    pub status: Option<UserStatus>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A page of users and how many match in all.
pub async fn list(ctx: Ctx<'_>, caller: &Caller, q: &UserQuery) -> Result<(Vec<User>, i64)> {
    caller.require(ctx.authz, Action::USER_LIST, &Resource::site(), "users")?;
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve(50, 1000)?;
    let mut conn = ctx.conn().await?;
    Ok(store::users::list(
        &mut conn,
        &store::users::UserFilter {
            search: q.q.as_deref().filter(|s| !s.is_empty()),
            status: q.status.map(UserStatus::as_str),
            limit,
            offset,
        },
    )
    .await?)
}

/// A user as `POST /users` asks for it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub password: Option<String>,
    pub login_type: Option<LoginType>,
    #[serde(default)]
    pub organization_ids: Vec<String>,
}

/// The sign-in of a user created by an administrator: a password, or none.
fn new_login(req: &NewUser) -> Result<(LoginType, Option<String>)> {
    let login_type = req.login_type.unwrap_or(if req.password.is_some() {
        LoginType::Password
    } else {
        LoginType::None
    });
    match (login_type, &req.password) {
        (LoginType::Password, Some(p)) => {
            parse_password("password", p)?;
            let hash = secrets::hash_password(p).map_err(Error::internal)?;
            Ok((LoginType::Password, Some(hash)))
        }
        (LoginType::Password, None) => Err(Error::validation(
            "password",
            "is required for login_type `password`",
        )),
        (LoginType::None, None) => Ok((LoginType::None, None)),
        (LoginType::None, Some(_)) => Err(Error::validation(
            "password",
            "must be absent for login_type `none`",
        )),
        (other, _) => Err(Error::validation(
            "login_type",
            format!(
                "`{}` users are created by their identity provider",
                other.as_str()
            ),
        )),
    }
}

/// Creates a user; it joins the default org and any orgs listed (each needs
/// `member:create` there and passes the grant rule).
pub async fn create(ctx: Ctx<'_>, caller: &Caller, req: NewUser) -> Result<User> {
    // Decided before the password is hashed: a refused caller costs no hash.
    caller.require(ctx.authz, Action::USER_CREATE, &Resource::site(), "users")?;
    let username = Username::parse("username", &req.username)?;
    let email = parse_email("email", &req.email)?;
    let name = parse_text("name", &req.name, 128)?;
    let (login_type, password_hash) = new_login(&req)?;
    let mut work = Work::begin(ctx, caller).await?;
    let permit = work.require(Action::USER_CREATE, &Resource::site(), "users")?;
    let user = insert(
        &mut work,
        &permit,
        &NewAccount {
            id: NewAccount::id(),
            username: username.as_str().to_owned(),
            email,
            name,
            login_type,
            password_hash,
            roles: Vec::new(),
        },
        CreatedBy::Caller,
        201,
    )
    .await?;
    let mut orgs: Vec<Organization> = Vec::new();
    for (i, key) in req.organization_ids.iter().enumerate() {
        let org = store::orgs::find(work.conn(), key).await?.ok_or_else(|| {
            Error::validation(
                &format!("organization_ids[{i}]"),
                format!("organization `{key}` not found"),
            )
        })?;
        if org.is_default || orgs.iter().any(|o| o.id == org.id) {
            continue;
        }
        let member = work.require(
            Action::MEMBER_CREATE,
            &Resource::member(&org.org_ref(), &user.id),
            "organization",
        )?;
        work.require_grants(
            &[Grant::org(&org, "organization-member")],
            "adding a member",
        )?;
        let now_s = work.now_s.clone();
        store::members::insert(&mut work.write(&permit)?, &org.id, &user.id, &now_s).await?;
        work.audit(
            &member,
            Change::member(
                &org.id,
                &user,
                "create",
                json!({"roles": {"old": null, "new": []}}),
                201,
            ),
        )
        .await?;
        orgs.push(org);
    }
    work.commit().await?;
    Ok(user)
}

/// The profile and sign-in fields of a user to change; `None` keeps a field.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
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

/// Changes a user's profile and sign-in. Changing what identifies the account
/// (username, email, login type, password) needs authority over all of it.
pub async fn update(ctx: Ctx<'_>, caller: &Caller, key: &str, req: UserChanges) -> Result<User> {
    // The password is hashed before the transaction opens (it is slow on
    // purpose); whether it may be set is decided inside.
    let mut conn = ctx.conn().await?;
    let (before, _) = load(&mut conn, ctx, caller, key, Action::USER_UPDATE).await?;
    drop(conn);
    let login = login_change(&before, req.login_type, req.password.as_deref())?;
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = load_in(&mut work, key, Action::USER_UPDATE).await?;
    if user.login_type != before.login_type {
        return Err(Error::conflict(
            "the user's login type changed meanwhile; try again",
        ));
    }
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
    let identity_changes = username != user.username
        || email.to_lowercase() != user.email.to_lowercase()
        || login.is_some();
    if !identity_changes
        && email == user.email
        && name == user.name
        && avatar_url == user.avatar_url
    {
        return Ok(user);
    }
    if identity_changes {
        // Whoever controls how an account signs in holds all its roles.
        require_authority_over(
            &mut work,
            &user,
            &format!(
                "changing how `{}` signs in (username, email or login type)",
                user.username
            ),
        )
        .await?;
    }
    let now_s = work.now_s.clone();
    store::users::update_profile(
        &mut work.write(&permit)?,
        &user.id,
        &username,
        &email,
        &name,
        &avatar_url,
        &now_s,
    )
    .await
    .map_err(Error::on_unique(
        "a user with this username or email already exists",
    ))?;
    if let Some((login_type, hash)) = &login {
        store::users::set_login(
            &mut work.write(&permit)?,
            &user.id,
            *login_type,
            hash.as_deref(),
            &now_s,
        )
        .await?;
    }
    let updated = store::users::find_by_id(work.conn(), &user.id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
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
    work.audit(
        &permit,
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
    work.commit().await?;
    Ok(updated)
}

/// The sign-in change asked for: the new login type and password hash.
fn login_change(
    user: &User,
    login_type: Option<LoginType>,
    password: Option<&str>,
) -> Result<Option<(LoginType, Option<String>)>> {
    let target = login_type.unwrap_or(user.login_type);
    let changes_type = target != user.login_type;
    if changes_type && !matches!(target, LoginType::Password | LoginType::None) {
        return Err(Error::validation(
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
            let hash = secrets::hash_password(p).map_err(Error::internal)?;
            Ok(Some((LoginType::Password, Some(hash))))
        }
        (LoginType::Password, None) if changes_type => Err(Error::validation(
            "password",
            "is required to change the login type to `password`",
        )),
        (LoginType::None, Some(_)) => Err(Error::validation(
            "password",
            "must be absent for login_type `none`",
        )),
        (LoginType::None, None) if changes_type => Ok(Some((LoginType::None, None))),
        (_, None) => Ok(None),
        (other, Some(_)) => Err(Error::validation(
            "password",
            format!("`{}` users have no password here", other.as_str()),
        )),
    }
}

/// Deletes a user; refused (409) while it owns workspaces.
pub async fn delete(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = load_in(&mut work, key, Action::USER_DELETE).await?;
    let owned = store::workspaces::count_for_owner(work.conn(), &user.id).await?;
    if owned > 0 {
        return Err(Error::conflict(format!(
            "user `{}` still owns {owned} workspace(s); delete them first",
            user.username
        )));
    }
    store::users::delete(&mut work.write(&permit)?, &user.id).await?;
    work.audit(&permit, Change::deleted(&user)).await?;
    work.touch(user.id);
    work.commit().await
}

/// Suspends or reactivates a user. Reactivation gives the account its roles
/// back: it needs authority over all of them. An administrator's decision
/// ends the directory sync's ownership of the status.
pub async fn set_status(
    ctx: Ctx<'_>,
    caller: &Caller,
    key: &str,
    status: UserStatus,
) -> Result<User> {
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = load_in(&mut work, key, Action::USER_SUSPEND).await?;
    if user.status == status {
        return Ok(user);
    }
    if status == UserStatus::Active {
        require_authority_over(
            &mut work,
            &user,
            &format!("reactivating `{}`", user.username),
        )
        .await?;
    }
    let now_s = work.now_s.clone();
    store::users::set_status(&mut work.write(&permit)?, &user.id, status, &now_s).await?;
    store::links::clear_sync_suspension(&mut work.write(&permit)?, &user.id).await?;
    let updated = store::users::find_by_id(work.conn(), &user.id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    work.audit(&permit, Change::updated(&user, &updated))
        .await?;
    work.touch(user.id);
    work.commit().await?;
    Ok(updated)
}

/// A user's site roles and its roles per organization (by org id).
pub async fn roles(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<Value> {
    let mut conn = ctx.conn().await?;
    let (user, _) = load(&mut conn, ctx, caller, key, Action::USER_READ).await?;
    let (principal, _) = store::principals::load(&mut conn, &user.id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let org_roles: serde_json::Map<String, Value> = principal
        .memberships
        .iter()
        .map(|m| (m.org_id.clone(), json!(m.roles)))
        .collect();
    Ok(json!({"roles": user.roles, "organization_roles": org_roles}))
}

/// Validates requested site roles; `member` is implicit and dropped.
fn parse_site_roles(roles: &[String]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (i, r) in roles.iter().enumerate() {
        if !is_site_role(r) {
            return Err(Error::validation(
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

/// Sets a user's site roles to exactly `roles`; every role granted or revoked
/// passes the grant rule.
pub async fn set_roles(ctx: Ctx<'_>, caller: &Caller, key: &str, roles: &[String]) -> Result<User> {
    let wanted = parse_site_roles(roles)?;
    let mut work = Work::begin(ctx, caller).await?;
    let key = work.caller().resolve_user_key(key).to_owned();
    let user = store::users::find(work.conn(), &key)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let current: BTreeSet<String> = store::users::explicit_roles(&user).into_iter().collect();
    let changed = roles_changed(&current, &wanted);
    let permit = work.require(Action::USER_UPDATE_ROLES, &user_resource(&user), "user")?;
    let grants: Vec<Grant> = changed.iter().cloned().map(Grant::Site).collect();
    work.require_grants(
        &grants,
        &format!("changing the site roles of `{}`", user.username),
    )?;
    if changed.is_empty() {
        return Ok(user);
    }
    crate::idpsync::guard_manual_change(
        work.conn(),
        user.login_type,
        Managed::SiteRoles,
        &user.username,
    )
    .await?;
    let list: Vec<String> = wanted.into_iter().collect();
    let now_s = work.now_s.clone();
    store::users::set_roles(&mut work.write(&permit)?, &user.id, &list, &now_s).await?;
    let updated = store::users::find_by_id(work.conn(), &user.id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    work.audit(
        &permit,
        Change::user(
            &user,
            "update",
            audit::diff(
                &json!({"roles": user.roles}),
                &json!({"roles": updated.roles}),
            ),
            200,
        ),
    )
    .await?;
    work.touch(user.id);
    work.commit().await?;
    Ok(updated)
}

/// A site role and whether the caller may grant or revoke it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AssignableSiteRole {
    pub name: &'static str,
    /// Whether the caller may grant or revoke it (`site_role:assign`).
    pub assignable: bool,
}

/// The explicit site roles (`member` is implicit) and which of them the
/// caller may assign, as the policies decide. For those who may list users.
pub async fn assignable_roles(ctx: Ctx<'_>, caller: &Caller) -> Result<Vec<AssignableSiteRole>> {
    caller.require(ctx.authz, Action::USER_LIST, &Resource::site(), "users")?;
    Ok(orgsync_policy::SITE_ROLES
        .iter()
        .filter(|r| **r != "member")
        .map(|role| AssignableSiteRole {
            name: role,
            assignable: caller.allowed(
                ctx.authz,
                Action::SITE_ROLE_ASSIGN,
                &Resource::site_role(role),
            ),
        })
        .collect())
}

/// The organizations of a user that the caller may see.
pub async fn organizations(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<Vec<Organization>> {
    let mut conn = ctx.conn().await?;
    let (user, _) = load(&mut conn, ctx, caller, key, Action::USER_READ).await?;
    let orgs = store::users::organizations(&mut conn, &user.id).await?;
    Ok(orgs
        .into_iter()
        .filter(|o| {
            caller.allowed(
                ctx.authz,
                Action::ORGANIZATION_READ,
                &Resource::organization(&o.org_ref()),
            )
        })
        .collect())
}
