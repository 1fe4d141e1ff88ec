//! Admin settings of an organization: `/organizations` (to the first org the
//! viewer manages), `/organizations/new`, `/organizations/{org}` (settings and
//! delete), `/organizations/{org}/members` (add, remove, org roles).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::form::{self, CsrfOnly, Done, FormErrors, redirect_with};
use super::page::{Chrome, OrgNav, PageError, PageResult, Section, Viewer, ok, redirect};
use super::paging::{PageQuery, Pager};
use super::time::When;
use crate::error::{Error, Kind};
use crate::model::{Member, Organization};
use crate::usecase::members;
use crate::usecase::orgs::{self, NewOrg, OrgChanges};
use crate::usecase::roles::AssignableRole;

/// `GET /organizations`: the settings of the first org the viewer manages;
/// the new-org form for an owner who manages none yet; the deployment pages
/// for a site admin who manages no org.
pub async fn first(viewer: Viewer) -> PageResult {
    let orgs = viewer.orgs().await?;
    if let Some(org) = orgs.iter().find(|o| viewer.manages(o)) {
        return Ok(redirect(&format!("/organizations/{}", org.name)));
    }
    if viewer.may(Action::ORGANIZATION_CREATE, &Resource::site()) {
        return Ok(redirect("/organizations/new"));
    }
    // A site admin who manages no org: the deployment's pages.
    if !super::deployment::links(&viewer, "").is_empty() {
        return Ok(redirect("/deployment"));
    }
    Err(PageError(Error::refused(
        "You do not administer any organization. Ask an organization admin for a role.",
    )))
}

#[derive(Template)]
#[template(path = "org_new.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct NewOrgPage {
    chrome: Chrome,
    f: OrgFields,
    errors: FormErrors,
}

/// The fields of the organization forms, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct OrgFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    icon: String,
}

impl OrgFields {
    fn of(org: &Organization) -> OrgFields {
        OrgFields {
            name: org.name.clone(),
            display_name: org.display_name.clone(),
            description: org.description.clone(),
            icon: org.icon.clone(),
        }
    }
}

/// `GET /organizations/new` (Name, Display name, Description, Icon URL, **Save**).
pub async fn new_page(viewer: Viewer) -> PageResult {
    if !viewer.may(Action::ORGANIZATION_CREATE, &Resource::site()) {
        return Err(PageError(Error::forbidden()));
    }
    let page = NewOrgPage {
        chrome: viewer.chrome("Create Organization", Section::Admin).await?,
        f: OrgFields::default(),
        errors: FormErrors::default(),
    };
    Ok(ok(&viewer, &page))
}

/// `POST /organizations/new`: [`orgs::create`].
pub async fn create(viewer: Viewer, body: Bytes) -> PageResult {
    let f: OrgFields = form::parse(&viewer, &body)?;
    let req = NewOrg {
        name: f.name.trim().to_owned(),
        display_name: (!f.display_name.trim().is_empty()).then(|| f.display_name.trim().to_owned()),
        description: f.description.clone(),
        icon: f.icon.trim().to_owned(),
    };
    let result = orgs::create(viewer.ctx(), &viewer.caller, req).await;
    let done = |org: Organization| {
        Done::new(
            format!("/organizations/{}", org.name),
            format!("Organization `{}` created.", org.name),
        )
    };
    form::answer(&viewer, result, done, |errors| async {
        Ok(NewOrgPage {
            chrome: viewer.chrome("Create Organization", Section::Admin).await?,
            f,
            errors,
        })
    })
    .await
}

/// An org page's common parts: the org (404 when unknown or unreadable), the
/// viewer's orgs and the layout.
pub(super) struct OrgContext {
    pub org: Organization,
    pub chrome: Chrome,
    pub nav: OrgNav,
}

pub(super) async fn org_context(
    viewer: &Viewer,
    key: &str,
    page: &'static str,
    title: &str,
) -> Result<OrgContext, PageError> {
    let org = orgs::get(viewer.ctx(), &viewer.caller, key).await?;
    let all = viewer.orgs().await?;
    let chrome = viewer.chrome_with(
        format!("{title} · {}", org.display_name),
        Section::Admin,
        &all,
    )?;
    let nav = viewer.org_nav(&org, &all, page);
    Ok(OrgContext { org, chrome, nav })
}

#[derive(Template)]
#[template(path = "org_settings.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct SettingsPage {
    chrome: Chrome,
    nav: OrgNav,
    org: Organization,
    f: OrgFields,
    can_update: bool,
    can_delete: bool,
    errors: FormErrors,
    delete_errors: FormErrors,
}

async fn settings_of(
    viewer: &Viewer,
    key: &str,
    f: Option<OrgFields>,
    errors: FormErrors,
    delete_errors: FormErrors,
) -> Result<SettingsPage, PageError> {
    let c = org_context(viewer, key, "settings", "Settings").await?;
    let o = c.org.org_ref();
    Ok(SettingsPage {
        can_update: viewer.may(Action::ORGANIZATION_UPDATE, &Resource::organization(&o)),
        can_delete: !c.org.is_default
            && viewer.may(Action::ORGANIZATION_DELETE, &Resource::organization(&o)),
        f: f.unwrap_or_else(|| OrgFields::of(&c.org)),
        chrome: c.chrome,
        nav: c.nav,
        org: c.org,
        errors,
        delete_errors,
    })
}

/// `GET /organizations/{org}`: the settings form and the delete form.
pub async fn settings_page(viewer: Viewer, Path(key): Path<String>) -> PageResult {
    let page = settings_of(
        &viewer,
        &key,
        None,
        FormErrors::default(),
        FormErrors::default(),
    )
    .await?;
    Ok(ok(&viewer, &page))
}

/// `POST /organizations/{org}`: [`orgs::update`].
pub async fn update(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    let f: OrgFields = form::parse(&viewer, &body)?;
    let req = OrgChanges {
        name: Some(f.name.trim().to_owned()),
        display_name: Some(f.display_name.trim().to_owned()),
        description: Some(f.description.clone()),
        icon: Some(f.icon.trim().to_owned()),
    };
    let result = orgs::update(viewer.ctx(), &viewer.caller, &key, req).await;
    let done =
        |org: Organization| Done::new(format!("/organizations/{}", org.name), "Settings saved.");
    form::answer(&viewer, result, done, |errors| {
        settings_of(&viewer, &key, Some(f), errors, FormErrors::default())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /organizations/{org}/delete`: [`orgs::delete`] once the org's name
/// was typed; a 409 shows what still remains.
pub async fn delete(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    let f: DeleteForm = form::parse(&viewer, &body)?;
    let org = orgs::get(viewer.ctx(), &viewer.caller, &key).await?;
    let result = match form::confirmed(&f.confirm, &org.name) {
        Ok(()) => orgs::delete(viewer.ctx(), &viewer.caller, &org.id).await,
        Err(e) => Err(e),
    };
    let done = |()| {
        Done::new(
            "/organizations",
            format!("Organization `{}` deleted.", org.name),
        )
    };
    form::answer(&viewer, result, done, |errors| {
        settings_of(&viewer, &key, None, FormErrors::default(), errors)
    })
    .await
}

/// A member row of the members page.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct MemberRow {
    m: Member,
    initial: String,
    since: When,
    /// Assignable roles: `(name, display name, held)`.
    roles: Vec<(String, String, bool)>,
    /// Roles it holds that the viewer may not assign (kept as they are).
    fixed: Vec<String>,
    is_viewer: bool,
}

#[derive(Template)]
#[template(path = "org_members.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct MembersPage {
    chrome: Chrome,
    nav: OrgNav,
    org: Organization,
    rows: Vec<MemberRow>,
    can_add: bool,
    can_remove: bool,
    can_set_roles: bool,
    user: String,
    errors: FormErrors,
    pager: Pager,
}

async fn members_of(
    viewer: &Viewer,
    key: &str,
    user: String,
    errors: FormErrors,
    q: &PageQuery,
) -> Result<MembersPage, PageError> {
    let c = org_context(viewer, key, "members", "Members").await?;
    let (list, total) =
        members::list_page(viewer.ctx(), &viewer.caller, &c.org.id, q.usecase(0)).await?;
    let pager = Pager::new(
        &format!("/organizations/{}/members", c.org.name),
        q.number(),
        list.len(),
        false,
        Some(total),
    );
    let roles: Vec<AssignableRole> =
        crate::usecase::roles::list(viewer.ctx(), &viewer.caller, &c.org.id).await?;
    let o = c.org.org_ref();
    let now = crate::clock::now();
    let rows = list
        .into_iter()
        .map(|m| {
            let assignable: Vec<(String, String, bool)> = roles
                .iter()
                .filter(|r| r.assignable && r.name != "organization-member")
                .map(|r| {
                    (
                        r.name.to_owned(),
                        r.display_name.clone(),
                        m.roles.contains(&r.name),
                    )
                })
                .collect();
            let fixed = m
                .roles
                .iter()
                .filter(|h| !assignable.iter().any(|(n, _, _)| n == *h))
                .cloned()
                .collect();
            MemberRow {
                initial: m
                    .username
                    .chars()
                    .next()
                    .map(|c| c.to_uppercase().to_string())
                    .unwrap_or_default(),
                since: When::new(&m.created_at, now),
                is_viewer: m.user_id == viewer.actor.user.id,
                roles: assignable,
                fixed,
                m,
            }
        })
        .collect();
    Ok(MembersPage {
        can_add: viewer.may(Action::MEMBER_CREATE, &Resource::member(&o, "new")),
        can_remove: viewer.may(Action::MEMBER_DELETE, &Resource::member(&o, "any")),
        can_set_roles: viewer.may(Action::MEMBER_UPDATE_ROLES, &Resource::member(&o, "any")),
        chrome: c.chrome,
        nav: c.nav,
        org: c.org,
        rows,
        user,
        errors,
        pager,
    })
}

/// `GET /organizations/{org}/members`.
/// `?page=N`: 50 members a page, by username.
pub async fn members_page(
    viewer: Viewer,
    Path(key): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let page = members_of(&viewer, &key, String::new(), FormErrors::default(), &q).await?;
    Ok(ok(&viewer, &page))
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    user: String,
}

/// `POST /organizations/{org}/members/add` (**Add member**): [`members::add`].
pub async fn add_member(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    let f: AddForm = form::parse(&viewer, &body)?;
    let user = f.user.trim().to_owned();
    let result = if user.is_empty() {
        Err(Error::validation("user", "enter a username or email"))
    } else {
        members::add(viewer.ctx(), &viewer.caller, &key, &user).await
    };
    // The org is readable (the page renders below, else its 404): the user
    // is what was not found.
    let result = result.map_err(|e| match e.kind {
        Kind::NotFound => Error::validation("user", "no user with this username or email"),
        _ => form::rename_field(e, "user_id", "user"),
    });
    let done = |m: Member| {
        Done::new(
            format!("/organizations/{key}/members"),
            format!("`{}` is now a member.", m.username),
        )
    };
    let q = PageQuery::default();
    form::answer(&viewer, result, done, |errors| {
        members_of(&viewer, &key, user.clone(), errors, &q)
    })
    .await
}

/// `POST /organizations/{org}/members/{user}/roles`: the checked roles (and
/// the ones the viewer may not assign, unchanged) through
/// [`members::set_roles`].
pub async fn set_roles(
    viewer: Viewer,
    Path((key, user)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let roles: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v.into_owned())
        .collect();
    let back = format!("/organizations/{key}/members");
    let result = members::set_roles(viewer.ctx(), &viewer.caller, &key, &user, &roles).await;
    form::answer_back(&viewer, &back, result, |m| {
        format!("Roles of `{}` saved.", m.username)
    })
}

/// `POST /organizations/{org}/members/{user}/remove`: [`members::remove`].
pub async fn remove_member(
    viewer: Viewer,
    Path((key, user)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let back = format!("/organizations/{key}/members");
    match members::remove(viewer.ctx(), &viewer.caller, &key, &user).await {
        Err(e) if e.kind == Kind::Forbidden => {
            Ok(redirect_with(&viewer, &back, "error", &e.body.message))
        }
        result => form::answer_back(&viewer, &back, result, |()| "Member removed.".to_owned()),
    }
}
