//! A user's linked identities: the HTTP adapter of [`crate::usecase::links`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::usecase::links::{self, Link, NewLink, Unlink};

/// `GET /users/{user}/links`.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<Link>>> {
    Ok(Json(links::list(app.ctx(), &actor.caller(), &key).await?))
}

/// `POST /users/{user}/links {source?, external_id}`.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<NewLink>,
) -> ApiResult<(StatusCode, Json<Link>)> {
    let link = links::create(app.ctx(), &actor.caller(), &key, &req).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// `DELETE /users/{user}/links?source=oidc[&external_id=..]`.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<Unlink>,
) -> ApiResult<StatusCode> {
    links::delete(app.ctx(), &actor.caller(), &key, &q).await?;
    Ok(StatusCode::NO_CONTENT)
}
