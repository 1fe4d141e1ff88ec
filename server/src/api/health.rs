use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "OK", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /healthz`: the process serves.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// `GET /readyz`: the database answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// The hash of the active policies.
    pub policy_hash: String,
}

/// `GET /buildinfo`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BuildInfo {
    pub version: &'static str,
    /// The commit built (`unknown` outside a git checkout).
    pub commit: &'static str,
    /// The hash of the active policies.
    pub policy_hash: String,
}

/// Readiness (the database answers).
///
/// Ready when the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, description = "OK", body = Ready)))]
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<Ready>> {
    app.db.ping().await.map_err(ApiError::unavailable)?;
    Ok(Json(Ready {
        status: "ready",
        policy_hash: app.authz.engine().hash().to_string(),
    }))
}

/// Version, commit and the active policy hash.
///
/// What is running: the version, the commit it was built from (`unknown`
/// when built outside a git checkout) and the hash of the active policies.
/// Public, like `/healthz`: it names no user and no secret.
#[utoipa::path(get, path = "/buildinfo", tag = "health", security(()), responses((status = 200, description = "OK", body = BuildInfo)))]
pub async fn buildinfo(State(app): State<AppState>) -> Json<BuildInfo> {
    Json(BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("ORGSYNC_COMMIT"),
        policy_hash: app.authz.engine().hash().to_string(),
    })
}
