//! A user's linked identities: the HTTP adapter of [`crate::usecase::links`].

use axum::Json;
use axum::http::StatusCode;

use super::extract::{ApiJson, ApiQuery, Call, Path};
use crate::error::ApiResult;
use crate::usecase::links::{self, Link, NewLink, Unlink};

/// `GET /users/{user}/links`.
pub async fn list(c: Call, Path(key): Path<String>) -> ApiResult<Json<Vec<Link>>> {
    Ok(Json(links::list(c.ctx(), &c.caller, &key).await?))
}

/// `POST /users/{user}/links {source?, external_id}`.
pub async fn create(
    c: Call,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<NewLink>,
) -> ApiResult<(StatusCode, Json<Link>)> {
    let link = links::create(c.ctx(), &c.caller, &key, &req).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// `DELETE /users/{user}/links?source=oidc[&external_id=..]`.
pub async fn delete(
    c: Call,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<Unlink>,
) -> ApiResult<StatusCode> {
    links::delete(c.ctx(), &c.caller, &key, &q).await?;
    Ok(StatusCode::NO_CONTENT)
}
