//! `POST /v1/numbers:import` (SPEC §7, §13): a CSV or NDJSON body of numbers, read as
//! a stream and checked line by line as it arrives, then committed in one transaction,
//! all or nothing; the answer counts what was written and deleted, or lists the first
//! errors with their lines.
//!
//! Owns: the route's query (`mode=merge|replace`, `zone`), one import at a time, the
//! hand-over of the body to the bulk thread (`stream.rs`), the two formats (`csv.rs`,
//! `ndjson.rs`) read into the keeper's stager (`parsed.rs`: errors and warnings), and
//! the answer: errors and warnings named by line, at most `parsed::MAX_ERRORS` of each
//! listed. An upload that
//! breaks off, stalls or is cut by the client commits nothing.
//!
//! Must not touch: the store or the zones directly (the keeper imports).

mod csv;
mod ndjson;
mod parsed;
mod stream;

pub use csv::parse_csv;
pub use ndjson::parse_ndjson;
use parsed::{ImportErrors, MAX_ERRORS, Warnings, staged_errors};

use super::body::MAX_ROUTES;
use super::body::require_type;
use super::offload::bulk;
use super::problem::{FieldError, Problem};
use super::routed::Routed;
use super::state::Shared;
use crate::keeper::staged::{Repeats, Staged};
use crate::keeper::{ImportCounts, ImportOptions};
use crate::name::Name;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stream::{BodyReader, Ending, QUEUED_CHUNKS, feed};

/// `POST /v1/numbers:import` (SPEC §7, §13). Imports run one at a time: a second one
/// waits (its upload held back by TCP) until the first has finished, its commit
/// included, even when its client went away.
pub(super) async fn import(State(s): State<Shared>, req: Request) -> Result<Response, Problem> {
    let (parts, body) = req.into_parts();
    let csv = require_type(
        &parts.headers,
        &["text/csv", "application/x-ndjson"],
        |ct| format!("import takes text/csv or application/x-ndjson, not {ct:?}"),
    )? == 0;
    let options = read_options(parts.uri.query())?;
    if let Some(zone) = &options.zone {
        // Before the upload, not after hours of it.
        s.keeper.import_target(zone).map_err(Problem::from)?;
    }
    let one_at_a_time = s.importing.clone().lock_owned().await;
    let (to_parser, from_handler) = tokio::sync::mpsc::channel(QUEUED_CHUNKS);
    let keeper = s.keeper.clone();
    let max_digits = s.max_digits;
    let routed = Routed::now(&s.router);
    let work = bulk(move || {
        let _one_at_a_time = one_at_a_time;
        // The upload is read and checked on a thread that runs only when a core is
        // free (most of a large import's CPU, and no lock held); the commit, which
        // holds the keeper's lock, here at nice 10, so that it cannot stall behind a
        // busy machine's calls while API edits wait for it.
        let upload = Upload {
            keeper: &keeper,
            options: &options,
            csv,
            max_digits,
            routed,
        };
        let staged = std::thread::scope(|scope| {
            let parser = std::thread::Builder::new()
                .name("enroute-parse".into())
                .spawn_scoped(scope, move || {
                    crate::keeper::idle_this_thread();
                    upload.stage(from_handler)
                });
            match parser.map(|p| p.join()) {
                Ok(Ok(staged)) => staged,
                Ok(Err(_)) => Err(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the upload's check did not finish",
                )),
                Err(e) => Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot start the work: {e}"),
                )),
            }
        });
        let (staged, warnings) = staged?;
        let counts = keeper.import(staged).map_err(Problem::from)?;
        Ok::<_, Problem>((counts, warnings))
    });
    // The body is read here while the bulk thread parses it; if the client goes away,
    // this future is dropped with the sender, and the parser sees a broken upload.
    let (_, outcome) = tokio::join!(feed(body, to_parser), work);
    let (counts, warnings) = outcome??;
    Ok(axum::Json(Imported::new(counts, warnings)).into_response())
}

/// What reading an upload into the keeper's stager needs.
struct Upload<'a> {
    keeper: &'a crate::keeper::Keeper,
    options: &'a ImportOptions,
    /// CSV, else NDJSON.
    csv: bool,
    max_digits: usize,
    routed: Routed,
}

impl Upload<'_> {
    /// Reads the body's chunks as they come and stages every line: the staged zones
    /// and the warnings, or the problem that refuses the import (its errors by line,
    /// or the upload cut off).
    fn stage(
        self,
        chunks: tokio::sync::mpsc::Receiver<stream::Piece>,
    ) -> Result<(Staged, Warnings), Problem> {
        let Upload {
            keeper,
            options,
            csv,
            max_digits,
            routed,
        } = self;
        let mut routed = |rd: &[u8], result: Option<&str>| routed.judge(rd, result);
        let repeats = match csv {
            true => Repeats::Append,
            false => Repeats::Refuse,
        };
        let mut stager = keeper
            .stager(options, repeats, MAX_ROUTES)
            .map_err(Problem::from)?;
        let mut reader = BodyReader::new(chunks, csv);
        let parsed = if csv {
            parse_csv(&mut reader, max_digits, &mut routed, &mut stager)
        } else {
            let buffered = std::io::BufReader::with_capacity(64 << 10, &mut reader);
            parse_ndjson(buffered, max_digits, &mut routed, &mut stager)
        };
        if let Some(ending) = reader.ending() {
            return Err(cut_off(ending));
        }
        let warnings = parsed.map_err(refused)?;
        let staged = stager
            .finish(MAX_ERRORS)
            .map_err(|e| refused(staged_errors(e)))?;
        Ok((staged, warnings))
    }
}

/// The query: `mode` (`merge`, the default, or `replace`) and `zone` (an origin: the
/// zone the import is for; `replace` needs it: the zone whose numbers it replaces).
/// Another parameter is refused, so that a misspelt one does not go unnoticed.
fn read_options(query: Option<&str>) -> Result<ImportOptions, Problem> {
    let bad = |field: &str, detail: String| {
        Problem::from(FieldError {
            line: None,
            field: field.into(),
            detail,
        })
    };
    let mut options = ImportOptions::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "mode" if v == "merge" => options.replace = false,
            "mode" if v == "replace" => options.replace = true,
            "mode" => return Err(bad("mode", format!("{v:?} is not merge or replace"))),
            "zone" => {
                let origin = if v.ends_with('.') {
                    v.to_string()
                } else {
                    format!("{v}.")
                };
                options.zone = Some(
                    Name::from_text(&origin)
                        .map_err(|e| bad("zone", format!("{v:?} is not a zone origin: {e}")))?,
                );
            }
            other => {
                return Err(bad(
                    other,
                    "unknown parameter; an import takes mode and zone".into(),
                ));
            }
        }
    }
    if options.replace && options.zone.is_none() {
        return Err(bad(
            "zone",
            "mode=replace needs zone=ORIGIN: the zone whose numbers the upload replaces".into(),
        ));
    }
    Ok(options)
}

/// The answer to an upload that did not arrive whole.
fn cut_off(ending: &Ending) -> Problem {
    let status = match ending {
        Ending::Broken(_) => StatusCode::BAD_REQUEST,
        Ending::Stalled => StatusCode::REQUEST_TIMEOUT,
        Ending::LineTooLong(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Ending::OpenQuote(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Problem::new(status, format!("{ending}; nothing imported"))
}

/// The answer to an import; warnings (at most 100, `total_warnings` counts them all)
/// when some route was kept that calls never use, or a delete line named a number
/// without routes.
#[derive(serde::Serialize)]
struct Imported {
    numbers: usize,
    routes: usize,
    deleted: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_warnings: Option<usize>,
}

impl Imported {
    fn new(counts: ImportCounts, mut warnings: Warnings) -> Self {
        let listed = counts.absent.len();
        for (line, number) in counts.absent {
            warnings.push(format!(
                "line {line}: {number} has no routes; nothing to delete"
            ));
        }
        warnings.total += counts.absent_total - listed;
        Imported {
            numbers: counts.numbers,
            routes: counts.routes,
            deleted: counts.deleted,
            warnings: warnings.list,
            total_warnings: (warnings.total > 0).then_some(warnings.total),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::body::DEFAULT_TTL;
    use crate::admin::routed::judges::{all, sip_only};
    use crate::keeper::staged::{DELETE, Staged, Stager};
    use crate::keeper::{Keeper, keeper_for_tests};

    /// A keeper of the zone for +441632…, in a store of its own.
    fn keeper() -> (Keeper, tempfile::TempDir) {
        let (keeper, _, dir) = keeper_for_tests("2.3.6.1.4.4.e164.arpa.", "");
        (keeper, dir)
    }

    fn stager(keeper: &Keeper, csv: bool) -> Stager<'_> {
        let repeats = if csv {
            Repeats::Append
        } else {
            Repeats::Refuse
        };
        keeper
            .stager(&ImportOptions::default(), repeats, MAX_ROUTES)
            .unwrap()
    }

    /// Parses `body` (CSV or NDJSON) into a stager: the staged import and its warnings,
    /// or the errors of the parse or of the stager.
    fn parse(
        keeper: &Keeper,
        csv: bool,
        body: &[u8],
        judge: &mut crate::admin::routed::Judge<'_>,
    ) -> Result<(Staged, Warnings), ImportErrors> {
        let mut stager = stager(keeper, csv);
        let warnings = match csv {
            true => parse_csv(body, 15, judge, &mut stager)?,
            false => parse_ndjson(body, 15, judge, &mut stager)?,
        };
        match stager.finish(MAX_ERRORS) {
            Ok(staged) => Ok((staged, warnings)),
            Err(e) => Err(staged_errors(e)),
        }
    }

    /// The staged numbers' `(number, NAPTR count)` (0: a delete), in key order, and the
    /// TTL of each.
    fn numbers(staged: &Staged) -> Vec<(String, usize, Option<u32>)> {
        let zone = &staged.zones[0];
        zone.keyed
            .iter()
            .map(|k| {
                let digits = crate::zone::index::shape::Digits::of_key(k.key);
                let set = staged.shapes.naptr_set(k.shape, digits.as_bytes()).unwrap();
                let text = format!(
                    "+441632{}",
                    String::from_utf8(digits.as_bytes().to_vec()).unwrap()
                );
                let ttl = set.as_ref().map(|s| s.0);
                (text, set.map_or(0, |s| s.1.len()), ttl)
            })
            .collect()
    }

    #[test]
    fn csv_groups_rows_and_reports_lines() {
        let (keeper, _dir) = keeper();
        let csv = "number,uri,order,preference,ttl\n+441632960001,sip:a@x,10,10,60\n+441632960002,sip:b@x,,,\n+441632960001,sip:c@x,20,10,60\n";
        let (staged, _) = parse(&keeper, true, csv.as_bytes(), &mut all).unwrap();
        assert_eq!(
            numbers(&staged),
            [
                ("+441632960001".into(), 2, Some(60)),
                ("+441632960002".into(), 1, Some(DEFAULT_TTL))
            ]
        );
        let bad = "number,uri\n+441632960001,sip:a@x\n4416,sip:b@x\n+441632960003,nocolon\n";
        let e = parse(&keeper, true, bad.as_bytes(), &mut all).unwrap_err();
        let lines: Vec<_> = e.list.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(lines, vec![(Some(3), "number"), (Some(4), "uri")]);
        let e = parse(&keeper, true, &b"number,url\n"[..], &mut all).unwrap_err();
        assert_eq!(e.list[0].field, "url");
        // Rows of a number far apart: one TTL, and a delete row only alone.
        let ttls = "number,uri,ttl\n+441632960001,sip:a@x,60\n+441632960002,sip:b@x,60\n+441632960001,sip:c@x,90\n";
        let e = parse(&keeper, true, ttls.as_bytes(), &mut all).unwrap_err();
        assert_eq!((e.list[0].line, e.list[0].field.as_str()), (Some(4), "ttl"));
        let outside = "number,uri\n+441632960001,sip:a@x\n+4930123,sip:b@x\n";
        let e = parse(&keeper, true, outside.as_bytes(), &mut all).unwrap_err();
        assert_eq!(
            (e.list[0].line, e.list[0].field.as_str()),
            (Some(3), "number")
        );
    }

    #[test]
    fn ndjson_lines() {
        let (keeper, _dir) = keeper();
        let body = b"{\"number\":\"+441632960001\",\"routes\":[{\"uri\":\"sip:a@x\"}]}\n\n{\"number\":\"+441632960001\",\"routes\":[{\"uri\":\"sip:a@x\"}]}\n{\"routes\":[]}\n";
        let e = parse(&keeper, false, &body[..], &mut all).unwrap_err();
        let lines: Vec<_> = e.list.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(3), Some(4)]);
        // Given twice far apart: refused at the later line.
        let body = b"{\"number\":\"+441632960001\",\"routes\":[{\"uri\":\"sip:a@x\"}]}\n{\"number\":\"+441632960002\",\"routes\":[{\"uri\":\"sip:a@x\"}]}\n{\"number\":\"+441632960001\",\"routes\":[{\"uri\":\"sip:b@x\"}]}\n";
        let e = parse(&keeper, false, &body[..], &mut all).unwrap_err();
        assert_eq!(
            (e.list[0].line, e.list[0].field.as_str()),
            (Some(3), "number")
        );
        assert!(e.list[0].detail.contains("also on line 1"), "{:?}", e.list);
    }

    #[test]
    fn imports_name_the_line_of_an_unrouted_service() {
        let (keeper, _dir) = keeper();
        let csv = "number,uri,service\n+441632960001,sip:a@x,\n+441632960002,https://x.example/,\n";
        let e = parse(&keeper, true, csv.as_bytes(), &mut sip_only).unwrap_err();
        assert_eq!((e.list[0].line, e.list[0].field.as_str()), (Some(3), "uri"));
        let csv = csv.replace("x.example/,", "x.example/,E2U+web:https");
        let (_, warnings) = parse(&keeper, true, csv.as_bytes(), &mut sip_only).unwrap();
        assert_eq!(warnings.total, 1);
        assert!(warnings.list[0].starts_with("line 3: service: E2U+web:https"));
        let nd = b"{\"number\":\"+441632960001\",\"routes\":[{\"pstn\":true}]}\n";
        let e = parse(&keeper, false, &nd[..], &mut sip_only).unwrap_err();
        assert_eq!(
            (e.list[0].line, e.list[0].field.as_str()),
            (Some(1), "routes[0].pstn")
        );
    }

    #[test]
    fn deletes_in_csv_and_ndjson() {
        let (keeper, _dir) = keeper();
        let csv = "number,uri\n+441632960001,\n+441632960002,sip:b@x\n";
        let (staged, _) = parse(&keeper, true, csv.as_bytes(), &mut all).unwrap();
        assert_eq!(
            staged.zones[0].keyed[0].shape, DELETE,
            "an empty uri deletes"
        );
        assert_eq!(numbers(&staged)[1].1, 1);
        let mixed = "number,uri\n+441632960001,\n+441632960001,sip:b@x\n";
        let e = parse(&keeper, true, mixed.as_bytes(), &mut all).unwrap_err();
        assert_eq!((e.list[0].line, e.list[0].field.as_str()), (Some(3), "uri"));
        let nd = b"{\"number\":\"+441632960001\",\"delete\":true}\n{\"number\":\"+441632960002\",\"delete\":true,\"routes\":[{\"uri\":\"sip:a@x\"}]}\n";
        let e = parse(&keeper, false, &nd[..], &mut all).unwrap_err();
        assert_eq!(
            (e.list[0].line, e.list[0].field.as_str()),
            (Some(2), "delete")
        );
        let first = &nd[..nd.iter().position(|b| *b == b'\n').unwrap() + 1];
        let (staged, _) = parse(&keeper, false, first, &mut all).unwrap();
        assert_eq!(staged.zones[0].keyed[0].shape, DELETE);
    }

    #[test]
    fn errors_after_the_first_are_counted_but_nothing_more_is_kept() {
        let (keeper, _dir) = keeper();
        let mut csv = String::from("number,uri\n+441632960001,sip:a@x\nbad,sip:b@x\n");
        for i in 0..500 {
            csv.push_str(&format!("+4416329{i:05},sip:c@x\n"));
        }
        csv.push_str("worse,sip:d@x\n");
        let e = parse(&keeper, true, csv.as_bytes(), &mut all).unwrap_err();
        assert_eq!(e.total, 2);
        assert_eq!(e.list[1].line, Some(504));
    }
}
