//! Templates: `/templates` (every template the viewer may see, with its
//! organization), `/templates/new` (**Organization** dropdown, name, display
//! name, provisioner, the `.tar` archive; then the import job's log until it
//! ends, and the template is created from the imported version) and
//! `/templates/{org}/{name}` (versions, ACL, "Create workspace").

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query};
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::form::{self, Done, FormErrors};
use super::page::{Chrome, PageError, PageResult, Section, Viewer, ok, redirect, render};
use super::paging::{PAGE_SIZE, PageQuery, Pager};
use super::time::When;
use crate::error::Error;
use crate::model::{Name, Organization};
use crate::provisioner::JobStatus;
use crate::usecase::provisioners::{self, LogsQuery};
use crate::usecase::templates::{self, FileQuery, NewTemplate, NewVersion, Template as Tpl};
use crate::usecase::{Page, orgs};

#[allow(dead_code, reason = "fields read by the askama templates only")]
struct TemplateRow {
    name: String,
    display_name: String,
    org_name: String,
    org_display: String,
    provisioner: String,
    created: When,
    /// Whether the viewer may use it (else only read it: no "Create workspace").
    can_use: bool,
}

#[derive(Template)]
#[template(path = "templates_list.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<TemplateRow>,
    can_create: bool,
    pager: Pager,
}

/// The orgs where the viewer may create templates.
fn creatable(viewer: &Viewer, orgs: &[Organization]) -> Vec<Organization> {
    orgs.iter()
        .filter(|o| {
            viewer.may(
                Action::TEMPLATE_CREATE,
                &Resource::organization(&o.org_ref()),
            )
        })
        .cloned()
        .collect()
}

/// `GET /templates[?page=N]`: [`templates::list_all_templates`], 50 a page
/// by name.
pub async fn list(viewer: Viewer, Query(q): Query<PageQuery>) -> PageResult {
    let mut list =
        templates::list_all_templates(viewer.ctx(), &viewer.caller, q.usecase(1)).await?;
    let has_next = list.len() as i64 > PAGE_SIZE;
    list.truncate(PAGE_SIZE as usize);
    let pager = Pager::new("/templates", q.number(), list.len(), has_next, None);
    let all = viewer.orgs().await?;
    let by_id: BTreeMap<&str, &Organization> = all.iter().map(|o| (o.id.as_str(), o)).collect();
    let now = crate::clock::now();
    let rows: Vec<TemplateRow> = list
        .into_iter()
        .map(|t| {
            let org = by_id.get(t.organization_id.as_str());
            TemplateRow {
                can_use: org.is_some_and(|o| {
                    viewer.may(Action::TEMPLATE_USE, &templates::template_resource(o, &t))
                }),
                org_name: org.map(|o| o.name.clone()).unwrap_or_default(),
                org_display: org.map(|o| o.display_name.clone()).unwrap_or_default(),
                created: When::new(&t.created_at, now),
                name: t.name,
                display_name: t.display_name,
                provisioner: t.provisioner,
            }
        })
        .collect();
    let page = ListPage {
        can_create: !creatable(&viewer, &all).is_empty(),
        chrome: viewer.chrome_with("Templates", Section::Templates, &all)?,
        rows,
        pager,
    };
    Ok(ok(&viewer, &page))
}

/// The fields of the new-template form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct NewFields {
    #[serde(default)]
    organization: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    provisioner: String,
}

#[derive(Template)]
#[template(path = "template_new.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct NewPage {
    chrome: Chrome,
    orgs: Vec<Organization>,
    f: NewFields,
    errors: FormErrors,
    max_mib: usize,
}

async fn new_page_of(
    viewer: &Viewer,
    f: NewFields,
    errors: FormErrors,
) -> Result<NewPage, PageError> {
    let all = viewer.orgs().await?;
    let orgs = creatable(viewer, &all);
    if orgs.is_empty() {
        return Err(PageError(Error::refused(
            "You may not create templates in any organization.",
        )));
    }
    Ok(NewPage {
        chrome: viewer.chrome_with("New template", Section::Templates, &all)?,
        orgs,
        f,
        errors,
        max_mib: crate::provisioner::archive::MAX_ARCHIVE_BYTES >> 20,
    })
}

/// `GET /templates/new[?organization=ORG]`.
pub async fn new_page(viewer: Viewer, Query(q): Query<BTreeMap<String, String>>) -> PageResult {
    let f = NewFields {
        organization: q.get("organization").cloned().unwrap_or_default(),
        provisioner: "terraform".to_owned(),
        ..NewFields::default()
    };
    let page = new_page_of(&viewer, f, FormErrors::default()).await?;
    Ok(ok(&viewer, &page))
}

/// Reads the multipart form: its text fields and the archive's bytes.
async fn read_multipart(mut mp: Multipart) -> Result<(BTreeMap<String, String>, Bytes), Error> {
    let mut fields = BTreeMap::new();
    let mut file = Bytes::new();
    loop {
        let next = mp.next_field().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::validation(
                    "file",
                    format!(
                        "a template archive is at most {} MiB",
                        crate::provisioner::archive::MAX_ARCHIVE_BYTES >> 20
                    ),
                )
            } else {
                Error::bad_request("cannot read the form").with_detail(e.body_text())
            }
        })?;
        let Some(field) = next else { break };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            file = field
                .bytes()
                .await
                .map_err(|e| Error::validation("file", e.body_text()))?;
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| Error::validation(&name, e.body_text()))?;
            if let Some(detail) = crate::api::extract::invalid_text(&text) {
                return Err(Error::validation(&name, detail));
            }
            fields.insert(name, text);
        }
    }
    Ok((fields, file))
}

/// `POST /templates/new` (multipart): uploads the archive for the chosen
/// org ([`templates::upload`]) and creates the version, whose import job
/// starts ([`templates::create_version`]); then to the import page.
pub async fn upload(viewer: Viewer, mp: Multipart) -> PageResult {
    let (fields, file) = read_multipart(mp).await.map_err(PageError)?;
    let token = fields.get("csrf").map(String::as_str).unwrap_or_default();
    viewer
        .actor
        .verify_csrf(token)
        .map_err(|_| form::csrf_refused())?;
    let get = |k: &str| {
        fields
            .get(k)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let f = NewFields {
        organization: get("organization"),
        name: get("name"),
        display_name: get("display_name"),
        provisioner: get("provisioner"),
    };
    let result = async {
        Name::parse("name", &f.name)?;
        if f.organization.is_empty() {
            return Err(Error::validation("organization", "choose an organization"));
        }
        if file.is_empty() {
            return Err(Error::validation(
                "file",
                "choose a .tar archive of the template",
            ));
        }
        let q = FileQuery {
            organization: Some(f.organization.clone()),
        };
        let hash = templates::upload(viewer.ctx(), &viewer.caller, &q, &file).await?;
        let req = NewVersion {
            file_hash: hash,
            provisioner: f.provisioner.clone(),
            tags: Default::default(),
            name: None,
            template_id: None,
        };
        templates::create_version(
            viewer.ctx(),
            &viewer.app.jobs,
            &viewer.caller,
            &f.organization,
            req,
        )
        .await
    }
    .await;
    match result {
        Ok(version) => Ok(redirect(&format!(
            "/templates/new/{}/{}?name={}&display_name={}",
            form::encode(&f.organization),
            version.id,
            form::encode(&f.name),
            form::encode(&f.display_name)
        ))),
        Err(e) => {
            let status = form::status_of(&e);
            let e = form::rename_field(e, "file_hash", "file");
            let page = new_page_of(&viewer, f, FormErrors::from_error(e)?).await?;
            Ok(render(&viewer.app, status, &page, false))
        }
    }
}

#[derive(Template)]
#[template(path = "template_import.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct ImportPage {
    chrome: Chrome,
    org: String,
    version_id: String,
    job_id: String,
    status: &'static str,
    running: bool,
    succeeded: bool,
    error: String,
    log: Vec<LogLine>,
    last_log_id: i64,
    name: String,
    display_name: String,
    errors: FormErrors,
}

#[allow(dead_code, reason = "fields read by the askama templates only")]
pub(super) struct LogLine {
    pub id: i64,
    pub stage: String,
    pub output: String,
}

async fn import_page_of(
    viewer: &Viewer,
    org: &str,
    version_id: &str,
    name: String,
    display_name: String,
    errors: FormErrors,
) -> Result<ImportPage, PageError> {
    let v = templates::get_version(viewer.ctx(), &viewer.caller, version_id).await?;
    let o = orgs::get(viewer.ctx(), &viewer.caller, org).await?;
    if v.organization_id != o.id {
        return Err(PageError(Error::not_found("template version")));
    }
    let log = job_log(viewer, &v.job.id).await?;
    Ok(ImportPage {
        chrome: viewer
            .chrome("Importing template", Section::Templates)
            .await?,
        org: o.name,
        version_id: v.id,
        job_id: v.job.id.clone(),
        status: v.job.status.as_str(),
        running: matches!(
            v.job.status,
            JobStatus::Pending | JobStatus::Running | JobStatus::Canceling
        ),
        succeeded: v.job.status == JobStatus::Succeeded,
        error: v.job.error.clone().unwrap_or_default(),
        last_log_id: log.last().map_or(0, |l| l.id),
        log,
        name,
        display_name,
        errors,
    })
}

/// A job's log lines, for a page.
pub(super) async fn job_log(viewer: &Viewer, job_id: &str) -> Result<Vec<LogLine>, PageError> {
    let q = LogsQuery {
        after: None,
        limit: Some(10_000),
    };
    Ok(
        provisioners::job_logs(viewer.ctx(), &viewer.caller, job_id, &q)
            .await?
            .into_iter()
            .map(|l| LogLine {
                id: l.id,
                stage: l.stage,
                output: l.output,
            })
            .collect(),
    )
}

/// `GET /templates/new/{org}/{version}?name=&display_name=`: the import job
/// and its log (refreshed while it runs), then **Create template**.
pub async fn import_page(
    viewer: Viewer,
    Path((org, version)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> PageResult {
    let name = q.get("name").cloned().unwrap_or_default();
    let display_name = q.get("display_name").cloned().unwrap_or_default();
    let page = import_page_of(
        &viewer,
        &org,
        &version,
        name,
        display_name,
        FormErrors::default(),
    )
    .await?;
    Ok(ok(&viewer, &page))
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
}

/// `POST /templates/new/{org}/{version}`: [`templates::create_template`] from
/// the imported version.
pub async fn create(
    viewer: Viewer,
    Path((org, version)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let f: CreateForm = form::parse(&viewer, &body)?;
    let req = NewTemplate {
        name: f.name.trim().to_owned(),
        display_name: (!f.display_name.trim().is_empty()).then(|| f.display_name.trim().to_owned()),
        description: String::new(),
        icon: String::new(),
        version_id: version.clone(),
        disable_everyone_group_access: false,
    };
    let result = templates::create_template(viewer.ctx(), &viewer.caller, &org, req).await;
    let done = |t: Tpl| {
        Done::new(
            format!("/templates/{org}/{}", t.name),
            format!("Template `{}` created.", t.name),
        )
    };
    form::answer(&viewer, result, done, |errors| {
        import_page_of(&viewer, &org, &version, f.name, f.display_name, errors)
    })
    .await
}

#[allow(dead_code, reason = "fields read by the askama templates only")]
struct VersionRow {
    name: String,
    status: &'static str,
    active: bool,
    created: When,
}

#[derive(Template)]
#[template(path = "template_detail.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct DetailPage {
    chrome: Chrome,
    org: Organization,
    t: Tpl,
    versions: Option<Vec<VersionRow>>,
    acl: Vec<(String, String, String)>,
    can_use: bool,
    created: When,
}

/// The template `name` of `org` the viewer may read (404 otherwise).
pub(super) async fn find_template(
    viewer: &Viewer,
    org: &str,
    name: &str,
) -> Result<(Organization, Tpl), PageError> {
    let o = orgs::get(viewer.ctx(), &viewer.caller, org).await?;
    let t = templates::list_org_templates(viewer.ctx(), &viewer.caller, &o.id, Page::default())
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| PageError(Error::not_found("template")))?;
    Ok((o, t))
}

/// `GET /templates/{org}/{name}`.
pub async fn detail(viewer: Viewer, Path((org, name)): Path<(String, String)>) -> PageResult {
    let (o, t) = find_template(&viewer, &org, &name).await?;
    let now = crate::clock::now();
    let versions = match templates::list_versions(viewer.ctx(), &viewer.caller, &o.id).await {
        Ok(vs) => Some(
            vs.into_iter()
                .filter(|v| v.template_id.as_deref() == Some(t.id.as_str()))
                .map(|v| VersionRow {
                    active: v.id == t.active_version_id,
                    status: v.job.status.as_str(),
                    created: When::new(&v.created_at, now),
                    name: v.name,
                })
                .collect(),
        ),
        Err(e)
            if matches!(
                e.kind,
                crate::error::Kind::Forbidden | crate::error::Kind::NotFound
            ) =>
        {
            None
        }
        Err(e) => return Err(PageError(e)),
    };
    let mut acl = Vec::new();
    for (id, role) in &t.acl.groups {
        let who = if *id == o.id {
            "Everyone".to_owned()
        } else {
            id.clone()
        };
        acl.push(("group".to_owned(), who, role.clone()));
    }
    for (id, role) in &t.acl.users {
        acl.push(("user".to_owned(), id.clone(), role.clone()));
    }
    let resource = templates::template_resource(&o, &t);
    let page = DetailPage {
        chrome: viewer
            .chrome(t.display_name.clone(), Section::Templates)
            .await?,
        can_use: viewer.may(Action::TEMPLATE_USE, &resource),
        created: When::new(&t.created_at, now),
        org: o,
        t,
        versions,
        acl,
    };
    Ok(ok(&viewer, &page))
}
