//! What a run reads of orgsync's side: the directory links (as digests), the
//! known users, and memberships, either everyone's (compact, for the first
//! pass) or a batch's (in the batch's transaction).

use std::collections::{BTreeSet, HashMap};

use orgsync_sync::UserState;
use orgsync_sync::ldap;
use serde_json::{Map, Value};

use super::{LINK_SOURCE, plan};
use crate::model::{LoginType, UserStatus};
use crate::store::Conn;
use crate::store::directory::{self, MembershipKind};

/// A directory identity already known to orgsync.
pub(super) struct Link {
    pub(super) user_id: String,
    /// [`plan::text_digest`] of the claims stored by the last run.
    pub(super) claims_digest: [u8; 16],
    /// [`ldap::group_names_digest`] of the group names of those claims.
    pub(super) groups_digest: u64,
    pub(super) suspended_by_sync: bool,
}

/// The orgsync side of a user.
pub(super) struct Known {
    pub(super) username: String,
    pub(super) email: String,
    pub(super) name: String,
    pub(super) status: UserStatus,
    pub(super) login_type: LoginType,
}

/// Every directory link, with digests of its stored claims (not the claims:
/// 100,000 users' group lists would be most of a run's memory).
pub(super) async fn load_links(
    conn: &mut Conn,
    group_keys: &[&str],
) -> sqlx::Result<HashMap<String, Link>> {
    let mut out = HashMap::new();
    directory::for_each_link(conn, LINK_SOURCE, |r| {
        let claims = match serde_json::from_str::<Value>(&r.claims) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let names: BTreeSet<String> = group_keys
            .iter()
            .filter_map(|k| orgsync_sync::claim_values(&claims, k).ok())
            .flatten()
            .collect();
        out.insert(
            r.external_id,
            Link {
                user_id: r.user_id,
                claims_digest: plan::text_digest(&r.claims),
                groups_digest: ldap::group_names_digest(names.iter().map(String::as_str)),
                suspended_by_sync: r.suspended_by_sync,
            },
        );
    })
    .await?;
    Ok(out)
}

pub(super) async fn load_known_users(conn: &mut Conn) -> sqlx::Result<HashMap<String, Known>> {
    let mut out = HashMap::new();
    directory::for_each_user(conn, |u| {
        out.insert(
            u.id,
            Known {
                username: u.username,
                email: u.email,
                name: u.name,
                status: UserStatus::parse(&u.status),
                login_type: LoginType::parse(&u.login_type),
            },
        );
    })
    .await?;
    Ok(out)
}

/// Every user's memberships, compact: ids and role names interned, so that
/// the first pass over 100,000 users holds a few bytes per membership. Read
/// with three streamed queries.
#[derive(Default)]
pub(super) struct States {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
    users: HashMap<Box<str>, CompactState>,
}

#[derive(Default)]
struct CompactState {
    /// (organization, its roles)
    orgs: Vec<(u32, Vec<u32>)>,
    groups: Vec<u32>,
    site_roles: Vec<u32>,
}

impl States {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    fn user(&mut self, id: &str) -> &mut CompactState {
        if !self.users.contains_key(id) {
            self.users.insert(id.into(), CompactState::default());
        }
        self.users.entry(id.into()).or_default()
    }

    fn name(&self, i: u32) -> String {
        self.names
            .get(i as usize)
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// `user`'s memberships as the planner takes them (empty when unknown).
    pub(super) fn get(&self, user: &str) -> UserState {
        let mut out = UserState::default();
        if let Some(c) = self.users.get(user) {
            for (org, roles) in &c.orgs {
                let org = self.name(*org);
                out.org_roles
                    .insert(org.clone(), roles.iter().map(|r| self.name(*r)).collect());
                out.orgs.insert(org);
            }
            out.groups = c.groups.iter().map(|g| self.name(*g)).collect();
            out.site_roles = c.site_roles.iter().map(|r| self.name(*r)).collect();
        }
        out
    }

    pub(super) async fn load(conn: &mut Conn) -> sqlx::Result<States> {
        let mut st = States::default();
        directory::for_each_org_membership(conn, |user, org, roles| {
            let org = st.intern(&org);
            let roles: Vec<String> = serde_json::from_str(&roles).unwrap_or_default();
            let roles = roles.iter().map(|r| st.intern(r)).collect();
            st.user(&user).orgs.push((org, roles));
        })
        .await?;
        directory::for_each_group_membership(conn, |user, group| {
            let group = st.intern(&group);
            st.user(&user).groups.push(group);
        })
        .await?;
        directory::for_each_site_roles(conn, |user, roles| {
            let roles: Vec<String> = serde_json::from_str(&roles).unwrap_or_default();
            let roles: Vec<u32> = roles
                .iter()
                .filter(|r| *r != "member")
                .map(|r| st.intern(r))
                .collect();
            st.user(&user).site_roles = roles;
        })
        .await?;
        for c in st.users.values_mut() {
            c.orgs.shrink_to_fit();
            c.groups.shrink_to_fit();
        }
        Ok(st)
    }
}

/// The memberships of `users` (ids), read in the caller's transaction (see
/// [`directory::memberships_of`]). Users without any row get no entry.
pub(super) async fn load_states<'a>(
    conn: &mut Conn,
    users: impl Iterator<Item = &'a str>,
) -> sqlx::Result<HashMap<String, UserState>> {
    let ids: Vec<&str> = users.collect();
    let mut out: HashMap<String, UserState> = HashMap::new();
    for r in directory::memberships_of(conn, &ids).await? {
        let roles: Vec<String> = serde_json::from_str(&r.roles).unwrap_or_default();
        let s = out.entry(r.user_id).or_default();
        match r.kind {
            MembershipKind::Org => {
                s.org_roles
                    .insert(r.item.clone(), roles.into_iter().collect());
                s.orgs.insert(r.item);
            }
            MembershipKind::Group => {
                s.groups.insert(r.item);
            }
            MembershipKind::Site => s
                .site_roles
                .extend(roles.into_iter().filter(|r| r != "member")),
        }
    }
    Ok(out)
}
