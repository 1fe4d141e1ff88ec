//! Workspaces and their builds.

use serde::Serialize;
use sqlx::Result;

use super::query::{Text, all, execute, optional, scalar, scalar_optional, sql};
use super::{Conn, Flag, Write};
use crate::db::flag;
use crate::provisioner::{JobStatus, ParameterValue, Transition};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct BuildSummary {
    pub id: String,
    pub build_number: i64,
    #[sqlx(try_from = "Text")]
    pub transition: Transition,
    /// The status of the build's job.
    #[sqlx(rename = "job_status", try_from = "Text")]
    pub status: JobStatus,
    pub job_id: String,
    pub template_version_id: String,
    pub template_version_name: String,
    pub initiator_id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(rename = "job_error")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub template_id: String,
    pub template_name: String,
    /// The version of the latest build (set with it).
    #[sqlx(skip)]
    pub template_version_id: String,
    pub name: String,
    #[sqlx(skip)]
    pub latest_build: Option<BuildSummary>,
    #[sqlx(try_from = "Flag")]
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
}

const BUILD_SELECT: &str = "SELECT b.id, b.workspace_id, b.build_number, b.transition, b.job_id, b.template_version_id, \
    v.name AS template_version_name, b.initiator_id, b.created_at, j.status AS job_status, j.error AS job_error \
    FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id \
    JOIN template_versions v ON v.id = b.template_version_id";

const WS_SELECT: &str = "SELECT w.id, w.organization_id, o.name AS organization_name, w.owner_id, \
    u.username AS owner_name, w.template_id, t.name AS template_name, w.name, w.deleted, w.created_at, w.updated_at \
    FROM workspaces w JOIN users u ON u.id = w.owner_id JOIN templates t ON t.id = w.template_id \
    JOIN organizations o ON o.id = w.organization_id";

/// A workspace as read, with its latest build.
async fn with_latest_build(conn: &mut Conn, mut w: Workspace) -> Result<Workspace> {
    w.latest_build = latest_build(conn, &w.id).await?;
    if let Some(b) = &w.latest_build {
        w.template_version_id.clone_from(&b.template_version_id);
    }
    Ok(w)
}

pub struct NewWorkspace<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub owner_id: &'a str,
    pub template_id: &'a str,
    pub name: &'a str,
    pub now: &'a str,
}

pub async fn insert(w: &mut Write<'_>, ws: &NewWorkspace<'_>) -> Result<()> {
    let sql = "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, \
         name_lower, deleted, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)";
    let args = (
        ws.id,
        ws.organization_id,
        ws.owner_id,
        ws.template_id,
        ws.name,
        ws.name.to_lowercase(),
        ws.now,
    );
    execute(w, sql, args).await
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Workspace>> {
    let sql = sql!("{WS_SELECT} WHERE w.id = $1 AND w.deleted = 0");
    match optional(&mut *conn, sql, (id,)).await? {
        Some(w) => Ok(Some(with_latest_build(conn, w).await?)),
        None => Ok(None),
    }
}

/// A live workspace by owner and name.
pub async fn find_by_name(
    conn: &mut Conn,
    owner_id: &str,
    name: &str,
) -> Result<Option<Workspace>> {
    let sql = sql!("{WS_SELECT} WHERE w.owner_id = $1 AND w.name_lower = $2 AND w.deleted = 0");
    match optional(&mut *conn, sql, (owner_id, name.to_lowercase())).await? {
        Some(w) => Ok(Some(with_latest_build(conn, w).await?)),
        None => Ok(None),
    }
}

/// Live workspaces, optionally of one owner.
pub async fn list(conn: &mut Conn, owner_id: Option<&str>) -> Result<Vec<Workspace>> {
    let sql = sql!(
        "{WS_SELECT} WHERE w.deleted = 0 AND ($1 IS NULL OR w.owner_id = $1) \
         ORDER BY w.created_at DESC, w.id DESC"
    );
    let found: Vec<Workspace> = all(&mut *conn, sql, (owner_id,)).await?;
    let mut out = Vec::with_capacity(found.len());
    for w in found {
        out.push(with_latest_build(conn, w).await?);
    }
    Ok(out)
}

pub async fn mark_deleted(w: &mut Write<'_>, id: &str, now: &str) -> Result<()> {
    let sql = "UPDATE workspaces SET deleted = $2, updated_at = $3 WHERE id = $1";
    execute(w, sql, (id, flag(true), now)).await
}

pub async fn latest_build(conn: &mut Conn, workspace_id: &str) -> Result<Option<BuildSummary>> {
    let sql = sql!("{BUILD_SELECT} WHERE b.workspace_id = $1 ORDER BY b.build_number DESC LIMIT 1");
    optional(conn, sql, (workspace_id,)).await
}

pub async fn builds(conn: &mut Conn, workspace_id: &str) -> Result<Vec<BuildSummary>> {
    let sql = sql!("{BUILD_SELECT} WHERE b.workspace_id = $1 ORDER BY b.build_number DESC");
    all(conn, sql, (workspace_id,)).await
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

pub async fn insert_build(w: &mut Write<'_>, b: &NewBuild<'_>) -> Result<()> {
    let sql = "INSERT INTO workspace_builds (id, workspace_id, build_number, transition, \
         template_version_id, job_id, initiator_id, parameters, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let args = (
        b.id,
        b.workspace_id,
        b.build_number,
        b.transition.as_str(),
        b.template_version_id,
        b.job_id,
        b.initiator_id,
        serde_json::to_string(b.parameters).unwrap_or_else(|_| "[]".to_owned()),
        b.now,
    );
    execute(w, sql, args).await
}

/// The build of a job, with its workspace id, parameters and number.
#[derive(sqlx::FromRow)]
pub struct BuildJob {
    #[sqlx(rename = "id")]
    pub build_id: String,
    pub workspace_id: String,
    pub build_number: i64,
    #[sqlx(try_from = "Text")]
    pub transition: Transition,
    pub template_version_id: String,
    #[sqlx(try_from = "Text")]
    pub parameters: Vec<ParameterValue>,
}

pub async fn build_by_job(conn: &mut Conn, job_id: &str) -> Result<Option<BuildJob>> {
    let sql = "SELECT id, workspace_id, build_number, transition, template_version_id, \
         parameters FROM workspace_builds WHERE job_id = $1";
    optional(conn, sql, (job_id,)).await
}

/// The state of the workspace's newest build that has one.
pub async fn last_state(
    conn: &mut Conn,
    workspace_id: &str,
    before_build: i64,
) -> Result<Option<String>> {
    let sql = "SELECT state_base64 FROM workspace_builds WHERE workspace_id = $1 \
         AND build_number < $2 AND state_base64 IS NOT NULL ORDER BY build_number DESC LIMIT 1";
    scalar_optional(conn, sql, (workspace_id, before_build)).await
}

pub async fn set_state(w: &mut Write<'_>, build_id: &str, state: Option<&str>) -> Result<()> {
    let sql = "UPDATE workspace_builds SET state_base64 = $2 WHERE id = $1";
    execute(w, sql, (build_id, state)).await
}

/// Whether a workspace has a build whose job has not finished.
pub async fn has_active_build(conn: &mut Conn, workspace_id: &str) -> Result<bool> {
    let sql = "SELECT b.id FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id \
         WHERE b.workspace_id = $1 AND j.status IN ('pending', 'running', 'canceling') LIMIT 1";
    let found: Option<String> = scalar_optional(conn, sql, (workspace_id,)).await?;
    Ok(found.is_some())
}

/// Live workspaces of an owner (any org), for refusing to delete the user.
pub async fn count_for_owner(conn: &mut Conn, owner_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM workspaces WHERE owner_id = $1 AND deleted = 0";
    scalar(conn, sql, (owner_id,)).await
}

/// Live workspaces of a template.
pub async fn count_for_template(conn: &mut Conn, template_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM workspaces WHERE template_id = $1 AND deleted = 0";
    scalar(conn, sql, (template_id,)).await
}

/// `OWNER/NAME` of up to `limit` live workspaces of a template, for saying
/// what keeps it from being deleted.
pub async fn names_for_template(
    conn: &mut Conn,
    template_id: &str,
    limit: i64,
) -> Result<Vec<String>> {
    let sql = "SELECT u.username, w.name FROM workspaces w JOIN users u ON u.id = w.owner_id \
         WHERE w.template_id = $1 AND w.deleted = 0 ORDER BY u.username, w.name LIMIT $2";
    let rows: Vec<(String, String)> = all(conn, sql, (template_id, limit)).await?;
    Ok(rows.into_iter().map(|(o, n)| format!("{o}/{n}")).collect())
}

/// The number of the next build of a workspace.
pub async fn next_build_number(conn: &mut Conn, workspace_id: &str) -> Result<i64> {
    let sql = "SELECT COALESCE(MAX(build_number), 0) FROM workspace_builds WHERE workspace_id = $1";
    Ok(scalar::<i64>(conn, sql, (workspace_id,)).await? + 1)
}

/// A workspace's name and its owner's username.
pub async fn name_and_owner(
    conn: &mut Conn,
    workspace_id: &str,
) -> Result<Option<(String, String)>> {
    let sql = "SELECT w.name, u.username FROM workspaces w JOIN users u ON u.id = w.owner_id \
         WHERE w.id = $1";
    optional(conn, sql, (workspace_id,)).await
}
