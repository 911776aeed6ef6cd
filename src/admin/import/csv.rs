//! The CSV import format (SPEC §7, §13): a header naming the columns among
//! `number,uri,order,preference,ttl,service` (`number` and `uri` required), then one
//! route a row; a number's rows, wherever they are, replace its routes in row order,
//! and a number whose only row has an empty `uri` is deleted.
//!
//! Owns: reading a CSV body as a stream (one record at a time) into the keeper's
//! [`Stager`], and its errors and warnings by line.
//!
//! Must not touch: how numbers are staged, found in their zones or merged across rows
//! (the stager's), HTTP.

use super::parsed::{ImportErrors, Warnings, staged_error};
use crate::admin::body::{DEFAULT_TTL, encode, parse_e164};
use crate::admin::problem::FieldError;
use crate::admin::routed::{Judge, usable};
use crate::keeper::staged::Stager;
use crate::naptr::route::{DEFAULT_ORDER, DEFAULT_PREFERENCE, Route};
use std::io::{BufRead, BufReader, Read};

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses `text/csv` as it is read: a header naming columns among
/// `number,uri,order,preference,ttl,service` (`number` and `uri` required), one route
/// per row; a number's rows (wherever they are) replace its routes, in row order; a
/// number's only row with an empty `uri` deletes it. A UTF-8 byte-order mark before
/// the header (spreadsheets write one) is skipped. Each row goes to `stager`, which
/// finds its zone and checks a number's consecutive rows together (one TTL, a delete
/// row alone); rows of a number far apart are checked when the stager finishes. After
/// the first error each row is still checked by itself (every such error counted), but
/// no longer staged, so the checks across rows stop there. A read error (the upload
/// broke off) ends the parse.
pub fn parse_csv(
    body: impl Read,
    max_digits: usize,
    routed: &mut Judge<'_>,
    stager: &mut Stager<'_>,
) -> Result<Warnings, ImportErrors> {
    let mut body = BufReader::new(body);
    if body.fill_buf().is_ok_and(|b| b.starts_with(BOM)) {
        body.consume(BOM.len());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body);
    let columns = Columns::read(&mut reader)?;
    let mut warnings = Warnings::default();
    let mut errs = ImportErrors::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                errs.push(FieldError::new("body", e.to_string()));
                break;
            }
            Err(e) => {
                errs.push(FieldError {
                    line: e.position().map(|p| p.line() as usize),
                    field: String::new(),
                    detail: e.to_string(),
                });
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        let keep = errs.total == 0;
        let row = columns
            .row(&record, max_digits)
            .and_then(|(number, route, ttl)| {
                let rdata = match &route {
                    Some(route) => Some(checked_route(route, line, routed, &mut warnings)?),
                    None => None,
                };
                let ttl = ttl.unwrap_or(DEFAULT_TTL);
                if ttl > i32::MAX as u32 {
                    return Err(FieldError::new("ttl", "must be at most 2147483647"));
                }
                if keep {
                    let routes = rdata.as_ref().map(|rd| (ttl, std::slice::from_ref(rd)));
                    stager.add(line, &number, routes).map_err(staged_error)?;
                }
                Ok(())
            });
        if let Err(mut e) = row {
            e.line.get_or_insert(line);
            errs.push(e);
        }
    }
    match errs.total {
        0 => Ok(warnings),
        _ => Err(errs),
    }
}

/// The columns of a CSV import, in the order [`Columns`] holds their places.
const COLUMNS: [&str; 6] = ["number", "uri", "order", "preference", "ttl", "service"];
const NUMBER: usize = 0;
const URI: usize = 1;
const ORDER: usize = 2;
const PREFERENCE: usize = 3;
const TTL: usize = 4;
const SERVICE: usize = 5;

/// Where each of [`COLUMNS`] is in a row (`None`: not in the header).
struct Columns([Option<usize>; 6]);

impl Columns {
    /// Reads the header: every column known and named once, `number` and `uri` there;
    /// else the errors, all on line 1.
    fn read<R: Read>(reader: &mut csv::Reader<R>) -> Result<Columns, ImportErrors> {
        let mut errs = ImportErrors::default();
        let header = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                errs.push(FieldError {
                    line: Some(1),
                    field: "header".into(),
                    detail: e.to_string(),
                });
                return Err(errs);
            }
        };
        let mut col = [None; 6];
        for (i, name) in header.iter().enumerate() {
            match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(name)) {
                Some(k) if col[k].is_none() => col[k] = Some(i),
                Some(_) => errs.push(FieldError {
                    line: Some(1),
                    field: name.to_string(),
                    detail: "column named twice".into(),
                }),
                None => errs.push(FieldError {
                    line: Some(1),
                    field: name.to_string(),
                    detail: format!("unknown column; columns are {}", COLUMNS.join(",")),
                }),
            }
        }
        for req in [NUMBER, URI] {
            if col[req].is_none() {
                errs.push(FieldError {
                    line: Some(1),
                    field: COLUMNS[req].into(),
                    detail: "required column missing from the header".into(),
                });
            }
        }
        if errs.total > 0 {
            return Err(errs);
        }
        Ok(Columns(col))
    }

    /// One row as read: its number, its route (`None`: an empty `uri`, a delete) and the
    /// TTL it gives, or the first field at fault (its line left to the caller).
    fn row(
        &self,
        record: &csv::ByteRecord,
        max_digits: usize,
    ) -> Result<(String, Option<Route>, Option<u32>), FieldError> {
        let number = match self.raw(record, NUMBER).map(std::str::from_utf8) {
            Some(Ok(n)) => parse_e164(n, "number", max_digits)?,
            _ => return Err(FieldError::new("number", "not UTF-8")),
        };
        let field = |k: usize| -> Option<&str> {
            self.0[k]
                .and_then(|i| record.get(i))
                .and_then(|b| std::str::from_utf8(b).ok())
                .filter(|s| !s.is_empty())
        };
        let num = |k: usize, name: &str| -> Result<Option<u32>, FieldError> {
            field(k)
                .map(|v| {
                    v.parse::<u32>()
                        .map_err(|_| FieldError::new(name, format!("{v:?} is not a number")))
                })
                .transpose()
        };
        let small = |v: Option<u32>, name: &str, dflt: u16| -> Result<u16, FieldError> {
            match v {
                None => Ok(dflt),
                Some(v) => u16::try_from(v)
                    .map_err(|_| FieldError::new(name, format!("{v} is above 65535"))),
            }
        };
        let uri = match self.raw(record, URI).map(std::str::from_utf8) {
            Some(Ok("")) => return Ok((number, None, None)),
            Some(Ok(uri)) => uri,
            _ => return Err(FieldError::new("uri", "not UTF-8")),
        };
        let route = Route {
            uri: Some(uri.to_string()),
            service: field(SERVICE).map(str::to_string),
            order: small(num(ORDER, "order")?, "order", DEFAULT_ORDER)?,
            preference: small(
                num(PREFERENCE, "preference")?,
                "preference",
                DEFAULT_PREFERENCE,
            )?,
            ..Route::default()
        };
        Ok((number, Some(route), num(TTL, "ttl")?))
    }

    /// Required column `k` of `record` as it is (empty or not).
    fn raw<'r>(&self, record: &'r csv::ByteRecord, k: usize) -> Option<&'r [u8]> {
        record.get(self.0[k].unwrap_or(0))
    }
}

/// A row's route as a record, when calls can use it or the row named its service (the
/// warning kept as `line N: …`).
fn checked_route(
    route: &Route,
    line: usize,
    routed: &mut Judge<'_>,
    warnings: &mut Warnings,
) -> Result<Vec<u8>, FieldError> {
    let rdata = encode(route, "")?;
    if let Some(w) = usable(route, &rdata, "", routed)? {
        warnings.push(format!("line {line}: {w}"));
    }
    Ok(rdata)
}
