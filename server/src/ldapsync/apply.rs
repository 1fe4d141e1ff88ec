//! Applying a batch of users' changes in one transaction: what only a
//! directory does (new users, their links, profile updates, suspension and
//! reactivation), then each user's plan through the one IdP sync applier
//! ([`crate::idpsync::apply`]), a login's as well. New users and links go in
//! as multi-row inserts with the batch's memberships and audit entries.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{LINK_SOURCE, UserChange};
use crate::audit::AuditCtx;
use crate::error::ApiError;
use crate::idpsync::apply::{GroupIds, Rows, apply_plan, org_roles, without};
use crate::model::{LoginType, UserStatus};
use crate::store::directory::{self, Arg};
use crate::store::{self, Write};
use crate::usecase::users::{self, NewAccount};

/// Applies a batch of users' changes in the caller's transaction.
pub(super) async fn apply_batch(
    w: &mut Write<'_>,
    batch: &[UserChange],
    default_org: &str,
    now: &str,
    ctx: &AuditCtx,
    groups: &mut GroupIds<'_>,
) -> Result<Vec<&'static str>, ApiError> {
    let mut rows = Rows::default();
    for c in batch {
        let user_id = c.user_id.as_str();
        rows.touched.insert(c.user_id.clone());
        if c.suspend {
            suspend(w, &mut rows, c, now, ctx).await?;
            continue;
        }
        let Some(entry) = &c.entry else {
            continue;
        };
        let plan = &c.plan;
        let username = entry.username.as_str();
        let mut joined_now: BTreeSet<String> = BTreeSet::new();
        if c.create {
            let site_roles = if plan.site_roles.managed {
                without(&plan.site_roles.result, "member")
            } else {
                Vec::new()
            };
            // Every new user joins the default organization, unless the plan
            // (organization sync without assign_default) takes it out again.
            let stays = !plan
                .organizations
                .remove
                .iter()
                .any(|o| o.id == default_org);
            let default_roles = org_roles(plan, default_org);
            users::add_to_batch(
                &mut rows,
                &NewAccount {
                    id: c.user_id.clone(),
                    username: entry.username.clone(),
                    email: entry.email.clone(),
                    name: entry.name.clone(),
                    login_type: LoginType::Ldap,
                    password_hash: None,
                    roles: site_roles,
                },
                stays.then_some((default_org, default_roles.as_slice())),
                &[("ldap_dn", json!(entry.dn))],
                ctx,
                now,
                201,
            );
            if stays {
                joined_now.insert(default_org.to_owned());
            }
        } else {
            existing_user_updates(w, &mut rows, c, now, ctx).await?;
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

        apply_plan(
            w,
            &mut rows,
            groups,
            user_id,
            username,
            plan,
            c.create,
            &mut joined_now,
            now,
            ctx,
        )
        .await?;
    }
    let changes = std::mem::take(&mut rows.changes);
    rows.flush(w).await?;
    Ok(changes)
}

async fn suspend(
    w: &mut Write<'_>,
    rows: &mut Rows,
    c: &UserChange,
    now: &str,
    ctx: &AuditCtx,
) -> Result<(), ApiError> {
    let Some(user) = store::users::find_by_id(w.conn(), &c.user_id).await? else {
        return Ok(());
    };
    store::users::set_status(w, &c.user_id, UserStatus::Suspended, now).await?;
    directory::set_suspended_by_sync(w, &c.user_id, LINK_SOURCE, true).await?;
    let diff = json!({"status": {"old": user.status.as_str(), "new": "suspended"}, "reason": "gone from the directory"});
    rows.user_update(ctx, now, &c.user_id, &user.username, diff);
    Ok(())
}

/// Profile, status and link changes of a user who exists already.
async fn existing_user_updates(
    w: &mut Write<'_>,
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
        let old = store::links::external_id_of(w.conn(), LINK_SOURCE, &c.user_id).await?;
        directory::delete_link(w, &c.user_id, LINK_SOURCE).await?;
        let diff = json!({"ldap_id": {"old": old, "new": entry.id}, "ldap_dn": {"old": null, "new": entry.dn}});
        rows.user_update(ctx, now, &c.user_id, &entry.username, diff);
    }
    if c.update_profile
        && let Some(user) = store::users::find_by_id(w.conn(), &c.user_id).await?
    {
        directory::update_profile(w, &c.user_id, &entry.email, &entry.name, now)
            .await
            .map_err(ApiError::on_unique(
                "another account has this email address",
            ))?;
        let diff = json!({"email": {"old": user.email, "new": entry.email}, "name": {"old": user.name, "new": entry.name}});
        rows.user_update(ctx, now, &c.user_id, &user.username, diff);
    }
    if c.reactivate {
        store::users::set_status(w, &c.user_id, UserStatus::Active, now).await?;
        directory::set_suspended_by_sync(w, &c.user_id, LINK_SOURCE, false).await?;
        let diff = json!({"status": {"old": "suspended", "new": "active"}, "reason": "back in the directory"});
        rows.user_update(ctx, now, &c.user_id, &entry.username, diff);
    }
    Ok(())
}
