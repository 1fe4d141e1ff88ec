//! The engine against plain Cedar.
//!
//! The engine decides over a slice of the policies (those whose action scope can
//! match, rewritten, per role combination) and over a pruned entity set (only the
//! parents a decision can observe). The reference here is the naive decision the
//! optimizations must not change: Cedar's `Authorizer::is_authorized` over the
//! whole policy set as loaded (`Engine::policy_set`, action scopes as written) and
//! over every entity of the world, written from the schema's definitions:
//!
//! - the site, every site role, every organization (in the site) with its
//!   Everyone group, every group, every daemon;
//! - every user with all its parents (the implicit `member` role, its site roles,
//!   its organizations and their Everyone groups, its groups) and its org roles
//!   as tags;
//! - the resource when it is no entity of the world (a member, a template, ...),
//!   with its organization as parent;
//! - the schema's action entities (role bundles included).
//!
//! Nothing of the engine's slicing or pruning is used: only the public API, the
//! world, and the schema. The engine's side builds principals and resources from
//! the same world through [`World::principal`] and [`World::resource`] (the
//! server's model, as policy test files use it), and decides with
//! `Engine::authorize_named`, as the server does. Allowed, reasons and errors
//! must be equal.
//!
//! Two tests: a property test over random worlds (users with random status, site
//! roles, memberships with org roles, groups; daemons) asking random requests
//! (every kind of resource, contexts) for the actions the schema applies to them
//! plus random others (so every action, role bundles included, is also asked
//! about what it does not apply to); and a fixed world asked every request the
//! schema allows in it. Both must see every policy decide at least once.
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the bounded, fixed-seed run.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, Request, Schema,
};
use orgsync_policy::testing::{
    DaemonSpec, PrincipalSpec, ResourceSpec, World, WorldGroup, WorldOrganization, WorldUser,
};
use orgsync_policy::{
    Decision, Engine, ORG_ROLES, PolicyError, RequestContext, SITE_ROLES, TemplateAcl,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// A world and the provisioner daemons acting in it.
#[derive(Debug, Clone)]
struct Scene {
    world: World,
    daemons: Vec<DaemonSpec>,
}

/// One request but its action.
#[derive(Debug, Clone)]
struct Ask {
    principal: PrincipalSpec,
    resource: ResourceSpec,
    context: Vec<(String, Vec<String>)>,
}

// ---------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------

fn uid(ty: &str, id: &str) -> Value {
    json!({"type": ty, "id": id})
}

fn eref(ty: &str, id: &str) -> Value {
    json!({"__entity": uid(ty, id)})
}

fn entity(ty: &str, id: &str, attrs: Value, parents: Vec<Value>) -> Value {
    json!({"uid": uid(ty, id), "attrs": attrs, "parents": parents})
}

/// An entity of an organization: the `organization` attribute and the parent.
fn in_org(ty: &str, id: &str, org: &str, mut attrs: Value) -> Value {
    attrs["organization"] = eref("Organization", org);
    entity(ty, id, attrs, vec![uid("Organization", org)])
}

fn refs<'a>(ty: &str, ids: impl IntoIterator<Item = &'a String>) -> Value {
    let ids: BTreeSet<&String> = ids.into_iter().collect();
    Value::Array(ids.into_iter().map(|id| eref(ty, id)).collect())
}

/// Every entity of the scene's world, with all parents.
fn world_entities(scene: &Scene) -> Vec<Value> {
    let world = &scene.world;
    let mut out = vec![entity("Site", "site", json!({}), vec![])];
    for role in SITE_ROLES {
        out.push(entity("Role", role, json!({}), vec![]));
    }
    for org in &world.organizations {
        out.push(entity(
            "Organization",
            &org.id,
            json!({"key": org.id, "is_default": org.default, "organization": eref("Organization", &org.id)}),
            vec![uid("Site", "site")],
        ));
        out.push(in_org(
            "Group",
            &org.id,
            &org.id,
            json!({"is_everyone": true}),
        ));
    }
    for g in &world.groups {
        out.push(in_org(
            "Group",
            &g.id,
            &g.organization,
            json!({"is_everyone": false}),
        ));
    }
    for u in &world.users {
        let mut parents: BTreeSet<(&str, &str)> = BTreeSet::new();
        parents.insert(("Role", "member"));
        parents.extend(u.site_roles.iter().map(|r| ("Role", r.as_str())));
        for org in u.memberships.keys() {
            parents.insert(("Organization", org));
            parents.insert(("Group", org));
        }
        parents.extend(u.groups.iter().map(|g| ("Group", g.as_str())));
        let mut user = entity(
            "User",
            &u.id,
            json!({"key": u.id, "status": u.status}),
            parents.into_iter().map(|(t, id)| uid(t, id)).collect(),
        );
        // The tag of an org: the role names there, and the permission entries
        // of the custom roles among them (`+action`, `-action` when negated).
        let tags: BTreeMap<&String, Vec<String>> = u
            .memberships
            .iter()
            .map(|(org, roles)| {
                let custom = world.organizations.iter().find(|o| &o.id == org);
                let mut tag = roles.clone();
                for r in roles {
                    if let Some(perms) = custom.and_then(|o| o.custom_roles.get(r)) {
                        tag.extend(perms.iter().map(|p| {
                            let sign = if p.negate { '-' } else { '+' };
                            format!("{sign}{}:{}", p.resource_type, p.action)
                        }));
                    }
                }
                (org, tag)
            })
            .collect();
        user["tags"] = json!(tags);
        out.push(user);
    }
    for d in &scene.daemons {
        out.push(in_org(
            "ProvisionerDaemon",
            &d.daemon,
            &d.organization,
            json!({"key": d.daemon}),
        ));
    }
    out
}

/// The resource's uid, and its entity when it is none of the world's.
fn resource_entity(scene: &Scene, spec: &ResourceSpec) -> (Value, Option<Value>) {
    let acl_entity = |ty: &str, id: &str, org: &str, by: &str, users: Value, groups: Value| {
        in_org(
            ty,
            id,
            org,
            json!({"created_by": eref("User", by), "acl_use_users": users, "acl_use_groups": groups}),
        )
    };
    match spec {
        ResourceSpec::Site(_) => (uid("Site", "site"), None),
        ResourceSpec::Organization(org) => (uid("Organization", org), None),
        ResourceSpec::User(id) => (uid("User", id), None),
        ResourceSpec::Group(id) => (uid("Group", id), None),
        ResourceSpec::SiteRole(role) => (uid("Role", role), None),
        ResourceSpec::Member { organization, user } => {
            let id = format!("{organization}/{user}");
            let e = in_org(
                "Member",
                &id,
                organization,
                json!({"user": eref("User", user)}),
            );
            (uid("Member", &id), Some(e))
        }
        ResourceSpec::OrgRole { organization, role } => {
            let id = format!("{organization}/{role}");
            let e = in_org("OrganizationRole", &id, organization, json!({"name": role}));
            (uid("OrganizationRole", &id), Some(e))
        }
        ResourceSpec::Template {
            organization,
            id,
            created_by,
            acl,
        } => {
            let mut e = acl_entity(
                "Template",
                id,
                organization,
                created_by,
                refs("User", &acl.use_users),
                refs("Group", &acl.use_groups),
            );
            e["attrs"]["acl_admin_users"] = refs("User", &acl.admin_users);
            e["attrs"]["acl_admin_groups"] = refs("Group", &acl.admin_groups);
            (uid("Template", id), Some(e))
        }
        // A version carries its template's `use` access, admins included.
        ResourceSpec::TemplateVersion {
            organization,
            id,
            created_by,
            acl,
        } => {
            let e = acl_entity(
                "TemplateVersion",
                id,
                organization,
                created_by,
                refs("User", acl.use_users.iter().chain(&acl.admin_users)),
                refs("Group", acl.use_groups.iter().chain(&acl.admin_groups)),
            );
            (uid("TemplateVersion", id), Some(e))
        }
        ResourceSpec::File {
            organization,
            id,
            created_by,
        } => (
            uid("File", id),
            Some(in_org(
                "File",
                id,
                organization,
                json!({"created_by": eref("User", created_by)}),
            )),
        ),
        ResourceSpec::ProvisionerKey { organization, id } => (
            uid("ProvisionerKey", id),
            Some(in_org("ProvisionerKey", id, organization, json!({}))),
        ),
        ResourceSpec::ProvisionerDaemon { organization, id } => {
            let known = scene.daemons.iter().any(|d| &d.daemon == id);
            let e =
                (!known).then(|| in_org("ProvisionerDaemon", id, organization, json!({"key": id})));
            (uid("ProvisionerDaemon", id), e)
        }
        ResourceSpec::ProvisionerJob {
            organization,
            id,
            initiator,
        } => (
            uid("ProvisionerJob", id),
            Some(in_org(
                "ProvisionerJob",
                id,
                organization,
                json!({"initiator": eref("User", initiator)}),
            )),
        ),
        ResourceSpec::Workspace {
            organization,
            id,
            owner,
        } => (
            uid("Workspace", id),
            Some(in_org(
                "Workspace",
                id,
                organization,
                json!({"owner": eref("User", owner)}),
            )),
        ),
        ResourceSpec::AuditLog(org) => (
            uid("AuditLog", org),
            Some(in_org("AuditLog", org, org, json!({}))),
        ),
        ResourceSpec::IdpSyncSettings(org) => (
            uid("IdpSyncSettings", org),
            Some(in_org("IdpSyncSettings", org, org, json!({}))),
        ),
    }
}

fn principal_uid(spec: &PrincipalSpec) -> Value {
    match spec {
        PrincipalSpec::User(id) => uid("User", id),
        PrincipalSpec::Daemon(d) => uid("ProvisionerDaemon", &d.daemon),
    }
}

fn euid(v: Value) -> Result<EntityUid, String> {
    EntityUid::from_json(v).map_err(|e| e.to_string())
}

/// The world and the resource as Cedar entities, checked against the schema,
/// with the schema's action entities.
fn reference_entities(
    schema: &Schema,
    world: &[Value],
    extra: Option<Value>,
) -> Result<Entities, String> {
    let all: Vec<Value> = world.iter().cloned().chain(extra).collect();
    Entities::from_json_value(Value::Array(all), Some(schema)).map_err(|e| e.to_string())
}

/// Plain Cedar over every policy and every entity.
fn reference(
    engine: &Engine,
    entities: &Entities,
    principal: &EntityUid,
    action: &str,
    resource: &EntityUid,
    context: &[(String, Vec<String>)],
) -> Result<Decision, String> {
    let action = euid(uid("Action", action))?;
    let context: serde_json::Map<String, Value> =
        context.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let context =
        Context::from_json_value(Value::Object(context), None).map_err(|e| e.to_string())?;
    let request = Request::new(principal.clone(), action, resource.clone(), context, None)
        .map_err(|e| e.to_string())?;
    let response = Authorizer::new().is_authorized(&request, engine.policy_set(), entities);
    let mut reasons: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    reasons.sort();
    Ok(Decision {
        allowed: response.decision() == CedarDecision::Allow,
        reasons,
        errors: response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect(),
    })
}

/// Asks `ask` for each of `actions` of the engine and of the reference; the
/// first difference is an error. Returns the reference's decisions.
fn compare(
    engine: &Engine,
    scene: &Scene,
    world: &[Value],
    ask: &Ask,
    actions: &[&str],
) -> Result<Vec<Decision>, String> {
    let principal = scene.world.principal(&ask.principal)?;
    let resource = scene.world.resource(&ask.resource)?;
    let context = ask.context.iter().fold(RequestContext::new(), |c, (k, v)| {
        c.with_string_set(k, v.iter().cloned())
    });
    let (resource_uid, extra) = resource_entity(scene, &ask.resource);
    let entities = reference_entities(engine.schema(), world, extra)?;
    let principal_uid = euid(principal_uid(&ask.principal))?;
    let resource_uid = euid(resource_uid)?;
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        let got = engine.authorize_named(&principal, action, &resource, &context);
        let want = reference(
            engine,
            &entities,
            &principal_uid,
            action,
            &resource_uid,
            &ask.context,
        )?;
        if got != want {
            return Err(format!(
                "`{action}` by {:?} on {:?} (context {:?}):\n  engine:    {got:?}\n  reference: {want:?}",
                ask.principal, ask.resource, ask.context
            ));
        }
        out.push(want);
    }
    Ok(out)
}

fn sorted_actions(engine: &Engine) -> Vec<&str> {
    let mut actions: Vec<&str> = engine.action_names().collect();
    actions.sort_unstable();
    actions
}

/// Which actions the schema applies to which principal and resource types.
struct Typing<'a> {
    /// Every action, with its principal types and resource types.
    actions: Vec<(&'a str, Vec<String>, Vec<String>)>,
}

impl<'a> Typing<'a> {
    fn of(engine: &'a Engine) -> Self {
        let schema = engine.schema();
        let names = |types: Option<Vec<String>>| types.unwrap_or_default();
        let actions = sorted_actions(engine)
            .into_iter()
            .map(|a| {
                let uid = euid(uid("Action", a)).ok();
                let principals = uid.as_ref().and_then(|u| {
                    schema
                        .principals_for_action(u)
                        .map(|t| t.map(ToString::to_string).collect())
                });
                let resources = uid.as_ref().and_then(|u| {
                    schema
                        .resources_for_action(u)
                        .map(|t| t.map(ToString::to_string).collect())
                });
                (a, names(principals), names(resources))
            })
            .collect();
        Self { actions }
    }

    /// The actions the schema applies to the principal and resource of `ask`.
    fn actions(&self, ask: &Ask) -> Vec<&'a str> {
        let p = match ask.principal {
            PrincipalSpec::User(_) => "User",
            PrincipalSpec::Daemon(_) => "ProvisionerDaemon",
        };
        let r = resource_type(&ask.resource);
        self.actions
            .iter()
            .filter(|(_, ps, rs)| ps.iter().any(|t| t == p) && rs.iter().any(|t| t == r))
            .map(|(a, _, _)| *a)
            .collect()
    }
}

/// The reference holds every action entity the engine knows.
fn check_action_entities(engine: &Engine, entities: &Entities) -> Result<(), PolicyError> {
    for action in engine.action_entities()?.iter() {
        assert!(
            entities.get(&action.uid()).is_some(),
            "the reference lacks {}",
            action.uid()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const MAX_ORGS: usize = 3;

fn pick<T: Clone>(mask: &[bool], items: &[T]) -> Vec<T> {
    items
        .iter()
        .zip(mask.iter().cycle())
        .filter(|(_, on)| **on)
        .map(|(x, _)| x.clone())
        .collect()
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Status, site roles, org roles per organization (if a member), groups.
type UserSeed = (String, Vec<bool>, Vec<Option<Vec<bool>>>, Vec<bool>);

/// A user: status, each site role with probability 1/4, a membership of each
/// organization with probability 3/5 with each org role at 1/4, each group of
/// its organizations at 1/2.
fn user_seed() -> impl Strategy<Value = UserSeed> {
    let roles = |n| proptest::collection::vec(proptest::bool::weighted(0.25), n);
    (
        select(owned(&[
            "active",
            "active",
            "active",
            "active",
            "dormant",
            "suspended",
        ])),
        roles(SITE_ROLES.len()),
        proptest::collection::vec(
            proptest::option::weighted(0.6, roles(ORG_ROLES.len())),
            MAX_ORGS,
        ),
        proptest::collection::vec(any::<bool>(), 4),
    )
}

fn scene() -> impl Strategy<Value = Scene> {
    (
        1..=MAX_ORGS,
        proptest::option::of(any::<Index>()),
        proptest::collection::vec(any::<Index>(), 0..=3),
        proptest::collection::vec(user_seed(), 1..=5),
        proptest::collection::vec(any::<Index>(), 1..=2),
    )
        .prop_map(|(n, default, groups, users, daemons)| {
            let org_ids: Vec<String> = (0..n).map(|i| format!("org-{i}")).collect();
            let default = default.map(|d| d.index(n));
            let organizations = org_ids
                .iter()
                .enumerate()
                .map(|(i, id)| WorldOrganization {
                    id: id.clone(),
                    default: default == Some(i),
                    custom_roles: custom_roles(),
                })
                .collect();
            let groups: Vec<WorldGroup> = groups
                .iter()
                .enumerate()
                .map(|(i, org)| WorldGroup {
                    id: format!("g-{i}"),
                    organization: org.get(&org_ids).clone(),
                })
                .collect();
            let users = users
                .into_iter()
                .enumerate()
                .map(|(i, (status, site, orgs, in_groups))| {
                    let memberships: BTreeMap<String, Vec<String>> = org_ids
                        .iter()
                        .zip(&orgs)
                        .filter_map(|(org, roles)| {
                            Some((org.clone(), pick(roles.as_ref()?, &org_roles_with_custom())))
                        })
                        .collect();
                    let groups = pick(&in_groups, &groups)
                        .into_iter()
                        .filter(|g| memberships.contains_key(&g.organization))
                        .map(|g| g.id)
                        .collect();
                    WorldUser {
                        id: format!("u-{i}"),
                        status,
                        site_roles: pick(&site, &owned(SITE_ROLES)),
                        memberships,
                        groups,
                    }
                })
                .collect();
            let daemons = daemons
                .iter()
                .enumerate()
                .map(|(i, org)| DaemonSpec {
                    daemon: format!("pd-{i}"),
                    organization: org.get(&org_ids).clone(),
                })
                .collect();
            Scene {
                world: World {
                    organizations,
                    groups,
                    users,
                },
                daemons,
            }
        })
}

/// Indices into the scene, turned into one request by [`ask_of`].
type AskSeed = (
    Index,
    bool,
    usize,
    bool,
    bool,
    [Index; 3],
    [u8; 4],
    Vec<String>,
);

/// Resource kinds (see [`ask_of`]), those that more policies read weighted up.
fn kind() -> impl Strategy<Value = usize> {
    let weights = [1, 1, 2, 3, 1, 2, 3, 2, 1, 1, 1, 1, 1, 2, 1, 1];
    let kinds: Vec<usize> = (0..weights.len())
        .flat_map(|k| std::iter::repeat_n(k, weights[k]))
        .collect();
    select(kinds)
}

fn ask_seed() -> impl Strategy<Value = AskSeed> {
    (
        any::<Index>(),
        proptest::bool::weighted(0.3),
        kind(),
        any::<bool>(),
        any::<bool>(),
        any::<[Index; 3]>(),
        any::<[u8; 4]>(),
        prop_oneof![
            Just(Vec::new()),
            proptest::collection::vec(
                select(owned(&[
                    "organization-admin",
                    "owner",
                    "organization-member"
                ])),
                0..3
            ),
        ],
    )
}

fn bits(mask: u8) -> Vec<bool> {
    (0..8).map(|i| mask & (1 << i) != 0).collect()
}

/// One request in `scene`: any principal, any kind of resource (every
/// constructor of the model), objects that name the world's users and groups;
/// with `itself`, the user an object names is the principal (when a user); with
/// `own_org`, the object is in one of the principal's organizations (if any).
fn ask_of(
    scene: &Scene,
    (who, itself, kind, own_org, member_role, [a, b, c], acl, context): AskSeed,
) -> Ask {
    let world = &scene.world;
    let mut principals: Vec<PrincipalSpec> = world
        .users
        .iter()
        .map(|u| PrincipalSpec::User(u.id.clone()))
        .collect();
    principals.extend(scene.daemons.iter().cloned().map(PrincipalSpec::Daemon));
    let orgs: Vec<String> = world.organizations.iter().map(|o| o.id.clone()).collect();
    let users: Vec<String> = world.users.iter().map(|u| u.id.clone()).collect();
    let groups: Vec<String> = world
        .groups
        .iter()
        .map(|g| g.id.clone())
        .chain(orgs.iter().cloned())
        .collect();
    let principal = who.get(&principals).clone();
    let principal_orgs: Vec<String> = match &principal {
        PrincipalSpec::User(id) => world
            .users
            .iter()
            .filter(|u| &u.id == id)
            .flat_map(|u| u.memberships.keys().cloned())
            .collect(),
        PrincipalSpec::Daemon(d) => vec![d.organization.clone()],
    };
    let org = if own_org && !principal_orgs.is_empty() {
        a.get(&principal_orgs).clone()
    } else {
        a.get(&orgs).clone()
    };
    let user = match &principal {
        PrincipalSpec::User(id) if itself => id.clone(),
        _ => b.get(&users).clone(),
    };
    let acl = TemplateAcl {
        use_users: pick(&bits(acl[0]), &users),
        use_groups: pick(&bits(acl[1]), &groups),
        admin_users: pick(&bits(acl[2]), &users),
        admin_groups: pick(&bits(acl[3]), &groups),
    };
    let resource = match kind {
        0 => ResourceSpec::Site(true),
        1 => ResourceSpec::Organization(org),
        2 => ResourceSpec::User(user),
        3 => ResourceSpec::Member {
            organization: org,
            user,
        },
        4 => ResourceSpec::Group(c.get(&groups).clone()),
        5 => ResourceSpec::SiteRole((*c.get(SITE_ROLES)).to_owned()),
        // Half of the time the implicit `organization-member`, which every
        // path that adds a member grants.
        6 => ResourceSpec::OrgRole {
            organization: org,
            role: if member_role {
                "organization-member".to_owned()
            } else {
                (*c.get(ORG_ROLES)).to_owned()
            },
        },
        7 => ResourceSpec::Template {
            organization: org,
            id: "t-1".to_owned(),
            created_by: user,
            acl,
        },
        8 => ResourceSpec::TemplateVersion {
            organization: org,
            id: "v-1".to_owned(),
            created_by: user,
            acl,
        },
        9 => ResourceSpec::File {
            organization: org,
            id: "f-1".to_owned(),
            created_by: user,
        },
        10 => ResourceSpec::ProvisionerKey {
            organization: org,
            id: "k-1".to_owned(),
        },
        11 => {
            // A daemon of the world (in its organization) or a new one.
            let mut daemons = scene.daemons.clone();
            daemons.push(DaemonSpec {
                daemon: "pd-new".to_owned(),
                organization: org,
            });
            let d = c.get(&daemons).clone();
            ResourceSpec::ProvisionerDaemon {
                organization: d.organization,
                id: d.daemon,
            }
        }
        12 => ResourceSpec::ProvisionerJob {
            organization: org,
            id: "j-1".to_owned(),
            initiator: user,
        },
        13 => ResourceSpec::Workspace {
            organization: org,
            id: "w-1".to_owned(),
            owner: user,
        },
        14 => ResourceSpec::AuditLog(org),
        _ => ResourceSpec::IdpSyncSettings(org),
    };
    Ask {
        principal,
        resource,
        context: if context.is_empty() {
            Vec::new()
        } else {
            vec![("roles".to_owned(), context)]
        },
    }
}

/// A scene and its requests, each with a few actions to ask besides those the
/// schema applies to it (so every action, role bundles included, is also asked
/// about principals and resources it does not apply to).
fn scene_and_asks() -> impl Strategy<Value = (Scene, Vec<(Ask, [Index; 3])>)> {
    (
        scene(),
        proptest::collection::vec((ask_seed(), any::<[Index; 3]>()), 1..=16),
    )
        .prop_map(|(scene, seeds)| {
            let asks = seeds
                .into_iter()
                .map(|(s, extra)| (ask_of(&scene, s), extra))
                .collect();
            (scene, asks)
        })
}

/// A bounded run with a fixed seed, so CI sees the same cases every time;
/// `PROPTEST_CASES` / `PROPTEST_RNG_SEED` explore further.
fn config() -> Config {
    let env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            192
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            env.rng_seed
        } else {
            RngSeed::Fixed(0x006f_7267_7379_6e63)
        },
        failure_persistence: None,
        max_shrink_iters: 256,
        ..env
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// For random worlds and requests, every action of the schema (role bundles
/// included) decides exactly as plain Cedar over everything: allowed, reasons
/// and errors. The run must see every policy decide at least once, or a policy
/// lost from a slice could go unnoticed.
#[test]
fn engine_decides_as_plain_cedar_over_everything() -> Result<(), PolicyError> {
    let engine = Engine::builtin()?;
    let all_actions = sorted_actions(&engine);
    let typing = Typing::of(&engine);
    let asked: RefCell<BTreeSet<&str>> = RefCell::new(BTreeSet::new());
    let seen: RefCell<BTreeMap<String, usize>> = RefCell::new(BTreeMap::new());
    let compared = RefCell::new(0usize);
    let mut runner = TestRunner::new(config());
    let result = runner.run(&scene_and_asks(), |(scene, asks)| {
        let problems = scene.world.problems();
        prop_assert!(problems.is_empty(), "generated world: {problems:?}");
        let world = world_entities(&scene);
        for (ask, extra) in &asks {
            let mut actions = typing.actions(ask);
            actions.extend(extra.iter().map(|i| *i.get(&all_actions)));
            actions.sort_unstable();
            actions.dedup();
            asked.borrow_mut().extend(&actions);
            let decisions =
                compare(&engine, &scene, &world, ask, &actions).map_err(TestCaseError::fail)?;
            *compared.borrow_mut() += decisions.len();
            for reason in decisions.into_iter().flat_map(|d| d.reasons) {
                *seen.borrow_mut().entry(reason).or_default() += 1;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let all: BTreeSet<String> = engine
        .policy_set()
        .policies()
        .map(|p| p.id().to_string())
        .collect();
    let asked = asked.into_inner();
    assert_eq!(
        asked.len(),
        all_actions.len(),
        "every action of the schema is asked"
    );
    let seen = seen.into_inner();
    eprintln!("decisions per policy: {seen:?}");
    let missed: Vec<&String> = all.iter().filter(|p| !seen.contains_key(*p)).collect();
    assert!(
        missed.is_empty(),
        "no generated request was decided by {missed:?}: the generators must reach every policy"
    );
    let compared = compared.into_inner();
    assert!(compared > 5_000, "{compared}");
    Ok(())
}

/// A fixed world with every kind of principal and resource: every request the
/// schema allows in it (each principal, each resource, each action that applies
/// to both) decides as plain Cedar over everything.
#[test]
fn fixed_world_decides_as_plain_cedar_over_everything() -> Result<(), PolicyError> {
    let engine = Engine::builtin()?;
    let scene = fixed_scene();
    assert!(
        scene.world.problems().is_empty(),
        "{:?}",
        scene.world.problems()
    );
    let world = world_entities(&scene);
    check_action_entities(
        &engine,
        &reference_entities(engine.schema(), &world, None).map_err(PolicyError::Request)?,
    )?;
    let typing = Typing::of(&engine);
    let mut compared = 0;
    let mut reasons = BTreeSet::new();
    for principal in fixed_principals(&scene) {
        for resource in fixed_resources(&scene) {
            let ask = Ask {
                principal: principal.clone(),
                resource,
                context: Vec::new(),
            };
            let typed = typing.actions(&ask);
            if typed.is_empty() {
                continue;
            }
            let decisions =
                compare(&engine, &scene, &world, &ask, &typed).unwrap_or_else(|e| panic!("{e}"));
            compared += decisions.len();
            reasons.extend(decisions.into_iter().flat_map(|d| d.reasons));
        }
    }
    assert!(compared > 4_000, "{compared}");
    let all: BTreeSet<String> = engine
        .policy_set()
        .policies()
        .map(|p| p.id().to_string())
        .collect();
    assert_eq!(
        reasons, all,
        "every policy decides some request of the world"
    );
    Ok(())
}

fn resource_type(spec: &ResourceSpec) -> &'static str {
    match spec {
        ResourceSpec::Site(_) => "Site",
        ResourceSpec::Organization(_) => "Organization",
        ResourceSpec::User(_) => "User",
        ResourceSpec::Member { .. } => "Member",
        ResourceSpec::Group(_) => "Group",
        ResourceSpec::SiteRole(_) => "Role",
        ResourceSpec::OrgRole { .. } => "OrganizationRole",
        ResourceSpec::Template { .. } => "Template",
        ResourceSpec::TemplateVersion { .. } => "TemplateVersion",
        ResourceSpec::File { .. } => "File",
        ResourceSpec::ProvisionerKey { .. } => "ProvisionerKey",
        ResourceSpec::ProvisionerDaemon { .. } => "ProvisionerDaemon",
        ResourceSpec::ProvisionerJob { .. } => "ProvisionerJob",
        ResourceSpec::Workspace { .. } => "Workspace",
        ResourceSpec::AuditLog(_) => "AuditLog",
        ResourceSpec::IdpSyncSettings(_) => "IdpSyncSettings",
    }
}

fn fixed_user(
    id: &str,
    status: &str,
    site: &[&str],
    orgs: &[(&str, &[&str])],
    groups: &[&str],
) -> WorldUser {
    WorldUser {
        id: id.to_owned(),
        status: status.to_owned(),
        site_roles: owned(site),
        memberships: orgs
            .iter()
            .map(|(o, r)| ((*o).to_owned(), owned(r)))
            .collect(),
        groups: owned(groups),
    }
}

/// Users of every kind of authority (site roles, org roles, bans, suspended and
/// dormant), in three organizations, one of them the default.
fn fixed_scene() -> Scene {
    let mut scene = fixed_scene_builtin();
    scene.world.users.push(fixed_user(
        "c-all",
        "active",
        &[],
        &[("org-d", &[]), ("org-a", &["c-all"])],
        &[],
    ));
    scene.world.users.push(fixed_user(
        "c-none",
        "active",
        &[],
        &[("org-d", &[]), ("org-a", &["organization-admin", "c-none"])],
        &[],
    ));
    scene
}

/// Every organization's custom roles: `c-all` carries every action a custom
/// role may carry, `c-none` negates every one.
fn custom_roles() -> BTreeMap<String, Vec<orgsync_policy::RolePermission>> {
    let actions = Engine::builtin().unwrap().custom_role_actions().to_vec();
    let perms = |negate: bool| {
        actions
            .iter()
            .map(|a| {
                let (resource_type, action) = a.split_once(':').unwrap();
                orgsync_policy::RolePermission {
                    resource_type: resource_type.to_owned(),
                    action: action.to_owned(),
                    negate,
                }
            })
            .collect()
    };
    BTreeMap::from([
        ("c-all".to_owned(), perms(false)),
        ("c-none".to_owned(), perms(true)),
    ])
}

/// The built-in org roles and the custom roles of [`custom_roles`].
fn org_roles_with_custom() -> Vec<String> {
    let mut roles = owned(ORG_ROLES);
    roles.extend(["c-all".to_owned(), "c-none".to_owned()]);
    roles
}

fn fixed_scene_builtin() -> Scene {
    let org = |id: &str, default| WorldOrganization {
        id: id.to_owned(),
        default,
        custom_roles: custom_roles(),
    };
    let group = |id: &str, o: &str| WorldGroup {
        id: id.to_owned(),
        organization: o.to_owned(),
    };
    Scene {
        world: World {
            organizations: vec![org("org-a", false), org("org-b", false), org("org-d", true)],
            groups: vec![group("g-a", "org-a"), group("g-b", "org-b")],
            users: vec![
                fixed_user(
                    "plain",
                    "active",
                    &[],
                    &[("org-d", &[]), ("org-a", &[])],
                    &["g-a"],
                ),
                fixed_user("owner", "active", &["owner"], &[("org-d", &[])], &[]),
                fixed_user(
                    "susp",
                    "suspended",
                    &["owner"],
                    &[("org-d", &[]), ("org-a", &[])],
                    &[],
                ),
                fixed_user(
                    "aud",
                    "active",
                    &["auditor", "template-admin"],
                    &[("org-d", &[])],
                    &[],
                ),
                fixed_user(
                    "ua",
                    "active",
                    &["user-admin"],
                    &[("org-d", &[]), ("org-b", &[])],
                    &["g-b"],
                ),
                fixed_user(
                    "admin",
                    "active",
                    &[],
                    &[("org-d", &[]), ("org-a", &["organization-admin"])],
                    &[],
                ),
                fixed_user(
                    "uadm",
                    "active",
                    &[],
                    &[("org-a", &["organization-user-admin"]), ("org-b", &[])],
                    &["g-a", "g-b"],
                ),
                fixed_user(
                    "tadm",
                    "active",
                    &[],
                    &[(
                        "org-a",
                        &["organization-template-admin", "organization-auditor"],
                    )],
                    &[],
                ),
                fixed_user(
                    "ban",
                    "active",
                    &["owner"],
                    &[("org-a", &["organization-workspace-creation-ban"])],
                    &[],
                ),
                fixed_user(
                    "ban2",
                    "dormant",
                    &[],
                    &[(
                        "org-a",
                        &["organization-workspace-creation-ban", "organization-admin"],
                    )],
                    &[],
                ),
                fixed_user("other-owner", "active", &["owner"], &[], &[]),
            ],
        },
        daemons: vec![DaemonSpec {
            daemon: "pd-a".to_owned(),
            organization: "org-a".to_owned(),
        }],
    }
}

fn fixed_principals(scene: &Scene) -> Vec<PrincipalSpec> {
    scene
        .world
        .users
        .iter()
        .map(|u| PrincipalSpec::User(u.id.clone()))
        .chain(scene.daemons.iter().cloned().map(PrincipalSpec::Daemon))
        .collect()
}

fn fixed_resources(scene: &Scene) -> Vec<ResourceSpec> {
    let world = &scene.world;
    let users: Vec<String> = world.users.iter().map(|u| u.id.clone()).collect();
    let acl = TemplateAcl {
        use_users: owned(&["plain"]),
        use_groups: owned(&["org-a", "g-a"]),
        admin_users: owned(&["tadm"]),
        admin_groups: owned(&["g-b"]),
    };
    let mut out = vec![ResourceSpec::Site(true)];
    out.extend(users.iter().cloned().map(ResourceSpec::User));
    out.extend(
        SITE_ROLES
            .iter()
            .map(|r| ResourceSpec::SiteRole((*r).to_owned())),
    );
    out.extend(
        world
            .groups
            .iter()
            .map(|g| ResourceSpec::Group(g.id.clone())),
    );
    for org in world.organizations.iter().map(|o| o.id.clone()) {
        let s = |x: &str| x.to_owned();
        out.push(ResourceSpec::Organization(org.clone()));
        out.push(ResourceSpec::Group(org.clone()));
        out.push(ResourceSpec::AuditLog(org.clone()));
        out.push(ResourceSpec::IdpSyncSettings(org.clone()));
        out.extend(users.iter().map(|u| ResourceSpec::Member {
            organization: org.clone(),
            user: u.clone(),
        }));
        out.extend(ORG_ROLES.iter().map(|r| ResourceSpec::OrgRole {
            organization: org.clone(),
            role: s(r),
        }));
        for (id, acl) in [("t1", acl.clone()), ("t2", TemplateAcl::default())] {
            out.push(ResourceSpec::Template {
                organization: org.clone(),
                id: s(id),
                created_by: s("tadm"),
                acl,
            });
        }
        out.push(ResourceSpec::TemplateVersion {
            organization: org.clone(),
            id: s("v1"),
            created_by: s("tadm"),
            acl: acl.clone(),
        });
        out.push(ResourceSpec::File {
            organization: org.clone(),
            id: s("f1"),
            created_by: s("tadm"),
        });
        out.push(ResourceSpec::ProvisionerKey {
            organization: org.clone(),
            id: s("k1"),
        });
        let daemon = if org == "org-a" { "pd-a" } else { "pd-other" };
        out.push(ResourceSpec::ProvisionerDaemon {
            organization: org.clone(),
            id: s(daemon),
        });
        out.push(ResourceSpec::ProvisionerJob {
            organization: org.clone(),
            id: s("j1"),
            initiator: s("plain"),
        });
        for (id, owner) in [("w1", "plain"), ("w2", "ban"), ("w3", "admin")] {
            out.push(ResourceSpec::Workspace {
                organization: org.clone(),
                id: s(id),
                owner: s(owner),
            });
        }
    }
    out
}
