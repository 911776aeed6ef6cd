//! The admin HTTP API (SPEC §7) with axum: numbers, prefixes, bulk import, zones,
//! routing decisions, cache flushes, health and readiness; and the operator console at
//! `/ui/` (SPEC §14). `GET /` redirects to the console. The console's files, the OpenAPI
//! document, `/healthz`, `/readyz` and `/metrics` need no token (they hold no data the
//! token guards).
//!
//! Owns: start-up (the API's own thread and runtime, [`spawn`]) and the router ([`app`]):
//! which path and method go to which handler, and the layers around them (token, route
//! tag, request counter, problems only). Each concern has a file of its own:
//! - `auth.rs`: the bearer token, loaded ([`load_token`]) and checked on every `/v1` route;
//! - `problem.rs`: every error answer (RFC 9457 `application/problem+json`), including
//!   the ones axum itself would answer in plain text, which a last layer rewrites;
//! - `body.rs`: reading a body (size limit, 413; content type, 415) and the JSON body of
//!   a number or prefix route;
//! - one file per resource, with its handlers: `numbers.rs` (`/v1/numbers/{e164}`,
//!   `/v1/prefixes/{e164prefix}`), `lists.rs` (the paged `/v1/numbers`, `/v1/prefixes`),
//!   `import.rs` (`/v1/numbers:import`), `zones.rs` (`/v1/zones…`), `routing.rs`
//!   (`/v1/route/{number}`, `/v1/cache…`), `registrar.rs` (`/v1/users…`,
//!   `/v1/registrations…`), `ops.rs` (health, readiness, `/metrics`, the
//!   [`openapi`] document), `console.rs` (the console's files under `/ui/`, embedded at
//!   build time, and the headers that keep the page to this origin);
//! - `routed.rs`: whether calls can use a route, by the router's own rule;
//! - `offload.rs`: where blocking and bulk work runs;
//! - `state.rs`: what every handler shares ([`AdminState`]).
//!
//! A new resource is a file of handlers, its routes in [`app`] and its paths in
//! [`openapi`] (`tests/admin.rs` checks that the two agree).
//!
//! Path parameters are named alike in routes, errors and the OpenAPI document: `e164`
//! for a number, `e164prefix` for a prefix route.
//!
//! Must not touch: the store or the zones directly (every change goes through
//! [`Keeper`](crate::keeper::Keeper), which commits before it serves), or routing (it
//! asks the one `Router`).

mod auth;
pub mod body;
mod console;
mod import;
mod lists;
mod numbers;
mod offload;
pub mod openapi;
mod ops;
mod problem;
mod registrar;
pub mod routed;
mod routing;
mod state;
mod zones;

use auth::require_token;
pub use auth::{TokenError, TokenSource, load_token};
use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{delete, get, post};
use ops::{count_requests, tag_route};
use problem::{Problem, problems_only};
pub use state::AdminState;
use state::Shared;

/// The whole API.
pub fn app(state: Shared) -> Router {
    let v1 = Router::new()
        .route(
            "/v1/numbers/{e164}",
            get(numbers::get_number)
                .put(numbers::put_number)
                .delete(numbers::delete_number),
        )
        .route("/v1/numbers", get(lists::numbers))
        .route("/v1/numbers:import", post(import::import))
        .route("/v1/prefixes", get(lists::prefixes))
        .route(
            "/v1/prefixes/{e164prefix}",
            get(numbers::get_prefix)
                .put(numbers::put_prefix)
                .delete(numbers::delete_prefix),
        )
        .route("/v1/route/{number}", get(routing::route))
        .route("/v1/zones", get(zones::list_zones))
        .route(
            "/v1/zones/{origin}",
            get(zones::get_zone)
                .put(zones::put_zone)
                .delete(zones::delete_zone),
        )
        .route(
            "/v1/users/{aor}",
            get(registrar::get_user)
                .put(registrar::put_user)
                .delete(registrar::delete_user),
        )
        .route("/v1/users", get(registrar::list_users))
        .route("/v1/registrations", get(registrar::list_registrations))
        .route(
            "/v1/registrations/{aor}",
            delete(registrar::delete_registrations),
        )
        .route("/v1/cache", delete(routing::flush_cache))
        .route("/v1/cache/{e164}", delete(routing::flush_cached_number))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route_layer(middleware::from_fn(tag_route));
    // The console's files: no token (they hold no data).
    let console = Router::new()
        .route("/ui", get(console::to_index))
        .route("/ui/", get(console::index))
        .route("/ui/{*path}", get(console::asset))
        .route_layer(middleware::from_fn(tag_route));
    Router::new()
        // A browser pointed at the listener lands on the console.
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/v1/openapi.json", get(ops::openapi_doc))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_text))
        .route_layer(middleware::from_fn(tag_route))
        .merge(v1)
        .merge(console)
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
        // Outermost, so that every answer under /ui (405s and rejections rewritten as
        // problems included) leaves with the headers that keep the page to its origin.
        .layer(middleware::from_fn(console::page_headers))
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
