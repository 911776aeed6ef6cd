//! The admin HTTP API (SPEC §7) with axum: numbers, prefixes, bulk import, zones,
//! routing decisions, cache flushes, health and readiness. `GET /` redirects to the
//! OpenAPI document, which like `/healthz`, `/readyz` and `/metrics` needs no token (it
//! holds no data).
//!
//! Path parameters are named alike in routes, errors and the OpenAPI document: `e164`
//! for a number, `e164prefix` for a prefix route.
//!
//! Owns: routes and their HTTP semantics, bearer-token auth (constant-time compare; a
//! generated token file, mode 0600, when none is configured), body-size limits (413),
//! and the RFC 9457 `application/problem+json` shape of every error — including the
//! ones axum itself would answer in plain text, which a last layer rewrites.
//!
//! Must not touch: the store or the zones directly (every change goes through
//! [`Keeper`], which commits before it serves), or routing (it asks the one `Router`).

mod auth;
pub mod body;
mod lists;
pub mod openapi;
mod problem;
pub mod routed;

use crate::config::Config;
use crate::keeper::{EditError, Keeper, naptr_at};
use crate::name::Name;
use crate::resolve::Router as RouteEngine;
use auth::require_token;
pub use auth::{TokenError, TokenSource, load_token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use body::{NumberBody, Subject, decode_json, parse_e164};
use problem::problems_only;
use problem::{FieldError, Problem};
use routed::Routed;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What every handler shares.
pub struct AdminState {
    pub keeper: Arc<Keeper>,
    pub router: Arc<RouteEngine>,
    /// The bearer token, compared in constant time.
    pub token: String,
    /// Set once every listener is bound; `/readyz` also waits for every zone.
    pub listening: AtomicBool,
    /// Origins of every configured zone (readiness waits for all of them).
    pub configured: Vec<Name>,
    pub max_body_bytes: usize,
    pub store_path: std::path::PathBuf,
    /// Longest number accepted in paths and bodies (`dialplan.max_digits`).
    pub max_digits: usize,
    /// The runtime SIP, DNS and upstream lookups run on (the API runs on its own).
    pub main: tokio::runtime::Handle,
    /// What `/metrics` renders; `None` when `metrics.enabled` is off.
    pub metrics: Option<Arc<crate::metrics::Exporter>>,
}

impl AdminState {
    pub fn new(
        config: &Config,
        keeper: Arc<Keeper>,
        router: Arc<RouteEngine>,
        token: String,
        metrics: Option<Arc<crate::metrics::Exporter>>,
    ) -> Self {
        AdminState {
            keeper,
            router,
            token,
            listening: AtomicBool::new(false),
            configured: config.zones.iter().map(|z| z.origin.clone()).collect(),
            max_body_bytes: usize::try_from(config.admin.max_body_bytes).unwrap_or(usize::MAX),
            store_path: config.store.clone(),
            max_digits: config.dialplan.max_digits.max(15),
            main: tokio::runtime::Handle::current(),
            metrics,
        }
    }
}

type Shared = Arc<AdminState>;

/// Carries the matched route template from the request to the response, where
/// [`count_requests`] (outside the router, where requests are not routed yet) reads it.
async fn tag_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// `enroute_admin_requests_total{route,status}`: the route template (SPEC §10.12),
/// `unmatched` for paths and methods no route serves (any client can send those).
async fn count_requests(State(s): State<Shared>, req: Request, next: Next) -> Response {
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
async fn metrics_text(State(s): State<Shared>) -> Response {
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

/// The whole API.
pub fn app(state: Shared) -> Router {
    let v1 = Router::new()
        .route(
            "/v1/numbers/{e164}",
            get(get_number).put(put_number).delete(delete_number),
        )
        .route("/v1/numbers", get(lists::numbers))
        .route("/v1/numbers:import", post(import))
        .route("/v1/prefixes", get(lists::prefixes))
        .route(
            "/v1/prefixes/{e164prefix}",
            get(get_prefix).put(put_prefix).delete(delete_prefix),
        )
        .route("/v1/route/{number}", get(route))
        .route("/v1/zones", get(list_zones))
        .route("/v1/zones/{origin}", get(get_zone).put(put_zone))
        .route("/v1/cache", delete(flush_cache))
        .route("/v1/cache/{e164}", delete(flush_cached_number))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route_layer(middleware::from_fn(tag_route));
    Router::new()
        // A browser pointed at the listener lands on what describes it (the console's
        // page, once there is one).
        .route(
            "/",
            get(|| async { Redirect::temporary("/v1/openapi.json") }),
        )
        .route("/v1/openapi.json", get(openapi_doc))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn(tag_route))
        .merge(v1)
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            )
        })
        .layer(middleware::from_fn(problems_only))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Serves the API on a thread of its own, with its own single-threaded runtime at a
/// lower CPU priority, until `stop` turns true (requests in flight finish). Admin work
/// (a 60 MB upload, JSON, exports) then never runs on the SIP and DNS workers nor
/// competes with them on equal terms. The returned receiver completes when it has
/// stopped.
pub fn spawn(
    listener: std::net::TcpListener,
    state: Shared,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("enroute-admin".into())
        .spawn(move || {
            crate::keeper::lower_this_threads_priority();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => serve(l, state, stop).await,
                        Err(e) => tracing::error!("admin listener: {e}"),
                    }
                }),
                Err(e) => tracing::error!("admin listener: cannot start its runtime: {e}"),
            }
            let _ = done.send(());
        });
    if let Err(e) = started {
        tracing::error!("admin listener: cannot start its thread: {e}");
    }
    finished
}

/// Serves the API on `listener` until `stop` turns true; requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = app(state);
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("admin listener: {e}");
    }
}

/// Reads the request body up to the configured limit: 413 beyond it.
async fn read_body(s: &AdminState, req: Request) -> Result<(HeaderMap, Bytes), Problem> {
    let (parts, body) = req.into_parts();
    let too_big = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than admin.max_body_bytes ({})",
                s.max_body_bytes
            ),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body_bytes as u64) {
        return Err(too_big());
    }
    let bytes = axum::body::to_bytes(body, s.max_body_bytes)
        .await
        .map_err(|_| too_big())?;
    Ok((parts.headers, bytes))
}

/// Runs a keeper change (which blocks on the store's fsync) off the async workers;
/// `field` names the path's number or prefix in errors about it.
async fn blocking<T: Send + 'static>(
    field: &'static str,
    f: impl FnOnce() -> Result<T, EditError> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| Problem::edit(e, field)),
        Err(e) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change did not finish: {e}"),
        )),
    }
}

/// Runs bulk work (an import, a zone replace) on a thread of its own at a lower CPU
/// priority ([`crate::keeper::lower_this_threads_priority`]).
async fn bulk<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Problem> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("enroute-bulk".into())
        .spawn(move || {
            crate::keeper::lower_this_threads_priority();
            let _ = tx.send(f());
        })
        .map_err(|e| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot start the work: {e}"),
            )
        })?;
    rx.await.map_err(|_| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the change did not finish",
        )
    })
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(s): State<Shared>) -> Response {
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

/// The path parameter naming a number, and the one naming a prefix route.
const E164: &str = "e164";
const E164PREFIX: &str = "e164prefix";

/// The path parameter that names `subject`, for errors about it.
fn param(subject: &Subject) -> &'static str {
    match subject {
        Subject::Number(_) => E164,
        Subject::Prefix(_) => E164PREFIX,
    }
}

/// The routes of a number, or of a prefix route (its wildcard), as answered.
fn routes_view(
    s: &AdminState,
    subject: Subject,
    routed: &mut Routed,
) -> Result<body::View, Problem> {
    let text = subject.text().to_string();
    let prefix = matches!(subject, Subject::Prefix(_));
    let (zone, digits) = s
        .keeper
        .find(&text)
        .ok_or_else(|| Problem::edit(EditError::NotInZone(text.clone()), param(&subject)))?;
    let mut labels: Vec<&[u8]> = digits.chunks(1).collect();
    if prefix {
        labels.push(b"*");
    }
    let (ttl, naptrs) = naptr_at(&zone, &labels).ok_or_else(|| {
        let what = if prefix {
            "no prefix route for"
        } else {
            "no routes for"
        };
        Problem::new(StatusCode::NOT_FOUND, format!("{what} {text}"))
    })?;
    Ok(body::view(
        subject,
        &zone.origin_text,
        ttl,
        &naptrs,
        &mut |rd, result| routed.judge(rd, result),
    ))
}

async fn get_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, E164, s.max_digits)?;
    let view = routes_view(&s, Subject::Number(number), &mut Routed::now(&s.router))?;
    Ok(axum::Json(view).into_response())
}

/// Decodes a number or prefix body, checking a `number` in it against the path.
fn decode_routes(
    bytes: &[u8],
    path_number: &str,
    routed: &mut Routed,
) -> Result<body::Checked, Problem> {
    let parsed: NumberBody = decode_json(bytes)?;
    if let Some(n) = &parsed.number
        && n.trim_start_matches(' ').trim_start_matches('+') != path_number.trim_start_matches('+')
    {
        return Err(FieldError {
            line: None,
            field: "number".into(),
            detail: format!("{n:?} differs from the path's {path_number}"),
        }
        .into());
    }
    parsed
        .to_routes("", &mut |rd, result| routed.judge(rd, result))
        .map_err(|errs| Problem::fields(StatusCode::UNPROCESSABLE_ENTITY, errs))
}

/// Reads a JSON number or prefix body (limit, content type, fields) for `path_number`.
async fn read_routes(
    s: &AdminState,
    req: Request,
    path_number: &str,
    routed: &mut Routed,
) -> Result<body::Checked, Problem> {
    let (headers, bytes) = read_body(s, req).await?;
    require_json(&headers)?;
    decode_routes(&bytes, path_number, routed)
}

fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type application/json, got {ct:?}"),
        ))
    }
}

/// `PUT` of a number (`subject` a number) or prefix route: checks the body with the
/// services in force now, commits, and answers the stored routes with the warnings.
async fn put_routes(s: &AdminState, subject: Subject, req: Request) -> Result<Response, Problem> {
    let mut routed = Routed::now(&s.router);
    let text = subject.text().to_string();
    let checked = read_routes(s, req, &text, &mut routed).await?;
    let keeper = s.keeper.clone();
    let prefix = matches!(subject, Subject::Prefix(_));
    blocking(param(&subject), move || {
        let routes = Some(&checked.routes);
        if prefix {
            keeper.set_prefix(&text, routes)
        } else {
            keeper.set_number(&text, routes)
        }
    })
    .await?;
    let mut view = routes_view(s, subject, &mut routed)?;
    view.warnings = checked.warnings;
    Ok(axum::Json(view).into_response())
}

async fn put_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, E164, s.max_digits)?;
    put_routes(&s, Subject::Number(number), req).await
}

async fn delete_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, E164, s.max_digits)?;
    let keeper = s.keeper.clone();
    blocking(E164, move || keeper.set_number(&number, None)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_prefix(State(s): State<Shared>, Path(p): Path<String>) -> Result<Response, Problem> {
    let prefix = parse_e164(&p, E164PREFIX, s.max_digits)?;
    let view = routes_view(&s, Subject::Prefix(prefix), &mut Routed::now(&s.router))?;
    Ok(axum::Json(view).into_response())
}

async fn put_prefix(
    State(s): State<Shared>,
    Path(p): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let prefix = parse_e164(&p, E164PREFIX, s.max_digits)?;
    put_routes(&s, Subject::Prefix(prefix), req).await
}

async fn delete_prefix(
    State(s): State<Shared>,
    Path(p): Path<String>,
) -> Result<Response, Problem> {
    let prefix = parse_e164(&p, E164PREFIX, s.max_digits)?;
    let keeper = s.keeper.clone();
    blocking(E164PREFIX, move || keeper.set_prefix(&prefix, None)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/numbers:import` (SPEC §10.7).
async fn import(State(s): State<Shared>, req: Request) -> Result<Response, Problem> {
    let (headers, bytes) = read_body(&s, req).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let csv = match mime.as_str() {
        "text/csv" => true,
        "application/x-ndjson" => false,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("import takes text/csv or application/x-ndjson, not {ct:?}"),
            ));
        }
    };
    let keeper = s.keeper.clone();
    let max_digits = s.max_digits;
    let routed = Routed::now(&s.router);
    let outcome = bulk(move || {
        let mut routed = |rd: &[u8], result: Option<&str>| routed.judge(rd, result);
        let parsed = if csv {
            body::parse_csv(&bytes, max_digits, &mut routed)
        } else {
            body::parse_ndjson(&bytes, max_digits, &mut routed)
        };
        drop(bytes);
        match parsed {
            Ok(import) => {
                let counts = keeper.import(&import.items).map_err(Problem::from)?;
                Ok((counts, import.warnings))
            }
            Err(errs) => {
                let mut p = Problem::fields(StatusCode::UNPROCESSABLE_ENTITY, errs.list);
                if let Some(first) = p.errors.first() {
                    p.detail = format!(
                        "line {}: {}{}; nothing imported",
                        first.line.unwrap_or(0),
                        if first.field.is_empty() {
                            String::new()
                        } else {
                            format!("{}: ", first.field)
                        },
                        first.detail
                    );
                }
                p.total = Some(errs.total);
                Err(p)
            }
        }
    })
    .await?;
    let ((numbers, routes), warnings) = outcome?;
    Ok(axum::Json(Imported {
        numbers,
        routes,
        warnings: warnings.list,
        total_warnings: (warnings.total > 0).then_some(warnings.total),
    })
    .into_response())
}

/// The answer to an import; warnings (at most 100, `total_warnings` counts them all)
/// only when some route was kept that calls never use.
#[derive(serde::Serialize)]
struct Imported {
    numbers: usize,
    routes: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_warnings: Option<usize>,
}

async fn route(State(s): State<Shared>, Path(number): Path<String>) -> Result<Response, Problem> {
    if number.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the path needs a number or URI",
        ));
    }
    // On the main runtime, where the upstream resolver's sockets live.
    let router = s.router.clone();
    let decision = s
        .main
        .spawn(async move { router.route_full(&number, true).await })
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(decision).into_response())
}

async fn list_zones(State(s): State<Shared>) -> Response {
    let zones = s.keeper.zones().load();
    let items: Vec<_> = zones
        .iter()
        .map(|z| {
            json!({
                "origin": &*z.origin_text,
                "serial": z.soa.serial,
                "records": z.stats.records,
                "type": if s.keeper.is_secondary(&z.origin) { "secondary" } else { "primary" },
            })
        })
        .collect();
    axum::Json(json!({"items": items})).into_response()
}

fn parse_origin(text: &str) -> Result<Name, Problem> {
    let t = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    Name::from_text(&t).map_err(|e| {
        FieldError {
            line: None,
            field: "origin".into(),
            detail: format!("{text:?}: {e}"),
        }
        .into()
    })
}

async fn get_zone(
    State(s): State<Shared>,
    Path(origin): Path<String>,
) -> Result<Response, Problem> {
    let origin = parse_origin(&origin)?;
    let zone = s
        .keeper
        .zones()
        .load()
        .iter()
        .find(|z| z.origin.eq_ignore_case(&origin))
        .cloned()
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no zone {origin}")))?;
    let text = tokio::task::spawn_blocking(move || zone.to_master())
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/dns")], text).into_response())
}

async fn put_zone(
    State(s): State<Shared>,
    Path(origin): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let origin = parse_origin(&origin)?;
    let (headers, bytes) = read_body(&s, req).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("text/dns") && !mime.eq_ignore_ascii_case("text/plain") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a zone is text/dns (RFC 4027), not {ct:?}"),
        ));
    }
    let keeper = s.keeper.clone();
    let o = origin.clone();
    let serial = bulk(move || keeper.replace_zone(&o, &bytes))
        .await?
        .map_err(Problem::from)?;
    let records = s
        .keeper
        .zones()
        .load()
        .iter()
        .find(|z| z.origin.eq_ignore_case(&origin))
        .map_or(0, |z| z.stats.records);
    Ok(
        axum::Json(json!({"origin": origin.to_string(), "serial": serial, "records": records}))
            .into_response(),
    )
}

async fn flush_cache(State(s): State<Shared>) -> Response {
    s.router.cache().invalidate_all();
    StatusCode::NO_CONTENT.into_response()
}

async fn flush_cached_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, "e164", s.max_digits)?;
    s.router.cache().invalidate(&number);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn openapi_doc() -> Response {
    axum::Json(openapi::document()).into_response()
}
