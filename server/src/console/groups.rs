//! An organization's groups: `/organizations/{org}/groups` (list, **Create
//! group**) and `/organizations/{org}/groups/{group}` (edit, members, delete).
//! The `Everyone` group is shown but offers no edit, member or delete form:
//! the operations refuse it, so the page does not offer what would fail.

use askama::Template;
use axum::body::Bytes;
use axum::extract::Path;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::form::{self, CsrfOnly, Done, FormErrors};
use super::orgs::org_context;
use super::page::{Chrome, OrgNav, PageError, PageResult, Viewer, ok};
use super::time::When;
use crate::error::Error;
use crate::model::{Group, Organization};
use crate::usecase::Page;
use crate::usecase::groups::{self, GroupChanges, NewGroup};

/// What a group's source says to people.
fn source_label(source: &str) -> &'static str {
    match source {
        "oidc" => "OIDC sync",
        "ldap" => "LDAP sync",
        _ => "Manual",
    }
}

/// A row of the groups list.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct GroupRow {
    g: Group,
    members: usize,
    source: &'static str,
    created: When,
}

/// The fields of the group forms, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct GroupFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    avatar_url: String,
    #[serde(default)]
    quota_allowance: String,
}

impl GroupFields {
    fn of(g: &Group) -> GroupFields {
        GroupFields {
            name: g.name.clone(),
            display_name: g.display_name.clone(),
            avatar_url: g.avatar_url.clone(),
            quota_allowance: g.quota_allowance.to_string(),
        }
    }

    /// The quota as a number (blank: 0); not a number: an error on the field.
    fn quota(&self) -> Result<i64, Error> {
        let q = self.quota_allowance.trim();
        if q.is_empty() {
            return Ok(0);
        }
        q.parse()
            .map_err(|_| Error::validation("quota_allowance", "enter a whole number, 0 or more"))
    }
}

#[derive(Template)]
#[template(path = "org_groups.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct GroupsPage {
    chrome: Chrome,
    nav: OrgNav,
    org: Organization,
    rows: Vec<GroupRow>,
    can_create: bool,
    f: GroupFields,
    errors: FormErrors,
}

async fn groups_of(
    viewer: &Viewer,
    key: &str,
    f: GroupFields,
    errors: FormErrors,
) -> Result<GroupsPage, PageError> {
    let c = org_context(viewer, key, "groups", "Groups").await?;
    let list =
        groups::list_counted(viewer.ctx(), &viewer.caller, &c.org.id, Page::default()).await?;
    let now = crate::clock::now();
    let rows = list
        .into_iter()
        .map(|(g, n)| GroupRow {
            members: usize::try_from(n).unwrap_or(0),
            source: source_label(&g.source),
            created: When::new(&g.created_at, now),
            g,
        })
        .collect();
    Ok(GroupsPage {
        can_create: viewer.may(
            Action::GROUP_CREATE,
            &Resource::organization(&c.org.org_ref()),
        ),
        chrome: c.chrome,
        nav: c.nav,
        org: c.org,
        rows,
        f,
        errors,
    })
}

/// `GET /organizations/{org}/groups`.
pub async fn list(viewer: Viewer, Path(key): Path<String>) -> PageResult {
    let page = groups_of(&viewer, &key, GroupFields::default(), FormErrors::default()).await?;
    Ok(ok(&viewer, &page))
}

/// `POST /organizations/{org}/groups` (**Create group**): [`groups::create`].
pub async fn create(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    let f: GroupFields = form::parse(&viewer, &body)?;
    let result = match f.quota() {
        Ok(quota_allowance) => {
            let req = NewGroup {
                name: f.name.trim().to_owned(),
                display_name: f.display_name.trim().to_owned(),
                avatar_url: f.avatar_url.trim().to_owned(),
                quota_allowance,
            };
            groups::create(viewer.ctx(), &viewer.caller, &key, req).await
        }
        Err(e) => Err(e),
    };
    let done = |g: Group| {
        Done::new(
            format!("/organizations/{key}/groups/{}", g.name),
            format!("Group `{}` created.", g.name),
        )
    };
    form::answer(&viewer, result, done, |errors| {
        groups_of(&viewer, &key, f, errors)
    })
    .await
}

/// A member row of a group's page.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct GroupMemberRow {
    id: String,
    username: String,
    email: String,
    initial: String,
}

#[derive(Template)]
#[template(path = "org_group.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct GroupPage {
    chrome: Chrome,
    nav: OrgNav,
    org: Organization,
    g: Group,
    source: &'static str,
    members: Vec<GroupMemberRow>,
    /// Whether the edit, member and delete forms are shown (not for Everyone).
    can_update: bool,
    can_delete: bool,
    f: GroupFields,
    errors: FormErrors,
    user: String,
    member_errors: FormErrors,
    delete_errors: FormErrors,
}

/// What a refused form of the group page gets wrong, and where.
#[derive(Default)]
struct GroupFormState {
    f: Option<GroupFields>,
    errors: FormErrors,
    user: String,
    member_errors: FormErrors,
    delete_errors: FormErrors,
}

async fn group_of(
    viewer: &Viewer,
    key: &str,
    group: &str,
    s: GroupFormState,
) -> Result<GroupPage, PageError> {
    let c = org_context(viewer, key, "groups", "Groups").await?;
    let g = groups::find_in_org(viewer.ctx(), &viewer.caller, &c.org.id, group).await?;
    let res = Resource::group(&c.org.org_ref(), &g.id);
    let members = g
        .members
        .iter()
        .map(|m| GroupMemberRow {
            id: m.id.clone(),
            username: m.username.clone(),
            email: m.email.clone(),
            initial: m
                .username
                .chars()
                .next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default(),
        })
        .collect();
    Ok(GroupPage {
        can_update: !g.is_everyone && viewer.may(Action::GROUP_UPDATE, &res),
        can_delete: !g.is_everyone && viewer.may(Action::GROUP_DELETE, &res),
        source: source_label(&g.source),
        f: s.f.unwrap_or_else(|| GroupFields::of(&g)),
        chrome: c.chrome,
        nav: c.nav,
        org: c.org,
        members,
        g,
        errors: s.errors,
        user: s.user,
        member_errors: s.member_errors,
        delete_errors: s.delete_errors,
    })
}

/// `GET /organizations/{org}/groups/{group}`.
pub async fn detail(viewer: Viewer, Path((key, group)): Path<(String, String)>) -> PageResult {
    let page = group_of(&viewer, &key, &group, GroupFormState::default()).await?;
    Ok(ok(&viewer, &page))
}

/// The group's id for a write (404 when unknown or unreadable).
async fn group_id(viewer: &Viewer, key: &str, group: &str) -> Result<Group, PageError> {
    Ok(groups::find_in_org(viewer.ctx(), &viewer.caller, key, group).await?)
}

/// `POST /organizations/{org}/groups/{group}` (**Save**): [`groups::update`].
pub async fn update(
    viewer: Viewer,
    Path((key, group)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let f: GroupFields = form::parse(&viewer, &body)?;
    let g = group_id(&viewer, &key, &group).await?;
    let result = match f.quota() {
        Ok(q) => {
            let req = GroupChanges {
                name: Some(f.name.trim().to_owned()),
                display_name: Some(f.display_name.trim().to_owned()),
                avatar_url: Some(f.avatar_url.trim().to_owned()),
                quota_allowance: Some(q),
                ..GroupChanges::default()
            };
            groups::update(viewer.ctx(), &viewer.caller, &g.id, req).await
        }
        Err(e) => Err(e),
    };
    let done = |g: Group| {
        Done::new(
            format!("/organizations/{key}/groups/{}", g.name),
            "Group saved.",
        )
    };
    form::answer(&viewer, result, done, |errors| {
        let state = GroupFormState {
            f: Some(f),
            errors,
            ..GroupFormState::default()
        };
        group_of(&viewer, &key, &group, state)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    user: String,
}

/// `POST /organizations/{org}/groups/{group}/members` (**Add to group**): a
/// member of the org by username or email, through [`groups::update`].
pub async fn add_member(
    viewer: Viewer,
    Path((key, group)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let f: AddForm = form::parse(&viewer, &body)?;
    let g = group_id(&viewer, &key, &group).await?;
    let user = f.user.trim().to_owned();
    let result = if user.is_empty() {
        Err(Error::validation("user", "enter a username or email"))
    } else {
        let req = GroupChanges {
            add_users: vec![user.clone()],
            ..GroupChanges::default()
        };
        groups::update(viewer.ctx(), &viewer.caller, &g.id, req).await
    };
    let result = result.map_err(|e| form::rename_field(e, "add_users[0]", "user"));
    let done = |_| {
        Done::new(
            format!("/organizations/{key}/groups/{}", g.name),
            format!("`{user}` added to the group."),
        )
    };
    form::answer(&viewer, result, done, |member_errors| {
        let state = GroupFormState {
            user: user.clone(),
            member_errors,
            ..GroupFormState::default()
        };
        group_of(&viewer, &key, &group, state)
    })
    .await
}

/// `POST /organizations/{org}/groups/{group}/members/{user}/remove`.
pub async fn remove_member(
    viewer: Viewer,
    Path((key, group, user)): Path<(String, String, String)>,
    body: Bytes,
) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let g = group_id(&viewer, &key, &group).await?;
    let back = format!("/organizations/{key}/groups/{}", g.name);
    let req = GroupChanges {
        remove_users: vec![user],
        ..GroupChanges::default()
    };
    let result = groups::update(viewer.ctx(), &viewer.caller, &g.id, req).await;
    form::answer_back(&viewer, &back, result, |_| {
        "Removed from the group.".to_owned()
    })
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /organizations/{org}/groups/{group}/delete`: [`groups::delete`] once
/// the group's name was typed.
pub async fn delete(
    viewer: Viewer,
    Path((key, group)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let f: DeleteForm = form::parse(&viewer, &body)?;
    let g = group_id(&viewer, &key, &group).await?;
    let result = match form::confirmed(&f.confirm, &g.name) {
        Ok(()) => groups::delete(viewer.ctx(), &viewer.caller, &g.id).await,
        Err(e) => Err(e),
    };
    let done = |()| {
        Done::new(
            format!("/organizations/{key}/groups"),
            format!("Group `{}` deleted.", g.name),
        )
    };
    form::answer(&viewer, result, done, |delete_errors| {
        let state = GroupFormState {
            delete_errors,
            ..GroupFormState::default()
        };
        group_of(&viewer, &key, &group, state)
    })
    .await
}
