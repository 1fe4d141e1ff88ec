//! The use cases: every operation of orgsync exists here once, whatever entry
//! point calls it (the JSON API, the web console, OIDC login, a directory sync
//! run, the scheduler, the reaper). An operation that writes owns the whole of
//! it in one transaction: load, authorize (a [`Permit`] from a Cedar decision,
//! or a system actor's named authority), write through [`crate::store`], audit,
//! commit. An adapter parses its input, calls one operation and renders.
//!
//! [`Work`] is that transaction: it carries the caller, the time of the
//! operation, and the users whose authorization data it touched (their cached
//! principals are dropped after the commit).

pub mod audit;
pub mod authz;
pub mod groups;
pub mod idpsync;
pub mod impact;
pub mod ldapsync;
pub mod links;
pub mod login;
pub mod members;
pub mod metrics;
pub mod orgs;
pub mod provisionerd;
pub mod provisioners;
pub mod sessions;
pub mod templates;
pub mod users;
pub mod workspaces;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use orgsync_policy::{Action, Principal, PrincipalEntity, RequestContext, Resource};
use serde::Deserialize;

use crate::audit::{AuditCtx, Change};
use crate::authz::{Authority, Authz, CachedPrincipal, Grant, Permit, System, Write};
use crate::clock;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::model::Organization;
use crate::store::Conn;

/// What every use case runs against: the database and the policies.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub db: &'a Db,
    pub authz: &'a Authz,
}

impl<'a> Ctx<'a> {
    pub fn new(db: &'a Db, authz: &'a Authz) -> Self {
        Self { db, authz }
    }

    /// A connection for an operation that only reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.db.pool().acquire().await?)
    }
}

/// Who calls a use case: a signed-in user, whose every action the policies
/// decide, or a system actor acting within its named authority.
#[derive(Debug, Clone)]
pub enum Caller {
    User {
        principal: Arc<CachedPrincipal>,
        audit: AuditCtx,
    },
    System {
        actor: System,
        audit: AuditCtx,
    },
    /// A provisioner daemon, authenticated by its key: the policies decide its
    /// every action like a user's; it grants nothing.
    Daemon {
        principal: Box<PrincipalEntity>,
        audit: AuditCtx,
    },
}

impl Caller {
    /// A system actor, audited under its own source.
    pub fn system(actor: System) -> Self {
        Caller::System {
            actor,
            audit: AuditCtx {
                source: actor.audit_source(),
                ..AuditCtx::default()
            },
        }
    }

    /// The calling user, if a user calls.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User { principal, .. } => Some(&principal.data.id),
            Caller::System { .. } | Caller::Daemon { .. } => None,
        }
    }

    pub fn audit_ctx(&self) -> &AuditCtx {
        match self {
            Caller::User { audit, .. }
            | Caller::System { audit, .. }
            | Caller::Daemon { audit, .. } => audit,
        }
    }

    /// A `{user}` key as given by the caller: `me` names the caller itself.
    pub fn resolve_user_key<'a>(&'a self, key: &'a str) -> &'a str {
        match self.user_id() {
            Some(id) if key == "me" => id,
            _ => key,
        }
    }

    /// Decides `action` on `resource`: a [`Permit`], or 404 when the caller may
    /// not even read the resource (`what` names it), 403 otherwise.
    pub fn require(
        &self,
        authz: &Authz,
        action: Action,
        resource: &Resource,
        what: &str,
    ) -> Result<Permit> {
        self.require_with(authz, action, resource, &RequestContext::new(), what)
    }

    pub fn require_with(
        &self,
        authz: &Authz,
        action: Action,
        resource: &Resource,
        context: &RequestContext,
        what: &str,
    ) -> Result<Permit> {
        match self {
            Caller::User { principal, .. } => {
                authz.require_with(&principal.entity, action, resource, context, what)
            }
            Caller::System { actor, .. } => Permit::system(*actor, action).ok_or_else(|| {
                Error::forbidden().with_detail(format!(
                    "{actor:?} may not take `{}` on its own authority",
                    action.name()
                ))
            }),
            Caller::Daemon { principal, .. } => {
                authz.require_with(principal, action, resource, context, what)
            }
        }
    }

    /// Whether the caller may take `action` (for filtering what it sees).
    pub fn allowed(&self, authz: &Authz, action: Action, resource: &Resource) -> bool {
        match self {
            Caller::User { principal, .. } => authz.allowed(&principal.entity, action, resource),
            Caller::System { actor, .. } => actor.may(action),
            Caller::Daemon { principal, .. } => authz.allowed(principal, action, resource),
        }
    }

    /// The grant rule for a user; a system actor grants only what settings
    /// (whose writes passed the grant rule) map its identities to.
    pub fn require_grants<'g>(
        &self,
        authz: &Authz,
        grants: impl IntoIterator<Item = &'g Grant>,
        through: &str,
    ) -> Result<()> {
        match self {
            Caller::User { principal, .. } => {
                authz.require_grants(&principal.entity, grants, through)
            }
            Caller::System { .. } => Ok(()),
            Caller::Daemon { .. } => Err(Error::forbidden()),
        }
    }

    /// Authority over a whole account (see [`Authz::require_authority_over`]).
    pub fn require_authority_over(
        &self,
        authz: &Authz,
        target: &Principal,
        orgs: &[Organization],
        what: &str,
    ) -> Result<()> {
        match self {
            Caller::User { principal, .. } => {
                authz.require_authority_over(&principal.entity, target, orgs, what)
            }
            Caller::System { .. } => Ok(()),
            Caller::Daemon { .. } => Err(Error::forbidden()),
        }
    }
}

/// One operation's transaction. Dropped without [`Work::commit`], it rolls back.
pub struct Work<'a> {
    authz: &'a Authz,
    caller: &'a Caller,
    tx: Tx,
    pub now: DateTime<Utc>,
    pub now_s: String,
    touched: Vec<String>,
    touched_all: bool,
}

impl<'a> Work<'a> {
    /// Opens the operation's transaction (a write transaction: on SQLite it
    /// holds the write lock from the first read, so what is loaded and decided
    /// on is what is replaced).
    pub async fn begin(ctx: Ctx<'a>, caller: &'a Caller) -> Result<Self> {
        Self::begin_at(ctx, caller, clock::now()).await
    }

    /// [`Work::begin`] for an operation whose time was read by its entry point.
    pub async fn begin_at(ctx: Ctx<'a>, caller: &'a Caller, now: DateTime<Utc>) -> Result<Self> {
        let tx = ctx.db.begin().await?;
        Ok(Self {
            authz: ctx.authz,
            caller,
            tx,
            now_s: clock::fmt(now),
            now,
            touched: Vec::new(),
            touched_all: false,
        })
    }

    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// The transaction's connection, for reads.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.tx
    }

    /// The transaction's connection for writes under `permit`, which must be
    /// this caller's (see [`Work::check`]).
    pub fn write(&mut self, permit: &Permit) -> Result<Write<'_>> {
        self.check(permit)?;
        Ok(Write::new(&mut self.tx, permit))
    }

    pub fn require(&self, action: Action, resource: &Resource, what: &str) -> Result<Permit> {
        self.caller.require(self.authz, action, resource, what)
    }

    pub fn require_with(
        &self,
        action: Action,
        resource: &Resource,
        context: &RequestContext,
        what: &str,
    ) -> Result<Permit> {
        self.caller
            .require_with(self.authz, action, resource, context, what)
    }

    pub fn allowed(&self, action: Action, resource: &Resource) -> bool {
        self.caller.allowed(self.authz, action, resource)
    }

    pub fn require_grants<'g>(
        &self,
        grants: impl IntoIterator<Item = &'g Grant>,
        through: &str,
    ) -> Result<()> {
        self.caller.require_grants(self.authz, grants, through)
    }

    pub fn require_authority_over(
        &self,
        target: &Principal,
        orgs: &[Organization],
        what: &str,
    ) -> Result<()> {
        self.caller
            .require_authority_over(self.authz, target, orgs, what)
    }

    /// A permit is this caller's: a decision for a user, the actor's own
    /// authority for a system actor. Anything else is a bug, refused.
    fn check(&self, permit: &Permit) -> Result<()> {
        let ours = match (self.caller, permit.authority()) {
            (Caller::User { .. } | Caller::Daemon { .. }, Authority::Decision) => true,
            (Caller::System { actor, .. }, Authority::System(by)) => *actor == by,
            _ => false,
        };
        if ours {
            Ok(())
        } else {
            Err(Error::internal(format!(
                "a permit for `{}` given to another caller was used",
                permit.action().name()
            )))
        }
    }

    /// Writes the audit entry of a change made under `permit`.
    pub async fn audit(&mut self, permit: &Permit, change: Change<'_>) -> Result<()> {
        self.audit_for(permit, None, change).await
    }

    /// The audit metadata of a change made under `permit` (in the name of
    /// `as_user` when given), for entries written in bulk.
    pub fn audit_ctx(&self, permit: &Permit, as_user: Option<&str>) -> Result<AuditCtx> {
        self.check(permit)?;
        let mut ctx = self.caller.audit_ctx().clone();
        if let Some(user_id) = as_user {
            ctx.user_id = Some(user_id.to_owned());
        }
        Ok(ctx)
    }

    /// Writes the audit entry of a change made under `permit` in the name of
    /// `user_id` (an account acting for the first time: created, or signing in).
    pub async fn audit_as(
        &mut self,
        permit: &Permit,
        user_id: &str,
        change: Change<'_>,
    ) -> Result<()> {
        self.audit_for(permit, Some(user_id), change).await
    }

    /// Writes the audit entry of a change made under `permit`, in the name of
    /// `as_user` when given (the account concerned, when the caller is not a
    /// user: a refused login names the account it tried).
    pub async fn audit_for(
        &mut self,
        permit: &Permit,
        as_user: Option<&str>,
        change: Change<'_>,
    ) -> Result<()> {
        let ctx = self.audit_ctx(permit, as_user)?;
        let now_s = self.now_s.clone();
        crate::audit::record(&mut self.write(permit)?, &ctx, &now_s, change).await?;
        Ok(())
    }

    /// Marks a user whose memberships, roles, groups or status changed: its
    /// cached principal is dropped after the commit.
    pub fn touch(&mut self, user_id: impl Into<String>) {
        self.touched.push(user_id.into());
    }

    pub fn touch_all<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, user_ids: I) {
        self.touched.extend(user_ids.into_iter().map(Into::into));
    }

    /// Marks that the operation may have changed anyone's authorization data.
    pub fn touch_everyone(&mut self) {
        self.touched_all = true;
    }

    /// Commits, then drops the touched principals from the cache.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        if self.touched_all {
            self.authz.invalidate_all();
        } else if !self.touched.is_empty() {
            self.authz
                .invalidate(self.touched.iter().map(String::as_str));
        }
        Ok(())
    }
}

/// The roles granted or revoked when `old` becomes `new`.
pub(crate) fn roles_changed(
    old: &std::collections::BTreeSet<String>,
    new: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    old.symmetric_difference(new).cloned().collect()
}

/// `?limit=&offset=` of a list.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Page {
    pub fn resolve(self, default: i64, max: i64) -> Result<(i64, i64), Error> {
        let limit = self.limit.unwrap_or(default);
        let offset = self.offset.unwrap_or(0);
        if !(1..=max).contains(&limit) {
            return Err(Error::validation(
                "limit",
                format!("must be between 1 and {max}"),
            ));
        }
        if offset < 0 {
            return Err(Error::validation("offset", "must not be negative"));
        }
        Ok((limit, offset))
    }

    /// Pages a list already filtered by the policies: everything when no
    /// `limit` is given, else `limit` (1..=1000) items after `offset`.
    pub fn apply<T>(self, items: Vec<T>) -> Result<Vec<T>, Error> {
        if self.limit.is_none() && self.offset.is_none() {
            return Ok(items);
        }
        let (limit, offset) = self.resolve(1000, 1000)?;
        Ok(items
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use orgsync_policy::Principal;

    use super::*;

    fn authz() -> Authz {
        Authz::load(None).expect("the built-in policies load")
    }

    fn user(site_roles: &[&str]) -> Caller {
        let data = Principal {
            id: "u1".to_owned(),
            status: "active".to_owned(),
            site_roles: site_roles.iter().map(|r| (*r).to_owned()).collect(),
            memberships: Vec::new(),
            groups: Vec::new(),
        };
        Caller::User {
            principal: Arc::new(CachedPrincipal {
                version: 1,
                entity: data.prepare(),
                data,
            }),
            audit: AuditCtx::default(),
        }
    }

    #[test]
    fn a_system_actor_acts_only_within_its_named_authority() {
        let authz = authz();
        let site = Resource::site();
        let login = Caller::system(System::OidcLogin);
        let permit = login
            .require(&authz, Action::USER_CREATE, &site, "users")
            .unwrap();
        assert_eq!(permit.authority(), Authority::System(System::OidcLogin));
        // Nothing beyond its list, whatever the policies say of anyone.
        for action in [
            Action::ORGANIZATION_DELETE,
            Action::SITE_ROLE_ASSIGN,
            Action::POLICY_RELOAD,
            Action::DEPLOYMENT_SYNC_UPDATE,
        ] {
            let e = login.require(&authz, action, &site, "x").unwrap_err();
            assert_eq!(e.status_code(), 403, "{}", action.name());
        }
        assert!(Permit::system(System::Reaper, Action::USER_CREATE).is_none());
        assert!(Permit::system(System::PasswordLogin, Action::USER_UPDATE_ROLES).is_none());
        assert!(!Caller::system(System::Config).allowed(&authz, Action::USER_CREATE, &site));
    }

    #[test]
    fn a_user_gets_a_permit_only_from_a_decision() {
        let authz = authz();
        let site = Resource::site();
        let owner = user(&["owner"]);
        let member = user(&[]);
        let permit = owner
            .require(&authz, Action::ORGANIZATION_CREATE, &site, "organization")
            .unwrap();
        assert_eq!(permit.authority(), Authority::Decision);
        let e = member
            .require(&authz, Action::USER_CREATE, &site, "users")
            .unwrap_err();
        assert_eq!(e.status_code(), 403);
        // The grant rule holds for users, not for system actors (whose grants
        // come from settings that passed it).
        let owner_role = [Grant::Site("owner".to_owned())];
        assert!(
            member
                .require_grants(&authz, &owner_role, "a test")
                .is_err()
        );
        assert!(owner.require_grants(&authz, &owner_role, "a test").is_ok());
    }
}
