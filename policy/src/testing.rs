//! Policy tests as data (`policies/tests/*.json`), run by `orgsync policy test`.
//!
//! A test file is one of two formats, told apart by its top-level keys.
//!
//! # Orgsync terms (`world`)
//!
//! The file describes a small orgsync world and asks questions about it. Each
//! case's principal and resource are built by [`crate::model`] and decided by
//! [`Engine::authorize_named`], exactly as the server decides a request, so a
//! case also tests how the server turns its data into Cedar entities.
//!
//! ```json
//! { "description": "...",
//!   "world": {
//!     "organizations": [{"id": "org-coder", "default": true}, {"id": "org-a"}],
//!     "groups": [{"id": "grp-a-devs", "organization": "org-a"}],
//!     "users": [
//!       {"id": "alice", "site_roles": ["user-admin"], "memberships": {"org-coder": []}},
//!       {"id": "bob", "status": "suspended",
//!        "memberships": {"org-coder": [], "org-a": ["organization-admin"]},
//!        "groups": ["grp-a-devs"]}
//!     ]
//!   },
//!   "cases": [
//!     {"name": "user-admin removes bob from org-a", "principal": "alice",
//!      "action": "member:delete", "resource": {"member": {"organization": "org-a", "user": "bob"}},
//!      "decision": "allow", "reasons": ["site.user-admin"]},
//!     {"name": "a daemon serves only its org", "principal": {"daemon": "pd-a", "organization": "org-a"},
//!      "action": "provisioner_job:acquire", "resource": {"organization": "org-coder"},
//!      "decision": "deny", "nothing_permits": true}
//!   ] }
//! ```
//!
//! The world ([`World`]):
//! - `organizations`: `id`, and `default` (at most one; default `false`).
//! - `groups`: `id` and `organization`. Every organization also has its Everyone
//!   group, whose id is the organization's id; it is implied, never listed.
//! - `users`: `id`; `status` (`active`, the default, `dormant` or `suspended`);
//!   `site_roles`; `memberships`, organization id to that organization's roles
//!   (`[]` for a plain member); `groups` (groups of organizations the user is a
//!   member of). Membership of an organization implies its Everyone group.
//!
//! A case's `principal` is a user id of the world, or `{"daemon": ID,
//! "organization": ORG}` for a provisioner daemon. Its `resource` is one of
//! ([`ResourceSpec`]; every id named must be in the world):
//!
//! | resource | built with |
//! |---|---|
//! | `{"site": true}` | [`Resource::site`] |
//! | `{"organization": ORG}` | [`Resource::organization`] |
//! | `{"user": USER}` | [`Resource::user`] with the user's status and site roles |
//! | `{"member": {"organization": ORG, "user": USER}}` | [`Resource::member`] with the user's site roles |
//! | `{"group": GROUP}` (a group, or an organization id for its Everyone group) | [`Resource::group`] |
//! | `{"site_role": ROLE}` | [`Resource::site_role`] |
//! | `{"org_role": {"organization": ORG, "role": ROLE}}` | [`Resource::org_role`] |
//! | `{"template": {"organization", "id", "created_by", "acl"}}` | [`Resource::template`] |
//! | `{"template_version": {"organization", "id", "created_by", "acl"}}` (`acl`: its template's) | [`Resource::template_version`] |
//! | `{"file": {"organization", "id", "created_by"}}` | [`Resource::file`] |
//! | `{"provisioner_key": {"organization", "id"}}` | [`Resource::provisioner_key`] |
//! | `{"provisioner_daemon": {"organization", "id"}}` | [`Resource::provisioner_daemon`] |
//! | `{"provisioner_job": {"organization", "id", "initiator"}}` | [`Resource::provisioner_job`] |
//! | `{"workspace": {"organization", "id", "owner"}}` | [`Resource::workspace`] |
//! | `{"audit_log": ORG}`, `{"idpsync_settings": ORG}` | [`Resource::audit_log`], [`Resource::idpsync_settings`] |
//!
//! An `acl` has `use_users`, `use_groups`, `admin_users`, `admin_groups` (each
//! may be left out). A user or member resource carries the site roles its user
//! holds in the world, as the server's resources do (guardrails protect owners).
//! `context` (optional) maps names to lists of strings; the request, context
//! included, must be valid for the action under the schema.
//!
//! What a case expects, checked in full:
//! - `"decision": "allow"` with `reasons`: the permit policies that allow (their
//!   `@id`s, in any order).
//! - `"decision": "deny"` with either `reasons`, the forbid policies that deny,
//!   or `"nothing_permits": true`: no forbid applies and no permit does either.
//!   A deny case with neither (or with `"reasons": []`) fails: it would not say
//!   why it is denied.
//!
//! A decision with evaluation errors fails its case. Case names are unique per
//! file.
//!
//! # Cedar entities (`entities`)
//!
//! The earlier format, still supported: entities in Cedar's JSON entity format,
//! decided over the policies of the action ([`Engine::authorize_raw`]). It does
//! not run the server's model, and `reasons` is optional.
//!
//! ```json
//! { "description": "...",
//!   "entities": [ {"uid": {"type": "User", "id": "alice"}, "attrs": {...}, "parents": [...], "tags": {...}} ],
//!   "cases": [ { "name": "...", "principal": {"type": "User", "id": "alice"},
//!                "action": "organization:read", "resource": {"type": "Organization", "id": "o1"},
//!                "context": {}, "decision": "allow", "reasons": ["org.member"] } ] }
//! ```
//! `reasons`, when given, must equal the decision's reasons.

use std::collections::{BTreeMap, HashSet};

use cedar_policy::{Context, Entities, EntityUid, Request};
use serde::Deserialize;

use crate::engine::{Decision, Engine};
use crate::error::PolicyError;
use crate::model::{
    OrgMembership, OrgRef, Principal, PrincipalEntity, RequestContext, Resource, RolePermission,
    TemplateAcl, is_org_role, is_site_role,
};
use crate::source::SourceFile;

/// The outcome of one case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// Why it failed.
    pub detail: Option<String>,
}

/// Runs every case of every test file. An unreadable file is one failed case.
pub fn run_tests(engine: &Engine, files: &[SourceFile]) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for file in files {
        let results = match serde_json::from_str::<serde_json::Value>(&file.text) {
            Ok(v) if v.get("world").is_some() => run_model_file(engine, file),
            Ok(_) => run_cedar_file(engine, file),
            Err(e) => Err(PolicyError::Request(format!("`{}`: {e}", file.path))),
        };
        match results {
            Ok(results) => out.extend(results),
            Err(e) => out.push(CaseResult {
                file: file.path.clone(),
                name: "(file)".to_owned(),
                passed: false,
                detail: Some(e.to_string()),
            }),
        }
    }
    out
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ExpectedDecision {
    Allow,
    Deny,
}

impl ExpectedDecision {
    fn name(self) -> &'static str {
        match self {
            ExpectedDecision::Allow => "allow",
            ExpectedDecision::Deny => "deny",
        }
    }
}

fn decision_name(decision: &Decision) -> &'static str {
    if decision.allowed { "allow" } else { "deny" }
}

// ---- Orgsync terms ----

/// The orgsync data a test file's cases are decided over.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    #[serde(default)]
    pub organizations: Vec<WorldOrganization>,
    #[serde(default)]
    pub groups: Vec<WorldGroup>,
    #[serde(default)]
    pub users: Vec<WorldUser>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldOrganization {
    pub id: String,
    #[serde(default)]
    pub default: bool,
    /// The organization's custom roles: name to permissions.
    #[serde(default)]
    pub custom_roles: BTreeMap<String, Vec<RolePermission>>,
}

/// A group other than an organization's Everyone group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldGroup {
    pub id: String,
    pub organization: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldUser {
    pub id: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub site_roles: Vec<String>,
    /// Organization id to the user's roles there (`[]`: a plain member).
    #[serde(default)]
    pub memberships: BTreeMap<String, Vec<String>>,
    /// Groups besides the Everyone groups of the user's organizations.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn active() -> String {
    "active".to_owned()
}

const STATUSES: &[&str] = &["active", "dormant", "suspended"];

/// The principal of a case: a user of the world, or a provisioner daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a user id, or {\"daemon\": ID, \"organization\": ORG}"
)]
pub enum PrincipalSpec {
    User(String),
    Daemon(DaemonSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSpec {
    pub daemon: String,
    pub organization: String,
}

/// The resource of a case, in orgsync's terms (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResourceSpec {
    /// `{"site": true}`.
    Site(bool),
    Organization(String),
    User(String),
    Member {
        organization: String,
        user: String,
    },
    /// A group of the world, or an organization id (its Everyone group).
    Group(String),
    SiteRole(String),
    OrgRole {
        organization: String,
        role: String,
    },
    Template {
        organization: String,
        id: String,
        created_by: String,
        #[serde(default)]
        acl: TemplateAcl,
    },
    /// A version of a template whose access list is `acl`.
    TemplateVersion {
        organization: String,
        id: String,
        created_by: String,
        #[serde(default)]
        acl: TemplateAcl,
    },
    File {
        organization: String,
        id: String,
        created_by: String,
    },
    ProvisionerKey {
        organization: String,
        id: String,
    },
    ProvisionerDaemon {
        organization: String,
        id: String,
    },
    ProvisionerJob {
        organization: String,
        id: String,
        initiator: String,
    },
    Workspace {
        organization: String,
        id: String,
        owner: String,
    },
    AuditLog(String),
    #[serde(rename = "idpsync_settings")]
    IdpSyncSettings(String),
}

impl World {
    /// Every inconsistency of the world (unknown ids, roles or statuses,
    /// duplicates); empty when it is one the server could hold.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids = HashSet::new();
        for o in &self.organizations {
            if !ids.insert(o.id.as_str()) {
                out.push(format!("organization `{}` is declared twice", o.id));
            }
        }
        if self.organizations.iter().filter(|o| o.default).count() > 1 {
            out.push("more than one default organization".to_owned());
        }
        let mut groups = HashSet::new();
        for g in &self.groups {
            if self.has_org(&g.id) {
                out.push(format!(
                    "group `{}` has an organization's id (Everyone groups are implied)",
                    g.id
                ));
            } else if !groups.insert(g.id.as_str()) {
                out.push(format!("group `{}` is declared twice", g.id));
            }
            if !self.has_org(&g.organization) {
                out.push(format!(
                    "group `{}`: unknown organization `{}`",
                    g.id, g.organization
                ));
            }
        }
        let mut users = HashSet::new();
        for u in &self.users {
            if !users.insert(u.id.as_str()) {
                out.push(format!("user `{}` is declared twice", u.id));
            }
            if !STATUSES.contains(&u.status.as_str()) {
                out.push(format!(
                    "user `{}`: status `{}` is none of {}",
                    u.id,
                    u.status,
                    STATUSES.join(", ")
                ));
            }
            for r in &u.site_roles {
                if !is_site_role(r) {
                    out.push(format!("user `{}`: unknown site role `{r}`", u.id));
                }
            }
            for (org, roles) in &u.memberships {
                if !self.has_org(org) {
                    out.push(format!("user `{}`: unknown organization `{org}`", u.id));
                }
                for r in roles {
                    if !is_org_role(r) && self.custom_role(org, r).is_none() {
                        out.push(format!("user `{}`: unknown organization role `{r}`", u.id));
                    }
                }
            }
            for g in &u.groups {
                match self.groups.iter().find(|x| &x.id == g) {
                    Some(group) if !u.memberships.contains_key(&group.organization) => {
                        out.push(format!(
                            "user `{}` is in group `{g}` but not a member of its organization `{}`",
                            u.id, group.organization
                        ));
                    }
                    Some(_) => {}
                    None if self.has_org(g) => out.push(format!(
                        "user `{}`: the Everyone group `{g}` is implied by the membership",
                        u.id
                    )),
                    None => out.push(format!("user `{}`: unknown group `{g}`", u.id)),
                }
            }
        }
        out
    }

    /// The permissions of the custom role `name` of organization `org`.
    fn custom_role(&self, org: &str, name: &str) -> Option<&[RolePermission]> {
        self.organizations
            .iter()
            .find(|o| o.id == org)
            .and_then(|o| o.custom_roles.get(name))
            .map(Vec::as_slice)
    }

    fn has_org(&self, id: &str) -> bool {
        self.organizations.iter().any(|o| o.id == id)
    }

    fn org(&self, id: &str) -> Result<OrgRef, String> {
        self.organizations
            .iter()
            .find(|o| o.id == id)
            .map(|o| OrgRef::new(o.id.clone(), o.default))
            .ok_or_else(|| format!("unknown organization `{id}`"))
    }

    fn user(&self, id: &str) -> Result<&WorldUser, String> {
        self.users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| format!("unknown user `{id}`"))
    }

    /// The organization of a group, or of the Everyone group `id`.
    fn group_org(&self, id: &str) -> Result<OrgRef, String> {
        match self.groups.iter().find(|g| g.id == id) {
            Some(g) => self.org(&g.organization),
            None => self.org(id).map_err(|_| format!("unknown group `{id}`")),
        }
    }

    fn check_acl(&self, acl: &TemplateAcl) -> Result<(), String> {
        for u in acl.use_users.iter().chain(&acl.admin_users) {
            self.user(u)?;
        }
        for g in acl.use_groups.iter().chain(&acl.admin_groups) {
            self.group_org(g)?;
        }
        Ok(())
    }

    /// The principal as the server prepares it.
    pub fn principal(&self, spec: &PrincipalSpec) -> Result<PrincipalEntity, String> {
        match spec {
            PrincipalSpec::User(id) => {
                let u = self.user(id)?;
                Ok(Principal {
                    id: u.id.clone(),
                    status: u.status.clone(),
                    site_roles: u.site_roles.clone(),
                    memberships: u
                        .memberships
                        .iter()
                        .map(|(org, roles)| OrgMembership {
                            org_id: org.clone(),
                            roles: roles.clone(),
                            permissions: roles
                                .iter()
                                .filter_map(|r| self.custom_role(org, r))
                                .flatten()
                                .cloned()
                                .collect(),
                        })
                        .collect(),
                    groups: u.groups.clone(),
                }
                .prepare())
            }
            PrincipalSpec::Daemon(d) => Ok(PrincipalEntity::daemon(
                &d.daemon,
                &self.org(&d.organization)?,
            )),
        }
    }

    /// The resource as the server builds it.
    pub fn resource(&self, spec: &ResourceSpec) -> Result<Resource, String> {
        Ok(match spec {
            ResourceSpec::Site(true) => Resource::site(),
            ResourceSpec::Site(false) => return Err("write the site as `{\"site\": true}`".into()),
            ResourceSpec::Organization(org) => Resource::organization(&self.org(org)?),
            ResourceSpec::User(id) => {
                let u = self.user(id)?;
                Resource::user(&u.id, &u.status).with_site_roles(&u.site_roles)
            }
            ResourceSpec::Member { organization, user } => {
                let u = self.user(user)?;
                Resource::member(&self.org(organization)?, &u.id).with_site_roles(&u.site_roles)
            }
            ResourceSpec::Group(id) => Resource::group(&self.group_org(id)?, id),
            ResourceSpec::SiteRole(role) => {
                if !is_site_role(role) {
                    return Err(format!("unknown site role `{role}`"));
                }
                Resource::site_role(role)
            }
            ResourceSpec::OrgRole { organization, role } => {
                if !is_org_role(role) && self.custom_role(organization, role).is_none() {
                    return Err(format!("unknown organization role `{role}`"));
                }
                Resource::org_role(&self.org(organization)?, role)
            }
            ResourceSpec::Template {
                organization,
                id,
                created_by,
                acl,
            } => {
                self.user(created_by)?;
                self.check_acl(acl)?;
                Resource::template(&self.org(organization)?, id, created_by, acl)
            }
            ResourceSpec::TemplateVersion {
                organization,
                id,
                created_by,
                acl,
            } => {
                self.user(created_by)?;
                self.check_acl(acl)?;
                Resource::template_version(&self.org(organization)?, id, created_by, acl)
            }
            ResourceSpec::File {
                organization,
                id,
                created_by,
            } => {
                self.user(created_by)?;
                Resource::file(&self.org(organization)?, id, created_by)
            }
            ResourceSpec::ProvisionerKey { organization, id } => {
                Resource::provisioner_key(&self.org(organization)?, id)
            }
            ResourceSpec::ProvisionerDaemon { organization, id } => {
                Resource::provisioner_daemon(&self.org(organization)?, id)
            }
            ResourceSpec::ProvisionerJob {
                organization,
                id,
                initiator,
            } => {
                self.user(initiator)?;
                Resource::provisioner_job(&self.org(organization)?, id, initiator)
            }
            ResourceSpec::Workspace {
                organization,
                id,
                owner,
            } => {
                self.user(owner)?;
                Resource::workspace(&self.org(organization)?, id, owner)
            }
            ResourceSpec::AuditLog(org) => Resource::audit_log(&self.org(org)?),
            ResourceSpec::IdpSyncSettings(org) => Resource::idpsync_settings(&self.org(org)?),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for the reader of the file")]
    description: String,
    world: World,
    cases: Vec<ModelCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelCase {
    name: String,
    principal: PrincipalSpec,
    action: String,
    resource: ResourceSpec,
    #[serde(default)]
    context: BTreeMap<String, Vec<String>>,
    decision: ExpectedDecision,
    #[serde(default)]
    reasons: Option<Vec<String>>,
    #[serde(default)]
    nothing_permits: bool,
}

/// What a case of the orgsync-terms format claims about its decision.
enum Expected {
    /// Allowed, or denied, by exactly these policies (sorted).
    By(ExpectedDecision, Vec<String>),
    /// Denied with no policy deciding: nothing permits, nothing forbids.
    NothingPermits,
}

impl ModelCase {
    fn expected(&self) -> Result<Expected, String> {
        let reasons = self.reasons.as_ref().filter(|r| !r.is_empty());
        match (self.decision, reasons, self.nothing_permits) {
            (ExpectedDecision::Allow, _, true) => {
                Err("an allow case cannot say `nothing_permits`".to_owned())
            }
            (ExpectedDecision::Allow, None, false) => {
                Err("an allow case names the permit policies that allow it in `reasons`".to_owned())
            }
            (ExpectedDecision::Deny, Some(_), true) => Err(
                "a deny case names its forbid policies in `reasons` or says `nothing_permits`, not both"
                    .to_owned(),
            ),
            (ExpectedDecision::Deny, None, false) => Err(
                "a deny case names the forbid policies that deny it in `reasons`, or says \
                 `\"nothing_permits\": true` when no policy decides (`\"reasons\": []` says neither)"
                    .to_owned(),
            ),
            (ExpectedDecision::Deny, None, true) => Ok(Expected::NothingPermits),
            (decision, Some(reasons), false) => {
                let mut reasons = reasons.clone();
                reasons.sort();
                Ok(Expected::By(decision, reasons))
            }
        }
    }
}

fn run_model_file(engine: &Engine, file: &SourceFile) -> Result<Vec<CaseResult>, PolicyError> {
    let parsed: ModelFile = serde_json::from_str(&file.text)
        .map_err(|e| PolicyError::Request(format!("`{}`: {e}", file.path)))?;
    let problems = parsed.world.problems();
    if !problems.is_empty() {
        return Err(PolicyError::Request(format!(
            "`{}` world: {}",
            file.path,
            problems.join("; ")
        )));
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for case in &parsed.cases {
        let result = if names.insert(case.name.as_str()) {
            run_model_case(engine, &parsed.world, case)
        } else {
            Err("another case of this file has the same name".to_owned())
        };
        out.push(CaseResult {
            file: file.path.clone(),
            name: case.name.clone(),
            passed: result.is_ok(),
            detail: result.err(),
        });
    }
    Ok(out)
}

fn run_model_case(engine: &Engine, world: &World, case: &ModelCase) -> Result<(), String> {
    let expected = case.expected()?;
    let principal = world.principal(&case.principal)?;
    let resource = world.resource(&case.resource)?;
    let context = case
        .context
        .iter()
        .fold(RequestContext::new(), |c, (k, v)| {
            c.with_string_set(k, v.iter().cloned())
        });
    check_request(engine, &principal, &case.action, &resource, &context)?;
    let decision = engine.authorize_named(&principal, &case.action, &resource, &context);
    if !decision.errors.is_empty() {
        return Err(format!("evaluation errors: {}", decision.errors.join("; ")));
    }
    match expected {
        Expected::By(want, reasons) => {
            if decision.allowed != (want == ExpectedDecision::Allow) {
                return Err(format!(
                    "expected {}, got {} (reasons: [{}])",
                    want.name(),
                    decision_name(&decision),
                    decision.reasons.join(", ")
                ));
            }
            if reasons != decision.reasons {
                return Err(format!(
                    "expected reasons [{}], got [{}]",
                    reasons.join(", "),
                    decision.reasons.join(", ")
                ));
            }
        }
        Expected::NothingPermits => {
            if decision.allowed {
                return Err(format!(
                    "expected deny with nothing permitting, got allow (reasons: [{}])",
                    decision.reasons.join(", ")
                ));
            }
            if !decision.reasons.is_empty() {
                return Err(format!(
                    "expected deny with nothing permitting, got deny by [{}]",
                    decision.reasons.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The request must be one the schema allows: a known action, principal and
/// resource types it applies to, a conforming context. Otherwise a case could
/// ask something the server never asks.
fn check_request(
    engine: &Engine,
    principal: &PrincipalEntity,
    action: &str,
    resource: &Resource,
    context: &RequestContext,
) -> Result<(), String> {
    if !engine.has_action(action) {
        return Err(format!("unknown action `{action}`"));
    }
    let action_uid =
        uid_of(&serde_json::json!({"type": "Action", "id": action})).map_err(|e| e.to_string())?;
    let context = Context::from_pairs(context.pairs.iter().cloned())
        .map_err(|e| format!("bad context: {e}"))?;
    let resource_uid = resource.uid();
    Request::new(
        principal.uid().clone(),
        action_uid,
        resource_uid,
        context,
        Some(engine.schema()),
    )
    .map(|_| ())
    .map_err(|e| format!("request not valid for the schema: {e}"))
}

// ---- Cedar entities ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CedarFile {
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for the reader of the file")]
    description: String,
    entities: serde_json::Value,
    cases: Vec<CedarCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CedarCase {
    name: String,
    principal: serde_json::Value,
    action: String,
    resource: serde_json::Value,
    #[serde(default)]
    context: Option<serde_json::Value>,
    decision: ExpectedDecision,
    #[serde(default)]
    reasons: Option<Vec<String>>,
}

fn uid_of(v: &serde_json::Value) -> Result<EntityUid, PolicyError> {
    EntityUid::from_json(v.clone())
        .map_err(|e| PolicyError::Request(format!("bad entity uid {v}: {e}")))
}

fn run_cedar_file(engine: &Engine, file: &SourceFile) -> Result<Vec<CaseResult>, PolicyError> {
    let parsed: CedarFile = serde_json::from_str(&file.text)
        .map_err(|e| PolicyError::Request(format!("`{}`: {e}", file.path)))?;
    let entities = Entities::from_json_value(parsed.entities, Some(engine.schema()))
        .map_err(|e| PolicyError::Request(format!("`{}` entities: {e}", file.path)))?;
    let actions = engine.action_entities()?;
    let entities = entities
        .add_entities(actions.iter().cloned(), None)
        .map_err(|e| PolicyError::Request(format!("`{}` entities: {e}", file.path)))?;
    let mut out = Vec::new();
    for case in parsed.cases {
        let result = run_cedar_case(engine, &entities, &case);
        out.push(CaseResult {
            file: file.path.clone(),
            name: case.name.clone(),
            passed: result.is_ok(),
            detail: result.err(),
        });
    }
    Ok(out)
}

fn run_cedar_case(engine: &Engine, entities: &Entities, case: &CedarCase) -> Result<(), String> {
    let principal = uid_of(&case.principal).map_err(|e| e.to_string())?;
    let resource = uid_of(&case.resource).map_err(|e| e.to_string())?;
    let action = uid_of(&serde_json::json!({"type": "Action", "id": case.action}))
        .map_err(|e| e.to_string())?;
    let context = match &case.context {
        None => Context::empty(),
        Some(v) => Context::from_json_value(v.clone(), Some((engine.schema(), &action)))
            .map_err(|e| format!("bad context: {e}"))?,
    };
    let decision = engine.authorize_raw(principal, action, resource, context, entities);
    if !decision.errors.is_empty() {
        return Err(format!("evaluation errors: {}", decision.errors.join("; ")));
    }
    let expected = case.decision == ExpectedDecision::Allow;
    if decision.allowed != expected {
        return Err(format!(
            "expected {}, got {} (reasons: [{}])",
            case.decision.name(),
            decision_name(&decision),
            decision.reasons.join(", ")
        ));
    }
    if let Some(reasons) = &case.reasons {
        let mut want = reasons.clone();
        want.sort();
        if want != decision.reasons {
            return Err(format!(
                "expected reasons [{}], got [{}]",
                want.join(", "),
                decision.reasons.join(", ")
            ));
        }
    }
    Ok(())
}
