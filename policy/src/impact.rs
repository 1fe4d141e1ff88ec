//! The impact of a policy change: every user x every action x the resources
//! that concern it, decided by the running set and by a proposed one, and every
//! decision that differs, grouped by action, role and deciding policies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::EntityUid;
use serde::Serialize;

use crate::engine::{Decision, Engine};
use crate::model::{EntityKind, Principal, RequestContext, Resource};

/// Concrete examples kept per group.
pub const EXAMPLES_PER_GROUP: usize = 3;

/// A user as the impact sees it: the authorization data and a name to show.
#[derive(Debug, Clone)]
pub struct ImpactUser {
    pub principal: Principal,
    pub name: String,
}

/// The data a policy change is evaluated against: the users, the site-wide
/// resources, and the resources of each organization (by org id).
#[derive(Debug, Clone, Default)]
pub struct ImpactWorld {
    pub users: Vec<ImpactUser>,
    pub site: Vec<Resource>,
    pub orgs: HashMap<String, Vec<Resource>>,
}

/// One decision that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactExample {
    pub user: String,
    pub user_id: String,
    pub action: String,
    pub resource: String,
    pub before: &'static str,
    pub after: &'static str,
    pub policies_before: Vec<String>,
    pub policies_after: Vec<String>,
}

/// The changed decisions of one action, role and pair of deciding policy sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactGroup {
    pub action: String,
    /// The caller's roles that concern the resource: site roles and the org
    /// roles in the resource's organization (`member` when none).
    pub role: String,
    pub before: &'static str,
    pub after: &'static str,
    pub policies_before: Vec<String>,
    pub policies_after: Vec<String>,
    pub count: u64,
    pub examples: Vec<ImpactExample>,
}

/// What a proposed policy set would change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub users: usize,
    pub actions: usize,
    /// Decisions evaluated by each of the two sets.
    pub decisions: u64,
    pub changed: u64,
    /// Deny -> allow.
    pub granted: u64,
    /// Allow -> deny.
    pub revoked: u64,
    pub groups: Vec<ImpactGroup>,
}

type Key = (String, String, bool, bool, Vec<String>, Vec<String>);

#[derive(Default)]
struct Partial {
    decisions: u64,
    groups: BTreeMap<Key, (u64, Vec<ImpactExample>)>,
}

fn word(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

/// The actions of both sets (role bundles excluded) with the resource kinds each
/// applies to.
fn actions(before: &Engine, after: &Engine) -> Vec<(String, Vec<EntityKind>)> {
    let names: BTreeSet<&str> = before
        .action_names()
        .chain(after.action_names())
        .filter(|a| !a.starts_with("bundle:"))
        .collect();
    names
        .into_iter()
        .map(|name| {
            let mut kinds = Vec::new();
            let uid = EntityUid::from_str(&format!("Action::{name:?}")).ok();
            for engine in [before, after] {
                let Some(types) = uid
                    .as_ref()
                    .and_then(|u| engine.schema().resources_for_action(u))
                else {
                    continue;
                };
                for t in types {
                    if let Some(k) = EntityKind::parse(&t.to_string())
                        && !kinds.contains(&k)
                    {
                        kinds.push(k);
                    }
                }
            }
            (name.to_owned(), kinds)
        })
        .collect()
}

fn role_of(p: &Principal, resource: &Resource) -> String {
    let mut roles: Vec<String> = p
        .site_roles
        .iter()
        .filter(|r| r.as_str() != "member")
        .cloned()
        .collect();
    if let Some(org) = resource.org() {
        let held = p.memberships.iter().find(|m| m.org_id == org.id);
        roles.extend(held.iter().flat_map(|m| &m.roles).cloned());
    }
    if roles.is_empty() {
        "member".to_owned()
    } else {
        roles.join("+")
    }
}

fn label(resource: &Resource) -> String {
    format!("{}::{:?}", resource.kind().name(), resource.id())
}

fn evaluate(
    before: &Engine,
    after: &Engine,
    world: &ImpactWorld,
    actions: &[(String, Vec<EntityKind>)],
    users: &[ImpactUser],
) -> Partial {
    let mut out = Partial::default();
    let context = RequestContext::new();
    for user in users {
        let entity = user.principal.prepare();
        let mut candidates: HashMap<EntityKind, Vec<&Resource>> = HashMap::new();
        let orgs = user
            .principal
            .memberships
            .iter()
            .filter_map(|m| world.orgs.get(&m.org_id))
            .flatten();
        for r in world.site.iter().chain(orgs) {
            candidates.entry(r.kind()).or_default().push(r);
        }
        for (action, kinds) in actions {
            for r in kinds.iter().filter_map(|k| candidates.get(k)).flatten() {
                out.decisions += 1;
                let b: Decision = before.authorize_named(&entity, action, r, &context);
                let a: Decision = after.authorize_named(&entity, action, r, &context);
                if a.allowed == b.allowed {
                    continue;
                }
                let key = (
                    action.clone(),
                    role_of(&user.principal, r),
                    b.allowed,
                    a.allowed,
                    b.reasons,
                    a.reasons,
                );
                let entry = out.groups.entry(key).or_default();
                entry.0 += 1;
                if entry.1.len() < EXAMPLES_PER_GROUP {
                    entry.1.push(ImpactExample {
                        user: user.name.clone(),
                        user_id: user.principal.id.clone(),
                        action: action.clone(),
                        resource: label(r),
                        before: word(b.allowed),
                        after: word(a.allowed),
                        policies_before: Vec::new(),
                        policies_after: Vec::new(),
                    });
                }
            }
        }
    }
    out
}

/// Decides every user x every action x the site's and their organizations'
/// resources of the kinds the action applies to, with `before` and `after`, on
/// `threads` threads (at least one).
pub fn impact(before: &Engine, after: &Engine, world: &ImpactWorld, threads: usize) -> Impact {
    let actions = actions(before, after);
    let chunk = world.users.len().div_ceil(threads.max(1)).max(1);
    let partials: Vec<Partial> = std::thread::scope(|s| {
        let handles: Vec<_> = world
            .users
            .chunks(chunk)
            .map(|users| s.spawn(|| evaluate(before, after, world, &actions, users)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut merged: BTreeMap<Key, (u64, Vec<ImpactExample>)> = BTreeMap::new();
    let mut decisions = 0;
    for p in partials {
        decisions += p.decisions;
        for (key, (count, examples)) in p.groups {
            let entry = merged.entry(key).or_default();
            entry.0 += count;
            let room = EXAMPLES_PER_GROUP.saturating_sub(entry.1.len());
            entry.1.extend(examples.into_iter().take(room));
        }
    }
    let mut out = Impact {
        users: world.users.len(),
        actions: actions.len(),
        decisions,
        ..Impact::default()
    };
    for ((action, role, b, a, pb, pa), (count, mut examples)) in merged {
        out.changed += count;
        if a {
            out.granted += count;
        } else {
            out.revoked += count;
        }
        for e in &mut examples {
            e.policies_before.clone_from(&pb);
            e.policies_after.clone_from(&pa);
        }
        out.groups.push(ImpactGroup {
            action,
            role,
            before: word(b),
            after: word(a),
            policies_before: pb,
            policies_after: pa,
            count,
            examples,
        });
    }
    out.groups
        .sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.action.cmp(&y.action)));
    out
}
