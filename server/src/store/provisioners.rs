//! Provisioner keys and daemons.

use serde::Serialize;
use sqlx::Result;

use super::query::{Text, affected, all, execute, optional, scalar, scalar_optional, scalars, sql};
use super::{Conn, Flag, Write};
use crate::provisioner::Tags;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProvisionerKey {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    #[sqlx(try_from = "Text")]
    pub tags: Tags,
    pub created_by: String,
    pub created_at: String,
}

const KEY_COLUMNS: &str = "id, organization_id, name, tags, created_by, created_at";

/// JSON text of a list or map column.
fn json_text(value: &impl Serialize, empty: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| empty.to_owned())
}

pub async fn insert_key(w: &mut Write<'_>, k: &ProvisionerKey, hashed_secret: &str) -> Result<()> {
    let sql = "INSERT INTO provisioner_keys (id, organization_id, name, name_lower, \
         hashed_secret, tags, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let args = (
        &k.id,
        &k.organization_id,
        &k.name,
        k.name.to_lowercase(),
        hashed_secret,
        json_text(&k.tags, "{}"),
        &k.created_by,
        &k.created_at,
    );
    execute(w, sql, args).await
}

pub async fn list_keys(conn: &mut Conn, org_id: &str) -> Result<Vec<ProvisionerKey>> {
    let sql = sql!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE organization_id = $1 ORDER BY name_lower"
    );
    all(conn, sql, (org_id,)).await
}

pub async fn find_key(conn: &mut Conn, org_id: &str, name: &str) -> Result<Option<ProvisionerKey>> {
    let sql = sql!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE organization_id = $1 AND name_lower = $2"
    );
    optional(conn, sql, (org_id, name.to_lowercase())).await
}

pub async fn find_key_by_hash(conn: &mut Conn, hashed: &str) -> Result<Option<ProvisionerKey>> {
    let sql = sql!("SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE hashed_secret = $1");
    optional(conn, sql, (hashed,)).await
}

pub async fn delete_key(w: &mut Write<'_>, id: &str) -> Result<()> {
    execute(w, "DELETE FROM provisioner_keys WHERE id = $1", (id,)).await
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Daemon {
    pub id: String,
    pub organization_id: String,
    pub key_id: Option<String>,
    pub name: String,
    #[sqlx(try_from = "Text")]
    pub provisioners: Vec<String>,
    #[sqlx(try_from = "Text")]
    pub tags: Tags,
    pub version: String,
    pub created_at: String,
    pub last_seen_at: String,
    /// idle, busy or offline.
    #[sqlx(skip)]
    pub status: String,
    #[serde(skip)]
    #[sqlx(try_from = "Flag")]
    pub disconnected: bool,
}

const DAEMON_COLUMNS: &str = "id, organization_id, key_id, name, provisioners, tags, version, \
    created_at, last_seen_at, CASE WHEN disconnected_at IS NULL THEN 0 ELSE 1 END AS disconnected";

pub async fn insert_daemon(w: &mut Write<'_>, d: &Daemon) -> Result<()> {
    let sql = "INSERT INTO provisioner_daemons (id, organization_id, key_id, name, provisioners, \
         tags, version, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
    let args = (
        &d.id,
        &d.organization_id,
        d.key_id.as_deref(),
        &d.name,
        json_text(&d.provisioners, "[]"),
        json_text(&d.tags, "{}"),
        &d.version,
        &d.created_at,
    );
    execute(w, sql, args).await
}

pub async fn get_daemon(conn: &mut Conn, id: &str) -> Result<Option<Daemon>> {
    let sql = sql!("SELECT {DAEMON_COLUMNS} FROM provisioner_daemons WHERE id = $1");
    optional(conn, sql, (id,)).await
}

pub async fn touch_daemon(w: &mut Write<'_>, id: &str, now: &str) -> Result<()> {
    let sql = "UPDATE provisioner_daemons SET last_seen_at = $2 WHERE id = $1";
    execute(w, sql, (id, now)).await
}

/// Daemons of an org, with their status computed against `online_after`
/// (a daemon not seen since then is offline) and their running jobs.
pub async fn list_daemons(conn: &mut Conn, org: &str, online_after: &str) -> Result<Vec<Daemon>> {
    let sql = sql!(
        "SELECT {DAEMON_COLUMNS} FROM provisioner_daemons WHERE organization_id = $1 \
         ORDER BY name, id"
    );
    let mut daemons: Vec<Daemon> = all(&mut *conn, sql, (org,)).await?;
    let sql = "SELECT DISTINCT worker_id FROM provisioner_jobs WHERE organization_id = $1 \
         AND status IN ('running', 'canceling') AND worker_id IS NOT NULL";
    let busy: Vec<String> = scalars(conn, sql, (org,)).await?;
    for d in &mut daemons {
        d.status = if d.disconnected || d.last_seen_at.as_str() < online_after {
            "offline"
        } else if busy.contains(&d.id) {
            "busy"
        } else {
            "idle"
        }
        .to_owned();
    }
    Ok(daemons)
}

/// Marks the daemons of a key disconnected; returns their ids.
pub async fn disconnect_key_daemons(
    w: &mut Write<'_>,
    key_id: &str,
    now: &str,
) -> Result<Vec<String>> {
    let sql = "SELECT id FROM provisioner_daemons WHERE key_id = $1";
    let ids = scalars(w.conn(), sql, (key_id,)).await?;
    let sql = "UPDATE provisioner_daemons SET disconnected_at = $2 WHERE key_id = $1";
    execute(w, sql, (key_id, now)).await?;
    Ok(ids)
}

/// Takes the write lock of a key's row until the transaction ends (a no-op
/// update, portable), so registrations with one key run one at a time: the
/// per-key cap and the replacement by name hold across replicas.
pub async fn lock_key(w: &mut Write<'_>, key_id: &str) -> Result<()> {
    let sql = "UPDATE provisioner_keys SET name = name WHERE id = $1";
    execute(w, sql, (key_id,)).await
}

/// The connected daemons of a key named `name` (at most one unless data
/// predates the replacement rule).
pub async fn key_daemons_named(conn: &mut Conn, key_id: &str, name: &str) -> Result<Vec<Daemon>> {
    let sql = sql!(
        "SELECT {DAEMON_COLUMNS} FROM provisioner_daemons WHERE key_id = $1 AND name = $2 \
         AND disconnected_at IS NULL ORDER BY created_at, id"
    );
    all(conn, sql, (key_id, name)).await
}

pub async fn delete_daemon(w: &mut Write<'_>, id: &str) -> Result<()> {
    execute(w, "DELETE FROM provisioner_daemons WHERE id = $1", (id,)).await
}

/// Deletes the daemons of a key (or, with `key_id` None, the built-in daemons
/// of `org_id`) not seen since `online_after` and holding no running job:
/// offline for good, they would only pile up. Returns how many went.
pub async fn prune_offline(
    w: &mut Write<'_>,
    org_id: &str,
    key_id: Option<&str>,
    online_after: &str,
) -> Result<u64> {
    let sql = "DELETE FROM provisioner_daemons WHERE organization_id = $1 \
         AND (key_id = $2 OR ($2 IS NULL AND key_id IS NULL)) AND last_seen_at < $3 \
         AND NOT EXISTS (SELECT 1 FROM provisioner_jobs j \
                         WHERE j.worker_id = provisioner_daemons.id \
                         AND j.status IN ('running', 'canceling'))";
    affected(w, sql, (org_id, key_id, online_after)).await
}

/// How many connected daemons a key has.
pub async fn count_key_daemons(conn: &mut Conn, key_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM provisioner_daemons WHERE key_id = $1 \
         AND disconnected_at IS NULL";
    scalar(conn, sql, (key_id,)).await
}

/// The stored secret hash of a key.
pub async fn hashed_secret(conn: &mut Conn, key_id: &str) -> Result<Option<String>> {
    let sql = "SELECT hashed_secret FROM provisioner_keys WHERE id = $1";
    scalar_optional(conn, sql, (key_id,)).await
}
