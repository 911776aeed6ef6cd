//! Just enough of SIP (RFC 3261 §19.1) and tel (RFC 3966) URIs for routing: checking
//! that a DDDS result or a gateway template is a URI of the right scheme, reading tel
//! numbers and their RFC 4694 parameters, and RFC 3261 §19.1.4 comparison with the
//! Request-URI.
//!
//! At the bottom of the tree (it imports nothing of enroute) because the configuration
//! checks gateway templates with it and DDDS checks its results with it.
//!
//! Must not touch: SIP message parsing (that is `sip::message`); this works on one URI
//! string at a time and never allocates to read.

/// A URI split into the parts routing looks at. Borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: &'a str,
    /// `user[:password]` for sip/sips (with any `;`-parameters of the user part), the
    /// number for tel, `None` when absent.
    pub user: Option<&'a str>,
    /// host[:port] for sip/sips; empty for other schemes.
    pub hostport: &'a str,
    /// `;`-parameters after the host (sip) or after the number (tel), without the first `;`.
    pub params: &'a str,
    /// Everything after the scheme for schemes this module does not know.
    pub rest: &'a str,
    /// The scheme as parsed, so that the checks below compare no text.
    kind: Scheme,
}

/// The schemes routing tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Sip,
    Sips,
    Tel,
    Other,
}

impl Uri<'_> {
    /// sip or sips.
    pub fn is_sip(&self) -> bool {
        matches!(self.kind, Scheme::Sip | Scheme::Sips)
    }
    pub fn is_sips(&self) -> bool {
        self.kind == Scheme::Sips
    }
    pub fn is_tel(&self) -> bool {
        self.kind == Scheme::Tel
    }
}

/// Splits `s` into a URI; `None` when it is not one (bad scheme, sip without host, tel
/// without a number, characters that never appear in URIs). For sip/sips one check of
/// the bytes and three searches (see [`sip_parts`]): DDDS checks every result it
/// produces with this.
pub fn parse(s: &str) -> Option<Uri<'_>> {
    let b = s.as_bytes();
    // `sip:` and `sips:`, what DDDS produces nearly always, are recognized first;
    // otherwise the scheme is a few bytes, where a byte loop finds its colon sooner
    // than `memchr`'s setup.
    let (colon, kind) = match b {
        [s, i, p, b':', ..] if [*s, *i, *p].eq_ignore_ascii_case(b"sip") => (3, Scheme::Sip),
        [s, i, p, x, b':', ..] if [*s, *i, *p, *x].eq_ignore_ascii_case(b"sips") => {
            (4, Scheme::Sips)
        }
        _ => {
            let colon = b.iter().position(|&c| c == b':')?;
            let (&first, tail) = b[..colon].split_first()?;
            if !first.is_ascii_alphabetic()
                || !tail
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            {
                return None;
            }
            let scheme = &b[..colon];
            let kind = if scheme.eq_ignore_ascii_case(b"sip") {
                Scheme::Sip
            } else if scheme.eq_ignore_ascii_case(b"sips") {
                Scheme::Sips
            } else if scheme.eq_ignore_ascii_case(b"tel") {
                Scheme::Tel
            } else {
                Scheme::Other
            };
            (colon, kind)
        }
    };
    let rest_bytes = &b[colon + 1..];
    if rest_bytes.is_empty() {
        return None;
    }
    let scheme = &s[..colon];
    let rest = &s[colon + 1..];
    let mut uri = Uri {
        scheme,
        user: None,
        hostport: "",
        params: "",
        rest,
        kind,
    };
    if uri.is_sip() {
        if has_bad_byte(rest_bytes) {
            return None;
        }
        let parts = sip_parts(rest_bytes);
        if parts.at == Some(0) {
            return None;
        }
        let hostport = &rest[parts.host_start..parts.host_end];
        if !valid_hostport(hostport) {
            return None;
        }
        uri.user = parts.at.map(|i| &rest[..i]);
        uri.hostport = hostport;
        uri.params = if parts.host_end < parts.end {
            &rest[parts.host_end + 1..parts.end]
        } else {
            ""
        };
    } else {
        if has_bad_byte(rest_bytes) {
            return None;
        }
        if uri.is_tel() {
            let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
            let digits = number.strip_prefix('+').unwrap_or(number);
            if digits.is_empty()
                || !digits
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b"*#-.()".contains(&b))
                || !digits
                    .bytes()
                    .any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
            {
                return None;
            }
            uri.user = Some(number);
            uri.params = params;
        }
    }
    Some(uri)
}

/// Where the parts of a sip URI after `sip:` are (byte offsets into that rest).
struct SipParts {
    /// The last `@`: the user part ends there.
    at: Option<usize>,
    host_start: usize,
    /// The end of host[:port]: the first `;` or `?` after the host.
    host_end: usize,
    /// The end of the URI proper: `?` starts headers.
    end: usize,
}

/// The parts of a sip URI's bytes after the scheme, found with three searches and not
/// checked. The user/host split is the last `@`: RFC 3261 §25.1 allows no `@` after it
/// (parameters, headers and passwords hold none), while a user part may hold `?` and
/// `;`. The host[:port] ends at the first `;` or `?` after it; `?` starts the headers.
/// (`memchr` here: a byte loop with a class table measured three times the
/// instructions.)
fn sip_parts(b: &[u8]) -> SipParts {
    let at = memchr::memrchr(b'@', b);
    let host_start = at.map_or(0, |i| i + 1);
    let host_end =
        memchr::memchr2(b';', b'?', &b[host_start..]).map_or(b.len(), |i| host_start + i);
    let end = match b.get(host_end) {
        Some(b';') => memchr::memchr(b'?', &b[host_end..]).map_or(b.len(), |i| host_end + i),
        _ => host_end,
    };
    SipParts {
        at,
        host_start,
        host_end,
        end,
    }
}

/// Where host[:port] is in a sip/sips URI given as text (byte offsets `start..end`),
/// not checked (`None` for other schemes): for telling candidate contacts from the
/// Request-URI, whose host[:port] an equivalent URI repeats (RFC 3261 §19.1.4,
/// ignoring case). The host follows the last `@` (see [`sip_parts`]) and ends at the
/// first `;` or `?`.
pub fn sip_hostport(s: &str) -> Option<(usize, usize)> {
    let colon = s.bytes().position(|c| c == b':')?;
    let scheme = &s[..colon];
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let b = &s.as_bytes()[colon + 1..];
    let start = memchr::memrchr(b'@', b).map_or(0, |i| i + 1);
    let end = memchr::memchr2(b';', b'?', &b[start..]).map_or(b.len(), |i| start + i);
    Some((colon + 1 + start, colon + 1 + end))
}

/// Whether `b` holds a byte no URI contains (controls, space, `<`, `>`, `"`,
/// non-ASCII). Written without an early exit so that it compiles to vector code.
#[inline]
fn has_bad_byte(b: &[u8]) -> bool {
    b.iter().fold(false, |bad, &c| {
        bad | (c <= b' ') | (c >= 0x7f) | (c == b'<') | (c == b'>') | (c == b'"')
    })
}

/// Bytes allowed in a hostname or IPv4 address (RFC 3261 §25.1, plus `_` seen in the
/// wild).
static HOST_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_';
        i += 1;
    }
    t
};

/// `host[:port]`: a hostname or IPv4 address (letters, digits, `-`, `.`, `_`) or an
/// IPv6 reference in brackets, and an optional port of 1-5 digits up to 65535.
fn valid_hostport(hp: &str) -> bool {
    if let Some(v6) = hp.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        return match after.strip_prefix(':') {
            None => after.is_empty(),
            Some(p) => valid_port(p),
        };
    }
    let b = hp.as_bytes();
    let host_len = memchr::memchr(b':', b).unwrap_or(b.len());
    let host = &b[..host_len];
    // Branch-free over the host, so it vectorizes.
    if host.is_empty() || !host.iter().fold(true, |ok, &c| ok & HOST_CHAR[c as usize]) {
        return false;
    }
    host_len == b.len() || valid_port(&hp[host_len + 1..])
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|c| c.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

/// A global tel number without visual separators (`+441632960999`), or `None` for a
/// local number.
pub fn tel_global_number(uri: &Uri<'_>) -> Option<String> {
    let n = uri.user?;
    let digits = n.strip_prefix('+')?;
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(n.to_string());
    }
    let clean: String = digits.chars().filter(|c| !"-.()".contains(*c)).collect();
    (!clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit())).then(|| format!("+{clean}"))
}

/// The tel URI's number-portability parameters (RFC 4694: `rn`, `rn-context`, `npdi`,
/// `cic`, `cic-context`) in the order given, each with its leading `;`.
pub fn np_params(uri: &Uri<'_>) -> String {
    let mut out = String::new();
    for p in uri.params.split(';').filter(|p| !p.is_empty()) {
        let name = p.split('=').next().unwrap_or(p);
        if ["rn", "rn-context", "npdi", "cic", "cic-context"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

/// RFC 3261 §19.1.4 URI equality, for keeping the Request-URI out of the Contacts:
/// scheme and host compare without case, the user part with case; the `user`, `ttl`,
/// `method`, `maddr` and `transport` parameters must match when either side has them,
/// other parameters only when both have them; headers are ignored. tel URIs compare by
/// number (separators dropped) and parameters.
pub fn equivalent(a: &str, b: &str) -> bool {
    match parse(a) {
        Some(x) => equivalent_to(&x, b),
        None => a == b,
    }
}

/// [`equivalent`] with the first URI already parsed (the Request-URI is parsed once per
/// decision, not once per contact).
pub fn equivalent_to(x: &Uri<'_>, b: &str) -> bool {
    parse(b).is_some_and(|y| equivalent_uris(x, &y))
}

/// [`equivalent`] on two parsed URIs.
pub fn equivalent_uris(x: &Uri<'_>, y: &Uri<'_>) -> bool {
    if !x.scheme.eq_ignore_ascii_case(y.scheme) {
        return false;
    }
    if x.is_tel() {
        return tel_global_number(x) == tel_global_number(y)
            && x.user.map(strip_visual) == y.user.map(strip_visual)
            && params_equal(x.params, y.params, &[]);
    }
    if !x.is_sip() {
        return x.rest == y.rest;
    }
    x.user == y.user
        && x.hostport.eq_ignore_ascii_case(y.hostport)
        && params_equal(
            x.params,
            y.params,
            &["user", "ttl", "method", "maddr", "transport"],
        )
}

fn strip_visual(s: &str) -> String {
    s.chars().filter(|c| !"-.()".contains(*c)).collect()
}

fn params_equal(a: &str, b: &str, must_match: &[&str]) -> bool {
    let get = |list: &str, name: &str| -> Option<String> {
        list.split(';').filter(|p| !p.is_empty()).find_map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            n.eq_ignore_ascii_case(name).then(|| v.to_ascii_lowercase())
        })
    };
    let names = |list: &str| -> Vec<String> {
        list.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| p.split('=').next().unwrap_or(p).to_ascii_lowercase())
            .collect()
    };
    for n in names(a).into_iter().chain(names(b)) {
        match (get(a, &n), get(b, &n)) {
            (Some(x), Some(y)) if x != y => return false,
            (Some(_), None) | (None, Some(_))
                if must_match.contains(&n.as_str()) || must_match.is_empty() =>
            {
                return false;
            }
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let u = parse("sip:alice@pbx.example.net:5080;transport=tcp").unwrap();
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.hostport, "pbx.example.net:5080");
        assert_eq!(u.params, "transport=tcp");
        assert!(parse("sip:[2001:db8::1]:5060").is_some());
        assert!(parse("sip:alice@").is_none());
        assert!(parse("sip:a b@x").is_none());
        assert!(parse("1sip:x").is_none());
        let t = parse("tel:+44-1632-960999;npdi;rn=+441632000000").unwrap();
        assert_eq!(tel_global_number(&t).as_deref(), Some("+441632960999"));
        assert_eq!(np_params(&t), ";npdi;rn=+441632000000");
        assert!(parse("tel:;x").is_none());
        assert!(parse("sip:a@host:70000").is_none());
        assert!(parse("sip:a@host:").is_none());
        assert!(parse("sip:a@:5060").is_none());
        assert!(parse("sip:a@ho/st").is_none());
        assert!(parse("sip:@host").is_none());
        let h = parse("sips:b@[::1]:5061;transport=tls?subject=x").unwrap();
        assert_eq!((h.hostport, h.params), ("[::1]:5061", "transport=tls"));
        assert!(parse("sip:b@[::1]x").is_none());
        assert!(parse("mailto:x@y").is_some());
        // `?` and `;` may be in a user part (RFC 3261 §25.1 user-unreserved); `@` is
        // nowhere after it.
        let q = parse("sip:a?b;c@h.example;p=1?x=2").unwrap();
        assert_eq!(
            (q.user, q.hostport, q.params),
            (Some("a?b;c"), "h.example", "p=1")
        );
        let h = parse("sip:a@h.example?x=2;y").unwrap();
        assert_eq!((h.hostport, h.params), ("h.example", ""));
        for uri in [
            "SIPS:a?b@H.example:5061;x?y",
            "sip:h.example",
            "sip:a@h?x=1",
        ] {
            let hp = sip_hostport(uri).map(|(s, e)| &uri[s..e]);
            assert_eq!(hp, parse(uri).map(|u| u.hostport), "{uri}");
        }
        assert_eq!(sip_hostport("tel:+441632960001"), None);
    }

    #[test]
    fn rfc3261_comparison() {
        assert!(equivalent("sip:alice@EXAMPLE.com", "SIP:alice@example.com"));
        assert!(!equivalent(
            "sip:Alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(!equivalent("sip:a@x;transport=tcp", "sip:a@x"));
        assert!(equivalent("sip:a@x;foo=1", "sip:a@x"));
        assert!(!equivalent("sip:a@x:5060", "sip:a@x"));
        assert!(equivalent("tel:+44-1632-960999", "tel:+441632960999"));
    }
}
