//! `POST /v1/numbers:import` (SPEC §10.7): a CSV or NDJSON body of numbers, checked
//! whole before anything is written, then committed in one transaction; the answer
//! counts what was written, or lists the first errors with their lines.
//!
//! Owns: the two import formats, read into the keeper's items: NDJSON (one number body
//! a line, as `PUT` takes it, with its `number`) and CSV (a header naming the columns,
//! one route a row, a number's rows gathered in row order); errors and warnings named
//! by line and capped at [`MAX_ERRORS`].
//!
//! Must not touch: the store or the zones directly (the keeper imports).

use super::body::{
    DEFAULT_TTL, MAX_ROUTES, NumberBody, decode_json, encode, parse_e164, read_body, require_type,
};
use super::offload::bulk;
use super::problem::{FieldError, Problem};
use super::routed::{Judge, Routed, usable};
use super::state::Shared;
use crate::keeper::{ImportItem, Routes};
use crate::naptr::route::{DEFAULT_ORDER, DEFAULT_PREFERENCE, Route};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// Errors listed in one answer; the rest are counted.
pub const MAX_ERRORS: usize = 100;

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
            parse_csv(&bytes, max_digits, &mut routed)
        } else {
            parse_ndjson(&bytes, max_digits, &mut routed)
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
fn refused(errs: ImportErrors) -> Problem {
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

/// What one import says about its lines: at most [`MAX_ERRORS`] listed, all counted.
#[derive(Debug)]
pub struct Capped<T> {
    pub list: Vec<T>,
    pub total: usize,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            list: Vec::new(),
            total: 0,
        }
    }
}

impl<T> Capped<T> {
    fn push(&mut self, item: T) {
        self.total += 1;
        if self.list.len() < MAX_ERRORS {
            self.list.push(item);
        }
    }
}

/// Warnings of an import, each `line N: …`.
pub type Warnings = Capped<String>;

/// A bulk import that failed: its errors.
pub type ImportErrors = Capped<FieldError>;

/// An import as parsed: the numbers to write and the warnings (each `line N: …`).
#[derive(Debug)]
pub struct Import {
    pub items: Vec<ImportItem>,
    pub warnings: Warnings,
}

/// Parses `application/x-ndjson`: one number body with `"number"` per line; blank lines
/// are skipped. Lines count from 1.
pub fn parse_ndjson(
    body: &[u8],
    max_digits: usize,
    routed: &mut Judge<'_>,
) -> Result<Import, ImportErrors> {
    let mut items = Vec::new();
    let mut warnings = Warnings::default();
    let mut errs = ImportErrors::default();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line_no = i + 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let at = |mut e: FieldError| {
            e.line = Some(line_no);
            e
        };
        let parsed: NumberBody = match decode_json(line) {
            Ok(b) => b,
            Err(e) => {
                errs.push(at(e));
                continue;
            }
        };
        let number = match parsed.number.as_deref() {
            Some(n) => match parse_e164(n, "number", max_digits) {
                Ok(n) => n,
                Err(e) => {
                    errs.push(at(e));
                    continue;
                }
            },
            None => {
                errs.push(at(FieldError::new("number", "each line needs \"number\"")));
                continue;
            }
        };
        if let Some(first) = seen.insert(number.clone(), line_no) {
            errs.push(at(FieldError::new(
                "number",
                format!("{number} is also on line {first}; give each number once"),
            )));
            continue;
        }
        match parsed.to_routes("", routed) {
            Ok(checked) => {
                for w in checked.warnings {
                    warnings.push(format!("line {line_no}: {w}"));
                }
                items.push(ImportItem {
                    line: line_no,
                    number,
                    routes: checked.routes,
                });
            }
            Err(list) => list.into_iter().for_each(|e| errs.push(at(e))),
        }
    }
    if errs.total > 0 {
        Err(errs)
    } else {
        Ok(Import { items, warnings })
    }
}

/// Parses `text/csv` with a header naming columns among
/// `number,uri,order,preference,ttl,service` (`number` and `uri` required): one route per
/// row; a number's rows (wherever they are) replace its routes, in row order.
pub fn parse_csv(
    body: &[u8],
    max_digits: usize,
    routed: &mut Judge<'_>,
) -> Result<Import, ImportErrors> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body);
    let columns = Columns::read(&mut reader)?;
    let mut numbers = Numbers::default();
    let mut warnings = Warnings::default();
    let mut errs = ImportErrors::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                errs.push(FieldError {
                    line: e.position().map(|p| p.line() as usize),
                    field: String::new(),
                    detail: e.to_string(),
                });
                if errs.total > MAX_ERRORS {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        let row = columns
            .row(&record, max_digits)
            .and_then(|(number, route, ttl)| {
                let rdata = checked_route(&route, line, routed, &mut warnings)?;
                numbers.add(line, number, ttl.unwrap_or(DEFAULT_TTL), rdata)
            });
        if let Err(mut e) = row {
            e.line = Some(line);
            errs.push(e);
        }
    }
    if errs.total > 0 {
        Err(errs)
    } else {
        Ok(Import {
            items: numbers.items,
            warnings,
        })
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
    fn read(reader: &mut csv::Reader<&[u8]>) -> Result<Columns, ImportErrors> {
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

    /// One row as read: its number, its route and the TTL it gives, or the first field
    /// at fault (its line left to the caller).
    fn row(
        &self,
        record: &csv::ByteRecord,
        max_digits: usize,
    ) -> Result<(String, Route, Option<u32>), FieldError> {
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
        let route = Route {
            uri: Some(
                self.raw(record, URI)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or_default()
                    .to_string(),
            ),
            service: field(SERVICE).map(str::to_string),
            order: small(num(ORDER, "order")?, "order", DEFAULT_ORDER)?,
            preference: small(
                num(PREFERENCE, "preference")?,
                "preference",
                DEFAULT_PREFERENCE,
            )?,
            ..Route::default()
        };
        Ok((number, route, num(TTL, "ttl")?))
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

/// The numbers of a CSV import so far, each with its rows' routes in row order.
#[derive(Default)]
struct Numbers {
    items: Vec<ImportItem>,
    /// Where each number is in `items`.
    index: HashMap<String, usize>,
}

impl Numbers {
    /// Adds a row's route to its number: the first row of a number makes its item, and
    /// every row of it gives the same TTL (RFC 2181 §5.2) and at most [`MAX_ROUTES`] rows.
    fn add(
        &mut self,
        line: usize,
        number: String,
        ttl: u32,
        rdata: Vec<u8>,
    ) -> Result<(), FieldError> {
        if ttl > i32::MAX as u32 {
            return Err(FieldError::new("ttl", "must be at most 2147483647"));
        }
        match self.index.get(&number) {
            Some(&k) => {
                let item = &mut self.items[k];
                if item.routes.ttl != ttl {
                    return Err(FieldError::new(
                        "ttl",
                        format!(
                            "{ttl} differs from {} given for {number} on line {}; a number's routes share one TTL (RFC 2181 §5.2)",
                            item.routes.ttl, item.line
                        ),
                    ));
                }
                if item.routes.naptrs.len() >= MAX_ROUTES {
                    return Err(FieldError::new(
                        "number",
                        format!("more than {MAX_ROUTES} routes for {number}"),
                    ));
                }
                item.routes.naptrs.push(rdata);
            }
            None => {
                self.index.insert(number.clone(), self.items.len());
                self.items.push(ImportItem {
                    line,
                    number,
                    routes: Routes {
                        ttl,
                        naptrs: vec![rdata],
                    },
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::routed::judges::{all, sip_only};

    #[test]
    fn csv_groups_rows_and_reports_lines() {
        let csv = "number,uri,order,preference,ttl\n+441632960001,sip:a@x,10,10,60\n+441632960002,sip:b@x,,,\n+441632960001,sip:c@x,20,10,60\n";
        let items = parse_csv(csv.as_bytes(), 15, &mut all).unwrap().items;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].routes.naptrs.len(), 2);
        assert_eq!(items[1].routes.ttl, DEFAULT_TTL);
        let bad = "number,uri\n+441632960001,sip:a@x\n4416,sip:b@x\n+441632960003,nocolon\n";
        let e = parse_csv(bad.as_bytes(), 15, &mut all).unwrap_err();
        let lines: Vec<_> = e.list.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(lines, vec![(Some(3), "number"), (Some(4), "uri")]);
        let e = parse_csv(b"number,url\n", 15, &mut all).unwrap_err();
        assert_eq!(e.list[0].field, "url");
    }

    #[test]
    fn ndjson_lines() {
        let body = b"{\"number\":\"+441632960001\",\"routes\":[{\"uri\":\"sip:a@x\"}]}\n\n{\"number\":\"+441632960001\",\"routes\":[{\"uri\":\"sip:a@x\"}]}\n{\"routes\":[]}\n";
        let e = parse_ndjson(body, 15, &mut all).unwrap_err();
        let lines: Vec<_> = e.list.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(3), Some(4)]);
    }

    #[test]
    fn imports_name_the_line_of_an_unrouted_service() {
        let csv = "number,uri,service\n+441632960001,sip:a@x,\n+441632960002,https://x.example/,\n";
        let e = parse_csv(csv.as_bytes(), 15, &mut sip_only).unwrap_err();
        assert_eq!((e.list[0].line, e.list[0].field.as_str()), (Some(3), "uri"));
        let csv = csv.replace("x.example/,", "x.example/,E2U+web:https");
        let ok = parse_csv(csv.as_bytes(), 15, &mut sip_only).unwrap();
        assert_eq!(ok.warnings.total, 1);
        assert!(ok.warnings.list[0].starts_with("line 3: service: E2U+web:https"));
        let nd = b"{\"number\":\"+441632960001\",\"routes\":[{\"pstn\":true}]}\n";
        let e = parse_ndjson(nd, 15, &mut sip_only).unwrap_err();
        assert_eq!(
            (e.list[0].line, e.list[0].field.as_str()),
            (Some(1), "routes[0].pstn")
        );
    }
}
