//! `POST /authcheck`, `POST /authorize`, `GET /policies`, `POST /policies/reload`:
//! the HTTP adapter of [`crate::usecase::authz`].

use std::collections::BTreeMap;

use axum::Json;
use serde_json::Value;

use super::extract::{ApiJson, Call};
use crate::error::ApiResult;
use crate::usecase::authz::{self, AuthcheckRequest, AuthorizeRequest};

/// `POST /authcheck`: what may the caller do? `{key: bool}` per check.
pub async fn authcheck(
    c: Call,
    ApiJson(req): ApiJson<AuthcheckRequest>,
) -> ApiResult<Json<BTreeMap<String, bool>>> {
    Ok(Json(authz::authcheck(c.ctx(), &c.caller, &req).await?))
}

/// `POST /authorize`: Cedar-native batch decisions for other services. The
/// principal and resource are resolved from orgsync's own data.
pub async fn authorize(c: Call, ApiJson(req): ApiJson<AuthorizeRequest>) -> ApiResult<Json<Value>> {
    Ok(Json(authz::authorize(c.ctx(), &c.caller, &req).await?))
}

pub async fn policies(c: Call) -> ApiResult<Json<Value>> {
    Ok(Json(authz::policies(c.ctx(), &c.caller).await?))
}

/// `POST /policies/reload`: re-reads the policy directory. An invalid set is
/// rejected with its diagnostics and the running set stays.
pub async fn reload(c: Call) -> ApiResult<Json<Value>> {
    Ok(Json(authz::reload(c.ctx(), &c.caller).await?))
}
