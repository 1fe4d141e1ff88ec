//! Files, template versions, templates and their ACLs: the HTTP adapter of
//! [`crate::usecase::templates`].

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::Page;
use super::extract::{ApiBytes, ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::{ApiError, ApiResult};
use crate::provisioner::archive;
use crate::usecase::templates::{
    self, AclPatch, FileQuery, NewTemplate, NewVersion, Template, TemplateChanges, TemplateVersion,
};

/// `POST /files`: the content's hash, to name in a template version.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FileUploaded {
    pub hash: String,
}

/// Upload a template archive (tar).
///
/// `POST /files`: a tar archive (`Content-Type: application/x-tar`, at most
/// 10 MiB). Returns 201 `{hash}`. The same content twice is one file, but each
/// uploader gets a grant of their own: a version may name a file only if its
/// creator uploaded it or the version's org is bound to it. The answer is the
/// same whether or not someone uploaded the content before, so an upload
/// reveals nothing about other users' files.
#[utoipa::path(post, path = "/files", tag = "templates", params(FileQuery), request_body(content = Vec<u8>, content_type = "application/x-tar", description = "A tar archive, at most 10 MiB"), responses((status = 201, description = "Created", body = FileUploaded)))]
pub async fn upload(
    c: Call,
    ApiQuery(q): ApiQuery<FileQuery>,
    headers: HeaderMap,
    body: Result<ApiBytes, ApiError>,
) -> ApiResult<Created<FileUploaded>> {
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
    let hash = templates::upload(c.ctx(), &c.caller, &q, &body).await?;
    Ok(created(FileUploaded { hash }))
}

/// Create a template version (enqueues its import).
///
/// `POST /organizations/{organization}/templateversions`: creates a version and
/// enqueues its import job on that org's provisioners.
#[utoipa::path(post, path = "/organizations/{organization}/templateversions", tag = "templates", request_body = NewVersion, responses((status = 201, description = "Created", body = TemplateVersion)))]
pub async fn create_version(
    c: Call<String>,
    ApiJson(req): ApiJson<NewVersion>,
) -> ApiResult<Created<TemplateVersion>> {
    Ok(created(
        templates::create_version(c.ctx(), &c.app.jobs, &c.caller, &c.path, req).await?,
    ))
}

/// List an organization's template versions.
#[utoipa::path(get, path = "/organizations/{organization}/templateversions", tag = "templates", responses((status = 200, description = "OK", body = Vec<TemplateVersion>)))]
pub async fn list_versions(c: Call<String>) -> ApiResult<Json<Vec<TemplateVersion>>> {
    Ok(Json(
        templates::list_versions(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Get a template version.
#[utoipa::path(get, path = "/templateversions/{id}", tag = "templates", responses((status = 200, description = "OK", body = TemplateVersion)))]
pub async fn get_version(c: Call<String>) -> ApiResult<Json<TemplateVersion>> {
    Ok(Json(
        templates::get_version(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Create a template.
#[utoipa::path(post, path = "/organizations/{organization}/templates", tag = "templates", request_body = NewTemplate, responses((status = 201, description = "Created", body = Template)))]
pub async fn create_template(
    c: Call<String>,
    ApiJson(req): ApiJson<NewTemplate>,
) -> ApiResult<Created<Template>> {
    Ok(created(
        templates::create_template(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

/// List an organization's templates.
#[utoipa::path(get, path = "/organizations/{organization}/templates", tag = "templates", params(Page), responses((status = 200, description = "OK", body = Vec<Template>)))]
pub async fn list_org_templates(
    c: Call<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        templates::list_org_templates(c.ctx(), &c.caller, &c.path, page).await?,
    ))
}

/// List every template the caller may see.
///
/// `GET /templates`: every template the caller may see, across its orgs.
#[utoipa::path(get, path = "/templates", tag = "templates", params(Page), responses((status = 200, description = "OK", body = Vec<Template>)))]
pub async fn list_all_templates(
    c: Call,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        templates::list_all_templates(c.ctx(), &c.caller, page).await?,
    ))
}

/// Get a template.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", responses((status = 200, description = "OK", body = Template)))]
pub async fn get_template(c: Call<String>) -> ApiResult<Json<Template>> {
    Ok(Json(
        templates::get_template(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Update a template.
#[utoipa::path(patch, path = "/templates/{id}", tag = "templates", request_body = TemplateChanges, responses((status = 200, description = "OK", body = Template)))]
pub async fn update_template(
    c: Call<String>,
    ApiJson(req): ApiJson<TemplateChanges>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        templates::update_template(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

/// Delete a template.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", responses((status = 204, description = "No content")))]
pub async fn delete_template(c: Call<String>) -> ApiResult<StatusCode> {
    templates::delete_template(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get a template's ACL.
#[utoipa::path(get, path = "/templates/{id}/acl", tag = "templates", responses((status = 200, description = "OK", body = crate::usecase::templates::Acl)))]
pub async fn get_acl(c: Call<String>) -> ApiResult<Json<Value>> {
    Ok(Json(templates::get_acl(c.ctx(), &c.caller, &c.path).await?))
}

/// Change a template's ACL.
#[utoipa::path(patch, path = "/templates/{id}/acl", tag = "templates", request_body = AclPatch, responses((status = 200, description = "OK", body = crate::usecase::templates::Acl)))]
pub async fn patch_acl(c: Call<String>, ApiJson(req): ApiJson<AclPatch>) -> ApiResult<Json<Value>> {
    Ok(Json(
        templates::patch_acl(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}
