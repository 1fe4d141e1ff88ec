//! The pure part: groups graph, nesting with cycles, user claims, problems,
//! affected users of an incremental read. No I/O.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::dn::normalize_dn;
use super::read::{RawDirectory, RawEntry};
use super::{Directory, DirectoryProblem, DirectoryUser, GROUPS_CLAIM, LdapSettings};

/// `YYYYMMDDHH[MM[SS]][.frac](Z|±hhmm)` -> `YYYYMMDDHHMMSS` (UTC assumed).
pub(crate) fn normalize_time(t: &str) -> Option<String> {
    let digits: String = t.trim().chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 10 || digits.len() > 14 || !digits.len().is_multiple_of(2) {
        return None;
    }
    let rest = &t.trim()[digits.len()..];
    if !(rest.is_empty() || rest.starts_with(['Z', '.', ',', '+', '-'])) {
        return None;
    }
    Some(format!("{digits:0<14}"))
}

fn problem(dn: &str, kind: &str, detail: impl Into<String>) -> DirectoryProblem {
    DirectoryProblem {
        dn: dn.to_owned(),
        kind: kind.to_owned(),
        detail: detail.into(),
    }
}

/// Values of an attribute as strings; binary values hex-encoded.
fn string_values(e: &RawEntry, attr: &str) -> Vec<String> {
    let key = attr.to_ascii_lowercase();
    let mut out: Vec<String> = e
        .values(&key)
        .iter()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    if let Some(bin) = e.bin.get(&key) {
        out.extend(bin.iter().filter(|v| !v.is_empty()).map(hex::encode));
    }
    out
}

/// Strongly connected components (iterative Tarjan), each emitted after every
/// component reachable from it.
fn sccs(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0usize;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next edge to look at)
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    out.push(comp);
                }
            }
        }
    }
    out
}

struct Group {
    dn: String,
    name: String,
    changed: bool,
}

fn is_changed(e: &RawEntry, since: Option<&str>) -> bool {
    let Some(since) = since else { return false };
    ["modifytimestamp", "createtimestamp"].iter().any(|a| {
        e.values(a)
            .iter()
            .filter_map(|t| normalize_time(t))
            .any(|t| t.as_str() >= since)
    })
}

pub(crate) fn build(
    s: &LdapSettings,
    raw: RawDirectory,
    since: Option<&str>,
    known: Option<&HashMap<String, BTreeSet<String>>>,
) -> Directory {
    let mut problems = Vec::new();
    let use_member = s.has_membership("member");
    let use_member_uid = s.has_membership("memberUid");
    let use_member_of = s.has_membership("memberOf");

    // 1. Groups.
    let mut groups: Vec<Group> = Vec::new();
    let mut group_entries: Vec<&RawEntry> = Vec::new();
    let mut by_dn: HashMap<String, usize> = HashMap::new();
    for e in &raw.groups {
        let Some(name) = e.first(&s.group_name_attribute) else {
            problems.push(problem(
                &e.dn,
                "missing_attribute",
                format!("group has no `{}`", s.group_name_attribute),
            ));
            continue;
        };
        by_dn.insert(normalize_dn(&e.dn), groups.len());
        groups.push(Group {
            dn: e.dn.clone(),
            name: name.to_owned(),
            changed: is_changed(e, since),
        });
        group_entries.push(e);
    }
    let n = groups.len();

    // 2. Edges child -> parent, and the direct members of each group.
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut member_dn_groups: HashMap<String, Vec<usize>> = HashMap::new();
    let mut member_uid_groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (g, e) in group_entries.iter().enumerate() {
        if use_member {
            for m in e.values("member") {
                let m = normalize_dn(m);
                match by_dn.get(&m) {
                    Some(&child) => {
                        if s.nested_groups {
                            parents[child].push(g);
                        }
                    }
                    None => member_dn_groups.entry(m).or_default().push(g),
                }
            }
        }
        if use_member_uid {
            for uid in e.values("memberUid") {
                member_uid_groups
                    .entry(uid.trim().to_lowercase())
                    .or_default()
                    .push(g);
            }
        }
        if use_member_of && s.nested_groups {
            for p in e.values("memberOf") {
                if let Some(&p) = by_dn.get(&normalize_dn(p)) {
                    parents[g].push(p);
                }
            }
        }
    }
    for p in &mut parents {
        p.sort_unstable();
        p.dedup();
    }

    // 3. Ancestors (self included) per group, through strongly connected
    //    components: a cycle terminates and all its groups share the union.
    let mut ancestors: Vec<Vec<usize>> = vec![Vec::new(); n];
    for comp in sccs(&parents) {
        let mut set: BTreeSet<usize> = comp.iter().copied().collect();
        for &g in &comp {
            for &p in &parents[g] {
                if !comp.contains(&p) {
                    set.extend(ancestors[p].iter().copied());
                }
            }
        }
        let cyclic = comp.len() > 1 || comp.first().is_some_and(|&g| parents[g].contains(&g));
        if cyclic {
            let mut names: Vec<&str> = comp.iter().map(|&g| groups[g].name.as_str()).collect();
            names.sort_unstable();
            let first = comp
                .iter()
                .map(|&g| &groups[g].dn)
                .min()
                .cloned()
                .unwrap_or_default();
            problems.push(problem(
                &first,
                "group_cycle",
                format!(
                    "groups nest in a cycle ({}); each gets the members of all",
                    names.join(", ")
                ),
            ));
        }
        let set: Vec<usize> = set.into_iter().collect();
        for &g in &comp {
            ancestors[g].clone_from(&set);
        }
    }
    let changed_closure: HashSet<usize> = (0..n)
        .filter(|&g| groups[g].changed)
        .flat_map(|g| ancestors[g].iter().copied())
        .collect();

    // 4. Users: ids and usernames, problems, duplicates.
    let ua = &s.user_attributes;
    let mut present_ids = BTreeSet::new();
    let mut candidates: Vec<(&RawEntry, String, String)> = Vec::new();
    for e in &raw.users {
        let id = string_values(e, &ua.id).into_iter().next();
        let username = e
            .first(&ua.username)
            .map(str::trim)
            .filter(|u| !u.is_empty());
        if let Some(id) = &id {
            present_ids.insert(id.clone());
        }
        match (id, username) {
            (Some(id), Some(u)) => candidates.push((e, id, u.to_owned())),
            (id, u) => {
                let missing: Vec<&str> = [
                    id.is_none().then_some(ua.id.as_str()),
                    u.is_none().then_some(ua.username.as_str()),
                ]
                .into_iter()
                .flatten()
                .collect();
                problems.push(problem(
                    &e.dn,
                    "missing_attribute",
                    format!("user has no `{}`; skipped", missing.join("`, `")),
                ));
            }
        }
    }
    let mut username_count: HashMap<String, usize> = HashMap::new();
    let mut id_count: HashMap<&str, usize> = HashMap::new();
    for (_, id, u) in &candidates {
        *username_count.entry(u.to_lowercase()).or_default() += 1;
        *id_count.entry(id.as_str()).or_default() += 1;
    }
    let groups_claims: Vec<&String> = s
        .claims
        .iter()
        .filter(|(_, v)| v.as_str() == GROUPS_CLAIM)
        .map(|(k, _)| k)
        .collect();

    // 5. Valid users with their claims.
    let mut users = Vec::new();
    for (e, id, username) in &candidates {
        let dup_user = username_count
            .get(&username.to_lowercase())
            .copied()
            .unwrap_or(0)
            > 1;
        let dup_id = id_count.get(id.as_str()).copied().unwrap_or(0) > 1;
        if dup_user {
            problems.push(problem(
                &e.dn,
                "duplicate_username",
                format!("username `{username}` is used by several entries; all are skipped"),
            ));
        }
        if dup_id {
            problems.push(problem(
                &e.dn,
                "duplicate_id",
                format!(
                    "id `{id}` (`{}`) is used by several entries; all are skipped",
                    ua.id
                ),
            ));
        }
        if dup_user || dup_id {
            continue;
        }
        let mut direct: BTreeSet<usize> = BTreeSet::new();
        if let Some(gs) = member_dn_groups.get(&normalize_dn(&e.dn)) {
            direct.extend(gs);
        }
        if let Some(gs) = member_uid_groups.get(&username.to_lowercase()) {
            direct.extend(gs);
        }
        if use_member_of {
            for g in e.values("memberOf") {
                if let Some(&g) = by_dn.get(&normalize_dn(g)) {
                    direct.insert(g);
                }
            }
        }
        let all: BTreeSet<usize> = direct
            .iter()
            .flat_map(|&g| ancestors[g].iter().copied())
            .collect();
        let names: BTreeSet<String> = all.iter().map(|&g| groups[g].name.clone()).collect();

        if let Some(known) = known {
            let current = if groups_claims.is_empty() {
                BTreeSet::new()
            } else {
                names.clone()
            };
            let affected = is_changed(e, since)
                || known.get(id.as_str()).is_none_or(|last| *last != current)
                || all.iter().any(|g| changed_closure.contains(g));
            if !affected {
                continue;
            }
        }

        let mut claims = serde_json::Map::new();
        for (claim, source) in &s.claims {
            if source == GROUPS_CLAIM {
                claims.insert(
                    claim.clone(),
                    Value::Array(names.iter().cloned().map(Value::String).collect()),
                );
            } else {
                let mut values = string_values(e, source);
                match values.len() {
                    0 => {}
                    1 => {
                        claims.insert(claim.clone(), Value::String(values.remove(0)));
                    }
                    _ => {
                        claims.insert(
                            claim.clone(),
                            Value::Array(values.into_iter().map(Value::String).collect()),
                        );
                    }
                }
            }
        }
        users.push(DirectoryUser {
            dn: e.dn.clone(),
            id: id.clone(),
            username: username.clone(),
            email: e.first(&ua.email).unwrap_or_default().trim().to_owned(),
            name: e.first(&ua.name).unwrap_or_default().trim().to_owned(),
            claims,
        });
    }
    users.sort_by_key(|a| a.username.to_lowercase());

    Directory {
        users,
        present_ids,
        groups_seen: n,
        full: known.is_none(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            normalize_time("20261129061500Z").as_deref(),
            Some("20261129061500")
        );
        assert_eq!(
            normalize_time("20261129061500.0Z").as_deref(),
            Some("20261129061500")
        );
        assert_eq!(
            normalize_time("2026112906Z").as_deref(),
            Some("20261129060000")
        );
        assert_eq!(normalize_time("yesterday"), None);
        assert_eq!(normalize_time("20261129061500x"), None);
    }

    #[test]
    fn scc_cycles() {
        // 0 -> 1 -> 0, 2 -> 0, 3 alone with a self-loop
        let edges = vec![vec![1], vec![0], vec![0], vec![3]];
        let comps = sccs(&edges);
        assert_eq!(comps.len(), 3);
        // the cycle {0,1} comes before 2 (which reaches it)
        let pos = |g: usize| comps.iter().position(|c| c.contains(&g));
        assert!(pos(0) < pos(2));
        assert_eq!(pos(0), pos(1));
    }
}
