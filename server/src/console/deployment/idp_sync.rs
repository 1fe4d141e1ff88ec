//! `/deployment/idp-sync`: the deployment-wide IdP sync settings
//! (organization sync and site role sync, each with **Save**) and the
//! **Preview** panel (claims -> the plan a login would apply, with reasons
//! and problems; nothing written). The operations are
//! [`crate::usecase::idpsync`]'s, as the API calls them.

use askama::Template;
use axum::body::Bytes;
use orgsync_policy::{Action, Resource, SITE_ROLES};
use orgsync_sync::{Mapping, OrganizationSyncSettings, SiteRoleSyncSettings};
use serde_json::{Map, Value, json};

use super::super::form::{self, CsrfOnly, FormErrors, redirect_with};
use super::super::orgs::status_of;
use super::super::page::{Chrome, NavLink, PageError, PageResult, Viewer, ok, render};
use super::super::time::When;
use super::preview::Plan;
use crate::error::Error;
use crate::usecase::idpsync::{self, PreviewRequest, ProblemsQuery, Scope, SettingsChange};

const PATH: &str = "/deployment/idp-sync";
/// Recorded problems shown.
const PROBLEMS_SHOWN: i64 = 20;
/// Empty mapping rows offered under the stored ones (more after a save).
const BLANK_ROWS: usize = 2;

/// A row of a mapping table: a claim value and what it gives, comma-separated.
#[derive(Debug, Clone, Default)]
pub struct MappingRow {
    pub value: String,
    pub gets: String,
}

fn rows_of(mapping: &Mapping) -> Vec<MappingRow> {
    let mut rows: Vec<MappingRow> = mapping
        .iter()
        .map(|(value, gets)| MappingRow {
            value: value.clone(),
            gets: gets.join(", "),
        })
        .collect();
    rows.extend(std::iter::repeat_n(MappingRow::default(), BLANK_ROWS));
    rows
}

/// The rows of the mapping table `prefix` as posted (`{prefix}_value`,
/// `{prefix}_gets`, in order), blank rows dropped.
fn posted_rows(body: &Bytes, prefix: &str) -> Vec<MappingRow> {
    let (value_key, gets_key) = (format!("{prefix}_value"), format!("{prefix}_gets"));
    let mut values = Vec::new();
    let mut gets = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k == value_key.as_str() {
            values.push(v.into_owned());
        } else if k == gets_key.as_str() {
            gets.push(v.into_owned());
        }
    }
    values
        .into_iter()
        .zip(gets)
        .map(|(value, gets)| MappingRow { value, gets })
        .filter(|r| !r.value.trim().is_empty() || !r.gets.trim().is_empty())
        .collect()
}

/// The mapping of posted rows: a claim value given twice gets both lists.
fn mapping_of(rows: &[MappingRow]) -> Value {
    let mut mapping: Map<String, Value> = Map::new();
    for r in rows {
        let gets: Vec<Value> = r
            .gets
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| Value::String(g.to_owned()))
            .collect();
        let entry = mapping
            .entry(r.value.trim().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.extend(gets);
        }
    }
    Value::Object(mapping)
}

fn field_of(field: &str) -> Value {
    let f = field.trim();
    if f.is_empty() {
        Value::Null
    } else {
        Value::String(f.to_owned())
    }
}

/// The organization sync form.
pub struct OrgForm {
    pub field: String,
    pub assign_default: bool,
    pub rows: Vec<MappingRow>,
}

impl OrgForm {
    fn of(s: &OrganizationSyncSettings) -> OrgForm {
        OrgForm {
            field: s.field.clone().unwrap_or_default(),
            assign_default: s.organization_assign_default,
            rows: rows_of(&s.mapping),
        }
    }
}

/// The site role sync form.
pub struct SiteForm {
    pub field: String,
    pub rows: Vec<MappingRow>,
    /// The site roles as checkboxes: `(name, checked)`.
    pub default_roles: Vec<(&'static str, bool)>,
}

fn role_boxes(checked: &[String]) -> Vec<(&'static str, bool)> {
    SITE_ROLES
        .iter()
        .filter(|r| **r != "member")
        .map(|r| (*r, checked.iter().any(|c| c == r)))
        .collect()
}

impl SiteForm {
    fn of(s: &SiteRoleSyncSettings) -> SiteForm {
        SiteForm {
            field: s.field.clone().unwrap_or_default(),
            rows: rows_of(&s.mapping),
            default_roles: role_boxes(&s.default_roles),
        }
    }
}

/// The **Preview** form and its answer.
#[derive(Default)]
pub struct PreviewForm {
    pub claims: String,
    pub user: String,
    pub plan: Option<Plan>,
}

#[derive(Template)]
#[template(path = "deployment/idp_sync.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct IdpSyncPage {
    chrome: Chrome,
    nav: Vec<NavLink>,
    can_update: bool,
    org: OrgForm,
    site: SiteForm,
    preview: PreviewForm,
    org_errors: FormErrors,
    site_errors: FormErrors,
    preview_errors: FormErrors,
    problems: Vec<RecordedProblem>,
}

/// A problem recorded by a login or a directory run.
#[allow(dead_code, reason = "fields read by the askama templates only")]
pub struct RecordedProblem {
    pub when: When,
    pub source: String,
    pub kind: String,
    pub detail: String,
}

fn recorded(v: &Value) -> Vec<RecordedProblem> {
    let now = crate::clock::now();
    let text = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    v.get("problems")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| RecordedProblem {
                    when: When::new(&text(p, "time"), now),
                    source: text(p, "source"),
                    kind: text(p, "kind"),
                    detail: text(p, "detail"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a re-rendered page keeps of what was typed.
#[derive(Default)]
struct Typed {
    org: Option<OrgForm>,
    site: Option<SiteForm>,
    preview: PreviewForm,
    org_errors: FormErrors,
    site_errors: FormErrors,
    preview_errors: FormErrors,
}

async fn page_of(viewer: &Viewer, typed: Typed) -> Result<IdpSyncPage, PageError> {
    let org: OrganizationSyncSettings =
        idpsync::get(viewer.ctx(), &viewer.caller, Scope::Deployment).await?;
    let site: SiteRoleSyncSettings =
        idpsync::get(viewer.ctx(), &viewer.caller, Scope::Deployment).await?;
    let problems = idpsync::problems(
        viewer.ctx(),
        &viewer.caller,
        &ProblemsQuery {
            organization: None,
            limit: Some(PROBLEMS_SHOWN),
        },
    )
    .await?;
    let c = super::context(viewer, PATH, "IdP sync").await?;
    Ok(IdpSyncPage {
        problems: recorded(&problems),
        chrome: c.chrome,
        nav: c.nav,
        can_update: viewer.may(Action::DEPLOYMENT_SYNC_UPDATE, &Resource::site()),
        org: typed.org.unwrap_or_else(|| OrgForm::of(&org)),
        site: typed.site.unwrap_or_else(|| SiteForm::of(&site)),
        preview: typed.preview,
        org_errors: typed.org_errors,
        site_errors: typed.site_errors,
        preview_errors: typed.preview_errors,
    })
}

/// `GET /deployment/idp-sync`.
pub async fn page(viewer: Viewer) -> PageResult {
    let page = page_of(&viewer, Typed::default()).await?;
    Ok(ok(&viewer, &page))
}

/// `POST /deployment/idp-sync/organization` (**Save**): the organization
/// sync settings, replaced as typed.
pub async fn save_organization(viewer: Viewer, body: Bytes) -> PageResult {
    let fields = form::fields(&body)?;
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let field = fields.get("org-field").cloned().unwrap_or_default();
    let assign_default = fields.contains_key("organization_assign_default");
    let rows = posted_rows(&body, "org");
    let patch = json!({
        "field": field_of(&field),
        "organization_assign_default": assign_default,
        "mapping": mapping_of(&rows),
    });
    let result = idpsync::update::<OrganizationSyncSettings>(
        viewer.ctx(),
        &viewer.caller,
        Scope::Deployment,
        SettingsChange::Merge(patch),
    )
    .await;
    match result {
        Ok(_) => Ok(redirect_with(
            &viewer,
            PATH,
            "success",
            "Organization sync settings saved.",
        )),
        Err(e) => {
            let status = status_of(&e);
            let mut rows = rows;
            rows.extend(std::iter::repeat_n(MappingRow::default(), BLANK_ROWS));
            let typed = Typed {
                org: Some(OrgForm {
                    field,
                    assign_default,
                    rows,
                }),
                org_errors: FormErrors::from_error(e)?,
                ..Typed::default()
            };
            let page = page_of(&viewer, typed).await?;
            Ok(render(&viewer.app, status, &page, false))
        }
    }
}

/// `POST /deployment/idp-sync/site-roles` (**Save**): the site role sync
/// settings, replaced as typed.
pub async fn save_site_roles(viewer: Viewer, body: Bytes) -> PageResult {
    let fields = form::fields(&body)?;
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let field = fields.get("site-field").cloned().unwrap_or_default();
    let default_roles: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "default_roles")
        .map(|(_, v)| v.into_owned())
        .collect();
    let rows = posted_rows(&body, "site");
    let patch = json!({
        "field": field_of(&field),
        "mapping": mapping_of(&rows),
        "default_roles": default_roles,
    });
    let result = idpsync::update::<SiteRoleSyncSettings>(
        viewer.ctx(),
        &viewer.caller,
        Scope::Deployment,
        SettingsChange::Merge(patch),
    )
    .await;
    match result {
        Ok(_) => Ok(redirect_with(
            &viewer,
            PATH,
            "success",
            "Site role sync settings saved.",
        )),
        Err(e) => {
            let status = status_of(&e);
            let mut rows = rows;
            rows.extend(std::iter::repeat_n(MappingRow::default(), BLANK_ROWS));
            let typed = Typed {
                site: Some(SiteForm {
                    field,
                    rows,
                    default_roles: role_boxes(&default_roles),
                }),
                site_errors: FormErrors::from_error(e)?,
                ..Typed::default()
            };
            let page = page_of(&viewer, typed).await?;
            Ok(render(&viewer.app, status, &page, false))
        }
    }
}

/// `POST /deployment/idp-sync/preview` (**Preview**): the plan of a login
/// with the typed claims, rendered on the page; nothing is written.
pub async fn preview(viewer: Viewer, body: Bytes) -> PageResult {
    let fields = form::fields(&body)?;
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let claims = fields.get("claims").cloned().unwrap_or_default();
    let user = fields
        .get("user")
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let parsed = match serde_json::from_str::<Value>(&claims) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::validation(
            "claims",
            "must be a JSON object, e.g. {\"groups\": [\"eng\"]}",
        )),
        Err(e) => Err(Error::validation(
            "claims",
            format!("is not valid JSON: {e}"),
        )),
    };
    let result = match parsed {
        Ok(claims) => {
            let req = PreviewRequest {
                claims,
                user: (!user.is_empty()).then(|| user.clone()),
                organization: None,
            };
            idpsync::preview(viewer.ctx(), &viewer.caller, &req).await
        }
        Err(e) => Err(e),
    };
    let (status, plan, preview_errors) = match result {
        Ok(v) => (
            axum::http::StatusCode::OK,
            Some(Plan::of(&v)),
            FormErrors::default(),
        ),
        Err(e) => (status_of(&e), None, FormErrors::from_error(e)?),
    };
    let typed = Typed {
        preview: PreviewForm { claims, user, plan },
        preview_errors,
        ..Typed::default()
    };
    let page = page_of(&viewer, typed).await?;
    Ok(render(&viewer.app, status, &page, viewer.flash.is_some()))
}
