use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness",
    security(()),
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness (the database answers)",
    security(()),
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    app.db.ping().await.map_err(ApiError::unavailable)?;
    Ok(Json(
        json!({"status": "ready", "policy_hash": app.authz.engine().hash()}),
    ))
}

/// What is running: the version, the commit it was built from (`unknown`
/// when built outside a git checkout) and the hash of the active policies.
/// Public, like `/healthz`: it names no user and no secret.
#[utoipa::path(
    get,
    path = "/buildinfo",
    tag = "health",
    summary = "Version, commit and the active policy hash",
    security(()),
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn buildinfo(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("ORGSYNC_COMMIT"),
        "policy_hash": app.authz.engine().hash(),
    }))
}
