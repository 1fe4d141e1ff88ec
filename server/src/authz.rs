//! The server side of authorization: the loaded policy engine (reloadable), the
//! cache of principals' entity slices, and the one entry point handlers use to
//! obtain a [`Permit`] from an Allow decision.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use orgsync_policy::{
    Action, Decision, Engine, EntityKind, OrgRef, PolicyError, PolicySources, Principal,
    PrincipalEntity, RequestContext, Resource,
};

use crate::db::Db;
use crate::error::Error;
use crate::store;

/// Proof that an action may be taken. Only this module makes one: from an Allow
/// decision of the policies ([`Authz::require`]), or from the named authority
/// of a system actor ([`Permit::system`]). The use cases ask for one before
/// every write and audit it ([`crate::usecase::Work::audit`]).
#[derive(Debug)]
pub struct Permit {
    action: Action,
    by: Authority,
}

/// On whose authority a [`Permit`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// An Allow decision of the policies for the calling principal.
    Decision,
    /// A system actor acting within its named authority.
    System(System),
}

/// The actors that write without a calling user. Each may take only the
/// actions listed in [`System::may`]; what they grant is decided by the sync
/// settings, whose writes passed the grant rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Setting up a new deployment: the default organization and its Everyone
    /// group at startup, and the first user (only while no user exists).
    Setup,
    /// A password login: the password checked, it opens the session (and wakes
    /// a dormant account).
    PasswordLogin,
    /// An OIDC login: creates or links the account, applies IdP sync, opens
    /// the session.
    OidcLogin,
    /// A directory (LDAP) sync run: creates, links, suspends and reactivates
    /// accounts and applies IdP sync per user.
    DirectorySync,
    /// A session key's own bookkeeping, for its holder: the last use and the
    /// sliding expiry recorded as a request authenticates, and the end of a
    /// session its holder asks for (logout). It gives no one any authority.
    Sessions,
    /// Settings read from the config file at startup.
    Config,
    /// The job reaper: fails jobs whose daemon went silent.
    Reaper,
}

/// What applying an IdP sync plan may do to memberships, groups and roles
/// (at a login, in a directory run): each is required before a plan is
/// applied.
pub const PLAN_ACTIONS: &[Action] = &[
    Action::MEMBER_CREATE,
    Action::MEMBER_DELETE,
    Action::MEMBER_UPDATE_ROLES,
    Action::GROUP_CREATE,
    Action::GROUP_UPDATE,
    Action::USER_UPDATE_ROLES,
];

/// What a directory run does to accounts besides applying their plans.
pub const DIRECTORY_ACCOUNT_ACTIONS: &[Action] = &[
    Action::USER_CREATE,
    Action::USER_UPDATE,
    Action::USER_LINK,
    Action::USER_SUSPEND,
];

impl System {
    /// The actions this actor may take on its own authority.
    pub fn may(self, action: Action) -> bool {
        let (own, applies_plans): (&[Action], bool) = match self {
            System::Setup => (
                &[
                    Action::ORGANIZATION_CREATE,
                    Action::GROUP_CREATE,
                    Action::USER_CREATE,
                    Action::USER_CREATE_TOKEN,
                ],
                false,
            ),
            System::PasswordLogin => (&[Action::USER_UPDATE, Action::USER_CREATE_TOKEN], false),
            System::OidcLogin => (
                &[
                    Action::USER_CREATE,
                    Action::USER_CREATE_TOKEN,
                    Action::USER_UPDATE,
                    Action::USER_LINK,
                ],
                true,
            ),
            System::DirectorySync => {
                if action == Action::LDAPSYNC_RUN {
                    return true;
                }
                (DIRECTORY_ACCOUNT_ACTIONS, true)
            }
            System::Sessions => (&[Action::USER_UPDATE], false),
            System::Config => (&[Action::DEPLOYMENT_SYNC_UPDATE], false),
            System::Reaper => (&[Action::PROVISIONER_JOB_UPDATE], false),
        };
        own.contains(&action) || (applies_plans && PLAN_ACTIONS.contains(&action))
    }

    /// The audit `source` of its writes.
    pub fn audit_source(self) -> &'static str {
        match self {
            System::Setup => "system",
            System::PasswordLogin | System::Sessions => "api",
            System::Config => "config",
            System::OidcLogin => "oidc_login",
            System::DirectorySync => "ldap_sync",
            System::Reaper => "reaper",
        }
    }
}

impl Permit {
    pub fn action(&self) -> Action {
        self.action
    }

    pub fn authority(&self) -> Authority {
        self.by
    }

    /// A permit on a system actor's own authority, if the action is one it may
    /// take ([`System::may`]).
    pub fn system(actor: System, action: Action) -> Option<Permit> {
        actor.may(action).then_some(Permit {
            action,
            by: Authority::System(actor),
        })
    }
}

/// A connection that may write: every store function whose SQL writes takes
/// one (checked by `layering.rs`). Its only constructor needs a [`Permit`], so
/// a write cannot be reached without an Allow decision or a system actor's
/// named authority; the use cases get one from [`crate::usecase::Work::write`],
/// which also checks that the permit is its caller's.
pub struct Write<'c> {
    conn: &'c mut store::Conn,
    action: Action,
}

impl<'c> Write<'c> {
    /// A write handle on `conn` under `permit`. Made by `Work::write`, and
    /// nowhere else but for the OIDC login state rows whose connection the HTTP
    /// adapter holds (`oidc.rs`; both checked by `layering.rs`).
    pub fn new(conn: &'c mut store::Conn, permit: &Permit) -> Self {
        Self {
            conn,
            action: permit.action(),
        }
    }

    /// The connection, for the statements of a store function.
    pub fn conn(&mut self) -> &mut store::Conn {
        self.conn
    }

    /// The action whose permit opened this handle.
    pub fn action(&self) -> Action {
        self.action
    }
}

impl std::fmt::Debug for Write<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("action", &self.action.name())
            .finish_non_exhaustive()
    }
}

/// A role someone would come to hold: a site role, or an organization role in
/// one organization. The grant rule: whatever path causes a grant (a role route,
/// adding a member, sync settings, directory settings), the caller must be
/// allowed `site_role:assign` / `org_role:assign` on that role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    Site(String),
    Org { org: OrgKey, role: String },
}

/// An organization as a grant names it: its reference and its name (for messages).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgKey {
    pub id: String,
    pub name: String,
    pub is_default: bool,
}

impl OrgKey {
    pub fn org_ref(&self) -> OrgRef {
        OrgRef::new(self.id.clone(), self.is_default)
    }
}

impl Grant {
    pub fn org(org: &crate::model::Organization, role: &str) -> Self {
        Grant::Org {
            org: OrgKey {
                id: org.id.clone(),
                name: org.name.clone(),
                is_default: org.is_default,
            },
            role: role.to_owned(),
        }
    }

    fn decision(&self) -> (Action, Resource) {
        match self {
            Grant::Site(role) => (Action::SITE_ROLE_ASSIGN, Resource::site_role(role)),
            Grant::Org { org, role } => (
                Action::ORG_ROLE_ASSIGN,
                Resource::org_role(&org.org_ref(), role),
            ),
        }
    }

    fn describe(&self) -> String {
        match self {
            Grant::Site(role) => format!("the site role `{role}`"),
            Grant::Org { org, role } => format!("the role `{role}` in `{}`", org.name),
        }
    }
}

/// A principal as cached: its data and its prepared Cedar entity.
#[derive(Debug)]
pub struct CachedPrincipal {
    /// The user's `authz_version` this slice was built from.
    pub version: i64,
    pub data: Principal,
    pub entity: PrincipalEntity,
}

pub struct Authz {
    engine: RwLock<Arc<Engine>>,
    policy_dir: Option<PathBuf>,
    cache: RwLock<HashMap<String, Arc<CachedPrincipal>>>,
    /// Reloads finished so far, accepted or rejected (see `reload_attempts`).
    reload_attempts: AtomicU64,
}

/// The action that reads a resource of this kind: when an action is denied and
/// this one is denied too, the caller learns nothing (404), else it gets 403.
fn read_action(kind: EntityKind) -> Option<Action> {
    Some(match kind {
        EntityKind::Organization => Action::ORGANIZATION_READ,
        EntityKind::User => Action::USER_READ,
        EntityKind::Member => Action::MEMBER_READ,
        EntityKind::Group => Action::GROUP_READ,
        EntityKind::Template => Action::TEMPLATE_READ,
        EntityKind::TemplateVersion => Action::TEMPLATE_VERSION_READ,
        EntityKind::File => Action::FILE_READ,
        EntityKind::ProvisionerKey => Action::PROVISIONER_KEY_READ,
        EntityKind::ProvisionerDaemon => Action::PROVISIONER_DAEMON_READ,
        EntityKind::ProvisionerJob => Action::PROVISIONER_JOB_READ,
        EntityKind::Workspace => Action::WORKSPACE_READ,
        EntityKind::AuditLog | EntityKind::IdpSyncSettings | EntityKind::OrganizationRole => {
            Action::ORGANIZATION_READ
        }
        EntityKind::Site | EntityKind::Role => return None,
    })
}

fn read_resource(kind: EntityKind, resource: &Resource) -> Option<Resource> {
    match kind {
        // Org-level settings and logs are hidden exactly when the org is.
        EntityKind::AuditLog | EntityKind::IdpSyncSettings | EntityKind::OrganizationRole => {
            resource.org().map(Resource::organization)
        }
        _ => Some(resource.clone()),
    }
}

impl Authz {
    /// Loads the policies (a directory, or the built-in ones).
    pub fn load(policy_dir: Option<PathBuf>) -> Result<Self, PolicyError> {
        let engine = load_engine(policy_dir.as_deref())?;
        Ok(Self {
            engine: RwLock::new(Arc::new(engine)),
            policy_dir,
            cache: RwLock::new(HashMap::new()),
            reload_attempts: AtomicU64::new(0),
        })
    }

    pub fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the policies; a set that fails validation is rejected and the
    /// running one stays.
    pub fn reload(&self) -> Result<Arc<Engine>, PolicyError> {
        let reloaded = self.try_reload();
        self.reload_attempts.fetch_add(1, Ordering::SeqCst);
        reloaded
    }

    fn try_reload(&self) -> Result<Arc<Engine>, PolicyError> {
        let engine = Arc::new(load_engine(self.policy_dir.as_deref())?);
        match self.engine.write() {
            Ok(mut e) => *e = engine.clone(),
            Err(poisoned) => *poisoned.into_inner() = engine.clone(),
        }
        tracing::info!(
            hash = engine.hash(),
            policies = engine.policies().len(),
            "policies reloaded"
        );
        Ok(engine)
    }

    /// How many reloads (API, `SIGHUP`, policy-directory watch) have finished,
    /// whether their set was accepted or rejected. A test that checks that a
    /// rejected set did not replace the running one waits for this to move
    /// first: then it knows the reload was tried, not merely not yet done.
    pub fn reload_attempts(&self) -> u64 {
        self.reload_attempts.load(Ordering::SeqCst)
    }

    pub fn policy_dir(&self) -> Option<&PathBuf> {
        self.policy_dir.as_ref()
    }

    /// The principal of a user, from the cache when its version is current
    /// (`known_version`, or else read from the database), else rebuilt. The
    /// version is bumped in the transaction of every change to the user's
    /// authorization data, so every replica sees changes at the next request.
    pub async fn principal(
        &self,
        db: &Db,
        user_id: &str,
        known_version: Option<i64>,
    ) -> Result<Option<Arc<CachedPrincipal>>, Error> {
        let mut conn = db.pool().acquire().await?;
        let version = match known_version {
            Some(v) => v,
            None => match store::users::authz_version(&mut conn, user_id).await? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        if let Some(p) = self.cache.read().ok().and_then(|c| c.get(user_id).cloned())
            && p.version == version
        {
            return Ok(Some(p));
        }
        let Some((data, version)) = store::principals::load(&mut conn, user_id).await? else {
            return Ok(None);
        };
        let cached = Arc::new(CachedPrincipal {
            version,
            entity: data.prepare(),
            data,
        });
        if let Ok(mut c) = self.cache.write() {
            c.insert(user_id.to_owned(), cached.clone());
        }
        Ok(Some(cached))
    }

    /// Forgets cached principals whose authorization data changed. Call after
    /// the change committed.
    pub fn invalidate<'a>(&self, user_ids: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut c) = self.cache.write() {
            for id in user_ids {
                c.remove(id);
            }
        }
    }

    pub fn invalidate_all(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
    }

    /// One decision, logged at debug level.
    pub fn decide(
        &self,
        principal: &PrincipalEntity,
        action: Action,
        resource: &Resource,
        context: &RequestContext,
    ) -> Decision {
        self.decide_named(principal, action.name(), resource, context)
    }

    /// [`Authz::decide`] for an action named in a request.
    pub fn decide_named(
        &self,
        principal: &PrincipalEntity,
        action: &str,
        resource: &Resource,
        context: &RequestContext,
    ) -> Decision {
        let engine = self.engine();
        let d = engine.authorize_named(principal, action, resource, context);
        // An action name can come from a request (`POST /authcheck`): the
        // metric's label is one of the schema's actions or `unknown`.
        crate::metrics::authz_decision(
            if engine.has_action(action) {
                action
            } else {
                "unknown"
            },
            d.allowed,
        );
        tracing::debug!(
            principal = %principal.uid(),
            action,
            resource_type = resource.kind().name(),
            resource_id = resource.id(),
            allowed = d.allowed,
            reasons = ?d.reasons,
            errors = ?d.errors,
            "authorization decision"
        );
        if !d.errors.is_empty() {
            tracing::warn!(action, errors = ?d.errors, "policy evaluation errors");
        }
        d
    }

    pub fn allowed(
        &self,
        principal: &PrincipalEntity,
        action: Action,
        resource: &Resource,
    ) -> bool {
        self.decide(principal, action, resource, &RequestContext::new())
            .allowed
    }

    /// Decides, and on Allow hands out the [`Permit`]. On Deny: 404 when the
    /// caller may not even read the resource (so nothing about it leaks), 403
    /// otherwise.
    pub fn require_with(
        &self,
        principal: &PrincipalEntity,
        action: Action,
        resource: &Resource,
        context: &RequestContext,
        what: &str,
    ) -> Result<Permit, Error> {
        let d = self.decide(principal, action, resource, context);
        if d.allowed {
            return Ok(Permit {
                action,
                by: Authority::Decision,
            });
        }
        // A principal denied by the suspension guardrail is told so: it learns
        // nothing about the resource either way.
        if d.reasons.iter().any(|r| r == "guardrail.suspended") {
            return Err(
                Error::forbidden().with_detail("your account is suspended (guardrail.suspended)")
            );
        }
        let visible = match (
            read_action(resource.kind()),
            read_resource(resource.kind(), resource),
        ) {
            (Some(read), Some(target)) if read != action => self.allowed(principal, read, &target),
            (Some(_), Some(_)) => false,
            _ => true,
        };
        if visible {
            let mut e = Error::forbidden();
            if !d.reasons.is_empty() {
                e = e.with_detail(format!("denied by {}", d.reasons.join(", ")));
            }
            Err(e)
        } else {
            Err(Error::not_found(what))
        }
    }

    pub fn require(
        &self,
        principal: &PrincipalEntity,
        action: Action,
        resource: &Resource,
        what: &str,
    ) -> Result<Permit, Error> {
        self.require_with(principal, action, resource, &RequestContext::new(), what)
    }

    /// The grant rule: `grants` may come to be held only if the caller may assign
    /// each of them directly. Refused with 403 naming the first role it may not
    /// assign; `through` says what would have granted it.
    pub fn require_grants<'a>(
        &self,
        principal: &PrincipalEntity,
        grants: impl IntoIterator<Item = &'a Grant>,
        through: &str,
    ) -> Result<(), Error> {
        for grant in grants {
            let (action, resource) = grant.decision();
            let d = self.decide(principal, action, &resource, &RequestContext::new());
            if d.allowed {
                continue;
            }
            if d.reasons.iter().any(|r| r == "guardrail.suspended") {
                return Err(Error::forbidden()
                    .with_detail("your account is suspended (guardrail.suspended)"));
            }
            return Err(Error::refused(format!(
                "you may not assign {}",
                grant.describe()
            ))
            .with_detail(format!(
                "{through} would grant it, and only those allowed `{}` on it may (the grant rule)",
                action.name()
            )));
        }
        Ok(())
    }

    /// Authority over a whole account: the caller may assign every role `target`
    /// holds (site roles, and its roles in every organization, membership
    /// included). Required to change what identifies the account (username, email,
    /// linked identities) or to give its authority back (reactivation): whoever
    /// controls the account holds all of it.
    pub fn require_authority_over(
        &self,
        principal: &PrincipalEntity,
        target: &Principal,
        orgs: &[crate::model::Organization],
        what: &str,
    ) -> Result<(), Error> {
        let mut grants: Vec<Grant> = target
            .site_roles
            .iter()
            .filter(|r| r.as_str() != "member")
            .map(|r| Grant::Site(r.clone()))
            .collect();
        for m in &target.memberships {
            let org = orgs.iter().find(|o| o.id == m.org_id);
            let key = OrgKey {
                id: m.org_id.clone(),
                name: org.map_or_else(|| m.org_id.clone(), |o| o.name.clone()),
                is_default: org.is_some_and(|o| o.is_default),
            };
            for role in std::iter::once("organization-member").chain(
                m.roles
                    .iter()
                    .map(String::as_str)
                    .filter(|r| *r != "organization-member"),
            ) {
                grants.push(Grant::Org {
                    org: key.clone(),
                    role: role.to_owned(),
                });
            }
        }
        self.require_grants(principal, &grants, what)
    }

    /// How many principals are cached (for metrics and tests).
    pub fn cached_principals(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }
}

fn load_engine(dir: Option<&std::path::Path>) -> Result<Engine, PolicyError> {
    let sources = match dir {
        Some(d) => PolicySources::from_dir(d)?,
        None => PolicySources::builtin()?,
    };
    Engine::load(&sources)
}
