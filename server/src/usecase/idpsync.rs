//! IdP sync settings: read and change the four kinds (organization sync and
//! site role sync for the deployment, group sync and role sync per org) with
//! one operation. A change is loaded, decided, validated, checked against the
//! grant rule (a mapping that names a role grants it) and written with its
//! audit entry in one transaction, so two concurrent changes cannot lose one
//! another and the audited old value is the one replaced.

use orgsync_policy::{Action, ORG_ROLES, Resource, SITE_ROLES};
use orgsync_sync::{
    FieldError, GroupSyncSettings, Mapping, MappingPatch, OrganizationSyncSettings,
    RoleSyncSettings, SiteRoleSyncSettings,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Caller, Ctx, Work, orgs};
use crate::audit::{self, Change};
use crate::authz::{Grant, Permit};
use crate::error::{Error, Result, Validation};
use crate::idpsync::{self, SettingsKey};
use crate::model::Organization;
use crate::store;
use crate::store::Conn;

/// A 400 naming every invalid field (`validations`), the first in the message.
pub fn invalid(errors: Vec<FieldError>) -> Error {
    let mut e = Error::bad_request(match errors.first() {
        Some(f) => format!("invalid `{}`: {}", f.field, f.detail),
        None => "invalid settings".to_owned(),
    });
    e.body.validations = errors
        .into_iter()
        .map(|f| Validation {
            field: f.field,
            detail: f.detail,
        })
        .collect();
    e
}

/// `mapping["value"]` of the first mapping entry whose targets include one of `names`.
fn mapping_entry_naming(mapping: &Mapping, names: &[&str]) -> Option<String> {
    mapping
        .iter()
        .find(|(_, gets)| gets.iter().any(|g| names.iter().any(|n| g == n)))
        .map(|(given, _)| format!("mapping[\"{given}\"]"))
}

fn check(errors: Vec<FieldError>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors))
    }
}

/// The roles some settings could make someone hold, and how to say so when
/// one is refused.
type Grants = sqlx::Result<(Vec<Grant>, String)>;

/// One kind of sync settings.
pub trait SyncSettings: Serialize + DeserializeOwned + Default + Clone + Send + Sync {
    const KEY: SettingsKey;

    /// Every invalid field; `custom_roles`: the custom roles of the settings'
    /// organization (none for the deployment's).
    fn problems(&self, custom_roles: &[&str]) -> Vec<FieldError>;

    fn mapping_mut(&mut self) -> &mut Mapping;

    /// The field that makes these settings grant `grant` (where a refusal
    /// of the grant rule is shown): the mapping entry naming it, else what
    /// else grants it.
    fn grant_field(&self, grant: &Grant) -> String {
        let _ = grant;
        "mapping".to_owned()
    }

    /// The roles these settings could make someone hold, and how to say so
    /// when one is refused.
    fn grants(
        &self,
        conn: &mut Conn,
        org: Option<&Organization>,
    ) -> impl Future<Output = Grants> + Send;
}

impl SyncSettings for OrganizationSyncSettings {
    const KEY: SettingsKey = SettingsKey::Organization;

    fn problems(&self, _custom_roles: &[&str]) -> Vec<FieldError> {
        self.validate()
    }

    fn mapping_mut(&mut self) -> &mut Mapping {
        &mut self.mapping
    }

    fn grant_field(&self, grant: &Grant) -> String {
        match grant {
            Grant::Org { org, .. } => {
                mapping_entry_naming(&self.mapping, &[org.id.as_str(), org.name.as_str()])
                    .unwrap_or_else(|| "organization_assign_default".to_owned())
            }
            Grant::Site(_) => "mapping".to_owned(),
        }
    }

    async fn grants(&self, conn: &mut Conn, _org: Option<&Organization>) -> Grants {
        Ok((
            idpsync::org_sync_grants(conn, self).await?,
            "the organization sync settings".to_owned(),
        ))
    }
}

impl SyncSettings for SiteRoleSyncSettings {
    const KEY: SettingsKey = SettingsKey::SiteRoles;

    fn problems(&self, _custom_roles: &[&str]) -> Vec<FieldError> {
        let mut p = self.validate();
        if p.is_empty() {
            p = self.validate_roles(SITE_ROLES);
        }
        p
    }

    fn mapping_mut(&mut self) -> &mut Mapping {
        &mut self.mapping
    }

    fn grant_field(&self, grant: &Grant) -> String {
        let role = match grant {
            Grant::Site(r) | Grant::Org { role: r, .. } => r.as_str(),
        };
        mapping_entry_naming(&self.mapping, &[role])
            .or_else(|| {
                self.default_roles
                    .iter()
                    .position(|r| r == role)
                    .map(|i| format!("default_roles[{i}]"))
            })
            .unwrap_or_else(|| "field".to_owned())
    }

    async fn grants(&self, _conn: &mut Conn, _org: Option<&Organization>) -> Grants {
        Ok((
            idpsync::site_role_sync_grants(self),
            "the site role sync settings (a claim field passes unmapped values through as role \
             names)"
                .to_owned(),
        ))
    }
}

impl SyncSettings for GroupSyncSettings {
    const KEY: SettingsKey = SettingsKey::Groups;

    fn problems(&self, _custom_roles: &[&str]) -> Vec<FieldError> {
        self.validate()
    }

    fn mapping_mut(&mut self) -> &mut Mapping {
        &mut self.mapping
    }

    async fn grants(&self, _conn: &mut Conn, _org: Option<&Organization>) -> Grants {
        // Group membership grants no role.
        Ok((Vec::new(), String::new()))
    }
}

impl SyncSettings for RoleSyncSettings {
    const KEY: SettingsKey = SettingsKey::Roles;

    fn problems(&self, custom_roles: &[&str]) -> Vec<FieldError> {
        let mut p = self.validate();
        if p.is_empty() {
            let known: Vec<&str> = ORG_ROLES
                .iter()
                .copied()
                .chain(custom_roles.iter().copied())
                .collect();
            p = self.validate_roles(&known);
        }
        p
    }

    fn mapping_mut(&mut self) -> &mut Mapping {
        &mut self.mapping
    }

    fn grant_field(&self, grant: &Grant) -> String {
        let role = match grant {
            Grant::Site(r) | Grant::Org { role: r, .. } => r.as_str(),
        };
        // Unmapped claim values pass through as role names while a field is set.
        mapping_entry_naming(&self.mapping, &[role]).unwrap_or_else(|| "field".to_owned())
    }

    async fn grants(&self, conn: &mut Conn, org: Option<&Organization>) -> Grants {
        let Some(org) = org else {
            return Ok((Vec::new(), String::new()));
        };
        Ok((
            idpsync::role_sync_grants(conn, org, self).await?,
            format!(
                "the role sync settings of `{}` (a claim field passes unmapped values through as \
                 role names)",
                org.name
            ),
        ))
    }
}

/// Whose settings: the deployment's, or an organization's (by id or name).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Deployment,
    Org(&'a str),
}

/// How to change settings.
#[derive(Debug)]
pub enum SettingsChange {
    /// A JSON object whose top-level keys replace the current ones.
    Merge(Value),
    /// Pairs added to and removed from the mapping.
    Mapping(MappingPatch),
}

/// Decides `read` or `update` on the settings of `scope`; the org if any.
async fn authorize(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    scope: Scope<'_>,
    update: bool,
) -> Result<(Option<Organization>, Permit)> {
    match scope {
        Scope::Deployment => {
            let action = if update {
                Action::DEPLOYMENT_SYNC_UPDATE
            } else {
                Action::DEPLOYMENT_SYNC_READ
            };
            Ok((
                None,
                caller.require(ctx.authz, action, &Resource::site(), "settings")?,
            ))
        }
        Scope::Org(key) => {
            let (org, _) =
                orgs::load(conn, ctx.authz, caller, key, Action::ORGANIZATION_READ).await?;
            let action = if update {
                Action::IDPSYNC_SETTINGS_UPDATE
            } else {
                Action::IDPSYNC_SETTINGS_READ
            };
            let permit = caller.require(
                ctx.authz,
                action,
                &Resource::idpsync_settings(&org.org_ref()),
                "settings",
            )?;
            Ok((Some(org), permit))
        }
    }
}

pub async fn get<T: SyncSettings>(ctx: Ctx<'_>, caller: &Caller, scope: Scope<'_>) -> Result<T> {
    let mut conn = ctx.conn().await?;
    let (org, _) = authorize(&mut conn, ctx, caller, scope, false).await?;
    Ok(idpsync::load_settings(&mut conn, org.as_ref().map(|o| o.id.as_str()), T::KEY).await?)
}

/// Merges a JSON patch object into the current settings (top-level keys
/// replace), then parses the result.
fn merged<T: Serialize + DeserializeOwned>(current: &T, patch: &Value) -> Result<T> {
    let Value::Object(patch) = patch else {
        return Err(Error::bad_request("the body must be a JSON object"));
    };
    let mut value = serde_json::to_value(current).map_err(Error::internal)?;
    if let Value::Object(obj) = &mut value {
        for (k, v) in patch {
            obj.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        let field = msg.split('`').nth(1).unwrap_or("body").to_owned();
        invalid(vec![FieldError { field, detail: msg }])
    })
}

/// Changes the settings of `scope`: validated, every role they could grant
/// passing the grant rule, audited when they differ.
pub async fn update<T: SyncSettings>(
    ctx: Ctx<'_>,
    caller: &Caller,
    scope: Scope<'_>,
    change: SettingsChange,
) -> Result<T> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = authorize(work.conn(), ctx, caller, scope, true).await?;
    let org_id = org.as_ref().map(|o| o.id.clone());
    idpsync::lock_settings(&mut work.write(&permit)?, org_id.as_deref(), T::KEY).await?;
    let old: T = idpsync::load_settings(work.conn(), org_id.as_deref(), T::KEY).await?;
    let new = match &change {
        SettingsChange::Merge(patch) => merged(&old, patch)?,
        SettingsChange::Mapping(patch) => {
            let mut new = old.clone();
            patch.apply(new.mapping_mut());
            new
        }
    };
    let custom = match &org {
        Some(o) => idpsync::custom_role_names(work.conn(), &o.id).await?,
        None => Vec::new(),
    };
    check(new.problems(&custom.iter().map(String::as_str).collect::<Vec<_>>()))?;
    let (grants, through) = new.grants(work.conn(), org.as_ref()).await?;
    // One grant at a time, so a refusal names the field that grants the role
    // (`validations`), for forms to show it there.
    for grant in &grants {
        if let Err(mut e) = work.require_grants(std::slice::from_ref(grant), &through) {
            if e.kind == crate::error::Kind::Forbidden {
                e.body.validations.push(Validation {
                    field: new.grant_field(grant),
                    detail: e.body.message.clone(),
                });
            }
            return Err(e);
        }
    }
    let old_v = serde_json::to_value(&old).map_err(Error::internal)?;
    let new_v = serde_json::to_value(&new).map_err(Error::internal)?;
    let now_s = work.now_s.clone();
    let mut w = work.write(&permit)?;
    idpsync::store_settings(&mut w, org_id.as_deref(), T::KEY, &new_v, &now_s).await?;
    if old_v != new_v {
        work.audit(
            &permit,
            Change {
                organization_id: org_id.as_deref(),
                action: "update",
                resource_type: T::KEY.resource_type(),
                resource_id: org_id.as_deref().unwrap_or("deployment"),
                resource_target: T::KEY.name(),
                diff: audit::diff(&old_v, &new_v),
                status_code: 200,
            },
        )
        .await?;
    }
    work.commit().await?;
    Ok(new)
}

/// A preview as asked.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub claims: Map<String, Value>,
    /// An existing user (id or username); absent: a new user.
    pub user: Option<String>,
    /// One organization (id or name): only its group and role sync, for a
    /// member of it (`user` must be one); decided on that org's
    /// `idpsync_settings:read`, so an org admin previews its own org.
    #[serde(default)]
    pub organization: Option<String>,
}

/// The plan a login with these claims would apply, with reasons and problems.
/// Writes nothing.
pub async fn preview(ctx: Ctx<'_>, caller: &Caller, req: &PreviewRequest) -> Result<Value> {
    if let Some(org_key) = &req.organization {
        return preview_org(ctx, caller, org_key, req).await;
    }
    caller.require(
        ctx.authz,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = ctx.conn().await?;
    let user_id = match &req.user {
        Some(key) => {
            let no_user = || Error::validation("user", format!("no user `{key}`"));
            let user = store::users::find(&mut conn, caller.resolve_user_key(key))
                .await?
                .ok_or_else(no_user)?;
            // A user the caller may not read is no user at all.
            if !caller.allowed(
                ctx.authz,
                Action::USER_READ,
                &super::users::user_resource(&user),
            ) {
                return Err(no_user());
            }
            Some(user.id)
        }
        None => None,
    };
    let plan = idpsync::plan_for(&mut conn, user_id.as_deref(), &req.claims).await?;
    let mut plan = serde_json::to_value(&plan).map_err(Error::internal)?;
    // The plan shows each org's group and role sync settings at work: only for
    // the orgs whose sync settings the caller may read.
    let hidden: Vec<String> = store::orgs::list(&mut conn)
        .await?
        .into_iter()
        .filter(|o| {
            !caller.allowed(
                ctx.authz,
                Action::IDPSYNC_SETTINGS_READ,
                &Resource::idpsync_settings(&o.org_ref()),
            )
        })
        .map(|o| o.name)
        .collect();
    hide_orgs(&mut plan, &hidden);
    Ok(plan)
}

/// [`preview`] of one organization: `{organization, refused, groups: {org:
/// ...}, roles: {org: ...}, problems}` (that org's parts only).
async fn preview_org(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    req: &PreviewRequest,
) -> Result<Value> {
    let mut conn = ctx.conn().await?;
    let (org, _) = authorize(&mut conn, ctx, caller, Scope::Org(org_key), false).await?;
    let org = org.ok_or_else(|| Error::internal("an org scope without its org"))?;
    let user_id = match &req.user {
        // Someone the caller sees as a member of this org (by id, username or email).
        Some(key) => Some(
            super::members::org_member_by_key(&mut conn, caller, &org, key, "user")
                .await?
                .id,
        ),
        None => None,
    };
    let plan = idpsync::plan_for_org(&mut conn, user_id.as_deref(), &req.claims, &org.id).await?;
    let mut plan = serde_json::to_value(&plan).map_err(Error::internal)?;
    if let Value::Object(map) = &mut plan {
        map.remove("organizations");
        map.remove("site_roles");
        map.insert("organization".to_owned(), Value::String(org.name.clone()));
    }
    for section in ["groups", "roles"] {
        if let Some(Value::Object(per_org)) = plan.get_mut(section) {
            per_org.retain(|name, _| name == &org.name);
        }
    }
    if let Some(Value::Array(problems)) = plan.get_mut("problems") {
        problems.retain(|p| p.get("organization").and_then(Value::as_str) == Some(&org.name));
    }
    Ok(plan)
}

/// Removes the per-org parts of a preview for `hidden` orgs (by name).
fn hide_orgs(plan: &mut Value, hidden: &[String]) {
    if hidden.is_empty() {
        return;
    }
    for section in ["groups", "roles"] {
        if let Some(Value::Object(per_org)) = plan.get_mut(section) {
            per_org.retain(|name, _| !hidden.contains(name));
        }
    }
    if let Some(Value::Array(problems)) = plan.get_mut("problems") {
        problems.retain(|p| {
            p.get("organization")
                .and_then(Value::as_str)
                .is_none_or(|name| !hidden.iter().any(|h| h == name))
        });
    }
}

/// Which problems to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProblemsQuery {
    pub organization: Option<String>,
    pub limit: Option<i64>,
}

/// Problems of the orgs whose sync settings the caller may read
/// (deployment-wide ones for deployment sync readers).
pub async fn problems(ctx: Ctx<'_>, caller: &Caller, q: &ProblemsQuery) -> Result<Value> {
    let (limit, _) = super::Page {
        limit: q.limit,
        offset: None,
    }
    .resolve(100, 1000)?;
    let mut conn = ctx.conn().await?;
    let deployment = caller.allowed(ctx.authz, Action::DEPLOYMENT_SYNC_READ, &Resource::site());
    let mut orgs = Vec::new();
    for o in store::orgs::list(&mut conn).await? {
        let wanted = q
            .organization
            .as_ref()
            .is_none_or(|k| k == &o.id || k.eq_ignore_ascii_case(&o.name));
        if wanted
            && caller.allowed(
                ctx.authz,
                Action::IDPSYNC_SETTINGS_READ,
                &Resource::idpsync_settings(&o.org_ref()),
            )
        {
            orgs.push(o);
        }
    }
    if !deployment && orgs.is_empty() {
        return Err(Error::forbidden().with_detail("you may not read IdP sync problems"));
    }
    let ids: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
    let problems = idpsync::list_problems(
        &mut conn,
        &ids,
        deployment && q.organization.is_none(),
        limit,
    )
    .await?;
    Ok(json!({"problems": problems}))
}

/// Claim names seen in stored claims (`None`), or the values seen for one.
pub async fn claims_seen(
    ctx: Ctx<'_>,
    caller: &Caller,
    field: Option<&str>,
) -> Result<Vec<String>> {
    caller.require(
        ctx.authz,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = ctx.conn().await?;
    Ok(match field {
        None => idpsync::claim_fields(&mut conn).await?,
        Some(f) => idpsync::claim_values(&mut conn, f).await?,
    })
}
