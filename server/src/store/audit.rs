//! The audit log (`audit_logs`).

use serde::Serialize;
use sqlx::Result;

use super::Write;
use super::bulk::{Arg, ArgRow};
use super::query::page;

/// An audit log entry as served.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: String,
    pub time: String,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_target: String,
    #[sqlx(try_from = "super::Text")]
    pub diff: serde_json::Value,
    pub status_code: i64,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub source: String,
}

const AUDIT_COLUMNS: &str = "id, time, user_id, organization_id, action, resource_type, \
    resource_id, resource_target, diff, status_code, ip, user_agent, request_id, source";

impl AuditEntry {
    /// Its values in the order of the columns, for [`insert_many`].
    pub fn into_row(self) -> ArgRow {
        vec![
            Arg::Text(self.id),
            Arg::Text(self.time),
            Arg::Opt(self.user_id),
            Arg::Opt(self.organization_id),
            Arg::Text(self.action),
            Arg::Text(self.resource_type),
            Arg::Text(self.resource_id),
            Arg::Text(self.resource_target),
            Arg::Text(self.diff.to_string()),
            Arg::Int(self.status_code),
            Arg::Text(self.ip),
            Arg::Text(self.user_agent),
            Arg::Text(self.request_id),
            Arg::Text(self.source),
        ]
    }
}

pub async fn insert(w: &mut Write<'_>, e: AuditEntry) -> Result<()> {
    insert_many(w, vec![e.into_row()]).await
}

/// Audit rows ([`AuditEntry::into_row`]), in as few statements as the limits
/// of `bulk.rs` allow.
pub async fn insert_many(w: &mut Write<'_>, rows: Vec<ArgRow>) -> Result<()> {
    let head = "audit_logs (id, time, user_id, organization_id, action, resource_type, \
        resource_id, resource_target, diff, status_code, ip, user_agent, request_id, source)";
    super::bulk::insert_rows(w, head, "", rows).await
}

/// Filters of `GET /audit`. `organizations` restricts to entries of those orgs
/// (for callers who may read only some orgs' logs); `None` means all.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub organizations: Option<Vec<String>>,
    pub limit: i64,
    pub offset: i64,
}

/// Entries newest first, and how many match.
pub async fn list(conn: &mut super::Conn, f: &AuditFilter) -> Result<(Vec<AuditEntry>, i64)> {
    let mut from = "audit_logs WHERE ($1 IS NULL OR organization_id = $1) \
        AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR resource_type = $3) \
        AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR time >= $5) \
        AND ($6 IS NULL OR time <= $6) AND ($7 IS NULL OR resource_id = $7) \
        AND ($8 IS NULL OR source = $8)"
        .to_owned();
    let mut args: Vec<Option<&str>> = [
        &f.organization_id,
        &f.user_id,
        &f.resource_type,
        &f.action,
        &f.from,
        &f.to,
        &f.resource_id,
        &f.source,
    ]
    .map(Option::as_deref)
    .to_vec();
    // The organizations' ids are bound; only placeholders reach the SQL text.
    match &f.organizations {
        None => {}
        Some(orgs) if orgs.is_empty() => from.push_str(" AND 1 = 0"),
        Some(orgs) => {
            let first = args.len() + 1;
            let marks: Vec<String> = (first..first + orgs.len())
                .map(|i| format!("${i}"))
                .collect();
            from.push_str(&format!(" AND organization_id IN ({})", marks.join(", ")));
            args.extend(orgs.iter().map(|o| Some(o.as_str())));
        }
    }
    let order = "time DESC, id DESC";
    page(
        conn,
        AUDIT_COLUMNS,
        &from,
        order,
        &args[..],
        (f.limit, f.offset),
    )
    .await
}
