//! `/deployment/ldap-sync`: the directory sync settings (the bind password
//! write-only: never rendered, blank keeps it), **Save**, **Run now** and
//! **Dry run**, the runs; `/deployment/ldap-sync/runs/{id}`: one run, live
//! while it runs (a script polls `GET /api/v2/ldapsync/runs/{id}`; without
//! JavaScript the page refreshes itself). The operations are
//! [`crate::usecase::ldapsync`]'s.

use askama::Template;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde_json::{Map, Value, json};

use super::super::form::{self, CsrfOnly, Done, FormErrors, redirect_with};
use super::super::page::{Chrome, NavLink, PageError, PageResult, Viewer, ok, render};
use super::super::sync_view::{self, BLANK_ROWS, MappingTable, SyncPreview};
use super::super::time::When;
use crate::error::Error;
use crate::ldapsync::{Run, RunStatus};
use crate::usecase::Page;
use crate::usecase::ldapsync::{self, StartRun};

const PATH: &str = "/deployment/ldap-sync";
/// The membership types a directory may use (SPEC §5).
const MEMBERSHIP: &[&str] = &["member", "memberUid", "memberOf"];
/// Runs listed on the settings page.
const RUNS_SHOWN: i64 = 20;
/// Users of a run's plan shown on its page.
const PLAN_SHOWN: usize = 200;

/// The settings form, as stored or as typed. There is no password field to
/// fill: the stored bind password is never rendered.
pub struct LdapForm {
    pub enabled: bool,
    pub url: String,
    pub start_tls: bool,
    pub ca_file: String,
    pub bind_dn: String,
    pub bind_password_set: bool,
    pub user_base_dn: String,
    pub user_filter: String,
    pub attr_username: String,
    pub attr_email: String,
    pub attr_name: String,
    pub attr_id: String,
    pub group_base_dn: String,
    pub group_filter: String,
    pub group_name_attribute: String,
    /// `(type, checked)`.
    pub membership: Vec<(&'static str, bool)>,
    pub nested_groups: bool,
    pub page_size: String,
    pub schedule: String,
    pub full_sync_interval: String,
    pub max_removal_percent: String,
    /// Claim name -> `groups` or a user attribute, as table rows.
    pub claims: Vec<(String, String)>,
    /// Blank rows under them.
    pub blank: usize,
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn membership_boxes(checked: &[String]) -> Vec<(&'static str, bool)> {
    MEMBERSHIP
        .iter()
        .map(|m| (*m, checked.iter().any(|c| c == m)))
        .collect()
}

/// The prefix of the claims table's inputs.
const CLAIMS: &str = "claims";

impl LdapForm {
    /// The claims table of the form.
    fn claims_table(&self, errors: &FormErrors, editable: bool) -> String {
        let mut t = MappingTable::new(CLAIMS, "Claims", "From", self.claims.clone(), self.blank);
        t.given_label = "Claim".to_owned();
        t.hint = "`groups`, or the user attribute the claim's values come from".to_owned();
        t.choices = vec!["groups".to_owned()];
        t.editable = editable;
        t.place_errors(CLAIMS, &errors.fields);
        t.html()
    }
}

impl LdapForm {
    /// The form of the served settings (no password in them).
    fn of(v: &Value) -> LdapForm {
        let attrs = v.get("user_attributes").cloned().unwrap_or(Value::Null);
        let membership: Vec<String> = v
            .get("membership")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let claims = v
            .get("claims")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, val)| (k.clone(), val.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        LdapForm {
            enabled: b(v, "enabled"),
            url: s(v, "url"),
            start_tls: b(v, "start_tls"),
            ca_file: s(v, "ca_file"),
            bind_dn: s(v, "bind_dn"),
            bind_password_set: b(v, "bind_password_set"),
            user_base_dn: s(v, "user_base_dn"),
            user_filter: s(v, "user_filter"),
            attr_username: s(&attrs, "username"),
            attr_email: s(&attrs, "email"),
            attr_name: s(&attrs, "name"),
            attr_id: s(&attrs, "id"),
            group_base_dn: s(v, "group_base_dn"),
            group_filter: s(v, "group_filter"),
            group_name_attribute: s(v, "group_name_attribute"),
            membership: membership_boxes(&membership),
            nested_groups: b(v, "nested_groups"),
            page_size: s(v, "page_size"),
            schedule: s(v, "schedule"),
            full_sync_interval: s(v, "full_sync_interval"),
            max_removal_percent: s(v, "max_removal_percent"),
            claims,
            blank: BLANK_ROWS,
        }
    }
}

/// A run as a row or a page shows it.
#[allow(dead_code, reason = "fields read by the askama templates only")]
pub struct RunView {
    pub r: Run,
    pub status: &'static str,
    pub running: bool,
    pub started: When,
    pub duration: String,
    /// The stats, `(name, value)`.
    pub stats: Vec<(String, String)>,
    /// The main stats that are not zero, for the list.
    pub summary: Vec<(String, String)>,
    /// The progress while running, `(name, value)`.
    pub progress: Vec<(String, String)>,
    pub problems: Vec<(String, String, String)>,
}

/// The stats a run's row in the list shows (when not zero).
const SUMMARY: &[&str] = &[
    "users_seen",
    "users_created",
    "users_suspended",
    "users_reactivated",
    "memberships_added",
    "memberships_removed",
    "roles_changed",
    "problems",
];
/// Stats that are bookkeeping, not results (the duration is shown apart).
const HIDDEN: &[&str] = &["settings_fingerprint", "duration_ms"];

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !HIDDEN.contains(&k.as_str()))
                .map(|(k, val)| {
                    let shown = match val {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.replace('_', " "), shown)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// "1.2 s", "3 min 4 s": how long a run took (or has been running).
fn duration(from: &str, to: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> String {
    let Some(start) = crate::clock::parse(from) else {
        return String::new();
    };
    let end = to.and_then(crate::clock::parse).unwrap_or(now);
    let ms = (end - start).num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

impl RunView {
    pub fn of(r: Run, now: chrono::DateTime<chrono::Utc>) -> RunView {
        let problems = r
            .problems
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let count = p.get("count").map(|c| format!("×{c}")).unwrap_or_default();
                        (s(p, "kind"), s(p, "detail"), count)
                    })
                    .collect()
            })
            .unwrap_or_default();
        RunView {
            status: r.status.as_str(),
            running: r.status == RunStatus::Running,
            started: When::new(&r.started_at, now),
            duration: duration(&r.started_at, r.finished_at.as_deref(), now),
            stats: pairs(&r.stats),
            summary: SUMMARY
                .iter()
                .filter_map(|k| {
                    let v = r.stats.get(*k)?;
                    (v.as_i64() != Some(0)).then(|| (k.replace('_', " "), v.to_string()))
                })
                .collect(),
            progress: pairs(&r.progress),
            problems,
            r,
        }
    }
}

#[derive(Template)]
#[template(path = "deployment/ldap_sync.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct LdapSyncPage {
    chrome: Chrome,
    nav: Vec<NavLink>,
    can_update: bool,
    can_run: bool,
    f: LdapForm,
    claims_table: String,
    runs: Vec<RunView>,
    run_count: i64,
    errors: FormErrors,
}

async fn page_of(
    viewer: &Viewer,
    f: Option<LdapForm>,
    errors: FormErrors,
) -> Result<LdapSyncPage, PageError> {
    let settings = ldapsync::settings(viewer.ctx(), &viewer.caller).await?;
    let (runs, run_count) = ldapsync::runs(
        &viewer.app.directory_sync(),
        &viewer.caller,
        Page {
            limit: Some(RUNS_SHOWN),
            offset: None,
        },
    )
    .await?;
    let c = super::context(viewer, PATH, "LDAP sync").await?;
    let now = crate::clock::now();
    let mut f = f.unwrap_or_else(|| LdapForm::of(&settings));
    f.bind_password_set = b(&settings, "bind_password_set");
    let can_update = viewer.may(Action::DEPLOYMENT_SYNC_UPDATE, &Resource::site());
    Ok(LdapSyncPage {
        claims_table: f.claims_table(&errors, can_update),
        chrome: c.chrome,
        nav: c.nav,
        can_update,
        can_run: viewer.may(Action::LDAPSYNC_RUN, &Resource::site()),
        f,
        runs: runs.into_iter().map(|r| RunView::of(r, now)).collect(),
        run_count,
        errors,
    })
}

/// `GET /deployment/ldap-sync`.
pub async fn page(viewer: Viewer) -> PageResult {
    let page = page_of(&viewer, None, FormErrors::default()).await?;
    Ok(ok(&viewer, &page))
}

/// A whole number typed in `field`, as JSON (an error names the field).
fn number(field: &str, typed: &str, errors: &mut Vec<Error>) -> Value {
    match typed.trim().parse::<f64>() {
        Ok(n) if n.fract() == 0.0 && n.is_finite() => json!(n as i64),
        Ok(n) if n.is_finite() => json!(n),
        _ => {
            errors.push(Error::validation(field, "must be a number"));
            Value::Null
        }
    }
}

/// `POST /deployment/ldap-sync` (**Save**): [`ldapsync::replace_settings`]
/// with the typed settings. A blank password keeps the stored one; the
/// "remove" box clears it.
pub async fn save(viewer: Viewer, body: Bytes) -> PageResult {
    let fields = form::fields(&body)?;
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let on = |k: &str| fields.contains_key(k);
    let membership: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "membership")
        .map(|(_, v)| v.into_owned())
        .collect();
    let posted = sync_view::posted_mapping(&body, &fields, CLAIMS);
    let f = LdapForm {
        enabled: on("enabled"),
        url: get("url").trim().to_owned(),
        start_tls: on("start_tls"),
        ca_file: get("ca_file").trim().to_owned(),
        bind_dn: get("bind_dn").trim().to_owned(),
        bind_password_set: false,
        user_base_dn: get("user_base_dn").trim().to_owned(),
        user_filter: get("user_filter").trim().to_owned(),
        attr_username: get("attr_username").trim().to_owned(),
        attr_email: get("attr_email").trim().to_owned(),
        attr_name: get("attr_name").trim().to_owned(),
        attr_id: get("attr_id").trim().to_owned(),
        group_base_dn: get("group_base_dn").trim().to_owned(),
        group_filter: get("group_filter").trim().to_owned(),
        group_name_attribute: get("group_name_attribute").trim().to_owned(),
        membership: membership_boxes(&membership),
        nested_groups: on("nested_groups"),
        page_size: get("page_size"),
        schedule: get("schedule").trim().to_owned(),
        full_sync_interval: get("full_sync_interval").trim().to_owned(),
        max_removal_percent: get("max_removal_percent"),
        claims: posted.rows,
        blank: posted.blank,
    };
    if posted.save.is_none() {
        let page = page_of(&viewer, Some(f), FormErrors::default()).await?;
        return Ok(render(&viewer.app, StatusCode::OK, &page, false));
    }
    let mut bad = Vec::new();
    let page_size = number("page_size", &f.page_size, &mut bad);
    let max_removal = number("max_removal_percent", &f.max_removal_percent, &mut bad);
    let mut claims = Map::new();
    match posted.save {
        Some(Ok(mapping)) => {
            for (claim, from) in mapping {
                if from.len() > 1 {
                    let field = format!("{CLAIMS}[\"{claim}\"]");
                    bad.push(Error::validation(&field, "a claim comes from one place"));
                }
                claims.insert(claim, json!(from.first()));
            }
        }
        Some(Err(e)) => bad.push(e),
        None => {}
    }
    let password = get("bind_password");
    let bind_password = if on("clear_bind_password") {
        json!("")
    } else if password.is_empty() {
        Value::Null
    } else {
        json!(password)
    };
    let mut body = Map::new();
    for (k, v) in [
        ("enabled", json!(f.enabled)),
        ("url", json!(f.url)),
        ("start_tls", json!(f.start_tls)),
        (
            "ca_file",
            if f.ca_file.is_empty() {
                Value::Null
            } else {
                json!(f.ca_file)
            },
        ),
        ("bind_dn", json!(f.bind_dn)),
        ("bind_password", bind_password),
        ("user_base_dn", json!(f.user_base_dn)),
        ("user_filter", json!(f.user_filter)),
        (
            "user_attributes",
            json!({"username": f.attr_username, "email": f.attr_email,
                   "name": f.attr_name, "id": f.attr_id}),
        ),
        ("group_base_dn", json!(f.group_base_dn)),
        ("group_filter", json!(f.group_filter)),
        ("group_name_attribute", json!(f.group_name_attribute)),
        ("membership", json!(membership)),
        ("nested_groups", json!(f.nested_groups)),
        ("page_size", page_size),
        ("schedule", json!(f.schedule)),
        ("full_sync_interval", json!(f.full_sync_interval)),
        ("claims", Value::Object(claims)),
        ("max_removal_percent", max_removal),
    ] {
        body.insert(k.to_owned(), v);
    }
    let result = match bad.pop() {
        Some(e) => {
            // Decided first, so a caller who may not change the settings
            // learns nothing from the number check.
            if !viewer.may(Action::DEPLOYMENT_SYNC_UPDATE, &Resource::site()) {
                Err(Error::forbidden())
            } else {
                Err(e)
            }
        }
        None => ldapsync::replace_settings(viewer.ctx(), &viewer.caller, body)
            .await
            .map(|_| ()),
    };
    let done = |()| Done::new(PATH, "LDAP sync settings saved.");
    form::answer(&viewer, result, done, |errors| {
        page_of(&viewer, Some(f), errors)
    })
    .await
}

/// `POST /deployment/ldap-sync/runs` (**Run now**: `mode=run`, **Dry run**:
/// `mode=dry`; `force` ignores the removal limit): [`ldapsync::start`], then
/// the run's page.
pub async fn start(viewer: Viewer, body: Bytes) -> PageResult {
    let fields = form::fields(&body)?;
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let req = StartRun {
        dry_run: fields.get("mode").map(String::as_str) == Some("dry"),
        force: fields.contains_key("force"),
        full: fields.contains_key("full").then_some(true),
    };
    let result = ldapsync::start(&viewer.app.directory_sync(), &viewer.caller, req).await;
    match result {
        Ok(run) => {
            let message = if run.dry_run {
                "Dry run started: nothing will be written."
            } else {
                "Sync run started."
            };
            Ok(redirect_with(
                &viewer,
                &format!("{PATH}/runs/{}", run.id),
                "success",
                message,
            ))
        }
        result => form::answer_back(&viewer, PATH, result, |_| String::new()),
    }
}

/// A user of a dry or aborted run's plan: who, what, the changes.
#[allow(dead_code, reason = "fields read by the askama templates only")]
pub struct PlanRow {
    pub username: String,
    pub action: String,
    pub changes: Vec<String>,
}

fn plan_rows(plan: &Value) -> Vec<PlanRow> {
    plan.as_array()
        .map(|users| {
            users
                .iter()
                .take(PLAN_SHOWN)
                .map(|u| {
                    let p = SyncPreview::of(u);
                    let changes = p
                        .sections
                        .iter()
                        .filter(|s| !s.changes.is_empty())
                        .map(|s| {
                            let signed = s.changes.iter().map(|c| {
                                let sign = if c.kind == "add" { '+' } else { '−' };
                                format!("{sign}{}", c.name)
                            });
                            format!("{}: {}", s.title, signed.collect::<Vec<_>>().join(" "))
                        })
                        .collect();
                    PlanRow {
                        username: s(u, "username"),
                        action: s(u, "action"),
                        changes,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "deployment/ldap_run.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct RunPage {
    chrome: Chrome,
    nav: Vec<NavLink>,
    run: RunView,
    plan: Vec<PlanRow>,
    plan_total: usize,
}

/// `GET /deployment/ldap-sync/runs/{id}`: [`ldapsync::run`].
pub async fn run_page(viewer: Viewer, Path(id): Path<String>) -> PageResult {
    let run = ldapsync::run(&viewer.app.directory_sync(), &viewer.caller, &id).await?;
    let c = super::context(&viewer, PATH, "LDAP sync run").await?;
    let (plan, plan_total) = match &run.plan {
        Some(p) => (plan_rows(p), p.as_array().map_or(0, Vec::len)),
        None => (Vec::new(), 0),
    };
    let page = RunPage {
        chrome: c.chrome,
        nav: c.nav,
        run: RunView::of(run, crate::clock::now()),
        plan,
        plan_total,
    };
    Ok(ok(&viewer, &page))
}
