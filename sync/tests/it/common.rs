//! Fixtures: a small world and helpers.

use std::collections::{BTreeMap, BTreeSet};

use orgsync_sync::{GroupInfo, OrgInfo, Plan, Settings, UserState, World};
use serde_json::{Map, Value};

pub const CODER: &str = "00000000-0000-4000-8000-000000000001";
pub const ENG: &str = "00000000-0000-4000-8000-000000000002";
pub const OPS: &str = "00000000-0000-4000-8000-000000000003";

pub const BACKEND: &str = "10000000-0000-4000-8000-000000000001";
pub const FRONTEND: &str = "10000000-0000-4000-8000-000000000002";
pub const ONCALL: &str = "10000000-0000-4000-8000-000000000003";
pub const ADMINS: &str = "10000000-0000-4000-8000-000000000004";

pub const ORG_ROLES: [&str; 6] = [
    "organization-admin",
    "organization-member",
    "organization-auditor",
    "organization-user-admin",
    "organization-template-admin",
    "organization-workspace-creation-ban",
];
pub const SITE_ROLES: [&str; 5] = ["owner", "member", "auditor", "template-admin", "user-admin"];

pub fn org(id: &str, name: &str, is_default: bool) -> OrgInfo {
    OrgInfo {
        id: id.to_owned(),
        name: name.to_owned(),
        is_default,
        custom_roles: Vec::new(),
    }
}

pub fn group(id: &str, org: &str, name: &str) -> GroupInfo {
    GroupInfo {
        id: id.to_owned(),
        organization_id: org.to_owned(),
        name: name.to_owned(),
    }
}

/// coder (default), engineering {backend, frontend}, ops {oncall}; coder has {admins}.
pub fn world() -> World {
    World {
        orgs: vec![
            org(CODER, "coder", true),
            org(ENG, "engineering", false),
            org(OPS, "ops", false),
        ],
        groups: vec![
            group(BACKEND, ENG, "backend"),
            group(FRONTEND, ENG, "frontend"),
            group(ONCALL, OPS, "oncall"),
            group(ADMINS, CODER, "admins"),
        ],
        org_roles: ORG_ROLES.iter().map(|s| (*s).to_owned()).collect(),
        site_roles: SITE_ROLES.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("claims must be an object, got {other}"),
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub fn mapping(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), strings(v)))
        .collect()
}

/// A user in `orgs`, `groups`, with `roles` per org.
pub fn user(orgs: &[&str], groups: &[&str], roles: &[(&str, &[&str])]) -> UserState {
    UserState {
        orgs: set(orgs),
        groups: set(groups),
        org_roles: roles
            .iter()
            .map(|(o, r)| ((*o).to_owned(), set(r)))
            .collect(),
        site_roles: BTreeSet::new(),
    }
}

/// Names in a list of changes, for short assertions.
pub fn names<T: HasName>(changes: &[T]) -> Vec<&str> {
    changes.iter().map(HasName::name).collect()
}

pub trait HasName {
    fn name(&self) -> &str;
}

impl HasName for orgsync_sync::OrganizationChange {
    fn name(&self) -> &str {
        &self.name
    }
}
impl HasName for orgsync_sync::GroupChange {
    fn name(&self) -> &str {
        &self.name
    }
}
impl HasName for orgsync_sync::RoleChange {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Plans, applies and plans again: the second plan must change nothing.
pub fn assert_idempotent(
    settings: &Settings,
    claims: &Map<String, Value>,
    world: &World,
    user: &UserState,
) -> Plan {
    let first = orgsync_sync::plan(settings, claims, world, user);
    let (user2, world2) = orgsync_sync::apply(&first, user, world);
    let second = orgsync_sync::plan(settings, claims, &world2, &user2);
    assert!(
        !second.has_changes(),
        "second plan has changes: {}",
        serde_json::to_string_pretty(&second).unwrap()
    );
    first
}
