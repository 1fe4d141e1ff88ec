//! Questions to the policies: what may the caller do (authcheck), Cedar
//! decisions for other services (authorize), the policy set, and reloading it.

use std::collections::BTreeMap;

use orgsync_policy::{
    Action, Decision, EntityKind, OrgRef, PrincipalEntity, RequestContext, Resource, TemplateAcl,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::provisioners::caller_id;
use super::{Caller, Ctx, Work};
use crate::audit::Change;
use crate::error::{Error, Result};
use crate::store::{self, Conn};

const MAX_CHECKS: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthcheckObject {
    pub resource_type: String,
    pub organization_id: Option<String>,
    pub owner_id: Option<String>,
    pub resource_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub object: AuthcheckObject,
    pub action: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthcheckRequest {
    pub checks: BTreeMap<String, Check>,
}

/// The caller's principal as the policies see it (a system actor has none).
fn entity(caller: &Caller) -> Result<&PrincipalEntity> {
    match caller {
        Caller::User { principal, .. } => Ok(&principal.entity),
        Caller::Daemon { principal, .. } => Ok(principal),
        Caller::System { .. } => Err(Error::forbidden()),
    }
}

/// Maps an authcheck `resource_type` (snake_case, Coder style) to the entity kind.
fn kind_of(resource_type: &str) -> Option<EntityKind> {
    Some(match resource_type {
        "site" | "deployment" => EntityKind::Site,
        "organization" => EntityKind::Organization,
        "user" => EntityKind::User,
        "organization_member" | "member" => EntityKind::Member,
        "group" => EntityKind::Group,
        "template" => EntityKind::Template,
        "template_version" => EntityKind::TemplateVersion,
        "file" => EntityKind::File,
        "provisioner_key" => EntityKind::ProvisionerKey,
        "provisioner_daemon" => EntityKind::ProvisionerDaemon,
        "provisioner_job" => EntityKind::ProvisionerJob,
        "workspace" => EntityKind::Workspace,
        "audit_log" | "audit" => EntityKind::AuditLog,
        "idpsync_settings" => EntityKind::IdpSyncSettings,
        // Coder's names for "may I assign this role": `resource_id` is the role name.
        "assign_role" => EntityKind::Role,
        "assign_org_role" => EntityKind::OrganizationRole,
        other => return EntityKind::parse(other),
    })
}

/// The schema action for an authcheck action: a full name (`group:create`) or a
/// verb combined with the resource type (`create` on `group`).
fn action_of(
    engine_has: impl Fn(&str) -> bool,
    resource_type: &str,
    action: &str,
) -> Option<String> {
    if action.starts_with("bundle:") {
        // Role bundles group actions; nobody performs one.
        return None;
    }
    if action.contains(':') {
        return engine_has(action).then(|| action.to_owned());
    }
    let prefix = match resource_type {
        "organization_member" => "member",
        "audit_log" => "audit",
        "assign_role" | "Role" => "site_role",
        "assign_org_role" | "OrganizationRole" => "org_role",
        other => other,
    };
    let name = format!("{prefix}:{action}");
    engine_has(&name).then_some(name)
}

/// Builds the resource an authcheck object describes. Ids that are absent stand
/// for "a new or any object" in that org; unknown orgs make the check false.
async fn resource_of(
    conn: &mut Conn,
    caller: &Caller,
    kind: EntityKind,
    o: &AuthcheckObject,
) -> Result<Option<Resource>> {
    let me = caller_id(caller);
    let org: Option<OrgRef> = match &o.organization_id {
        Some(id) => match store::orgs::find(conn, id).await? {
            Some(org) => Some(org.org_ref()),
            None => return Ok(None),
        },
        None => None,
    };
    let any = "00000000-0000-0000-0000-000000000000".to_owned();
    let rid = o.resource_id.clone().unwrap_or_else(|| any.clone());
    let owner = o
        .owner_id
        .clone()
        .map(|k| if k == "me" { me.to_owned() } else { k })
        .unwrap_or_else(|| any.clone());
    Ok(Some(match (kind, org) {
        (EntityKind::Site, _) => Resource::site(),
        (EntityKind::User, _) => {
            let user = store::users::find(conn, if rid == "me" { me } else { &rid }).await?;
            match user {
                Some(u) => Resource::user(&u.id, u.status.as_str()).with_site_roles(&u.roles),
                None => Resource::user(&rid, "active"),
            }
        }
        (EntityKind::Role, _) => Resource::site_role(&rid),
        (EntityKind::OrganizationRole, Some(org)) => Resource::org_role(&org, &rid),
        (EntityKind::Organization, Some(org)) => Resource::organization(&org),
        (EntityKind::Member, Some(org)) => {
            // The site roles of a member of that org (what trying the action
            // would show); of anyone else nothing, so a check reveals nothing
            // about users outside the org.
            let roles = match store::members::get(conn, &org.id, &owner).await? {
                Some(_) => store::users::find_by_id(conn, &owner)
                    .await?
                    .map(|u| u.roles)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            Resource::member(&org, &owner).with_site_roles(&roles)
        }
        (EntityKind::Group, Some(org)) => Resource::group(&org, &rid),
        (EntityKind::Template, Some(org)) => {
            Resource::template(&org, &rid, &owner, &TemplateAcl::default())
        }
        (EntityKind::TemplateVersion, Some(org)) => {
            Resource::template_version(&org, &rid, &owner, &TemplateAcl::default())
        }
        (EntityKind::File, Some(org)) => Resource::file(&org, &rid, &owner),
        (EntityKind::ProvisionerKey, Some(org)) => Resource::provisioner_key(&org, &rid),
        (EntityKind::ProvisionerDaemon, Some(org)) => Resource::provisioner_daemon(&org, &rid),
        (EntityKind::ProvisionerJob, Some(org)) => Resource::provisioner_job(&org, &rid, &owner),
        (EntityKind::Workspace, Some(org)) => Resource::workspace(&org, &rid, &owner),
        (EntityKind::AuditLog, Some(org)) => Resource::audit_log(&org),
        (EntityKind::IdpSyncSettings, Some(org)) => Resource::idpsync_settings(&org),
        _ => return Ok(None),
    }))
}

/// What may the caller do? `{key: bool}` per check.
pub async fn authcheck(
    ctx: Ctx<'_>,
    caller: &Caller,
    req: &AuthcheckRequest,
) -> Result<BTreeMap<String, bool>> {
    if req.checks.len() > MAX_CHECKS {
        return Err(Error::validation(
            "checks",
            format!("at most {MAX_CHECKS} checks per request"),
        ));
    }
    let principal = entity(caller)?;
    let engine = ctx.authz.engine();
    let mut conn = ctx.conn().await?;
    let mut out = BTreeMap::new();
    for (key, check) in &req.checks {
        let kind = kind_of(&check.object.resource_type).ok_or_else(|| {
            Error::validation(
                &format!("checks.{key}.object.resource_type"),
                format!("unknown resource type `{}`", check.object.resource_type),
            )
        })?;
        let action = action_of(
            |a| engine.has_action(a),
            &check.object.resource_type,
            &check.action,
        )
        .ok_or_else(|| {
            Error::validation(
                &format!("checks.{key}.action"),
                format!(
                    "unknown action `{}` for `{}`",
                    check.action, check.object.resource_type
                ),
            )
        })?;
        let allowed = match resource_of(&mut conn, caller, kind, &check.object).await? {
            Some(resource) => {
                ctx.authz
                    .decide_named(principal, &action, &resource, &RequestContext::new())
                    .allowed
            }
            None => false,
        };
        out.insert(key.clone(), allowed);
    }
    Ok(out)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub requests: Vec<CedarRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CedarRequest {
    pub principal: Value,
    pub action: Value,
    pub resource: Value,
    #[serde(default)]
    pub context: Option<Value>,
}

/// Why one request of a batch cannot be decided (reported in its `errors`).
#[derive(Debug)]
struct Unresolved(String);

impl From<String> for Unresolved {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Unresolved {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

fn uid_parts(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Object(m) => {
            let m = m.get("__entity").and_then(Value::as_object).unwrap_or(m);
            Some((
                m.get("type")?.as_str()?.to_owned(),
                m.get("id")?.as_str()?.to_owned(),
            ))
        }
        Value::String(s) => {
            let (t, rest) = s.split_once("::")?;
            Some((t.to_owned(), rest.trim_matches('"').to_owned()))
        }
        _ => None,
    }
}

async fn principal_of(ctx: Ctx<'_>, v: &Value) -> Result<PrincipalEntity, Unresolved> {
    let (t, id) = uid_parts(v).ok_or("principal must be {\"type\", \"id\"}")?;
    if t != "User" {
        return Err(format!("unsupported principal type `{t}`").into());
    }
    match ctx.authz.principal(ctx.db, &id, None).await {
        Ok(Some(p)) => Ok(p.entity.clone()),
        Ok(None) => Err(format!("user `{id}` not found").into()),
        Err(_) => Err("cannot load principal".into()),
    }
}

/// Resolves a resource uid of the caller's request from the database.
async fn stored_resource(ctx: Ctx<'_>, v: &Value) -> Result<Resource, Unresolved> {
    let (t, id) = uid_parts(v).ok_or("resource must be {\"type\", \"id\"}")?;
    let mut conn = ctx
        .conn()
        .await
        .map_err(|_| Unresolved::from("database unavailable"))?;
    let db = |_| Unresolved::from("database error");
    // The org of `id` as the policies see it.
    async fn org_ref(conn: &mut Conn, id: &str) -> std::result::Result<OrgRef, Unresolved> {
        store::orgs::find(conn, id)
            .await
            .map_err(|_| Unresolved::from("database error"))?
            .map(|o| o.org_ref())
            .ok_or_else(|| format!("organization `{id}` not found").into())
    }
    match t.as_str() {
        "Site" => Ok(Resource::site()),
        "Organization" => {
            let org = org_ref(&mut conn, &id).await?;
            Ok(Resource::organization(&org))
        }
        "User" => {
            let u = store::users::find_by_id(&mut conn, &id)
                .await
                .map_err(db)?
                .ok_or(format!("user `{id}` not found"))?;
            Ok(Resource::user(&u.id, u.status.as_str()).with_site_roles(&u.roles))
        }
        "Role" => Ok(Resource::site_role(&id)),
        "OrganizationRole" => {
            let (org_id, role) = id
                .split_once('/')
                .ok_or("an OrganizationRole id is `ORG_ID/ROLE`")?;
            let org = org_ref(&mut conn, org_id).await?;
            Ok(Resource::org_role(&org, role))
        }
        "Group" => {
            let g = store::groups::find(&mut conn, &id)
                .await
                .map_err(db)?
                .ok_or(format!("group `{id}` not found"))?;
            let org = org_ref(&mut conn, &g.organization_id).await?;
            Ok(Resource::group(&org, &g.id))
        }
        "Member" => {
            let (org_id, user_id) = id
                .split_once('/')
                .ok_or("a Member id is `ORG_ID/USER_ID`")?;
            let org = org_ref(&mut conn, org_id).await?;
            let roles = store::users::find_by_id(&mut conn, user_id)
                .await
                .map_err(db)?
                .map(|u| u.roles)
                .unwrap_or_default();
            Ok(Resource::member(&org, user_id).with_site_roles(&roles))
        }
        "AuditLog" | "IdpSyncSettings" => {
            let org = org_ref(&mut conn, &id).await?;
            Ok(if t == "AuditLog" {
                Resource::audit_log(&org)
            } else {
                Resource::idpsync_settings(&org)
            })
        }
        other => Err(format!("resource type `{other}` cannot be resolved by this server").into()),
    }
}

fn context_of(v: Option<&Value>) -> Result<RequestContext, Unresolved> {
    let mut ctx = RequestContext::new();
    let Some(Value::Object(map)) = v else {
        return match v {
            None | Some(Value::Null) => Ok(ctx),
            Some(_) => Err("context must be an object".into()),
        };
    };
    for (k, val) in map {
        let list = val
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("context `{k}` must be a list of strings"))?;
        ctx = ctx.with_string_set(k, list);
    }
    Ok(ctx)
}

/// Cedar-native batch decisions for other services: `{results}`. The
/// principal and resource are resolved from orgsync's own data.
pub async fn authorize(ctx: Ctx<'_>, caller: &Caller, req: &AuthorizeRequest) -> Result<Value> {
    caller.require(
        ctx.authz,
        Action::POLICY_AUTHORIZE,
        &Resource::site(),
        "policies",
    )?;
    if req.requests.len() > MAX_CHECKS {
        return Err(Error::validation(
            "requests",
            format!("at most {MAX_CHECKS} requests per call"),
        ));
    }
    let engine = ctx.authz.engine();
    let mut results = Vec::new();
    for r in &req.requests {
        let decision: Result<Decision, Unresolved> = async {
            let principal = principal_of(ctx, &r.principal).await?;
            let action = match uid_parts(&r.action) {
                Some((_, id)) => id,
                None => r
                    .action
                    .as_str()
                    .ok_or("action must be {\"type\": \"Action\", \"id\"}")?
                    .to_owned(),
            };
            if !engine.has_action(&action) {
                return Err(format!("unknown action `{action}`").into());
            }
            let resource = stored_resource(ctx, &r.resource).await?;
            let context = context_of(r.context.as_ref())?;
            Ok(ctx
                .authz
                .decide_named(&principal, &action, &resource, &context))
        }
        .await;
        results.push(match decision {
            Ok(d) => json!({
                "decision": if d.allowed { "allow" } else { "deny" },
                "reasons": d.reasons,
                "errors": d.errors,
            }),
            Err(Unresolved(e)) => json!({"decision": "deny", "reasons": [], "errors": [e]}),
        });
    }
    Ok(json!({"results": results}))
}

/// The running policies, for a caller who may read them.
fn readable_engine(
    ctx: Ctx<'_>,
    caller: &Caller,
) -> Result<std::sync::Arc<orgsync_policy::Engine>> {
    let site = Resource::site();
    caller.require(ctx.authz, Action::POLICY_READ, &site, "policies")?;
    Ok(ctx.authz.engine())
}

/// The running policy set: `{hash, origin, policies}`.
pub async fn policies(ctx: Ctx<'_>, caller: &Caller) -> Result<Value> {
    let engine = readable_engine(ctx, caller)?;
    Ok(json!({"hash": engine.hash(), "origin": engine.origin(), "policies": engine.policies()}))
}

/// The running policy set as its readers see it in full: hash, origin, the
/// policy files' and the schema's text, and whether the caller may reload it.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub hash: String,
    pub origin: String,
    pub policies: usize,
    pub files: Vec<orgsync_policy::SourceFile>,
    pub schema: orgsync_policy::SourceFile,
    /// Where a reload reads from: the policy directory, or none (built in).
    pub directory: Option<String>,
    pub may_reload: bool,
}

/// [`PolicySet`] of the running policies, for `policy:read`.
pub async fn policy_set(ctx: Ctx<'_>, caller: &Caller) -> Result<PolicySet> {
    let engine = readable_engine(ctx, caller)?;
    Ok(PolicySet {
        hash: engine.hash().to_owned(),
        origin: engine.origin().to_owned(),
        policies: engine.policies().len(),
        files: engine.files().to_vec(),
        schema: engine.schema_file().clone(),
        directory: ctx.authz.policy_dir().map(|d| d.display().to_string()),
        may_reload: caller.allowed(ctx.authz, Action::POLICY_RELOAD, &Resource::site()),
    })
}

/// Re-reads the policy directory: `{hash, policies, granted, revoked,
/// grants_more}`. An invalid set is rejected with its diagnostics and the
/// running set stays. What the new set grants or revokes on the current data
/// (`usecase::impact`) is in the answer and the audit entry.
pub async fn reload(ctx: Ctx<'_>, caller: &Caller) -> Result<Value> {
    let mut work = Work::begin(ctx, caller).await?;
    let permit = work.require(Action::POLICY_RELOAD, &Resource::site(), "policies")?;
    let before = ctx.authz.engine();
    let engine = ctx.authz.reload().map_err(|e| {
        super::impact::invalid_policies(
            "the new policies are invalid; the running policies stay",
            &e,
        )
    })?;
    let impact = super::impact::between(ctx.db, before.clone(), engine.clone()).await?;
    let granted = impact["granted"].as_u64().unwrap_or(0);
    let revoked = impact["revoked"].as_u64().unwrap_or(0);
    work.audit(
        &permit,
        Change {
            organization_id: None,
            action: "update",
            resource_type: "policy_set",
            resource_id: engine.hash(),
            resource_target: engine.origin(),
            diff: json!({
                "hash": {"old": before.hash(), "new": engine.hash()},
                "granted": granted,
                "revoked": revoked,
                "grants_more": granted > 0,
            }),
            status_code: 200,
        },
    )
    .await?;
    work.commit().await?;
    Ok(json!({
        "hash": engine.hash(),
        "policies": engine.policies().len(),
        "granted": granted,
        "revoked": revoked,
        "grants_more": granted > 0,
    }))
}
