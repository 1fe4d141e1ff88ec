//! Settings rows: deployment-wide (`deployment_settings`, by key) and per
//! organization (`organization_settings`, by organization and key). Values
//! are JSON text; what they mean belongs to their owners (`idpsync`,
//! `ldapsync`).

use sqlx::Row;

use super::Conn;

/// The stored value of a deployment setting, if any.
pub async fn get_deployment(conn: &mut Conn, key: &str) -> sqlx::Result<Option<String>> {
    sqlx::query("SELECT value FROM deployment_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("value"))
        .transpose()
}

/// Inserts or replaces a deployment setting.
pub async fn put_deployment(
    conn: &mut Conn,
    key: &str,
    value: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO deployment_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Locks a deployment setting's row for the rest of the transaction, creating
/// it empty (read as absent by its owner) when missing. Plain SQL on both
/// databases: the upsert takes the row lock on PostgreSQL; SQLite's write
/// transaction already holds the database lock.
pub async fn lock_deployment(conn: &mut Conn, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO deployment_settings (key, value, updated_at) VALUES ($1, '', '') \
         ON CONFLICT (key) DO UPDATE SET key = excluded.key",
    )
    .bind(key)
    .execute(conn)
    .await
    .map(|_| ())
}

/// [`lock_deployment`] for an organization's setting.
pub async fn lock_org(conn: &mut Conn, org: &str, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO organization_settings (organization_id, key, value, updated_at) \
         VALUES ($1, $2, '', '') \
         ON CONFLICT (organization_id, key) DO UPDATE SET key = excluded.key",
    )
    .bind(org)
    .bind(key)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The stored value of an organization's setting, if any.
pub async fn get_org(conn: &mut Conn, org: &str, key: &str) -> sqlx::Result<Option<String>> {
    sqlx::query("SELECT value FROM organization_settings WHERE organization_id = $1 AND key = $2")
        .bind(org)
        .bind(key)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("value"))
        .transpose()
}

/// Inserts or replaces an organization's setting.
pub async fn put_org(
    conn: &mut Conn,
    org: &str,
    key: &str,
    value: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO organization_settings (organization_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (organization_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(org)
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// One organization setting row.
pub struct OrgSetting {
    pub organization_id: String,
    pub key: String,
    pub value: String,
}

/// Every organization's settings.
pub async fn list_org(conn: &mut Conn) -> sqlx::Result<Vec<OrgSetting>> {
    sqlx::query("SELECT organization_id, key, value FROM organization_settings")
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(OrgSetting {
                organization_id: r.try_get("organization_id")?,
                key: r.try_get("key")?,
                value: r.try_get("value")?,
            })
        })
        .collect()
}
