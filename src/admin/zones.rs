//! Whole zones (SPEC §7): `GET /v1/zones` (origin, serial, records, primary or
//! secondary), `GET /v1/zones/{origin}` (the master file, `text/dns`) and `PUT` (a
//! replacement, checked whole before it is committed).
//!
//! Must not touch: the store or the zones directly (the keeper replaces; reads are of
//! the served zones).

use super::body::{read_body, require_type};
use super::offload::bulk;
use super::problem::{FieldError, Problem};
use super::state::{AdminState, Shared};
use crate::name::Name;
use crate::zone::Zone;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `GET /v1/zones`: every served zone, primary or secondary.
pub(super) async fn list_zones(State(s): State<Shared>) -> Response {
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

/// The served zone named `origin` (any case).
fn served(s: &AdminState, origin: &Name) -> Option<Arc<Zone>> {
    s.keeper
        .zones()
        .load()
        .iter()
        .find(|z| z.origin.eq_ignore_case(origin))
        .cloned()
}

/// A zone's origin from the path, with or without its final dot.
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

/// `GET /v1/zones/{origin}`: the zone as a master file.
pub(super) async fn get_zone(
    State(s): State<Shared>,
    Path(origin): Path<String>,
) -> Result<Response, Problem> {
    let origin = parse_origin(&origin)?;
    let zone = served(&s, &origin)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no zone {origin}")))?;
    let text = tokio::task::spawn_blocking(move || zone.to_master())
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/dns")], text).into_response())
}

/// `PUT /v1/zones/{origin}`: replaces the zone with the master file in the body.
pub(super) async fn put_zone(
    State(s): State<Shared>,
    Path(origin): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let origin = parse_origin(&origin)?;
    let (headers, bytes) = read_body(&s, req).await?;
    require_type(&headers, &["text/dns", "text/plain"], |ct| {
        format!("a zone is text/dns (RFC 4027), not {ct:?}")
    })?;
    let keeper = s.keeper.clone();
    let o = origin.clone();
    let serial = bulk(move || keeper.replace_zone(&o, &bytes))
        .await?
        .map_err(Problem::from)?;
    let records = served(&s, &origin).map_or(0, |z| z.stats.records);
    Ok(
        axum::Json(json!({"origin": origin.to_string(), "serial": serial, "records": records}))
            .into_response(),
    )
}
