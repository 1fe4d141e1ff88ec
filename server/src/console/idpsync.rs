//! An organization's IdP sync: `/organizations/{org}/idp-sync`. Two forms
//! (group sync, role sync; each **Save** replaces those settings through
//! [`idpsync::update`], which checks the grant rule) and a **Preview** form
//! (claims as JSON, optionally a member) showing the plan of this org's group
//! and role sync without writing ([`idpsync::preview`] scoped to the org).

use askama::Template;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use orgsync_policy::{Action, ORG_ROLES, Resource};
use orgsync_sync::{GroupSyncSettings, RoleSyncSettings};
use serde_json::{Value, json};

use super::form::{self, Done, FormErrors};
use super::orgs::org_context;
use super::page::{Chrome, OrgNav, PageError, PageResult, Viewer, ok, render};
use super::sync_view::{self, BLANK_ROWS, MappingTable, PreviewForm};
use super::time::When;

use crate::model::Organization;
use crate::usecase::Page;
use crate::usecase::groups;
use crate::usecase::idpsync::{self, ProblemsQuery, Scope, SettingsChange};

const GROUP_MAP: &str = "group_mapping";
const ROLE_MAP: &str = "role_mapping";

/// The group sync form as shown.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct GroupForm {
    field: String,
    regex_filter: String,
    auto_create: bool,
    table: String,
    errors: FormErrors,
}

/// The role sync form as shown.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct RoleForm {
    field: String,
    table: String,
    errors: FormErrors,
}

/// A problem sync recorded for this org.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct ProblemRow {
    kind: String,
    detail: String,
    when: When,
}

#[derive(Template)]
#[template(path = "org_idpsync.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct IdpSyncPage {
    chrome: Chrome,
    nav: OrgNav,
    org: Organization,
    can_update: bool,
    group: GroupForm,
    role: RoleForm,
    preview: PreviewForm,
    /// The newest problems sync recorded for this org.
    problems: Vec<ProblemRow>,
}

/// What a posted (or stored) form holds, before rendering.
struct Typed {
    field: String,
    regex_filter: String,
    auto_create: bool,
    rows: Vec<(String, String)>,
    blank: usize,
    errors: FormErrors,
}

impl Typed {
    fn of_groups(s: &GroupSyncSettings) -> Typed {
        Typed {
            field: s.field.clone().unwrap_or_default(),
            regex_filter: s.regex_filter.clone().unwrap_or_default(),
            auto_create: s.auto_create_missing_groups,
            rows: sync_view::pairs_of(&s.mapping),
            blank: BLANK_ROWS,
            errors: FormErrors::default(),
        }
    }

    fn of_roles(s: &RoleSyncSettings) -> Typed {
        Typed {
            field: s.field.clone().unwrap_or_default(),
            regex_filter: String::new(),
            auto_create: false,
            rows: sync_view::pairs_of(&s.mapping),
            blank: BLANK_ROWS,
            errors: FormErrors::default(),
        }
    }
}

/// The JSON of a typed claim field: blank is `null` (sync off).
pub(super) fn value_or_null(s: &str) -> Value {
    let s = s.trim();
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

/// Renames the use case's field names to the form's input names (`field` ->
/// `group_field`), leaving mapping entries (placed on their rows) as they are.
fn form_fields(mut errors: FormErrors, lead: &str) -> FormErrors {
    for name in ["field", "regex_filter", "auto_create_missing_groups"] {
        if let Some(detail) = errors.fields.remove(name) {
            errors.fields.insert(format!("{lead}_{name}"), detail);
        }
    }
    errors
}

fn table(
    prefix: &str,
    caption: &str,
    gets: &str,
    hint: &str,
    t: &Typed,
    choices: Vec<String>,
    editable: bool,
) -> String {
    let mut table = MappingTable::new(prefix, caption, gets, t.rows.clone(), t.blank);
    table.hint = hint.to_owned();
    table.choices = choices;
    table.editable = editable;
    table.place_errors("mapping", &t.errors.fields);
    table.place_errors(prefix, &t.errors.fields);
    table.html()
}

async fn page_of(
    viewer: &Viewer,
    key: &str,
    group: Option<Typed>,
    role: Option<Typed>,
    preview: PreviewForm,
) -> Result<IdpSyncPage, PageError> {
    let c = org_context(viewer, key, "idp-sync", "IdP sync").await?;
    let scope = Scope::Org(&c.org.id);
    let group = match group {
        Some(t) => t,
        None => Typed::of_groups(
            &idpsync::get::<GroupSyncSettings>(viewer.ctx(), &viewer.caller, scope).await?,
        ),
    };
    let role = match role {
        Some(t) => t,
        None => Typed::of_roles(
            &idpsync::get::<RoleSyncSettings>(viewer.ctx(), &viewer.caller, scope).await?,
        ),
    };
    let can_update = viewer.may(
        Action::IDPSYNC_SETTINGS_UPDATE,
        &Resource::idpsync_settings(&c.org.org_ref()),
    );
    let group_names = groups::list(viewer.ctx(), &viewer.caller, &c.org.id, Page::default())
        .await?
        .into_iter()
        .filter(|g| !g.is_everyone)
        .map(|g| g.name)
        .collect();
    let role_names = ORG_ROLES
        .iter()
        .filter(|r| **r != "organization-member")
        .map(|r| (*r).to_owned())
        .collect();
    let q = ProblemsQuery {
        organization: Some(c.org.id.clone()),
        limit: Some(20),
    };
    let now = crate::clock::now();
    let problems = idpsync::problems(viewer.ctx(), &viewer.caller, &q)
        .await?
        .get("problems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
            ProblemRow {
                kind: text("kind").replace('_', " "),
                detail: text("detail").to_owned(),
                when: When::new(text("time"), now),
            }
        })
        .collect();
    Ok(IdpSyncPage {
        problems,
        group: GroupForm {
            table: table(
                GROUP_MAP,
                "Group mapping",
                "Group",
                "A claim value and the group (name or id) it puts the user in. Unmapped values name a group themselves.",
                &group,
                group_names,
                can_update,
            ),
            field: group.field,
            regex_filter: group.regex_filter,
            auto_create: group.auto_create,
            errors: form_fields(group.errors, "group"),
        },
        role: RoleForm {
            table: table(
                ROLE_MAP,
                "Role mapping",
                "Organization role",
                "A claim value and the organization role it gives. Unmapped values are used as role names.",
                &role,
                role_names,
                can_update,
            ),
            field: role.field,
            errors: form_fields(role.errors, "role"),
        },
        can_update,
        chrome: c.chrome,
        nav: c.nav,
        org: c.org,
        preview,
    })
}

/// `GET /organizations/{org}/idp-sync`.
pub async fn page(viewer: Viewer, Path(key): Path<String>) -> PageResult {
    let page = page_of(&viewer, &key, None, None, PreviewForm::org(&key)).await?;
    Ok(ok(&viewer, &page))
}

/// Saves one kind of settings from its form, or renders the page again with
/// what was typed (more rows asked for, or the operation's errors).
async fn save(viewer: Viewer, key: String, body: Bytes, groups_form: bool) -> PageResult {
    let fields = form::fields(&body)?;
    let _: form::CsrfOnly = form::parse(&viewer, &body)?;
    let (lead, prefix) = if groups_form {
        ("group", GROUP_MAP)
    } else {
        ("role", ROLE_MAP)
    };
    let get = |name: &str| {
        fields
            .get(&format!("{lead}_{name}"))
            .cloned()
            .unwrap_or_default()
    };
    let mut typed = Typed {
        field: get("field"),
        regex_filter: get("regex_filter"),
        auto_create: fields.contains_key("group_auto_create_missing_groups"),
        rows: Vec::new(),
        blank: BLANK_ROWS,
        errors: FormErrors::default(),
    };
    let posted = sync_view::posted_mapping(&body, &fields, prefix);
    typed.rows = posted.rows;
    typed.blank = posted.blank;
    let Some(mapping) = posted.save else {
        let page = rerender(&viewer, &key, typed, groups_form).await?;
        return Ok(render(&viewer.app, StatusCode::OK, &page, false));
    };
    let result = match mapping {
        Err(e) => Err(e),
        Ok(mapping) => {
            let field = value_or_null(&typed.field);
            let scope = Scope::Org(&key);
            if groups_form {
                let patch = json!({
                    "field": field,
                    "mapping": mapping,
                    "regex_filter": value_or_null(&typed.regex_filter),
                    "auto_create_missing_groups": typed.auto_create,
                });
                let change = SettingsChange::Merge(patch);
                idpsync::update::<GroupSyncSettings>(viewer.ctx(), &viewer.caller, scope, change)
                    .await
                    .map(|_| ())
            } else {
                let change = SettingsChange::Merge(json!({"field": field, "mapping": mapping}));
                idpsync::update::<RoleSyncSettings>(viewer.ctx(), &viewer.caller, scope, change)
                    .await
                    .map(|_| ())
            }
        }
    };
    let saved = if groups_form {
        "Group sync settings saved."
    } else {
        "Role sync settings saved."
    };
    let done = |()| Done::new(format!("/organizations/{key}/idp-sync"), saved);
    form::answer(&viewer, result, done, |errors| {
        typed.errors = errors;
        rerender(&viewer, &key, typed, groups_form)
    })
    .await
}

/// The page with `typed` in its form.
async fn rerender(
    viewer: &Viewer,
    key: &str,
    typed: Typed,
    groups_form: bool,
) -> Result<IdpSyncPage, PageError> {
    let (group, role) = if groups_form {
        (Some(typed), None)
    } else {
        (None, Some(typed))
    };
    page_of(viewer, key, group, role, PreviewForm::org(key)).await
}

/// `POST /organizations/{org}/idp-sync/groups` (**Save** of group sync).
pub async fn save_groups(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    save(viewer, key, body, true).await
}

/// `POST /organizations/{org}/idp-sync/roles` (**Save** of role sync).
pub async fn save_roles(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    save(viewer, key, body, false).await
}

/// `POST /organizations/{org}/idp-sync/preview` (**Preview**): the plan of
/// this org's sync for the claims, shown on the page; nothing is written.
pub async fn preview(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    let (status, form) = PreviewForm::org(&key)
        .run(&viewer, &body, Some(key.clone()))
        .await?;
    let page = page_of(&viewer, &key, None, None, form).await?;
    Ok(render(&viewer.app, status, &page, false))
}
