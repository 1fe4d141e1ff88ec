//! The planner alone, for a user with 50 groups across 5 organizations.
//!
//! Data: 5 organizations (one default), 12 groups each; organization sync maps
//! one claim value per organization; each organization has group sync (a
//! `^team-N-` regex filter, 5 values mapped to 2 groups each by id and name,
//! auto-create off) and role sync (one mapped value); site role sync with a
//! mapping and a default role. The claims carry 75 group values (50
//! `team-N-M`, 5 organization markers, 20 values every filter drops) and 3
//! role values. The user is in the 5 organizations and 49 groups; the plan
//! keeps 45 groups, adds 10 and removes 4 (55 after), gives 2 organization
//! roles, takes 5, and gives 1 site role.
//!
//! - `plan/prepared`: [`Planner::plan`] with settings and world indexed once
//!   (how an LDAP run plans every user).
//! - `plan/one_shot`: [`plan`], which also indexes the world and compiles the
//!   five regular expressions (what one login costs without a cached planner).
//! - `planner/new`: indexing and compiling alone.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "benchmark setup fails loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orgsync_sync::{
    GroupInfo, GroupSyncSettings, GroupsPlan, OrgInfo, OrganizationSyncSettings, Planner,
    ProblemKind, RoleSyncSettings, Settings, SiteRoleSyncSettings, UserState, World, plan,
};
use serde_json::{Map, Value, json};

const ORGS: usize = 5;
const GROUPS_PER_ORG: usize = 12;

fn org_id(o: usize) -> String {
    format!("00000000-0000-4000-8000-{o:012}")
}

fn group_id(o: usize, g: usize) -> String {
    format!("10000000-0000-4000-{o:04}-{g:012}")
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn fixture() -> (Settings, World, Map<String, Value>, UserState) {
    let mut world = World {
        org_roles: owned(&[
            "organization-admin",
            "organization-member",
            "organization-auditor",
            "organization-user-admin",
            "organization-template-admin",
            "organization-workspace-creation-ban",
        ]),
        site_roles: owned(&["owner", "member", "auditor", "template-admin", "user-admin"]),
        ..World::default()
    };
    let mut settings = Settings {
        organization: OrganizationSyncSettings {
            field: Some("groups".into()),
            mapping: BTreeMap::new(),
            organization_assign_default: true,
        },
        site_roles: SiteRoleSyncSettings {
            field: Some("site_roles".into()),
            mapping: BTreeMap::from([("platform-admins".into(), owned(&["user-admin"]))]),
            default_roles: owned(&["auditor"]),
        },
        ..Settings::default()
    };
    let mut group_values = vec![];
    let mut user = UserState::default();
    for o in 0..ORGS {
        let id = org_id(o);
        let name = if o == 0 {
            "coder".to_owned()
        } else {
            format!("org-{o}")
        };
        world.orgs.push(OrgInfo {
            id: id.clone(),
            name: name.clone(),
            is_default: o == 0,
            custom_roles: Vec::new(),
        });
        settings
            .organization
            .mapping
            .insert(format!("member-of-{o}"), vec![name]);
        group_values.push(format!("member-of-{o}"));
        for g in 0..GROUPS_PER_ORG {
            world.groups.push(GroupInfo {
                id: group_id(o, g),
                organization_id: id.clone(),
                name: format!("team-{o}-{g}"),
            });
        }
        let mut mapping = BTreeMap::new();
        for g in 0..10 {
            group_values.push(format!("team-{o}-{g}"));
            if g % 2 == 0 {
                let other = format!("team-{o}-{}", (g + 2) % GROUPS_PER_ORG);
                mapping.insert(format!("team-{o}-{g}"), vec![group_id(o, g), other]);
            }
        }
        settings.groups.insert(
            id.clone(),
            GroupSyncSettings {
                field: Some("groups".into()),
                mapping,
                regex_filter: Some(format!("^team-{o}-")),
                auto_create_missing_groups: false,
            },
        );
        settings.roles.insert(
            id.clone(),
            RoleSyncSettings {
                field: Some("roles".into()),
                mapping: BTreeMap::from([
                    (format!("lead-{o}"), owned(&["organization-admin"])),
                    (format!("lead-{}", (o + 2) % ORGS), vec![]),
                ]),
            },
        );
        user.orgs.insert(id.clone());
        // Groups 0-8 (kept) and 11 (removed; not in the default org); 9 and
        // 10 are added.
        for g in (0..9).chain(if o == 0 { None } else { Some(11) }) {
            user.groups.insert(group_id(o, g));
        }
        user.org_roles
            .insert(id, BTreeSet::from(["organization-auditor".to_owned()]));
    }
    for i in 0..20 {
        group_values.push(format!("ad-distribution-list-{i}"));
    }
    user.site_roles.insert("auditor".into());
    let claims = match json!({
        "sub": "ldap:jdoe",
        "groups": group_values,
        "roles": ["lead-1", "lead-3"],
        "site_roles": ["platform-admins"],
    }) {
        Value::Object(m) => m,
        _ => panic!("claims are an object"),
    };
    (settings, world, claims, user)
}

fn bench(c: &mut Criterion) {
    let (settings, world, claims, user) = fixture();
    let planner = Planner::new(&settings, &world);
    let p = planner.plan(&claims, &user);
    // The fixture is what the doc comment says.
    let count = |f: fn(&GroupsPlan) -> usize| -> usize { p.groups.values().map(f).sum() };
    assert_eq!(
        (
            user.groups.len(),
            count(|g| g.result.len() - 1),
            count(|g| g.add.len()),
            count(|g| g.remove.len())
        ),
        (49, 55, 10, 4)
    );
    let role_adds: usize = p.roles.values().map(|r| r.add.len()).sum();
    let role_removes: usize = p.roles.values().map(|r| r.remove.len()).sum();
    assert_eq!((role_adds, role_removes, p.site_roles.add.len()), (2, 5, 1));
    assert!(p.organizations.add.is_empty() && p.organizations.remove.is_empty());
    let unmatched = |p: &orgsync_sync::Problem| p.kind == ProblemKind::UnmatchedClaimValue;
    assert!(p.problems.iter().all(unmatched), "{:?}", p.problems);

    let mut group = c.benchmark_group("plan");
    group.bench_function("prepared", |b| {
        b.iter(|| planner.plan(black_box(&claims), black_box(&user)))
    });
    group.bench_function("one_shot", |b| {
        b.iter(|| {
            plan(
                black_box(&settings),
                black_box(&claims),
                black_box(&world),
                black_box(&user),
            )
        })
    });
    group.finish();
    c.bench_function("planner/new", |b| {
        b.iter(|| Planner::new(black_box(&settings), black_box(&world)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
