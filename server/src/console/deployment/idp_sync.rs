//! `/deployment/idp-sync`: the deployment-wide IdP sync settings
//! (organization sync and site role sync, each with **Save**) and the
//! **Preview** panel (claims -> the plan a login would apply, with reasons
//! and problems; nothing written). The operations are
//! [`crate::usecase::idpsync`]'s, as the API calls them; the mapping tables
//! and the preview are the org page's ([`super::super::sync_view`]).

use askama::Template;
use axum::body::Bytes;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource, SITE_ROLES};
use orgsync_sync::{OrganizationSyncSettings, SiteRoleSyncSettings};
use serde_json::{Value, json};

use super::super::form::{self, CsrfOnly, Done, FormErrors};
use super::super::idpsync::value_or_null;
use super::super::page::{Chrome, NavLink, PageError, PageResult, Viewer, ok, render};
use super::super::sync_view::{self, BLANK_ROWS, MappingTable, PreviewForm};
use super::super::time::When;
use crate::usecase::idpsync::{self, ProblemsQuery, Scope, SettingsChange};

const PATH: &str = "/deployment/idp-sync";
/// Recorded problems shown.
const PROBLEMS_SHOWN: i64 = 20;
const ORG_MAP: &str = "org_mapping";
const SITE_MAP: &str = "site_mapping";

/// The organization sync form as shown.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct OrgForm {
    field: String,
    assign_default: bool,
    table: String,
    errors: FormErrors,
}

/// The site role sync form as shown.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct SiteForm {
    field: String,
    /// The site roles as checkboxes: `(name, checked)`.
    default_roles: Vec<(&'static str, bool)>,
    table: String,
    errors: FormErrors,
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
    problems: Vec<RecordedProblem>,
}

/// A problem recorded by a login or a directory run.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct RecordedProblem {
    when: When,
    source: String,
    kind: String,
    detail: String,
}

fn recorded(v: &Value) -> Vec<RecordedProblem> {
    let now = crate::clock::now();
    let text = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    v.get("problems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| RecordedProblem {
            when: When::new(&text(p, "time"), now),
            source: text(p, "source"),
            kind: text(p, "kind"),
            detail: text(p, "detail"),
        })
        .collect()
}

/// What one settings form holds before rendering: as stored, or as posted.
struct Typed {
    field: String,
    /// Organization sync: every synced user joins the default org.
    assign_default: bool,
    /// Site role sync: the roles every synced user gets.
    default_roles: Vec<String>,
    rows: Vec<(String, String)>,
    blank: usize,
    errors: FormErrors,
}

impl Typed {
    fn of_orgs(s: &OrganizationSyncSettings) -> Typed {
        Typed {
            field: s.field.clone().unwrap_or_default(),
            assign_default: s.organization_assign_default,
            default_roles: Vec::new(),
            rows: sync_view::pairs_of(&s.mapping),
            blank: BLANK_ROWS,
            errors: FormErrors::default(),
        }
    }

    fn of_site_roles(s: &SiteRoleSyncSettings) -> Typed {
        Typed {
            field: s.field.clone().unwrap_or_default(),
            assign_default: false,
            default_roles: s.default_roles.clone(),
            rows: sync_view::pairs_of(&s.mapping),
            blank: BLANK_ROWS,
            errors: FormErrors::default(),
        }
    }

    /// The mapping table of this form.
    fn table(
        &self,
        prefix: &str,
        gets: &str,
        hint: &str,
        choices: Vec<String>,
        editable: bool,
    ) -> String {
        let caption = format!("{gets} mapping");
        let mut table = MappingTable::new(prefix, &caption, gets, self.rows.clone(), self.blank);
        table.hint = hint.to_owned();
        table.choices = choices;
        table.editable = editable;
        table.place_errors("mapping", &self.errors.fields);
        table.place_errors(prefix, &self.errors.fields);
        table.html()
    }
}

/// The site roles sync may give (not `member`, which everyone holds).
fn site_roles() -> impl Iterator<Item = &'static str> {
    SITE_ROLES.iter().copied().filter(|r| *r != "member")
}

async fn page_of(
    viewer: &Viewer,
    org: Option<Typed>,
    site: Option<Typed>,
    preview: PreviewForm,
) -> Result<IdpSyncPage, PageError> {
    let org = match org {
        Some(t) => t,
        None => {
            Typed::of_orgs(&idpsync::get(viewer.ctx(), &viewer.caller, Scope::Deployment).await?)
        }
    };
    let site = match site {
        Some(t) => t,
        None => Typed::of_site_roles(
            &idpsync::get(viewer.ctx(), &viewer.caller, Scope::Deployment).await?,
        ),
    };
    let q = ProblemsQuery {
        organization: None,
        limit: Some(PROBLEMS_SHOWN),
    };
    let problems = idpsync::problems(viewer.ctx(), &viewer.caller, &q).await?;
    let org_names = viewer
        .orgs()
        .await?
        .iter()
        .map(|o| o.name.clone())
        .collect();
    let c = super::context(viewer, PATH, "IdP sync").await?;
    let can_update = viewer.may(Action::DEPLOYMENT_SYNC_UPDATE, &Resource::site());
    Ok(IdpSyncPage {
        problems: recorded(&problems),
        chrome: c.chrome,
        nav: c.nav,
        org: OrgForm {
            table: org.table(
                ORG_MAP,
                "Organization",
                "A claim value and the organization (name or id) it makes the user a member of.",
                org_names,
                can_update,
            ),
            field: org.field,
            assign_default: org.assign_default,
            errors: org.errors,
        },
        site: SiteForm {
            table: site.table(
                SITE_MAP,
                "Site role",
                "A claim value and the site role it gives. Unmapped values are used as site role names.",
                site_roles().map(str::to_owned).collect(),
                can_update,
            ),
            default_roles: site_roles()
                .map(|r| (r, site.default_roles.iter().any(|c| c == r)))
                .collect(),
            field: site.field,
            errors: site.errors,
        },
        can_update,
        preview,
    })
}

/// `GET /deployment/idp-sync`.
pub async fn page(viewer: Viewer) -> PageResult {
    let page = page_of(&viewer, None, None, PreviewForm::deployment()).await?;
    Ok(ok(&viewer, &page))
}

/// Saves one of the two settings from its form (`orgs`: organization sync,
/// else site role sync), or shows the page again with what was typed (more
/// rows asked for, or the operation's errors).
async fn save(viewer: Viewer, body: Bytes, orgs: bool) -> PageResult {
    let fields = form::fields(&body)?;
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let (lead, prefix) = if orgs {
        ("org", ORG_MAP)
    } else {
        ("site", SITE_MAP)
    };
    let posted = sync_view::posted_mapping(&body, &fields, prefix);
    let mut typed = Typed {
        field: fields
            .get(&format!("{lead}-field"))
            .cloned()
            .unwrap_or_default(),
        assign_default: fields.contains_key("organization_assign_default"),
        default_roles: form_urlencoded::parse(&body)
            .filter(|(k, _)| k == "default_roles")
            .map(|(_, v)| v.into_owned())
            .collect(),
        rows: posted.rows,
        blank: posted.blank,
        errors: FormErrors::default(),
    };
    let result = match posted.save {
        None => {
            let page = rerender(&viewer, typed, orgs).await?;
            return Ok(render(&viewer.app, StatusCode::OK, &page, false));
        }
        Some(Err(e)) => Err(e),
        Some(Ok(mapping)) => {
            let field = value_or_null(&typed.field);
            let (ctx, caller) = (viewer.ctx(), &viewer.caller);
            if orgs {
                let patch = json!({
                    "field": field,
                    "organization_assign_default": typed.assign_default,
                    "mapping": mapping,
                });
                let change = SettingsChange::Merge(patch);
                idpsync::update::<OrganizationSyncSettings>(ctx, caller, Scope::Deployment, change)
                    .await
                    .map(|_| "Organization sync settings saved.")
            } else {
                let roles = &typed.default_roles;
                let patch = json!({"field": field, "mapping": mapping, "default_roles": roles});
                let change = SettingsChange::Merge(patch);
                idpsync::update::<SiteRoleSyncSettings>(ctx, caller, Scope::Deployment, change)
                    .await
                    .map(|_| "Site role sync settings saved.")
            }
        }
    };
    form::answer(
        &viewer,
        result,
        |m| Done::new(PATH, m),
        |errors| {
            typed.errors = errors;
            rerender(&viewer, typed, orgs)
        },
    )
    .await
}

/// The page with `typed` in its form.
async fn rerender(viewer: &Viewer, typed: Typed, orgs: bool) -> Result<IdpSyncPage, PageError> {
    let (org, site) = if orgs {
        (Some(typed), None)
    } else {
        (None, Some(typed))
    };
    page_of(viewer, org, site, PreviewForm::deployment()).await
}

/// `POST /deployment/idp-sync/organization` (**Save**).
pub async fn save_organization(viewer: Viewer, body: Bytes) -> PageResult {
    save(viewer, body, true).await
}

/// `POST /deployment/idp-sync/site-roles` (**Save**).
pub async fn save_site_roles(viewer: Viewer, body: Bytes) -> PageResult {
    save(viewer, body, false).await
}

/// `POST /deployment/idp-sync/preview` (**Preview**): the plan of a login
/// with the typed claims, rendered on the page; nothing is written.
pub async fn preview(viewer: Viewer, body: Bytes) -> PageResult {
    let (status, form) = PreviewForm::deployment().run(&viewer, &body, None).await?;
    let page = page_of(&viewer, None, None, form).await?;
    Ok(render(&viewer.app, status, &page, viewer.flash.is_some()))
}
