//! Files, templates and template versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Result;

use super::query::{Args, Text, affected, all, all_in, execute, optional, scalar_optional, sql};
use super::{Conn, Write};
use crate::provisioner::variables::Variable;
use crate::provisioner::{JobStatus, Tags};

/// Stores content once per hash (`files.created_by` keeps the first
/// uploader). Returns whether the row is new; callers must not let that show.
pub async fn insert_file(
    w: &mut Write<'_>,
    hash: &str,
    content_base64: &str,
    size: i64,
    by: &str,
    now: &str,
) -> Result<bool> {
    let sql = "INSERT INTO files (hash, content_base64, size, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING";
    Ok(affected(w, sql, (hash, content_base64, size, by, now)).await? == 1)
}

/// Records that `user_id` uploaded the content `hash` (a grant of their own).
/// Returns whether the grant is new.
pub async fn grant_upload(w: &mut Write<'_>, hash: &str, user_id: &str, now: &str) -> Result<bool> {
    let sql = "INSERT INTO file_uploads (hash, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (hash, user_id) DO NOTHING";
    Ok(affected(w, sql, (hash, user_id, now)).await? == 1)
}

/// Whether a version of `org_id` created by `user_id` may name the file
/// `hash`: the user uploaded it, or the org is bound to it (an upload with
/// `?organization=`, or a version of that org already uses it). An unknown
/// hash is simply not usable.
pub async fn file_usable(conn: &mut Conn, hash: &str, user_id: &str, org_id: &str) -> Result<bool> {
    let sql = "SELECT 1 FROM files f WHERE f.hash = $1 AND (\
           EXISTS (SELECT 1 FROM file_uploads u WHERE u.hash = f.hash AND u.user_id = $2) \
           OR EXISTS (SELECT 1 FROM file_organizations o WHERE o.hash = f.hash \
           AND o.organization_id = $3))";
    let found: Option<i64> = scalar_optional(conn, sql, (hash, user_id, org_id)).await?;
    Ok(found.is_some())
}

/// The content (base64) of `hash` for `org_id`: only when the org is bound to
/// the file. What a daemon of that org receives for a job.
pub async fn file_content_for_org(
    conn: &mut Conn,
    hash: &str,
    org_id: &str,
) -> Result<Option<String>> {
    let sql = "SELECT f.content_base64 FROM files f JOIN file_organizations o ON o.hash = f.hash \
         WHERE f.hash = $1 AND o.organization_id = $2";
    scalar_optional(conn, sql, (hash, org_id)).await
}

/// Binds the file `hash` to an org (idempotent).
pub async fn attach_file(w: &mut Write<'_>, hash: &str, org_id: &str) -> Result<()> {
    let sql = "INSERT INTO file_organizations (hash, organization_id) VALUES ($1, $2) \
         ON CONFLICT (hash, organization_id) DO NOTHING";
    execute(w, sql, (hash, org_id)).await
}

/// A template's access list: `{users: {id: role}, groups: {id: role}}`, role
/// `use` or `admin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acl {
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
}

impl Acl {
    pub fn policy_acl(&self) -> orgsync_policy::TemplateAcl {
        let pick = |m: &BTreeMap<String, String>, role: &str| -> Vec<String> {
            m.iter()
                .filter(|(_, r)| r.as_str() == role)
                .map(|(id, _)| id.clone())
                .collect()
        };
        orgsync_policy::TemplateAcl {
            use_users: pick(&self.users, "use"),
            use_groups: pick(&self.groups, "use"),
            admin_users: pick(&self.users, "admin"),
            admin_groups: pick(&self.groups, "admin"),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Template {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub active_version_id: String,
    pub provisioner: String,
    pub created_by: String,
    #[sqlx(try_from = "Text")]
    pub acl: Acl,
    pub created_at: String,
    pub updated_at: String,
}

const TEMPLATE_COLUMNS: &str = "id, organization_id, name, display_name, description, icon, active_version_id, \
    provisioner, acl, created_by, created_at, updated_at";

impl From<Text> for Acl {
    fn from(text: Text) -> Acl {
        text.json()
    }
}

/// JSON text of a map column (tags, an access list).
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// A template's columns but its id (`$1`), `$2` to `$13`: what
/// [`insert_template`] stores and [`update_template`] stores again (those of
/// a template that never change are written as loaded).
const TEMPLATE_ROW: &str = "organization_id = $2, name = $3, name_lower = $4, \
    display_name = $5, description = $6, icon = $7, active_version_id = $8, provisioner = $9, \
    acl = $10, created_by = $11, created_at = $12, updated_at = $13";

fn template_args(t: &Template) -> impl Args + '_ {
    (
        &t.id,
        &t.organization_id,
        &t.name,
        t.name.to_lowercase(),
        &t.display_name,
        &t.description,
        &t.icon,
        &t.active_version_id,
        &t.provisioner,
        json_text(&t.acl),
        &t.created_by,
        &t.created_at,
        &t.updated_at,
    )
}

pub async fn insert_template(w: &mut Write<'_>, t: &Template) -> Result<()> {
    let sql = "INSERT INTO templates (id, organization_id, name, name_lower, display_name, \
         description, icon, active_version_id, provisioner, acl, created_by, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    execute(w, sql, template_args(t)).await
}

pub async fn update_template(w: &mut Write<'_>, t: &Template) -> Result<()> {
    let sql = sql!("UPDATE templates SET {TEMPLATE_ROW} WHERE id = $1");
    execute(w, sql, template_args(t)).await
}

pub async fn get_template(conn: &mut Conn, id: &str) -> Result<Option<Template>> {
    optional(
        conn,
        sql!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = $1"),
        (id,),
    )
    .await
}

pub async fn find_template(conn: &mut Conn, org_id: &str, key: &str) -> Result<Option<Template>> {
    let sql = sql!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates \
         WHERE organization_id = $1 AND (id = $2 OR name_lower = $3)"
    );
    optional(conn, sql, (org_id, key, key.to_lowercase())).await
}

/// Templates of one org, or of every org when `org_id` is None.
pub async fn list_templates(conn: &mut Conn, org_id: Option<&str>) -> Result<Vec<Template>> {
    let sql = sql!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates \
         WHERE ($1 IS NULL OR organization_id = $1) ORDER BY name_lower, id"
    );
    all(conn, sql, (org_id,)).await
}

/// Templates of the orgs `org_ids`, by name.
pub async fn list_templates_in(conn: &mut Conn, org_ids: &[&str]) -> Result<Vec<Template>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE organization_id IN ({{ids}})")
    });
    let mut list: Vec<Template> = all_in(conn, SQL.as_str(), org_ids).await?;
    list.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
    Ok(list)
}

pub async fn delete_template(w: &mut Write<'_>, id: &str) -> Result<()> {
    execute(w, "DELETE FROM templates WHERE id = $1", (id,)).await
}

/// A job as the row of its template version or build shows it (the
/// columns `job_id`, `job_status`, `job_error`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobRef {
    #[sqlx(rename = "job_id")]
    pub id: String,
    #[sqlx(rename = "job_status", try_from = "Text")]
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(rename = "job_error")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct TemplateVersion {
    pub id: String,
    pub organization_id: String,
    pub template_id: Option<String>,
    pub name: String,
    pub file_hash: String,
    pub provisioner: String,
    #[sqlx(try_from = "Text")]
    pub tags: Tags,
    #[sqlx(flatten)]
    pub job: JobRef,
    pub created_by: String,
    pub created_at: String,
    /// The input variables its Terraform files declare (`null` for versions
    /// created before they were recorded: their parameters are not checked).
    #[sqlx(try_from = "Text")]
    pub variables: Option<Vec<Variable>>,
}

const VERSION_SELECT: &str = "SELECT v.id, v.organization_id, v.template_id, v.name, v.file_hash, v.provisioner, v.tags, \
    v.job_id, j.status AS job_status, j.error AS job_error, v.created_by, v.created_at, v.variables \
    FROM template_versions v JOIN provisioner_jobs j ON j.id = v.job_id";

pub async fn insert_version(w: &mut Write<'_>, v: &TemplateVersion) -> Result<()> {
    let sql = "INSERT INTO template_versions (id, organization_id, template_id, name, file_hash, \
         provisioner, tags, job_id, created_by, created_at, variables) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    let args = (
        &v.id,
        &v.organization_id,
        v.template_id.as_deref(),
        &v.name,
        &v.file_hash,
        &v.provisioner,
        json_text(&v.tags),
        &v.job.id,
        &v.created_by,
        &v.created_at,
        v.variables.as_ref().map(json_text),
    );
    execute(w, sql, args).await
}

pub async fn get_version(conn: &mut Conn, id: &str) -> Result<Option<TemplateVersion>> {
    optional(conn, sql!("{VERSION_SELECT} WHERE v.id = $1"), (id,)).await
}

pub async fn version_by_job(conn: &mut Conn, job_id: &str) -> Result<Option<TemplateVersion>> {
    optional(
        conn,
        sql!("{VERSION_SELECT} WHERE v.job_id = $1"),
        (job_id,),
    )
    .await
}

pub async fn list_versions(
    conn: &mut Conn,
    org_id: &str,
    template_id: Option<&str>,
) -> Result<Vec<TemplateVersion>> {
    let sql = sql!(
        "{VERSION_SELECT} WHERE v.organization_id = $1 AND ($2 IS NULL OR v.template_id = $2) \
         ORDER BY v.created_at DESC, v.id DESC"
    );
    all(conn, sql, (org_id, template_id)).await
}

pub async fn set_version_template(
    w: &mut Write<'_>,
    version_id: &str,
    template_id: &str,
) -> Result<()> {
    let sql = "UPDATE template_versions SET template_id = $2 WHERE id = $1 AND template_id IS NULL";
    execute(w, sql, (version_id, template_id)).await
}
