//! Custom organization roles are confined by construction: whatever
//! permissions a role names (any action of the schema, negated or not), every
//! Allow it adds is for a resource of its own organization and for an action
//! of the schema's custom-role group, never a site-wide one.

use orgsync_policy::{
    Engine, OrgMembership, OrgRef, Principal, RequestContext, Resource, RolePermission, TemplateAcl,
};
use proptest::prelude::*;

const ORGS: [&str; 3] = ["org-0", "org-1", "org-2"];
const BUILT_IN: [&str; 4] = [
    "organization-auditor",
    "organization-user-admin",
    "organization-template-admin",
    "organization-workspace-creation-ban",
];

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::builtin().unwrap())
}

fn org(i: usize) -> OrgRef {
    OrgRef::new(ORGS[i], i == 0)
}

/// Every kind of resource, in organization `i` (and the site-wide ones).
fn resources(i: usize, other_user: &str) -> Vec<Resource> {
    let o = org(i);
    let acl = TemplateAcl::default();
    vec![
        Resource::organization(&o),
        Resource::member(&o, other_user),
        Resource::group(&o, &format!("grp-{i}")),
        Resource::org_role(&o, "organization-admin"),
        Resource::template(&o, &format!("tpl-{i}"), other_user, &acl),
        Resource::template_version(&o, &format!("tv-{i}"), other_user, &acl),
        Resource::file(&o, &format!("file-{i}"), other_user),
        Resource::provisioner_key(&o, &format!("key-{i}")),
        Resource::provisioner_daemon(&o, &format!("d-{i}")),
        Resource::provisioner_job(&o, &format!("job-{i}"), other_user),
        Resource::workspace(&o, &format!("ws-{i}"), other_user),
        Resource::audit_log(&o),
        Resource::idpsync_settings(&o),
    ]
}

fn site_resources() -> Vec<Resource> {
    vec![
        Resource::site(),
        Resource::site_role("owner"),
        Resource::user("other", "active"),
    ]
}

/// Every action of the schema but the bundles.
fn actions() -> Vec<String> {
    let mut a: Vec<String> = engine()
        .action_names()
        .filter(|a| !a.starts_with("bundle:"))
        .map(str::to_owned)
        .collect();
    a.sort();
    a
}

fn permission(action: &str, negate: bool) -> RolePermission {
    let (resource_type, verb) = action.split_once(':').unwrap();
    RolePermission {
        resource_type: resource_type.to_owned(),
        action: verb.to_owned(),
        negate,
    }
}

prop_compose! {
    /// A custom role of org `role_org`: any actions of the schema, each
    /// granted or negated, held by a user who is also a member of other orgs
    /// with built-in roles.
    fn scene()(
        role_org in 0..ORGS.len(),
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..12),
        memberships in prop::collection::vec(prop::option::of(prop::sample::subsequence(BUILT_IN.to_vec(), 0..2)), ORGS.len()),
    ) -> (usize, Vec<RolePermission>, Vec<Option<Vec<&'static str>>>) {
        let all = actions();
        let perms = picks.iter().map(|(i, neg)| permission(i.get(all.as_slice()).as_str(), *neg)).collect();
        (role_org, perms, memberships)
    }
}

fn principal(
    role_org: usize,
    permissions: &[RolePermission],
    memberships: &[Option<Vec<&str>>],
) -> Principal {
    Principal {
        id: "holder".to_owned(),
        status: "active".to_owned(),
        site_roles: Vec::new(),
        memberships: memberships
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let builtin = if i == role_org {
                    m.clone().unwrap_or_default()
                } else {
                    m.clone()?
                };
                let mut roles: Vec<String> = builtin.iter().map(|r| (*r).to_owned()).collect();
                let mut permissions_here = Vec::new();
                if i == role_org {
                    roles.push("custom".to_owned());
                    permissions_here = permissions.to_vec();
                }
                Some(OrgMembership {
                    org_id: ORGS[i].to_owned(),
                    roles,
                    permissions: permissions_here,
                })
            })
            .collect(),
        groups: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_allow_a_custom_role_adds_is_in_its_org((role_org, perms, memberships) in scene()) {
        let engine = engine();
        let with = principal(role_org, &perms, &memberships).prepare();
        // The same user holding the role's name but no permissions.
        let without = principal(role_org, &[], &memberships).prepare();
        let grantable = engine.custom_role_actions();
        let mut all_resources = site_resources();
        for i in 0..ORGS.len() {
            all_resources.extend(resources(i, "other"));
        }
        let ctx = RequestContext::new();
        for action in actions() {
            for resource in &all_resources {
                let a = engine.authorize_named(&with, &action, resource, &ctx);
                let b = engine.authorize_named(&without, &action, resource, &ctx);
                if a.allowed && !b.allowed {
                    prop_assert_eq!(
                        resource.org().map(|o| o.id.as_str()),
                        Some(ORGS[role_org]),
                        "{} on {:?} allowed outside the role's org by {:?}", action, resource.kind(), a.reasons
                    );
                    prop_assert!(grantable.contains(&action), "{} is not a custom-role action", action);
                    prop_assert!(perms.iter().any(|p| !p.negate && p.action_name() == action));
                }
                // Negation only takes away, and only in the role's org.
                if b.allowed && !a.allowed {
                    prop_assert_eq!(resource.org().map(|o| o.id.as_str()), Some(ORGS[role_org]));
                    prop_assert!(perms.iter().any(|p| p.negate && p.action_name() == action));
                }
            }
        }
    }
}

/// Every action of the custom-role group has its permit and its negating
/// forbid, and no other action has either.
#[test]
fn the_custom_role_policies_match_the_schema_group() {
    let engine = engine();
    let mut expected: Vec<String> = engine
        .custom_role_actions()
        .iter()
        .flat_map(|a| {
            [
                format!("custom-role.{a}"),
                format!("custom-role.negate.{a}"),
            ]
        })
        .collect();
    expected.sort();
    let mut found: Vec<String> = engine
        .policies()
        .iter()
        .filter(|p| p.id.starts_with("custom-role."))
        .map(|p| p.id.clone())
        .collect();
    found.sort();
    assert!(!expected.is_empty());
    assert_eq!(found, expected);
    for site in [
        "user:list",
        "organization:create",
        "org_role:assign",
        "organization:delete",
        "policy:reload",
    ] {
        assert!(
            !engine.custom_role_actions().iter().any(|a| a == site),
            "{site}"
        );
    }
}
