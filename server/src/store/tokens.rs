//! Sessions and API tokens: random secrets of which only the SHA-256 is stored.

use sqlx::Row;

use super::Conn;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub lifetime_seconds: i64,
    pub expires_at: String,
    pub last_used_at: String,
    /// The owner's current authorization version (see `users.authz_version`).
    pub authz_version: i64,
}

pub struct NewKey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub hashed_secret: &'a str,
    /// `session` (sliding expiry) or `token` (fixed expiry).
    pub kind: &'a str,
    pub token_name: &'a str,
    pub lifetime_seconds: i64,
    pub expires_at: &'a str,
    pub now: &'a str,
}

pub async fn insert(conn: &mut Conn, k: &NewKey<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, hashed_secret, kind, token_name, lifetime_seconds, \
         expires_at, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(k.id)
    .bind(k.user_id)
    .bind(k.hashed_secret)
    .bind(k.kind)
    .bind(k.token_name)
    .bind(k.lifetime_seconds)
    .bind(k.expires_at)
    .bind(k.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn find_by_hash(conn: &mut Conn, hashed: &str) -> sqlx::Result<Option<ApiKey>> {
    let row = sqlx::query(
        "SELECT k.id, k.user_id, k.kind, k.lifetime_seconds, k.expires_at, k.last_used_at, u.authz_version \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hashed_secret = $1",
    )
    .bind(hashed)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ApiKey {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            kind: r.try_get("kind")?,
            lifetime_seconds: r.try_get("lifetime_seconds")?,
            expires_at: r.try_get("expires_at")?,
            last_used_at: r.try_get("last_used_at")?,
            authz_version: r.try_get("authz_version")?,
        })
    })
    .transpose()
}

/// Records a use; a session's expiry slides forward.
pub async fn touch(conn: &mut Conn, id: &str, expires_at: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $2, expires_at = $3 WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn delete(conn: &mut Conn, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn delete_expired(conn: &mut Conn, now: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM api_keys WHERE expires_at < $1")
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected())
}
