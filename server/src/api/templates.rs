//! Files, template versions, templates and their ACLs: the HTTP adapter of
//! [`crate::usecase::templates`].

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::extract::{Actor, ApiBytes, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::provisioner::archive;
use crate::usecase::templates::{
    self, AclPatch, FileQuery, NewTemplate, NewVersion, Template, TemplateChanges, TemplateVersion,
};

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
    let hash = templates::upload(app.ctx(), &actor.caller(), &q, &body).await?;
    Ok((StatusCode::CREATED, Json(json!({"hash": hash}))))
}

/// `POST /organizations/{organization}/templateversions`: creates a version and
/// enqueues its import job on that org's provisioners.
pub async fn create_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<NewVersion>,
) -> ApiResult<(StatusCode, Json<TemplateVersion>)> {
    let version =
        templates::create_version(app.ctx(), &app.jobs, &actor.caller(), &org, req).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

pub async fn list_versions(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<TemplateVersion>>> {
    Ok(Json(
        templates::list_versions(app.ctx(), &actor.caller(), &org).await?,
    ))
}

pub async fn get_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateVersion>> {
    Ok(Json(
        templates::get_version(app.ctx(), &actor.caller(), &id).await?,
    ))
}

pub async fn create_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<NewTemplate>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let template = templates::create_template(app.ctx(), &actor.caller(), &org, req).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

pub async fn list_org_templates(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        templates::list_org_templates(app.ctx(), &actor.caller(), &org, page).await?,
    ))
}

/// `GET /templates`: every template the caller may see, across its orgs.
pub async fn list_all_templates(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        templates::list_all_templates(app.ctx(), &actor.caller(), page).await?,
    ))
}

pub async fn get_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        templates::get_template(app.ctx(), &actor.caller(), &id).await?,
    ))
}

pub async fn update_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TemplateChanges>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        templates::update_template(app.ctx(), &actor.caller(), &id, req).await?,
    ))
}

pub async fn delete_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    templates::delete_template(app.ctx(), &actor.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_acl(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        templates::get_acl(app.ctx(), &actor.caller(), &id).await?,
    ))
}

pub async fn patch_acl(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AclPatch>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        templates::patch_acl(app.ctx(), &actor.caller(), &id, req).await?,
    ))
}
