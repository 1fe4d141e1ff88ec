//! Sync problems (`idpsync_problems`): what IdP sync at login and directory
//! sync runs could not do, kept for the problems page. Rows are keyed by
//! source (`oidc`, `ldap_sync`, ...).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::Result;

use super::query::{all, execute, execute_in};
use super::{Conn, Write};

/// A problem as served.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
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
pub async fn newest(conn: &mut Conn, limit: i64) -> Result<Vec<StoredProblem>> {
    let sql = "SELECT id, organization_id, user_id, source, kind, detail, time \
         FROM idpsync_problems ORDER BY time DESC, id DESC LIMIT $1";
    all(conn, sql, (limit,)).await
}

/// The stored problems of one source: key -> row ids.
pub async fn keys_of_source(
    conn: &mut Conn,
    source: &str,
) -> Result<HashMap<ProblemKey, Vec<String>>> {
    let sql = "SELECT id, organization_id, user_id, source, kind, detail, time \
         FROM idpsync_problems WHERE source = $1";
    let rows: Vec<StoredProblem> = all(conn, sql, (source,)).await?;
    let mut out: HashMap<ProblemKey, Vec<String>> = HashMap::new();
    for p in rows {
        let key = (p.organization_id, p.user_id, p.kind, p.detail);
        out.entry(key).or_default().push(p.id);
    }
    Ok(out)
}

/// A user's problems of one source: (organization or `""`, kind, detail).
pub async fn keys_of_user(
    conn: &mut Conn,
    user_id: &str,
    source: &str,
) -> Result<BTreeSet<(String, String, String)>> {
    let sql = "SELECT COALESCE(organization_id, '') AS org, kind, detail FROM idpsync_problems \
         WHERE user_id = $1 AND source = $2";
    let rows: Vec<(String, String, String)> = all(conn, sql, (user_id, source)).await?;
    Ok(rows.into_iter().collect())
}

/// Records one problem.
pub async fn insert(
    w: &mut Write<'_>,
    org: Option<&str>,
    user: Option<&str>,
    source: &str,
    kind: &str,
    detail: &str,
    now: &str,
) -> Result<()> {
    let sql = "INSERT INTO idpsync_problems (id, organization_id, user_id, source, kind, detail, \
         time) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let args = (super::new_id(), org, user, source, kind, detail, now);
    execute(w, sql, args).await
}

/// Deletes problems by id.
pub async fn delete(w: &mut Write<'_>, ids: &[&str]) -> Result<()> {
    let sql = "DELETE FROM idpsync_problems WHERE id IN ({ids})";
    execute_in(w, sql, ids).await.map(|_| ())
}
