//! Property tests: the planner against a naive reference model of SPEC §3,
//! and idempotence (planning again on the applied state changes nothing).
//!
//! The model is written from the spec (and the crate's documented decisions)
//! without the planner's code: linear scans, no indexes, no reasons.
#![allow(
    clippy::collapsible_if,
    reason = "the model reads like the spec: one condition per rule"
)]

use std::collections::{BTreeMap, BTreeSet};

use orgsync_sync::{
    GroupInfo, GroupSyncSettings, OrgInfo, OrganizationSyncSettings, RoleSyncSettings, Settings,
    SiteRoleSyncSettings, UserState, World, apply, plan,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use regex::Regex;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// What the model predicts: refusal, or the final state by name.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    refused: bool,
    orgs: Vec<String>,
    groups: BTreeMap<String, Vec<String>>,
    roles: BTreeMap<String, Vec<String>>,
    site_roles: Vec<String>,
}

/// `None` when the claim is malformed.
fn model_values(claims: &Map<String, Value>, field: &str) -> Option<Vec<String>> {
    match claims.get(field) {
        None | Some(Value::Null) => Some(vec![]),
        Some(Value::String(s)) if s.contains(',') => None,
        Some(Value::String(s)) if s.is_empty() => Some(vec![]),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => {
            let mut out = vec![];
            for item in items {
                match item {
                    Value::String(s) if s.is_empty() => {}
                    Value::String(s) => out.push(s.clone()),
                    _ => return None,
                }
            }
            Some(out)
        }
        Some(_) => None,
    }
}

fn on(field: &Option<String>) -> Option<&str> {
    match field.as_deref() {
        None | Some("") => None,
        Some(f) => Some(f),
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn creatable(name: &str) -> bool {
    let slug = Regex::new("^[a-z0-9](-?[a-z0-9])*$").unwrap();
    let uuid =
        Regex::new("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
            .unwrap();
    slug.is_match(name) && name.len() <= 64 && !uuid.is_match(name) && name != "everyone"
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn model(s: &Settings, claims: &Map<String, Value>, w: &World, u: &UserState) -> Outcome {
    let refused = || Outcome {
        refused: true,
        orgs: vec![],
        groups: BTreeMap::new(),
        roles: BTreeMap::new(),
        site_roles: vec![],
    };
    if let Some(f) = on(&s.organization.field) {
        if model_values(claims, f).is_none() {
            return refused();
        }
    }
    if let Some(f) = on(&s.site_roles.field) {
        if model_values(claims, f).is_none() {
            return refused();
        }
    }

    // 1. Organizations (ids).
    let org_ids: Vec<String> = match on(&s.organization.field) {
        None => u.orgs.iter().cloned().collect(),
        Some(f) => {
            let mut ids = vec![];
            if s.organization.organization_assign_default {
                if let Some(d) = w.orgs.iter().find(|o| o.is_default) {
                    ids.push(d.id.clone());
                }
            }
            for v in model_values(claims, f).unwrap() {
                for t in s.organization.mapping.get(&v).cloned().unwrap_or_default() {
                    let found = w
                        .orgs
                        .iter()
                        .find(|o| o.id == t)
                        .or_else(|| w.orgs.iter().find(|o| same_name(&o.name, &t)));
                    if let Some(o) = found {
                        ids.push(o.id.clone());
                    }
                }
            }
            sorted(ids)
        }
    };
    let org_name = |id: &str| {
        w.orgs
            .iter()
            .find(|o| o.id == id)
            .map_or(id.to_owned(), |o| o.name.clone())
    };
    let orgs = sorted(org_ids.iter().map(|id| org_name(id)).collect());

    // 2. Groups and 3. roles, per organization the user ends up in.
    let mut groups = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for org in w.orgs.iter().filter(|o| org_ids.contains(&o.id)) {
        let current: Vec<String> = w
            .groups
            .iter()
            .filter(|g| g.organization_id == org.id && u.groups.contains(&g.id))
            .map(|g| g.name.clone())
            .collect();
        let mut names = current.clone();
        if let Some(gs) = s.groups.get(&org.id) {
            if let Some(f) = on(&gs.field) {
                let values = model_values(claims, f);
                let regex = gs.regex_filter.as_ref().map(|r| Regex::new(r));
                let regex_ok = !matches!(regex, Some(Err(_)));
                if let (Some(values), true) = (values, regex_ok) {
                    names = vec![];
                    for v in values {
                        if let Some(Ok(r)) = &regex {
                            if !r.is_match(&v) {
                                continue;
                            }
                        }
                        let in_org = |g: &&GroupInfo| g.organization_id == org.id;
                        if let Some(targets) = gs.mapping.get(&v) {
                            for t in targets {
                                let g =
                                    w.groups.iter().filter(in_org).find(|g| g.id == *t).or_else(
                                        || {
                                            w.groups
                                                .iter()
                                                .filter(in_org)
                                                .find(|g| same_name(&g.name, t))
                                        },
                                    );
                                if let Some(g) = g {
                                    names.push(g.name.clone());
                                }
                            }
                        } else if let Some(g) = w
                            .groups
                            .iter()
                            .filter(in_org)
                            .find(|g| same_name(&g.name, &v))
                        {
                            names.push(g.name.clone());
                        } else if gs.auto_create_missing_groups && creatable(&v.to_lowercase()) {
                            names.push(v.to_lowercase());
                        }
                    }
                }
            }
        }
        let mut result = vec!["Everyone".to_owned()];
        result.extend(sorted(names));
        groups.insert(org.name.clone(), result);

        let mut org_roles: Vec<String> = u
            .org_roles
            .get(&org.id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r != "organization-member")
            .collect();
        if let Some(rs) = s.roles.get(&org.id) {
            if let Some(f) = on(&rs.field) {
                if let Some(values) = model_values(claims, f) {
                    org_roles = vec![];
                    for v in values {
                        let given = rs.mapping.get(&v).cloned().unwrap_or(vec![v]);
                        for r in given {
                            if r != "organization-member" && w.org_roles.contains(&r) {
                                org_roles.push(r);
                            }
                        }
                    }
                }
            }
        }
        roles.insert(org.name.clone(), sorted(org_roles));
    }

    let mut site_roles: Vec<String> = u.site_roles.iter().cloned().collect();
    if let Some(f) = on(&s.site_roles.field) {
        site_roles = vec![];
        let mut given = s.site_roles.default_roles.clone();
        for v in model_values(claims, f).unwrap() {
            given.extend(s.site_roles.mapping.get(&v).cloned().unwrap_or(vec![v]));
        }
        for r in given {
            if w.site_roles.contains(&r) {
                site_roles.push(r);
            }
        }
    }
    site_roles.push("member".to_owned());

    Outcome {
        refused: false,
        orgs,
        groups,
        roles,
        site_roles: sorted(site_roles),
    }
}

/// The planner's outcome in the model's terms.
fn outcome(p: &orgsync_sync::Plan) -> Outcome {
    let kept = &p.organizations.result_ids;
    Outcome {
        refused: p.is_refused(),
        orgs: p.organizations.result.clone(),
        groups: p
            .groups
            .iter()
            .filter(|(_, g)| kept.contains(&g.organization_id))
            .map(|(k, g)| (k.clone(), g.result.clone()))
            .collect(),
        roles: p
            .roles
            .iter()
            .filter(|(_, r)| r.organization_id.as_ref().is_some_and(|o| kept.contains(o)))
            .map(|(k, r)| (k.clone(), r.result.clone()))
            .collect(),
        site_roles: p.site_roles.result.clone(),
    }
}

// ---------------------------------------------------------------------------
// Generators: small pools so that names, ids and claim values collide often.
// ---------------------------------------------------------------------------

const ORG_IDS: [&str; 4] = ["o0", "o1", "o2", "o3"];
const ORG_NAMES: [&str; 4] = ["coder", "eng", "ops", "data"];
const GROUP_NAMES: [&str; 5] = ["backend", "frontend", "infra", "admins", "eng"];
const ORG_ROLES: [&str; 4] = [
    "organization-admin",
    "organization-member",
    "organization-auditor",
    "organization-user-admin",
];
const SITE_ROLES: [&str; 4] = ["owner", "member", "auditor", "template-admin"];

fn group_id(org: usize, name: usize) -> String {
    format!("g{org}-{name}")
}

/// Claim values per domain: names and case variants, ids, junk.
const ORG_VALUES: [&str; 7] = ["eng", "ENG", "ops", "data", "coder", "x-1", "o1"];
const GROUP_VALUES: [&str; 12] = [
    "backend", "Backend", "frontend", "infra", "eng", "new-team", "New Team", "Everyone",
    "everyone", "g1-0", "x-1", "bogus",
];
const ROLE_VALUES: [&str; 9] = [
    "organization-admin",
    "organization-member",
    "organization-auditor",
    "owner",
    "auditor",
    "member",
    "template-admin",
    "lead",
    "bogus",
];

fn value(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(pool).prop_map(str::to_owned)
}

fn claim(pool: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        8 => prop::collection::vec(value(pool), 0..6).prop_map(|v| Some(json!(v))),
        2 => value(pool).prop_map(|v| Some(json!(v))),
        2 => Just(None),
        1 => prop_oneof![Just(Some(Value::Null)), Just(Some(json!("")))],
        1 => prop_oneof![
            Just(Some(json!("eng,ops"))),
            Just(Some(json!(["eng", 3]))),
            Just(Some(json!(42))),
            Just(Some(json!({"eng": true}))),
        ],
    ]
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    (
        claim(&GROUP_VALUES),
        claim(&ROLE_VALUES),
        claim(&ORG_VALUES),
    )
        .prop_map(|(g, r, o)| {
            let mut m = Map::new();
            for (k, v) in [("groups", g), ("roles", r), ("orgs", o)] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            m
        })
}

/// A claim field: mostly `main`, sometimes another claim, off, or `""`.
fn field(main: &'static str, other: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        6 => Just(Some(main.to_owned())),
        1 => Just(Some(other.to_owned())),
        1 => Just(Some(String::new())),
    ]
}

fn mapping(
    keys: Vec<&'static str>,
    targets: Vec<&'static str>,
) -> impl Strategy<Value = BTreeMap<String, Vec<String>>> {
    prop::collection::btree_map(
        select(keys).prop_map(str::to_owned),
        prop::collection::vec(select(targets).prop_map(str::to_owned), 0..3),
        0..4,
    )
}

fn org_settings() -> impl Strategy<Value = OrganizationSyncSettings> {
    (
        prop_oneof![2 => Just(None), 1 => field("orgs", "groups")],
        mapping(
            vec!["eng", "ops", "data", "x-1", "o1"],
            vec![
                "o1", "o2", "o3", "eng", "OPS", "data", "coder", "nowhere", "o9",
            ],
        ),
        any::<bool>(),
    )
        .prop_map(
            |(field, mapping, organization_assign_default)| OrganizationSyncSettings {
                field,
                mapping,
                organization_assign_default,
            },
        )
}

fn group_settings() -> impl Strategy<Value = GroupSyncSettings> {
    (
        field("groups", "orgs"),
        mapping(
            vec!["eng", "x-1", "backend", "bogus", "New Team"],
            vec![
                "backend", "FRONTEND", "infra", "g1-0", "g2-1", "o1", "o2", "Everyone", "nope",
            ],
        ),
        prop::option::weighted(
            0.4,
            select(vec!["^b", "end$", "(?i)^eng", "zzz", "(", "", "-"]),
        ),
        any::<bool>(),
    )
        .prop_map(
            |(field, mapping, regex, auto_create_missing_groups)| GroupSyncSettings {
                field,
                mapping,
                regex_filter: regex.map(str::to_owned),
                auto_create_missing_groups,
            },
        )
}

fn role_settings() -> impl Strategy<Value = RoleSyncSettings> {
    (
        field("roles", "groups"),
        mapping(
            vec!["lead", "bogus", "auditor", "organization-admin"],
            vec![
                "organization-admin",
                "organization-auditor",
                "organization-member",
                "owner",
                "nope",
            ],
        ),
    )
        .prop_map(|(field, mapping)| RoleSyncSettings { field, mapping })
}

fn site_settings() -> impl Strategy<Value = SiteRoleSyncSettings> {
    (
        field("roles", "orgs"),
        mapping(
            vec!["lead", "bogus", "organization-admin", "owner"],
            vec!["owner", "auditor", "template-admin", "member", "nope"],
        ),
        subsequence(vec!["auditor", "member", "nope", "template-admin"], 0..3),
    )
        .prop_map(|(field, mapping, defaults)| SiteRoleSyncSettings {
            field,
            mapping,
            default_roles: defaults.into_iter().map(str::to_owned).collect(),
        })
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        org_settings(),
        prop::collection::btree_map(select(ORG_IDS.to_vec()), group_settings(), 0..=4),
        prop::collection::btree_map(select(ORG_IDS.to_vec()), role_settings(), 0..=4),
        site_settings(),
    )
        .prop_map(|(organization, groups, roles, site_roles)| Settings {
            organization,
            groups: groups.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            roles: roles.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            site_roles,
        })
}

/// A world and a consistent user state in it (plus stale ids the world lacks).
fn world_and_user() -> impl Strategy<Value = (World, UserState)> {
    (
        prop::collection::vec(prop::bool::weighted(0.8), 3), // orgs 1..3 exist (org 0 is the default)
        prop::bool::weighted(0.9),                           // org 0 is flagged default
        prop::collection::vec(prop::bool::weighted(0.7), 20), // group (org, name) exists
        prop::collection::vec(prop::bool::weighted(0.8), 4), // user in org i
        any::<bool>(),                                       // user in a stale org
        prop::collection::vec(any::<bool>(), 20),            // user in group (org, name)
        prop::collection::vec(subsequence(ORG_ROLES.to_vec(), 0..3), 4),
        subsequence(SITE_ROLES.to_vec(), 0..3),
    )
        .prop_map(
            |(orgs_exist, has_default, groups_exist, in_org, stale, in_group, roles, site)| {
                let org_exists = |i: usize| i == 0 || orgs_exist[i - 1];
                let orgs = (0..4)
                    .filter(|i| org_exists(*i))
                    .map(|i| OrgInfo {
                        id: ORG_IDS[i].to_owned(),
                        name: ORG_NAMES[i].to_owned(),
                        is_default: i == 0 && has_default,
                        custom_roles: Vec::new(),
                    })
                    .collect();
                let mut groups = vec![];
                let mut user = UserState::default();
                for o in 0..4 {
                    let member = org_exists(o) && in_org[o];
                    if member {
                        user.orgs.insert(ORG_IDS[o].to_owned());
                        let r: BTreeSet<String> =
                            roles[o].iter().map(|r| (*r).to_owned()).collect();
                        if !r.is_empty() {
                            user.org_roles.insert(ORG_IDS[o].to_owned(), r);
                        }
                    }
                    for n in 0..5 {
                        if org_exists(o) && groups_exist[o * 5 + n] {
                            groups.push(GroupInfo {
                                id: group_id(o, n),
                                organization_id: ORG_IDS[o].to_owned(),
                                name: GROUP_NAMES[n].to_owned(),
                            });
                            if member && in_group[o * 5 + n] {
                                user.groups.insert(group_id(o, n));
                            }
                        }
                    }
                }
                if stale {
                    user.orgs.insert("o-gone".to_owned());
                    user.groups.insert("g-gone".to_owned());
                }
                user.site_roles = site.into_iter().map(str::to_owned).collect();
                let world = World {
                    orgs,
                    groups,
                    org_roles: ORG_ROLES.iter().map(|r| (*r).to_owned()).collect(),
                    site_roles: SITE_ROLES.iter().map(|r| (*r).to_owned()).collect(),
                };
                (world, user)
            },
        )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn planner_agrees_with_the_model(
        s in settings(),
        c in claims(),
        (w, u) in world_and_user(),
    ) {
        let p = plan(&s, &c, &w, &u);
        prop_assert_eq!(outcome(&p), model(&s, &c, &w, &u));
    }

    #[test]
    fn planning_the_applied_state_changes_nothing(
        s in settings(),
        c in claims(),
        (w, u) in world_and_user(),
    ) {
        let first = plan(&s, &c, &w, &u);
        let (u2, w2) = apply(&first, &u, &w);
        let second = plan(&s, &c, &w2, &u2);
        prop_assert!(!second.has_changes(), "second plan: {}", serde_json::to_string_pretty(&second).unwrap());
        if !first.is_refused() {
            prop_assert_eq!(outcome(&second), outcome(&first));
        }
    }

    #[test]
    fn results_are_the_applied_state(
        s in settings(),
        c in claims(),
        (w, u) in world_and_user(),
    ) {
        let p = plan(&s, &c, &w, &u);
        prop_assume!(!p.is_refused());
        let (u2, w2) = apply(&p, &u, &w);
        prop_assert_eq!(&u2.orgs, &p.organizations.result_ids);
        for g in p.groups.values() {
            if !u2.orgs.contains(&g.organization_id) {
                continue;
            }
            let mut names: Vec<String> = w2
                .groups
                .iter()
                .filter(|x| x.organization_id == g.organization_id && u2.groups.contains(&x.id))
                .map(|x| x.name.clone())
                .collect();
            names.sort();
            names.insert(0, "Everyone".to_owned());
            prop_assert_eq!(&names, &g.result);
        }
        let mut site: BTreeSet<String> = u2.site_roles.clone();
        site.insert("member".to_owned());
        prop_assert_eq!(site.into_iter().collect::<Vec<_>>(), p.site_roles.result.clone());
    }

    #[test]
    fn plans_are_deterministic_and_changes_are_real(
        s in settings(),
        c in claims(),
        (w, u) in world_and_user(),
    ) {
        let p = plan(&s, &c, &w, &u);
        let again = plan(&s, &c, &w, &u);
        prop_assert_eq!(serde_json::to_string(&p).unwrap(), serde_json::to_string(&again).unwrap());
        for change in &p.organizations.add {
            prop_assert!(!u.orgs.contains(&change.id));
        }
        for change in &p.organizations.remove {
            prop_assert!(u.orgs.contains(&change.id));
        }
        for g in p.groups.values() {
            for change in &g.add {
                prop_assert!(change.id.as_ref().is_none_or(|id| !u.groups.contains(id)));
                prop_assert_eq!(change.create, change.id.is_none());
            }
            for change in &g.remove {
                prop_assert!(change.id.as_ref().is_some_and(|id| u.groups.contains(id)));
            }
        }
    }
}

/// The generators reach every rule: guards the property tests against
/// generators that drift into trivial cases.
#[test]
fn generators_exercise_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (settings(), claims(), world_and_user());
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..256 {
        let (s, c, (w, u)) = strategy.new_tree(&mut runner).unwrap().current();
        let p = plan(&s, &c, &w, &u);
        let mut saw = |what, yes: bool| *seen.entry(what).or_default() += usize::from(yes);
        saw("refused", p.is_refused());
        saw("org add", !p.organizations.add.is_empty());
        saw("org remove", !p.organizations.remove.is_empty());
        let groups = || {
            p.groups
                .values()
                .flat_map(|g| g.add.iter().chain(&g.remove))
        };
        saw(
            "group add",
            p.groups.values().any(|g| g.add.iter().any(|a| !a.create)),
        );
        saw("group create", groups().any(|a| a.create));
        saw(
            "group remove",
            p.groups.values().any(|g| !g.remove.is_empty()),
        );
        saw(
            "regex removal",
            groups().any(|a| a.reason.contains("regex_filter")),
        );
        saw("role add", p.roles.values().any(|r| !r.add.is_empty()));
        saw(
            "role remove",
            p.roles.values().any(|r| !r.remove.is_empty()),
        );
        saw("site role add", !p.site_roles.add.is_empty());
        saw("site role remove", !p.site_roles.remove.is_empty());
        for problem in &p.problems {
            saw(problem.kind.as_str(), true);
        }
    }
    let rare: Vec<_> = seen.iter().filter(|(_, n)| **n < 2).collect();
    assert!(rare.is_empty(), "rarely generated: {rare:?} in {seen:?}");
    assert_eq!(seen.len(), 11 + 8, "{seen:?}");
}
