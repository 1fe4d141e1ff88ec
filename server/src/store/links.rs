//! A user's identities at external sources (`user_links`): the OIDC subject
//! (`oidc`) and the directory entry id (`ldap`).

use serde::Serialize;
use sqlx::Row;

use super::Conn;

/// One linked identity, as the API shows it (claims are not shown).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Link {
    pub source: String,
    pub external_id: String,
    pub created_at: String,
    pub updated_at: String,
}

pub async fn of_user(conn: &mut Conn, user_id: &str) -> sqlx::Result<Vec<Link>> {
    sqlx::query(
        "SELECT source, external_id, created_at, updated_at FROM user_links \
         WHERE user_id = $1 ORDER BY source, external_id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Link {
            source: r.try_get("source")?,
            external_id: r.try_get("external_id")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .collect()
}

/// The user an external identity is linked to.
pub async fn owner_of(
    conn: &mut Conn,
    source: &str,
    external_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query("SELECT user_id FROM user_links WHERE source = $1 AND external_id = $2")
        .bind(source)
        .bind(external_id)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("user_id"))
        .transpose()
}

pub async fn insert(
    conn: &mut Conn,
    user_id: &str,
    source: &str,
    external_id: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO user_links (user_id, source, external_id, claims, created_at, updated_at) \
         VALUES ($1, $2, $3, '{}', $4, $4)",
    )
    .bind(user_id)
    .bind(source)
    .bind(external_id)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Deletes the user's links of `source` (only `external_id` when given);
/// returns the external ids removed.
pub async fn delete(
    conn: &mut Conn,
    user_id: &str,
    source: &str,
    external_id: Option<&str>,
) -> sqlx::Result<Vec<String>> {
    let ids: Vec<String> = of_user(conn, user_id)
        .await?
        .into_iter()
        .filter(|l| l.source == source && external_id.is_none_or(|e| e == l.external_id))
        .map(|l| l.external_id)
        .collect();
    for id in &ids {
        sqlx::query(
            "DELETE FROM user_links WHERE source = $1 AND external_id = $2 AND user_id = $3",
        )
        .bind(source)
        .bind(id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(ids)
}

/// An administrator decided the user's status: the directory sync no longer
/// owns it (it reactivates only users it suspended itself).
pub async fn clear_sync_suspension(conn: &mut Conn, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE user_links SET suspended_by_sync = 0 WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The user linked to `external_id` at `source`.
pub async fn user_of(
    conn: &mut Conn,
    source: &str,
    external_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query("SELECT user_id FROM user_links WHERE source = $1 AND external_id = $2")
        .bind(source)
        .bind(external_id)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("user_id"))
        .transpose()
}

/// The identity at `source` a user is linked to, if any.
pub async fn external_id_of(
    conn: &mut Conn,
    source: &str,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query("SELECT external_id FROM user_links WHERE source = $1 AND user_id = $2")
        .bind(source)
        .bind(user_id)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("external_id"))
        .transpose()
}

/// Creates the link of `external_id` to `user_id`, or updates its stored
/// claims (JSON text).
pub async fn upsert_with_claims(
    conn: &mut Conn,
    user_id: &str,
    source: &str,
    external_id: &str,
    claims: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO user_links (user_id, source, external_id, claims, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (source, external_id) DO UPDATE SET claims = excluded.claims, \
         updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(source)
    .bind(external_id)
    .bind(claims)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// New or updated links: (user_id, source, external_id, claims, created_at,
/// updated_at) each; an existing link of the external id takes the new
/// claims and user.
pub async fn upsert_many(tx: &mut Conn, rows: Vec<super::bulk::ArgRow>) -> sqlx::Result<()> {
    super::bulk::insert_rows(
        tx,
        "user_links (user_id, source, external_id, claims, created_at, updated_at)",
        "ON CONFLICT (source, external_id) DO UPDATE SET claims = excluded.claims, \
         updated_at = excluded.updated_at, user_id = excluded.user_id",
        6,
        rows,
    )
    .await
}
