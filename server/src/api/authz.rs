//! `POST /authcheck`, `POST /authorize`, `GET /policies`, `POST /policies/reload`,
//! `POST /policies/impact`:
//! the HTTP adapter of [`crate::usecase::authz`].

use std::collections::BTreeMap;

use axum::Json;
use serde_json::Value;

use super::extract::{ApiJson, Call};
use crate::error::ApiResult;
use crate::usecase::authz::{self, AuthcheckRequest, AuthorizeRequest};
use crate::usecase::impact::{self, ImpactRequest};

/// What may the caller do? One boolean per check.
///
/// `POST /authcheck`: what may the caller do? `{key: bool}` per check.
#[utoipa::path(post, path = "/authcheck", tag = "authorization", request_body = AuthcheckRequest, responses((status = 200, description = "OK", body = BTreeMap<String, bool>)))]
pub async fn authcheck(
    c: Call,
    ApiJson(req): ApiJson<AuthcheckRequest>,
) -> ApiResult<Json<BTreeMap<String, bool>>> {
    Ok(Json(authz::authcheck(c.ctx(), &c.caller, &req).await?))
}

/// Cedar-native batch decisions for other services.
///
/// `POST /authorize`: Cedar-native batch decisions for other services. The
/// principal and resource are resolved from orgsync's own data.
#[utoipa::path(post, path = "/authorize", tag = "authorization", request_body = AuthorizeRequest, responses((status = 200, description = "OK", body = super::openapi::AuthorizeResults)))]
pub async fn authorize(c: Call, ApiJson(req): ApiJson<AuthorizeRequest>) -> ApiResult<Json<Value>> {
    Ok(Json(authz::authorize(c.ctx(), &c.caller, &req).await?))
}

/// The active policy set (ids, files, hash).
#[utoipa::path(get, path = "/policies", tag = "authorization", responses((status = 200, description = "OK", body = super::openapi::PolicySet)))]
pub async fn policies(c: Call) -> ApiResult<Json<Value>> {
    Ok(Json(authz::policies(c.ctx(), &c.caller).await?))
}

/// Reload the policies from their directory.
///
/// `POST /policies/reload`: re-reads the policy directory. An invalid set is
/// rejected with its diagnostics and the running set stays.
#[utoipa::path(post, path = "/policies/reload", tag = "authorization", responses((status = 200, description = "OK", body = super::openapi::PoliciesReloaded)))]
pub async fn reload(c: Call) -> ApiResult<Json<Value>> {
    Ok(Json(authz::reload(c.ctx(), &c.caller).await?))
}

/// What a proposed policy set would change on the current data.
///
/// `POST /policies/impact`: every user x every action x the resources of their
/// organizations, decided by the running and the proposed set; the changed
/// decisions grouped by action, role and deciding policies. An invalid set is
/// a 400 with the validator's diagnostics.
#[utoipa::path(post, path = "/policies/impact", tag = "authorization", request_body = ImpactRequest, responses((status = 200, description = "OK", body = super::openapi::PolicyImpact)))]
pub async fn impact(c: Call, ApiJson(req): ApiJson<ImpactRequest>) -> ApiResult<Json<Value>> {
    Ok(Json(impact::propose(c.ctx(), &c.caller, &req).await?))
}
