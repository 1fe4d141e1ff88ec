//! A user's identities at external sources (`user_links`): the OIDC subject
//! (`oidc`) and the directory entry id (`ldap`).

use serde::Serialize;
use sqlx::Result;

use super::query::{all, execute, scalar_optional};
use super::{Conn, Write};

/// One linked identity, as the API shows it (claims are not shown).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Link {
    pub source: String,
    pub external_id: String,
    pub created_at: String,
    pub updated_at: String,
}

pub async fn of_user(conn: &mut Conn, user_id: &str) -> Result<Vec<Link>> {
    let sql = "SELECT source, external_id, created_at, updated_at FROM user_links \
         WHERE user_id = $1 ORDER BY source, external_id";
    all(conn, sql, (user_id,)).await
}

/// The user an external identity is linked to.
pub async fn user_of(conn: &mut Conn, source: &str, external_id: &str) -> Result<Option<String>> {
    let sql = "SELECT user_id FROM user_links WHERE source = $1 AND external_id = $2";
    scalar_optional(conn, sql, (source, external_id)).await
}

/// The identity at `source` a user is linked to, if any.
pub async fn external_id_of(conn: &mut Conn, source: &str, user: &str) -> Result<Option<String>> {
    let sql = "SELECT external_id FROM user_links WHERE source = $1 AND user_id = $2";
    scalar_optional(conn, sql, (source, user)).await
}

pub async fn insert(
    w: &mut Write<'_>,
    user_id: &str,
    source: &str,
    external_id: &str,
    now: &str,
) -> Result<()> {
    let sql = "INSERT INTO user_links (user_id, source, external_id, claims, created_at, \
         updated_at) VALUES ($1, $2, $3, '{}', $4, $4)";
    execute(w, sql, (user_id, source, external_id, now)).await
}

/// Deletes the user's links of `source` (only `external_id` when given);
/// returns the external ids removed.
pub async fn delete(
    w: &mut Write<'_>,
    user_id: &str,
    source: &str,
    external_id: Option<&str>,
) -> Result<Vec<String>> {
    let ids: Vec<String> = of_user(w.conn(), user_id)
        .await?
        .into_iter()
        .filter(|l| l.source == source && external_id.is_none_or(|e| e == l.external_id))
        .map(|l| l.external_id)
        .collect();
    let sql = "DELETE FROM user_links WHERE source = $1 AND external_id = $2 AND user_id = $3";
    for id in &ids {
        execute(w, sql, (source, id, user_id)).await?;
    }
    Ok(ids)
}

/// An administrator decided the user's status: the directory sync no longer
/// owns it (it reactivates only users it suspended itself).
pub async fn clear_sync_suspension(w: &mut Write<'_>, user_id: &str) -> Result<()> {
    let sql = "UPDATE user_links SET suspended_by_sync = 0 WHERE user_id = $1";
    execute(w, sql, (user_id,)).await
}

/// Creates the link of `external_id` to `user_id`, or updates its stored
/// claims (JSON text).
pub async fn upsert_with_claims(
    w: &mut Write<'_>,
    user_id: &str,
    source: &str,
    external_id: &str,
    claims: &str,
    now: &str,
) -> Result<()> {
    let sql = "INSERT INTO user_links (user_id, source, external_id, claims, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (source, external_id) DO UPDATE SET claims = excluded.claims, \
         updated_at = excluded.updated_at";
    let args = (user_id, source, external_id, claims, now);
    execute(w, sql, args).await
}

/// New or updated links: (user_id, source, external_id, claims, created_at,
/// updated_at) each; an existing link of the external id takes the new
/// claims and user.
pub async fn upsert_many(w: &mut Write<'_>, rows: Vec<super::bulk::ArgRow>) -> Result<()> {
    let head = "user_links (user_id, source, external_id, claims, created_at, updated_at)";
    let tail = "ON CONFLICT (source, external_id) DO UPDATE SET claims = excluded.claims, \
         updated_at = excluded.updated_at, user_id = excluded.user_id";
    super::bulk::insert_rows(w, head, tail, rows).await
}
