//! Sessions and API tokens: random secrets of which only the SHA-256 is stored.

use sqlx::Result;

use super::query::{affected, all, execute, optional};
use super::{Conn, Write};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

pub async fn insert(w: &mut Write<'_>, k: &NewKey<'_>) -> Result<()> {
    let sql = "INSERT INTO api_keys (id, user_id, hashed_secret, kind, token_name, \
         lifetime_seconds, expires_at, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
    let args = (
        k.id,
        k.user_id,
        k.hashed_secret,
        k.kind,
        k.token_name,
        k.lifetime_seconds,
        k.expires_at,
        k.now,
    );
    execute(w, sql, args).await
}

pub async fn find_by_hash(conn: &mut Conn, hashed: &str) -> Result<Option<ApiKey>> {
    let sql = "SELECT k.id, k.user_id, k.kind, k.lifetime_seconds, k.expires_at, k.last_used_at, \
         u.authz_version FROM api_keys k JOIN users u ON u.id = k.user_id \
         WHERE k.hashed_secret = $1";
    optional(conn, sql, (hashed,)).await
}

/// Records a use; a session's expiry slides forward.
pub async fn touch(w: &mut Write<'_>, id: &str, expires_at: &str, now: &str) -> Result<()> {
    let sql = "UPDATE api_keys SET last_used_at = $2, expires_at = $3 WHERE id = $1";
    execute(w, sql, (id, now, expires_at)).await
}

/// An API token as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub token_name: String,
    pub lifetime_seconds: i64,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: String,
}

/// The API tokens of a user (not its login sessions), newest first.
pub async fn list_tokens(conn: &mut Conn, user_id: &str) -> Result<Vec<TokenInfo>> {
    let sql = "SELECT id, user_id, token_name, lifetime_seconds, created_at, expires_at, \
         last_used_at FROM api_keys WHERE user_id = $1 AND kind = 'token' \
         ORDER BY created_at DESC, id DESC";
    all(conn, sql, (user_id,)).await
}

/// One key (token or session) of a user, as listed.
pub async fn find_for_user(conn: &mut Conn, user_id: &str, id: &str) -> Result<Option<TokenInfo>> {
    let sql = "SELECT id, user_id, token_name, lifetime_seconds, created_at, expires_at, \
         last_used_at FROM api_keys WHERE user_id = $1 AND id = $2";
    optional(conn, sql, (user_id, id)).await
}

pub async fn delete(w: &mut Write<'_>, id: &str) -> Result<()> {
    execute(w, "DELETE FROM api_keys WHERE id = $1", (id,)).await
}

pub async fn delete_expired(w: &mut Write<'_>, now: &str) -> Result<u64> {
    affected(w, "DELETE FROM api_keys WHERE expires_at < $1", (now,)).await
}
