use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers.
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    app.db.ping().await.map_err(ApiError::unavailable)?;
    Ok(Json(
        json!({"status": "ready", "policy_hash": app.authz.engine().hash()}),
    ))
}
