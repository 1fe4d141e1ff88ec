use serde::Serialize;
use sqlx::Row;

use super::Conn;

/// An audit log entry as served.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub time: String,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_target: String,
    pub diff: serde_json::Value,
    pub status_code: i64,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub source: String,
}

pub async fn insert(conn: &mut Conn, e: &AuditEntry) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_logs (id, time, user_id, organization_id, action, resource_type, resource_id, \
         resource_target, diff, status_code, ip, user_agent, request_id, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&e.id)
    .bind(&e.time)
    .bind(e.user_id.as_deref())
    .bind(e.organization_id.as_deref())
    .bind(&e.action)
    .bind(&e.resource_type)
    .bind(&e.resource_id)
    .bind(&e.resource_target)
    .bind(e.diff.to_string())
    .bind(e.status_code)
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.request_id)
    .bind(&e.source)
    .execute(conn)
    .await
    .map(|_| ())
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

pub async fn list(conn: &mut Conn, f: &AuditFilter) -> sqlx::Result<(Vec<AuditEntry>, i64)> {
    let mut clauses = vec![
        "($1 IS NULL OR organization_id = $1)".to_owned(),
        "($2 IS NULL OR user_id = $2)".to_owned(),
        "($3 IS NULL OR resource_type = $3)".to_owned(),
        "($4 IS NULL OR action = $4)".to_owned(),
        "($5 IS NULL OR time >= $5)".to_owned(),
        "($6 IS NULL OR time <= $6)".to_owned(),
        "($7 IS NULL OR resource_id = $7)".to_owned(),
        "($8 IS NULL OR source = $8)".to_owned(),
    ];
    // Org restriction: ids are UUIDs we produced; bind them as parameters.
    let allowed = f.organizations.clone().unwrap_or_default();
    if f.organizations.is_some() {
        if allowed.is_empty() {
            clauses.push("1 = 0".to_owned());
        } else {
            let params: Vec<String> = (0..allowed.len()).map(|i| format!("${}", i + 11)).collect();
            clauses.push(format!("organization_id IN ({})", params.join(", ")));
        }
    }
    let where_ = clauses.join(" AND ");
    let count_sql =
        format!("SELECT COUNT(*) AS n FROM audit_logs WHERE {where_} AND $9 >= 0 AND $10 >= 0");
    let list_sql = format!(
        "SELECT id, time, user_id, organization_id, action, resource_type, resource_id, resource_target, \
         diff, status_code, ip, user_agent, request_id, source FROM audit_logs WHERE {where_} \
         ORDER BY time DESC, id DESC LIMIT $9 OFFSET $10"
    );
    let mut total = 0;
    let mut entries = Vec::new();
    for (i, sql) in [count_sql, list_sql].iter().enumerate() {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(f.organization_id.as_deref())
            .bind(f.user_id.as_deref())
            .bind(f.resource_type.as_deref())
            .bind(f.action.as_deref())
            .bind(f.from.as_deref())
            .bind(f.to.as_deref())
            .bind(f.resource_id.as_deref())
            .bind(f.source.as_deref())
            .bind(f.limit)
            .bind(f.offset);
        for org in &allowed {
            q = q.bind(org.as_str());
        }
        if i == 0 {
            total = q.fetch_one(&mut *conn).await?.try_get("n")?;
        } else {
            for r in q.fetch_all(&mut *conn).await? {
                let diff: String = r.try_get("diff")?;
                entries.push(AuditEntry {
                    id: r.try_get("id")?,
                    time: r.try_get("time")?,
                    user_id: r.try_get("user_id")?,
                    organization_id: r.try_get("organization_id")?,
                    action: r.try_get("action")?,
                    resource_type: r.try_get("resource_type")?,
                    resource_id: r.try_get("resource_id")?,
                    resource_target: r.try_get("resource_target")?,
                    diff: serde_json::from_str(&diff).unwrap_or(serde_json::Value::Null),
                    status_code: r.try_get("status_code")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                    request_id: r.try_get("request_id")?,
                    source: r.try_get("source")?,
                });
            }
        }
    }
    Ok((entries, total))
}

/// Audit rows: (id, time, user_id, organization_id, action, resource_type,
/// resource_id, resource_target, diff, status_code, ip, user_agent,
/// request_id, source) each.
pub async fn insert_many(tx: &mut Conn, rows: Vec<super::bulk::ArgRow>) -> sqlx::Result<()> {
    super::bulk::insert_rows(
        tx,
        "audit_logs (id, time, user_id, organization_id, action, resource_type, resource_id, \
         resource_target, diff, status_code, ip, user_agent, request_id, source)",
        "",
        14,
        rows,
    )
    .await
}
