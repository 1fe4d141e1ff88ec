//! Workspaces and their builds.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::orgs::load_org;
use super::templates::template_resource;
use crate::app::AppState;
use crate::audit::{self, Change};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::jobs;
use crate::model::{Name, Organization};
use crate::provisioner::{JobStatus, JobType, ParameterValue, Transition};
use crate::store::{self, Conn, templates::TemplateVersion, workspaces::Workspace};

fn ws_resource(org: &Organization, w: &Workspace) -> Resource {
    Resource::workspace(&org.org_ref(), &w.id, &w.owner_id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {
    pub template_id: String,
    pub name: String,
    #[serde(default)]
    pub rich_parameter_values: Vec<ParameterValue>,
}

fn check_parameters(params: &[ParameterValue]) -> ApiResult<()> {
    if params.len() > 64 {
        return Err(ApiError::validation(
            "rich_parameter_values",
            "at most 64 parameters",
        ));
    }
    for (i, p) in params.iter().enumerate() {
        let ok = !p.name.is_empty()
            && p.name.len() <= 64
            && p.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !p.name.as_bytes()[0].is_ascii_digit();
        if !ok {
            return Err(ApiError::validation(
                &format!("rich_parameter_values[{i}].name"),
                format!("`{}` is not a parameter name", p.name),
            ));
        }
        if p.value.len() > 4096 {
            return Err(ApiError::validation(
                &format!("rich_parameter_values[{i}].value"),
                "at most 4096 bytes",
            ));
        }
    }
    Ok(())
}

/// Enqueues a build of `ws` (job + build row) in the caller's transaction.
#[allow(clippy::too_many_arguments, reason = "one use case's inputs")]
async fn enqueue_build(
    app: &AppState,
    tx: &mut Conn,
    org: &Organization,
    workspace_id: &str,
    version: &TemplateVersion,
    transition: Transition,
    parameters: &[ParameterValue],
    actor: &Actor,
    now: &str,
) -> ApiResult<String> {
    let number: i64 = sqlx::query_as::<_, (i64,)>(
        "SELECT COALESCE(MAX(build_number), 0) FROM workspace_builds WHERE workspace_id = $1",
    )
    .bind(workspace_id)
    .fetch_one(&mut *tx)
    .await?
    .0 + 1;
    let job_id = store::new_id();
    jobs::enqueue(
        app,
        tx,
        &store::jobs::NewJob {
            id: &job_id,
            organization_id: &org.id,
            job_type: JobType::WorkspaceBuild,
            provisioner: &version.provisioner,
            tags: &version.tags,
            input: json!({"workspace_id": workspace_id}),
            initiator_id: actor.id(),
            now,
        },
    )
    .await?;
    let build_id = store::new_id();
    store::workspaces::insert_build(
        tx,
        &store::workspaces::NewBuild {
            id: &build_id,
            workspace_id,
            build_number: number,
            transition,
            template_version_id: &version.id,
            job_id: &job_id,
            initiator_id: actor.id(),
            parameters,
            now,
        },
    )
    .await?;
    Ok(build_id)
}

/// `POST /organizations/{organization}/members/{user}/workspaces`: creates the
/// workspace and its first `start` build.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    Path((org_key, user_key)): Path<(String, String)>,
    ApiJson(req): ApiJson<CreateWorkspaceRequest>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let (org, _) = load_org(&app, &actor, &org_key, Action::ORGANIZATION_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let owner = store::users::find(&mut conn, actor.resolve_user_key(&user_key))
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let template = store::templates::get_template(&mut conn, &req.template_id)
        .await?
        .filter(|t| t.organization_id == org.id)
        .ok_or_else(|| {
            ApiError::not_found("template").with_detail("no such template in this organization")
        })?;
    drop(conn);
    app.authz.require(
        &actor.principal.entity,
        Action::TEMPLATE_USE,
        &template_resource(&org, &template),
        "template",
    )?;
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::WORKSPACE_CREATE,
        &Resource::workspace(&org.org_ref(), "new", &owner.id),
        "organization",
    )?;
    let name = Name::parse("name", &req.name)?;
    check_parameters(&req.rich_parameter_values)?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    if store::members::get(&mut tx, &org.id, &owner.id)
        .await?
        .is_none()
    {
        return Err(ApiError::validation(
            "user",
            format!("`{}` is not a member of `{}`", owner.username, org.name),
        ));
    }
    let version = store::templates::get_version(&mut tx, &template.active_version_id)
        .await?
        .ok_or_else(|| ApiError::internal("active version missing"))?;
    if version.job.status != JobStatus::Succeeded {
        return Err(ApiError::bad_request(
            "the template's active version has not been imported successfully",
        ));
    }
    let id = store::new_id();
    store::workspaces::insert(
        &mut tx,
        &store::workspaces::NewWorkspace {
            id: &id,
            organization_id: &org.id,
            owner_id: &owner.id,
            template_id: &template.id,
            name: name.as_str(),
            now: &now_s,
        },
    )
    .await
    .map_err(ApiError::on_unique(format!(
        "`{}` already has a workspace named `{}`",
        owner.username,
        name.as_str()
    )))?;
    enqueue_build(
        &app,
        &mut tx,
        &org,
        &id,
        &version,
        Transition::Start,
        &req.rich_parameter_values,
        &actor,
        &now_s,
    )
    .await?;
    let ws = store::workspaces::get(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::internal("workspace vanished"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "workspace",
            resource_id: &id,
            resource_target: name.as_str(),
            diff: json!({"name": {"old": null, "new": name.as_str()}, "owner_id": {"old": null, "new": owner.id},
                         "template_id": {"old": null, "new": template.id}}),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    jobs::after_commit(&app);
    Ok((StatusCode::CREATED, Json(ws)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `me`, a username or an id.
    pub owner: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /workspaces`: every live workspace the caller may read.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let mut conn = app.db.pool().acquire().await?;
    let owner = match &q.owner {
        Some(key) => Some(
            store::users::find(&mut conn, actor.resolve_user_key(key))
                .await?
                .map(|u| u.id)
                .ok_or_else(|| ApiError::validation("owner", format!("no user `{key}`")))?,
        ),
        None => None,
    };
    let all = store::workspaces::list(&mut conn, owner.as_deref()).await?;
    let mut out = Vec::new();
    for w in all {
        if let Some(org) = store::orgs::find(&mut conn, &w.organization_id).await?
            && app.authz.allowed(
                &actor.principal.entity,
                Action::WORKSPACE_READ,
                &ws_resource(&org, &w),
            )
        {
            out.push(w);
        }
    }
    let count = out.len();
    let out = super::Page {
        limit: q.limit,
        offset: q.offset,
    }
    .apply(out)?;
    Ok(Json(json!({"workspaces": out, "count": count})))
}

async fn load(
    app: &AppState,
    actor: &Actor,
    id: &str,
    action: Action,
) -> ApiResult<(Workspace, Organization)> {
    let mut conn = app.db.pool().acquire().await?;
    let w = store::workspaces::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let org = store::orgs::find(&mut conn, &w.organization_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    drop(conn);
    app.authz.require(
        &actor.principal.entity,
        action,
        &ws_resource(&org, &w),
        "workspace",
    )?;
    Ok((w, org))
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(
        load(&app, &actor, &id, Action::WORKSPACE_READ).await?.0,
    ))
}

pub async fn builds(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<store::workspaces::BuildSummary>>> {
    load(&app, &actor, &id, Action::WORKSPACE_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(store::workspaces::builds(&mut conn, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    pub transition: Transition,
    /// Defaults to the template's active version for `start`, the last
    /// build's version otherwise.
    pub template_version_id: Option<String>,
    /// Defaults to the last build's values.
    pub rich_parameter_values: Option<Vec<ParameterValue>>,
}

async fn start_build(
    app: &AppState,
    actor: &Actor,
    id: &str,
    req: BuildRequest,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let action = if req.transition == Transition::Delete {
        Action::WORKSPACE_DELETE
    } else {
        Action::WORKSPACE_UPDATE
    };
    let (ws, org) = load(app, actor, id, action).await?;
    if let Some(p) = &req.rich_parameter_values {
        check_parameters(p)?;
    }
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    if store::workspaces::has_active_build(&mut tx, &ws.id).await? {
        return Err(ApiError::conflict(
            "the workspace has a build in progress; wait for it or cancel its job",
        ));
    }
    let last = store::workspaces::latest_build(&mut tx, &ws.id).await?;
    let version_id = match (&req.template_version_id, req.transition) {
        (Some(v), _) => v.clone(),
        (None, Transition::Start) => store::templates::get_template(&mut tx, &ws.template_id)
            .await?
            .map(|t| t.active_version_id)
            .ok_or_else(|| ApiError::internal("template missing"))?,
        (None, _) => last
            .as_ref()
            .map(|b| b.template_version_id.clone())
            .unwrap_or_default(),
    };
    let version = store::templates::get_version(&mut tx, &version_id)
        .await?
        .filter(|v| {
            v.template_id.as_deref() == Some(ws.template_id.as_str())
                && v.job.status == JobStatus::Succeeded
        })
        .ok_or_else(|| {
            ApiError::validation(
                "template_version_id",
                "not an imported version of this workspace's template",
            )
        })?;
    let parameters = match req.rich_parameter_values {
        Some(p) => p,
        None => match &last {
            Some(b) => store::workspaces::build_by_job(&mut tx, &b.job_id)
                .await?
                .map(|b| b.parameters)
                .unwrap_or_default(),
            None => Vec::new(),
        },
    };
    enqueue_build(
        app,
        &mut tx,
        &org,
        &ws.id,
        &version,
        req.transition,
        &parameters,
        actor,
        &now_s,
    )
    .await?;
    let updated = store::workspaces::get(&mut tx, &ws.id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: if req.transition == Transition::Delete { "delete" } else { "update" },
            resource_type: "workspace_build",
            resource_id: updated.latest_build.as_ref().map_or("", |b| b.id.as_str()),
            resource_target: &ws.name,
            diff: json!({"transition": {"old": last.as_ref().map(|b| b.transition), "new": req.transition}}),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    jobs::after_commit(app);
    Ok((StatusCode::CREATED, Json(updated)))
}

/// `POST /workspaces/{id}/builds {transition}`.
pub async fn create_build(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<BuildRequest>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    start_build(&app, &actor, &id, req).await
}

/// `DELETE /workspaces/{id}`: a `delete` build; the workspace is soft-deleted
/// when it succeeds.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let (status, ws) = start_build(
        &app,
        &actor,
        &id,
        BuildRequest {
            transition: Transition::Delete,
            template_version_id: None,
            rich_parameter_values: None,
        },
    )
    .await?;
    let _ = status;
    Ok((StatusCode::ACCEPTED, ws))
}
