//! What every answer to a request copies or derives from it, read once: the top Via
//! (sent-by, branch, `rport`/`received` and its other parameters, RFC 3261 §20.42 and
//! §25.1, RFC 3581), From, To, Call-ID and CSeq (`Dialog`), the per-process key of
//! To-tags and transaction keys ([`TagKey`]) and the deterministic To-tag (RFC 3261
//! §8.2.6.2).
//!
//! Read here, below both `sip::redirect` (which checks these values and chooses the
//! answer) and `sip::response` (which writes them back), so neither imports the other.
//!
//! Must not touch: the answer's bytes (see `sip::response`), which answer a request gets
//! (see `sip::redirect`), sockets or transactions.

use super::message;
use std::hash::{BuildHasher, Hasher};

/// The per-process random key of To-tags and transaction keys. foldhash rather than
/// SipHash: both are keyed per process, and this runs twice per INVITE.
pub type TagKey = foldhash::quality::RandomState;

/// What the answer needs of the top Via, read in one pass over its parameters.
pub(super) struct TopVia<'v> {
    /// The whole value (`SIP/2.0/UDP host:port;params`).
    pub(super) value: &'v str,
    /// The value before its parameters (`SIP/2.0/UDP host:port`).
    pub(super) head: &'v str,
    /// `host[:port]` after the protocol (`""` when the sent-protocol does not read).
    pub(super) sent_by: &'v str,
    /// The sent-by's host (an IPv6 reference without its brackets) and port, or the 400
    /// reason phrase saying why the top Via does not read.
    pub(super) host_port: Result<(&'v str, Option<u16>), &'static str>,
    pub(super) branch: Option<&'v str>,
    pub(super) rport: bool,
    /// A `received` parameter is present (replaced in the answer).
    pub(super) received: bool,
    /// The parameters (name, value), for rewriting `rport`/`received` without scanning
    /// the value again; empty when there are more than fit (the rewrite then scans),
    /// so a hostile Via cannot make this allocate.
    pub(super) params: smallvec::SmallVec<[(&'v str, &'v str); 8]>,
}

impl<'v> TopVia<'v> {
    pub(super) fn read(value: &'v str) -> Self {
        let mut top = TopVia {
            value,
            head: value,
            sent_by: "",
            host_port: Err("Malformed Via"),
            branch: None,
            rport: false,
            received: false,
            params: smallvec::SmallVec::new(),
        };
        let mut fits = true;
        let mut note = |name: &'v str, v: &'v str| {
            if fits && top.params.len() < top.params.inline_size() {
                top.params.push((name, v));
            } else {
                fits = false;
            }
            match name.len() {
                6 if name.eq_ignore_ascii_case("branch") => {
                    top.branch.get_or_insert(v);
                }
                5 if name.eq_ignore_ascii_case("rport") => top.rport = true,
                8 if name.eq_ignore_ascii_case("received") => top.received = true,
                _ => {}
            }
        };
        let b = value.as_bytes();
        if memchr::memchr2(b'"', b'<', b).is_none() {
            // No quoted strings or brackets (the usual Via): every `;` separates, and a
            // byte loop over the few parameter bytes beats a search per parameter.
            let head_end = memchr::memchr(b';', b).unwrap_or(b.len());
            top.head = &value[..head_end];
            let mut start = head_end + 1;
            while start <= b.len() {
                let seg = &b[start..];
                let end = start + seg.iter().position(|&c| c == b';').unwrap_or(seg.len());
                let p = &value[start..end];
                match p.bytes().position(|c| c == b'=') {
                    Some(eq) => note(p[..eq].trim_ascii(), p[eq + 1..].trim_ascii()),
                    None => note(p.trim_ascii(), ""),
                }
                start = end + 1;
            }
        } else {
            let (head, params) = message::head_and_params(value);
            top.head = head;
            for (name, v) in params {
                note(name, v);
            }
        }
        if !fits {
            top.params.clear();
        }
        if let Some(sent_by) = sent_by(top.head) {
            top.sent_by = sent_by;
            top.host_port = split_host_port(sent_by);
        }
        top
    }
}

/// The sent-by of a Via value before its parameters, `sent-protocol LWS sent-by` (RFC
/// 3261 §20.42), when the protocol is SIP/2.0 over some transport. White space may
/// surround the slashes (SLASH = SWS "/" SWS, §25.1): `SIP / 2.0 / UDP host`.
fn sent_by(head: &str) -> Option<&str> {
    let after_protocol = match head.get(..8) {
        // The usual `SIP/2.0/UDP host:port`: one comparison.
        Some(p) if p.eq_ignore_ascii_case("SIP/2.0/") => head[8..].trim_ascii_start(),
        _ => {
            let mut parts = head.splitn(3, '/');
            let (name, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
            if !name.trim_ascii().eq_ignore_ascii_case("SIP") || version.trim_ascii() != "2.0" {
                return None;
            }
            rest.trim_ascii_start()
        }
    };
    // The transport, LWS, sent-by (white space before the parameters' `;` included).
    let transport = after_protocol
        .bytes()
        .position(|c| c == b' ' || c == b'\t')?;
    let sent_by = after_protocol[transport..].trim_ascii();
    (transport > 0 && !sent_by.is_empty()).then_some(sent_by)
}

/// What a request needs for any answer, read once.
pub(super) struct Dialog<'v> {
    pub(super) top: TopVia<'v>,
    pub(super) from: Option<&'v str>,
    pub(super) to: Option<&'v str>,
    pub(super) call_id: Option<&'v str>,
    pub(super) cseq: Option<&'v str>,
    /// The INVITE server transaction key (`transaction::tx_key`) for INVITE, ACK and CANCEL; 0
    /// for other methods, which have no use for it.
    pub(super) tx: u64,
}

/// Whether a To value has a `tag` parameter. A bare `<uri>`, the To of a new request,
/// has no parameters at all, which one search shows.
pub(super) fn has_tag(to: &str) -> bool {
    let b = to.as_bytes();
    if b.first() == Some(&b'<') && memchr::memchr(b'>', b) == Some(b.len() - 1) {
        return false;
    }
    message::param(to, "tag").is_some()
}

/// A deterministic To-tag: the same request (and its retransmissions) gets the same
/// tag; different dialogs get different ones (RFC 3261 §8.2.6.2). An RFC 3261 branch is
/// unique per transaction, so with the Call-ID it names the request; without one (RFC
/// 2543) the From tag joins them.
pub(super) fn to_tag(key: &TagKey, d: &Dialog<'_>) -> u64 {
    let mut h = key.build_hasher();
    h.write(d.call_id.unwrap_or("").as_bytes());
    h.write_u8(0);
    match d.top.branch.filter(|b| b.starts_with("z9hG4bK")) {
        Some(branch) => h.write(branch.as_bytes()),
        None => {
            let from_tag = d.from.and_then(|f| message::param(f, "tag")).unwrap_or("");
            h.write(from_tag.as_bytes());
            h.write_u8(0);
            h.write(d.top.branch.unwrap_or("").as_bytes());
        }
    }
    h.finish()
}

/// A sent-by's host (an IPv6 reference without its brackets) and port, RFC 3261 §20.42
/// `host [ COLON port ]` with COLON = SWS ":" SWS; or the 400 reason phrase when it does
/// not read (a port that is not a number or is above 65535, an IPv6 address without
/// brackets).
fn split_host_port(sent_by: &str) -> Result<(&str, Option<u16>), &'static str> {
    const MALFORMED: &str = "Malformed Via sent-by";
    let (host, after) = match sent_by.strip_prefix('[') {
        Some(v6) => {
            let close = v6.bytes().position(|c| c == b']').ok_or(MALFORMED)?;
            (&v6[..close], &v6[close + 1..])
        }
        None => {
            let end = sent_by
                .bytes()
                .position(|c| matches!(c, b':' | b' ' | b'\t'));
            sent_by.split_at(end.unwrap_or(sent_by.len()))
        }
    };
    if host.is_empty() {
        return Err(MALFORMED);
    }
    let after = after.trim_ascii_start();
    let port = match after.strip_prefix(':') {
        None if after.is_empty() => return Ok((host, None)),
        None => return Err(MALFORMED),
        Some(port) => port.trim_ascii_start(),
    };
    match message::port_value(port.as_bytes()) {
        Some(p) => u16::try_from(p)
            .map(|p| (host, Some(p)))
            .map_err(|_| "Via port above 65535"),
        None if !sent_by.starts_with('[') && port.contains(':') => {
            Err("IPv6 address in Via without brackets")
        }
        None => Err("Via port is not a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_via_fast_path_reads_what_the_parameter_reader_reads() {
        for via in [
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport",
            "SIP/2.0/UDP h ; branch = z9hG4bKa ; RPORT ; received=10.0.0.1",
            "SIP / 2.0 / TCP h:5061;branch=z9hG4bKa;branch=second;x",
            "SIP/2.0/UDP h;",
            "SIP/2.0/UDP h;;=v;flag",
            "SIP/2.0/UDP h",
            "SIP/2.0/UDP [2001:db8::1]:5060;received=2001:db8::2;rport=5",
            "SIP / 2.0 / UDP 127.0.0.1:5060 ;branch=z9hG4bKw ; rport",
            "SIP/2.0/UDP 127.0.0.1 : 5060;branch = z9hG4bKw;rport ;received = 10.0.0.1",
        ] {
            let top = TopVia::read(via);
            let (head, params) = message::head_and_params(via);
            let params: Vec<(&str, &str)> = params.collect();
            assert_eq!(top.head, head, "{via}");
            assert_eq!(top.params.as_slice(), params.as_slice(), "{via}");
            let get = |n: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(n));
            assert_eq!(top.branch, get("branch").map(|(_, v)| *v), "{via}");
            assert_eq!(top.rport, get("rport").is_some(), "{via}");
            assert_eq!(top.received, get("received").is_some(), "{via}");
        }
        let quoted = TopVia::read("SIP/2.0/UDP h;x=\"a;b\";branch=z9hG4bKq");
        assert_eq!(
            quoted.params.as_slice(),
            [("x", "\"a;b\""), ("branch", "z9hG4bKq")]
        );
        assert_eq!(quoted.sent_by, "h");
    }

    #[test]
    fn to_tag_presence_agrees_with_the_parameter_reader() {
        for to in [
            "<sip:a@b;user=phone>",
            "<sip:a@b>;tag=1",
            "<sip:a@b;tag=uri>",
            "<sip:a@b> ;tag=2",
            "<sip:a@b>x",
            "<sip:a@b><c>;tag=3",
            "<sip:a@b",
            "\"B\" <sip:a@b>;TAG=4",
            "sip:a@b;tag=5",
            "sip:a@b",
            "<",
            "",
        ] {
            assert_eq!(has_tag(to), message::param(to, "tag").is_some(), "{to}");
        }
    }

    #[test]
    fn to_tags_are_per_request() {
        let key = TagKey::default();
        let tag = |via: &str, from: &str, call_id: &str| {
            let d = Dialog {
                top: TopVia::read(via),
                from: Some(from),
                to: Some("<sip:b@x>"),
                call_id: Some(call_id),
                cseq: Some("1 INVITE"),
                tx: 0,
            };
            to_tag(&key, &d)
        };
        let via = "SIP/2.0/UDP h:5060;branch=z9hG4bK1";
        let old = "SIP/2.0/UDP h:5060;branch=1";
        assert_eq!(
            tag(via, "<sip:a@x>;tag=1", "c"),
            tag(via, "<sip:a@x>;tag=1", "c")
        );
        assert_ne!(
            tag(via, "<sip:a@x>;tag=1", "c"),
            tag("SIP/2.0/UDP h:5060;branch=z9hG4bK2", "<sip:a@x>;tag=1", "c")
        );
        assert_ne!(
            tag(via, "<sip:a@x>;tag=1", "c"),
            tag(via, "<sip:a@x>;tag=1", "d")
        );
        // Without an RFC 3261 branch the From tag tells dialogs apart.
        assert_eq!(
            tag(old, "<sip:a@x>;tag=1", "c"),
            tag(old, "<sip:a@x>;tag=1", "c")
        );
        assert_ne!(
            tag(old, "<sip:a@x>;tag=1", "c"),
            tag(old, "<sip:a@x>;tag=2", "c")
        );
    }

    #[test]
    fn sent_by_with_white_space_around_slashes_and_colon() {
        let ok: &[(&str, &str, &str, Option<u16>)] = &[
            (
                "SIP/2.0/UDP 192.0.2.1:5060",
                "192.0.2.1:5060",
                "192.0.2.1",
                Some(5060),
            ),
            ("sip/2.0/tcp h.example", "h.example", "h.example", None),
            (
                "SIP / 2.0 / UDP 127.0.0.1:5060 ",
                "127.0.0.1:5060",
                "127.0.0.1",
                Some(5060),
            ),
            (
                "SIP  /   2.0 /UDP 192.0.2.2",
                "192.0.2.2",
                "192.0.2.2",
                None,
            ),
            ("SIP/2.0/ TLS\th : 5061", "h : 5061", "h", Some(5061)),
            (
                "SIP/2.0/UDP [2001:db8::1] :5060",
                "[2001:db8::1] :5060",
                "2001:db8::1",
                Some(5060),
            ),
            (
                "SIP/2.0/UDP [2001:db8::1]",
                "[2001:db8::1]",
                "2001:db8::1",
                None,
            ),
            ("SIP/2.0/UDP h:0", "h:0", "h", Some(0)),
            ("SIP/2.0/UDP h:65535", "h:65535", "h", Some(65535)),
        ];
        for &(head, want_sent_by, host, port) in ok {
            let sent_by = sent_by(head).unwrap_or_else(|| panic!("{head}"));
            assert_eq!(sent_by, want_sent_by, "{head}");
            assert_eq!(split_host_port(sent_by), Ok((host, port)), "{head}");
        }
        for head in [
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/2.0/UDP127.0.0.1",
            "SIP/2.0 UDP h",
            "SIP/3.0/UDP h",
            "HTTP/2.0/UDP h",
            "SIP//2.0/UDP h",
            "",
        ] {
            assert_eq!(sent_by(head), None, "{head:?}");
        }
        for (sent_by, why) in [
            ("h:50x", "Via port is not a number"),
            ("h:", "Via port is not a number"),
            ("h : ", "Via port is not a number"),
            ("h:-1", "Via port is not a number"),
            ("h:65536", "Via port above 65535"),
            ("h:99999999999", "Via port above 65535"),
            ("[::1]:70000", "Via port above 65535"),
            ("2001:db8::1", "IPv6 address in Via without brackets"),
            ("2001:db8::1:5060", "IPv6 address in Via without brackets"),
            ("[::1", "Malformed Via sent-by"),
            ("[::1]x", "Malformed Via sent-by"),
            ("a b", "Malformed Via sent-by"),
            (":5060", "Malformed Via sent-by"),
            ("[]:5060", "Malformed Via sent-by"),
        ] {
            assert_eq!(split_host_port(sent_by), Err(why), "{sent_by}");
        }
    }
}
