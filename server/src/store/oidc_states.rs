//! OIDC login states (`oidc_states`): kept between `/login` and the callback,
//! by the SHA-256 of the `state` value, taken once.

use sqlx::Result;

use super::Write;
use super::query::{execute, optional};

/// The login state between `/login` and the callback.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredState {
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect: String,
    pub created_at: String,
}

/// Stores a login state and drops states created before `cutoff`.
pub async fn insert(
    w: &mut Write<'_>,
    state_hash: &str,
    s: &StoredState,
    cutoff: &str,
) -> Result<()> {
    execute(
        w,
        "DELETE FROM oidc_states WHERE created_at < $1",
        (cutoff,),
    )
    .await?;
    let sql = "INSERT INTO oidc_states (state_hash, nonce, pkce_verifier, redirect, created_at) \
         VALUES ($1, $2, $3, $4, $5)";
    let args = (
        state_hash,
        &s.nonce,
        &s.pkce_verifier,
        &s.redirect,
        &s.created_at,
    );
    execute(w, sql, args).await
}

/// Deletes and returns a login state, once.
pub async fn take(w: &mut Write<'_>, state_hash: &str) -> Result<Option<StoredState>> {
    let sql = "DELETE FROM oidc_states WHERE state_hash = $1 \
         RETURNING nonce, pkce_verifier, redirect, created_at";
    optional(w.conn(), sql, (state_hash,)).await
}
