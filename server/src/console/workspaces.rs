//! Workspaces: `/workspaces` (the viewer's, and others' the policies let it
//! read), `/workspaces/new?template=ORG/NAME` (name and parameters),
//! `/workspaces/{owner}/{name}` (start, stop, delete, the build log: live
//! while the build runs with JavaScript, refreshed by the page without).

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::Value;

use super::form::{self, Done, FormErrors};
use super::page::{Chrome, PageError, PageResult, Section, Viewer, ok, redirect};
use super::templates::{LogLine, find_template, job_log};
use super::time::When;
use crate::error::{Error, Kind};
use crate::model::Organization;
use crate::provisioner::{ParameterValue, Transition};
use crate::usecase::workspaces::{self, ListQuery, NewBuild, NewWorkspace, Workspace};

/// A workspace as the list answers it (the use case answers JSON).
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct Row {
    id: String,
    name: String,
    owner: String,
    owner_id: String,
    template: String,
    org: String,
    transition: String,
    status: String,
    job_id: String,
    updated: When,
}

fn row_of(
    w: &Value,
    orgs: &BTreeMap<&str, &Organization>,
    now: chrono::DateTime<chrono::Utc>,
) -> Row {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let b = &w["latest_build"];
    Row {
        id: s(&w["id"]),
        name: s(&w["name"]),
        owner: s(&w["owner_name"]),
        owner_id: s(&w["owner_id"]),
        template: s(&w["template_name"]),
        org: orgs
            .get(w["organization_id"].as_str().unwrap_or_default())
            .map(|o| o.name.clone())
            .unwrap_or_default(),
        transition: s(&b["transition"]),
        status: s(&b["status"]),
        job_id: s(&b["job_id"]),
        updated: When::new(
            b["created_at"]
                .as_str()
                .unwrap_or_else(|| w["updated_at"].as_str().unwrap_or_default()),
            now,
        ),
    }
}

async fn list_rows(
    viewer: &Viewer,
    owner: Option<String>,
    orgs: &[Organization],
) -> Result<Vec<Row>, Error> {
    let q = ListQuery {
        owner,
        limit: None,
        offset: None,
    };
    let v = workspaces::list(viewer.ctx(), &viewer.caller, &q).await?;
    let by_id: BTreeMap<&str, &Organization> = orgs.iter().map(|o| (o.id.as_str(), o)).collect();
    let now = crate::clock::now();
    Ok(v["workspaces"]
        .as_array()
        .map(|ws| ws.iter().map(|w| row_of(w, &by_id, now)).collect())
        .unwrap_or_default())
}

#[derive(Template)]
#[template(path = "workspaces_list.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct ListPage {
    chrome: Chrome,
    mine: Vec<Row>,
    others: Vec<Row>,
}

/// `GET /workspaces`: [`workspaces::list`], the viewer's first.
pub async fn list(viewer: Viewer) -> PageResult {
    let orgs = viewer.orgs().await?;
    let rows = list_rows(&viewer, None, &orgs).await?;
    let me = viewer.actor.user.username.clone();
    let (mine, others) = rows.into_iter().partition(|r| r.owner == me);
    let page = ListPage {
        chrome: viewer.chrome_with("Workspaces", Section::Workspaces, &orgs)?,
        mine,
        others,
    };
    Ok(ok(&viewer, &page))
}

#[derive(Template)]
#[template(path = "workspace_new.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct NewPage {
    chrome: Chrome,
    template: String,
    template_id: String,
    template_display: String,
    org_display: String,
    name: String,
    parameters: String,
    errors: FormErrors,
}

async fn new_page_of(
    viewer: &Viewer,
    template: &str,
    name: String,
    parameters: String,
    errors: FormErrors,
) -> Result<NewPage, PageError> {
    let (org, name_of_template) = template
        .split_once('/')
        .ok_or_else(|| PageError(Error::not_found("template")))?;
    let (o, t) = find_template(viewer, org, name_of_template).await?;
    Ok(NewPage {
        chrome: viewer.chrome("New workspace", Section::Workspaces).await?,
        template: format!("{}/{}", o.name, t.name),
        template_id: t.id,
        template_display: t.display_name,
        org_display: o.display_name,
        name,
        parameters,
        errors,
    })
}

/// `GET /workspaces/new?template=ORG/NAME`; without a template, to the
/// templates to choose from.
pub async fn new_page(viewer: Viewer, Query(q): Query<BTreeMap<String, String>>) -> PageResult {
    let Some(template) = q.get("template") else {
        return Ok(redirect("/templates"));
    };
    let page = new_page_of(
        &viewer,
        template,
        String::new(),
        String::new(),
        FormErrors::default(),
    )
    .await?;
    Ok(ok(&viewer, &page))
}

#[derive(Debug, Deserialize)]
pub struct NewForm {
    #[serde(default)]
    template: String,
    #[serde(default)]
    template_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    parameters: String,
}

/// `name=value` lines.
fn parse_parameters(text: &str) -> Result<Vec<ParameterValue>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(n, v)| ParameterValue {
                    name: n.trim().to_owned(),
                    value: v.trim().to_owned(),
                })
                .ok_or_else(|| {
                    Error::validation("parameters", format!("`{l}` is not `name=value`"))
                })
        })
        .collect()
}

/// `POST /workspaces/new`: [`workspaces::create`] for the viewer; then the
/// workspace's page, where its first build runs.
pub async fn create(viewer: Viewer, body: Bytes) -> PageResult {
    let f: NewForm = form::parse(&viewer, &body)?;
    let org = f
        .template
        .split_once('/')
        .map(|(o, _)| o.to_owned())
        .unwrap_or_default();
    let result = match parse_parameters(&f.parameters) {
        Ok(params) => {
            let req = NewWorkspace {
                template_id: f.template_id.clone(),
                name: f.name.trim().to_owned(),
                rich_parameter_values: params,
            };
            workspaces::create(
                viewer.ctx(),
                &viewer.app.jobs,
                &viewer.caller,
                &org,
                "me",
                req,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let result = result.map_err(|mut e| {
        for v in &mut e.body.validations {
            if v.field.starts_with("rich_parameter_values") {
                v.field = "parameters".to_owned();
            }
        }
        e
    });
    let done = |ws: Workspace| {
        Done::new(
            format!("/workspaces/{}/{}", viewer.actor.user.username, ws.name),
            format!("Workspace `{}` created; its first build started.", ws.name),
        )
    };
    form::answer(&viewer, result, done, |errors| {
        new_page_of(&viewer, &f.template, f.name, f.parameters, errors)
    })
    .await
}

#[allow(dead_code, reason = "fields read by the askama templates only")]
struct BuildRow {
    number: i64,
    transition: String,
    status: &'static str,
    created: When,
}

#[derive(Template)]
#[template(path = "workspace_detail.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct DetailPage {
    chrome: Chrome,
    w: Row,
    builds: Vec<BuildRow>,
    log: Vec<LogLine>,
    last_log_id: i64,
    job_id: String,
    running: bool,
    error: String,
    can_start: bool,
    can_stop: bool,
    can_delete: bool,
}

/// `GET /workspaces/{owner}/{name}`.
pub async fn detail(viewer: Viewer, Path((owner, name)): Path<(String, String)>) -> PageResult {
    let orgs = viewer.orgs().await?;
    let rows = match list_rows(&viewer, Some(owner.clone()), &orgs).await {
        Ok(rows) => rows,
        // An unknown owner is the same 404 as an unknown workspace.
        Err(e) if e.kind == Kind::Invalid => Vec::new(),
        Err(e) => return Err(PageError(e)),
    };
    let w = rows
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| PageError(Error::not_found("workspace")))?;
    let builds = workspaces::builds(viewer.ctx(), &viewer.caller, &w.id).await?;
    let now = crate::clock::now();
    let latest = builds.iter().max_by_key(|b| b.build_number);
    let error = latest.and_then(|b| b.error.clone()).unwrap_or_default();
    let running = latest.is_some_and(|b| {
        matches!(
            b.status,
            crate::provisioner::JobStatus::Pending
                | crate::provisioner::JobStatus::Running
                | crate::provisioner::JobStatus::Canceling
        )
    });
    let log = if w.job_id.is_empty() {
        Vec::new()
    } else {
        job_log(&viewer, &w.job_id).await?
    };
    let org = orgs.iter().find(|o| o.name == w.org);
    let (may_update, may_delete) = match org {
        Some(o) => {
            let r = Resource::workspace(&o.org_ref(), &w.id, &w.owner_id);
            (
                viewer.may(Action::WORKSPACE_UPDATE, &r),
                viewer.may(Action::WORKSPACE_DELETE, &r),
            )
        }
        None => (false, false),
    };
    let started = w.transition == "start" && w.status == "succeeded";
    let page = DetailPage {
        chrome: viewer.chrome_with(
            format!("{} · workspace", w.name),
            Section::Workspaces,
            &orgs,
        )?,
        can_start: may_update && !running && !started,
        can_stop: may_update && !running && w.transition == "start",
        can_delete: may_delete && !running,
        builds: builds
            .iter()
            .map(|b| BuildRow {
                number: b.build_number,
                transition: b.transition.as_str().to_owned(),
                status: b.status.as_str(),
                created: When::new(&b.created_at, now),
            })
            .collect(),
        last_log_id: log.last().map_or(0, |l| l.id),
        job_id: w.job_id.clone(),
        log,
        running,
        error,
        w,
    };
    Ok(ok(&viewer, &page))
}

#[derive(Debug, Deserialize)]
pub struct BuildForm {
    #[serde(default)]
    transition: String,
}

/// `POST /workspaces/{owner}/{name}/builds` (Start, Stop, Delete):
/// [`workspaces::start_build`].
pub async fn build(
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let f: BuildForm = form::parse(&viewer, &body)?;
    let transition = match f.transition.as_str() {
        "start" => Transition::Start,
        "stop" => Transition::Stop,
        "delete" => Transition::Delete,
        other => {
            return Err(PageError(Error::validation(
                "transition",
                format!("`{other}` is not start, stop or delete"),
            )));
        }
    };
    let orgs = viewer.orgs().await?;
    let w = list_rows(&viewer, Some(owner.clone()), &orgs)
        .await
        .ok()
        .and_then(|rows| rows.into_iter().find(|r| r.name == name))
        .ok_or_else(|| PageError(Error::not_found("workspace")))?;
    let back = format!("/workspaces/{owner}/{name}");
    let req = NewBuild {
        transition,
        template_version_id: None,
        rich_parameter_values: None,
        orphan: false,
    };
    let result =
        workspaces::start_build(viewer.ctx(), &viewer.app.jobs, &viewer.caller, &w.id, req).await;
    form::answer_back(&viewer, &back, result, |_| {
        format!("{} build started.", transition_label(transition))
    })
}

fn transition_label(t: Transition) -> &'static str {
    match t {
        Transition::Start => "Start",
        Transition::Stop => "Stop",
        Transition::Delete => "Delete",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_name_value_lines() {
        let p = parse_parameters("region=eu\n\n size = large \n").unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].name.as_str(), p[1].value.as_str()), ("size", "large"));
        assert!(parse_parameters("oops").is_err());
    }
}
