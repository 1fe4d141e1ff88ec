//! The audit log, filtered and paginated. Site auditors and owners read
//! everything; org admins and org auditors read their orgs' entries.

use std::collections::BTreeSet;

use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, Ctx, Page};
use crate::clock;
use crate::error::{Error, Result};
use crate::store::{self, audit::AuditFilter};

/// The filters of an audit query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Space-separated `key:value` terms: organization, user, resource_type,
    /// resource_id, action, source, from, to.
    pub q: Option<String>,
    pub organization: Option<String>,
    pub user: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn apply_terms(q: &mut AuditQuery) -> Result<()> {
    let Some(text) = q.q.take() else {
        return Ok(());
    };
    for term in text.split_whitespace() {
        let (k, v) = term
            .split_once(':')
            .ok_or_else(|| Error::validation("q", format!("`{term}` is not `key:value`")))?;
        let v = Some(v.to_owned());
        match k {
            "organization" => q.organization = v,
            "user" | "username" => q.user = v,
            "resource_type" => q.resource_type = v,
            "resource_id" => q.resource_id = v,
            "action" => q.action = v,
            "source" => q.source = v,
            "from" | "since" => q.from = v,
            "to" | "until" => q.to = v,
            other => {
                return Err(Error::validation("q", format!("unknown filter `{other}`")));
            }
        }
    }
    Ok(())
}

fn time_bound(field: &str, v: Option<&String>) -> Result<Option<String>> {
    v.map(|s| {
        clock::parse(s)
            .map(clock::fmt)
            .ok_or_else(|| Error::validation(field, format!("`{s}` is not an RFC 3339 time")))
    })
    .transpose()
}

/// The entries the caller may read that match `q`: `{audit_logs, count}`.
pub async fn list(ctx: Ctx<'_>, caller: &Caller, q: AuditQuery) -> Result<Value> {
    let page = entries(ctx, caller, q).await?;
    Ok(json!({"audit_logs": page.entries, "count": page.count}))
}

/// A page of the audit log, with the names of the users and organizations
/// its entries refer to (for people to read).
#[derive(Debug, Default)]
pub struct AuditPage {
    pub entries: Vec<store::audit::AuditEntry>,
    /// Entries matching the filters, all pages.
    pub count: i64,
    pub limit: i64,
    pub offset: i64,
    /// `(user id, username)` of the entries' users that still exist.
    pub usernames: Vec<(String, String)>,
    /// `(organization id, name)` of every organization.
    pub org_names: Vec<(String, String)>,
}

impl AuditPage {
    /// The username of user `id`, if it still exists.
    pub fn username(&self, id: &str) -> Option<&str> {
        self.usernames
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.as_str())
    }

    /// The name of organization `id`, if it still exists.
    pub fn org_name(&self, id: &str) -> Option<&str> {
        self.org_names
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.as_str())
    }
}

/// [`list`] as typed data.
pub async fn entries(ctx: Ctx<'_>, caller: &Caller, mut q: AuditQuery) -> Result<AuditPage> {
    apply_terms(&mut q)?;
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve(50, 1000)?;
    let mut conn = ctx.conn().await?;
    let organizations = if caller.allowed(ctx.authz, Action::AUDIT_READ_ALL, &Resource::site()) {
        None
    } else {
        let mut allowed = Vec::new();
        // Only the orgs the policies may allow are decided (one decision
        // tells whether the caller reaches orgs it is not a member of).
        let candidates = super::orgs::candidates(
            &mut conn,
            ctx.authz,
            caller,
            Action::AUDIT_READ,
            Resource::audit_log,
        )
        .await?;
        for org in candidates {
            if caller.allowed(
                ctx.authz,
                Action::AUDIT_READ,
                &Resource::audit_log(&org.org_ref()),
            ) {
                allowed.push(org.id);
            }
        }
        if allowed.is_empty() {
            return Err(Error::forbidden().with_detail("you may not read any audit log"));
        }
        Some(allowed)
    };
    let organization_id = match &q.organization {
        Some(key) => Some(
            store::orgs::find(&mut conn, key)
                .await?
                .map(|o| o.id)
                .unwrap_or_else(|| key.clone()),
        ),
        None => None,
    };
    let user_id = match &q.user {
        Some(key) => Some(
            store::users::find(&mut conn, caller.resolve_user_key(key))
                .await?
                .map(|u| u.id)
                .unwrap_or_else(|| key.clone()),
        ),
        None => None,
    };
    let filter = AuditFilter {
        organization_id,
        user_id,
        resource_type: q.resource_type.clone(),
        resource_id: q.resource_id.clone(),
        action: q.action.clone(),
        source: q.source.clone(),
        from: time_bound("from", q.from.as_ref())?,
        to: time_bound("to", q.to.as_ref())?,
        organizations,
        limit,
        offset,
    };
    let (entries, count) = store::audit::list(&mut conn, &filter).await?;
    let ids: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.user_id.as_deref())
        .collect();
    let mut usernames = Vec::new();
    for id in ids {
        if let Some(u) = store::users::find_by_id(&mut conn, id).await? {
            usernames.push((id.to_owned(), u.username));
        }
    }
    let org_names = store::orgs::list(&mut conn)
        .await?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    Ok(AuditPage {
        entries,
        count,
        limit,
        offset,
        usernames,
        org_names,
    })
}
