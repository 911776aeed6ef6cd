//! What operators and their tools probe: `/healthz`, `/readyz` (every listener bound,
//! every configured zone loaded), `/metrics` (Prometheus text), the OpenAPI document,
//! and the counter of admin requests by route template and status behind
//! `enroute_admin_requests_total`.
//!
//! Must not touch: numbers, prefixes or zones (it only reads whether zones are loaded).

use super::openapi;
use super::problem::Problem;
use super::state::Shared;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::atomic::Ordering;

/// Carries the matched route template from the request to the response, where
/// [`count_requests`] (outside the router, where requests are not routed yet) reads it.
pub(super) async fn tag_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// `enroute_admin_requests_total{route,status}`: the route template (SPEC §10.12),
/// `unmatched` for paths and methods no route serves (any client can send those).
pub(super) async fn count_requests(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if let Some(m) = &s.metrics {
        let route = resp
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        m.admin_requests
            .with_label_values(&[route, resp.status().as_str()])
            .inc();
    }
    resp
}

/// `GET /metrics`: Prometheus text; 404 when `metrics.enabled` is off.
pub(super) async fn metrics_text(State(s): State<Shared>) -> Response {
    match &s.metrics {
        Some(m) => {
            let exporter = m.clone();
            // Reading /proc and summing shards is blocking work, if brief.
            let text = tokio::task::spawn_blocking(move || exporter.render())
                .await
                .unwrap_or_default();
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                )],
                text,
            )
                .into_response()
        }
        None => {
            Problem::new(StatusCode::NOT_FOUND, "metrics are off (metrics.enabled)").into_response()
        }
    }
}

/// `GET /healthz`: the process answers.
pub(super) async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 503 until every listener is bound and every configured zone loaded.
pub(super) async fn readyz(State(s): State<Shared>) -> Response {
    let zones = s.keeper.zones().load();
    let missing: Vec<String> = s
        .configured
        .iter()
        .filter(|o| !zones.iter().any(|z| z.origin.eq_ignore_case(o)))
        .map(|o| o.to_string())
        .collect();
    if !s.listening.load(Ordering::Acquire) {
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "listeners are starting")
            .into_response();
    }
    if !missing.is_empty() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("zones not loaded yet: {}", missing.join(", ")),
        )
        .into_response();
    }
    axum::Json(json!({"status": "ready", "zones": zones.iter().count()})).into_response()
}

/// `GET /v1/openapi.json`.
pub(super) async fn openapi_doc() -> Response {
    axum::Json(openapi::document()).into_response()
}
