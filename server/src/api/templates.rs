//! Files, template versions, templates and their ACLs.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use orgsync_policy::{Action, Resource, TemplateAcl};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::extract::{Actor, ApiBytes, ApiJson, ApiQuery, Path};
use super::orgs::load_org;
use crate::app::AppState;
use crate::audit::{self, Change, to_value};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::jobs;
use crate::model::{Name, Organization, parse_text};
use crate::provisioner::{
    JobStatus, JobType, Tags, archive, effective_tags, is_provisioner, validate_tags,
};
use crate::store::{
    self,
    templates::{Acl, JobRef, Template, TemplateVersion},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// The organization the file is for (optional): binds the file to that
    /// org up front, so every template-admin of the org may use it.
    pub organization: Option<String>,
}

/// `POST /files`: a tar archive (`Content-Type: application/x-tar`, at most
/// 10 MiB). Returns 201 `{hash}`. The same content twice is one file, but each
/// uploader gets a grant of their own: a version may name a file only if its
/// creator uploaded it or the version's org is bound to it. The answer is the
/// same whether or not someone uploaded the content before, so an upload
/// reveals nothing about other users' files.
pub async fn upload(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<FileQuery>,
    headers: HeaderMap,
    body: Result<ApiBytes, ApiError>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body
        .map_err(|e| {
            if e.http_status() == StatusCode::PAYLOAD_TOO_LARGE {
                e.with_detail(format!(
                    "a template archive is at most {} MiB",
                    archive::MAX_ARCHIVE_BYTES >> 20
                ))
            } else {
                e
            }
        })?
        .0;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !matches!(content_type, "application/x-tar" | "application/tar") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected `Content-Type: application/x-tar`",
        ));
    }
    let principal = &actor.principal.entity;
    let org = match &q.organization {
        Some(key) => {
            let (org, _) = load_org(&app, &actor, key, Action::ORGANIZATION_READ).await?;
            app.authz.require(
                principal,
                Action::FILE_CREATE,
                &Resource::organization(&org.org_ref()),
                "organization",
            )?;
            Some(org)
        }
        None => {
            // Allowed when the caller may create files in at least one org.
            let mut conn = app.db.pool().acquire().await?;
            let orgs = store::orgs::list(&mut conn).await?;
            if !orgs.iter().any(|o| {
                app.authz.allowed(
                    principal,
                    Action::FILE_CREATE,
                    &Resource::organization(&o.org_ref()),
                )
            }) {
                return Err(ApiError::forbidden());
            }
            None
        }
    };
    archive::check(&body).map_err(|e| ApiError::validation("file", e.to_string()))?;
    let hash = hex::encode(Sha256::digest(&body));
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    store::templates::insert_file(
        &mut tx,
        &hash,
        &base64::engine::general_purpose::STANDARD.encode(&body),
        body.len() as i64,
        actor.id(),
        &now_s,
    )
    .await?;
    let granted = store::templates::grant_upload(&mut tx, &hash, actor.id(), &now_s).await?;
    if let Some(org) = &org {
        store::templates::attach_file(&mut tx, &hash, &org.id).await?;
    }
    // Audited once per uploader (a fresh grant), not once per content: an entry
    // per content would tell an org's auditors whether anyone else had it.
    if granted {
        audit::record(
            &mut tx,
            &actor.audit(),
            &now_s,
            Change {
                organization_id: org.as_ref().map(|o| o.id.as_str()),
                action: "create",
                resource_type: "file",
                resource_id: &hash,
                resource_target: &hash,
                diff: json!({"size": {"old": null, "new": body.len()}}),
                status_code: 201,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"hash": hash}))))
}

/// The one answer for a `file_hash` a version may not name, whether unknown or
/// another org's: nothing tells them apart.
fn file_not_found() -> ApiError {
    let mut e = ApiError::not_found("file");
    e.body.validations.push(crate::error::Validation {
        field: "file_hash".to_owned(),
        detail: "no file with this hash was uploaded by you or for this organization".to_owned(),
    });
    e
}

/// The policy view of a version: it carries its template's `use` access.
async fn version_resource(
    app: &AppState,
    org: &Organization,
    v: &TemplateVersion,
) -> ApiResult<Resource> {
    let acl = match &v.template_id {
        Some(t) => {
            let mut conn = app.db.pool().acquire().await?;
            store::templates::get_template(&mut conn, t)
                .await?
                .map(|t| t.acl.policy_acl())
                .unwrap_or_default()
        }
        None => TemplateAcl::default(),
    };
    Ok(Resource::template_version(
        &org.org_ref(),
        &v.id,
        &v.created_by,
        &acl,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVersionRequest {
    pub file_hash: String,
    #[serde(default = "default_provisioner")]
    pub provisioner: String,
    #[serde(default)]
    pub tags: Tags,
    pub name: Option<String>,
    pub template_id: Option<String>,
}

fn default_provisioner() -> String {
    "terraform".to_owned()
}

/// `POST /organizations/{organization}/templateversions`: creates a version and
/// enqueues its import job on that org's provisioners.
pub async fn create_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateVersionRequest>,
) -> ApiResult<(StatusCode, Json<TemplateVersion>)> {
    let (org, _permit) = load_org(&app, &actor, &org, Action::TEMPLATE_VERSION_CREATE).await?;
    if !is_provisioner(&req.provisioner) {
        return Err(ApiError::validation(
            "provisioner",
            format!(
                "unknown provisioner type `{}` (terraform or echo)",
                req.provisioner
            ),
        ));
    }
    validate_tags(&req.tags).map_err(|e| ApiError::validation("tags", e))?;
    let name = match &req.name {
        Some(n) => Name::parse("name", n)?.as_str().to_owned(),
        None => format!("v-{}", &store::new_id()[24..]),
    };
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    // Files never cross orgs: the caller uploaded this content, or the org is
    // already bound to it. Anything else is the same 404 as an unknown hash.
    if !store::templates::file_usable(&mut tx, &req.file_hash, actor.id(), &org.id).await? {
        return Err(file_not_found());
    }
    if let Some(t) = &req.template_id {
        let template = store::templates::get_template(&mut tx, t).await?;
        if template.is_none_or(|t| t.organization_id != org.id) {
            return Err(ApiError::validation(
                "template_id",
                "no such template in this organization",
            ));
        }
    }
    store::templates::attach_file(&mut tx, &req.file_hash, &org.id).await?;
    let job_id = store::new_id();
    let tags = effective_tags(&req.tags);
    jobs::enqueue(
        &app,
        &mut tx,
        &store::jobs::NewJob {
            id: &job_id,
            organization_id: &org.id,
            job_type: JobType::TemplateVersionImport,
            provisioner: &req.provisioner,
            tags: &tags,
            input: json!({}),
            initiator_id: actor.id(),
            now: &now_s,
        },
    )
    .await?;
    let version = TemplateVersion {
        id: store::new_id(),
        organization_id: org.id.clone(),
        template_id: req.template_id.clone(),
        name,
        file_hash: req.file_hash.clone(),
        provisioner: req.provisioner.clone(),
        tags,
        job: JobRef {
            id: job_id,
            status: JobStatus::Pending,
            error: None,
        },
        created_by: actor.id().to_owned(),
        created_at: now_s.clone(),
    };
    store::templates::insert_version(&mut tx, &version).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "template_version",
            resource_id: &version.id,
            resource_target: &version.name,
            diff: audit::created(&to_value(&version)),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    jobs::after_commit(&app);
    Ok((StatusCode::CREATED, Json(version)))
}

pub async fn list_versions(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<TemplateVersion>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::ORGANIZATION_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let versions = store::templates::list_versions(&mut conn, &org.id, None).await?;
    drop(conn);
    let mut out = Vec::new();
    for v in versions {
        let r = version_resource(&app, &org, &v).await?;
        if app
            .authz
            .allowed(&actor.principal.entity, Action::TEMPLATE_VERSION_READ, &r)
        {
            out.push(v);
        }
    }
    Ok(Json(out))
}

pub async fn get_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateVersion>> {
    let mut conn = app.db.pool().acquire().await?;
    let v = store::templates::get_version(&mut conn, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("template version"))?;
    let org = store::orgs::find(&mut conn, &v.organization_id)
        .await?
        .ok_or_else(|| ApiError::not_found("template version"))?;
    drop(conn);
    let r = version_resource(&app, &org, &v).await?;
    app.authz.require(
        &actor.principal.entity,
        Action::TEMPLATE_VERSION_READ,
        &r,
        "template version",
    )?;
    Ok(Json(v))
}

pub(crate) fn template_resource(org: &Organization, t: &Template) -> Resource {
    Resource::template(&org.org_ref(), &t.id, &t.created_by, &t.acl.policy_acl())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    pub name: String,
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
    /// The version to make active; its import must have succeeded.
    #[serde(alias = "template_version_id")]
    pub version_id: String,
    #[serde(default)]
    pub disable_everyone_group_access: bool,
}

/// A version usable for a template of `org`: in that org, import succeeded.
async fn usable_version(
    conn: &mut store::Conn,
    org: &Organization,
    id: &str,
    field: &str,
) -> ApiResult<TemplateVersion> {
    let v = store::templates::get_version(conn, id)
        .await?
        .filter(|v| v.organization_id == org.id)
        .ok_or_else(|| {
            ApiError::validation(field, "no such template version in this organization")
        })?;
    if v.job.status != JobStatus::Succeeded {
        return Err(ApiError::validation(
            field,
            format!(
                "the version's import job has not succeeded (it is {})",
                v.job.status.as_str()
            ),
        ));
    }
    Ok(v)
}

pub async fn create_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateTemplateRequest>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let (org, _permit) = load_org(&app, &actor, &org, Action::TEMPLATE_CREATE).await?;
    let name = Name::parse("name", &req.name)?;
    let display_name = parse_text(
        "display_name",
        req.display_name.as_deref().unwrap_or(name.as_str()),
        128,
    )?;
    let description = parse_text("description", &req.description, 4096)?;
    let icon = parse_text("icon", &req.icon, 2048)?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let version = usable_version(&mut tx, &org, &req.version_id, "version_id").await?;
    if version.template_id.is_some() {
        return Err(ApiError::validation(
            "version_id",
            "this version already belongs to a template",
        ));
    }
    let mut acl = Acl::default();
    if !req.disable_everyone_group_access {
        acl.groups.insert(org.id.clone(), "use".to_owned());
    }
    let template = Template {
        id: store::new_id(),
        organization_id: org.id.clone(),
        name: name.as_str().to_owned(),
        display_name,
        description,
        icon,
        active_version_id: version.id.clone(),
        provisioner: version.provisioner.clone(),
        created_by: actor.id().to_owned(),
        acl,
        created_at: now_s.clone(),
        updated_at: now_s.clone(),
    };
    store::templates::insert_template(&mut tx, &template)
        .await
        .map_err(ApiError::on_unique(format!(
            "a template named `{}` already exists in `{}`",
            template.name, org.name
        )))?;
    store::templates::set_version_template(&mut tx, &version.id, &template.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "template",
            resource_id: &template.id,
            resource_target: &template.name,
            diff: audit::created(&to_value(&template)),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(template)))
}

/// Templates of `orgs` the caller may read.
async fn visible_templates(
    app: &AppState,
    actor: &Actor,
    org: Option<&Organization>,
) -> ApiResult<Vec<Template>> {
    let mut conn = app.db.pool().acquire().await?;
    let all = store::templates::list_templates(&mut conn, org.map(|o| o.id.as_str())).await?;
    let orgs: BTreeMap<String, Organization> = store::orgs::list(&mut conn)
        .await?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    Ok(all
        .into_iter()
        .filter(|t| {
            orgs.get(&t.organization_id).is_some_and(|o| {
                app.authz.allowed(
                    &actor.principal.entity,
                    Action::TEMPLATE_READ,
                    &template_resource(o, t),
                )
            })
        })
        .collect())
}

pub async fn list_org_templates(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Template>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::ORGANIZATION_READ).await?;
    Ok(Json(page.apply(
        visible_templates(&app, &actor, Some(&org)).await?,
    )?))
}

/// `GET /templates`: every template the caller may see, across its orgs.
pub async fn list_all_templates(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        page.apply(visible_templates(&app, &actor, None).await?)?,
    ))
}

pub(crate) async fn load_template(
    app: &AppState,
    actor: &Actor,
    id: &str,
    action: Action,
) -> ApiResult<(Template, Organization)> {
    let mut conn = app.db.pool().acquire().await?;
    let t = store::templates::get_template(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("template"))?;
    let org = store::orgs::find(&mut conn, &t.organization_id)
        .await?
        .ok_or_else(|| ApiError::not_found("template"))?;
    drop(conn);
    app.authz.require(
        &actor.principal.entity,
        action,
        &template_resource(&org, &t),
        "template",
    )?;
    Ok((t, org))
}

pub async fn get_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        load_template(&app, &actor, &id, Action::TEMPLATE_READ)
            .await?
            .0,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplateRequest {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub active_version_id: Option<String>,
}

pub async fn update_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateTemplateRequest>,
) -> ApiResult<Json<Template>> {
    let (t, org) = load_template(&app, &actor, &id, Action::TEMPLATE_UPDATE).await?;
    let mut updated = t.clone();
    if let Some(n) = &req.name {
        updated.name = Name::parse("name", n)?.as_str().to_owned();
    }
    if let Some(d) = &req.display_name {
        updated.display_name = parse_text("display_name", d, 128)?;
    }
    if let Some(d) = &req.description {
        updated.description = parse_text("description", d, 4096)?;
    }
    if let Some(i) = &req.icon {
        updated.icon = parse_text("icon", i, 2048)?;
    }
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    if let Some(v) = &req.active_version_id {
        let version = usable_version(&mut tx, &org, v, "active_version_id").await?;
        match &version.template_id {
            Some(owner) if owner != &t.id => {
                return Err(ApiError::validation(
                    "active_version_id",
                    "this version belongs to another template",
                ));
            }
            Some(_) => {}
            None => store::templates::set_version_template(&mut tx, &version.id, &t.id).await?,
        }
        updated.active_version_id = version.id;
    }
    if updated == t {
        return Ok(Json(t));
    }
    updated.updated_at = now_s.clone();
    store::templates::update_template(&mut tx, &updated)
        .await
        .map_err(ApiError::on_unique(format!(
            "a template named `{}` already exists in `{}`",
            updated.name, org.name
        )))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "update",
            resource_type: "template",
            resource_id: &t.id,
            resource_target: &updated.name,
            diff: audit::diff(&to_value(&t), &to_value(&updated)),
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(updated))
}

pub async fn delete_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (t, org) = load_template(&app, &actor, &id, Action::TEMPLATE_DELETE).await?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let n = store::workspaces::count_for_template(&mut tx, &t.id).await?;
    if n > 0 {
        return Err(ApiError::conflict(format!(
            "template `{}` still has {n} workspace(s)",
            t.name
        )));
    }
    store::templates::delete_template(&mut tx, &t.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "delete",
            resource_type: "template",
            resource_id: &t.id,
            resource_target: &t.name,
            diff: audit::deleted(&to_value(&t)),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_acl(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (t, _) = load_template(&app, &actor, &id, Action::TEMPLATE_READ).await?;
    Ok(Json(json!({"users": t.acl.users, "groups": t.acl.groups})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclPatch {
    /// `{user id or username: "use" | "admin" | null}` (null removes).
    #[serde(default)]
    pub users: BTreeMap<String, Option<String>>,
    /// `{group id: "use" | "admin" | null}`.
    #[serde(default)]
    pub groups: BTreeMap<String, Option<String>>,
}

pub async fn patch_acl(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AclPatch>,
) -> ApiResult<Json<Value>> {
    let (t, org) = load_template(&app, &actor, &id, Action::TEMPLATE_UPDATE).await?;
    let check_role = |field: String, role: &Option<String>| -> ApiResult<()> {
        match role.as_deref() {
            None | Some("use") | Some("admin") => Ok(()),
            Some(other) => Err(ApiError::validation(
                &field,
                format!("`{other}` is not a template role (use, admin)"),
            )),
        }
    };
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let mut acl = t.acl.clone();
    for (key, role) in &req.users {
        check_role(format!("users.{key}"), role)?;
        let user = crate::usecase::members::org_member_by_key(
            &mut tx,
            &actor.caller(),
            &org,
            key,
            &format!("users.{key}"),
        )
        .await?;
        match role {
            Some(r) => acl.users.insert(user.id, r.clone()),
            None => acl.users.remove(&user.id),
        };
    }
    for (gid, role) in &req.groups {
        check_role(format!("groups.{gid}"), role)?;
        let group = store::groups::find(&mut tx, gid)
            .await?
            .filter(|g| g.organization_id == org.id)
            .ok_or_else(|| {
                ApiError::validation(
                    &format!("groups.{gid}"),
                    "no such group in this organization",
                )
            })?;
        match role {
            Some(r) => acl.groups.insert(group.id, r.clone()),
            None => acl.groups.remove(&group.id),
        };
    }
    if acl != t.acl {
        let mut updated = t.clone();
        updated.acl = acl.clone();
        updated.updated_at = now_s.clone();
        store::templates::update_template(&mut tx, &updated).await?;
        audit::record(
            &mut tx,
            &actor.audit(),
            &now_s,
            Change {
                organization_id: Some(&org.id),
                action: "update",
                resource_type: "template",
                resource_id: &t.id,
                resource_target: &t.name,
                diff: json!({"acl": {"old": t.acl, "new": acl}}),
                status_code: 200,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(json!({"users": acl.users, "groups": acl.groups})))
}
