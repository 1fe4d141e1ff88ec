//! OIDC login states (`oidc_states`): kept between `/login` and the callback,
//! by the SHA-256 of the `state` value, taken once.

use sqlx::Row;

use super::Conn;

/// The login state between `/login` and the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect: String,
    pub created_at: String,
}

/// Stores a login state and drops states created before `cutoff`.
pub async fn insert(
    conn: &mut Conn,
    state_hash: &str,
    s: &StoredState,
    cutoff: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM oidc_states WHERE created_at < $1")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO oidc_states (state_hash, nonce, pkce_verifier, redirect, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(state_hash)
    .bind(&s.nonce)
    .bind(&s.pkce_verifier)
    .bind(&s.redirect)
    .bind(&s.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Deletes and returns a login state, once.
pub async fn take(conn: &mut Conn, state_hash: &str) -> sqlx::Result<Option<StoredState>> {
    let row = sqlx::query(
        "DELETE FROM oidc_states WHERE state_hash = $1 \
         RETURNING nonce, pkce_verifier, redirect, created_at",
    )
    .bind(state_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(StoredState {
            nonce: r.try_get("nonce")?,
            pkce_verifier: r.try_get("pkce_verifier")?,
            redirect: r.try_get("redirect")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}
