//! What every page shares: the signed-in viewer, the layout's data, the org
//! sidebar, rendering, redirects and the error pages.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orgsync_policy::{Action, Resource};

use super::assets;
use super::form::{self, Flash};
use crate::api::extract::Actor;
use crate::app::AppState;
use crate::error::{Error, Kind};
use crate::model::Organization;
use crate::usecase::{self, Caller};

/// The signed-in user of a console request. Without a valid session a page
/// answers a redirect to `/login?redirect=<this page>`.
pub struct Viewer {
    pub app: AppState,
    pub actor: Actor,
    pub caller: Caller,
    /// The flash message of the previous redirect, if any (cleared by the
    /// response that renders it).
    pub flash: Option<Flash>,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Actor::from_request_parts(parts, state).await {
            Ok(actor) => Ok(Viewer {
                app: state.clone(),
                caller: actor.caller(),
                actor,
                flash: form::read_flash(&parts.headers),
            }),
            Err(e) if e.kind == Kind::Unauthenticated => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                // Only a page is worth coming back to; a form post is not.
                let back = if parts.method == axum::http::Method::GET {
                    here
                } else {
                    "/workspaces".to_owned()
                };
                let mut resp = redirect(&format!("/login?redirect={}", form::encode(&back)));
                // A stale cookie goes with the redirect.
                if parts.headers.contains_key(header::COOKIE) {
                    crate::api::csrf::append_session_cookie(
                        resp.headers_mut(),
                        &state.config.access_url,
                        "",
                        0,
                    );
                }
                Err(resp)
            }
            Err(e) => Err(error_page(&e)),
        }
    }
}

impl Viewer {
    pub fn ctx(&self) -> usecase::Ctx<'_> {
        self.app.ctx()
    }

    /// Whether the policies allow the viewer `action` on `resource`.
    pub fn may(&self, action: Action, resource: &Resource) -> bool {
        self.caller.allowed(&self.app.authz, action, resource)
    }

    /// Whether the viewer may administer anything in `org` (the org pages
    /// then have something to show it).
    pub fn manages(&self, org: &Organization) -> bool {
        let o = org.org_ref();
        self.may(Action::ORGANIZATION_UPDATE, &Resource::organization(&o))
            || self.may(Action::MEMBER_CREATE, &Resource::member(&o, "new"))
            || self.may(Action::GROUP_CREATE, &Resource::organization(&o))
            || self.may(Action::TEMPLATE_CREATE, &Resource::organization(&o))
            || self.may(Action::PROVISIONER_KEY_READ, &Resource::organization(&o))
            || self.may(
                Action::IDPSYNC_SETTINGS_READ,
                &Resource::idpsync_settings(&o),
            )
            || self.may(Action::AUDIT_READ, &Resource::audit_log(&o))
    }

    /// Whether the viewer may administer anything of the deployment itself.
    pub fn administers_deployment(&self) -> bool {
        let site = Resource::site();
        [
            Action::ORGANIZATION_CREATE,
            Action::USER_CREATE,
            Action::DEPLOYMENT_SYNC_READ,
            Action::AUDIT_READ_ALL,
            Action::POLICY_READ,
        ]
        .into_iter()
        .any(|a| self.may(a, &site))
    }

    /// The organizations the viewer may read, in name order.
    pub async fn orgs(&self) -> Result<Vec<Organization>, Error> {
        let page = usecase::Page {
            limit: Some(1000),
            offset: None,
        };
        let mut orgs = usecase::orgs::list(self.ctx(), &self.caller, page).await?;
        orgs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(orgs)
    }

    /// The layout's data for a page of `section` titled `title`.
    pub async fn chrome(
        &self,
        title: impl Into<String>,
        section: Section,
    ) -> Result<Chrome, Error> {
        let orgs = self.orgs().await?;
        self.chrome_with(title, section, &orgs)
    }

    /// [`Viewer::chrome`] when the caller already has the viewer's orgs.
    pub fn chrome_with(
        &self,
        title: impl Into<String>,
        section: Section,
        orgs: &[Organization],
    ) -> Result<Chrome, Error> {
        let admin = self.administers_deployment() || orgs.iter().any(|o| self.manages(o));
        Ok(Chrome {
            title: title.into(),
            section,
            signed_in: true,
            username: self.actor.user.username.clone(),
            email: self.actor.user.email.clone(),
            initial: self
                .actor
                .user
                .username
                .chars()
                .next()
                .map(|c| c.to_ascii_uppercase().to_string())
                .unwrap_or_default(),
            csrf: self.actor.csrf_token().unwrap_or_default().to_owned(),
            admin,
            audit: self.may(Action::AUDIT_READ_ALL, &Resource::site())
                || orgs
                    .iter()
                    .any(|o| self.may(Action::AUDIT_READ, &Resource::audit_log(&o.org_ref()))),
            flash: self.flash.clone(),
            css: assets::css_path(),
            js: assets::js_path(),
        })
    }

    /// The org sidebar of `org`'s pages, `current` naming the page.
    pub fn org_nav(
        &self,
        org: &Organization,
        orgs: &[Organization],
        current: &'static str,
    ) -> OrgNav {
        let o = org.org_ref();
        let mut links = vec![NavLink::new(
            "Settings",
            format!("/organizations/{}", org.name),
            current == "settings",
        )];
        if self.may(Action::MEMBER_READ, &Resource::organization(&o)) {
            links.push(NavLink::new(
                "Members",
                format!("/organizations/{}/members", org.name),
                current == "members",
            ));
        }
        if self.may(Action::GROUP_READ, &Resource::organization(&o)) {
            links.push(NavLink::new(
                "Groups",
                format!("/organizations/{}/groups", org.name),
                current == "groups",
            ));
        }
        if self.may(
            Action::IDPSYNC_SETTINGS_READ,
            &Resource::idpsync_settings(&o),
        ) {
            links.push(NavLink::new(
                "IdP sync",
                format!("/organizations/{}/idp-sync", org.name),
                current == "idp-sync",
            ));
        }
        if self.may(Action::PROVISIONER_KEY_READ, &Resource::organization(&o))
            || self.may(Action::PROVISIONER_DAEMON_READ, &Resource::organization(&o))
        {
            links.push(NavLink::new(
                "Provisioners",
                format!("/organizations/{}/provisioners", org.name),
                current == "provisioners",
            ));
        }
        if self.may(Action::AUDIT_READ, &Resource::audit_log(&o)) {
            links.push(NavLink::new(
                "Audit",
                format!("/organizations/{}/audit", org.name),
                current == "audit",
            ));
        }
        OrgNav {
            name: org.name.clone(),
            display_name: org.display_name.clone(),
            initial: org
                .display_name
                .chars()
                .next()
                .or_else(|| org.name.chars().next())
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default(),
            orgs: orgs
                .iter()
                .map(|o| OrgChoice {
                    name: o.name.clone(),
                    display_name: o.display_name.clone(),
                    current: o.id == org.id,
                })
                .collect(),
            can_create: self.may(Action::ORGANIZATION_CREATE, &Resource::site()),
            links,
            deployment: super::deployment::links(self, ""),
        }
    }
}

/// The top bar's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Workspaces,
    Templates,
    Admin,
    /// `/audit`.
    Audit,
    None,
}

/// The layout's data (`base.html`): the title, the top bar, the user menu
/// with the logout form, the flash message, the asset paths.
pub struct Chrome {
    pub title: String,
    pub section: Section,
    pub signed_in: bool,
    pub username: String,
    pub email: String,
    pub initial: String,
    /// The session's CSRF token, for every form of the page.
    pub csrf: String,
    /// Whether the top bar shows **Admin settings**.
    pub admin: bool,
    /// Whether the top bar shows **Audit** (`/audit`): the viewer may read
    /// some audit log.
    pub audit: bool,
    pub flash: Option<Flash>,
    pub css: &'static str,
    pub js: &'static str,
}

impl Chrome {
    /// The layout of a page nobody is signed in to (login, setup, errors).
    pub fn anonymous(title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            section: Section::None,
            signed_in: false,
            username: String::new(),
            email: String::new(),
            initial: String::new(),
            csrf: String::new(),
            admin: false,
            audit: false,
            flash: None,
            css: assets::css_path(),
            js: assets::js_path(),
        }
    }

    /// The top bar's current tab (`workspaces`, `templates`, `admin`, `audit`, or "").
    pub fn tab(&self) -> &'static str {
        match self.section {
            Section::Workspaces => "workspaces",
            Section::Templates => "templates",
            Section::Admin => "admin",
            Section::Audit => "audit",
            Section::None => "",
        }
    }
}

/// The org pages' sidebar: its header is the current org, expanding (a
/// `<details>`) to the viewer's orgs and **Create Organization** (when the
/// policies allow organization create).
pub struct OrgNav {
    pub name: String,
    pub display_name: String,
    pub initial: String,
    pub orgs: Vec<OrgChoice>,
    pub can_create: bool,
    pub links: Vec<NavLink>,
    /// The deployment pages the viewer may use (the sidebar's Deployment group).
    pub deployment: Vec<NavLink>,
}

pub struct OrgChoice {
    pub name: String,
    pub display_name: String,
    pub current: bool,
}

pub struct NavLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

impl NavLink {
    pub fn new(label: &'static str, href: String, current: bool) -> Self {
        Self {
            label,
            href,
            current,
        }
    }
}

/// A rendered page: HTML, never cached (pages are private to their viewer),
/// framing and foreign scripts refused; a flash message that was shown is
/// cleared.
pub fn render(
    app: &AppState,
    status: StatusCode,
    page: &impl Template,
    shown_flash: bool,
) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => return error_page(&Error::internal(format!("template: {e}"))),
    };
    let mut resp = (status, html_headers(), body).into_response();
    if shown_flash {
        form::clear_flash(resp.headers_mut(), &app.config.access_url);
    }
    resp
}

/// [`render`] with 200, clearing the viewer's flash.
pub fn ok(viewer: &Viewer, page: &impl Template) -> Response {
    render(&viewer.app, StatusCode::OK, page, viewer.flash.is_some())
}

fn html_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h
}

/// A 303 to `location` (a path on this server).
pub fn redirect(location: &str) -> Response {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (StatusCode::SEE_OTHER, h).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct ErrorPage {
    chrome: Chrome,
    code: u16,
    heading: &'static str,
    message: String,
}

/// The error pages: one 404 for what does not exist and what the viewer may
/// not read (the use cases answer both alike), a 403 saying why, a 4xx with
/// the operation's message, and a 5xx without internal text (logged here).
pub fn error_page(e: &Error) -> Response {
    let code = e.kind.code();
    let (heading, message) = match e.kind {
        Kind::NotFound => (
            "Page not found",
            "There is nothing here, or you may not see it. Check the address, or go back to your \
             workspaces."
                .to_owned(),
        ),
        Kind::Forbidden => ("Not allowed", e.body.message.clone()),
        k if k.is_internal() => {
            tracing::error!(
                status = code,
                error = e.internal.as_deref().unwrap_or(""),
                "console request failed"
            );
            (
                "Something went wrong",
                "The server could not complete this request. Try again in a moment.".to_owned(),
            )
        }
        _ => ("This did not work", e.body.message.clone()),
    };
    let page = ErrorPage {
        chrome: Chrome::anonymous(heading),
        code,
        heading,
        message,
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match page.render() {
        Ok(body) => (status, html_headers(), body).into_response(),
        Err(_) => (status, html_headers(), heading).into_response(),
    }
}

/// A page handler's result: the page, or the error page of what failed.
pub type PageResult = Result<Response, PageError>;

/// An operation's error as a page handler returns it.
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_page_renders_in_the_layout() {
        let page = ErrorPage {
            chrome: Chrome::anonymous("Page not found"),
            code: 404,
            heading: "Page not found",
            message: "gone".to_owned(),
        };
        let html = page.render().map_err(|e| e.to_string());
        let html = html.unwrap_or_else(|e| e);
        assert!(html.starts_with("<!doctype html>"), "{html}");
        assert!(html.contains("<h1>Page not found</h1>"), "{html}");
    }
}
