//! The NDJSON import format (SPEC §7, §13): one number a line, as `PUT` takes it, with
//! its `"number"`; `{"number": "+…", "delete": true}` deletes the number. Blank lines
//! are skipped.
//!
//! Owns: reading an NDJSON body as a stream (one line at a time) into [`Import`]
//! items, and its errors and warnings by line.
//!
//! Must not touch: the keeper (the handler hands the items over), HTTP.

use super::parsed::{Import, ImportErrors, Seen, Warnings};
use crate::admin::body::{NumberBody, decode_json, parse_e164};
use crate::admin::problem::FieldError;
use crate::admin::routed::Judge;
use crate::keeper::ImportItem;
use std::io::BufRead;

/// Parses `application/x-ndjson` as it is read. Lines count from 1. After the first
/// error the lines are still checked one by one (every error counted), but no longer
/// kept. A read error (the upload broke off) ends the parse.
pub fn parse_ndjson(
    mut body: impl BufRead,
    max_digits: usize,
    routed: &mut Judge<'_>,
) -> Result<Import, ImportErrors> {
    let mut items = Vec::new();
    let mut warnings = Warnings::default();
    let mut errs = ImportErrors::default();
    let mut seen = Seen::default();
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
        match parse_line(&line, max_digits, routed, &mut seen, line_no) {
            Ok((item, line_warnings)) => {
                for w in line_warnings {
                    warnings.push(format!("line {line_no}: {w}"));
                }
                if errs.total == 0 {
                    items.push(item);
                }
            }
            Err(list) => list.into_iter().for_each(|mut e| {
                e.line = Some(line_no);
                errs.push(e);
            }),
        }
    }
    if errs.total > 0 {
        Err(errs)
    } else {
        Ok(Import { items, warnings })
    }
}

/// One line: its item and warnings, or its errors (their line left to the caller).
/// `seen` maps each number to the line that gave it (a number is given once).
fn parse_line(
    line: &[u8],
    max_digits: usize,
    routed: &mut Judge<'_>,
    seen: &mut Seen,
    line_no: usize,
) -> Result<(ImportItem, Vec<String>), Vec<FieldError>> {
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
    if let Some(first) = seen.insert(&number, line_no) {
        return Err(vec![FieldError::new(
            "number",
            format!("{number} is also on line {first}; give each number once"),
        )]);
    }
    match parsed.delete.take() {
        Some(true) if parsed.routes.is_empty() && parsed.ttl.is_none() => {
            let item = ImportItem {
                line: line_no,
                number,
                routes: None,
            };
            return Ok((item, Vec::new()));
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
    let item = ImportItem {
        line: line_no,
        number,
        routes: Some(checked.routes),
    };
    Ok((item, checked.warnings))
}
