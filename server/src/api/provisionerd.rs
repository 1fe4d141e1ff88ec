//! The daemon protocol (HTTP, JSON). Every call carries the header
//! `Orgsync-Provisioner-Key: <secret>`; the key fixes the daemon's organization
//! and tags.
//!
//! - `POST /provisionerd/register {name, provisioners, version}` -> 201 `{id, organization_id, tags}`;
//!   a name the key already uses replaces that daemon (new id; the old one's
//!   calls get 401 and its running jobs fail); at most
//!   [`MAX_DAEMONS_PER_KEY`] connected daemons per key (409 past it; daemons
//!   offline for 30 s that hold no job are dropped first)
//! - `POST /provisionerd/{daemon}/acquire?wait_ms=N` -> 200 job | 204 (long-poll, woken by notification)
//! - `POST /provisionerd/{daemon}/jobs/{job}/heartbeat` -> `{cancel}`
//! - `POST /provisionerd/{daemon}/jobs/{job}/logs {logs: [{stage, level, output}]}` -> 204;
//!   at most 1000 lines per call, NUL stripped, `output` at most 64 KiB (a
//!   longer one is cut and ends with ` [truncated]`)
//! - `POST /provisionerd/{daemon}/jobs/{job}/complete {state_base64?}` -> 204 (400 when
//!   `state_base64` is not standard base64)
//! - `POST /provisionerd/{daemon}/jobs/{job}/fail {error, canceled}` -> 204

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::extract::{ApiJson, ApiJsonAnyText, ApiQuery, Path};
use crate::app::AppState;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{self, DaemonIdentity};
use crate::provisioner::{JobResult, LogLine, Tags, is_provisioner};
use crate::secrets::sha256_hex;
use crate::store::{self, provisioners::ProvisionerKey};

pub const KEY_HEADER: &str = "orgsync-provisioner-key";

/// Connected daemons one provisioner key may have at once.
pub const MAX_DAEMONS_PER_KEY: i64 = 100;

/// A request authenticated by a provisioner key.
pub struct KeyAuth {
    pub key: ProvisionerKey,
    pub org: crate::model::Organization,
}

impl FromRequestParts<AppState> for KeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || ApiError::unauthorized("invalid or deleted provisioner key");
        let secret = parts
            .headers
            .get(KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing `Orgsync-Provisioner-Key` header"))?;
        let hashed = sha256_hex(secret.trim());
        let mut conn = app.db.pool().acquire().await?;
        let key = store::provisioners::find_key_by_hash(&mut conn, &hashed)
            .await?
            .ok_or_else(unauthorized)?;
        // The lookup is by hash; compare again in constant time all the same.
        let stored = sqlx::query_as::<_, (String,)>(
            "SELECT hashed_secret FROM provisioner_keys WHERE id = $1",
        )
        .bind(&key.id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(unauthorized)?;
        if !bool::from(stored.0.as_bytes().ct_eq(hashed.as_bytes())) {
            return Err(unauthorized());
        }
        let org = store::orgs::find(&mut conn, &key.organization_id)
            .await?
            .ok_or_else(unauthorized)?;
        Ok(KeyAuth { key, org })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub name: String,
    pub provisioners: Vec<String>,
    #[serde(default)]
    pub version: String,
    /// Refused when non-empty: a daemon's tags are its key's.
    #[serde(default)]
    pub tags: Option<Tags>,
}

pub async fn register(
    State(app): State<AppState>,
    meta: super::extract::RequestMeta,
    auth: KeyAuth,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::validation(
            "tags",
            "a daemon's tags are those of its provisioner key; set them on the key",
        ));
    }
    let name = crate::model::parse_text("name", req.name.trim(), 64)?;
    if name.is_empty() {
        return Err(ApiError::validation("name", "must not be empty"));
    }
    if req.provisioners.is_empty() {
        return Err(ApiError::validation(
            "provisioners",
            "name at least one of `terraform`, `echo`",
        ));
    }
    for (i, p) in req.provisioners.iter().enumerate() {
        if !is_provisioner(p) {
            return Err(ApiError::validation(
                &format!("provisioners[{i}]"),
                format!("unknown provisioner type `{p}`"),
            ));
        }
    }
    let now = clock::fmt(clock::now());
    let now_audit = now.clone();
    let daemon = store::provisioners::Daemon {
        id: store::new_id(),
        organization_id: auth.org.id.clone(),
        key_id: Some(auth.key.id.clone()),
        name,
        provisioners: req.provisioners.clone(),
        tags: super::provisioners::key_tags(&auth.key),
        version: crate::model::parse_text("version", &req.version, 64)?,
        created_at: now.clone(),
        last_seen_at: now,
        status: String::new(),
        disconnected: false,
    };
    let identity = DaemonIdentity::new(
        daemon.id.clone(),
        auth.org.org_ref(),
        daemon.provisioners.clone(),
        daemon.tags.clone(),
    );
    app.authz.require(
        &identity.principal,
        orgsync_policy::Action::PROVISIONER_JOB_ACQUIRE,
        &orgsync_policy::Resource::organization(&auth.org.org_ref()),
        "organization",
    )?;
    let mut tx = app.db.begin().await?;
    store::provisioners::lock_key(&mut tx, &auth.key.id).await?;
    // The name is the daemon's identity under its key: registering it again
    // (a restart) replaces the previous daemon.
    let replaced: Vec<String> =
        store::provisioners::key_daemons_named(&mut tx, &auth.key.id, &daemon.name)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
    if !replaced.is_empty() {
        store::jobs::fail_for_workers(
            &mut tx,
            &replaced,
            "the provisioner daemon running this job registered again (it restarted); the job was abandoned",
            &daemon.created_at,
        )
        .await?;
        for id in &replaced {
            store::provisioners::delete_daemon(&mut tx, id).await?;
        }
    }
    store::provisioners::prune_offline(
        &mut tx,
        &auth.org.id,
        Some(&auth.key.id),
        &jobs::online_after(),
    )
    .await?;
    if store::provisioners::count_key_daemons(&mut tx, &auth.key.id).await? >= MAX_DAEMONS_PER_KEY {
        return Err(ApiError::conflict(format!(
            "provisioner key `{}` already has {MAX_DAEMONS_PER_KEY} connected daemons (the limit \
             per key); stop one, reuse a daemon name to replace its daemon, or use another key",
            auth.key.name
        )));
    }
    store::provisioners::insert_daemon(&mut tx, &daemon).await?;
    let mut diff = json!({"name": {"old": null, "new": daemon.name}, "key": {"old": null, "new": auth.key.name},
                          "provisioners": {"old": null, "new": daemon.provisioners}});
    if !replaced.is_empty() {
        diff["replaces"] = json!({"old": null, "new": replaced});
    }
    let ctx = crate::audit::AuditCtx {
        user_id: None,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        request_id: meta.request_id.clone(),
        source: "api",
    };
    crate::audit::record(
        &mut tx,
        &ctx,
        &now_audit,
        crate::audit::Change {
            organization_id: Some(&auth.org.id),
            action: "create",
            resource_type: "provisioner_daemon",
            resource_id: &daemon.id,
            resource_target: &daemon.name,
            diff,
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(daemon = %daemon.id, org = %auth.org.name, key = %auth.key.name, ?replaced, "provisioner daemon registered");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": daemon.id, "organization_id": daemon.organization_id, "organization_name": auth.org.name, "tags": daemon.tags}),
        ),
    ))
}

/// The registered daemon behind a key: it must belong to that key and not be
/// disconnected (its key deleted).
async fn identity(app: &AppState, auth: &KeyAuth, daemon_id: &str) -> ApiResult<DaemonIdentity> {
    let mut conn = app.db.pool().acquire().await?;
    let daemon = store::provisioners::get_daemon(&mut conn, daemon_id)
        .await?
        .filter(|d| d.key_id.as_deref() == Some(auth.key.id.as_str()) && !d.disconnected)
        .ok_or_else(|| {
            ApiError::unauthorized("unknown daemon for this provisioner key; register again")
        })?;
    Ok(DaemonIdentity::new(
        daemon.id,
        auth.org.org_ref(),
        daemon.provisioners,
        daemon.tags,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireQuery {
    pub wait_ms: Option<u64>,
}

pub async fn acquire(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path(daemon): Path<String>,
    ApiQuery(q): ApiQuery<AcquireQuery>,
) -> ApiResult<Response> {
    let daemon = identity(&app, &auth, &daemon).await?;
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(25_000).min(60_000));
    match jobs::acquire(&app, &daemon, wait).await? {
        Some(job) => Ok(Json(job).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub async fn heartbeat(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
) -> ApiResult<Json<jobs::HeartbeatReply>> {
    let daemon = identity(&app, &auth, &daemon).await?;
    Ok(Json(jobs::heartbeat(&app, &daemon, &job).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsRequest {
    pub logs: Vec<LogLine>,
}

pub async fn logs(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
    ApiJsonAnyText(req): ApiJsonAnyText<LogsRequest>,
) -> ApiResult<StatusCode> {
    let daemon = identity(&app, &auth, &daemon).await?;
    jobs::append_logs(&app, &daemon, &job, &req.logs).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn complete(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
    ApiJson(req): ApiJson<JobResult>,
) -> ApiResult<StatusCode> {
    let daemon = identity(&app, &auth, &daemon).await?;
    jobs::complete(&app, &daemon, &job, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub error: String,
    #[serde(default)]
    pub canceled: bool,
}

pub async fn fail(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
    ApiJsonAnyText(req): ApiJsonAnyText<FailRequest>,
) -> ApiResult<StatusCode> {
    let daemon = identity(&app, &auth, &daemon).await?;
    jobs::fail(&app, &daemon, &job, &req.error, req.canceled).await?;
    Ok(StatusCode::NO_CONTENT)
}
