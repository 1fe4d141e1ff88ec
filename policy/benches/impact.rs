//! The impact of a policy change: 10,000 users x every action x the resources
//! of their organizations (at the server's sample of 50 per kind and org),
//! decided by the built-in set and by the built-in set plus one policy.
//!
//! `cargo bench -p orgsync-policy --bench impact` times one full impact of
//! 10,000 users (on every core the machine offers), then criterion measures
//! 1,000 users. Without `--bench` the data set is small and runs once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly on a broken fixture"
)]

use std::collections::HashMap;
use std::time::Instant;

use criterion::Criterion;
use orgsync_policy::impact::{ImpactUser, ImpactWorld, impact};
use orgsync_policy::{
    Engine, ORG_ROLES, OrgMembership, OrgRef, PolicySources, Principal, Resource, SITE_ROLES,
    SourceFile, TemplateAcl,
};

const ORGS: usize = 10;
const PER_KIND: usize = 50;
const WIDEN: &str = "@id(\"bench.auditor-updates-templates\")\npermit (principal, action == Action::\"template:update\", resource is Template)\nwhen { principal in resource.organization && principal.hasTag(resource.organization.key) && principal.getTag(resource.organization.key).contains(\"organization-auditor\") };\n";

fn world(users: usize) -> ImpactWorld {
    let orgs: Vec<OrgRef> = (0..ORGS)
        .map(|i| OrgRef::new(format!("org-{i}"), i == 0))
        .collect();
    let mut list = Vec::with_capacity(users);
    for u in 0..users {
        let own = 1 + u % (ORGS - 1);
        let role = match u % 20 {
            0 => vec!["organization-admin".to_owned()],
            1 => vec!["organization-auditor".to_owned()],
            2 => vec!["organization-template-admin".to_owned()],
            _ => Vec::new(),
        };
        let principal = Principal {
            id: format!("user-{u:05}"),
            status: if u % 50 == 7 { "suspended" } else { "active" }.to_owned(),
            site_roles: if u % 100 == 3 {
                vec!["owner".to_owned()]
            } else {
                Vec::new()
            },
            memberships: vec![
                OrgMembership {
                    org_id: orgs[0].id.clone(),
                    roles: Vec::new(),
                },
                OrgMembership {
                    org_id: orgs[own].id.clone(),
                    roles: role,
                },
            ],
            groups: vec![format!("group-{own}-{}", u % 10)],
        };
        list.push(ImpactUser {
            name: principal.id.clone(),
            principal,
        });
    }
    let mut site = vec![Resource::site()];
    site.extend(SITE_ROLES.iter().map(|r| Resource::site_role(r)));
    site.extend(
        list.iter()
            .take(PER_KIND)
            .map(|u| Resource::user(&u.principal.id, &u.principal.status)),
    );
    let mut by_org = HashMap::new();
    for (i, org) in orgs.iter().enumerate() {
        let mut r = vec![
            Resource::organization(org),
            Resource::audit_log(org),
            Resource::idpsync_settings(org),
            Resource::group(org, &org.id),
        ];
        r.extend(ORG_ROLES.iter().map(|role| Resource::org_role(org, role)));
        let members = list
            .iter()
            .filter(|u| u.principal.memberships.iter().any(|m| m.org_id == org.id))
            .take(PER_KIND);
        for u in members {
            r.push(Resource::member(org, &u.principal.id));
            r.push(Resource::workspace(
                org,
                &format!("ws-{}", u.principal.id),
                &u.principal.id,
            ));
        }
        for g in 0..10 {
            r.push(Resource::group(org, &format!("group-{i}-{g}")));
        }
        for t in 0..20 {
            let acl = TemplateAcl {
                use_groups: vec![org.id.clone()],
                ..TemplateAcl::default()
            };
            r.push(Resource::template(
                org,
                &format!("tpl-{i}-{t}"),
                "user-00000",
                &acl,
            ));
        }
        by_org.insert(org.id.clone(), r);
    }
    ImpactWorld {
        users: list,
        site,
        orgs: by_org,
    }
}

fn engines() -> (Engine, Engine) {
    let before = PolicySources::builtin().unwrap();
    let mut files = before.policies.clone();
    files.push(before.schema.clone());
    files.push(SourceFile {
        path: "zz-bench.cedar".to_owned(),
        text: WIDEN.to_owned(),
    });
    let after = PolicySources::from_files("bench", files).unwrap();
    (
        Engine::load(&before).unwrap(),
        Engine::load(&after).unwrap(),
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (before, after) = engines();
    let big = world(if full { 10_000 } else { 200 });
    let start = Instant::now();
    let out = impact(&before, &after, &big, threads);
    let took = start.elapsed();
    println!(
        "impact/{}-users: {} actions, {} decisions per set, {} changed ({} granted) in {:.2} s on {threads} threads",
        out.users,
        out.actions,
        out.decisions,
        out.changed,
        out.granted,
        took.as_secs_f64()
    );
    assert!(out.granted > 0 && out.revoked == 0);
    let small = world(if full { 1_000 } else { 50 });
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    c.bench_function("impact/1000-users", |b| {
        b.iter(|| impact(&before, &after, &small, threads))
    });
    c.final_summary();
}
