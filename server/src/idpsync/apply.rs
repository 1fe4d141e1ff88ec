//! The one IdP sync applier: writes a user's plan (organization memberships,
//! groups, organization roles, site roles) with an audit entry per change. A
//! login applies a batch of one user; a directory run applies batches of many
//! in one transaction each, its frequent writes (memberships, audit entries,
//! and its new users and links) gathered in [`Rows`] and written by multi-row
//! inserts at [`Rows::flush`]; rare ones (removals, role updates) row by row.
//! Only real differences are in a plan, so applying one twice writes nothing.

use std::collections::{BTreeSet, HashMap};

use orgsync_sync::Plan;
use serde_json::{Value, json};

use crate::audit::AuditCtx;
use crate::error::Error;
use crate::store::directory::{Arg, ArgRow};
use crate::store::{self, Write};

/// Rows gathered for a batch's multi-row inserts, written by [`Rows::flush`].
#[derive(Default)]
pub struct Rows {
    pub(crate) users: Vec<ArgRow>,
    pub(crate) org_members: Vec<ArgRow>,
    pub(crate) group_members: Vec<ArgRow>,
    pub(crate) links: Vec<ArgRow>,
    pub(crate) audit: Vec<ArgRow>,
    pub(crate) touched: BTreeSet<String>,
    /// The kinds of the IdP sync changes written (`metrics::SYNC_CHANGE_KINDS`),
    /// counted once their transaction commits.
    pub(crate) changes: Vec<&'static str>,
}

impl Rows {
    #[allow(clippy::too_many_arguments, reason = "one audit row's columns")]
    pub(crate) fn audit(
        &mut self,
        ctx: &AuditCtx,
        now: &str,
        org: Option<&str>,
        action: &str,
        resource_type: &str,
        resource_id: &str,
        target: &str,
        diff: Value,
        status: u16,
    ) {
        let change = crate::audit::Change {
            organization_id: org,
            action,
            resource_type,
            resource_id,
            resource_target: target,
            diff,
            status_code: status,
        };
        self.audit
            .push(crate::audit::entry(ctx, now, change).into_row());
    }

    /// The audit entry of a change to an account (site-wide, answered 200).
    pub(crate) fn user_update(
        &mut self,
        ctx: &AuditCtx,
        now: &str,
        user_id: &str,
        username: &str,
        diff: Value,
    ) {
        self.audit(
            ctx, now, None, "update", "user", user_id, username, diff, 200,
        );
    }

    pub(crate) fn org_member(&mut self, org: &str, user: &str, roles: &[String], now: &str) {
        self.org_members.push(vec![
            Arg::Text(org.to_owned()),
            Arg::Text(user.to_owned()),
            Arg::Text(serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())),
            Arg::Text(now.to_owned()),
            Arg::Text(now.to_owned()),
        ]);
    }

    pub async fn flush(self, w: &mut Write<'_>) -> sqlx::Result<()> {
        store::users::insert_many(w, self.users).await?;
        store::members::insert_many(w, self.org_members).await?;
        store::groups::insert_members_many(w, self.group_members).await?;
        store::links::upsert_many(w, self.links).await?;
        store::audit::insert_many(w, self.audit).await?;
        let touched: Vec<&str> = self.touched.iter().map(String::as_str).collect();
        store::users::bump_authz(w, &touched).await
    }
}

/// Ids of the groups a run created, by (organization, folded name): those
/// created before the batches (shared by batches applied side by side), and
/// those a batch had to create itself.
pub struct GroupIds<'a> {
    pub created: &'a HashMap<(String, String), String>,
    pub local: HashMap<(String, String), String>,
    /// The `source` of groups created here: `oidc` or `ldap`.
    pub source: &'static str,
}

/// Creates (or finds by name) the groups a run's plan creates, through `w`,
/// with their audit rows: `(organization, name, reason)` each. Returns their
/// ids by (organization, folded name).
pub async fn create_groups(
    w: &mut Write<'_>,
    wanted: &[(String, String, String)],
    now: &str,
    ctx: &AuditCtx,
    source: &'static str,
) -> Result<HashMap<(String, String), String>, Error> {
    let none = HashMap::new();
    let mut ids = GroupIds {
        created: &none,
        local: HashMap::new(),
        source,
    };
    let mut rows = Rows::default();
    for (org, name, reason) in wanted {
        group_id(w, &mut rows, &mut ids, org, name, reason, now, ctx).await?;
    }
    rows.flush(w).await?;
    Ok(ids.local)
}

/// A group for the plan's `(organization, name)`: the known id, else one
/// created earlier in this run, else found by name, else created now.
#[allow(
    clippy::too_many_arguments,
    reason = "the batch's state and the group's names"
)]
pub(crate) async fn group_id(
    w: &mut Write<'_>,
    rows: &mut Rows,
    cache: &mut GroupIds<'_>,
    org: &str,
    name: &str,
    reason: &str,
    now: &str,
    ctx: &AuditCtx,
) -> Result<String, Error> {
    let key = (org.to_owned(), name.to_lowercase());
    if let Some(id) = cache.created.get(&key).or_else(|| cache.local.get(&key)) {
        return Ok(id.clone());
    }
    let id = match store::groups::find_by_name(w.conn(), org, name).await? {
        Some(g) => g.id,
        None => {
            let id = store::new_id();
            store::groups::insert(
                w,
                &store::groups::NewGroup {
                    id: &id,
                    organization_id: org,
                    name,
                    display_name: "",
                    avatar_url: "",
                    quota_allowance: 0,
                    source: cache.source,
                    now,
                },
            )
            .await?;
            rows.audit(
                ctx,
                now,
                Some(org),
                "create",
                "group",
                &id,
                name,
                json!({"name": {"old": null, "new": name}, "source": {"old": null, "new": cache.source}, "reason": reason}),
                201,
            );
            id
        }
    };
    cache.local.insert(key, id.clone());
    Ok(id)
}

pub(crate) fn without(list: &[String], implicit: &str) -> Vec<String> {
    list.iter().filter(|r| *r != implicit).cloned().collect()
}

/// Applies `plan` for `user_id` (named `username` in the audit): adds `rows`,
/// writes the rare changes now. `created`: the user is created in this batch
/// (it leaves no organization). `joined_now`: organizations it joined in this
/// batch already (their roles are set at the join). Returns how many changes
/// it audited.
#[allow(
    clippy::too_many_arguments,
    reason = "the batch's state, the user and the operation's context"
)]
pub async fn apply_plan(
    w: &mut Write<'_>,
    rows: &mut Rows,
    groups: &mut GroupIds<'_>,
    user_id: &str,
    username: &str,
    plan: &Plan,
    created: bool,
    joined_now: &mut BTreeSet<String>,
    now: &str,
    ctx: &AuditCtx,
) -> Result<usize, Error> {
    let audited = rows.audit.len();
    rows.touched.insert(user_id.to_owned());
    let org_roles = |org: &str| org_roles(plan, org);
    // Organizations.
    for o in &plan.organizations.remove {
        if created {
            continue;
        }
        let left = store::members::remove(w, &o.id, user_id).await?;
        rows.audit(
                ctx,
                now,
                Some(&o.id),
                "delete",
                "organization_member",
                user_id,
                username,
                json!({"organization": {"old": o.name, "new": null}, "groups": {"old": left, "new": []}, "reason": o.reason}),
                204,
            );
        rows.changes.push("organization_leave");
    }
    for o in &plan.organizations.add {
        let roles = org_roles(&o.id);
        rows.org_member(&o.id, user_id, &roles, now);
        joined_now.insert(o.id.clone());
        rows.audit(
                ctx,
                now,
                Some(&o.id),
                "create",
                "organization_member",
                user_id,
                username,
                json!({"organization": {"old": null, "new": o.name}, "roles": {"old": null, "new": roles}, "reason": o.reason}),
                201,
            );
        rows.changes.push("organization_join");
    }
    let member_of = |org: &str| {
        !plan.organizations.managed
            || plan.organizations.result_ids.contains(org)
            || joined_now.contains(org)
    };

    // Groups.
    for gp in plan.groups.values().filter(|g| g.managed) {
        let org = gp.organization_id.as_str();
        for g in &gp.remove {
            if let Some(id) = &g.id
                && store::groups::remove_member(w, id, user_id).await?
            {
                rows.audit(
                    ctx,
                    now,
                    Some(org),
                    "update",
                    "group",
                    id,
                    &g.name,
                    json!({"members": {"old": [user_id], "new": []}, "reason": g.reason}),
                    200,
                );
                rows.changes.push("group_leave");
            }
        }
        if !member_of(org) {
            continue;
        }
        for g in &gp.add {
            let gid = match &g.id {
                Some(id) => id.clone(),
                None if g.create => {
                    group_id(w, rows, groups, org, &g.name, &g.reason, now, ctx).await?
                }
                None => continue,
            };
            rows.group_members.push(vec![
                Arg::Text(gid.clone()),
                Arg::Text(user_id.to_owned()),
                Arg::Text(org.to_owned()),
                Arg::Text(now.to_owned()),
            ]);
            rows.audit(
                ctx,
                now,
                Some(org),
                "update",
                "group",
                &gid,
                &g.name,
                json!({"members": {"old": [], "new": [user_id]}, "reason": g.reason}),
                200,
            );
            rows.changes.push("group_join");
        }
    }

    // Roles in organizations the user was already in.
    for rp in plan.roles.values() {
        let Some(org) = rp.organization_id.as_deref() else {
            continue;
        };
        if !rp.managed
            || (rp.add.is_empty() && rp.remove.is_empty())
            || joined_now.contains(org)
            || !member_of(org)
        {
            continue;
        }
        let roles = without(&rp.result, "organization-member");
        let Some(old) = store::members::get(w.conn(), org, user_id).await? else {
            continue;
        };
        store::members::set_roles(w, org, user_id, &roles, now).await?;
        rows.audit(
            ctx,
            now,
            Some(org),
            "update",
            "organization_member",
            user_id,
            username,
            json!({"roles": {"old": old.roles, "new": roles}}),
            200,
        );
        rows.changes.push("organization_roles");
    }
    // Site roles of an existing user.
    let sr = &plan.site_roles;
    if !created && sr.managed && !(sr.add.is_empty() && sr.remove.is_empty()) {
        let roles = without(&sr.result, "member");
        let old = store::users::find_by_id(w.conn(), user_id)
            .await?
            .map(|u| u.roles)
            .unwrap_or_default();
        store::users::set_roles(w, user_id, &roles, now).await?;
        rows.user_update(
            ctx,
            now,
            user_id,
            username,
            json!({"roles": {"old": old, "new": sr.result}}),
        );
        rows.changes.push("site_roles");
    }
    Ok(rows.audit.len() - audited)
}

/// The roles a user ends with in `org` by the plan (for memberships made now).
pub fn org_roles(plan: &Plan, org: &str) -> Vec<String> {
    plan.roles
        .values()
        .find(|r| r.managed && r.organization_id.as_deref() == Some(org))
        .map(|r| without(&r.result, "organization-member"))
        .unwrap_or_default()
}
