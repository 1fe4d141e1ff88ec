//! Workspaces and their builds.

use serde::Serialize;
use sqlx::Row;

use super::Conn;
use crate::db::flag;
use crate::provisioner::{JobStatus, ParameterValue, Transition};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BuildSummary {
    pub id: String,
    pub build_number: i64,
    pub transition: Transition,
    /// The status of the build's job.
    pub status: JobStatus,
    pub job_id: String,
    pub template_version_id: String,
    pub initiator_id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub organization_id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub template_id: String,
    pub template_name: String,
    pub template_version_id: String,
    pub name: String,
    pub latest_build: Option<BuildSummary>,
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
}

const BUILD_SELECT: &str = "SELECT b.id, b.workspace_id, b.build_number, b.transition, b.job_id, b.template_version_id, \
    b.initiator_id, b.created_at, j.status AS job_status, j.error AS job_error \
    FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id";

fn build_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<BuildSummary> {
    Ok(BuildSummary {
        id: r.try_get("id")?,
        build_number: r.try_get("build_number")?,
        transition: Transition::parse(&r.try_get::<String, _>("transition")?),
        status: JobStatus::parse(&r.try_get::<String, _>("job_status")?)
            .unwrap_or(JobStatus::Failed),
        job_id: r.try_get("job_id")?,
        template_version_id: r.try_get("template_version_id")?,
        initiator_id: r.try_get("initiator_id")?,
        created_at: r.try_get("created_at")?,
        error: r.try_get("job_error")?,
    })
}

const WS_SELECT: &str = "SELECT w.id, w.organization_id, w.owner_id, u.username AS owner_name, w.template_id, \
    t.name AS template_name, w.name, w.deleted, w.created_at, w.updated_at \
    FROM workspaces w JOIN users u ON u.id = w.owner_id JOIN templates t ON t.id = w.template_id";

async fn ws_from_row(conn: &mut Conn, r: &sqlx::any::AnyRow) -> sqlx::Result<Workspace> {
    let id: String = r.try_get("id")?;
    let latest = latest_build(conn, &id).await?;
    Ok(Workspace {
        organization_id: r.try_get("organization_id")?,
        owner_id: r.try_get("owner_id")?,
        owner_name: r.try_get("owner_name")?,
        template_id: r.try_get("template_id")?,
        template_name: r.try_get("template_name")?,
        template_version_id: latest
            .as_ref()
            .map(|b| b.template_version_id.clone())
            .unwrap_or_default(),
        name: r.try_get("name")?,
        latest_build: latest,
        deleted: r.try_get::<i64, _>("deleted")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        id,
    })
}

pub struct NewWorkspace<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub owner_id: &'a str,
    pub template_id: &'a str,
    pub name: &'a str,
    pub now: &'a str,
}

pub async fn insert(conn: &mut Conn, w: &NewWorkspace<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, name_lower, deleted, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
    )
    .bind(w.id)
    .bind(w.organization_id)
    .bind(w.owner_id)
    .bind(w.template_id)
    .bind(w.name)
    .bind(w.name.to_lowercase())
    .bind(w.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Workspace>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{WS_SELECT} WHERE w.id = $1 AND w.deleted = 0"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => Ok(Some(ws_from_row(conn, &r).await?)),
        None => Ok(None),
    }
}

/// A live workspace by owner and name.
pub async fn find_by_name(
    conn: &mut Conn,
    owner_id: &str,
    name: &str,
) -> sqlx::Result<Option<Workspace>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{WS_SELECT} WHERE w.owner_id = $1 AND w.name_lower = $2 AND w.deleted = 0"
    )))
    .bind(owner_id)
    .bind(name.to_lowercase())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => Ok(Some(ws_from_row(conn, &r).await?)),
        None => Ok(None),
    }
}

/// Live workspaces, optionally of one owner.
pub async fn list(conn: &mut Conn, owner_id: Option<&str>) -> sqlx::Result<Vec<Workspace>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{WS_SELECT} WHERE w.deleted = 0 AND ($1 IS NULL OR w.owner_id = $1) ORDER BY w.created_at DESC, w.id DESC"
    )))
    .bind(owner_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(ws_from_row(conn, r).await?);
    }
    Ok(out)
}

pub async fn mark_deleted(conn: &mut Conn, id: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE workspaces SET deleted = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(flag(true))
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn latest_build(
    conn: &mut Conn,
    workspace_id: &str,
) -> sqlx::Result<Option<BuildSummary>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BUILD_SELECT} WHERE b.workspace_id = $1 ORDER BY b.build_number DESC LIMIT 1"
    )))
    .bind(workspace_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(build_from_row).transpose()
}

pub async fn builds(conn: &mut Conn, workspace_id: &str) -> sqlx::Result<Vec<BuildSummary>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BUILD_SELECT} WHERE b.workspace_id = $1 ORDER BY b.build_number DESC"
    )))
    .bind(workspace_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(build_from_row)
    .collect()
}

pub struct NewBuild<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub build_number: i64,
    pub transition: Transition,
    pub template_version_id: &'a str,
    pub job_id: &'a str,
    pub initiator_id: &'a str,
    pub parameters: &'a [ParameterValue],
    pub now: &'a str,
}

pub async fn insert_build(conn: &mut Conn, b: &NewBuild<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workspace_builds (id, workspace_id, build_number, transition, template_version_id, job_id, \
         initiator_id, parameters, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(b.id)
    .bind(b.workspace_id)
    .bind(b.build_number)
    .bind(b.transition.as_str())
    .bind(b.template_version_id)
    .bind(b.job_id)
    .bind(b.initiator_id)
    .bind(serde_json::to_string(b.parameters).unwrap_or_else(|_| "[]".to_owned()))
    .bind(b.now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The build of a job, with its workspace id, parameters and number.
pub struct BuildJob {
    pub build_id: String,
    pub workspace_id: String,
    pub build_number: i64,
    pub transition: Transition,
    pub template_version_id: String,
    pub parameters: Vec<ParameterValue>,
}

pub async fn build_by_job(conn: &mut Conn, job_id: &str) -> sqlx::Result<Option<BuildJob>> {
    let row = sqlx::query(
        "SELECT id, workspace_id, build_number, transition, template_version_id, parameters FROM workspace_builds WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(BuildJob {
            build_id: r.try_get("id")?,
            workspace_id: r.try_get("workspace_id")?,
            build_number: r.try_get("build_number")?,
            transition: Transition::parse(&r.try_get::<String, _>("transition")?),
            template_version_id: r.try_get("template_version_id")?,
            parameters: serde_json::from_str(&r.try_get::<String, _>("parameters")?)
                .unwrap_or_default(),
        })
    })
    .transpose()
}

/// The state of the workspace's newest build that has one.
pub async fn last_state(
    conn: &mut Conn,
    workspace_id: &str,
    before_build: i64,
) -> sqlx::Result<Option<String>> {
    sqlx::query(
        "SELECT state_base64 FROM workspace_builds WHERE workspace_id = $1 AND build_number < $2 \
         AND state_base64 IS NOT NULL ORDER BY build_number DESC LIMIT 1",
    )
    .bind(workspace_id)
    .bind(before_build)
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get("state_base64"))
    .transpose()
}

pub async fn set_state(conn: &mut Conn, build_id: &str, state: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE workspace_builds SET state_base64 = $2 WHERE id = $1")
        .bind(build_id)
        .bind(state)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether a workspace has a build whose job has not finished.
pub async fn has_active_build(conn: &mut Conn, workspace_id: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "SELECT b.id FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id \
         WHERE b.workspace_id = $1 AND j.status IN ('pending', 'running', 'canceling') LIMIT 1",
    )
    .bind(workspace_id)
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// Live workspaces of an owner (any org), for refusing to delete the user.
pub async fn count_for_owner(conn: &mut Conn, owner_id: &str) -> sqlx::Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM workspaces WHERE owner_id = $1 AND deleted = 0")
        .bind(owner_id)
        .fetch_one(conn)
        .await?
        .try_get("n")
}

/// Live workspaces of a template.
pub async fn count_for_template(conn: &mut Conn, template_id: &str) -> sqlx::Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM workspaces WHERE template_id = $1 AND deleted = 0")
        .bind(template_id)
        .fetch_one(conn)
        .await?
        .try_get("n")
}

/// The number of the next build of a workspace.
pub async fn next_build_number(conn: &mut Conn, workspace_id: &str) -> sqlx::Result<i64> {
    let (n,) = sqlx::query_as::<_, (i64,)>(
        "SELECT COALESCE(MAX(build_number), 0) FROM workspace_builds WHERE workspace_id = $1",
    )
    .bind(workspace_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n + 1)
}

/// A workspace's name and its owner's username.
pub async fn name_and_owner(
    conn: &mut Conn,
    workspace_id: &str,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT w.name, u.username FROM workspaces w JOIN users u ON u.id = w.owner_id WHERE w.id = $1",
    )
    .bind(workspace_id)
    .fetch_optional(&mut *conn)
    .await
}
