//! The HTTP API under `/api/v2`. Every handler decides its action with one Cedar
//! request through [`crate::authz::Authz`]; none carries a role check of its own.

pub mod audit;
pub mod authz;
pub mod csrf;
pub mod extract;
pub mod groups;
pub mod health;
pub mod idpsync;
pub mod ldapsync;
pub mod links;
pub mod members;
pub mod metrics;
pub mod oidc;
pub mod orgs;
pub mod provisionerd;
pub mod provisioners;
pub mod reply;
pub mod templates;
pub mod users;
pub mod workspaces;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::app::AppState;
use crate::error::ApiError;

/// Query parameters of paginated lists.
pub use crate::usecase::Page;

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route(
            "/users/first",
            get(users::first_exists).post(users::create_first),
        )
        .route("/users/login", post(users::login))
        .route("/users/oidc/login", get(oidc::login))
        .route("/users/oidc/callback", get(oidc::callback))
        .route("/users/logout", post(users::logout))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{user}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/users/{user}/status/suspend", put(users::suspend))
        .route("/users/{user}/status/activate", put(users::activate))
        .route(
            "/users/{user}/roles",
            get(users::get_roles).put(users::set_roles),
        )
        .route("/users/{user}/organizations", get(users::organizations))
        .route(
            "/users/{user}/links",
            get(links::list).post(links::create).delete(links::delete),
        )
        .route(
            "/users/{user}/keys/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route("/users/{user}/keys/{id}", delete(users::delete_token))
        .route("/organizations", get(orgs::list).post(orgs::create))
        .route(
            "/organizations/{organization}",
            get(orgs::get).patch(orgs::update).delete(orgs::delete),
        )
        .route("/organizations/{organization}/members", get(members::list))
        .route(
            "/organizations/{organization}/members/roles",
            get(members::assignable_roles),
        )
        .route(
            "/organizations/{organization}/members/{user}",
            post(members::add).delete(members::remove),
        )
        .route(
            "/organizations/{organization}/members/{user}/roles",
            put(members::set_roles),
        )
        .route(
            "/organizations/{organization}/groups",
            get(groups::list).post(groups::create),
        )
        .route(
            "/groups/{id}",
            get(groups::get)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/files",
            post(templates::upload).layer(DefaultBodyLimit::max(
                crate::provisioner::archive::MAX_ARCHIVE_BYTES,
            )),
        )
        .route(
            "/organizations/{organization}/templateversions",
            get(templates::list_versions).post(templates::create_version),
        )
        .route("/templateversions/{id}", get(templates::get_version))
        .route(
            "/organizations/{organization}/templates",
            get(templates::list_org_templates).post(templates::create_template),
        )
        .route("/templates", get(templates::list_all_templates))
        .route(
            "/templates/{id}",
            get(templates::get_template)
                .patch(templates::update_template)
                .delete(templates::delete_template),
        )
        .route(
            "/templates/{id}/acl",
            get(templates::get_acl).patch(templates::patch_acl),
        )
        .route(
            "/organizations/{organization}/provisionerkeys",
            get(provisioners::list_keys).post(provisioners::create_key),
        )
        .route(
            "/organizations/{organization}/provisionerkeys/{name}",
            delete(provisioners::delete_key),
        )
        .route(
            "/organizations/{organization}/provisionerdaemons",
            get(provisioners::list_daemons),
        )
        .route(
            "/organizations/{organization}/provisionerjobs",
            get(provisioners::list_jobs),
        )
        .route("/provisionerjobs/{id}", get(provisioners::get_job))
        .route("/provisionerjobs/{id}/logs", get(provisioners::job_logs))
        .route(
            "/provisionerjobs/{id}/cancel",
            post(provisioners::cancel_job),
        )
        .route("/provisionerd/register", post(provisionerd::register))
        .route(
            "/provisionerd/{daemon}/acquire",
            post(provisionerd::acquire),
        )
        .route(
            "/provisionerd/{daemon}/jobs/{job}/heartbeat",
            post(provisionerd::heartbeat),
        )
        .route(
            "/provisionerd/{daemon}/jobs/{job}/logs",
            post(provisionerd::logs),
        )
        .route(
            "/provisionerd/{daemon}/jobs/{job}/complete",
            post(provisionerd::complete),
        )
        .route(
            "/provisionerd/{daemon}/jobs/{job}/fail",
            post(provisionerd::fail),
        )
        .route(
            "/organizations/{organization}/members/{user}/workspaces",
            post(workspaces::create),
        )
        .route("/workspaces", get(workspaces::list))
        .route(
            "/workspaces/{id}",
            get(workspaces::get).delete(workspaces::delete),
        )
        .route(
            "/workspaces/{id}/builds",
            get(workspaces::builds).post(workspaces::create_build),
        )
        .route(
            "/settings/idpsync/organization",
            get(idpsync::get_org_sync).patch(idpsync::patch_org_sync),
        )
        .route(
            "/settings/idpsync/organization/mapping",
            patch(idpsync::patch_org_sync_mapping),
        )
        .route(
            "/settings/idpsync/site-roles",
            get(idpsync::get_site_role_sync).patch(idpsync::patch_site_role_sync),
        )
        .route(
            "/organizations/{organization}/settings/idpsync/groups",
            get(idpsync::get_group_sync).patch(idpsync::patch_group_sync),
        )
        .route(
            "/organizations/{organization}/settings/idpsync/groups/mapping",
            patch(idpsync::patch_group_sync_mapping),
        )
        .route(
            "/organizations/{organization}/settings/idpsync/roles",
            get(idpsync::get_role_sync).patch(idpsync::patch_role_sync),
        )
        .route(
            "/organizations/{organization}/settings/idpsync/roles/mapping",
            patch(idpsync::patch_role_sync_mapping),
        )
        .route(
            "/settings/idpsync/available-fields",
            get(idpsync::available_fields),
        )
        .route("/settings/idpsync/field-values", get(idpsync::field_values))
        .route("/idpsync/preview", post(idpsync::preview))
        .route("/idpsync/problems", get(idpsync::problems))
        .route(
            "/settings/ldapsync",
            get(ldapsync::get_settings).put(ldapsync::put_settings),
        )
        .route(
            "/ldapsync/runs",
            get(ldapsync::list_runs).post(ldapsync::start_run),
        )
        .route("/ldapsync/runs/{id}", get(ldapsync::get_run))
        .route("/authcheck", post(authz::authcheck))
        .route("/authorize", post(authz::authorize))
        .route("/policies", get(authz::policies))
        .route("/policies/reload", post(authz::reload))
        .route("/audit", get(audit::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/buildinfo", get(health::buildinfo))
        .route_layer(axum::middleware::from_fn(record_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(no_store));
    // Served at the root beside the API: probes and the Prometheus scrape.
    let root = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .route_layer(axum::middleware::from_fn(record_route));
    Router::new()
        .nest("/api/v2", api)
        .merge(root)
        // The web console: pages beside the API, under the same layers.
        .merge(crate::console::router().route_layer(axum::middleware::from_fn(record_route)))
        .fallback(crate::console::fallback)
        .layer(axum::middleware::map_response(json_413))
        // Every route, the API and whatever is served beside it: a write
        // authenticated by the session cookie must be same-origin.
        .layer(axum::middleware::from_fn_with_state(
            csrf::SameOrigin::new(&state.config.access_url),
            csrf::guard,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        // The access log: one `info` line per request when its answer is
        // sent (status, latency), in a span with the method, the path, the
        // matched route (recorded by `record_route`), the request id and the
        // signed-in user's id (recorded by the authentication extractor).
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = req.uri().path(),
                        route = tracing::field::Empty,
                        request_id = id,
                        user_id = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        // Metrics: every request by method, matched route template and status.
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Records the route the request matched (`/api/v2/users/{user}`, not the
/// path with its ids) in the request's span, for the access log, and on the
/// response, for the request metrics (`metrics::track`).
async fn record_route(
    path: axum::extract::MatchedPath,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    tracing::Span::current().record("route", path.as_str());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(path);
    resp
}

/// API responses are private to their caller, and some carry secrets (session
/// tokens, API tokens, provisioner keys): no cache may keep them.
async fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// A 413 not already in the API error shape (a body refused by a layer or an
/// extractor of axum's own) gets it: `{message, detail?}` like every error.
async fn json_413(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return extract::too_large().into_response();
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// The HTTP side of [`crate::error::Error`]: its kind as a status code, and the
/// response `{message, detail?, validations?}`. 5xx bodies say nothing
/// internal; the real error is logged in the request's span.
impl ApiError {
    /// An error answered with a status of the adapter's choosing.
    pub fn new(status: axum::http::StatusCode, message: impl Into<String>) -> Self {
        Self::of(crate::error::Kind::from_code(status.as_u16()), message)
    }

    pub fn http_status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::from_u16(self.kind.code())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        if status.is_server_error() {
            tracing::error!(%status, error = self.internal.as_deref().unwrap_or(""), "request failed");
        }
        (status, axum::Json(self.body)).into_response()
    }
}
