//! Whole zones (SPEC §7, §12): `GET /v1/zones` (origin, serial, records, primary,
//! secondary or catalog), `GET /v1/zones/{origin}` (the master file, `text/dns`), `PUT`
//! (a replacement, or a new zone when none of that origin is served; checked whole
//! before it is committed) and `DELETE` (a zone created through the API).
//!
//! Must not touch: the store or the zones directly (the keeper replaces; reads are of
//! the served zones).

use super::body::{read_body, require_type};
use super::offload::bulk;
use super::problem::{FieldError, Problem};
use super::state::{AdminState, Shared};
use crate::keeper::ZoneError;
use crate::keeper::transfers::TransferRecord;
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
            let last = s.keeper.transfers().last(&z.origin);
            json!({
                "origin": &*z.origin_text,
                "serial": z.soa.serial,
                "records": z.stats.records,
                "type": zone_type(&s, &z.origin),
                "last_transfer_in": last.inbound.as_ref().map(transfer_json),
                "last_transfer_out": last.outbound.as_ref().map(transfer_json),
            })
        })
        .collect();
    axum::Json(json!({"items": items})).into_response()
}

/// A zone's last transfer one way, as `GET /v1/zones` shows it.
fn transfer_json(t: &TransferRecord) -> serde_json::Value {
    json!({
        "type": t.kind,
        "result": if t.ok { "ok" } else { "failed" },
        "serial": t.serial,
        "peer": t.peer.map(|p| p.to_string()),
        "at": rfc3339(t.at),
    })
}

/// `2026-12-05T00:11:21Z`: a time in UTC as RFC 3339 writes it (whole seconds).
fn rfc3339(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::zone::starter::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// How the zone is served: `secondary` (transferred from its primary), `catalog` (the
/// catalog zone enroute keeps) or `primary`.
fn zone_type(s: &AdminState, origin: &Name) -> &'static str {
    if s.keeper.is_secondary(origin) {
        "secondary"
    } else if s.keeper.is_catalog(origin) {
        "catalog"
    } else {
        "primary"
    }
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

/// `PUT /v1/zones/{origin}`: replaces the zone with the master file in the body (200),
/// or creates it when no zone of that origin is served (201, SPEC §12).
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
    let put = bulk(move || keeper.put_zone(&o, &bytes))
        .await?
        .map_err(zone_problem)?;
    let zone = served(&s, &origin);
    let records = zone.as_ref().map_or(0, |z| z.stats.records);
    let origin = zone.map_or(origin.to_string(), |z| z.origin_text.to_string());
    let body = axum::Json(json!({"origin": &origin, "serial": put.serial, "records": records}));
    if put.created {
        let location = format!("/v1/zones/{origin}");
        return Ok((StatusCode::CREATED, [(header::LOCATION, location)], body).into_response());
    }
    Ok(body.into_response())
}

/// `DELETE /v1/zones/{origin}`: deletes a zone created through the API (204); a
/// configured zone, a secondary or the catalog is 409, an unknown origin 404.
pub(super) async fn delete_zone(
    State(s): State<Shared>,
    Path(origin): Path<String>,
) -> Result<Response, Problem> {
    let origin = parse_origin(&origin)?;
    let keeper = s.keeper.clone();
    bulk(move || keeper.delete_zone(&origin))
        .await?
        .map_err(zone_problem)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The answer to a failed whole-zone change.
fn zone_problem(e: ZoneError) -> Problem {
    match e {
        ZoneError::Conflict(m) => Problem::new(StatusCode::CONFLICT, m),
        ZoneError::Invalid(m) => FieldError {
            line: None,
            field: "origin".into(),
            detail: m,
        }
        .into(),
        ZoneError::Edit(e) => Problem::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_are_written_as_rfc3339_in_utc() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_796_429_481)), "2026-12-05T00:11:21Z");
        assert_eq!(rfc3339(at(4_107_542_399)), "2100-02-28T23:59:59Z");
    }
}
