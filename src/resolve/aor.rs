//! Addresses-of-record as the registrar keys them, and the routing step that sends a
//! call to an AOR's registered contacts before any zone or ENUM lookup (SPEC §11).
//!
//! A canonical AOR is `user@domain`: the domain one of `registrar.domains` (lower
//! case), the user as written, except that a user that the dial plan turns into an
//! E.164 number is that number, and a number's domain is always the first of
//! `registrar.domains`. So `sip:+441632960123@example.net`, `sip:01632960123@example.net`
//! (with a UK dial plan) and `tel:+441632960123` are one AOR, and a number registered
//! under one served domain is reached whatever host an INVITE's Request-URI names.
//!
//! Owns: that canonical form ([`canonical`]) and the registrar step of a decision
//! ([`registered`]). Must not touch: bindings' storage or lifetime (`registrar`), SIP
//! messages.

use super::ddds::ContactFilter;
use super::decision::{Contact, Decision, Q, Source, TraceStep, Tracer};
use super::number;
use crate::config::DialplanConfig;
use crate::registrar::Location;

/// Why a URI names no AOR this registrar serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AorError {
    #[error("not a sip, sips or tel URI")]
    Scheme,
    #[error("the URI has no user part")]
    NoUser,
    #[error("the domain is not served by this registrar")]
    NotServed,
}

/// What the registrar step needs: the bindings and the served domains.
pub struct Registered<'a> {
    pub location: &'a Location,
    pub domains: &'a [String],
}

/// Writes the canonical AOR of `uri` (a `sip:`, `sips:` or `tel:` URI, or `user@host`
/// as the admin API takes it) into `out`, cleared first; `scratch` is a buffer for the
/// number. A sip user that is not a number needs a served host.
pub fn canonical(
    uri: &str,
    dialplan: &DialplanConfig,
    domains: &[String],
    out: &mut String,
    scratch: &mut String,
) -> Result<(), AorError> {
    out.clear();
    let uri = uri.trim_ascii();
    let Some(first_domain) = domains.first() else {
        return Err(AorError::NotServed);
    };
    let rest = match uri.split_once(':') {
        Some((s, _)) if s.eq_ignore_ascii_case("tel") => {
            return number_aor(uri, dialplan, first_domain, out, scratch).ok_or(AorError::NoUser);
        }
        Some((s, r)) if s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips") => r,
        Some((s, _))
            if s.bytes().all(|b| b.is_ascii_alphabetic())
                && !s.contains('@')
                && !uri.contains('@') =>
        {
            return Err(AorError::Scheme);
        }
        _ => uri,
    };
    let (user, host) = user_and_host(rest)?;
    let served = domains.iter().any(|d| d.eq_ignore_ascii_case(host));
    // `sip:` + the user and host: how the number reader takes a Request-URI.
    scratch.clear();
    scratch.push_str("sip:");
    scratch.push_str(user);
    scratch.push_str("@x");
    let as_uri = std::mem::take(scratch);
    let number = number_aor(&as_uri, dialplan, first_domain, out, scratch);
    *scratch = as_uri;
    if number.is_some() {
        return Ok(());
    }
    if !served {
        return Err(AorError::NotServed);
    }
    push_name(out, user, host);
    Ok(())
}

/// The AOR of a `sip:`/`sips:` URI whose user is known not to be a number (the dial
/// plan refused it): `user@host` into `out` when the host is served. The routing path's
/// [`canonical`], without reading the user as a number again.
pub fn name_aor(uri: &str, domains: &[String], out: &mut String) -> bool {
    out.clear();
    let uri = uri.trim_ascii();
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return false;
    }
    let Ok((user, host)) = user_and_host(rest) else {
        return false;
    };
    if !domains.iter().any(|d| d.eq_ignore_ascii_case(host)) {
        return false;
    }
    push_name(out, user, host);
    true
}

/// The user (without parameters or password) and host of `user@host…`.
fn user_and_host(rest: &str) -> Result<(&str, &str), AorError> {
    let Some((user, hostport)) = rest.rsplit_once('@') else {
        return Err(AorError::NoUser);
    };
    let user = user.split([';', ':']).next().unwrap_or("");
    if user.is_empty() {
        return Err(AorError::NoUser);
    }
    Ok((user, host_of(hostport)))
}

/// `user@host`, the host in lower case.
fn push_name(out: &mut String, user: &str, host: &str) {
    out.push_str(user);
    out.push('@');
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
}

/// The canonical AOR of a registration — a REGISTER's To URI, or an AOR the admin API
/// names (`user@host` without a scheme reads as `sip:`) — into `out`: as [`canonical`],
/// but the host must be served whatever the user is (a `tel:` URI has none).
pub fn of_registration(
    uri: &str,
    dialplan: &DialplanConfig,
    domains: &[String],
    out: &mut String,
    scratch: &mut String,
) -> Result<(), AorError> {
    if !served_host(uri, domains) {
        out.clear();
        return Err(AorError::NotServed);
    }
    canonical(uri, dialplan, domains, out, scratch)
}

/// Whether the host of `sip:`/`sips:` URI (or scheme-less `user@host`) `uri` is one of
/// `domains`; a `tel:` URI has none and passes.
fn served_host(uri: &str, domains: &[String]) -> bool {
    let uri = uri.trim_ascii();
    let rest = match uri.split_once(':') {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("tel") => return true,
        Some((scheme, rest)) if !scheme.contains('@') => rest,
        _ => uri,
    };
    let Some((_, hostport)) = rest.rsplit_once('@') else {
        return false;
    };
    let host = host_of(hostport);
    domains.iter().any(|d| d.eq_ignore_ascii_case(host))
}

/// The host of `host[:port][;params][?headers]`, without a trailing dot.
fn host_of(hostport: &str) -> &str {
    let end = hostport.find([';', '?', '>']).unwrap_or(hostport.len());
    let hp = &hostport[..end];
    let host = if hp.starts_with('[') {
        hp.find(']').map_or(hp, |i| &hp[..=i])
    } else {
        hp.rsplit_once(':').map_or(hp, |(h, _)| h)
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// `+E164@first_domain` into `out` when `uri`'s user (or tel number) is a number after
/// the dial plan.
fn number_aor(
    uri: &str,
    dialplan: &DialplanConfig,
    first_domain: &str,
    out: &mut String,
    scratch: &mut String,
) -> Option<()> {
    number::extract_into(uri, scratch).ok()?;
    number::normalize_in_place(scratch, dialplan).ok()?;
    number_key(scratch, first_domain, out);
    Some(())
}

/// The AOR of the E.164 number `e164` (`+…`) into `out`: always under the first served
/// domain.
pub(super) fn number_key(e164: &str, first_domain: &str, out: &mut String) {
    out.clear();
    out.push_str(e164);
    out.push('@');
    out.push_str(first_domain);
}

/// The registrar step: when `aor` has live bindings that `filter` lets through, fills
/// `d` with them (302, best first, cut to `max_contacts`) and returns true.
pub(super) fn registered(
    reg: &Registered<'_>,
    aor: &str,
    filter: &ContactFilter<'_>,
    max_contacts: usize,
    tracer: Tracer,
    d: &mut Decision,
) -> bool {
    let now = crate::registrar::unix_now();
    let mut ttl = u64::MAX;
    let spare = &mut d.scratch.spare_uris;
    let contacts = &mut d.contacts;
    let found = reg.location.with_live(aor, now, |live| {
        for b in live {
            if contacts.len() >= max_contacts {
                break;
            }
            if !filter.allows(&b.contact) {
                continue;
            }
            let mut uri = spare.pop().unwrap_or_default();
            uri.clear();
            uri.push_str(&b.contact);
            contacts.push(Contact { uri, q: Q(b.q) });
            ttl = ttl.min(b.expires_in(now));
        }
    });
    if found.is_none() || d.contacts.is_empty() {
        return false;
    }
    d.status = 302;
    d.source = Source::Registrar;
    d.ttl = ttl.min(u64::from(u32::MAX)) as u32;
    d.detail = tracer.detail("registered contacts", || {
        format!("registered contacts of {aor}")
    });
    let count = d.contacts.len();
    tracer.push(&mut d.trace, || TraceStep::Registrar {
        aor: aor.to_string(),
        contacts: count,
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> DialplanConfig {
        let c = crate::config::Config::parse(
            "[dialplan]\nrules = [{ match = '^0([1-9][0-9]+)$', replace = '+44$1' }]\n",
            "t.toml",
            std::path::Path::new("/"),
            None,
        )
        .unwrap();
        c.dialplan
    }

    fn aor(uri: &str) -> Result<String, AorError> {
        let (mut out, mut scratch) = (String::new(), String::new());
        let domains = ["example.net".to_string(), "other.org".to_string()];
        canonical(uri, &plan(), &domains, &mut out, &mut scratch).map(|()| out)
    }

    #[test]
    fn numbers_are_one_aor_whatever_their_form_and_names_need_a_served_domain() {
        let n = Ok("+441632960123@example.net".to_string());
        assert_eq!(aor("sip:+441632960123@example.net"), n);
        assert_eq!(aor("sip:01632960123@Example.NET;transport=tcp"), n);
        assert_eq!(aor("tel:+44-1632-960123"), n);
        assert_eq!(aor("sips:+441632960123@other.org:5061"), n);
        assert_eq!(aor("sip:+441632960123@192.0.2.1"), n);
        assert_eq!(aor("+441632960123@example.net"), n);
        assert_eq!(aor("sip:alice@Other.Org."), Ok("alice@other.org".into()));
        assert_eq!(
            aor("sip:alice:secret@example.net"),
            Ok("alice@example.net".into())
        );
        assert_eq!(aor("alice@example.net"), Ok("alice@example.net".into()));
        assert_eq!(aor("sip:alice@foreign.com"), Err(AorError::NotServed));
        assert_eq!(aor("sip:example.net"), Err(AorError::NoUser));
        assert_eq!(aor("http://example.net"), Err(AorError::Scheme));
        assert!(served_host(
            "sip:x@example.net:5060",
            &["example.net".into()]
        ));
        assert!(!served_host("sip:x@192.0.2.1", &["example.net".into()]));
        assert!(served_host("x@example.net", &["example.net".into()]));
        let mut out = String::new();
        let domains = ["example.net".to_string()];
        assert!(name_aor(
            "sip:Bob;x=1@Example.Net:5060;transport=tcp",
            &domains,
            &mut out
        ));
        assert_eq!(out, "Bob@example.net");
        assert!(!name_aor("sip:bob@other.org", &domains, &mut out));
        assert!(!name_aor("tel:bob", &domains, &mut out));
    }
}
