//! One authorization decision through the policy crate, entity slice included.
//!
//! Builds a synthetic authorization snapshot the way the server keeps it (user id to
//! [`PrincipalEntity`], built once with [`Principal::prepare`]) for 100,000 users
//! over 1,000 organizations with 10 groups each, and the same users over 10
//! organizations, then measures:
//!
//! - `authorize/<n>-orgs/<kind>`: one decision (snapshot lookup, resource, entity
//!   slice, Cedar evaluation) for a realistic request mix with principals picked at
//!   random;
//! - `authcheck-20/<n>-orgs`: the 20 decisions of one `POST /authcheck` with 20 checks;
//! - before criterion runs, the bytes the snapshot holds (a counting global
//!   allocator) and per-decision percentiles timed one by one.
//!
//! `cargo bench -p orgsync-policy` runs everything; without `--bench` (as in
//! `cargo test --benches`) the data set is small and each benchmark runs once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly on a broken fixture"
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use orgsync_policy::{
    Action, Engine, OrgMembership, OrgRef, Principal, PrincipalEntity, RequestContext, Resource,
    TemplateAcl,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const GROUPS_PER_ORG: usize = 10;
const TEMPLATES_PER_ORG: usize = 4;
/// Requests pre-drawn per data set; the benchmark cycles through them.
const REQUESTS: usize = 8192;

/// SplitMix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    /// A UUID-shaped id, as the server uses (36 characters, so Cedar stores it on
    /// the heap as it would in production).
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

struct Org {
    org: OrgRef,
    groups: Vec<String>,
    templates: Vec<(String, TemplateAcl)>,
}

struct User {
    id: String,
    /// Indexes into `Dataset::orgs`; the first is the default org.
    orgs: Vec<usize>,
    admin_of: Vec<usize>,
}

struct Dataset {
    orgs: Vec<Org>,
    users: Vec<User>,
    snapshot: HashMap<String, PrincipalEntity>,
    snapshot_bytes: usize,
    snapshot_allocations: usize,
}

const ORG_ROLE_MIX: &[&str] = &[
    "organization-admin",
    "organization-auditor",
    "organization-user-admin",
    "organization-template-admin",
    "organization-workspace-creation-ban",
];

fn build(org_count: usize, user_count: usize, seed: u64) -> Dataset {
    let mut rng = Rng(seed);
    let orgs: Vec<Org> = (0..org_count)
        .map(|i| {
            let org = OrgRef::new(rng.uuid(), i == 0);
            let groups: Vec<String> = (0..GROUPS_PER_ORG).map(|_| rng.uuid()).collect();
            let templates = (0..TEMPLATES_PER_ORG)
                .map(|t| {
                    let acl = match t {
                        // Shared with Everyone (the default at creation).
                        0 | 1 => TemplateAcl {
                            use_groups: vec![org.id.clone()],
                            ..TemplateAcl::default()
                        },
                        // Shared with two groups.
                        2 => TemplateAcl {
                            use_groups: groups[..2].to_vec(),
                            ..TemplateAcl::default()
                        },
                        // Everyone access disabled, shared with nobody.
                        _ => TemplateAcl::default(),
                    };
                    (rng.uuid(), acl)
                })
                .collect();
            Org {
                org,
                groups,
                templates,
            }
        })
        .collect();

    // The plain data first: what the server reads from its database.
    let mut users = Vec::with_capacity(user_count);
    let mut principals = Vec::with_capacity(user_count);
    for _ in 0..user_count {
        let id = rng.uuid();
        let mut member_of = vec![0];
        let extra = if org_count > 1 { 1 + rng.below(3) } else { 0 };
        while member_of.len() < 1 + extra.min(org_count - 1) {
            let o = 1 + rng.below(org_count - 1);
            if !member_of.contains(&o) {
                member_of.push(o);
            }
        }
        let mut memberships = Vec::with_capacity(member_of.len());
        let mut groups = Vec::new();
        let mut admin_of = Vec::new();
        for &o in &member_of {
            let mut roles = Vec::new();
            if rng.chance(100) {
                let role = ORG_ROLE_MIX[rng.below(ORG_ROLE_MIX.len())];
                if role == "organization-admin" {
                    admin_of.push(o);
                }
                roles.push(role.to_owned());
            }
            memberships.push(OrgMembership {
                org_id: orgs[o].org.id.clone(),
                roles,
                permissions: Vec::new(),
            });
            for _ in 0..rng.below(3) {
                let g = &orgs[o].groups[rng.below(GROUPS_PER_ORG)];
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
        let site_roles = match rng.below(1000) {
            0 => vec!["owner".to_owned()],
            1..=4 => vec!["auditor".to_owned()],
            5..=9 => vec!["template-admin".to_owned()],
            10..=14 => vec!["user-admin".to_owned()],
            _ => Vec::new(),
        };
        principals.push(Principal {
            id: id.clone(),
            status: if rng.chance(5) { "suspended" } else { "active" }.to_owned(),
            site_roles,
            memberships,
            groups,
        });
        users.push(User {
            id,
            orgs: member_of,
            admin_of,
        });
    }

    // The snapshot, counted by the global allocator.
    let region = Region::new(GLOBAL);
    let mut snapshot = HashMap::with_capacity(user_count);
    for p in &principals {
        snapshot.insert(p.id.clone(), p.prepare());
    }
    let change = region.change();
    let snapshot_bytes = (change.bytes_allocated as isize - change.bytes_deallocated as isize
        + change.bytes_reallocated)
        .max(0) as usize;
    let snapshot_allocations = change.allocations.saturating_sub(change.deallocations);
    drop(principals);
    Dataset {
        orgs,
        users,
        snapshot,
        snapshot_bytes,
        snapshot_allocations,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A member reads one of its orgs.
    MemberReadsOrg,
    /// An organization-admin updates its org.
    AdminUpdatesOrg,
    /// A member creates its own workspace in one of its orgs.
    WorkspaceCreate,
    /// A member uses a template of one of its orgs, decided by the template ACL.
    TemplateUse,
    /// A member reads an org it is not in (denied by the cross-org guardrail).
    CrossOrgDeny,
}

const KINDS: [Kind; 5] = [
    Kind::MemberReadsOrg,
    Kind::AdminUpdatesOrg,
    Kind::WorkspaceCreate,
    Kind::TemplateUse,
    Kind::CrossOrgDeny,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::MemberReadsOrg => "member-reads-org",
            Kind::AdminUpdatesOrg => "admin-updates-org",
            Kind::WorkspaceCreate => "workspace-create",
            Kind::TemplateUse => "template-use-acl",
            Kind::CrossOrgDeny => "cross-org-deny",
        }
    }
}

/// One request as the server has it before authorizing: the caller's id (looked
/// up in the snapshot) and what the resource is made of.
struct Req {
    user: String,
    kind: Kind,
    org: usize,
    template: usize,
}

fn draw(data: &Dataset, admins: &[&User], kind: Kind, rng: &mut Rng) -> Req {
    loop {
        let (user, org) = match kind {
            Kind::AdminUpdatesOrg => {
                let u = admins[rng.below(admins.len())];
                (u, u.admin_of[rng.below(u.admin_of.len())])
            }
            Kind::CrossOrgDeny => {
                let u = &data.users[rng.below(data.users.len())];
                if u.orgs.len() == data.orgs.len() {
                    continue;
                }
                let o = loop {
                    let o = rng.below(data.orgs.len());
                    if !u.orgs.contains(&o) {
                        break o;
                    }
                };
                (u, o)
            }
            _ => {
                let u = &data.users[rng.below(data.users.len())];
                (u, u.orgs[rng.below(u.orgs.len())])
            }
        };
        return Req {
            user: user.id.clone(),
            kind,
            org,
            template: rng.below(TEMPLATES_PER_ORG),
        };
    }
}

fn requests(data: &Dataset, kinds: &[Kind], seed: u64) -> Vec<Req> {
    let mut rng = Rng(seed);
    let admins: Vec<&User> = data
        .users
        .iter()
        .filter(|u| !u.admin_of.is_empty())
        .collect();
    (0..REQUESTS)
        .map(|i| draw(data, &admins, kinds[i % kinds.len()], &mut rng))
        .collect()
}

/// What the server does per check: look the caller up, describe the resource,
/// decide.
fn decide(engine: &Engine, data: &Dataset, req: &Req, ctx: &RequestContext) -> bool {
    let principal = data.snapshot.get(&req.user).expect("user in snapshot");
    let org = &data.orgs[req.org];
    let (action, resource) = match req.kind {
        Kind::MemberReadsOrg | Kind::CrossOrgDeny => {
            (Action::ORGANIZATION_READ, Resource::organization(&org.org))
        }
        Kind::AdminUpdatesOrg => (
            Action::ORGANIZATION_UPDATE,
            Resource::organization(&org.org),
        ),
        Kind::WorkspaceCreate => (
            Action::WORKSPACE_CREATE,
            Resource::workspace(&org.org, "new", &req.user),
        ),
        Kind::TemplateUse => {
            let (id, acl) = &org.templates[req.template];
            (
                Action::TEMPLATE_USE,
                Resource::template(&org.org, id, &req.user, acl),
            )
        }
    };
    engine.authorize(principal, action, &resource, ctx).allowed
}

/// The 20 checks of one `POST /authcheck` for one caller: the caller is looked up
/// once, then each check is decided.
fn authcheck(engine: &Engine, data: &Dataset, batch: &[Req], ctx: &RequestContext) -> usize {
    let principal = data.snapshot.get(&batch[0].user).expect("user in snapshot");
    let mut allowed = 0;
    for req in batch {
        let org = &data.orgs[req.org];
        let (action, resource) = match req.kind {
            Kind::MemberReadsOrg | Kind::CrossOrgDeny => {
                (Action::ORGANIZATION_READ, Resource::organization(&org.org))
            }
            Kind::AdminUpdatesOrg => (
                Action::ORGANIZATION_UPDATE,
                Resource::organization(&org.org),
            ),
            Kind::WorkspaceCreate => (
                Action::WORKSPACE_CREATE,
                Resource::workspace(&org.org, "new", &batch[0].user),
            ),
            Kind::TemplateUse => {
                let (id, acl) = &org.templates[req.template];
                (
                    Action::TEMPLATE_USE,
                    Resource::template(&org.org, id, &batch[0].user, acl),
                )
            }
        };
        if engine.authorize(principal, action, &resource, ctx).allowed {
            allowed += 1;
        }
    }
    allowed
}

/// Batches of 20 checks, each batch for one caller: its orgs (read, workspace
/// create, templates) and a few orgs it is not in.
fn authcheck_batches(data: &Dataset, seed: u64, count: usize) -> Vec<Vec<Req>> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let u = &data.users[rng.below(data.users.len())];
            (0..20)
                .map(|i| {
                    let kind = match i % 5 {
                        0 => Kind::MemberReadsOrg,
                        1 => Kind::AdminUpdatesOrg,
                        2 => Kind::WorkspaceCreate,
                        3 => Kind::TemplateUse,
                        _ => Kind::CrossOrgDeny,
                    };
                    let org = if kind == Kind::CrossOrgDeny {
                        rng.below(data.orgs.len())
                    } else {
                        u.orgs[rng.below(u.orgs.len())]
                    };
                    Req {
                        user: u.id.clone(),
                        kind,
                        org,
                        template: i % TEMPLATES_PER_ORG,
                    }
                })
                .collect()
        })
        .collect()
}

/// Times decisions one by one (after a warm-up) and returns (p50, p90, p99).
fn percentiles(
    engine: &Engine,
    data: &Dataset,
    reqs: &[Req],
    n: usize,
) -> (Duration, Duration, Duration) {
    let ctx = RequestContext::new();
    for req in reqs.iter().take(2000) {
        black_box(decide(engine, data, req, &ctx));
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let req = &reqs[i % reqs.len()];
            let start = Instant::now();
            black_box(decide(engine, data, req, &ctx));
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.50), at(0.90), at(0.99))
}

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`), or `None`. Unlike
/// wall time it leaves out the time the thread waited for a CPU, which is what
/// other work on a shared machine inflates. The kernel may update it only at
/// scheduler ticks, so it is read around long runs only.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Mean on-CPU time of one call of `f` over `n` calls (after a warm-up).
fn cpu_per_call(n: usize, mut f: impl FnMut(usize)) -> Option<Duration> {
    for i in 0..n / 10 {
        f(i);
    }
    let start = thread_cpu_ns()?;
    for i in 0..n {
        f(i);
    }
    let ns = thread_cpu_ns()?.checked_sub(start)?;
    Some(Duration::from_nanos(ns / n as u64))
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let users = if full { 100_000 } else { 2_000 };
    let engine = Engine::builtin().expect("built-in policies load");

    let mut sets = Vec::new();
    for org_count in [1_000, 10] {
        let start = Instant::now();
        let data = build(org_count, users, 0x5eed ^ org_count as u64);
        let memberships: usize = data.users.iter().map(|u| u.orgs.len()).sum();
        println!(
            "snapshot {org_count} orgs, {users} users ({memberships} memberships, {} groups): \
             {:.1} MiB in {} live allocations ({} bytes/user), built in {:.2?}",
            org_count * GROUPS_PER_ORG,
            mib(data.snapshot_bytes),
            data.snapshot_allocations,
            data.snapshot_bytes / users,
            start.elapsed(),
        );
        sets.push((org_count, data));
    }

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let ctx = RequestContext::new();
    if full {
        let mut p50s = Vec::new();
        for (org_count, data) in &sets {
            let reqs = requests(data, &KINDS, 7);
            let (p50, p90, p99) = percentiles(&engine, data, &reqs, 200_000);
            println!(
                "decisions timed one by one, {org_count} orgs, mixed: p50 {p50:.2?}, p90 {p90:.2?}, p99 {p99:.2?}"
            );
            p50s.push(p50);
        }
        println!(
            "p50 ratio 1,000 orgs / 10 orgs: {:.2}",
            p50s[0].as_secs_f64() / p50s[1].as_secs_f64()
        );
        let mut cpu = Vec::new();
        for (org_count, data) in &sets {
            let reqs = requests(data, &KINDS, 29);
            let t = cpu_per_call(100_000, |i| {
                black_box(decide(&engine, data, &reqs[i % reqs.len()], &ctx));
            });
            if let Some(t) = t {
                println!("on-CPU time per decision, {org_count} orgs, mixed: mean {t:.2?}");
                cpu.push(t);
            }
        }
        if let [a, b] = cpu[..] {
            println!(
                "on-CPU mean ratio 1,000 orgs / 10 orgs: {:.2}",
                a.as_secs_f64() / b.as_secs_f64()
            );
        }
        let (_, data) = &sets[0];
        for kind in KINDS {
            let reqs = requests(data, &[kind], 31);
            let t = cpu_per_call(40_000, |i| {
                black_box(decide(&engine, data, &reqs[i % reqs.len()], &ctx));
            });
            if let Some(t) = t {
                println!(
                    "on-CPU time per decision, 1000 orgs, {}: mean {t:.2?}",
                    kind.label()
                );
            }
        }
        for (org_count, data) in &sets {
            let batches = authcheck_batches(data, 37, 512);
            let t = cpu_per_call(4_000, |i| {
                black_box(authcheck(&engine, data, &batches[i % batches.len()], &ctx));
            });
            if let Some(t) = t {
                println!("on-CPU time per authcheck of 20 checks, {org_count} orgs: mean {t:.2?}");
            }
        }
        for kind in KINDS {
            let reqs = requests(data, &[kind], 19);
            let (p50, p90, p99) = percentiles(&engine, data, &reqs, 40_000);
            println!(
                "decisions timed one by one, 1000 orgs, {}: p50 {p50:.2?}, p90 {p90:.2?}, p99 {p99:.2?}",
                kind.label()
            );
        }
        for (org_count, data) in &sets {
            let batches = authcheck_batches(data, 23, 512);
            for batch in batches.iter().take(200) {
                black_box(authcheck(&engine, data, batch, &ctx));
            }
            let mut times: Vec<Duration> = batches
                .iter()
                .cycle()
                .take(5_000)
                .map(|batch| {
                    let start = Instant::now();
                    black_box(authcheck(&engine, data, batch, &ctx));
                    start.elapsed()
                })
                .collect();
            times.sort();
            println!(
                "authcheck of 20 checks timed one by one, {org_count} orgs: p50 {:.2?}, p99 {:.2?}",
                times[times.len() / 2],
                times[times.len() * 99 / 100]
            );
        }
    }

    let mut group = c.benchmark_group("authorize");
    group.throughput(Throughput::Elements(1));
    for (org_count, data) in &sets {
        let mixed = requests(data, &KINDS, 11);
        let mut i = 0;
        group.bench_function(
            BenchmarkId::new(format!("{org_count}-orgs"), "mixed"),
            |b| {
                b.iter(|| {
                    let req = &mixed[i % mixed.len()];
                    i += 1;
                    black_box(decide(&engine, data, req, &ctx))
                })
            },
        );
        if *org_count == 1_000 {
            for kind in KINDS {
                let reqs = requests(data, &[kind], 13);
                let mut i = 0;
                group.bench_function(
                    BenchmarkId::new(format!("{org_count}-orgs"), kind.label()),
                    |b| {
                        b.iter(|| {
                            let req = &reqs[i % reqs.len()];
                            i += 1;
                            black_box(decide(&engine, data, req, &ctx))
                        })
                    },
                );
            }
        }
    }
    group.finish();

    let mut group = c.benchmark_group("authcheck-20");
    group.throughput(Throughput::Elements(20));
    for (org_count, data) in &sets {
        let batches = authcheck_batches(data, 17, 512);
        let mut i = 0;
        group.bench_function(
            BenchmarkId::from_parameter(format!("{org_count}-orgs")),
            |b| {
                b.iter(|| {
                    let batch = &batches[i % batches.len()];
                    i += 1;
                    black_box(authcheck(&engine, data, batch, &ctx))
                })
            },
        );
    }
    group.finish();

    c.final_summary();
}
