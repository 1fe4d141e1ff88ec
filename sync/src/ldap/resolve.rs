//! The pure part, fed one entry at a time while the read goes on: the groups
//! graph, nesting with cycles, each user's direct groups and attribute values
//! (kept compact), problems, and the affected users of an incremental read.
//! No I/O.
//!
//! Memory: nothing of a raw entry outlives its page. Groups keep their DN and
//! name; their `member` / `memberUid` values go straight into reverse indexes
//! (member -> groups). Users keep their few strings, their direct groups as
//! indexes and the values of the attributes claims read; the `groups` claim
//! is built from the indexes when a user is asked for ([`Directory::user`]).

use std::collections::{BTreeSet, HashMap};

use super::dn::normalize_dn;
use super::read::RawEntry;
use super::{Directory, DirectoryProblem, GROUPS_CLAIM, LdapSettings};

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

fn is_changed(e: &RawEntry, since: Option<&str>) -> bool {
    let Some(since) = since else { return false };
    ["modifytimestamp", "createtimestamp"].iter().any(|a| {
        e.values(a)
            .iter()
            .filter_map(|t| normalize_time(t))
            .any(|t| t.as_str() >= since)
    })
}

fn index(i: usize) -> u32 {
    // Group and attribute counts come from one directory read: far below 2^32.
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Where a claim's values come from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// The names of the user's groups, nesting included.
    Groups,
    /// The values of the attribute at this index of [`Builder::sources`].
    Attribute(usize),
}

/// One valid user, compact.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) dn: Box<str>,
    pub(crate) id: Box<str>,
    pub(crate) username: Box<str>,
    pub(crate) email: Box<str>,
    pub(crate) name: Box<str>,
    /// Direct groups (indexes), sorted.
    pub(crate) groups: Box<[u32]>,
    /// Non-empty values of each claim source attribute.
    pub(crate) values: Box<[Box<[Box<str>]>]>,
    /// Created or modified at or after an incremental read's `since`.
    changed: bool,
}

struct Group {
    dn: String,
    name: Box<str>,
    changed: bool,
}

/// Builds a [`Directory`] from entries as they are read: every group first
/// ([`Builder::add_group`]), then [`Builder::end_groups`], then every user.
pub(crate) struct Builder {
    group_name_attribute: String,
    use_member: bool,
    use_member_uid: bool,
    use_member_of: bool,
    nested: bool,
    user_attributes: super::UserAttributes,
    /// The attributes claims read (lowercased, each once).
    sources: Vec<String>,
    claims: Vec<(String, Source)>,
    since: Option<String>,
    problems: Vec<DirectoryProblem>,
    groups: Vec<Group>,
    /// Each group's own `memberOf` values (normalized), for nesting.
    group_parents: Vec<Vec<String>>,
    by_dn: HashMap<String, u32>,
    /// Normalized `member` DN -> the groups that list it (group DNs are
    /// moved out into nesting edges by `end_groups`).
    member_dns: HashMap<String, Vec<u32>>,
    /// Lowercased `memberUid` -> the groups that list it.
    member_uids: HashMap<String, Vec<u32>>,
    /// Per group: itself and every group it is nested in, sorted.
    ancestors: Vec<Box<[u32]>>,
    /// Per group: a changed group is (or nests in) it.
    changed_closure: Vec<bool>,
    entries: Vec<Entry>,
    present_ids: BTreeSet<String>,
}

impl Builder {
    pub(crate) fn new(s: &LdapSettings, since: Option<String>) -> Self {
        let mut sources: Vec<String> = Vec::new();
        let claims = s
            .claims
            .iter()
            .map(|(claim, source)| {
                let source = if source == GROUPS_CLAIM {
                    Source::Groups
                } else {
                    let attr = source.to_ascii_lowercase();
                    let at = sources.iter().position(|a| *a == attr).unwrap_or_else(|| {
                        sources.push(attr);
                        sources.len() - 1
                    });
                    Source::Attribute(at)
                };
                (claim.clone(), source)
            })
            .collect();
        Builder {
            group_name_attribute: s.group_name_attribute.clone(),
            use_member: s.has_membership("member"),
            use_member_uid: s.has_membership("memberUid"),
            use_member_of: s.has_membership("memberOf"),
            nested: s.nested_groups,
            user_attributes: s.user_attributes.clone(),
            sources,
            claims,
            since,
            problems: Vec::new(),
            groups: Vec::new(),
            group_parents: Vec::new(),
            by_dn: HashMap::new(),
            member_dns: HashMap::new(),
            member_uids: HashMap::new(),
            ancestors: Vec::new(),
            changed_closure: Vec::new(),
            entries: Vec::new(),
            present_ids: BTreeSet::new(),
        }
    }

    pub(crate) fn add_group(&mut self, e: &RawEntry) {
        let Some(name) = e.first(&self.group_name_attribute) else {
            self.problems.push(problem(
                &e.dn,
                "missing_attribute",
                format!("group has no `{}`", self.group_name_attribute),
            ));
            return;
        };
        let g = index(self.groups.len());
        self.by_dn.insert(normalize_dn(&e.dn), g);
        self.groups.push(Group {
            dn: e.dn.clone(),
            name: name.into(),
            changed: is_changed(e, self.since.as_deref()),
        });
        if self.use_member {
            for m in e.values("member") {
                self.member_dns.entry(normalize_dn(m)).or_default().push(g);
            }
        }
        if self.use_member_uid {
            for uid in e.values("memberUid") {
                self.member_uids
                    .entry(uid.trim().to_lowercase())
                    .or_default()
                    .push(g);
            }
        }
        self.group_parents
            .push(if self.use_member_of && self.nested {
                e.values("memberOf")
                    .iter()
                    .map(|p| normalize_dn(p))
                    .collect()
            } else {
                Vec::new()
            });
    }

    /// Every group is read: nesting edges, ancestors through strongly
    /// connected components (a cycle terminates and all its groups share the
    /// union), and the changed closure.
    pub(crate) fn end_groups(&mut self) {
        let n = self.groups.len();
        // Edges child -> parent: `member` values that name a group, and
        // groups' own `memberOf`.
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (dn, &child) in &self.by_dn {
            if let Some(ps) = self.member_dns.remove(dn)
                && self.nested
            {
                parents[child as usize].extend(ps.iter().map(|&p| p as usize));
            }
        }
        for (g, dns) in std::mem::take(&mut self.group_parents).iter().enumerate() {
            for p in dns {
                if let Some(&p) = self.by_dn.get(p) {
                    parents[g].push(p as usize);
                }
            }
        }
        for p in &mut parents {
            p.sort_unstable();
            p.dedup();
        }
        let mut ancestors: Vec<Vec<u32>> = vec![Vec::new(); n];
        for comp in sccs(&parents) {
            let mut set: BTreeSet<u32> = comp.iter().map(|&g| index(g)).collect();
            for &g in &comp {
                for &p in &parents[g] {
                    if !comp.contains(&p) {
                        set.extend(ancestors[p].iter().copied());
                    }
                }
            }
            let cyclic = comp.len() > 1 || comp.first().is_some_and(|&g| parents[g].contains(&g));
            if cyclic {
                let mut names: Vec<&str> = comp.iter().map(|&g| &*self.groups[g].name).collect();
                names.sort_unstable();
                let first = comp
                    .iter()
                    .map(|&g| &self.groups[g].dn)
                    .min()
                    .cloned()
                    .unwrap_or_default();
                self.problems.push(problem(
                    &first,
                    "group_cycle",
                    format!(
                        "groups nest in a cycle ({}); each gets the members of all",
                        names.join(", ")
                    ),
                ));
            }
            let set: Vec<u32> = set.into_iter().collect();
            for &g in &comp {
                ancestors[g].clone_from(&set);
            }
        }
        let mut closure = vec![false; n];
        for (g, group) in self.groups.iter().enumerate() {
            if group.changed {
                for &a in &ancestors[g] {
                    closure[a as usize] = true;
                }
            }
        }
        self.ancestors = ancestors.into_iter().map(Vec::into_boxed_slice).collect();
        self.changed_closure = closure;
        for g in &mut self.groups {
            g.dn = String::new();
        }
        self.member_dns.shrink_to_fit();
        self.member_uids.shrink_to_fit();
    }

    pub(crate) fn add_user(&mut self, e: &RawEntry) {
        let ua = &self.user_attributes;
        let id = string_values(e, &ua.id).into_iter().next();
        let username = e
            .first(&ua.username)
            .map(str::trim)
            .filter(|u| !u.is_empty());
        if let Some(id) = &id {
            self.present_ids.insert(id.clone());
        }
        let (Some(id), Some(username)) = (id.as_deref(), username) else {
            let missing: Vec<&str> = [
                id.is_none().then_some(ua.id.as_str()),
                username.is_none().then_some(ua.username.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect();
            self.problems.push(problem(
                &e.dn,
                "missing_attribute",
                format!("user has no `{}`; skipped", missing.join("`, `")),
            ));
            return;
        };
        let mut direct: Vec<u32> = Vec::new();
        if let Some(gs) = self.member_dns.get(&normalize_dn(&e.dn)) {
            direct.extend(gs);
        }
        if let Some(gs) = self.member_uids.get(&username.to_lowercase()) {
            direct.extend(gs);
        }
        if self.use_member_of {
            for g in e.values("memberOf") {
                if let Some(&g) = self.by_dn.get(&normalize_dn(g)) {
                    direct.push(g);
                }
            }
        }
        direct.sort_unstable();
        direct.dedup();
        let values = self
            .sources
            .iter()
            .map(|src| {
                string_values(e, src)
                    .into_iter()
                    .map(String::into_boxed_str)
                    .collect()
            })
            .collect();
        self.entries.push(Entry {
            dn: e.dn.as_str().into(),
            id: id.into(),
            username: username.into(),
            email: e.first(&ua.email).unwrap_or_default().trim().into(),
            name: e.first(&ua.name).unwrap_or_default().trim().into(),
            groups: direct.into_boxed_slice(),
            values,
            changed: is_changed(e, self.since.as_deref()),
        });
    }

    /// Duplicates out (all entries of a duplicated username or id), the
    /// unaffected users of an incremental read out, sorted by username.
    pub(crate) fn finish(self, known: Option<&HashMap<String, u64>>) -> Directory {
        let Builder {
            claims,
            mut problems,
            groups,
            ancestors,
            changed_closure,
            mut entries,
            present_ids,
            user_attributes,
            ..
        } = self;
        let mut username_count: HashMap<String, u32> = HashMap::new();
        let mut id_count: HashMap<&str, u32> = HashMap::new();
        for e in &entries {
            *username_count.entry(e.username.to_lowercase()).or_default() += 1;
            *id_count.entry(&e.id).or_default() += 1;
        }
        let skip: Vec<bool> = entries
            .iter()
            .map(|e| {
                let dup_user = username_count
                    .get(&e.username.to_lowercase())
                    .is_some_and(|&n| n > 1);
                let dup_id = id_count.get(&*e.id).is_some_and(|&n| n > 1);
                if dup_user {
                    problems.push(problem(
                        &e.dn,
                        "duplicate_username",
                        format!(
                            "username `{}` is used by several entries; all are skipped",
                            e.username
                        ),
                    ));
                }
                if dup_id {
                    problems.push(problem(
                        &e.dn,
                        "duplicate_id",
                        format!(
                            "id `{}` (`{}`) is used by several entries; all are skipped",
                            e.id, user_attributes.id
                        ),
                    ));
                }
                dup_user || dup_id
            })
            .collect();
        drop(id_count);
        drop(username_count);
        let mut skipped = skip.into_iter();
        entries.retain(|_| !skipped.next().unwrap_or(false));

        let mut directory = Directory {
            entries: Vec::new(),
            group_names: groups.into_iter().map(|g| g.name).collect(),
            ancestors,
            claims,
            present_ids,
            groups_seen: 0,
            full: known.is_none(),
            problems,
        };
        directory.groups_seen = directory.group_names.len();
        if let Some(known) = known {
            let has_groups_claim = directory
                .claims
                .iter()
                .any(|(_, s)| matches!(s, Source::Groups));
            entries.retain(|e| {
                let all = directory.all_groups(e);
                let current = if has_groups_claim {
                    super::group_names_digest(directory.names(&all))
                } else {
                    super::group_names_digest([])
                };
                e.changed
                    || known.get(&*e.id).is_none_or(|last| *last != current)
                    || all.iter().any(|&g| changed_closure[g as usize])
            });
        }
        entries.sort_by_cached_key(|e| e.username.to_lowercase());
        entries.shrink_to_fit();
        directory.entries = entries;
        directory
    }
}

impl Directory {
    /// A user's groups, nesting included (indexes, sorted).
    pub(crate) fn all_groups(&self, e: &Entry) -> Vec<u32> {
        let mut all: Vec<u32> = e
            .groups
            .iter()
            .flat_map(|&g| self.ancestors[g as usize].iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub(crate) fn names<'a>(&'a self, groups: &[u32]) -> impl Iterator<Item = &'a str> {
        groups.iter().map(|&g| &*self.group_names[g as usize])
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

    fn entry(dn: &str, attrs: &[(&str, &str)]) -> RawEntry {
        let mut e = RawEntry {
            dn: dn.to_owned(),
            ..RawEntry::default()
        };
        for (k, v) in attrs {
            e.attrs
                .entry(k.to_ascii_lowercase())
                .or_default()
                .push((*v).to_owned());
        }
        e
    }

    #[test]
    fn a_group_named_as_a_member_before_it_is_read_still_nests() {
        let s = LdapSettings {
            claims: [("groups", "groups"), ("dept", "departmentNumber")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..LdapSettings::default()
        };
        let mut b = Builder::new(&s, None);
        // `all` lists `eng` (a group read after it) and bob; `eng` lists
        // alice with another spelling of her DN; `ops` by memberUid.
        b.add_group(&entry(
            "cn=all,ou=groups,dc=x",
            &[
                ("cn", "all"),
                ("member", "CN=eng, ou=groups,dc=x"),
                ("member", "uid=bob,ou=people,dc=x"),
            ],
        ));
        b.add_group(&entry(
            "cn=eng,ou=groups,dc=x",
            &[("cn", "eng"), ("member", "UID=Alice,ou=people,dc=x")],
        ));
        b.add_group(&entry(
            "cn=ops,ou=groups,dc=x",
            &[("cn", "ops"), ("memberUid", "BOB")],
        ));
        b.add_group(&entry("cn=nameless,ou=groups,dc=x", &[]));
        b.end_groups();
        for (uid, depts) in [("alice", &["r&d", "eng"][..]), ("bob", &[][..])] {
            let mut attrs = vec![
                ("uid", uid),
                ("entryUUID", if uid == "alice" { "id-a" } else { "id-b" }),
                ("mail", "x@example.test"),
            ];
            attrs.extend(depts.iter().map(|d| ("departmentNumber", *d)));
            b.add_user(&entry(&format!("uid={uid},ou=people,dc=x"), &attrs));
        }
        let d = b.finish(None);
        assert_eq!(d.len(), 2);
        assert_eq!(d.groups_seen, 3);
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        let alice = d.user(0);
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.claims["groups"], serde_json::json!(["all", "eng"]));
        assert_eq!(alice.claims["dept"], serde_json::json!(["r&d", "eng"]));
        let bob = d.user(1);
        assert_eq!(bob.claims["groups"], serde_json::json!(["all", "ops"]));
        assert!(!bob.claims.contains_key("dept"));
        assert_eq!(d.id(1), "id-b");
    }

    #[test]
    fn group_names_digest_ignores_order_and_repeats() {
        use super::super::group_names_digest as digest;
        assert_eq!(digest(["a", "b"]), digest(["b", "a", "a"]));
        assert_ne!(digest(["a", "b"]), digest(["ab"]));
        assert_ne!(digest(["a"]), digest([]));
        assert_eq!(digest([]), digest(Vec::<&str>::new()));
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
