//! A user's linked identities: the HTTP adapter of [`crate::usecase::links`].

use axum::Json;
use axum::http::StatusCode;

use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::usecase::links::{self, Link, NewLink, Unlink};

/// List a user's linked identities.
///
/// `GET /users/{user}/links`.
#[utoipa::path(get, path = "/users/{user}/links", tag = "users", responses((status = 200, description = "OK", body = Vec<Link>)))]
pub async fn list(c: Call<String>) -> ApiResult<Json<Vec<Link>>> {
    Ok(Json(links::list(c.ctx(), &c.caller, &c.path).await?))
}

/// Link an external identity to a user.
///
/// `POST /users/{user}/links {source?, external_id}`.
#[utoipa::path(post, path = "/users/{user}/links", tag = "users", request_body = NewLink, responses((status = 201, description = "Created", body = Link)))]
pub async fn create(c: Call<String>, ApiJson(req): ApiJson<NewLink>) -> ApiResult<Created<Link>> {
    Ok(created(
        links::create(c.ctx(), &c.caller, &c.path, &req).await?,
    ))
}

/// Unlink external identities of a user.
///
/// `DELETE /users/{user}/links?source=oidc[&external_id=..]`.
#[utoipa::path(delete, path = "/users/{user}/links", tag = "users", params(Unlink), responses((status = 204, description = "No content")))]
pub async fn delete(c: Call<String>, ApiQuery(q): ApiQuery<Unlink>) -> ApiResult<StatusCode> {
    links::delete(c.ctx(), &c.caller, &c.path, &q).await?;
    Ok(StatusCode::NO_CONTENT)
}
