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
pub mod openapi;
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
use axum::routing::get;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::ApiError;

/// Query parameters of paginated lists.
pub use crate::usecase::Page;

/// The routes of `/api/v2`. Each handler's `#[utoipa::path]` declares its
/// method, path, parameters, bodies and answers, and `routes!` registers it
/// from that declaration: this one list makes both the router ([`router`])
/// and the OpenAPI document ([`openapi::document`]). Add routes only here and
/// only through `routes!` (the `openapi` tests check it).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(users::first_exists, users::create_first))
        .routes(routes!(users::login))
        .routes(routes!(oidc::login))
        .routes(routes!(oidc::callback))
        .routes(routes!(users::logout))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::suspend))
        .routes(routes!(users::activate))
        .routes(routes!(users::get_roles, users::set_roles))
        .routes(routes!(users::organizations))
        .routes(routes!(links::list, links::create, links::delete))
        .routes(routes!(users::list_tokens, users::create_token))
        .routes(routes!(users::delete_token))
        .routes(routes!(orgs::list, orgs::create))
        .routes(routes!(orgs::get, orgs::update, orgs::delete))
        .routes(routes!(members::list))
        .routes(routes!(members::assignable_roles))
        .routes(routes!(members::add, members::remove))
        .routes(routes!(members::set_roles))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::get, groups::update, groups::delete))
        .routes(routes!(templates::upload).map(|r| {
            r.layer(DefaultBodyLimit::max(
                crate::provisioner::archive::MAX_ARCHIVE_BYTES,
            ))
        }))
        .routes(routes!(templates::list_versions, templates::create_version))
        .routes(routes!(templates::get_version))
        .routes(routes!(
            templates::list_org_templates,
            templates::create_template
        ))
        .routes(routes!(templates::list_all_templates))
        .routes(routes!(
            templates::get_template,
            templates::update_template,
            templates::delete_template
        ))
        .routes(routes!(templates::get_acl, templates::patch_acl))
        .routes(routes!(provisioners::list_keys, provisioners::create_key))
        .routes(routes!(provisioners::delete_key))
        .routes(routes!(provisioners::list_daemons))
        .routes(routes!(provisioners::list_jobs))
        .routes(routes!(provisioners::get_job))
        .routes(routes!(provisioners::job_logs))
        .routes(routes!(provisioners::cancel_job))
        .routes(routes!(provisionerd::register))
        .routes(routes!(provisionerd::acquire))
        .routes(routes!(provisionerd::heartbeat))
        .routes(routes!(provisionerd::logs))
        .routes(routes!(provisionerd::complete))
        .routes(routes!(provisionerd::fail))
        .routes(routes!(workspaces::create))
        .routes(routes!(workspaces::list))
        .routes(routes!(workspaces::get, workspaces::delete))
        .routes(routes!(workspaces::builds, workspaces::create_build))
        .routes(routes!(idpsync::get_org_sync, idpsync::patch_org_sync))
        .routes(routes!(idpsync::patch_org_sync_mapping))
        .routes(routes!(
            idpsync::get_site_role_sync,
            idpsync::patch_site_role_sync
        ))
        .routes(routes!(idpsync::get_group_sync, idpsync::patch_group_sync))
        .routes(routes!(idpsync::patch_group_sync_mapping))
        .routes(routes!(idpsync::get_role_sync, idpsync::patch_role_sync))
        .routes(routes!(idpsync::patch_role_sync_mapping))
        .routes(routes!(idpsync::available_fields))
        .routes(routes!(idpsync::field_values))
        .routes(routes!(idpsync::preview))
        .routes(routes!(idpsync::problems))
        .routes(routes!(ldapsync::get_settings, ldapsync::put_settings))
        .routes(routes!(ldapsync::list_runs, ldapsync::start_run))
        .routes(routes!(ldapsync::get_run))
        .routes(routes!(authz::authcheck))
        .routes(routes!(authz::authorize))
        .routes(routes!(authz::policies))
        .routes(routes!(authz::reload))
        .routes(routes!(authz::impact))
        .routes(routes!(audit::list))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::buildinfo))
        .routes(routes!(openapi::serve))
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let (api, _) = routes().split_for_parts();
    let api = api
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
