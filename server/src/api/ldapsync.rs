//! LDAP sync settings and runs.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use orgsync_sync::ldap::LdapSettings;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::idpsync::invalid;
use crate::app::AppState;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::ldapsync::{self, RunRequest, StartError, Trigger};
use orgsync_sync::FieldError;

fn require(app: &AppState, actor: &Actor, action: Action) -> ApiResult<()> {
    app.authz.require(
        &actor.principal.entity,
        action,
        &Resource::site(),
        "settings",
    )?;
    Ok(())
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Disabled => ApiError::bad_request(
                "LDAP sync is not enabled: set `enabled: true` with `PUT /api/v2/settings/ldapsync` first",
            ),
            StartError::Busy(id) => ApiError::new(
                StatusCode::CONFLICT,
                match id {
                    Some(id) => format!("an LDAP sync run is already in progress (run {id})"),
                    None => "an LDAP sync run is already in progress".to_owned(),
                },
            ),
            StartError::Db(e) => ApiError::from(e),
        }
    }
}

/// `GET /settings/ldapsync`: the settings without the bind password.
pub async fn get_settings(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Value>> {
    require(&app, &actor, Action::DEPLOYMENT_SYNC_READ)?;
    let s = app.directory_sync().settings().await?;
    Ok(Json(ldapsync::public_settings(&s)))
}

/// `PUT /settings/ldapsync`: replaces the settings (absent fields take their
/// defaults). A missing or null `bind_password` keeps the stored one; `""`
/// clears it.
pub async fn put_settings(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    require(&app, &actor, Action::DEPLOYMENT_SYNC_UPDATE)?;
    let Value::Object(mut body) = body else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    // Served back, so tolerated on the way in.
    body.remove("bind_password_set");
    let old = app.directory_sync().settings().await?;
    let keep_password = body.get("bind_password").is_none_or(Value::is_null);
    if keep_password {
        body.insert(
            "bind_password".to_owned(),
            Value::String(old.bind_password.clone()),
        );
    }
    let new: LdapSettings = serde_json::from_value(Value::Object(body)).map_err(|e| {
        let detail = e.to_string();
        let field = detail.split('`').nth(1).unwrap_or("body").to_owned();
        invalid(vec![FieldError { field, detail }])
    })?;
    // The stored password only ever goes to the server it was given for.
    let moved = new.url != old.url
        || new.bind_dn != old.bind_dn
        || new.start_tls != old.start_tls
        || new.ca_file != old.ca_file;
    if keep_password && moved && !old.bind_password.is_empty() {
        return Err(invalid(vec![FieldError {
            field: "bind_password".to_owned(),
            detail: "must be given again when `url`, `bind_dn`, `start_tls` or `ca_file` \
                     change: the stored password is never sent to another server unasked"
                .to_owned(),
        }]));
    }
    new.validate().map_err(invalid)?;
    // The directory is a source of identity for every account without a
    // password: who configures it must be allowed every grant.
    let mut conn = app.db.pool().acquire().await?;
    let grants = crate::idpsync::directory_grants(&mut conn).await?;
    drop(conn);
    app.authz.require_grants(
        &actor.principal.entity,
        &grants,
        "the directory sync settings (the directory feeds the claims every sync setting reads, \
         and links, renames and suspends the accounts without a password it shows)",
    )?;
    app.directory_sync()
        .replace_settings(&old, &new, &actor.audit(), clock::now())
        .await?;
    Ok(Json(ldapsync::public_settings(&new)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /ldapsync/runs`: newest first.
pub async fn list_runs(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<Value>> {
    require(&app, &actor, Action::DEPLOYMENT_SYNC_READ)?;
    let (limit, offset) = super::Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve(25, 500)?;
    let (runs, count) = app
        .directory_sync()
        .list_runs(limit, offset, clock::now())
        .await?;
    Ok(Json(json!({"runs": runs, "count": count})))
}

/// `GET /ldapsync/runs/{id}`: with progress while running, and the plan of a
/// dry or aborted run.
pub async fn get_run(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<ldapsync::Run>> {
    require(&app, &actor, Action::DEPLOYMENT_SYNC_READ)?;
    let run = app
        .directory_sync()
        .get_run(&id, clock::now())
        .await?
        .ok_or_else(|| ApiError::not_found("LDAP sync run"))?;
    Ok(Json(run))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StartRun {
    pub dry_run: bool,
    pub force: bool,
    /// `true`: a full run even when an incremental one would do; `false`: an
    /// incremental run even when a full one is due.
    pub full: Option<bool>,
}

/// `POST /ldapsync/runs {dry_run, force, full?}`: starts a run and answers
/// 202 with it (`status: running`); poll `GET /ldapsync/runs/{id}`.
pub async fn start_run(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<StartRun>,
) -> ApiResult<(StatusCode, Json<ldapsync::Run>)> {
    require(&app, &actor, Action::LDAPSYNC_RUN)?;
    let run = app
        .directory_sync()
        .start(
            RunRequest {
                trigger: Trigger::Manual,
                dry_run: body.dry_run,
                force: body.force,
                full: body.full,
                started_by: Some(actor.user.username.clone()),
                tick: None,
            },
            clock::now(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
