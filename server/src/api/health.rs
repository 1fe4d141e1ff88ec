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

/// What is running: the version, the commit it was built from (`unknown`
/// when built outside a git checkout) and the hash of the active policies.
/// Public, like `/healthz`: it names no user and no secret.
pub async fn buildinfo(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("ORGSYNC_COMMIT"),
        "policy_hash": app.authz.engine().hash(),
    }))
}
