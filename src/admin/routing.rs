//! The router seen from the API: `GET /v1/route/{number}` (the decision a call would
//! get, with its trace) and `DELETE /v1/cache`, `/v1/cache/{e164}` (flush upstream
//! answers).
//!
//! Must not touch: the routing rules (it asks the one `Router`, on the main runtime).

use super::body::parse_e164;
use super::numbers::E164;
use super::problem::Problem;
use super::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `GET /v1/route/{number}`: the decision a call to `number` (a number or URI) gets.
pub(super) async fn route(
    State(s): State<Shared>,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
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

/// `DELETE /v1/cache`: every cached upstream answer.
pub(super) async fn flush_cache(State(s): State<Shared>) -> Response {
    s.router.cache().invalidate_all();
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /v1/cache/{e164}`: the cached answers for one number.
pub(super) async fn flush_cached_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, E164, s.max_digits)?;
    s.router.cache().invalidate(&number);
    Ok(StatusCode::NO_CONTENT.into_response())
}
