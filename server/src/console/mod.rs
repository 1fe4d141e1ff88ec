//! The web console: server-rendered pages on the same origin as the API, an
//! adapter beside [`crate::api`]. Like an API handler, a page parses its input
//! (a query, an urlencoded or multipart form), calls one operation of
//! [`crate::usecase`] as the signed-in user and renders the result with an
//! askama template of `server/templates/`; it adds no business rule. What a
//! page shows of navigation and buttons comes from Cedar decisions
//! ([`crate::usecase::Caller::allowed`]), never from role names.
//!
//! - [`page`]: the signed-in [`page::Viewer`] (unauthenticated: a redirect to
//!   `/login?redirect=`), the shared layout data ([`page::Chrome`]), the org
//!   sidebar ([`page::OrgNav`]), rendering and the error pages (one 404 for
//!   "does not exist" and "may not read it", 403, a 5xx without internal text).
//! - [`form`]: urlencoded forms with the session's CSRF token and the
//!   same-origin check, field errors from the use cases' validations,
//!   POST-redirect-GET with a flash message (a short-lived cookie).
//! - [`assets`]: the CSS and the small scripts, embedded in the binary and
//!   served under a content-hashed name with a year-long cache.
//! - One module per page group: [`session`] (`/`, `/login`, `/setup`,
//!   `/logout`), [`orgs`] (`/organizations...`: settings, members),
//!   [`provisioners`], [`templates`], [`workspaces`], [`deployment`]
//!   (`/deployment/...`: users, IdP sync, LDAP sync, policies).

pub mod assets;
pub mod audit;
pub mod deployment;
pub mod form;
pub mod groups;
pub mod idpsync;
pub mod orgs;
pub mod page;
pub mod paging;
pub mod provisioners;
pub mod session;
pub mod sync_view;
pub mod templates;
pub mod time;
pub mod tokens;
pub mod workspaces;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::AppState;

/// The console's routes (paths are a contract: SPEC §9). Merged into the
/// server's router by [`crate::api::router`], under its layers (request ids,
/// tracing, the same-origin guard of cookie writes, the body limit).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(session::root))
        .route("/login", get(session::login_page).post(session::login))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/logout", post(session::logout))
        .route("/static/{file}", get(assets::serve))
        .route("/organizations", get(orgs::first))
        .route("/organizations/new", get(orgs::new_page).post(orgs::create))
        .route(
            "/organizations/{org}",
            get(orgs::settings_page).post(orgs::update),
        )
        .route("/organizations/{org}/delete", post(orgs::delete))
        .route("/organizations/{org}/members", get(orgs::members_page))
        .route("/organizations/{org}/members/add", post(orgs::add_member))
        .route(
            "/organizations/{org}/members/{user}/roles",
            post(orgs::set_roles),
        )
        .route(
            "/organizations/{org}/members/{user}/remove",
            post(orgs::remove_member),
        )
        .route(
            "/organizations/{org}/groups",
            get(groups::list).post(groups::create),
        )
        .route(
            "/organizations/{org}/groups/{group}",
            get(groups::detail).post(groups::update),
        )
        .route(
            "/organizations/{org}/groups/{group}/members",
            post(groups::add_member),
        )
        .route(
            "/organizations/{org}/groups/{group}/members/{user}/remove",
            post(groups::remove_member),
        )
        .route(
            "/organizations/{org}/groups/{group}/delete",
            post(groups::delete),
        )
        .route("/organizations/{org}/idp-sync", get(idpsync::page))
        .route(
            "/organizations/{org}/idp-sync/groups",
            post(idpsync::save_groups),
        )
        .route(
            "/organizations/{org}/idp-sync/roles",
            post(idpsync::save_roles),
        )
        .route(
            "/organizations/{org}/idp-sync/preview",
            post(idpsync::preview),
        )
        .route("/organizations/{org}/audit", get(audit::org_page))
        .route("/audit", get(audit::page))
        .route("/settings/tokens", get(tokens::page).post(tokens::create))
        .route("/settings/tokens/{id}/delete", post(tokens::delete))
        .route("/organizations/{org}/provisioners", get(provisioners::page))
        .route(
            "/organizations/{org}/provisioners/keys",
            post(provisioners::create_key),
        )
        .route(
            "/organizations/{org}/provisioners/keys/{name}/delete",
            post(provisioners::delete_key),
        )
        .route("/templates", get(templates::list))
        .route(
            "/templates/new",
            get(templates::new_page)
                .post(templates::upload)
                .layer(DefaultBodyLimit::max(
                    crate::provisioner::archive::MAX_ARCHIVE_BYTES + 64 * 1024,
                )),
        )
        .route(
            "/templates/new/{org}/{version}",
            get(templates::import_page).post(templates::create),
        )
        .route("/templates/{org}/{name}", get(templates::detail))
        .route("/workspaces", get(workspaces::list))
        .route(
            "/workspaces/new",
            get(workspaces::new_page).post(workspaces::create),
        )
        .route("/workspaces/{owner}/{name}", get(workspaces::detail))
        .route("/workspaces/{owner}/{name}/builds", post(workspaces::build))
        .route("/deployment", get(deployment::index))
        .route(
            "/deployment/users",
            get(deployment::users::page).post(deployment::users::create),
        )
        .route(
            "/deployment/users/{user}/status",
            post(deployment::users::set_status),
        )
        .route(
            "/deployment/users/{user}/roles",
            post(deployment::users::set_roles),
        )
        .route("/deployment/idp-sync", get(deployment::idp_sync::page))
        .route(
            "/deployment/idp-sync/organization",
            post(deployment::idp_sync::save_organization),
        )
        .route(
            "/deployment/idp-sync/site-roles",
            post(deployment::idp_sync::save_site_roles),
        )
        .route(
            "/deployment/idp-sync/preview",
            post(deployment::idp_sync::preview),
        )
        .route(
            "/deployment/ldap-sync",
            get(deployment::ldap_sync::page).post(deployment::ldap_sync::save),
        )
        .route(
            "/deployment/ldap-sync/runs",
            post(deployment::ldap_sync::start),
        )
        .route(
            "/deployment/ldap-sync/runs/{id}",
            get(deployment::ldap_sync::run_page),
        )
        .route("/deployment/policies", get(deployment::policies::page))
        .route(
            "/deployment/policies/reload",
            post(deployment::policies::reload),
        )
}

/// What the server answers for a path no route serves: the console's 404
/// page to a browser (a request that accepts HTML), the API's JSON 404 to
/// everything else.
pub async fn fallback(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if html {
        page::error_page(&crate::error::Error::not_found("page"))
    } else {
        crate::error::ApiError::not_found("route").into_response()
    }
}
