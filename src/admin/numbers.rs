//! One number or one prefix route at a time (SPEC §7): `GET`, `PUT` and `DELETE` of
//! `/v1/numbers/{e164}` and `/v1/prefixes/{e164prefix}`. A prefix route is the wildcard
//! below the prefix's name; both answer the same [`View`](super::body::View).
//!
//! Must not touch: the store or the zones directly (changes go through the keeper,
//! reads through the served zones), or the rule of which routes calls use (that is
//! [`super::routed`]).

use super::body::{self, NumberBody, Subject, decode_json, parse_e164, read_body, require_json};
use super::offload::blocking;
use super::problem::{FieldError, Problem};
use super::routed::Routed;
use super::state::{AdminState, Shared};
use crate::keeper::EditError;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The path parameter naming a number, and the one naming a prefix route.
pub(super) const E164: &str = "e164";
const E164PREFIX: &str = "e164prefix";

/// The path parameter that names `subject`, for errors about it.
fn param(subject: &Subject) -> &'static str {
    match subject {
        Subject::Number(_) => E164,
        Subject::Prefix(_) => E164PREFIX,
    }
}

/// The routes of a number, or of a prefix route (its wildcard), as answered.
pub(super) fn routes_view(
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
    let (ttl, naptrs) = zone.naptr_at(&labels).ok_or_else(|| {
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
        &naptrs.iter().map(|r| &r[..]).collect::<Vec<_>>(),
        &mut |rd, result| routed.judge(rd, result),
    ))
}

/// `GET /v1/numbers/{e164}`.
pub(super) async fn get_number(
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

/// `PUT /v1/numbers/{e164}`: the number's routes, replaced.
pub(super) async fn put_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, E164, s.max_digits)?;
    put_routes(&s, Subject::Number(number), req).await
}

/// `DELETE /v1/numbers/{e164}`.
pub(super) async fn delete_number(
    State(s): State<Shared>,
    Path(e164): Path<String>,
) -> Result<Response, Problem> {
    let number = parse_e164(&e164, E164, s.max_digits)?;
    let keeper = s.keeper.clone();
    blocking(E164, move || keeper.set_number(&number, None)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/prefixes/{e164prefix}`.
pub(super) async fn get_prefix(
    State(s): State<Shared>,
    Path(p): Path<String>,
) -> Result<Response, Problem> {
    let prefix = parse_e164(&p, E164PREFIX, s.max_digits)?;
    let view = routes_view(&s, Subject::Prefix(prefix), &mut Routed::now(&s.router))?;
    Ok(axum::Json(view).into_response())
}

/// `PUT /v1/prefixes/{e164prefix}`: the prefix route, replaced.
pub(super) async fn put_prefix(
    State(s): State<Shared>,
    Path(p): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let prefix = parse_e164(&p, E164PREFIX, s.max_digits)?;
    put_routes(&s, Subject::Prefix(prefix), req).await
}

/// `DELETE /v1/prefixes/{e164prefix}`.
pub(super) async fn delete_prefix(
    State(s): State<Shared>,
    Path(p): Path<String>,
) -> Result<Response, Problem> {
    let prefix = parse_e164(&p, E164PREFIX, s.max_digits)?;
    let keeper = s.keeper.clone();
    blocking(E164PREFIX, move || keeper.set_prefix(&prefix, None)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
