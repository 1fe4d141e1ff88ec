//! The planning step of a run, pure: directory entries + what orgsync knows ->
//! the changes per user (matching each entry to a user, the IdP sync plan,
//! profile/status/link changes) and the users to suspend. No I/O.

use std::collections::{HashMap, HashSet};

use orgsync_sync::ldap::DirectoryUser;
use orgsync_sync::{Plan, Planner, UserState};

use super::{Known, Link, ProblemSet, Stats, UserChange};
use crate::model::{LoginType, UserStatus};

/// What orgsync knows at the start of a run.
pub(super) struct Inputs<'a> {
    /// Directory id -> link.
    pub links: &'a HashMap<String, Link>,
    /// User id -> the user.
    pub users: &'a HashMap<String, Known>,
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

/// What the first pass decided for an entry that changes something: the
/// second pass builds the entry again, plans it with the user's memberships as
/// they are then, and applies it. Small, so that a run over 100,000 users
/// keeps decisions, not plans.
#[derive(Debug, Clone)]
pub(super) struct Decision {
    /// The entry's index in the [`Directory`](orgsync_sync::ldap::Directory).
    pub index: usize,
    pub user_id: String,
    pub create: bool,
    /// Linked by this run: `Some(previous)` (see [`Match::Link`]).
    pub link: Option<Option<String>>,
    /// An email change that conflicts: the email stays this.
    pub keep_email: Option<String>,
}

/// Plans a run entry by entry: [`RunPlanner::decide`] validates and matches
/// each entry in directory order (matching depends on the entries before),
/// [`RunPlanner::change`] plans one matched entry given the user's state.
pub(super) struct RunPlanner<'a> {
    links: &'a HashMap<String, Link>,
    users: &'a HashMap<String, Known>,
    planner: &'a Planner<'a>,
    default_org: &'a str,
    email_attribute: &'a str,
    matcher: Matcher<'a>,
    seen_users: HashSet<String>,
    relinked: HashSet<String>,
}

impl<'a> RunPlanner<'a> {
    pub(super) fn new(known: Inputs<'a>, planner: &'a Planner<'a>) -> Self {
        Self {
            links: known.links,
            users: known.users,
            planner,
            default_org: known.default_org,
            email_attribute: known.email_attribute,
            matcher: Matcher::new(known.links, known.users),
            seen_users: HashSet::new(),
            relinked: HashSet::new(),
        }
    }

    /// Validates and matches the entry at `index`; `None` when it is skipped
    /// (the problem is recorded).
    pub(super) fn decide(
        &mut self,
        index: usize,
        entry: &DirectoryUser,
        present: &dyn Fn(&str) -> bool,
        problems: &mut ProblemSet,
        stats: &mut Stats,
    ) -> Option<Decision> {
        stats.users_planned += 1;
        let mut skip = |kind: &str, user: Option<&str>, detail: &str| {
            problems.add(None, user, kind, detail);
            stats.users_skipped += 1;
            None
        };
        if entry.email.is_empty() || crate::model::parse_email("email", &entry.email).is_err() {
            return skip(
                "missing_attribute",
                None,
                &format!(
                    "{}: no valid email address (attribute `{}`); the user is not synced",
                    entry.dn, self.email_attribute
                ),
            );
        }
        if let Err(e) = crate::model::Username::parse("username", &entry.username) {
            return skip(
                "invalid_value",
                None,
                &format!(
                    "{}: the username `{}` is not valid here ({}); the user is not synced",
                    entry.dn, entry.username, e.body.message
                ),
            );
        }
        let (user_id, create, link) = match self.matcher.find(entry, present) {
            Match::Linked(id) => (id, false, None),
            Match::Link { user_id, previous } => (user_id, false, Some(previous)),
            Match::Create => (crate::store::new_id(), true, None),
            Match::Skip(kind, detail) => return skip(kind, None, &detail),
        };
        if !self.seen_users.insert(user_id.clone()) {
            return skip(
                "duplicate_user",
                Some(&user_id),
                &format!(
                    "{}: another directory entry maps to the same user",
                    entry.dn
                ),
            );
        }
        if let Some(Some(previous)) = &link
            && self.links.contains_key(previous)
        {
            self.relinked.insert(user_id.clone());
        }
        // A changed email that another account has (or a new user of this run
        // took) is not applied: reported, the rest of the change goes on.
        let mut keep_email = None;
        if let Some(k) = self.users.get(&user_id)
            && !k.email.eq_ignore_ascii_case(&entry.email)
            && !self.matcher.claim_email(&user_id, &entry.email)
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
            keep_email = Some(k.email.clone());
        }
        Some(Decision {
            index,
            user_id,
            create,
            link,
            keep_email,
        })
    }

    /// Plans a decided entry with the user's memberships (`state`; ignored
    /// for a new user, who starts in the default organization). `Err` when
    /// the sync refuses the user (recorded in `problems`), `Ok(None)` when
    /// nothing changes.
    pub(super) fn change(
        &self,
        d: &Decision,
        mut entry: DirectoryUser,
        state: UserState,
        problems: &mut ProblemSet,
    ) -> Result<Option<UserChange>, ()> {
        let state = if d.create {
            let mut s = UserState::default();
            s.orgs.insert(self.default_org.to_owned());
            s
        } else {
            state
        };
        let plan = self.planner.plan(&entry.claims, &state);
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
                Some(&d.user_id),
                "sync_refused",
                &format!("{}: {}", entry.dn, r.message),
            );
            return Err(());
        }
        if let Some(email) = &d.keep_email {
            entry.email.clone_from(email);
        }
        let previous_link = d
            .link
            .as_ref()
            .and_then(|p| p.as_deref())
            .and_then(|p| self.links.get(p));
        let link_row = self.links.get(&entry.id).or(previous_link);
        let current = self.users.get(&d.user_id);
        let change = UserChange {
            update_profile: current.is_some_and(|k| {
                k.email.to_lowercase() != entry.email.to_lowercase() || k.name != entry.name
            }),
            reactivate: current.is_some_and(|k| k.status == UserStatus::Suspended)
                && link_row.is_some_and(|l| l.suspended_by_sync),
            store_claims: link_row.is_none_or(|l| l.claims_digest != claims_digest(&entry.claims)),
            link: d.link.is_some(),
            user_id: d.user_id.clone(),
            create: d.create,
            suspend: false,
            plan,
            entry: Some(entry),
        };
        Ok((change.create
            || change.link
            || change.update_profile
            || change.store_claims
            || change.reactivate
            || change.plan.has_changes())
        .then_some(change))
    }

    /// Linked users gone from the directory (after every entry is decided):
    /// suspended, never deleted.
    pub(super) fn suspensions(&self, present: &dyn Fn(&str) -> bool) -> Vec<UserChange> {
        let mut out = Vec::new();
        for (ext, l) in self.links {
            if present(ext) || self.relinked.contains(&l.user_id) {
                continue;
            }
            if self
                .users
                .get(&l.user_id)
                .is_some_and(|k| k.status != UserStatus::Suspended)
            {
                out.push(UserChange {
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
        out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        out
    }
}

/// What a link's stored claims are compared by: a digest of their JSON text
/// as the sync writes it (`user_links.claims`).
pub(super) fn claims_digest(claims: &serde_json::Map<String, serde_json::Value>) -> [u8; 16] {
    text_digest(&serde_json::to_string(claims).unwrap_or_default())
}

/// The first 16 bytes of the SHA-256 of `text`.
pub(super) fn text_digest(text: &str) -> [u8; 16] {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
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
            claims_digest: claims_digest(&Map::new()),
            groups_digest: 0,
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
