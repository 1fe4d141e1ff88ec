//! Applying a batch of users' changes in one transaction. The frequent writes
//! of a directory sync (new users, their links, memberships, audit entries)
//! go in as multi-row inserts; the rare ones (removals, role and profile
//! updates, suspensions) row by row. Writes exactly what the plans say, with
//! an audit entry per change, like a login's sync.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{LINK_SOURCE, UserChange};
use crate::audit::AuditCtx;
use crate::error::ApiError;
use crate::model::UserStatus;
use crate::store::directory::{self, Arg, ArgRow};
use crate::store::{self, Conn};

/// Rows gathered for the batch's multi-row inserts.
#[derive(Default)]
struct Rows {
    users: Vec<ArgRow>,
    org_members: Vec<ArgRow>,
    group_members: Vec<ArgRow>,
    links: Vec<ArgRow>,
    audit: Vec<ArgRow>,
    touched: BTreeSet<String>,
}

impl Rows {
    #[allow(clippy::too_many_arguments, reason = "one audit row's columns")]
    fn audit(
        &mut self,
        ctx: &AuditCtx,
        now: &str,
        org: Option<&str>,
        action: &str,
        resource_type: &str,
        resource_id: &str,
        target: &str,
        diff: Value,
        status: i64,
    ) {
        self.audit.push(vec![
            Arg::Text(store::new_id()),
            Arg::Text(now.to_owned()),
            Arg::Opt(ctx.user_id.clone()),
            Arg::Opt(org.map(str::to_owned)),
            Arg::Text(action.to_owned()),
            Arg::Text(resource_type.to_owned()),
            Arg::Text(resource_id.to_owned()),
            Arg::Text(target.to_owned()),
            Arg::Text(diff.to_string()),
            Arg::Int(status),
            Arg::Text(ctx.ip.clone()),
            Arg::Text(ctx.user_agent.clone()),
            Arg::Text(ctx.request_id.clone()),
            Arg::Text(ctx.source.to_owned()),
        ]);
    }

    fn org_member(&mut self, org: &str, user: &str, roles: &[String], now: &str) {
        self.org_members.push(vec![
            Arg::Text(org.to_owned()),
            Arg::Text(user.to_owned()),
            Arg::Text(serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())),
            Arg::Text(now.to_owned()),
            Arg::Text(now.to_owned()),
        ]);
    }

    async fn flush(self, tx: &mut Conn) -> sqlx::Result<()> {
        directory::insert_users(tx, self.users).await?;
        directory::insert_org_members(tx, self.org_members).await?;
        directory::insert_group_members(tx, self.group_members).await?;
        directory::upsert_links(tx, self.links).await?;
        directory::insert_audit_rows(tx, self.audit).await?;
        let touched: Vec<String> = self.touched.into_iter().collect();
        directory::bump_authz_versions(tx, &touched).await
    }
}

/// Ids of the groups a run created, by (organization, folded name): those
/// created before the batches (shared by batches applied side by side), and
/// those a batch had to create itself.
pub(super) struct GroupIds<'a> {
    pub created: &'a HashMap<(String, String), String>,
    pub local: HashMap<(String, String), String>,
}

/// Creates (or finds by name) the groups a run's plan creates, in `tx`,
/// with their audit rows: `(organization, name, reason)` each. Returns their
/// ids by (organization, folded name).
pub(super) async fn create_groups(
    tx: &mut Conn,
    wanted: &[(String, String, String)],
    now: &str,
    ctx: &AuditCtx,
) -> Result<HashMap<(String, String), String>, ApiError> {
    let none = HashMap::new();
    let mut ids = GroupIds {
        created: &none,
        local: HashMap::new(),
    };
    let mut rows = Rows::default();
    for (org, name, reason) in wanted {
        group_id(tx, &mut rows, &mut ids, org, name, reason, now, ctx).await?;
    }
    rows.flush(tx).await?;
    Ok(ids.local)
}

/// A group for the plan's `(organization, name)`: the known id, else one
/// created earlier in this run, else found by name, else created now.
#[allow(
    clippy::too_many_arguments,
    reason = "the batch's state and the group's names"
)]
async fn group_id(
    tx: &mut Conn,
    rows: &mut Rows,
    cache: &mut GroupIds<'_>,
    org: &str,
    name: &str,
    reason: &str,
    now: &str,
    ctx: &AuditCtx,
) -> Result<String, ApiError> {
    let key = (org.to_owned(), name.to_lowercase());
    if let Some(id) = cache.created.get(&key).or_else(|| cache.local.get(&key)) {
        return Ok(id.clone());
    }
    let id = match store::groups::find_by_name(tx, org, name).await? {
        Some(g) => g.id,
        None => {
            let id = store::new_id();
            store::groups::insert(
                tx,
                &store::groups::NewGroup {
                    id: &id,
                    organization_id: org,
                    name,
                    display_name: "",
                    avatar_url: "",
                    quota_allowance: 0,
                    source: "ldap",
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
                json!({"name": {"old": null, "new": name}, "source": {"old": null, "new": "ldap"}, "reason": reason}),
                201,
            );
            id
        }
    };
    cache.local.insert(key, id.clone());
    Ok(id)
}

fn without(list: &[String], implicit: &str) -> Vec<String> {
    list.iter().filter(|r| *r != implicit).cloned().collect()
}

/// Applies a batch of users' changes in the caller's transaction.
pub(super) async fn apply_batch(
    tx: &mut Conn,
    batch: &[UserChange],
    default_org: &str,
    now: &str,
    ctx: &AuditCtx,
    groups: &mut GroupIds<'_>,
) -> Result<(), ApiError> {
    let mut rows = Rows::default();
    for c in batch {
        let user_id = c.user_id.as_str();
        rows.touched.insert(c.user_id.clone());
        if c.suspend {
            suspend(tx, &mut rows, c, now, ctx).await?;
            continue;
        }
        let Some(entry) = &c.entry else {
            continue;
        };
        let plan = &c.plan;
        let username = entry.username.as_str();
        // The roles each organization ends with (for memberships made now).
        let org_roles = |org: &str| -> Vec<String> {
            plan.roles
                .values()
                .find(|r| r.managed && r.organization_id.as_deref() == Some(org))
                .map(|r| without(&r.result, "organization-member"))
                .unwrap_or_default()
        };
        let mut joined_now: BTreeSet<&str> = BTreeSet::new();
        if c.create {
            let site_roles = if plan.site_roles.managed {
                without(&plan.site_roles.result, "member")
            } else {
                Vec::new()
            };
            let roles_json = serde_json::to_string(&site_roles).unwrap_or_else(|_| "[]".to_owned());
            rows.users.push(vec![
                Arg::Text(c.user_id.clone()),
                Arg::Text(entry.username.clone()),
                Arg::Text(entry.username.to_lowercase()),
                Arg::Text(entry.email.clone()),
                Arg::Text(entry.email.to_lowercase()),
                Arg::Text(entry.name.clone()),
                Arg::Text(String::new()),
                Arg::Text("active".to_owned()),
                Arg::Text("ldap".to_owned()),
                Arg::Opt(None),
                Arg::Text(roles_json),
                Arg::Text(now.to_owned()),
                Arg::Text(now.to_owned()),
                Arg::Int(1),
            ]);
            let mut everything = site_roles.clone();
            everything.insert(0, "member".to_owned());
            rows.audit(
                ctx,
                now,
                None,
                "create",
                "user",
                user_id,
                username,
                json!({
                    "id": {"old": null, "new": user_id},
                    "username": {"old": null, "new": username},
                    "email": {"old": null, "new": entry.email},
                    "name": {"old": null, "new": entry.name},
                    "status": {"old": null, "new": "active"},
                    "login_type": {"old": null, "new": "ldap"},
                    "roles": {"old": null, "new": everything},
                    "ldap_dn": {"old": null, "new": entry.dn},
                }),
                201,
            );
            // Every new user joins the default organization, unless the plan
            // (organization sync without assign_default) takes it out again.
            if !plan
                .organizations
                .remove
                .iter()
                .any(|o| o.id == default_org)
            {
                rows.org_member(default_org, user_id, &org_roles(default_org), now);
                joined_now.insert(default_org);
            }
        } else {
            existing_user_updates(tx, &mut rows, c, now, ctx).await?;
        }
        if c.create || c.link || c.store_claims {
            rows.links.push(vec![
                Arg::Text(c.user_id.clone()),
                Arg::Text(LINK_SOURCE.to_owned()),
                Arg::Text(entry.id.clone()),
                Arg::Text(Value::Object(entry.claims.clone()).to_string()),
                Arg::Text(now.to_owned()),
                Arg::Text(now.to_owned()),
            ]);
        }

        // Organizations.
        for o in &plan.organizations.remove {
            if c.create {
                continue;
            }
            let left = store::members::remove(tx, &o.id, user_id).await?;
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
        }
        for o in &plan.organizations.add {
            let roles = org_roles(&o.id);
            rows.org_member(&o.id, user_id, &roles, now);
            joined_now.insert(o.id.as_str());
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
                    && store::groups::remove_member(tx, id, user_id).await?
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
                }
            }
            if !member_of(org) {
                continue;
            }
            for g in &gp.add {
                let gid = match &g.id {
                    Some(id) => id.clone(),
                    None if g.create => {
                        group_id(tx, &mut rows, groups, org, &g.name, &g.reason, now, ctx).await?
                    }
                    None => continue,
                };
                rows.group_members.push(vec![
                    Arg::Text(gid.clone()),
                    Arg::Text(c.user_id.clone()),
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
            let Some(old) = store::members::get(tx, org, user_id).await? else {
                continue;
            };
            store::members::set_roles(tx, org, user_id, &roles, now).await?;
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
        }
        // Site roles of an existing user.
        let sr = &plan.site_roles;
        if !c.create && sr.managed && !(sr.add.is_empty() && sr.remove.is_empty()) {
            let roles = without(&sr.result, "member");
            let old = store::users::find_by_id(tx, user_id)
                .await?
                .map(|u| u.roles)
                .unwrap_or_default();
            store::users::set_roles(tx, user_id, &roles, now).await?;
            rows.audit(
                ctx,
                now,
                None,
                "update",
                "user",
                user_id,
                username,
                json!({"roles": {"old": old, "new": sr.result}}),
                200,
            );
        }
    }
    rows.flush(tx).await?;
    Ok(())
}

async fn suspend(
    tx: &mut Conn,
    rows: &mut Rows,
    c: &UserChange,
    now: &str,
    ctx: &AuditCtx,
) -> Result<(), ApiError> {
    let Some(user) = store::users::find_by_id(tx, &c.user_id).await? else {
        return Ok(());
    };
    store::users::set_status(tx, &c.user_id, UserStatus::Suspended, now).await?;
    directory::set_suspended_by_sync(tx, &c.user_id, LINK_SOURCE, true).await?;
    rows.audit(
        ctx,
        now,
        None,
        "update",
        "user",
        &c.user_id,
        &user.username,
        json!({"status": {"old": user.status.as_str(), "new": "suspended"}, "reason": "gone from the directory"}),
        200,
    );
    Ok(())
}

/// Profile, status and link changes of a user who exists already.
async fn existing_user_updates(
    tx: &mut Conn,
    rows: &mut Rows,
    c: &UserChange,
    now: &str,
    ctx: &AuditCtx,
) -> Result<(), ApiError> {
    let Some(entry) = &c.entry else {
        return Ok(());
    };
    if c.link {
        // Linked to an entry that is gone (deleted and re-created in the
        // directory): the link moves to the new entry.
        let old = directory::link_external_id(tx, &c.user_id, LINK_SOURCE).await?;
        directory::delete_link(tx, &c.user_id, LINK_SOURCE).await?;
        rows.audit(
            ctx,
            now,
            None,
            "update",
            "user",
            &c.user_id,
            &entry.username,
            json!({"ldap_id": {"old": old, "new": entry.id}, "ldap_dn": {"old": null, "new": entry.dn}}),
            200,
        );
    }
    if c.update_profile
        && let Some(user) = store::users::find_by_id(tx, &c.user_id).await?
    {
        directory::update_profile(tx, &c.user_id, &entry.email, &entry.name, now)
            .await
            .map_err(ApiError::on_unique(
                "another account has this email address",
            ))?;
        rows.audit(
            ctx,
            now,
            None,
            "update",
            "user",
            &c.user_id,
            &user.username,
            json!({"email": {"old": user.email, "new": entry.email}, "name": {"old": user.name, "new": entry.name}}),
            200,
        );
    }
    if c.reactivate {
        store::users::set_status(tx, &c.user_id, UserStatus::Active, now).await?;
        directory::set_suspended_by_sync(tx, &c.user_id, LINK_SOURCE, false).await?;
        rows.audit(
            ctx,
            now,
            None,
            "update",
            "user",
            &c.user_id,
            &entry.username,
            json!({"status": {"old": "suspended", "new": "active"}, "reason": "back in the directory"}),
            200,
        );
    }
    Ok(())
}
