//! `GET /audit`: the audit log, filtered and paginated: the HTTP adapter of
//! [`crate::usecase::audit`].

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::extract::{Actor, ApiQuery};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::usecase::audit::{self, AuditQuery};

pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(audit::list(app.ctx(), &actor.caller(), q).await?))
}
