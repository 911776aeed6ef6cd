//! The paged lists (SPEC §10.8): `GET /v1/numbers` and `GET /v1/prefixes`, both
//! `?prefix=+4416&limit=100&after=…` answered `{"items": [...], "next": cursor-or-null}`,
//! sorted, `after` exclusive, `%2B` or a literal `+` for plus, and the same limits and
//! errors.
//!
//! Numbers come from the store's index (a carrier zone has millions); prefix routes
//! from the served zones, as `GET /v1/prefixes/{e164prefix}` answers them: every
//! wildcard with NAPTR records below a number's name (a managed prefix route or one a
//! zone file wrote), never the copies made at empty non-terminals.
//!
//! Must not touch: the store's writes or the zones' contents (read only).

use super::body::{Subject, View, parse_e164};
use super::numbers::routes_view;
use super::problem::{FieldError, Problem};
use super::routed::Routed;
use super::state::{AdminState, Shared};
use crate::name::TYPE_NAPTR;
use crate::store::Store;
use crate::zone::Zone;
use crate::zone::index::{Node, NodeKind};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Most items one page may hold (numbers, prefixes, users, registrations).
const MAX_LIMIT: usize = 1000;

/// A list's query: which items (`prefix`, `+` alone for all), where to start (after
/// `after`), and how many.
struct Query {
    prefix: String,
    limit: usize,
    after: Option<String>,
}

impl Query {
    fn parse(raw: Option<&str>, max_digits: usize) -> Result<Query, Problem> {
        let mut q = Query {
            prefix: "+".to_string(),
            limit: 100,
            after: None,
        };
        for (k, v) in form_pairs(raw.unwrap_or("")) {
            // A literal '+' in a query string decodes as a space; here it means plus.
            let v = v.replace(' ', "+");
            match k.as_str() {
                "prefix" if v == "+" => q.prefix = v,
                "prefix" => q.prefix = parse_e164(&v, "prefix", max_digits)?,
                "limit" => q.limit = page_limit(&v)?,
                "after" => q.after = Some(parse_e164(&v, "after", max_digits)?),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// A page's `limit`: 1 to [`MAX_LIMIT`], else an error naming the field.
pub(super) fn page_limit(v: &str) -> Result<usize, FieldError> {
    v.parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                "limit",
                format!("{v:?} is not a number from 1 to {MAX_LIMIT}"),
            )
        })
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded (`+` becomes a space).
pub(super) fn form_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One page of a list.
#[derive(serde::Serialize)]
struct Page {
    items: Vec<View>,
    /// The last item's key when more follow: the next page's `after`.
    next: Option<String>,
}

/// The page of `keys` (sorted, at most `limit + 1` of them: one more shows there is a
/// next page), each answered as `view` gives it; keys that vanished meanwhile are left
/// out.
fn page(
    keys: &[String],
    limit: usize,
    mut view: impl FnMut(&str) -> Result<View, Problem>,
) -> Page {
    let items = keys
        .iter()
        .take(limit)
        .filter_map(|k| view(k).ok())
        .collect();
    let next = (keys.len() > limit)
        .then(|| keys.get(limit - 1).cloned())
        .flatten();
    Page { items, next }
}

/// `GET /v1/numbers?prefix=&limit=&after=` (SPEC §10.8).
pub(super) async fn numbers(
    State(s): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, Problem> {
    list(s, q, number_keys, Subject::Number).await
}

/// `GET /v1/prefixes?prefix=&limit=&after=`: prefix routes, paged like numbers.
pub(super) async fn prefixes(
    State(s): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, Problem> {
    list(s, q, |s, q| Ok(prefix_keys(s, q)), Subject::Prefix).await
}

/// A list: the query read, the keys it selects found by `keys` (sorted, at most
/// `limit + 1`), the page answered with each key as `subject`.
async fn list(
    s: Shared,
    raw: Option<String>,
    keys: fn(&AdminState, &Query) -> Result<Vec<String>, Problem>,
    subject: fn(String) -> Subject,
) -> Result<Response, Problem> {
    let q = Query::parse(raw.as_deref(), s.max_digits)?;
    // Off the admin's one thread: a store query, or a walk of the zones.
    let page = tokio::task::spawn_blocking(move || -> Result<Page, Problem> {
        let keys = keys(&s, &q)?;
        let mut routed = Routed::now(&s.router);
        Ok(page(&keys, q.limit, |k| {
            routes_view(&s, subject(k.to_string()), &mut routed)
        }))
    })
    .await
    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(axum::Json(page).into_response())
}

/// The numbers the query selects, from the store's index.
fn number_keys(s: &AdminState, q: &Query) -> Result<Vec<String>, Problem> {
    let internal = |e: crate::store::StoreError| {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    };
    let Some(store) = Store::open_reader(&s.store_path).map_err(internal)? else {
        return Ok(Vec::new());
    };
    let zones = s.keeper.zones().load();
    crate::keeper::stored::list_numbers(
        &store,
        zones.iter(),
        &q.prefix,
        q.after.as_deref(),
        q.limit + 1,
    )
    .map_err(internal)
}

/// The prefix routes the query selects, sorted, at most `limit + 1`, each from the zone
/// that holds its name (a zone below another one takes its names).
fn prefix_keys(s: &AdminState, q: &Query) -> Vec<String> {
    let filter = q.prefix.trim_start_matches('+');
    let zones = s.keeper.zones().load();
    let mut keys = Vec::new();
    for zone in zones.iter() {
        let mut found = Vec::new();
        let mut walk = Walk {
            after: q.after.as_deref(),
            limit: q.limit + 1,
            out: &mut found,
        };
        walk.zone(zone, filter);
        keys.extend(
            found
                .into_iter()
                .filter(|p| s.keeper.find(p).is_some_and(|(z, _)| Arc::ptr_eq(&z, zone))),
        );
    }
    keys.sort();
    keys.dedup();
    keys.truncate(q.limit + 1);
    keys
}

/// A depth-first walk of one zone's number names, in the order of their text (a name
/// before the names below it, digits ascending), collecting prefix routes.
struct Walk<'a> {
    after: Option<&'a str>,
    limit: usize,
    out: &'a mut Vec<String>,
}

impl Walk<'_> {
    /// Walks the names of `zone` that start with `filter` (digits).
    fn zone(&mut self, zone: &Zone, filter: &str) {
        let mut path = format!("+{}", zone.number_prefix());
        let mut node = zone.tree.apex();
        if let Some(rest) = filter.strip_prefix(&path[1..]) {
            // The filter reaches into the zone: start at its name.
            for d in rest.bytes() {
                match node.child(&[d]) {
                    Some(n) => node = n,
                    None => return,
                }
                path.push(d as char);
            }
        } else if !path[1..].starts_with(filter) {
            // Neither covers the other: no name of this zone starts with the filter.
            return;
        }
        self.node(node, &mut path);
    }

    fn node(&mut self, node: &Node, path: &mut String) {
        if self.out.len() >= self.limit {
            return;
        }
        let own = node
            .child(b"*")
            .is_some_and(|c| c.kind() != NodeKind::Copy && c.rrset(TYPE_NAPTR).is_some());
        if own && self.after.is_none_or(|a| path.as_str() > a) {
            self.out.push(path.clone());
        }
        for child in node.children() {
            let [d @ b'0'..=b'9'] = child.label().as_bytes() else {
                continue;
            };
            path.push(*d as char);
            // A name before `after` that `after` does not start with has nothing at or
            // below it that comes after it.
            let before = self
                .after
                .is_some_and(|a| path.as_str() < a && !a.starts_with(path.as_str()));
            if !before {
                self.node(child, path);
            }
            path.pop();
            if self.out.len() >= self.limit {
                return;
            }
        }
    }
}
