//! Just enough of SIP (RFC 3261 §19.1) and tel (RFC 3966) URIs for routing: checking
//! that a DDDS result is a URI of the right scheme, reading tel numbers and their
//! RFC 4694 parameters, and RFC 3261 §19.1.4 comparison with the Request-URI.
//!
//! Must not touch: SIP message parsing (the `sip` module will own that); this works on
//! one URI string at a time and never allocates to read.

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
}

impl Uri<'_> {
    pub fn is_sip(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sip") || self.scheme.eq_ignore_ascii_case("sips")
    }
    pub fn is_sips(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sips")
    }
    pub fn is_tel(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("tel")
    }
}

/// Splits `s` into a URI; `None` when it is not one (bad scheme, sip without host, tel
/// without a number, characters that never appear in URIs).
pub fn parse(s: &str) -> Option<Uri<'_>> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.bytes();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    if rest.is_empty()
        || rest
            .bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"' || b >= 0x7f)
    {
        return None;
    }
    let mut uri = Uri {
        scheme,
        user: None,
        hostport: "",
        params: "",
        rest,
    };
    if uri.is_sip() {
        let no_headers = rest.split('?').next().unwrap_or(rest);
        let (user, hostpart) = match no_headers.rfind('@') {
            Some(at) => (Some(&no_headers[..at]), &no_headers[at + 1..]),
            None => (None, no_headers),
        };
        if user == Some("") {
            return None;
        }
        let (hostport, params) = hostpart.split_once(';').unwrap_or((hostpart, ""));
        if !valid_hostport(hostport) {
            return None;
        }
        uri.user = user;
        uri.hostport = hostport;
        uri.params = params;
    } else if uri.is_tel() {
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
    Some(uri)
}

fn valid_hostport(hp: &str) -> bool {
    let (host, port) = if let Some(v6) = hp.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, after)) => {
                if addr.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (addr, after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return false;
    }
    if !hp.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return false;
    }
    port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok())
}

/// A global tel number without visual separators (`+441632960999`), or `None` for a
/// local number.
pub fn tel_global_number(uri: &Uri<'_>) -> Option<String> {
    let n = uri.user?;
    let digits = n.strip_prefix('+')?;
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
    let (Some(x), Some(y)) = (parse(a), parse(b)) else {
        return a == b;
    };
    if !x.scheme.eq_ignore_ascii_case(y.scheme) {
        return false;
    }
    if x.is_tel() {
        return tel_global_number(&x) == tel_global_number(&y)
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
        assert!(parse("mailto:x@y").is_some());
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
