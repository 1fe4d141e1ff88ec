//! Provisioner keys and daemons.

use serde::Serialize;
use sqlx::Row;

use super::Conn;
use crate::provisioner::Tags;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProvisionerKey {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub tags: Tags,
    pub created_by: String,
    pub created_at: String,
}

fn key_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<ProvisionerKey> {
    Ok(ProvisionerKey {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        name: r.try_get("name")?,
        tags: serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

const KEY_COLUMNS: &str = "id, organization_id, name, tags, created_by, created_at";

pub async fn insert_key(
    conn: &mut Conn,
    k: &ProvisionerKey,
    hashed_secret: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO provisioner_keys (id, organization_id, name, name_lower, hashed_secret, tags, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&k.id)
    .bind(&k.organization_id)
    .bind(&k.name)
    .bind(k.name.to_lowercase())
    .bind(hashed_secret)
    .bind(serde_json::to_string(&k.tags).unwrap_or_else(|_| "{}".to_owned()))
    .bind(&k.created_by)
    .bind(&k.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn list_keys(conn: &mut Conn, org_id: &str) -> sqlx::Result<Vec<ProvisionerKey>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE organization_id = $1 ORDER BY name_lower"
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(key_from_row)
    .collect()
}

pub async fn find_key(
    conn: &mut Conn,
    org_id: &str,
    name: &str,
) -> sqlx::Result<Option<ProvisionerKey>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE organization_id = $1 AND name_lower = $2"
    )))
    .bind(org_id)
    .bind(name.to_lowercase())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(key_from_row).transpose()
}

pub async fn find_key_by_hash(
    conn: &mut Conn,
    hashed: &str,
) -> sqlx::Result<Option<ProvisionerKey>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE hashed_secret = $1"
    )))
    .bind(hashed)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(key_from_row).transpose()
}

pub async fn delete_key(conn: &mut Conn, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM provisioner_keys WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Daemon {
    pub id: String,
    pub organization_id: String,
    pub key_id: Option<String>,
    pub name: String,
    pub provisioners: Vec<String>,
    pub tags: Tags,
    pub version: String,
    pub created_at: String,
    pub last_seen_at: String,
    /// idle, busy or offline.
    pub status: String,
    #[serde(skip)]
    pub disconnected: bool,
}

fn daemon_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<Daemon> {
    Ok(Daemon {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        key_id: r.try_get("key_id")?,
        name: r.try_get("name")?,
        provisioners: serde_json::from_str(&r.try_get::<String, _>("provisioners")?)
            .unwrap_or_default(),
        tags: serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default(),
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        status: String::new(),
        disconnected: r.try_get::<Option<String>, _>("disconnected_at")?.is_some(),
    })
}

const DAEMON_COLUMNS: &str = "id, organization_id, key_id, name, provisioners, tags, version, created_at, last_seen_at, disconnected_at";

pub async fn insert_daemon(conn: &mut Conn, d: &Daemon) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO provisioner_daemons (id, organization_id, key_id, name, provisioners, tags, version, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&d.id)
    .bind(&d.organization_id)
    .bind(d.key_id.as_deref())
    .bind(&d.name)
    .bind(serde_json::to_string(&d.provisioners).unwrap_or_else(|_| "[]".to_owned()))
    .bind(serde_json::to_string(&d.tags).unwrap_or_else(|_| "{}".to_owned()))
    .bind(&d.version)
    .bind(&d.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get_daemon(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Daemon>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DAEMON_COLUMNS} FROM provisioner_daemons WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(daemon_from_row).transpose()
}

pub async fn touch_daemon(conn: &mut Conn, id: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE provisioner_daemons SET last_seen_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Daemons of an org, with their status computed against `online_after`
/// (a daemon not seen since then is offline) and their running jobs.
pub async fn list_daemons(
    conn: &mut Conn,
    org_id: &str,
    online_after: &str,
) -> sqlx::Result<Vec<Daemon>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DAEMON_COLUMNS} FROM provisioner_daemons WHERE organization_id = $1 ORDER BY name, id"
    )))
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    let busy: Vec<String> = sqlx::query(
        "SELECT DISTINCT worker_id FROM provisioner_jobs WHERE organization_id = $1 AND status IN ('running', 'canceling') \
         AND worker_id IS NOT NULL",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get("worker_id"))
    .collect::<sqlx::Result<_>>()?;
    let mut out = Vec::new();
    for r in &rows {
        let mut d = daemon_from_row(r)?;
        d.status = if d.disconnected || d.last_seen_at.as_str() < online_after {
            "offline"
        } else if busy.contains(&d.id) {
            "busy"
        } else {
            "idle"
        }
        .to_owned();
        out.push(d);
    }
    Ok(out)
}

/// Marks the daemons of a key disconnected; returns their ids.
pub async fn disconnect_key_daemons(
    conn: &mut Conn,
    key_id: &str,
    now: &str,
) -> sqlx::Result<Vec<String>> {
    let ids: Vec<String> = sqlx::query("SELECT id FROM provisioner_daemons WHERE key_id = $1")
        .bind(key_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<sqlx::Result<_>>()?;
    sqlx::query("UPDATE provisioner_daemons SET disconnected_at = $2 WHERE key_id = $1")
        .bind(key_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(ids)
}

/// Takes the write lock of a key's row until the transaction ends (a no-op
/// update, portable), so registrations with one key run one at a time: the
/// per-key cap and the replacement by name hold across replicas.
pub async fn lock_key(conn: &mut Conn, key_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE provisioner_keys SET name = name WHERE id = $1")
        .bind(key_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The connected daemons of a key named `name` (at most one unless data
/// predates the replacement rule).
pub async fn key_daemons_named(
    conn: &mut Conn,
    key_id: &str,
    name: &str,
) -> sqlx::Result<Vec<Daemon>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DAEMON_COLUMNS} FROM provisioner_daemons WHERE key_id = $1 AND name = $2 \
         AND disconnected_at IS NULL ORDER BY created_at, id"
    )))
    .bind(key_id)
    .bind(name)
    .fetch_all(conn)
    .await?
    .iter()
    .map(daemon_from_row)
    .collect()
}

pub async fn delete_daemon(conn: &mut Conn, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM provisioner_daemons WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Deletes the daemons of a key (or, with `key_id` None, the built-in daemons
/// of `org_id`) not seen since `online_after` and holding no running job:
/// offline for good, they would only pile up. Returns how many went.
pub async fn prune_offline(
    conn: &mut Conn,
    org_id: &str,
    key_id: Option<&str>,
    online_after: &str,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM provisioner_daemons WHERE organization_id = $1 \
         AND (key_id = $2 OR ($2 IS NULL AND key_id IS NULL)) AND last_seen_at < $3 \
         AND NOT EXISTS (SELECT 1 FROM provisioner_jobs j WHERE j.worker_id = provisioner_daemons.id \
                         AND j.status IN ('running', 'canceling'))",
    )
    .bind(org_id)
    .bind(key_id)
    .bind(online_after)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// How many connected daemons a key has.
pub async fn count_key_daemons(conn: &mut Conn, key_id: &str) -> sqlx::Result<i64> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM provisioner_daemons WHERE key_id = $1 AND disconnected_at IS NULL",
    )
    .bind(key_id)
    .fetch_one(conn)
    .await?
    .try_get("n")
}

/// The stored secret hash of a key.
pub async fn hashed_secret(conn: &mut Conn, key_id: &str) -> sqlx::Result<Option<String>> {
    Ok(
        sqlx::query_as::<_, (String,)>("SELECT hashed_secret FROM provisioner_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.0),
    )
}
