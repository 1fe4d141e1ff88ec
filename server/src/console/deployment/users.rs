//! `/deployment/users`: the deployment's users (search, pages), **Create
//! user**, suspend and activate, and site roles as checkboxes of the roles
//! the viewer may assign. Every action is the API's use case
//! ([`crate::usecase::users`]).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::super::form::{self, CsrfOnly, Done, FormErrors, redirect_with};
use super::super::page::{Chrome, NavLink, PageError, PageResult, Viewer, ok};
use super::super::time::When;
use crate::error::{Error, Kind};
use crate::model::{LoginType, User, UserStatus};
use crate::usecase::users::{self, AssignableSiteRole, NewUser, UserQuery};

/// Users per page.
const PER_PAGE: i64 = 25;

/// `?q=&page=` of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<i64>,
}

/// The **Create user** form as typed (the password is never rendered back).
#[derive(Debug, Default, Deserialize)]
pub struct NewUserFields {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    login_type: String,
}

/// A row of the list.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct UserRow {
    u: User,
    initial: String,
    created: When,
    seen: When,
    suspended: bool,
    /// Assignable site roles: `(name, held)`.
    roles: Vec<(&'static str, bool)>,
    /// Site roles it holds that the viewer may not assign (kept as they are).
    fixed: Vec<String>,
    is_viewer: bool,
    /// Whether the policies let the viewer suspend or activate this user.
    can_suspend: bool,
    /// Whether the policies let the viewer change this user's site roles.
    can_set_roles: bool,
}

#[derive(Template)]
#[template(path = "deployment/users.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct UsersPage {
    chrome: Chrome,
    nav: Vec<NavLink>,
    rows: Vec<UserRow>,
    q: String,
    count: i64,
    page: i64,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
    can_create: bool,
    f: NewUserFields,
    errors: FormErrors,
}

fn page_link(q: &str, page: i64) -> String {
    let mut link = format!("/deployment/users?page={page}");
    if !q.is_empty() {
        link.push_str("&q=");
        link.push_str(&form::encode(q));
    }
    link
}

async fn users_of(
    viewer: &Viewer,
    query: &ListQuery,
    f: NewUserFields,
    errors: FormErrors,
) -> Result<UsersPage, PageError> {
    let q = query.q.trim().to_owned();
    let page = query.page.unwrap_or(1).max(1);
    let (list, count) = users::list(
        viewer.ctx(),
        &viewer.caller,
        &UserQuery {
            q: (!q.is_empty()).then(|| q.clone()),
            status: None,
            limit: Some(PER_PAGE),
            offset: Some((page - 1) * PER_PAGE),
        },
    )
    .await?;
    let roles: Vec<AssignableSiteRole> = users::assignable_roles(viewer.ctx(), &viewer.caller)
        .await?
        .into_iter()
        .filter(|r| r.assignable)
        .collect();
    let c = super::context(viewer, "/deployment/users", "Users").await?;
    let now = crate::clock::now();
    let site = Resource::site();
    let rows = list
        .into_iter()
        .map(|u| {
            let held = |name: &str| u.roles.iter().any(|h| h == name);
            let assignable: Vec<(&'static str, bool)> =
                roles.iter().map(|r| (r.name, held(r.name))).collect();
            let fixed = u
                .roles
                .iter()
                .filter(|h| *h != "member" && !roles.iter().any(|r| r.name == h.as_str()))
                .cloned()
                .collect();
            let resource = users::user_resource(&u);
            UserRow {
                can_suspend: viewer.may(Action::USER_SUSPEND, &resource),
                can_set_roles: !assignable.is_empty()
                    && viewer.may(Action::USER_UPDATE_ROLES, &resource),
                initial: u
                    .username
                    .chars()
                    .next()
                    .map(|c| c.to_uppercase().to_string())
                    .unwrap_or_default(),
                created: When::new(&u.created_at, now),
                seen: When::maybe(u.last_seen_at.as_deref(), now),
                suspended: u.status == UserStatus::Suspended,
                is_viewer: u.id == viewer.actor.user.id,
                roles: assignable,
                fixed,
                u,
            }
        })
        .collect();
    let pages = ((count + PER_PAGE - 1) / PER_PAGE).max(1);
    Ok(UsersPage {
        chrome: c.chrome,
        nav: c.nav,
        rows,
        prev: (page > 1).then(|| page_link(&q, page - 1)),
        next: (page < pages).then(|| page_link(&q, page + 1)),
        q,
        count,
        page,
        pages,
        can_create: viewer.may(Action::USER_CREATE, &site),
        f,
        errors,
    })
}

/// `GET /deployment/users?q=&page=`.
pub async fn page(viewer: Viewer, Query(query): Query<ListQuery>) -> PageResult {
    let page = users_of(
        &viewer,
        &query,
        NewUserFields::default(),
        FormErrors::default(),
    )
    .await?;
    Ok(ok(&viewer, &page))
}

/// `POST /deployment/users` (**Create user**): [`users::create`].
pub async fn create(viewer: Viewer, body: Bytes) -> PageResult {
    let f: NewUserFields = form::parse(&viewer, &body)?;
    let login_type = match f.login_type.as_str() {
        "password" | "" => Ok(LoginType::Password),
        "none" => Ok(LoginType::None),
        _ => Err(Error::validation("login_type", "choose a login type")),
    };
    let result = match login_type {
        Ok(login_type) => {
            let req = NewUser {
                username: f.username.trim().to_owned(),
                email: f.email.trim().to_owned(),
                name: String::new(),
                password: (!f.password.is_empty()).then(|| f.password.clone()),
                login_type: Some(login_type),
                organization_ids: Vec::new(),
            };
            users::create(viewer.ctx(), &viewer.caller, req).await
        }
        Err(e) => Err(e),
    };
    let done = |user: User| {
        Done::new(
            page_link(&user.username, 1),
            format!("User `{}` created.", user.username),
        )
    };
    let f = NewUserFields {
        password: String::new(),
        ..f
    };
    let q = ListQuery::default();
    form::answer(&viewer, result, done, |errors| {
        users_of(&viewer, &q, f, errors)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
}

/// `POST /deployment/users/{user}/status` (`status=suspended|active`):
/// [`users::set_status`].
pub async fn set_status(viewer: Viewer, Path(user): Path<String>, body: Bytes) -> PageResult {
    let f: StatusForm = form::parse(&viewer, &body)?;
    let status = match f.status.as_str() {
        "suspended" => UserStatus::Suspended,
        "active" => UserStatus::Active,
        _ => return Err(PageError(Error::validation("status", "unknown status"))),
    };
    let back = "/deployment/users";
    match users::set_status(viewer.ctx(), &viewer.caller, &user, status).await {
        Err(e) if e.kind == Kind::Forbidden => {
            Ok(redirect_with(&viewer, back, "error", &e.body.message))
        }
        result => form::answer_back(&viewer, back, result, |u| {
            let now = if u.status == UserStatus::Suspended {
                "suspended"
            } else {
                "active"
            };
            format!("`{}` is {now}.", u.username)
        }),
    }
}

/// `POST /deployment/users/{user}/roles`: the checked site roles (and the
/// ones the viewer may not assign, unchanged) through [`users::set_roles`].
pub async fn set_roles(viewer: Viewer, Path(user): Path<String>, body: Bytes) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let roles: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v.into_owned())
        .collect();
    let back = "/deployment/users";
    let result = users::set_roles(viewer.ctx(), &viewer.caller, &user, &roles).await;
    form::answer_back(&viewer, back, result, |u| {
        format!("Site roles of `{}` saved.", u.username)
    })
}
