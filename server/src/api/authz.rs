//! `POST /authcheck`, `POST /authorize`, `GET /policies`, `POST /policies/reload`:
//! the HTTP adapter of [`crate::usecase::authz`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::extract::{Actor, ApiJson};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::usecase::authz::{self, AuthcheckRequest, AuthorizeRequest};

/// `POST /authcheck`: what may the caller do? `{key: bool}` per check.
pub async fn authcheck(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<AuthcheckRequest>,
) -> ApiResult<Json<BTreeMap<String, bool>>> {
    Ok(Json(
        authz::authcheck(app.ctx(), &actor.caller(), &req).await?,
    ))
}

/// `POST /authorize`: Cedar-native batch decisions for other services. The
/// principal and resource are resolved from orgsync's own data.
pub async fn authorize(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<AuthorizeRequest>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        authz::authorize(app.ctx(), &actor.caller(), &req).await?,
    ))
}

pub async fn policies(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Value>> {
    Ok(Json(authz::policies(app.ctx(), &actor.caller()).await?))
}

/// `POST /policies/reload`: re-reads the policy directory. An invalid set is
/// rejected with its diagnostics and the running set stays.
pub async fn reload(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Value>> {
    Ok(Json(authz::reload(app.ctx(), &actor.caller()).await?))
}
