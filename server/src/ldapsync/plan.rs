//! The planning step of a run, pure: directory entries + what orgsync knows ->
//! the changes per user (matching each entry to a user, the IdP sync plan,
//! profile/status/link changes) and the users to suspend. No I/O.

use std::collections::{HashMap, HashSet};

use orgsync_sync::ldap::{Directory, DirectoryUser};
use orgsync_sync::{Plan, Planner, UserState};

use super::{Known, Link, ProblemSet, Stats, UserChange};
use crate::model::{LoginType, UserStatus};

/// What orgsync knows at the start of a run.
pub(super) struct Inputs<'a> {
    /// Directory id -> link.
    pub links: &'a HashMap<String, Link>,
    /// User id -> the user.
    pub users: &'a HashMap<String, Known>,
    /// User id -> memberships (taken as users are planned).
    pub states: HashMap<String, UserState>,
    pub default_org: &'a str,
    /// The attribute emails come from (for problem messages).
    pub email_attribute: &'a str,
}

/// How a directory entry maps to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Match {
    /// Already linked to this user.
    Linked(String),
    /// An existing user to link, found by email; `previous` is the directory
    /// id it was linked to when that entry is gone (deleted and re-created
    /// entries get a new id).
    Link {
        user_id: String,
        previous: Option<String>,
    },
    /// A new user.
    Create,
    /// Not synced: a problem kind and detail.
    Skip(&'static str, String),
}

/// Lookups for matching, built once per run.
pub(super) struct Matcher<'a> {
    links: &'a HashMap<String, Link>,
    by_username: HashMap<String, String>,
    by_email: HashMap<String, String>,
    link_of_user: HashMap<&'a str, &'a str>,
    /// Users an entry may be linked to by email: those without a password
    /// login (`ldap`, `oidc`, `none`).
    linkable: HashSet<String>,
    /// Usernames and emails new users of this run took.
    taken_usernames: HashSet<String>,
    taken_emails: HashSet<String>,
}

impl<'a> Matcher<'a> {
    pub(super) fn new(links: &'a HashMap<String, Link>, users: &HashMap<String, Known>) -> Self {
        Self {
            links,
            by_username: users
                .iter()
                .map(|(id, k)| (k.username.to_lowercase(), id.clone()))
                .collect(),
            by_email: users
                .iter()
                .filter(|(_, k)| !k.email.is_empty())
                .map(|(id, k)| (k.email.to_lowercase(), id.clone()))
                .collect(),
            linkable: users
                .iter()
                .filter(|(_, k)| k.login_type != LoginType::Password)
                .map(|(id, _)| id.clone())
                .collect(),
            link_of_user: links
                .iter()
                .map(|(ext, l)| (l.user_id.as_str(), ext.as_str()))
                .collect(),
            taken_usernames: HashSet::new(),
            taken_emails: HashSet::new(),
        }
    }

    /// Takes `email` for `user_id` (an email change): false when another
    /// account has it or a new user of this run took it.
    pub(super) fn claim_email(&mut self, user_id: &str, email: &str) -> bool {
        let email = email.to_lowercase();
        if self.by_email.get(&email).is_some_and(|id| id != user_id)
            || self.taken_emails.contains(&email)
        {
            return false;
        }
        self.taken_emails.insert(email);
        true
    }

    /// Matches an entry: by its directory id, else an existing user by email
    /// (never by username alone), else a new user when neither its username
    /// nor its email is taken.
    pub(super) fn find(&mut self, entry: &DirectoryUser, present: &dyn Fn(&str) -> bool) -> Match {
        if let Some(l) = self.links.get(&entry.id) {
            return Match::Linked(l.user_id.clone());
        }
        let email = entry.email.to_lowercase();
        let username = entry.username.to_lowercase();
        if let Some(id) = self.by_email.get(&email) {
            if !self.linkable.contains(id.as_str()) {
                return Match::Skip(
                    "email_conflict",
                    format!(
                        "{}: the email `{}` belongs to an account that signs in with a password; \
                         the directory does not take it over (link it by changing its login type)",
                        entry.dn, entry.email
                    ),
                );
            }
            return match self.link_of_user.get(id.as_str()) {
                None => Match::Link {
                    user_id: id.clone(),
                    previous: None,
                },
                Some(old) if !present(old) => Match::Link {
                    user_id: id.clone(),
                    previous: Some((*old).to_owned()),
                },
                Some(_) => Match::Skip(
                    "email_conflict",
                    format!(
                        "{}: the email `{}` belongs to a user already linked to another directory entry",
                        entry.dn, entry.email
                    ),
                ),
            };
        }
        if self.by_username.contains_key(&username) || self.taken_usernames.contains(&username) {
            return Match::Skip(
                "username_conflict",
                format!(
                    "{}: the username `{}` belongs to another user (with another email); the user is not synced",
                    entry.dn, entry.username
                ),
            );
        }
        if self.taken_emails.contains(&email) {
            return Match::Skip(
                "email_conflict",
                format!(
                    "{}: the email `{}` is used by another directory entry",
                    entry.dn, entry.email
                ),
            );
        }
        self.taken_usernames.insert(username);
        self.taken_emails.insert(email);
        Match::Create
    }
}

/// Plans every directory user of the run, and the suspension of linked users
/// gone from the directory. Counts go to `stats`, problems to `problems`;
/// `planned` is called once per entry (progress).
pub(super) fn plan_run(
    known: Inputs<'_>,
    planner: &Planner<'_>,
    directory: Directory,
    problems: &mut ProblemSet,
    stats: &mut Stats,
    planned: &dyn Fn(),
) -> Vec<UserChange> {
    let Inputs {
        links,
        users,
        mut states,
        default_org,
        email_attribute,
    } = known;
    let mut matcher = Matcher::new(links, users);
    let present_ids = directory.present_ids;
    let present = |id: &str| present_ids.contains(id);
    let mut changes = Vec::new();
    let mut seen_users: HashSet<String> = HashSet::new();
    let mut relinked: HashSet<String> = HashSet::new();
    for entry in directory.users {
        planned();
        stats.users_planned += 1;
        if entry.email.is_empty() || crate::model::parse_email("email", &entry.email).is_err() {
            problems.add(
                None,
                None,
                "missing_attribute",
                &format!(
                    "{}: no valid email address (attribute `{email_attribute}`); the user is not synced",
                    entry.dn
                ),
            );
            stats.users_skipped += 1;
            continue;
        }
        if let Err(e) = crate::model::Username::parse("username", &entry.username) {
            problems.add(
                None,
                None,
                "invalid_value",
                &format!(
                    "{}: the username `{}` is not valid here ({}); the user is not synced",
                    entry.dn, entry.username, e.body.message
                ),
            );
            stats.users_skipped += 1;
            continue;
        }
        let mut entry = entry;
        let (user_id, create, previous) = match matcher.find(&entry, &present) {
            Match::Linked(id) => (id, false, None),
            Match::Link { user_id, previous } => (user_id, false, Some(previous)),
            Match::Create => (crate::store::new_id(), true, None),
            Match::Skip(kind, detail) => {
                problems.add(None, None, kind, &detail);
                stats.users_skipped += 1;
                continue;
            }
        };
        if !seen_users.insert(user_id.clone()) {
            problems.add(
                None,
                Some(&user_id),
                "duplicate_user",
                &format!(
                    "{}: another directory entry maps to the same user",
                    entry.dn
                ),
            );
            stats.users_skipped += 1;
            continue;
        }
        let state = if create {
            let mut s = UserState::default();
            s.orgs.insert(default_org.to_owned());
            s
        } else {
            states.remove(&user_id).unwrap_or_default()
        };
        let plan = planner.plan(&entry.claims, &state);
        // Settings problems are the same for every user who meets them: kept
        // once per organization, kind and detail (with a count on the run),
        // not once per user.
        for p in &plan.problems {
            problems.add(
                p.organization_id.as_deref(),
                None,
                p.kind.as_str(),
                &p.detail,
            );
        }
        if let Some(r) = &plan.refused {
            problems.add(
                None,
                Some(&user_id),
                "sync_refused",
                &format!("{}: {}", entry.dn, r.message),
            );
            stats.users_skipped += 1;
            continue;
        }
        let previous_link = previous
            .as_ref()
            .and_then(|p| p.as_deref())
            .and_then(|p| links.get(p));
        if previous_link.is_some() {
            relinked.insert(user_id.clone());
        }
        let link_row = links.get(&entry.id).or(previous_link);
        let current = users.get(&user_id);
        // A changed email that another account has (or a new user of this run
        // took) is not applied: reported, the rest of the change goes on.
        if let Some(k) = current
            && !k.email.eq_ignore_ascii_case(&entry.email)
            && !matcher.claim_email(&user_id, &entry.email)
        {
            problems.add(
                None,
                Some(&user_id),
                "email_conflict",
                &format!(
                    "{}: the new email `{}` belongs to another account; the email stays `{}`",
                    entry.dn, entry.email, k.email
                ),
            );
            entry.email.clone_from(&k.email);
        }
        let change = UserChange {
            update_profile: current.is_some_and(|k| {
                k.email.to_lowercase() != entry.email.to_lowercase() || k.name != entry.name
            }),
            reactivate: current.is_some_and(|k| k.status == UserStatus::Suspended)
                && link_row.is_some_and(|l| l.suspended_by_sync),
            store_claims: link_row.is_none_or(|l| l.claims != entry.claims),
            link: previous.is_some(),
            user_id,
            create,
            suspend: false,
            plan,
            entry: Some(entry),
        };
        if change.create
            || change.link
            || change.update_profile
            || change.store_claims
            || change.reactivate
            || change.plan.has_changes()
        {
            changes.push(change);
        } else {
            stats.users_unchanged += 1;
        }
    }
    // Users gone from the directory: suspended (never deleted).
    for (ext, l) in links {
        if present_ids.contains(ext) || relinked.contains(&l.user_id) {
            continue;
        }
        if users
            .get(&l.user_id)
            .is_some_and(|k| k.status != UserStatus::Suspended)
        {
            changes.push(UserChange {
                user_id: l.user_id.clone(),
                entry: None,
                create: false,
                link: false,
                update_profile: false,
                store_claims: false,
                reactivate: false,
                suspend: true,
                plan: Plan::default(),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::Map;

    use super::*;

    fn entry(id: &str, username: &str, email: &str) -> DirectoryUser {
        DirectoryUser {
            dn: format!("uid={username},ou=people,dc=example,dc=test"),
            id: id.to_owned(),
            username: username.to_owned(),
            email: email.to_owned(),
            name: String::new(),
            claims: Map::new(),
        }
    }

    fn user(username: &str, email: &str) -> Known {
        Known {
            username: username.to_owned(),
            email: email.to_owned(),
            name: String::new(),
            status: UserStatus::Active,
            login_type: LoginType::Oidc,
        }
    }

    fn link(user_id: &str) -> Link {
        Link {
            user_id: user_id.to_owned(),
            claims: Map::new(),
            suspended_by_sync: false,
        }
    }

    #[test]
    fn entries_match_by_id_then_email_never_by_username_alone() {
        let links = HashMap::from([("uuid-a".to_owned(), link("u-alice"))]);
        let users = HashMap::from([
            ("u-alice".to_owned(), user("alice", "alice@example.com")),
            ("u-bob".to_owned(), user("bob", "bob@example.com")),
            ("u-carol".to_owned(), user("carol", "carol@old.example.com")),
        ]);
        let mut m = Matcher::new(&links, &users);
        let all = |_: &str| true;
        assert_eq!(
            m.find(&entry("uuid-a", "alice", "alice@example.com"), &all),
            Match::Linked("u-alice".to_owned())
        );
        // bob exists unlinked: linked by email (case-insensitive).
        assert_eq!(
            m.find(&entry("uuid-b", "robert", "BOB@example.com"), &all),
            Match::Link {
                user_id: "u-bob".to_owned(),
                previous: None
            }
        );
        // carol's username with another email: not taken over.
        assert!(matches!(
            m.find(&entry("uuid-c", "Carol", "carol@example.com"), &all),
            Match::Skip("username_conflict", _)
        ));
        // alice's email on another entry while alice's entry is present.
        assert!(matches!(
            m.find(&entry("uuid-x", "alice2", "alice@example.com"), &all),
            Match::Skip("email_conflict", _)
        ));
        // New users; a second entry with a new user's username or email is refused.
        assert_eq!(
            m.find(&entry("uuid-d", "dave", "dave@example.com"), &all),
            Match::Create
        );
        assert!(matches!(
            m.find(&entry("uuid-e", "DAVE", "dave2@example.com"), &all),
            Match::Skip("username_conflict", _)
        ));
        assert!(matches!(
            m.find(&entry("uuid-f", "david", "dave@example.com"), &all),
            Match::Skip("email_conflict", _)
        ));
    }

    #[test]
    fn a_recreated_entry_takes_over_the_link_of_its_gone_predecessor() {
        let links = HashMap::from([("uuid-old".to_owned(), link("u-alice"))]);
        let users = HashMap::from([("u-alice".to_owned(), user("alice", "alice@example.com"))]);
        let mut m = Matcher::new(&links, &users);
        let only_new = |id: &str| id == "uuid-new";
        assert_eq!(
            m.find(&entry("uuid-new", "alice", "alice@example.com"), &only_new),
            Match::Link {
                user_id: "u-alice".to_owned(),
                previous: Some("uuid-old".to_owned())
            }
        );
    }
}
