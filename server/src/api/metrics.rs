//! `GET /metrics` (Prometheus text format) and the middleware that counts
//! every HTTP request by its matched route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// The exposition: public, like `/healthz` (it holds counts by route,
/// action and status, never a user, an id or a secret; see
/// `docs/operations.md#metrics`).
pub async fn scrape(State(app): State<AppState>) -> Response {
    let snapshot = crate::usecase::metrics::snapshot(app.ctx()).await;
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&snapshot),
    )
        .into_response()
}

/// Times each request and counts it by method, route template and status.
/// The route comes from the response (`record_route` puts the matched path
/// there), so a request no route matched is `unmatched`, never its path.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    crate::metrics::http_request(
        method.as_str(),
        route,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}
