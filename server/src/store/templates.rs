//! Files, templates and template versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Conn;
use crate::provisioner::{JobStatus, Tags};

/// Stores content once per hash (`files.created_by` keeps the first
/// uploader). Returns whether the row is new; callers must not let that show.
pub async fn insert_file(
    conn: &mut Conn,
    hash: &str,
    content_base64: &str,
    size: i64,
    by: &str,
    now: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO files (hash, content_base64, size, created_by, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash)
    .bind(content_base64)
    .bind(size)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that `user_id` uploaded the content `hash` (a grant of their own).
/// Returns whether the grant is new.
pub async fn grant_upload(
    conn: &mut Conn,
    hash: &str,
    user_id: &str,
    now: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO file_uploads (hash, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (hash, user_id) DO NOTHING",
    )
    .bind(hash)
    .bind(user_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a version of `org_id` created by `user_id` may name the file
/// `hash`: the user uploaded it, or the org is bound to it (an upload with
/// `?organization=`, or a version of that org already uses it). An unknown
/// hash is simply not usable.
pub async fn file_usable(
    conn: &mut Conn,
    hash: &str,
    user_id: &str,
    org_id: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 AS ok FROM files f WHERE f.hash = $1 AND (\
           EXISTS (SELECT 1 FROM file_uploads u WHERE u.hash = f.hash AND u.user_id = $2) \
           OR EXISTS (SELECT 1 FROM file_organizations o WHERE o.hash = f.hash AND o.organization_id = $3))",
    )
    .bind(hash)
    .bind(user_id)
    .bind(org_id)
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// The content (base64) of `hash` for `org_id`: only when the org is bound to
/// the file. What a daemon of that org receives for a job.
pub async fn file_content_for_org(
    conn: &mut Conn,
    hash: &str,
    org_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query(
        "SELECT f.content_base64 FROM files f JOIN file_organizations o ON o.hash = f.hash \
         WHERE f.hash = $1 AND o.organization_id = $2",
    )
    .bind(hash)
    .bind(org_id)
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get("content_base64"))
    .transpose()
}

/// Binds the file `hash` to an org (idempotent).
pub async fn attach_file(conn: &mut Conn, hash: &str, org_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO file_organizations (hash, organization_id) VALUES ($1, $2) ON CONFLICT (hash, organization_id) DO NOTHING",
    )
    .bind(hash)
    .bind(org_id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A template's access list: `{users: {id: role}, groups: {id: role}}`, role
/// `use` or `admin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
    pub acl: Acl,
    pub created_at: String,
    pub updated_at: String,
}

const TEMPLATE_COLUMNS: &str = "id, organization_id, name, display_name, description, icon, active_version_id, \
    provisioner, acl, created_by, created_at, updated_at";

fn template_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<Template> {
    Ok(Template {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        description: r.try_get("description")?,
        icon: r.try_get("icon")?,
        active_version_id: r.try_get("active_version_id")?,
        provisioner: r.try_get("provisioner")?,
        acl: serde_json::from_str(&r.try_get::<String, _>("acl")?).unwrap_or_default(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_template(conn: &mut Conn, t: &Template) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO templates (id, organization_id, name, name_lower, display_name, description, icon, \
         active_version_id, provisioner, acl, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&t.id)
    .bind(&t.organization_id)
    .bind(&t.name)
    .bind(t.name.to_lowercase())
    .bind(&t.display_name)
    .bind(&t.description)
    .bind(&t.icon)
    .bind(&t.active_version_id)
    .bind(&t.provisioner)
    .bind(serde_json::to_string(&t.acl).unwrap_or_else(|_| "{}".to_owned()))
    .bind(&t.created_by)
    .bind(&t.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn update_template(conn: &mut Conn, t: &Template) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE templates SET name = $2, name_lower = $3, display_name = $4, description = $5, icon = $6, \
         active_version_id = $7, acl = $8, updated_at = $9 WHERE id = $1",
    )
    .bind(&t.id)
    .bind(&t.name)
    .bind(t.name.to_lowercase())
    .bind(&t.display_name)
    .bind(&t.description)
    .bind(&t.icon)
    .bind(&t.active_version_id)
    .bind(serde_json::to_string(&t.acl).unwrap_or_else(|_| "{}".to_owned()))
    .bind(&t.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get_template(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Template>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(template_from_row).transpose()
}

pub async fn find_template(
    conn: &mut Conn,
    org_id: &str,
    key: &str,
) -> sqlx::Result<Option<Template>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE organization_id = $1 AND (id = $2 OR name_lower = $3)"
    )))
    .bind(org_id)
    .bind(key)
    .bind(key.to_lowercase())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(template_from_row).transpose()
}

/// Templates of one org, or of every org when `org_id` is None.
pub async fn list_templates(conn: &mut Conn, org_id: Option<&str>) -> sqlx::Result<Vec<Template>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE ($1 IS NULL OR organization_id = $1) ORDER BY name_lower, id"
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(template_from_row)
    .collect()
}

pub async fn delete_template(conn: &mut Conn, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM templates WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobRef {
    pub id: String,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TemplateVersion {
    pub id: String,
    pub organization_id: String,
    pub template_id: Option<String>,
    pub name: String,
    pub file_hash: String,
    pub provisioner: String,
    pub tags: Tags,
    pub job: JobRef,
    pub created_by: String,
    pub created_at: String,
}

const VERSION_SELECT: &str = "SELECT v.id, v.organization_id, v.template_id, v.name, v.file_hash, v.provisioner, v.tags, \
    v.job_id, j.status AS job_status, j.error AS job_error, v.created_by, v.created_at \
    FROM template_versions v JOIN provisioner_jobs j ON j.id = v.job_id";

fn version_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<TemplateVersion> {
    Ok(TemplateVersion {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        template_id: r.try_get("template_id")?,
        name: r.try_get("name")?,
        file_hash: r.try_get("file_hash")?,
        provisioner: r.try_get("provisioner")?,
        tags: serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default(),
        job: JobRef {
            id: r.try_get("job_id")?,
            status: JobStatus::parse(&r.try_get::<String, _>("job_status")?)
                .unwrap_or(JobStatus::Failed),
            error: r.try_get("job_error")?,
        },
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn insert_version(conn: &mut Conn, v: &TemplateVersion) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO template_versions (id, organization_id, template_id, name, file_hash, provisioner, tags, job_id, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&v.id)
    .bind(&v.organization_id)
    .bind(v.template_id.as_deref())
    .bind(&v.name)
    .bind(&v.file_hash)
    .bind(&v.provisioner)
    .bind(serde_json::to_string(&v.tags).unwrap_or_else(|_| "{}".to_owned()))
    .bind(&v.job.id)
    .bind(&v.created_by)
    .bind(&v.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get_version(conn: &mut Conn, id: &str) -> sqlx::Result<Option<TemplateVersion>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{VERSION_SELECT} WHERE v.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(version_from_row).transpose()
}

pub async fn version_by_job(
    conn: &mut Conn,
    job_id: &str,
) -> sqlx::Result<Option<TemplateVersion>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{VERSION_SELECT} WHERE v.job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(version_from_row).transpose()
}

pub async fn list_versions(
    conn: &mut Conn,
    org_id: &str,
    template_id: Option<&str>,
) -> sqlx::Result<Vec<TemplateVersion>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{VERSION_SELECT} WHERE v.organization_id = $1 AND ($2 IS NULL OR v.template_id = $2) ORDER BY v.created_at DESC, v.id DESC"
    )))
    .bind(org_id)
    .bind(template_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(version_from_row)
    .collect()
}

pub async fn set_version_template(
    conn: &mut Conn,
    version_id: &str,
    template_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE template_versions SET template_id = $2 WHERE id = $1 AND template_id IS NULL",
    )
    .bind(version_id)
    .bind(template_id)
    .execute(conn)
    .await
    .map(|_| ())
}
