//! Sync problems (`idpsync_problems`): what IdP sync at login and directory
//! sync runs could not do, kept for the problems page. Rows are keyed by
//! source (`oidc`, `ldap_sync`, ...).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::Row;

use super::Conn;
use super::directory::{IDS_PER_STATEMENT, placeholders};

/// A problem as served.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredProblem {
    pub id: String,
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub source: String,
    pub kind: String,
    pub detail: String,
    pub time: String,
}

/// What identifies a problem: (organization, user, kind, detail).
pub type ProblemKey = (Option<String>, Option<String>, String, String);

/// Up to `limit` problems of any source, newest first.
pub async fn newest(conn: &mut Conn, limit: i64) -> sqlx::Result<Vec<StoredProblem>> {
    sqlx::query(
        "SELECT id, organization_id, user_id, source, kind, detail, time FROM idpsync_problems ORDER BY time DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(StoredProblem {
            id: r.try_get("id")?,
            organization_id: r.try_get("organization_id")?,
            user_id: r.try_get("user_id")?,
            source: r.try_get("source")?,
            kind: r.try_get("kind")?,
            detail: r.try_get("detail")?,
            time: r.try_get("time")?,
        })
    })
    .collect()
}

/// The stored problems of one source: key -> row ids.
pub async fn keys_of_source(
    conn: &mut Conn,
    source: &str,
) -> sqlx::Result<HashMap<ProblemKey, Vec<String>>> {
    let mut out: HashMap<ProblemKey, Vec<String>> = HashMap::new();
    for r in sqlx::query(
        "SELECT id, organization_id, user_id, kind, detail FROM idpsync_problems WHERE source = $1",
    )
    .bind(source)
    .fetch_all(conn)
    .await?
    {
        out.entry((
            r.try_get("organization_id")?,
            r.try_get("user_id")?,
            r.try_get("kind")?,
            r.try_get("detail")?,
        ))
        .or_default()
        .push(r.try_get("id")?);
    }
    Ok(out)
}

/// A user's problems of one source: (organization or `""`, kind, detail).
pub async fn keys_of_user(
    conn: &mut Conn,
    user_id: &str,
    source: &str,
) -> sqlx::Result<BTreeSet<(String, String, String)>> {
    sqlx::query(
        "SELECT COALESCE(organization_id, '') AS org, kind, detail FROM idpsync_problems \
         WHERE user_id = $1 AND source = $2",
    )
    .bind(user_id)
    .bind(source)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("org")?, r.try_get("kind")?, r.try_get("detail")?)))
    .collect()
}

/// Records one problem.
pub async fn insert(
    conn: &mut Conn,
    org: Option<&str>,
    user: Option<&str>,
    source: &str,
    kind: &str,
    detail: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO idpsync_problems (id, organization_id, user_id, source, kind, detail, time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(super::new_id())
    .bind(org)
    .bind(user)
    .bind(source)
    .bind(kind)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Deletes problems by id, [`IDS_PER_STATEMENT`] at a time.
pub async fn delete(conn: &mut Conn, ids: &[String]) -> sqlx::Result<()> {
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let marks = placeholders(chunk.len());
        // Only placeholders reach the SQL text.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM idpsync_problems WHERE id IN ({marks})"
        )));
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
