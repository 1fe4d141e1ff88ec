//! The authorization data model: principals, resources, actions, and the
//! conversion of each into Cedar entities.

use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};

/// Site roles. `member` is implicit for every user.
pub const SITE_ROLES: &[&str] = &["owner", "member", "auditor", "template-admin", "user-admin"];

/// Organization roles. `organization-member` is implicit for every member.
pub const ORG_ROLES: &[&str] = &[
    "organization-admin",
    "organization-member",
    "organization-auditor",
    "organization-user-admin",
    "organization-template-admin",
    "organization-workspace-creation-ban",
];

pub fn is_site_role(name: &str) -> bool {
    SITE_ROLES.contains(&name)
}

pub fn is_org_role(name: &str) -> bool {
    ORG_ROLES.contains(&name)
}

/// The entity types of the schema that callers build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Site,
    Role,
    Organization,
    Group,
    User,
    Member,
    Template,
    TemplateVersion,
    File,
    ProvisionerKey,
    ProvisionerDaemon,
    ProvisionerJob,
    Workspace,
    AuditLog,
    IdpSyncSettings,
    OrganizationRole,
}

impl EntityKind {
    pub const ALL: [EntityKind; 16] = [
        EntityKind::Site,
        EntityKind::Role,
        EntityKind::Organization,
        EntityKind::Group,
        EntityKind::User,
        EntityKind::Member,
        EntityKind::Template,
        EntityKind::TemplateVersion,
        EntityKind::File,
        EntityKind::ProvisionerKey,
        EntityKind::ProvisionerDaemon,
        EntityKind::ProvisionerJob,
        EntityKind::Workspace,
        EntityKind::AuditLog,
        EntityKind::IdpSyncSettings,
        EntityKind::OrganizationRole,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EntityKind::Site => "Site",
            EntityKind::Role => "Role",
            EntityKind::Organization => "Organization",
            EntityKind::Group => "Group",
            EntityKind::User => "User",
            EntityKind::Member => "Member",
            EntityKind::Template => "Template",
            EntityKind::TemplateVersion => "TemplateVersion",
            EntityKind::File => "File",
            EntityKind::ProvisionerKey => "ProvisionerKey",
            EntityKind::ProvisionerDaemon => "ProvisionerDaemon",
            EntityKind::ProvisionerJob => "ProvisionerJob",
            EntityKind::Workspace => "Workspace",
            EntityKind::AuditLog => "AuditLog",
            EntityKind::IdpSyncSettings => "IdpSyncSettings",
            EntityKind::OrganizationRole => "OrganizationRole",
        }
    }

    pub fn parse(name: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn type_name(self) -> &'static EntityTypeName {
        &TYPE_NAMES[self as usize]
    }

    /// The Cedar uid of an entity of this kind.
    pub fn uid(self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.type_name().clone(), EntityId::new(id))
    }
}

#[allow(
    clippy::expect_used,
    reason = "the type names are constants of this file"
)]
static TYPE_NAMES: LazyLock<Vec<EntityTypeName>> = LazyLock::new(|| {
    EntityKind::ALL
        .iter()
        .map(|k| EntityTypeName::from_str(k.name()).expect("constant entity type name parses"))
        .collect()
});

/// The id of the one `Site` entity.
pub const SITE_ID: &str = "site";

/// An action name of the schema, such as `organization:read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Action(pub &'static str);

impl Action {
    pub const ORGANIZATION_CREATE: Action = Action("organization:create");
    pub const ORGANIZATION_LIST: Action = Action("organization:list");
    pub const ORGANIZATION_READ: Action = Action("organization:read");
    pub const ORGANIZATION_UPDATE: Action = Action("organization:update");
    pub const ORGANIZATION_DELETE: Action = Action("organization:delete");
    pub const USER_CREATE: Action = Action("user:create");
    pub const USER_LIST: Action = Action("user:list");
    pub const USER_READ: Action = Action("user:read");
    pub const USER_UPDATE: Action = Action("user:update");
    pub const USER_SUSPEND: Action = Action("user:suspend");
    pub const USER_DELETE: Action = Action("user:delete");
    pub const USER_CREATE_TOKEN: Action = Action("user:create_token");
    pub const USER_READ_TOKENS: Action = Action("user:read_tokens");
    pub const USER_DELETE_TOKEN: Action = Action("user:delete_token");
    pub const USER_UPDATE_ROLES: Action = Action("user:update_roles");
    pub const USER_LINK: Action = Action("user:link");
    pub const SITE_ROLE_ASSIGN: Action = Action("site_role:assign");
    pub const ORG_ROLE_ASSIGN: Action = Action("org_role:assign");
    pub const MEMBER_READ: Action = Action("member:read");
    pub const MEMBER_CREATE: Action = Action("member:create");
    pub const MEMBER_DELETE: Action = Action("member:delete");
    pub const MEMBER_UPDATE_ROLES: Action = Action("member:update_roles");
    pub const GROUP_READ: Action = Action("group:read");
    pub const GROUP_CREATE: Action = Action("group:create");
    pub const GROUP_UPDATE: Action = Action("group:update");
    pub const GROUP_DELETE: Action = Action("group:delete");
    pub const IDPSYNC_SETTINGS_READ: Action = Action("idpsync_settings:read");
    pub const IDPSYNC_SETTINGS_UPDATE: Action = Action("idpsync_settings:update");
    pub const DEPLOYMENT_SYNC_READ: Action = Action("deployment_sync:read");
    pub const DEPLOYMENT_SYNC_UPDATE: Action = Action("deployment_sync:update");
    pub const LDAPSYNC_RUN: Action = Action("ldapsync:run");
    pub const TEMPLATE_READ: Action = Action("template:read");
    pub const TEMPLATE_USE: Action = Action("template:use");
    pub const TEMPLATE_CREATE: Action = Action("template:create");
    pub const TEMPLATE_UPDATE: Action = Action("template:update");
    pub const TEMPLATE_DELETE: Action = Action("template:delete");
    pub const TEMPLATE_VERSION_READ: Action = Action("template_version:read");
    pub const TEMPLATE_VERSION_CREATE: Action = Action("template_version:create");
    pub const FILE_CREATE: Action = Action("file:create");
    pub const FILE_READ: Action = Action("file:read");
    pub const PROVISIONER_KEY_READ: Action = Action("provisioner_key:read");
    pub const PROVISIONER_KEY_CREATE: Action = Action("provisioner_key:create");
    pub const PROVISIONER_KEY_DELETE: Action = Action("provisioner_key:delete");
    pub const PROVISIONER_DAEMON_READ: Action = Action("provisioner_daemon:read");
    pub const PROVISIONER_DAEMON_DELETE: Action = Action("provisioner_daemon:delete");
    pub const PROVISIONER_JOB_READ: Action = Action("provisioner_job:read");
    pub const PROVISIONER_JOB_CANCEL: Action = Action("provisioner_job:cancel");
    pub const PROVISIONER_JOB_ACQUIRE: Action = Action("provisioner_job:acquire");
    pub const PROVISIONER_JOB_UPDATE: Action = Action("provisioner_job:update");
    pub const WORKSPACE_CREATE: Action = Action("workspace:create");
    pub const WORKSPACE_READ: Action = Action("workspace:read");
    pub const WORKSPACE_UPDATE: Action = Action("workspace:update");
    pub const WORKSPACE_DELETE: Action = Action("workspace:delete");
    pub const WORKSPACE_DELETE_ORPHAN: Action = Action("workspace:delete_orphan");
    pub const AUDIT_READ: Action = Action("audit:read");
    pub const AUDIT_READ_ALL: Action = Action("audit:read_all");
    pub const POLICY_READ: Action = Action("policy:read");
    pub const POLICY_RELOAD: Action = Action("policy:reload");
    pub const POLICY_AUTHORIZE: Action = Action("policy:authorize");

    pub fn name(self) -> &'static str {
        self.0
    }
}

/// A reference to an organization, enough to build its entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgRef {
    pub id: String,
    pub is_default: bool,
}

impl OrgRef {
    pub fn new(id: impl Into<String>, is_default: bool) -> Self {
        Self {
            id: id.into(),
            is_default,
        }
    }

    /// The organization's entity; its parent `Site` only when `keep_site` (see
    /// [`Keep`]).
    pub(crate) fn entity(&self, keep_site: bool) -> Entity {
        let uid = EntityKind::Organization.uid(&self.id);
        let attrs = [
            (
                "key".to_owned(),
                RestrictedExpression::new_string(self.id.clone()),
            ),
            (
                "is_default".to_owned(),
                RestrictedExpression::new_bool(self.is_default),
            ),
            (
                "organization".to_owned(),
                RestrictedExpression::new_entity_uid(uid.clone()),
            ),
        ];
        let site = keep_site.then(|| EntityKind::Site.uid(SITE_ID));
        entity(uid, attrs, site, [])
    }
}

/// A user's membership of one organization and its roles there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgMembership {
    pub org_id: String,
    pub roles: Vec<String>,
}

/// The authorization data of a user: status, site roles, memberships, groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    /// `active`, `dormant` or `suspended`.
    pub status: String,
    pub site_roles: Vec<String>,
    pub memberships: Vec<OrgMembership>,
    /// Ids of the groups the user is in (the Everyone groups are implied).
    pub groups: Vec<String>,
}

impl Principal {
    /// Prepares this principal for decisions; keep the result while the data holds.
    ///
    /// The result keeps the user's data, not a Cedar entity: each decision builds
    /// the entity with only the parents that decision can observe (see [`Keep`]).
    /// That is what keeps a decision's cost flat in the number of the user's
    /// organizations and groups, and the snapshot of 100,000 users small.
    pub fn prepare(&self) -> PrincipalEntity {
        PrincipalEntity {
            uid: EntityKind::User.uid(&self.id),
            data: PrincipalData::User(self.clone()),
        }
    }

    /// The parents of the user's entity: the implicit `member` role, its site
    /// roles, and for each membership the organization and its Everyone group
    /// (which has the organization's id), then its other groups.
    fn parents(&self) -> impl Iterator<Item = (EntityKind, &str)> {
        std::iter::once((EntityKind::Role, "member"))
            .chain(
                self.site_roles
                    .iter()
                    .map(|r| (EntityKind::Role, r.as_str())),
            )
            .chain(self.memberships.iter().flat_map(|m| {
                [
                    (EntityKind::Organization, m.org_id.as_str()),
                    (EntityKind::Group, m.org_id.as_str()),
                ]
            }))
            .chain(self.groups.iter().map(|g| (EntityKind::Group, g.as_str())))
    }

    /// The user's entity with the parents `keep` accepts. Its org roles are tags:
    /// the key is the organization id, the value the set of role names.
    fn entity(&self, uid: &EntityUid, keep: &impl Keep) -> Entity {
        let parents = self
            .parents()
            .filter(|(kind, id)| keep.keep(*kind, id))
            .map(|(kind, id)| kind.uid(id));
        let tags = self.memberships.iter().map(|m| {
            (
                m.org_id.clone(),
                RestrictedExpression::new_set(
                    m.roles
                        .iter()
                        .map(|r| RestrictedExpression::new_string(r.clone())),
                ),
            )
        });
        let attrs = [
            (
                "key".to_owned(),
                RestrictedExpression::new_string(self.id.clone()),
            ),
            (
                "status".to_owned(),
                RestrictedExpression::new_string(self.status.clone()),
            ),
        ];
        entity(uid.clone(), attrs, parents, tags)
    }
}

/// Which parents of an entity a decision needs. Cedar's only use of an entity's
/// ancestors is `in`, whose right-hand side is an entity literal of a policy, an
/// entity of the request, or an entity an attribute of the request's entities
/// refers to. A parent that is none of these can change no decision, so leaving
/// it out decides the same while sparing Cedar its share of the transitive closure
/// it computes for every request (about a microsecond per node).
pub(crate) trait Keep {
    fn keep(&self, kind: EntityKind, id: &str) -> bool;
}

/// A principal ready for decisions: its uid and what its Cedar entity (the slice
/// of the authorization data a decision about it needs) is built from.
#[derive(Debug, Clone)]
pub struct PrincipalEntity {
    pub(crate) uid: EntityUid,
    data: PrincipalData,
}

#[derive(Debug, Clone)]
enum PrincipalData {
    /// A user; its entity is built per decision.
    User(Principal),
    /// An entity built once (a provisioner daemon: one parent, nothing to leave out).
    Fixed(Entity),
}

impl PrincipalEntity {
    /// A provisioner daemon acting for one organization.
    pub fn daemon(id: &str, org: &OrgRef) -> Self {
        let uid = EntityKind::ProvisionerDaemon.uid(id);
        let attrs = [
            (
                "key".to_owned(),
                RestrictedExpression::new_string(id.to_owned()),
            ),
            (
                "organization".to_owned(),
                RestrictedExpression::new_entity_uid(EntityKind::Organization.uid(&org.id)),
            ),
        ];
        let parents = [EntityKind::Organization.uid(&org.id)];
        Self {
            uid: uid.clone(),
            data: PrincipalData::Fixed(entity(uid, attrs, parents, [])),
        }
    }

    pub fn uid(&self) -> &EntityUid {
        &self.uid
    }

    /// Whether the principal's entity has the parent `Role::"<role>"`.
    pub(crate) fn has_role(&self, role: &str) -> bool {
        match &self.data {
            PrincipalData::User(p) => role == "member" || p.site_roles.iter().any(|r| r == role),
            // A daemon's only parent is its organization.
            PrincipalData::Fixed(_) => false,
        }
    }

    /// The principal's entity for one decision, with the parents `keep` accepts.
    /// Whether one of the user's memberships in `org_id` has the org role
    /// `role` (what the entity's tag for that org holds). `true` for a principal
    /// that is not a user: the caller then keeps what the role would decide.
    pub(crate) fn may_have_org_role(&self, org_id: &str, role: &str) -> bool {
        match &self.data {
            PrincipalData::User(p) => p
                .memberships
                .iter()
                .any(|m| m.org_id == org_id && m.roles.iter().any(|r| r == role)),
            PrincipalData::Fixed(_) => true,
        }
    }

    pub(crate) fn entity(&self, keep: &impl Keep) -> Entity {
        match &self.data {
            PrincipalData::User(p) => p.entity(&self.uid, keep),
            PrincipalData::Fixed(e) => e.clone(),
        }
    }
}

fn entity(
    uid: EntityUid,
    attrs: impl IntoIterator<Item = (String, RestrictedExpression)>,
    parents: impl IntoIterator<Item = EntityUid>,
    tags: impl IntoIterator<Item = (String, RestrictedExpression)>,
) -> Entity {
    // Attribute values here are literals, which always evaluate; fall back to a
    // bare entity rather than panic if Cedar ever says otherwise.
    Entity::new_with_tags(uid.clone(), attrs, parents, tags)
        .unwrap_or_else(|_| Entity::with_uid(uid))
}

/// A template's access list, as the policies see it. In a policy test file
/// (`testing`), every list may be left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateAcl {
    pub use_users: Vec<String>,
    pub use_groups: Vec<String>,
    pub admin_users: Vec<String>,
    pub admin_groups: Vec<String>,
}

/// The object of a request (or, for create and list, its container).
#[derive(Debug, Clone)]
pub struct Resource {
    kind: EntityKind,
    id: String,
    org: Option<OrgRef>,
    attrs: Vec<(String, RestrictedExpression)>,
    /// The entities `attrs` refer to, besides the organization (see [`Keep`]).
    refs: Vec<(EntityKind, String)>,
    /// Parents of the resource besides its organization (a user's site roles).
    parents: Vec<EntityUid>,
    /// Entities an attribute refers to whose ancestors a policy reads (the
    /// user of a membership, with its site roles), with their parents.
    related: Vec<(EntityUid, Vec<EntityUid>)>,
}

impl Resource {
    fn in_org(kind: EntityKind, id: impl Into<String>, org: &OrgRef) -> Self {
        Self {
            kind,
            id: id.into(),
            org: Some(org.clone()),
            attrs: vec![(
                "organization".to_owned(),
                RestrictedExpression::new_entity_uid(EntityKind::Organization.uid(&org.id)),
            )],
            refs: Vec::new(),
            parents: Vec::new(),
            related: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: RestrictedExpression) -> Self {
        self.attrs.push((name.to_owned(), value));
        self
    }

    /// An attribute that refers to an entity.
    fn with_ref(mut self, name: &str, kind: EntityKind, id: &str) -> Self {
        self.attrs.push((
            name.to_owned(),
            RestrictedExpression::new_entity_uid(kind.uid(id)),
        ));
        self.refs.push((kind, id.to_owned()));
        self
    }

    /// An attribute that is a set of entities.
    fn with_set<'a>(
        mut self,
        name: &str,
        kind: EntityKind,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> Self {
        let start = self.refs.len();
        self.refs
            .extend(ids.into_iter().map(|id| (kind, id.clone())));
        let set = RestrictedExpression::new_set(
            self.refs[start..]
                .iter()
                .map(|(k, id)| RestrictedExpression::new_entity_uid(k.uid(id))),
        );
        self.attrs.push((name.to_owned(), set));
        self
    }

    pub fn site() -> Self {
        Self {
            kind: EntityKind::Site,
            id: SITE_ID.to_owned(),
            org: None,
            attrs: Vec::new(),
            refs: Vec::new(),
            parents: Vec::new(),
            related: Vec::new(),
        }
    }

    pub fn organization(org: &OrgRef) -> Self {
        Self {
            kind: EntityKind::Organization,
            id: org.id.clone(),
            org: Some(org.clone()),
            attrs: Vec::new(),
            refs: Vec::new(),
            parents: Vec::new(),
            related: Vec::new(),
        }
    }

    /// A site role as the object of `site_role:assign`.
    pub fn site_role(name: &str) -> Self {
        Self {
            kind: EntityKind::Role,
            id: name.to_owned(),
            org: None,
            attrs: Vec::new(),
            refs: Vec::new(),
            parents: Vec::new(),
            related: Vec::new(),
        }
    }

    /// An organization role as the object of `org_role:assign`.
    pub fn org_role(org: &OrgRef, name: &str) -> Self {
        Self::in_org(
            EntityKind::OrganizationRole,
            format!("{}/{name}", org.id),
            org,
        )
        .with("name", RestrictedExpression::new_string(name.to_owned()))
    }

    /// The site roles the user this resource is (a `User`) or names (the `user`
    /// of a `Member`) holds, which guardrails read (`resource in Role::"owner"`).
    pub fn with_site_roles<'a>(mut self, roles: impl IntoIterator<Item = &'a String>) -> Self {
        let parents: Vec<EntityUid> = roles
            .into_iter()
            .filter(|r| r.as_str() != "member")
            .map(|r| EntityKind::Role.uid(r))
            .collect();
        match self.kind {
            EntityKind::User => self.parents.extend(parents),
            _ => {
                if let Some((_, id)) = self.refs.iter().find(|(k, _)| *k == EntityKind::User) {
                    self.related.push((EntityKind::User.uid(id), parents));
                }
            }
        }
        self
    }

    pub fn user(id: &str, status: &str) -> Self {
        Self {
            kind: EntityKind::User,
            id: id.to_owned(),
            org: None,
            attrs: vec![
                (
                    "key".to_owned(),
                    RestrictedExpression::new_string(id.to_owned()),
                ),
                (
                    "status".to_owned(),
                    RestrictedExpression::new_string(status.to_owned()),
                ),
            ],
            refs: Vec::new(),
            parents: Vec::new(),
            related: Vec::new(),
        }
    }

    /// The membership of `user_id` in `org` (existing or about to be created).
    pub fn member(org: &OrgRef, user_id: &str) -> Self {
        Self::in_org(EntityKind::Member, format!("{}/{user_id}", org.id), org).with_ref(
            "user",
            EntityKind::User,
            user_id,
        )
    }

    pub fn group(org: &OrgRef, group_id: &str) -> Self {
        Self::in_org(EntityKind::Group, group_id, org).with(
            "is_everyone",
            RestrictedExpression::new_bool(group_id == org.id),
        )
    }

    pub fn template(org: &OrgRef, id: &str, created_by: &str, acl: &TemplateAcl) -> Self {
        Self::in_org(EntityKind::Template, id, org)
            .with_ref("created_by", EntityKind::User, created_by)
            .with_set("acl_use_users", EntityKind::User, &acl.use_users)
            .with_set("acl_use_groups", EntityKind::Group, &acl.use_groups)
            .with_set("acl_admin_users", EntityKind::User, &acl.admin_users)
            .with_set("acl_admin_groups", EntityKind::Group, &acl.admin_groups)
    }

    /// A version; it carries the `use` access of its template (everyone who may
    /// use a template reads its versions).
    pub fn template_version(org: &OrgRef, id: &str, created_by: &str, acl: &TemplateAcl) -> Self {
        Self::in_org(EntityKind::TemplateVersion, id, org)
            .with_ref("created_by", EntityKind::User, created_by)
            .with_set(
                "acl_use_users",
                EntityKind::User,
                acl.use_users.iter().chain(&acl.admin_users),
            )
            .with_set(
                "acl_use_groups",
                EntityKind::Group,
                acl.use_groups.iter().chain(&acl.admin_groups),
            )
    }

    pub fn file(org: &OrgRef, hash: &str, created_by: &str) -> Self {
        Self::in_org(EntityKind::File, hash, org).with_ref(
            "created_by",
            EntityKind::User,
            created_by,
        )
    }

    pub fn provisioner_key(org: &OrgRef, id: &str) -> Self {
        Self::in_org(EntityKind::ProvisionerKey, id, org)
    }

    pub fn provisioner_daemon(org: &OrgRef, id: &str) -> Self {
        Self::in_org(EntityKind::ProvisionerDaemon, id, org)
            .with("key", RestrictedExpression::new_string(id.to_owned()))
    }

    pub fn provisioner_job(org: &OrgRef, id: &str, initiator: &str) -> Self {
        Self::in_org(EntityKind::ProvisionerJob, id, org).with_ref(
            "initiator",
            EntityKind::User,
            initiator,
        )
    }

    /// A workspace (existing, or about to be created for `owner`).
    pub fn workspace(org: &OrgRef, id: &str, owner: &str) -> Self {
        Self::in_org(EntityKind::Workspace, id, org).with_ref("owner", EntityKind::User, owner)
    }

    /// The audit log of one organization.
    pub fn audit_log(org: &OrgRef) -> Self {
        Self::in_org(EntityKind::AuditLog, org.id.clone(), org)
    }

    pub fn idpsync_settings(org: &OrgRef) -> Self {
        Self::in_org(EntityKind::IdpSyncSettings, org.id.clone(), org)
    }

    pub fn kind(&self) -> EntityKind {
        self.kind
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn org(&self) -> Option<&OrgRef> {
        self.org.as_ref()
    }

    pub(crate) fn uid(&self) -> EntityUid {
        self.kind.uid(&self.id)
    }

    /// Whether this resource is, or refers to, the entity `kind`/`id`: itself, its
    /// organization, or an entity one of its attributes names.
    pub(crate) fn refers_to(&self, kind: EntityKind, id: &str) -> bool {
        (self.kind == kind && self.id == id)
            || (kind == EntityKind::Organization && self.org.as_ref().is_some_and(|o| o.id == id))
            || self.refs.iter().any(|(k, i)| *k == kind && i == id)
    }

    /// The entities a decision about this resource needs: itself and its org, with
    /// the parents `keep` accepts.
    pub(crate) fn entities(&self, out: &mut Vec<Entity>, skip: &EntityUid, keep: &impl Keep) {
        let keep_site = keep.keep(EntityKind::Site, SITE_ID);
        match (self.kind, &self.org) {
            (EntityKind::Organization, Some(org)) => out.push(org.entity(keep_site)),
            (_, org) => {
                let parents: Option<EntityUid> = match org {
                    Some(o) => {
                        out.push(o.entity(keep_site));
                        Some(EntityKind::Organization.uid(&o.id))
                    }
                    None if matches!(self.kind, EntityKind::Site | EntityKind::Role) => None,
                    None => keep_site.then(|| EntityKind::Site.uid(SITE_ID)),
                };
                let uid = self.uid();
                if &uid != skip {
                    let parents = parents.into_iter().chain(self.parents.iter().cloned());
                    out.push(entity(uid, self.attrs.iter().cloned(), parents, []));
                }
                for (related, parents) in &self.related {
                    if related != skip {
                        out.push(entity(related.clone(), [], parents.iter().cloned(), []));
                    }
                }
            }
        }
    }
}

/// Extra request context (for role changes: the roles added or removed).
///
/// It holds no entity values: the parents a decision keeps (see [`Keep`]) rely on
/// that. A method that adds entities must make `Keep` accept them.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub(crate) pairs: Vec<(String, RestrictedExpression)>,
}

impl RequestContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_string_set<I, S>(mut self, name: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.pairs.push((
            name.to_owned(),
            RestrictedExpression::new_set(
                values
                    .into_iter()
                    .map(|v| RestrictedExpression::new_string(v.into())),
            ),
        ));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in EntityKind::ALL {
            assert_eq!(EntityKind::parse(k.name()), Some(k));
            assert_eq!(k.uid("x").type_name().to_string(), k.name());
        }
    }
}
