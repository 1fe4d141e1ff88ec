//! Workspaces and their builds.

use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

use super::provisioners::caller_id;
use super::templates::template_resource;
use super::{Caller, Ctx, Page, Work, orgs};
use crate::audit::Change;
use crate::authz::Permit;
use crate::error::{Error, Kind, Result, Validation};
use crate::jobs::{self, JobsHub};
use crate::model::{Name, Organization};
use crate::provisioner::variables::{self, Variable};
use crate::provisioner::{JobStatus, JobType, ParameterValue, Transition};
pub use crate::store::workspaces::{BuildSummary, Workspace};
use crate::store::{self, Conn, templates::TemplateVersion};

fn ws_resource(org: &Organization, w: &Workspace) -> Resource {
    Resource::workspace(&org.org_ref(), &w.id, &w.owner_id)
}

/// A new workspace as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    pub template_id: String,
    pub name: String,
    #[serde(default)]
    pub rich_parameter_values: Vec<ParameterValue>,
}

fn check_parameters(params: &[ParameterValue]) -> Result<()> {
    if params.len() > 64 {
        return Err(Error::validation(
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
            return Err(Error::validation(
                &format!("rich_parameter_values[{i}].name"),
                format!("`{}` is not a parameter name", p.name),
            ));
        }
        if p.value.len() > 4096 {
            return Err(Error::validation(
                &format!("rich_parameter_values[{i}].value"),
                "at most 4096 bytes",
            ));
        }
    }
    Ok(())
}

/// Checks parameter values against the variables the build's template
/// version declares (before any build): unknown names and, when
/// `need_required`, missing required ones are a 400 naming each of them.
/// Versions that recorded no variables (created before they were) are not
/// checked.
fn check_declared(
    version: &TemplateVersion,
    params: &[ParameterValue],
    need_required: bool,
) -> Result<()> {
    let Some(declared) = &version.variables else {
        return Ok(());
    };
    let declared: Vec<Variable> = declared
        .iter()
        .map(|v| Variable {
            name: v.name.clone(),
            required: v.required && need_required,
        })
        .collect();
    let problems = variables::check(&declared, params);
    if problems.is_empty() {
        return Ok(());
    }
    let mut e = Error::of(
        Kind::Invalid,
        format!(
            "the parameters do not match the variables of template version `{}`: {}",
            version.name,
            problems
                .iter()
                .map(|(_, d)| d.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    );
    e.body.validations = problems
        .into_iter()
        .map(|(field, detail)| Validation { field, detail })
        .collect();
    Err(e)
}

/// Enqueues a build of a workspace (job + build row) in the operation's
/// transaction.
#[allow(
    clippy::too_many_arguments,
    reason = "the operation, its permit and the build's parts"
)]
async fn enqueue_build(
    ctx: Ctx<'_>,
    work: &mut Work<'_>,
    permit: &Permit,
    org: &Organization,
    workspace_id: &str,
    version: &TemplateVersion,
    transition: Transition,
    parameters: &[ParameterValue],
) -> Result<String> {
    let number = store::workspaces::next_build_number(work.conn(), workspace_id).await?;
    let initiator = caller_id(work.caller()).to_owned();
    let now = work.now_s.clone();
    let job_id = store::new_id();
    let mut w = work.write(permit)?;
    jobs::enqueue(
        ctx.db,
        &mut w,
        &store::jobs::NewJob {
            id: &job_id,
            organization_id: &org.id,
            job_type: JobType::WorkspaceBuild,
            provisioner: &version.provisioner,
            tags: &version.tags,
            input: json!({"workspace_id": workspace_id}),
            initiator_id: &initiator,
            now: &now,
        },
    )
    .await?;
    let build_id = store::new_id();
    store::workspaces::insert_build(
        &mut w,
        &store::workspaces::NewBuild {
            id: &build_id,
            workspace_id,
            build_number: number,
            transition,
            template_version_id: &version.id,
            job_id: &job_id,
            initiator_id: &initiator,
            parameters,
            now: &now,
        },
    )
    .await?;
    Ok(build_id)
}

/// Creates the workspace of `user_key` (`me`, a username or an id) in an
/// organization, and its first `start` build.
pub async fn create(
    ctx: Ctx<'_>,
    hub: &JobsHub,
    caller: &Caller,
    org_key: &str,
    user_key: &str,
    req: NewWorkspace,
) -> Result<Workspace> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, _) = orgs::load_in(&mut work, org_key, Action::ORGANIZATION_READ).await?;
    let owner = store::users::find(work.conn(), caller.resolve_user_key(user_key))
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let template = store::templates::get_template(work.conn(), &req.template_id)
        .await?
        .filter(|t| t.organization_id == org.id)
        .ok_or_else(|| {
            Error::not_found("template").with_detail("no such template in this organization")
        })?;
    work.require(
        Action::TEMPLATE_USE,
        &template_resource(&org, &template),
        "template",
    )?;
    let permit = work.require(
        Action::WORKSPACE_CREATE,
        &Resource::workspace(&org.org_ref(), "new", &owner.id),
        "organization",
    )?;
    let name = Name::parse("name", &req.name)?;
    check_parameters(&req.rich_parameter_values)?;
    if store::members::get(work.conn(), &org.id, &owner.id)
        .await?
        .is_none()
    {
        return Err(Error::validation(
            "user",
            format!("`{}` is not a member of `{}`", owner.username, org.name),
        ));
    }
    let version = store::templates::get_version(work.conn(), &template.active_version_id)
        .await?
        .ok_or_else(|| Error::internal("active version missing"))?;
    if version.job.status != JobStatus::Succeeded {
        return Err(Error::bad_request(
            "the template's active version has not been imported successfully",
        ));
    }
    check_declared(&version, &req.rich_parameter_values, true)?;
    let id = store::new_id();
    let now_s = work.now_s.clone();
    store::workspaces::insert(
        &mut work.write(&permit)?,
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
    .map_err(Error::on_unique(format!(
        "`{}` already has a workspace named `{}`",
        owner.username,
        name.as_str()
    )))?;
    enqueue_build(
        ctx,
        &mut work,
        &permit,
        &org,
        &id,
        &version,
        Transition::Start,
        &req.rich_parameter_values,
    )
    .await?;
    let ws = store::workspaces::get(work.conn(), &id)
        .await?
        .ok_or_else(|| Error::internal("workspace vanished"))?;
    work.audit(
        &permit,
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
    work.commit().await?;
    jobs::after_commit(hub);
    Ok(ws)
}

/// `?owner=&limit=&offset=` of a workspace list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `me`, a username or an id.
    pub owner: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Every live workspace the caller may read: `{workspaces, count}` (`count`
/// before paging).
pub async fn list(ctx: Ctx<'_>, caller: &Caller, q: &ListQuery) -> Result<Value> {
    let mut conn = ctx.conn().await?;
    let owner = match &q.owner {
        Some(key) => Some(
            store::users::find(&mut conn, caller.resolve_user_key(key))
                .await?
                .map(|u| u.id)
                .ok_or_else(|| Error::validation("owner", format!("no user `{key}`")))?,
        ),
        None => None,
    };
    let all = store::workspaces::list(&mut conn, owner.as_deref()).await?;
    let mut out = Vec::new();
    for w in all {
        if let Some(org) = store::orgs::find(&mut conn, &w.organization_id).await?
            && caller.allowed(ctx.authz, Action::WORKSPACE_READ, &ws_resource(&org, &w))
        {
            out.push(w);
        }
    }
    let count = out.len();
    let out = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .apply(out)?;
    Ok(json!({"workspaces": out, "count": count}))
}

/// Loads a workspace and its org and decides `action` on the workspace.
async fn load(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<(Workspace, Organization, Permit)> {
    let w = store::workspaces::get(conn, id).await?;
    let (w, org) = orgs::with_org(conn, w, |w| &w.organization_id, "workspace").await?;
    let permit = caller.require(ctx.authz, action, &ws_resource(&org, &w), "workspace")?;
    Ok((w, org, permit))
}

pub async fn get(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Workspace> {
    let mut conn = ctx.conn().await?;
    Ok(load(&mut conn, ctx, caller, id, Action::WORKSPACE_READ)
        .await?
        .0)
}

pub async fn builds(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Vec<BuildSummary>> {
    let mut conn = ctx.conn().await?;
    load(&mut conn, ctx, caller, id, Action::WORKSPACE_READ).await?;
    Ok(store::workspaces::builds(&mut conn, id).await?)
}

/// A build as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBuild {
    pub transition: Transition,
    /// Defaults to the template's active version for `start`, the last
    /// build's version otherwise.
    pub template_version_id: Option<String>,
    /// Defaults to the last build's values (those the build's version still
    /// declares).
    pub rich_parameter_values: Option<Vec<ParameterValue>>,
    /// With `transition: delete`: remove the workspace without running
    /// destroy (its resources are left as they are); needs
    /// `workspace:delete_orphan`.
    #[serde(default)]
    pub orphan: bool,
}

/// Starts a build of a workspace (`delete` soft-deletes it when it succeeds;
/// with `orphan`, at once and without a build); 409 while another build is
/// in progress.
pub async fn start_build(
    ctx: Ctx<'_>,
    hub: &JobsHub,
    caller: &Caller,
    id: &str,
    req: NewBuild,
) -> Result<Workspace> {
    if req.orphan {
        if req.transition != Transition::Delete {
            return Err(Error::validation(
                "orphan",
                "only a `delete` transition can orphan a workspace",
            ));
        }
        return orphan_delete(ctx, caller, id).await;
    }
    let action = if req.transition == Transition::Delete {
        Action::WORKSPACE_DELETE
    } else {
        Action::WORKSPACE_UPDATE
    };
    let mut work = Work::begin(ctx, caller).await?;
    let (ws, org, permit) = load(work.conn(), ctx, caller, id, action).await?;
    if let Some(p) = &req.rich_parameter_values {
        check_parameters(p)?;
    }
    if store::workspaces::has_active_build(work.conn(), &ws.id).await? {
        return Err(Error::conflict(
            "the workspace has a build in progress; wait for it or cancel its job",
        ));
    }
    let last = store::workspaces::latest_build(work.conn(), &ws.id).await?;
    let version_id = match (&req.template_version_id, req.transition) {
        (Some(v), _) => v.clone(),
        (None, Transition::Start) => store::templates::get_template(work.conn(), &ws.template_id)
            .await?
            .map(|t| t.active_version_id)
            .ok_or_else(|| Error::internal("template missing"))?,
        (None, _) => last
            .as_ref()
            .map(|b| b.template_version_id.clone())
            .unwrap_or_default(),
    };
    let version = store::templates::get_version(work.conn(), &version_id)
        .await?
        .filter(|v| {
            v.template_id.as_deref() == Some(ws.template_id.as_str())
                && v.job.status == JobStatus::Succeeded
        })
        .ok_or_else(|| {
            Error::validation(
                "template_version_id",
                "not an imported version of this workspace's template",
            )
        })?;
    // A delete never fails on parameters: it needs none it was not given.
    let need_required = req.transition != Transition::Delete;
    let parameters = match req.rich_parameter_values {
        Some(p) => {
            check_declared(&version, &p, need_required)?;
            p
        }
        None => {
            let inherited = match &last {
                Some(b) => store::workspaces::build_by_job(work.conn(), &b.job_id)
                    .await?
                    .map(|b| b.parameters)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            // What the version no longer declares (or a failed build was
            // given) is dropped, not passed on to fail again.
            let kept: Vec<ParameterValue> = match &version.variables {
                Some(declared) => inherited
                    .into_iter()
                    .filter(|p| declared.iter().any(|v| v.name == p.name))
                    .collect(),
                None => inherited,
            };
            check_declared(&version, &kept, need_required)?;
            kept
        }
    };
    enqueue_build(
        ctx,
        &mut work,
        &permit,
        &org,
        &ws.id,
        &version,
        req.transition,
        &parameters,
    )
    .await?;
    let updated = store::workspaces::get(work.conn(), &ws.id)
        .await?
        .ok_or_else(|| Error::not_found("workspace"))?;
    work.audit(
        &permit,
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
    work.commit().await?;
    jobs::after_commit(hub);
    Ok(updated)
}

/// Removes a workspace without running destroy (its resources, if any, are
/// left behind), on `workspace:delete_orphan`. A build still in progress has
/// its job canceled, so a workspace stuck on a job no daemon takes can go.
async fn orphan_delete(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Workspace> {
    let mut work = Work::begin(ctx, caller).await?;
    let (mut ws, org, permit) = load(
        work.conn(),
        ctx,
        caller,
        id,
        Action::WORKSPACE_DELETE_ORPHAN,
    )
    .await?;
    let now_s = work.now_s.clone();
    let mut w = work.write(&permit)?;
    if let Some(b) = &ws.latest_build
        && !b.status.is_terminal()
    {
        store::jobs::cancel(&mut w, &b.job_id, &now_s).await?;
    }
    store::workspaces::mark_deleted(&mut w, &ws.id, &now_s).await?;
    work.audit(
        &permit,
        Change {
            organization_id: Some(&org.id),
            action: "delete",
            resource_type: "workspace",
            resource_id: &ws.id,
            resource_target: &ws.name,
            diff: json!({"deleted": {"old": false, "new": true}, "orphan": {"old": null, "new": true}}),
            status_code: 201,
        },
    )
    .await?;
    work.commit().await?;
    ws.deleted = true;
    Ok(ws)
}
