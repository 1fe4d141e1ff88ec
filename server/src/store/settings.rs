//! Settings rows: deployment-wide (`deployment_settings`, by key) and per
//! organization (`organization_settings`, by organization and key). Values
//! are JSON text; what they mean belongs to their owners (`idpsync`,
//! `ldapsync`).

use sqlx::Result;

use super::query::{all, execute, scalar_optional};
use super::{Conn, Write};

/// The stored value of a deployment setting, if any.
pub async fn get_deployment(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    let sql = "SELECT value FROM deployment_settings WHERE key = $1";
    scalar_optional(conn, sql, (key,)).await
}

/// Inserts or replaces a deployment setting.
pub async fn put_deployment(w: &mut Write<'_>, key: &str, value: &str, now: &str) -> Result<()> {
    let sql = "INSERT INTO deployment_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
    execute(w, sql, (key, value, now)).await
}

/// Locks a deployment setting's row for the rest of the transaction, creating
/// it empty (read as absent by its owner) when missing. Plain SQL on both
/// databases: the upsert takes the row lock on PostgreSQL; SQLite's write
/// transaction already holds the database lock.
pub async fn lock_deployment(w: &mut Write<'_>, key: &str) -> Result<()> {
    let sql = "INSERT INTO deployment_settings (key, value, updated_at) VALUES ($1, '', '') \
         ON CONFLICT (key) DO UPDATE SET key = excluded.key";
    execute(w, sql, (key,)).await
}

/// [`lock_deployment`] for an organization's setting.
pub async fn lock_org(w: &mut Write<'_>, org: &str, key: &str) -> Result<()> {
    let sql = "INSERT INTO organization_settings (organization_id, key, value, updated_at) \
         VALUES ($1, $2, '', '') ON CONFLICT (organization_id, key) DO UPDATE SET key = excluded.key";
    execute(w, sql, (org, key)).await
}

/// The stored value of an organization's setting, if any.
pub async fn get_org(conn: &mut Conn, org: &str, key: &str) -> Result<Option<String>> {
    let sql = "SELECT value FROM organization_settings WHERE organization_id = $1 AND key = $2";
    scalar_optional(conn, sql, (org, key)).await
}

/// Inserts or replaces an organization's setting.
pub async fn put_org(
    w: &mut Write<'_>,
    org: &str,
    key: &str,
    value: &str,
    now: &str,
) -> Result<()> {
    let sql = "INSERT INTO organization_settings (organization_id, key, value, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id, key) \
         DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
    execute(w, sql, (org, key, value, now)).await
}

/// One organization setting row.
#[derive(sqlx::FromRow)]
pub struct OrgSetting {
    pub organization_id: String,
    pub key: String,
    pub value: String,
}

/// Every organization's settings.
pub async fn list_org(conn: &mut Conn) -> Result<Vec<OrgSetting>> {
    all(
        conn,
        "SELECT organization_id, key, value FROM organization_settings",
        (),
    )
    .await
}
