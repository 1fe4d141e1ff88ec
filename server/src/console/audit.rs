//! The audit log: `/organizations/{org}/audit` (that org's entries) and
//! `/audit` (every entry the viewer may read: all of them for site owners and
//! auditors, their orgs' entries for org admins and org auditors, exactly as
//! `GET /api/v2/audit` answers them). Filters are a GET form (action,
//! resource type, actor, time range; `/audit` also the organization), pages
//! by `offset`.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::form::status_of;
use super::form::{FormErrors, encode};
use super::orgs::org_context;
use super::page::{Chrome, OrgNav, PageError, PageResult, Section, Viewer, render};
use super::time::When;
use crate::error::Error;
use crate::usecase::audit::{self, AuditPage, AuditQuery};

/// Entries per page.
const PER_PAGE: i64 = 50;

/// The filter form, as typed (a GET query).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filters {
    #[serde(default)]
    action: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    organization: String,
    /// `datetime-local` values (UTC) or RFC 3339.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    offset: Option<i64>,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A `datetime-local` value (`2026-12-05T10:00`, read as UTC) as RFC 3339.
fn time_of(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(match s.len() {
        16 => format!("{s}:00Z"),
        19 if !s.ends_with('Z') => format!("{s}Z"),
        _ => s.to_owned(),
    })
}

impl Filters {
    fn query(&self, organization: Option<String>) -> AuditQuery {
        AuditQuery {
            organization: organization.or_else(|| opt(&self.organization)),
            user: opt(&self.user),
            resource_type: opt(&self.resource_type),
            action: opt(&self.action),
            from: time_of(&self.from),
            to: time_of(&self.to),
            limit: Some(PER_PAGE),
            offset: self.offset.filter(|o| *o > 0),
            ..AuditQuery::default()
        }
    }

    /// The query string of these filters at `offset`.
    fn href(&self, base: &str, offset: i64) -> String {
        let mut q = Vec::new();
        for (k, v) in [
            ("action", &self.action),
            ("resource_type", &self.resource_type),
            ("user", &self.user),
            ("organization", &self.organization),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                q.push(format!("{k}={}", encode(v.trim())));
            }
        }
        if offset > 0 {
            q.push(format!("offset={offset}"));
        }
        if q.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", q.join("&"))
        }
    }

    fn any(&self) -> bool {
        [
            &self.action,
            &self.resource_type,
            &self.user,
            &self.organization,
            &self.from,
            &self.to,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

/// One entry as shown.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct Row {
    when: When,
    actor: String,
    action: String,
    resource_type: String,
    target: String,
    organization: String,
    status: i64,
    source: String,
    diff: String,
    ip: String,
    request_id: String,
}

/// The table and pager of a page of entries.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct Listing {
    rows: Vec<Row>,
    count: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
}

fn listing(mut page: AuditPage, f: &Filters, base: &str) -> Listing {
    let now = crate::clock::now();
    let entries = std::mem::take(&mut page.entries);
    let rows: Vec<Row> = entries
        .into_iter()
        .map(|e| Row {
            when: When::new(&e.time, now),
            actor: match &e.user_id {
                Some(id) => page
                    .username(id)
                    .map_or_else(|| format!("deleted user {id}"), str::to_owned),
                None => "system".to_owned(),
            },
            organization: e
                .organization_id
                .as_ref()
                .map(|id| page.org_name(id).map_or_else(|| id.clone(), str::to_owned))
                .unwrap_or_default(),
            diff: if e.diff.as_object().is_some_and(|m| m.is_empty()) || e.diff.is_null() {
                String::new()
            } else {
                serde_json::to_string_pretty(&e.diff).unwrap_or_default()
            },
            action: e.action,
            resource_type: e.resource_type,
            target: if e.resource_target.is_empty() {
                e.resource_id
            } else {
                e.resource_target
            },
            status: e.status_code,
            source: e.source,
            ip: e.ip,
            request_id: e.request_id,
        })
        .collect();
    let shown = rows.len() as i64;
    Listing {
        count: page.count,
        first: if shown == 0 { 0 } else { page.offset + 1 },
        last: page.offset + shown,
        prev: (page.offset > 0).then(|| f.href(base, (page.offset - page.limit).max(0))),
        next: (page.offset + shown < page.count).then(|| f.href(base, page.offset + page.limit)),
        rows,
    }
}

#[derive(Template)]
#[template(path = "org_audit.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct OrgAuditPage {
    chrome: Chrome,
    nav: OrgNav,
    org_name: String,
    f: Filters,
    filtered: bool,
    list: Listing,
    errors: FormErrors,
}

/// `GET /organizations/{org}/audit`: the org's entries (404 for an org the
/// viewer may not read, 403 for one whose audit log it may not read).
pub async fn org_page(
    viewer: Viewer,
    Path(key): Path<String>,
    Query(f): Query<Filters>,
) -> PageResult {
    let c = org_context(&viewer, &key, "audit", "Audit").await?;
    if !viewer.may(Action::AUDIT_READ, &Resource::audit_log(&c.org.org_ref())) {
        return Err(PageError(Error::refused(
            "You may not read this organization's audit log: it needs the organization-admin or \
             organization-auditor role.",
        )));
    }
    let base = format!("/organizations/{}/audit", c.org.name);
    let result = audit::entries(
        viewer.ctx(),
        &viewer.caller,
        f.query(Some(c.org.id.clone())),
    )
    .await;
    let (status, list, errors) = match result {
        Ok(page) => (
            StatusCode::OK,
            listing(page, &f, &base),
            FormErrors::default(),
        ),
        Err(e) => (
            status_of(&e),
            listing(AuditPage::default(), &f, &base),
            FormErrors::from_error(e)?,
        ),
    };
    let page = OrgAuditPage {
        chrome: c.chrome,
        nav: c.nav,
        org_name: c.org.name,
        filtered: f.any(),
        f,
        list,
        errors,
    };
    Ok(render(&viewer.app, status, &page, viewer.flash.is_some()))
}

#[derive(Template)]
#[template(path = "audit.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct AuditLogPage {
    chrome: Chrome,
    /// The organizations whose entries the viewer may read (for the filter).
    orgs: Vec<(String, String)>,
    all: bool,
    f: Filters,
    filtered: bool,
    list: Listing,
    errors: FormErrors,
}

/// `GET /audit`: every entry the viewer may read (403 when none).
pub async fn page(viewer: Viewer, Query(f): Query<Filters>) -> PageResult {
    let all = viewer.may(Action::AUDIT_READ_ALL, &Resource::site());
    let orgs: Vec<(String, String)> = viewer
        .orgs()
        .await?
        .into_iter()
        .filter(|o| all || viewer.may(Action::AUDIT_READ, &Resource::audit_log(&o.org_ref())))
        .map(|o| (o.name, o.display_name))
        .collect();
    let result = audit::entries(viewer.ctx(), &viewer.caller, f.query(None)).await;
    let (status, list, errors) = match result {
        Ok(page) => (
            StatusCode::OK,
            listing(page, &f, "/audit"),
            FormErrors::default(),
        ),
        Err(e) => (
            status_of(&e),
            listing(AuditPage::default(), &f, "/audit"),
            FormErrors::from_error(e)?,
        ),
    };
    let page = AuditLogPage {
        chrome: viewer.chrome("Audit log", Section::Audit).await?,
        orgs,
        all,
        filtered: f.any(),
        f,
        list,
        errors,
    };
    Ok(render(&viewer.app, status, &page, viewer.flash.is_some()))
}
