//! NAPTR records (RFC 3403) as the rest of enroute sees them.
//!
//! Owns: a zero-copy view of NAPTR rdata in wire form ([`NaptrRef`]), its presentation
//! form, field validation shared by `zone check`/zone loads and DDDS, enumservices
//! (their syntax and matching a service field, in [`enumservice`]), and the RFC 3402
//! substitution expressions and applying a record's regexp (in [`subst`]); a route as the
//! admin API writes it, to NAPTR rdata and back (in [`route`]).
//!
//! Must not touch: ordering, the rule for which records are used, or routing (that is
//! `resolve::ddds`).

pub mod enumservice;
pub mod route;
pub mod subst;

use crate::name::Name;

/// A NAPTR record borrowed from wire-form rdata (RFC 3403 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaptrRef<'a> {
    pub order: u16,
    pub preference: u16,
    pub flags: &'a [u8],
    pub services: &'a [u8],
    pub regexp: &'a [u8],
    /// Replacement domain in uncompressed wire form; `[0]` is the root (".").
    pub replacement: &'a [u8],
}

impl<'a> NaptrRef<'a> {
    /// Reads rdata in wire form; `None` when it is not a well-formed NAPTR.
    pub fn parse(rdata: &'a [u8]) -> Option<Self> {
        if rdata.len() < 4 {
            return None;
        }
        let order = u16::from_be_bytes([rdata[0], rdata[1]]);
        let preference = u16::from_be_bytes([rdata[2], rdata[3]]);
        let mut pos = 4;
        let mut string = || -> Option<&'a [u8]> {
            let len = *rdata.get(pos)? as usize;
            let s = rdata.get(pos + 1..pos + 1 + len)?;
            pos += 1 + len;
            Some(s)
        };
        let flags = string()?;
        let services = string()?;
        let regexp = string()?;
        let replacement = &rdata[pos..];
        if crate::name::wire_name_len(replacement)? != replacement.len() {
            return None;
        }
        Some(NaptrRef {
            order,
            preference,
            flags,
            services,
            regexp,
            replacement,
        })
    }

    pub fn has_replacement(&self) -> bool {
        self.replacement != [0]
    }

    pub fn replacement_name(&self) -> Name {
        Name::from_wire(self.replacement)
            .map(|(n, _)| n)
            .unwrap_or_default()
    }

    /// Presentation form of the rdata: `100 10 "u" "E2U+sip" "!^.*$!sip:a@b!" .`
    pub fn to_presentation(&self) -> String {
        let mut s = format!("{} {} ", self.order, self.preference);
        for field in [self.flags, self.services, self.regexp] {
            quote_char_string(&mut s, field);
            s.push(' ');
        }
        s.push_str(&self.replacement_name().to_string());
        s
    }
}

/// Encodes NAPTR rdata in wire form.
pub fn encode(
    order: u16,
    preference: u16,
    flags: &[u8],
    services: &[u8],
    regexp: &[u8],
    replacement: &Name,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&order.to_be_bytes());
    out.extend_from_slice(&preference.to_be_bytes());
    for s in [flags, services, regexp] {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
    replacement.to_wire(out);
}

/// Appends a `<character-string>` in quoted presentation form (RFC 1035 §5.1).
pub fn quote_char_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
}

/// Problems a NAPTR record can have that make `zone check` (and a zone load) fail.
/// DDDS skips such records when they arrive from upstream; in a local zone they are
/// errors so that an operator learns of them before a call does.
pub fn validate(n: &NaptrRef<'_>) -> Result<(), String> {
    if let Some(b) = n.flags.iter().find(|b| !b.is_ascii_alphanumeric()) {
        return Err(format!(
            "NAPTR flags may hold only letters and digits, found {:?}",
            *b as char
        ));
    }
    if !n
        .services
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"+:-._".contains(b))
    {
        return Err(format!(
            "NAPTR service field {:?} has characters outside A-Z a-z 0-9 + : - . _",
            String::from_utf8_lossy(n.services)
        ));
    }
    if !n.regexp.is_empty() && n.has_replacement() {
        return Err(
            "NAPTR has both a regexp and a replacement; RFC 3403 §4.1 allows only one".into(),
        );
    }
    if !n.regexp.is_empty() {
        let expr = subst::SubstExpr::parse(n.regexp)
            .map_err(|e| format!("NAPTR regexp {:?}: {e}", String::from_utf8_lossy(n.regexp)))?;
        if !expr.matches_everything() {
            expr.with_compiled(|_| ()).map_err(|e| {
                format!("NAPTR regexp {:?}: {e}", String::from_utf8_lossy(n.regexp))
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_presentation() {
        let mut w = Vec::new();
        encode(
            100,
            10,
            b"u",
            b"E2U+sip",
            b"!^.*$!sip:a@b!",
            &Name::root(),
            &mut w,
        );
        let n = NaptrRef::parse(&w).unwrap();
        assert_eq!(n.order, 100);
        assert_eq!(n.services, b"E2U+sip");
        assert!(!n.has_replacement());
        assert_eq!(
            n.to_presentation(),
            r#"100 10 "u" "E2U+sip" "!^.*$!sip:a@b!" ."#
        );
        assert!(NaptrRef::parse(&w[..w.len() - 1]).is_none());
    }
}
