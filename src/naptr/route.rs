//! A route as the admin API writes it ([`Route`]) and the NAPTR record it is stored as,
//! both ways. A route has one of three forms:
//! - `{"uri": U}` → flags `u`, `!^.*$!U!` (the delimiter is the first of `! | # / ~ %`
//!   that `U` does not contain; a backslash in `U` is escaped), the service its scheme
//!   implies unless one is given;
//! - `{"pstn": true, "rn"?, "npdi"?}` → `E2U+pstn:tel`, `!^(.*)$!tel:\1;rn=…;npdi!`
//!   (a back-reference, so the same route serves a prefix's every number);
//! - `{"regexp": R, "flags"?, "service"}` → R byte for byte, after RFC 3402 checks.
//!
//! Reading a record back ([`Route::from_naptr`]) gives the first form that reproduces
//! the rdata exactly, else the raw form, so a route read can be written back unchanged.
//!
//! Owns: the forms, their defaults (flags `u`, order 100, preference 10, the service of
//! a scheme), their encoding and checks with the route's field at fault named
//! ([`RouteError`]), and the `+digits` syntax of a number ([`e164`]).
//!
//! Must not touch: whether calls can use a route (the router's rule in
//! `resolve::ddds`, which the admin API asks about each record), where a route sits in
//! a request (callers name it), or the zones and the store.

use crate::name::Name;
use crate::naptr::subst::SubstExpr;
use crate::naptr::{self, NaptrRef};
use serde::{Deserialize, Serialize};

/// `order` when a route gives none.
pub const DEFAULT_ORDER: u16 = 100;
/// `preference` when a route gives none.
pub const DEFAULT_PREFERENCE: u16 = 10;

/// One route. Exactly one of `uri`, `pstn` and `regexp`. Serialized in field order: the
/// form (`uri` | `pstn`, `rn`, `npdi` | `regexp`, `flags`), then `service`, `order`,
/// `preference`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pstn: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npdi: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default = "default_order")]
    pub order: u16,
    #[serde(default = "default_preference")]
    pub preference: u16,
}

fn default_order() -> u16 {
    DEFAULT_ORDER
}

fn default_preference() -> u16 {
    DEFAULT_PREFERENCE
}

/// Why a route does not encode: the field of the route at fault (`uri`, `service`, …;
/// empty for the route as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub field: &'static str,
    pub detail: String,
}

impl RouteError {
    fn new(field: &'static str, detail: impl Into<String>) -> Self {
        RouteError {
            field,
            detail: detail.into(),
        }
    }
}

/// What a `pstn` route's result stands as when it is judged: its regexp gives `tel:`
/// and the number called (`+` and digits) then `;rn`/`;npdi`, and only the scheme
/// decides whether a service takes it.
const PSTN_RESULT: &str = "tel:+1";

/// Characters tried, in order, as the regexp delimiter of a literal URI.
const DELIMITERS: &[u8] = b"!|#/~%";

/// Checks a number (or prefix) as `+` and 1..=`max_digits` digits, after any leading
/// spaces: the number as `+` and digits, or what is wrong with it.
pub fn e164(text: &str, max_digits: usize) -> Result<String, String> {
    let t = text.trim_start_matches(' ');
    let digits = t
        .strip_prefix('+')
        .ok_or_else(|| format!("{text:?} must be '+' followed by digits"))?;
    if digits.is_empty() || digits.len() > max_digits || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "{text:?} must be '+' followed by 1 to {max_digits} digits"
        ));
    }
    Ok(format!("+{digits}"))
}

impl Route {
    /// Encodes this route as NAPTR rdata.
    pub fn to_naptr(&self) -> Result<Vec<u8>, RouteError> {
        self.check_form()?;
        let (service, regexp) = if let Some(uri) = &self.uri {
            self.uri_parts(uri)?
        } else if let Some(pstn) = self.pstn {
            self.pstn_parts(pstn)?
        } else {
            self.regexp_parts()?
        };
        let flags = self.flags.clone().unwrap_or_else(|| "u".into());
        self.check_lengths(&flags, &service, &regexp)?;
        let mut rdata = Vec::with_capacity(16 + regexp.len() + service.len());
        naptr::encode(
            self.order,
            self.preference,
            flags.as_bytes(),
            service.as_bytes(),
            &regexp,
            &Name::root(),
            &mut rdata,
        );
        let parsed = NaptrRef::parse(&rdata)
            .ok_or_else(|| RouteError::new("", "does not encode as a NAPTR record"))?;
        naptr::validate(&parsed).map_err(|e| {
            let field = if e.contains("flags") {
                "flags"
            } else if e.contains("service") {
                "service"
            } else if self.uri.is_some() {
                "uri"
            } else {
                "regexp"
            };
            RouteError::new(field, e)
        })?;
        if flags.eq_ignore_ascii_case("u") && regexp.is_empty() {
            return Err(RouteError::new(
                "regexp",
                "a terminal (\"u\") route needs a regexp",
            ));
        }
        Ok(rdata)
    }

    /// Exactly one form, and `rn`/`npdi` only with `pstn`.
    fn check_form(&self) -> Result<(), RouteError> {
        let forms = [
            self.uri.is_some(),
            self.pstn.is_some(),
            self.regexp.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if forms != 1 {
            return Err(RouteError::new(
                "",
                "a route has exactly one of \"uri\", \"pstn\" and \"regexp\"",
            ));
        }
        if (self.rn.is_some() || self.npdi.is_some()) && self.pstn.is_none() {
            return Err(RouteError::new(
                "rn",
                "\"rn\" and \"npdi\" belong to a \"pstn\" route",
            ));
        }
        Ok(())
    }

    /// The service and regexp of a `uri` route.
    fn uri_parts(&self, uri: &str) -> Result<(String, Vec<u8>), RouteError> {
        let scheme = uri_scheme(uri)
            .ok_or_else(|| RouteError::new("uri", format!("{uri:?} is not a URI (scheme:…)")))?;
        if let Some(c) = uri.chars().find(|c| c.is_control() || *c == ' ') {
            return Err(RouteError::new(
                "uri",
                format!("{c:?} is not allowed in a URI"),
            ));
        }
        let service = match &self.service {
            Some(s) => s.clone(),
            None => default_service(&scheme).ok_or_else(|| {
                RouteError::new(
                    "service",
                    format!("no default service for {scheme}: URIs; give \"service\""),
                )
            })?,
        };
        let delim = DELIMITERS
            .iter()
            .copied()
            .find(|d| !uri.as_bytes().contains(d))
            .ok_or_else(|| {
                RouteError::new(
                    "uri",
                    "the URI uses every regexp delimiter (! | # / ~ %); give \"regexp\" instead",
                )
            })?;
        let mut re = vec![delim];
        re.extend_from_slice(b"^.*$");
        re.push(delim);
        for b in uri.bytes() {
            if b == b'\\' {
                re.push(b'\\');
            }
            re.push(b);
        }
        re.push(delim);
        Ok((service, re))
    }

    /// The service and regexp of a `pstn` route.
    fn pstn_parts(&self, pstn: bool) -> Result<(String, Vec<u8>), RouteError> {
        if !pstn {
            return Err(RouteError::new(
                "pstn",
                "must be true (leave it out for a SIP route)",
            ));
        }
        let mut re = b"!^(.*)$!tel:\\1".to_vec();
        if let Some(rn) = &self.rn {
            let rn = e164(rn, 20).map_err(|e| RouteError::new("rn", e))?;
            re.extend_from_slice(b";rn=");
            re.extend_from_slice(rn.as_bytes());
        }
        if self.npdi == Some(true) {
            re.extend_from_slice(b";npdi");
        }
        re.push(b'!');
        let service = self
            .service
            .clone()
            .unwrap_or_else(|| "E2U+pstn:tel".into());
        Ok((service, re))
    }

    /// The service and regexp of a `regexp` route.
    fn regexp_parts(&self) -> Result<(String, Vec<u8>), RouteError> {
        let regexp = self.regexp.as_deref().unwrap_or_default();
        let service = self
            .service
            .clone()
            .ok_or_else(|| RouteError::new("service", "a \"regexp\" route needs \"service\""))?;
        Ok((service, regexp.as_bytes().to_vec()))
    }

    /// Each field within the 255 bytes a NAPTR character-string holds.
    fn check_lengths(&self, flags: &str, service: &str, regexp: &[u8]) -> Result<(), RouteError> {
        for (name, value) in [
            ("flags", flags.len()),
            ("service", service.len()),
            ("regexp", regexp.len()),
        ] {
            if value > 255 {
                let field = if name == "regexp" && self.uri.is_some() {
                    "uri"
                } else {
                    name
                };
                return Err(RouteError::new(
                    field,
                    format!("{name} is {value} bytes; a NAPTR field holds at most 255"),
                ));
            }
        }
        Ok(())
    }

    /// Which form this route has: `uri`, `pstn` or `regexp`, the field its result comes
    /// from.
    pub fn form(&self) -> &'static str {
        if self.uri.is_some() {
            "uri"
        } else if self.pstn.is_some() {
            "pstn"
        } else {
            "regexp"
        }
    }

    /// The result a terminal route gives, as far as the route makes it known: its `uri`;
    /// for `pstn`, a tel URI ([`PSTN_RESULT`]); for `regexp`, the replacement when it
    /// is literal (no back-reference; one with them depends on the number and is not
    /// judged).
    pub fn known_result(&self) -> Option<String> {
        if let Some(uri) = &self.uri {
            return Some(uri.clone());
        }
        if self.pstn.is_some() {
            return Some(PSTN_RESULT.into());
        }
        let expr = SubstExpr::parse(self.regexp.as_deref()?.as_bytes()).ok()?;
        if expr.uses_backrefs() {
            return None;
        }
        let mut out = String::new();
        expr.expand_with(|_| None, &mut out);
        Some(out)
    }

    /// The route form of one NAPTR record: the first form that encodes back to exactly
    /// `rdata`, else the raw form.
    pub fn from_naptr(rdata: &[u8]) -> Route {
        let Some(n) = NaptrRef::parse(rdata) else {
            return Route::default();
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let raw = Route {
            regexp: Some(text(n.regexp)),
            flags: (n.flags != b"u").then(|| text(n.flags)),
            service: Some(text(n.services)),
            order: n.order,
            preference: n.preference,
            ..Route::default()
        };
        let candidates = [uri_form(&n), pstn_form(&n)];
        for c in candidates.into_iter().flatten() {
            if c.to_naptr().ok().as_deref() == Some(rdata) {
                return c;
            }
        }
        raw
    }
}

fn uri_form(n: &NaptrRef<'_>) -> Option<Route> {
    let re = std::str::from_utf8(n.regexp).ok()?;
    let d = re.chars().next()?;
    let inner = re.strip_prefix(d)?.strip_suffix(d)?;
    let uri = inner.strip_prefix("^.*$")?.strip_prefix(d)?;
    let uri = uri.replace("\\\\", "\\");
    let scheme = uri_scheme(&uri)?;
    let service = std::str::from_utf8(n.services).ok()?;
    Some(Route {
        service: (default_service(&scheme).as_deref() != Some(service)).then(|| service.into()),
        flags: (n.flags != b"u").then(|| String::from_utf8_lossy(n.flags).into_owned()),
        uri: Some(uri),
        order: n.order,
        preference: n.preference,
        ..Route::default()
    })
}

fn pstn_form(n: &NaptrRef<'_>) -> Option<Route> {
    let re = std::str::from_utf8(n.regexp).ok()?;
    let params = re.strip_prefix("!^(.*)$!tel:\\1")?.strip_suffix('!')?;
    let mut rn = None;
    let mut npdi = None;
    for p in params.split(';').skip(1) {
        match p.split_once('=') {
            Some(("rn", v)) => rn = Some(v.to_string()),
            None if p == "npdi" => npdi = Some(true),
            _ => return None,
        }
    }
    let service = std::str::from_utf8(n.services).ok()?;
    Some(Route {
        pstn: Some(true),
        rn,
        npdi,
        service: (service != "E2U+pstn:tel").then(|| service.into()),
        flags: (n.flags != b"u").then(|| String::from_utf8_lossy(n.flags).into_owned()),
        order: n.order,
        preference: n.preference,
        ..Route::default()
    })
}

/// The scheme of a URI, lower case, when it has one (RFC 3986 §3.1).
fn uri_scheme(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let ok = chars.next()?.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty();
    ok.then(|| scheme.to_ascii_lowercase())
}

/// The ENUM service a URI scheme implies (RFC 6116 §3.4, RFC 3764, RFC 4415).
fn default_service(scheme: &str) -> Option<String> {
    Some(
        match scheme {
            "sip" | "sips" => "E2U+sip",
            "tel" => "E2U+pstn:tel",
            "mailto" => "E2U+email:mailto",
            "h323" => "E2U+h323",
            "http" => "E2U+web:http",
            "https" => "E2U+web:https",
            _ => return None,
        }
        .to_string(),
    )
}

/// The service field of a record in wire form.
pub fn service_of(rdata: &[u8]) -> Option<String> {
    NaptrRef::parse(rdata).map(|n| String::from_utf8_lossy(n.services).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(json: &str) -> Route {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn uri_routes_round_trip_and_escape_backslashes() {
        for json in [
            r#"{"uri":"sip:alice@pbx.example.net","order":100,"preference":10}"#,
            r#"{"uri":"sip:a!b@x.example","order":1,"preference":2}"#,
            r#"{"uri":"sip:back\\slash@x.example","order":1,"preference":2}"#,
            r#"{"uri":"tel:+441632960123;npdi","order":1,"preference":2}"#,
            r#"{"pstn":true,"rn":"+441632000000","npdi":true,"order":100,"preference":20}"#,
            r#"{"regexp":"!^\\+44(.*)$!sip:\\1@pbx.example!","service":"E2U+sip","order":10,"preference":10}"#,
        ] {
            let r = route(json);
            let rd = r.to_naptr().unwrap();
            assert_eq!(Route::from_naptr(&rd), r, "{json}");
        }
        let rd = route(r#"{"uri":"sip:back\\slash@x"}"#).to_naptr().unwrap();
        let n = NaptrRef::parse(&rd).unwrap();
        assert_eq!(n.regexp, br"!^.*$!sip:back\\slash@x!");
        let rd = route(r#"{"regexp":"!^\\+44(.*)$!sip:\\1@p!","service":"E2U+sip"}"#)
            .to_naptr()
            .unwrap();
        assert_eq!(
            NaptrRef::parse(&rd).unwrap().regexp,
            br"!^\+44(.*)$!sip:\1@p!"
        );
    }
}
