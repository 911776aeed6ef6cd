//! The NDJSON import format (SPEC §7, §13): one number a line, as `PUT` takes it, with
//! its `"number"`; `{"number": "+…", "delete": true}` deletes the number. Blank lines
//! are skipped.
//!
//! Owns: reading an NDJSON body as a stream (one line at a time) into the keeper's
//! [`Stager`], and its errors and warnings by line.
//!
//! Must not touch: how numbers are staged or found in their zones (the stager's), HTTP.

use super::parsed::{ImportErrors, Warnings, staged_error};
use crate::admin::body::{NumberBody, decode_json, parse_e164};
use crate::admin::problem::FieldError;
use crate::admin::routed::Judge;
use crate::keeper::Routes;
use crate::keeper::staged::Stager;
use std::io::BufRead;

/// Parses `application/x-ndjson` as it is read. Lines count from 1. After the first
/// error the lines are still checked one by one (every error counted), but no longer
/// kept. A read error (the upload broke off) ends the parse.
pub fn parse_ndjson(
    mut body: impl BufRead,
    max_digits: usize,
    routed: &mut Judge<'_>,
    stager: &mut Stager<'_>,
) -> Result<Warnings, ImportErrors> {
    let mut warnings = Warnings::default();
    let mut errs = ImportErrors::default();
    let mut line = Vec::new();
    let mut line_no = 0;
    loop {
        line.clear();
        match body.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => line_no += 1,
            Err(e) => {
                errs.push(FieldError::new("body", e.to_string()));
                break;
            }
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let staged = parse_line(&line, max_digits, routed).and_then(|(number, routes, said)| {
            for w in said {
                warnings.push(format!("line {line_no}: {w}"));
            }
            match errs.total {
                0 => stager
                    .add(
                        line_no,
                        &number,
                        routes.as_ref().map(|r| (r.ttl, &r.naptrs[..])),
                    )
                    .map_err(|e| vec![staged_error(e)]),
                _ => Ok(()),
            }
        });
        if let Err(list) = staged {
            list.into_iter().for_each(|mut e| {
                e.line.get_or_insert(line_no);
                errs.push(e);
            });
        }
    }
    match errs.total {
        0 => Ok(warnings),
        _ => Err(errs),
    }
}

/// A line's number, its routes (`None`: a delete line) and warnings.
type Line = (String, Option<Routes>, Vec<String>);

/// One line: its number, routes and warnings, or its errors (their line left to the
/// caller).
fn parse_line(
    line: &[u8],
    max_digits: usize,
    routed: &mut Judge<'_>,
) -> Result<Line, Vec<FieldError>> {
    let mut parsed: NumberBody = decode_json(line).map_err(|e| vec![e])?;
    let number = match parsed.number.as_deref() {
        Some(n) => parse_e164(n, "number", max_digits).map_err(|e| vec![e])?,
        None => {
            return Err(vec![FieldError::new(
                "number",
                "each line needs \"number\"",
            )]);
        }
    };
    match parsed.delete.take() {
        Some(true) if parsed.routes.is_empty() && parsed.ttl.is_none() => {
            return Ok((number, None, Vec::new()));
        }
        Some(true) => {
            return Err(vec![FieldError::new(
                "delete",
                "a delete line has only \"number\" and \"delete\"",
            )]);
        }
        Some(false) | None => {}
    }
    let checked = parsed.to_routes("", routed)?;
    Ok((number, Some(checked.routes), checked.warnings))
}
