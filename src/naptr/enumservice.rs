//! Enumservices (RFC 6116 §3.4.3): `E2U+type[:subtype]`, what an ENUM NAPTR record's
//! service field names and what `enum.services` configures.
//!
//! Owns: the syntax of an enumservice ([`Enumservice::parse`], which the configuration
//! calls for each of `enum.services`), and matching a record's service field against
//! the wanted ones ([`Enumservices`]: case-insensitive, subtypes, compound `E2U+a+b`
//! fields, legacy RFC 2916 `sip+E2U`) with the URI schemes each wanted service's
//! results take (`sip` and `pstn:sip` sip: or sips:, `pstn` and `pstn:tel` tel:).
//!
//! Must not touch: the rest of a record (flags, regexp, replacement: DDDS judges those,
//! `resolve::ddds::Services::judge`) or routing.

use crate::uri::Uri;

/// One enumservice as configured (`E2U+sip`, `E2U+pstn:tel`, `E2U+sip+h323`): `E2U`
/// then one or more `+type[:subtype]`. Made only by [`Enumservice::parse`]; shown as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumservice(String);

impl Enumservice {
    /// Checks the syntax; the message names the value and shows what is expected.
    pub fn parse(s: &str) -> Result<Enumservice, String> {
        if is_enumservice(s) {
            Ok(Enumservice(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not an enumservice like \"E2U+sip\" or \"E2U+pstn:tel\""
            ))
        }
    }

    /// The enumservice as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Enumservice {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Enumservice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `E2U` then one or more `+type[:subtype]` (RFC 6116 §3.4.3).
pub fn is_enumservice(s: &str) -> bool {
    let Some(rest) = s
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("E2U"))
        .map(|_| &s[3..])
    else {
        return false;
    };
    let mut parts = rest.split('+');
    if parts.next() != Some("") {
        return false;
    }
    let mut any = false;
    for p in parts {
        any = true;
        let ok = !p.is_empty()
            && p.split(':').all(|t| {
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return false;
        }
    }
    any
}

/// The result URI schemes some services take, for a message about a result that fits
/// none of them; shown as `sip: or sips:`, `tel:`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schemes {
    sip: bool,
    tel: bool,
}

impl std::fmt::Display for Schemes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.sip, self.tel) {
            (true, true) => "sip:, sips: or tel:",
            (true, false) => "sip: or sips:",
            (false, true) => "tel:",
            (false, false) => "no",
        })
    }
}

/// The wanted enumservices, parsed once: each as lower-case `type[:subtype]`.
#[derive(Debug, Clone)]
pub struct Enumservices {
    wanted: Vec<String>,
    /// Bits (as in [`Enumservices::matches`]) of the services whose results must be sip
    /// or sips URIs (`sip`, `pstn:sip`), tel URIs (`pstn`, `pstn:tel`), or any URI.
    sip_results: u32,
    tel_results: u32,
    any_results: u32,
}

impl Enumservices {
    /// From enumservices like `E2U+sip`, `E2U+pstn:tel` ([`Enumservice`]s, or text
    /// that [`Enumservice::parse`] accepts).
    pub fn new<S: AsRef<str>>(configured: &[S]) -> Self {
        let mut wanted = Vec::new();
        for s in configured {
            for part in s.as_ref().split('+').skip(1) {
                wanted.push(part.to_ascii_lowercase());
            }
        }
        let (mut sip_results, mut tel_results, mut any_results) = (0, 0, 0);
        for (i, w) in wanted.iter().enumerate().take(32) {
            match w.as_str() {
                "sip" | "pstn:sip" => sip_results |= 1 << i,
                "pstn:tel" | "pstn" => tel_results |= 1 << i,
                _ => any_results |= 1 << i,
            }
        }
        Enumservices {
            wanted,
            sip_results,
            tel_results,
            any_results,
        }
    }

    /// Whether a result URI fits one of the services a record named (`matched`, as
    /// [`Enumservices::matches`] gives): sip URIs for `sip`, tel URIs for `pstn`.
    #[inline]
    pub fn fits(&self, matched: u32, uri: &Uri<'_>) -> bool {
        matched & self.any_results != 0
            || (matched & self.sip_results != 0 && uri.is_sip())
            || (matched & self.tel_results != 0 && uri.is_tel())
    }

    /// The schemes the services a record named (`matched`) take, for a message about a
    /// result that fits none of them.
    pub fn schemes(&self, matched: u32) -> Schemes {
        Schemes {
            sip: matched & self.sip_results != 0,
            tel: matched & self.tel_results != 0,
        }
    }

    /// Which wanted enumservices (bit i = `wanted[i]`) a record's service field names, or
    /// `None` when the field is not an ENUM service field at all. `E2U+sip+pstn:tel`
    /// yields each part; RFC 2916's `sip+E2U` counts as `E2U+sip`. No allocation: this
    /// runs for every record of every decision.
    #[inline]
    pub fn matches(&self, field: &[u8]) -> Option<u32> {
        let plus = field.iter().position(|&b| b == b'+')?;
        let (first, rest) = (&field[..plus], &field[plus + 1..]);
        let legacy = !first.eq_ignore_ascii_case(b"E2U");
        if legacy && !rest.eq_ignore_ascii_case(b"E2U") {
            return None;
        }
        let types = if legacy { first } else { rest };
        let mut mask = 0u32;
        for t in types.split(|&b| b == b'+') {
            if t.is_empty() {
                return None;
            }
            for (i, w) in self.wanted.iter().enumerate().take(32) {
                if t.eq_ignore_ascii_case(w.as_bytes()) {
                    mask |= 1 << i;
                }
            }
        }
        Some(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumservice_syntax() {
        assert!(is_enumservice("E2U+sip"));
        assert!(is_enumservice("e2u+pstn:tel"));
        assert!(is_enumservice("E2U+sip+h323"));
        assert!(!is_enumservice("E2U"));
        assert!(!is_enumservice("E2U+"));
        assert!(!is_enumservice("sip+E2U"));
    }
}
