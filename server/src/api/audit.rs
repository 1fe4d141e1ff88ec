//! `GET /audit`: the audit log, filtered and paginated: the HTTP adapter of
//! [`crate::usecase::audit`].

use axum::Json;
use serde_json::Value;

use super::extract::{ApiQuery, Call};
use crate::error::ApiResult;
use crate::usecase::audit::{self, AuditQuery};

/// Search the audit log.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery), responses((status = 200, description = "OK", body = super::openapi::AuditLog)))]
pub async fn list(c: Call, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(audit::list(c.ctx(), &c.caller, q).await?))
}
