//! The admin API's request and response bodies (SPEC §7, §10.8): reading a body (the
//! size limit, 413; the content type, 415), and the JSON body of a number or prefix
//! route and its answer ([`View`]), which imports (`import.rs`) read too.
//!
//! Owns: JSON shapes, and validation with the failing field named. A route's forms and
//! the NAPTR record each is written as are [`crate::naptr::route`]'s; here a route's fields are named within the body
//! (`routes[0].uri`), and [`super::routed`] says whether calls can use each route.
//! Read back, a route calls cannot use shows its `service` even when the scheme implies
//! it, so that PUT back it is kept (with a warning) rather than refused.
//!
//! Answers have one key order everywhere (the field order of [`View`] and
//! [`Route`]): `number`/`prefix`, `zone`, `ttl`, `routes`, `naptr`, `warnings`.
//!
//! Must not touch: the store or the zones (that is `keeper`).

use super::problem::{FieldError, Problem, field_at};
use super::routed::{Judge, usable};
use super::state::AdminState;
use crate::keeper::Routes;
use crate::naptr::NaptrRef;
use crate::naptr::route::{self, Route, service_of};
use crate::resolve::ddds::Unusable;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

/// TTL of a number's records when the body gives none.
pub const DEFAULT_TTL: u32 = 300;
/// Most routes one number may have (a NAPTR RRset must fit a 64 KiB TCP answer).
pub const MAX_ROUTES: usize = 64;

/// A number (or prefix) body as PUT and imported.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NumberBody {
    /// Only in NDJSON import lines and in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Missing reads as none, which [`NumberBody::to_routes`] refuses with a message
    /// that says how to delete instead.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Only in NDJSON import lines: `true` deletes the number.
    #[serde(default, skip_serializing)]
    pub delete: Option<bool>,
    /// Read-only fields of an answer, accepted and ignored so that a GET body can be PUT
    /// back as it is.
    #[serde(default, skip_serializing)]
    pub zone: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub naptr: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub prefix: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub warnings: Option<serde::de::IgnoredAny>,
}

/// What an answer is about: a number or a prefix route, named by its key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    Number(String),
    Prefix(String),
}

impl Subject {
    /// The number or prefix (`+` and digits).
    pub fn text(&self) -> &str {
        match self {
            Subject::Number(t) | Subject::Prefix(t) => t,
        }
    }
}

/// A number or prefix route as answered: the body plus its zone and records in
/// presentation form, in this key order in every answer (GET, PUT, lists).
#[derive(Debug, Clone, Serialize)]
pub struct View {
    #[serde(flatten)]
    pub subject: Subject,
    pub zone: String,
    pub ttl: u32,
    pub routes: Vec<Route>,
    pub naptr: Vec<String>,
    /// Routes kept although calls never use them (PUT answers only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A body's routes as records, with the warnings about routes kept that calls never use.
#[derive(Debug)]
pub struct Checked {
    pub routes: Routes,
    pub warnings: Vec<String>,
}

/// Decodes a JSON body, naming the field that does not fit (`routes[1].order`).
pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        FieldError::new(field, e.into_inner().to_string())
    })
}

/// Checks a number or prefix as given in a path or body: `+` and 1..=`max_digits`
/// digits (`%2B` has been decoded by then; a leading space is what a literal `+`
/// becomes in a query string).
pub fn parse_e164(text: &str, field: &str, max_digits: usize) -> Result<String, FieldError> {
    route::e164(text, max_digits).map_err(|detail| FieldError::new(field, detail))
}

/// Encodes `route` as NAPTR rdata, naming the field at fault within `at` (`routes[0]`;
/// empty for a CSV row).
pub fn encode(route: &Route, at: &str) -> Result<Vec<u8>, FieldError> {
    route
        .to_naptr()
        .map_err(|e| FieldError::new(field_at(at, e.field), e.detail))
}

impl NumberBody {
    /// Validates and encodes the routes as NAPTR rdata; routes calls cannot use are
    /// errors, or warnings when the body named their service ([`usable`]).
    pub fn to_routes(
        &self,
        field_prefix: &str,
        routed: &mut Judge<'_>,
    ) -> Result<Checked, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.delete.is_some() {
            errors.push(FieldError::new(
                format!("{field_prefix}delete"),
                "only an import line deletes; DELETE removes a number or prefix route",
            ));
        }
        if self.routes.len() > MAX_ROUTES {
            errors.push(FieldError::new(
                format!("{field_prefix}routes"),
                format!("at most {MAX_ROUTES} routes per number"),
            ));
        }
        if self.routes.is_empty() {
            errors.push(FieldError::new(
                format!("{field_prefix}routes"),
                "at least one route is needed (DELETE removes a number)",
            ));
        }
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL);
        if ttl > i32::MAX as u32 {
            errors.push(FieldError::new(
                format!("{field_prefix}ttl"),
                "must be at most 2147483647 (RFC 2181 §8)",
            ));
        }
        let mut naptrs = Vec::with_capacity(self.routes.len());
        let mut warnings = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("{field_prefix}routes[{i}]");
            let checked = encode(r, &at).and_then(|n| Ok((usable(r, &n, &at, routed)?, n)));
            match checked {
                Ok((warning, n)) => {
                    warnings.extend(warning);
                    naptrs.push(n);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Checked {
                routes: Routes { ttl, naptrs },
                warnings,
            })
        } else {
            Err(errors)
        }
    }
}

/// A number's or prefix's records as answered. A route calls cannot use shows its
/// `service` even when its scheme implies it, so that the body PUT back keeps it.
pub fn view(
    subject: Subject,
    zone: &str,
    ttl: u32,
    naptrs: &[&[u8]],
    routed: &mut Judge<'_>,
) -> View {
    let routes = naptrs
        .iter()
        .map(|rd| {
            let mut r = Route::from_naptr(rd);
            let unrouted = matches!(
                routed(rd, None),
                Err(Unusable::Unrouted | Unusable::NotEnumservice)
            );
            if r.service.is_none() && unrouted {
                r.service = service_of(rd);
            }
            r
        })
        .collect();
    View {
        subject,
        zone: zone.to_string(),
        ttl,
        routes,
        naptr: naptrs
            .iter()
            .filter_map(|rd| NaptrRef::parse(rd).map(|n| n.to_presentation()))
            .collect(),
        warnings: Vec::new(),
    }
}

/// Reads the request body up to the configured limit: 413 beyond it.
pub(super) async fn read_body(s: &AdminState, req: Request) -> Result<(HeaderMap, Bytes), Problem> {
    let (parts, body) = req.into_parts();
    let too_big = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than admin.max_body_bytes ({})",
                s.max_body_bytes
            ),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body_bytes as u64) {
        return Err(too_big());
    }
    let bytes = axum::body::to_bytes(body, s.max_body_bytes)
        .await
        .map_err(|_| too_big())?;
    Ok((parts.headers, bytes))
}

/// A JSON body, else 415.
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    require_type(headers, &["application/json"], |ct| {
        format!("expected Content-Type application/json, got {ct:?}")
    })
    .map(|_| ())
}

/// Which of `accepted` (media types, any case, parameters ignored) the body's
/// `Content-Type` is, by index; else 415 with `refusal` of the header as given.
pub(super) fn require_type(
    headers: &HeaderMap,
    accepted: &[&str],
    refusal: impl FnOnce(&str) -> String,
) -> Result<usize, Problem> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    accepted
        .iter()
        .position(|a| mime.eq_ignore_ascii_case(a))
        .ok_or_else(|| Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, refusal(ct)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::routed::judges::{all, sip_only};

    fn route(json: &str) -> Route {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bad_routes_name_their_field() {
        let cases = [
            (r#"{"uri":"nocolon"}"#, "routes[0].uri"),
            (r#"{"uri":"foo:bar"}"#, "routes[0].service"),
            (r#"{"uri":"sip:a@b","pstn":true}"#, "routes[0]"),
            (
                r#"{"regexp":"!^(.*)$!sip:\\2@x!","service":"E2U+sip"}"#,
                "routes[0].regexp",
            ),
            (
                r#"{"regexp":"!(!x!","service":"E2U+sip"}"#,
                "routes[0].regexp",
            ),
            (
                r#"{"uri":"sip:a@b","service":"E2U+s p"}"#,
                "routes[0].service",
            ),
            (r#"{"pstn":true,"rn":"441"}"#, "routes[0].rn"),
        ];
        for (json, field) in cases {
            let e = encode(&route(json), "routes[0]").unwrap_err();
            assert_eq!(e.field, field, "{json}: {e:?}");
        }
        let e =
            decode_json::<NumberBody>(br#"{"routes":[{"uri":"sip:a@b","order":-1}]}"#).unwrap_err();
        assert_eq!(e.field, "routes[0].order");
    }

    #[test]
    fn unrouted_services_are_refused_unless_named() {
        let body: NumberBody = decode_json(
            br#"{"routes":[{"uri":"sip:a@b"},{"uri":"https://example.net/"},{"pstn":true}]}"#,
        )
        .unwrap();
        let errs = body.to_routes("", &mut sip_only).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["routes[1].uri", "routes[2].pstn"]);
        assert!(
            errs[0]
                .detail
                .starts_with("E2U+web:https is not in enum.services")
        );
        let body: NumberBody = decode_json(
            br#"{"routes":[{"uri":"sip:a@b"},{"uri":"https://example.net/","service":"E2U+web:https"}]}"#,
        )
        .unwrap();
        let checked = body.to_routes("", &mut sip_only).unwrap();
        assert_eq!(checked.routes.naptrs.len(), 2);
        assert_eq!(
            checked.warnings,
            [
                "routes[1].service: E2U+web:https is not in enum.services: kept in the zone for other ENUM clients, never used to route calls"
            ]
        );
        // Read back, such a route names its service, so PUT back it is kept again.
        let rd = &checked.routes.naptrs[1];
        let v = view(Subject::Number("+1".into()), "z.", 60, &[rd], &mut sip_only);
        assert_eq!(v.routes[0].service.as_deref(), Some("E2U+web:https"));
        let v = view(Subject::Number("+1".into()), "z.", 60, &[rd], &mut all);
        assert_eq!(v.routes[0].service, None);
    }

    #[test]
    fn routes_calls_skip_for_flags_or_scheme_are_refused_even_with_a_service() {
        let refused = |json: &str| {
            let body: NumberBody = decode_json(json.as_bytes()).unwrap();
            let errs = body.to_routes("", &mut sip_only).unwrap_err();
            (errs[0].field.clone(), errs[0].detail.clone())
        };
        let (field, detail) =
            refused(r#"{"routes":[{"uri":"https://example.net/","service":"E2U+sip"}]}"#);
        assert_eq!(field, "routes[0].uri");
        assert!(
            detail.starts_with("E2U+sip takes sip: or sips: URIs"),
            "{detail}"
        );
        for flags in ["s", "p", "x"] {
            let json = format!(r#"{{"routes":[{{"uri":"sip:a@b.example","flags":"{flags}"}}]}}"#);
            assert_eq!(refused(&json).0, "routes[0].flags", "{flags}");
        }
        let (field, detail) = refused(r#"{"routes":[{"pstn":true,"service":"E2U+sip"}]}"#);
        assert_eq!(field, "routes[0].pstn");
        assert!(detail.contains("tel: URIs of a \"pstn\" route"), "{detail}");
        // A literal regexp result is judged; one built from the number is not.
        let (field, _) =
            refused(r#"{"routes":[{"regexp":"!^.*$!mailto:a@b.example!","service":"E2U+sip"}]}"#);
        assert_eq!(field, "routes[0].regexp");
        let body: NumberBody = decode_json(
            br#"{"routes":[{"regexp":"!^(.*)$!tel:\\1!","service":"E2U+sip"},{"uri":"sip:a@b","flags":"U"}]}"#,
        )
        .unwrap();
        assert!(body.to_routes("", &mut sip_only).is_ok());
    }

    #[test]
    fn answers_keep_one_key_order() {
        let rd = encode(&route(r#"{"uri":"sip:a@b","order":1,"preference":2}"#), "r").unwrap();
        let mut v = view(Subject::Prefix("+44".into()), "z.", 60, &[&rd], &mut all);
        v.warnings.push("w".into());
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"prefix":"+44","zone":"z.","ttl":60,"routes":[{"uri":"sip:a@b","order":1,"preference":2}],"naptr":["1 2 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" ."],"warnings":["w"]}"#
        );
    }
}
