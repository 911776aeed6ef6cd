//! `POST /v1/numbers:import` (SPEC §10.7): a CSV or NDJSON body of numbers, checked
//! whole before anything is written, then committed in one transaction; the answer
//! counts what was written, or lists the first errors with their lines.
//!
//! Must not touch: the store or the zones directly (the keeper imports).

use super::body::{self, read_body, require_type};
use super::offload::bulk;
use super::problem::Problem;
use super::routed::Routed;
use super::state::Shared;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `POST /v1/numbers:import` (SPEC §10.7).
pub(super) async fn import(State(s): State<Shared>, req: Request) -> Result<Response, Problem> {
    let (headers, bytes) = read_body(&s, req).await?;
    let csv = require_type(&headers, &["text/csv", "application/x-ndjson"], |ct| {
        format!("import takes text/csv or application/x-ndjson, not {ct:?}")
    })? == 0;
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
            Err(errs) => Err(refused(errs)),
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

/// The answer to an import refused: its first errors (the first in `detail` with its
/// line) and how many there were in all.
fn refused(errs: body::ImportErrors) -> Problem {
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
    p
}
