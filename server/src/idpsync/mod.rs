//! IdP sync in the server: settings storage, the planner's inputs read from the
//! database, applying a plan in the caller's transaction, problems, and the
//! guards that refuse manual changes to what sync manages. (The planner itself
//! is the pure `orgsync-sync` crate.)

pub mod apply;

use std::collections::{BTreeMap, BTreeSet};

use orgsync_policy::{ORG_ROLES, SITE_ROLES};
use orgsync_sync::{GroupInfo, OrgInfo, Plan, Settings, UserState, World};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::audit::AuditCtx;
use crate::authz::Grant;
use crate::error::Error;
use crate::model::LoginType;
use crate::store::{self, Conn, Write};

/// A login the IdP sync refuses (e.g. a claim that cannot be parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRefused {
    pub status: u16,
    pub message: String,
}

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Whether any membership, group or role changed.
    pub changed: bool,
    /// Problems recorded.
    pub problems: usize,
    /// The kinds of the changes written, for the metrics once committed
    /// (`metrics::idpsync_changes`).
    pub changes: Vec<&'static str>,
}

/// Where each settings object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsKey {
    Organization,
    SiteRoles,
    Groups,
    Roles,
}

impl SettingsKey {
    pub fn name(self) -> &'static str {
        match self {
            SettingsKey::Organization => "idpsync.organization",
            SettingsKey::SiteRoles => "idpsync.site_roles",
            SettingsKey::Groups => "idpsync.groups",
            SettingsKey::Roles => "idpsync.roles",
        }
    }

    pub fn resource_type(self) -> &'static str {
        match self {
            SettingsKey::Organization => "organization_sync_settings",
            SettingsKey::SiteRoles => "site_role_sync_settings",
            SettingsKey::Groups => "group_sync_settings",
            SettingsKey::Roles => "role_sync_settings",
        }
    }
}

/// Reads settings (deployment-wide when `org` is None); absent or unreadable
/// settings are the defaults.
pub async fn load_settings<T: DeserializeOwned + Default>(
    conn: &mut Conn,
    org: Option<&str>,
    key: SettingsKey,
) -> sqlx::Result<T> {
    let raw = match org {
        None => store::settings::get_deployment(conn, key.name()).await?,
        Some(org) => store::settings::get_org(conn, org, key.name()).await?,
    };
    Ok(raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

/// Locks the settings row of `key` for the rest of the transaction (creating
/// an empty one, read as the defaults, when there is none), so concurrent
/// writers of the same settings take turns instead of losing an update.
pub async fn lock_settings(
    w: &mut Write<'_>,
    org: Option<&str>,
    key: SettingsKey,
) -> sqlx::Result<()> {
    match org {
        None => store::settings::lock_deployment(w, key.name()).await,
        Some(org) => store::settings::lock_org(w, org, key.name()).await,
    }
}

pub async fn store_settings(
    w: &mut Write<'_>,
    org: Option<&str>,
    key: SettingsKey,
    value: &Value,
    now: &str,
) -> sqlx::Result<()> {
    let value = value.to_string();
    match org {
        None => store::settings::put_deployment(w, key.name(), &value, now).await,
        Some(org) => store::settings::put_org(w, org, key.name(), &value, now).await,
    }
}

// ---- The grant rule for settings ----
//
// Settings that make people hold roles are themselves grants: whoever writes
// them must be allowed to assign every role (and membership) their result
// could give. See `docs/security.md`.

/// The memberships organization sync settings could give.
pub async fn org_sync_grants(
    conn: &mut Conn,
    s: &orgsync_sync::OrganizationSyncSettings,
) -> sqlx::Result<Vec<Grant>> {
    let mut grants = Vec::new();
    if s.organization_assign_default
        && let Some(org) = store::orgs::default_org(conn).await?
    {
        grants.push(Grant::org(&org, "organization-member"));
    }
    for key in s.grantable_organizations() {
        if let Some(org) = store::orgs::find(conn, &key).await? {
            grants.push(Grant::org(&org, "organization-member"));
        }
    }
    grants.sort();
    grants.dedup();
    Ok(grants)
}

/// The site roles site role sync settings could give.
pub fn site_role_sync_grants(s: &orgsync_sync::SiteRoleSyncSettings) -> Vec<Grant> {
    s.grantable_roles(SITE_ROLES)
        .into_iter()
        .map(Grant::Site)
        .collect()
}

/// The names of an organization's custom roles.
pub async fn custom_role_names(conn: &mut Conn, org_id: &str) -> sqlx::Result<Vec<String>> {
    Ok(store::roles::list(conn, org_id)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// Every role of an organization: the built-in ones and its custom roles.
async fn org_roles(conn: &mut Conn, org_id: &str) -> sqlx::Result<Vec<String>> {
    let mut all: Vec<String> = ORG_ROLES.iter().map(|r| (*r).to_owned()).collect();
    all.extend(custom_role_names(conn, org_id).await?);
    Ok(all)
}

/// The roles an organization's role sync settings could give there (its
/// custom roles included).
pub async fn role_sync_grants(
    conn: &mut Conn,
    org: &crate::model::Organization,
    s: &orgsync_sync::RoleSyncSettings,
) -> sqlx::Result<Vec<Grant>> {
    let all = org_roles(conn, &org.id).await?;
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    Ok(s.grantable_roles(&all)
        .iter()
        .map(|r| Grant::org(org, r))
        .collect())
}

/// What the directory sync could give: every role, site and org. A directory
/// feeds the claims that any sync setting reads, today's or one turned on
/// later, and it links, renames and suspends every account without a password
/// whose email it shows; who chooses the directory holds all of that.
pub async fn directory_grants(conn: &mut Conn) -> sqlx::Result<Vec<Grant>> {
    let mut grants: Vec<Grant> = SITE_ROLES
        .iter()
        .map(|r| Grant::Site((*r).to_owned()))
        .collect();
    let custom = store::roles::names(conn).await?;
    for org in store::orgs::list(conn).await? {
        let own = custom
            .iter()
            .filter(|(o, _)| *o == org.id)
            .map(|(_, r)| r.as_str());
        grants.extend(
            ORG_ROLES
                .iter()
                .copied()
                .chain(own)
                .map(|r| Grant::org(&org, r)),
        );
    }
    Ok(grants)
}

/// What of an account the IdP may manage, and so a manual change may not touch.
#[derive(Debug, Clone, Copy)]
pub enum Managed<'a> {
    /// Organization memberships (organization sync).
    Memberships,
    /// The roles in one organization, by id (its role sync).
    OrgRoles(&'a str),
    /// Site roles (site role sync).
    SiteRoles,
}

/// Refuses a manual change of `what` for `username` (an account of
/// `login_type`) while the IdP manages it: the account signs in through an
/// IdP and that sync is on.
pub async fn guard_manual_change(
    conn: &mut Conn,
    login_type: LoginType,
    what: Managed<'_>,
    username: &str,
) -> Result<(), Error> {
    if !matches!(login_type, LoginType::Oidc | LoginType::Ldap) {
        return Ok(());
    }
    let (on, what, sync) = match what {
        Managed::Memberships => {
            let s: orgsync_sync::OrganizationSyncSettings =
                load_settings(conn, None, SettingsKey::Organization).await?;
            (
                s.enabled_field().is_some(),
                "organization memberships",
                "organization sync is on",
            )
        }
        Managed::OrgRoles(org_id) => {
            let s: orgsync_sync::RoleSyncSettings =
                load_settings(conn, Some(org_id), SettingsKey::Roles).await?;
            (
                s.enabled_field().is_some(),
                "organization roles",
                "role sync is on in this organization",
            )
        }
        Managed::SiteRoles => {
            let s: orgsync_sync::SiteRoleSyncSettings =
                load_settings(conn, None, SettingsKey::SiteRoles).await?;
            (
                s.enabled_field().is_some(),
                "site roles",
                "site role sync is on",
            )
        }
    };
    if on {
        return Err(Error::bad_request(format!(
            "the {what} of `{username}` are managed by the identity provider ({sync}); \
             change the IdP's claims or the sync mapping instead"
        )));
    }
    Ok(())
}

pub use crate::store::problems::StoredProblem;

/// Problems of the given orgs (and deployment-wide ones when asked), newest first.
pub async fn list_problems(
    conn: &mut Conn,
    org_ids: &[String],
    deployment: bool,
    limit: i64,
) -> sqlx::Result<Vec<StoredProblem>> {
    let rows = store::problems::newest(conn, limit.saturating_mul(20)).await?;
    let mut out = Vec::new();
    for p in rows {
        let visible = match &p.organization_id {
            Some(o) => org_ids.contains(o),
            None => deployment,
        };
        if visible {
            out.push(p);
        }
        if out.len() as i64 >= limit {
            break;
        }
    }
    Ok(out)
}

/// Claim names seen in stored claims (sorted).
pub async fn claim_fields(conn: &mut Conn) -> sqlx::Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for claims in store::directory::all_link_claims(conn).await? {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&claims) {
            out.extend(m.keys().cloned());
        }
    }
    Ok(out.into_iter().collect())
}

/// Values seen for one claim in stored claims (sorted; unparsable ones skipped).
pub async fn claim_values(conn: &mut Conn, field: &str) -> sqlx::Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for claims in store::directory::all_link_claims(conn).await? {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&claims)
            && let Ok(values) = orgsync_sync::claim_values(&m, field)
        {
            out.extend(values);
        }
    }
    Ok(out.into_iter().collect())
}

/// Runs org, group and role sync for `user_id` with `claims`, inside the
/// caller's (login's) transaction, and records problems. Call after the user
/// row exists.
pub async fn sync_at_login(
    w: &mut Write<'_>,
    user_id: &str,
    claims: &Map<String, Value>,
    now: &str,
    ctx: &AuditCtx,
) -> Result<SyncOutcome, LoginRefused> {
    let internal = |e: Error| LoginRefused {
        status: 500,
        message: e.internal.unwrap_or(e.body.message),
    };
    let plan = plan_for(w.conn(), Some(user_id), claims)
        .await
        .map_err(internal)?;
    if let Some(r) = &plan.refused {
        return Err(LoginRefused {
            status: r.status,
            message: r.message.clone(),
        });
    }
    apply_plan(w, user_id, &plan, now, ctx)
        .await
        .map_err(internal)
}

/// Reads the planner's inputs: settings, the world (orgs, groups, roles) and
/// the user's current state (a new user when `user_id` is None).
pub async fn inputs(
    conn: &mut Conn,
    user_id: Option<&str>,
) -> sqlx::Result<(Settings, World, UserState)> {
    let mut settings = Settings {
        organization: load_settings(conn, None, SettingsKey::Organization).await?,
        site_roles: load_settings(conn, None, SettingsKey::SiteRoles).await?,
        groups: BTreeMap::new(),
        roles: BTreeMap::new(),
    };
    for store::settings::OrgSetting {
        organization_id: org,
        key,
        value,
    } in store::settings::list_org(conn).await?
    {
        if key == SettingsKey::Groups.name() {
            settings
                .groups
                .insert(org, serde_json::from_str(&value).unwrap_or_default());
        } else if key == SettingsKey::Roles.name() {
            settings
                .roles
                .insert(org, serde_json::from_str(&value).unwrap_or_default());
        }
    }
    let mut custom: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (org_id, name) in store::roles::names(conn).await? {
        custom.entry(org_id).or_default().push(name);
    }
    let orgs = store::orgs::list(conn)
        .await?
        .into_iter()
        .map(|o| OrgInfo {
            custom_roles: custom.remove(&o.id).unwrap_or_default(),
            id: o.id,
            name: o.name,
            is_default: o.is_default,
        })
        .collect();
    let groups = store::groups::list_all_named(conn)
        .await?
        .into_iter()
        .map(|(id, organization_id, name)| GroupInfo {
            id,
            organization_id,
            name,
        })
        .collect();
    let world = World {
        orgs,
        groups,
        org_roles: ORG_ROLES.iter().map(|r| (*r).to_owned()).collect(),
        site_roles: SITE_ROLES.iter().map(|r| (*r).to_owned()).collect(),
    };
    let mut state = UserState::default();
    if let Some(id) = user_id
        && let Some((p, _)) = store::principals::load(conn, id).await?
    {
        for m in p.memberships {
            state
                .org_roles
                .insert(m.org_id.clone(), m.roles.into_iter().collect());
            state.orgs.insert(m.org_id);
        }
        state.groups = p.groups.into_iter().collect();
        state.site_roles = p.site_roles.into_iter().collect();
    }
    Ok((settings, world, state))
}

/// The plan for a user (or a new user) with these claims. Writes nothing.
pub async fn plan_for(
    conn: &mut Conn,
    user_id: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<Plan, Error> {
    let (settings, world, state) = inputs(conn, user_id).await?;
    Ok(orgsync_sync::plan(&settings, claims, &world, &state))
}

/// The plan of one organization's group and role sync for a member of it (or
/// a new member) with these claims: deployment-wide sync (organization and
/// site role sync) left out, the user taken to be in the org. Writes nothing.
pub async fn plan_for_org(
    conn: &mut Conn,
    user_id: Option<&str>,
    claims: &Map<String, Value>,
    org_id: &str,
) -> Result<Plan, Error> {
    let (mut settings, world, mut state) = inputs(conn, user_id).await?;
    settings.organization.field = None;
    settings.site_roles.field = None;
    settings.groups.retain(|id, _| id == org_id);
    settings.roles.retain(|id, _| id == org_id);
    state.orgs.insert(org_id.to_owned());
    Ok(orgsync_sync::plan(&settings, claims, &world, &state))
}

fn group_source(ctx: &AuditCtx) -> &'static str {
    match ctx.source {
        "ldap_sync" => "ldap",
        _ => "oidc",
    }
}

/// Applies a plan for `user_id` in the caller's transaction: memberships,
/// groups (created when the plan says so), org roles, site roles; one audit
/// entry per change (source from `ctx`), problems recorded. Only real
/// differences are in a plan, so an identical second login writes nothing but
/// its problems.
pub async fn apply_plan(
    w: &mut Write<'_>,
    user_id: &str,
    plan: &Plan,
    now: &str,
    ctx: &AuditCtx,
) -> Result<SyncOutcome, Error> {
    apply_plan_with(w, user_id, plan, now, ctx, true).await
}

/// [`apply_plan`], recording the plan's problems or not (the directory sync
/// records them in bulk).
pub async fn apply_plan_with(
    w: &mut Write<'_>,
    user_id: &str,
    plan: &Plan,
    now: &str,
    ctx: &AuditCtx,
    record_problems: bool,
) -> Result<SyncOutcome, Error> {
    let mut changed = false;
    let mut changes = Vec::new();
    if plan.has_changes() {
        let username = store::users::find_by_id(w.conn(), user_id)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        let none = std::collections::HashMap::new();
        let mut groups = apply::GroupIds {
            created: &none,
            local: std::collections::HashMap::new(),
            source: group_source(ctx),
        };
        let mut rows = apply::Rows::default();
        let audited = apply::apply_plan(
            w,
            &mut rows,
            &mut groups,
            user_id,
            &username,
            plan,
            false,
            &mut BTreeSet::new(),
            now,
            ctx,
        )
        .await?;
        changes = std::mem::take(&mut rows.changes);
        rows.flush(w).await?;
        changed = audited > 0;
    }
    if record_problems {
        record_plan_problems(w, user_id, plan, now, ctx.source).await?;
    }
    Ok(SyncOutcome {
        changed,
        problems: plan.problems.len(),
        changes,
    })
}

/// Records the plan's problems that this user does not have on record yet:
/// one read of the user's problems, then only the new ones inserted.
async fn record_plan_problems(
    w: &mut Write<'_>,
    user_id: &str,
    plan: &Plan,
    now: &str,
    source: &str,
) -> sqlx::Result<()> {
    if plan.problems.is_empty() {
        return Ok(());
    }
    let mut seen = store::problems::keys_of_user(w.conn(), user_id, source).await?;
    for p in &plan.problems {
        let key = (
            p.organization_id.clone().unwrap_or_default(),
            p.kind.as_str().to_owned(),
            p.detail.clone(),
        );
        if seen.insert(key) {
            store::problems::insert(
                w,
                p.organization_id.as_deref(),
                Some(user_id),
                source,
                p.kind.as_str(),
                &p.detail,
                now,
            )
            .await?;
        }
    }
    Ok(())
}
