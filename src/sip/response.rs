//! Every answer the SIP server writes, byte for byte: RFC 3261 §8.2.6 responses built
//! from a request's `Dialog` (status line; the Vias, the top one with `received` and
//! `rport` per RFC 3581 §4 and RFC 3261 §18.2.1, the others one per line; From; To with
//! a To-tag; Call-ID; CSeq; the answer's extra lines; Server; Content-Length: 0), the
//! extra lines some answers carry (Contacts with q, Allow, Accept/Supported,
//! Unsupported, Retry-After), the answers to a pending INVITE from the headers it
//! copied ([`PendingRequest`]: final answer, 487, 503, 500), and answers salvaged from a
//! message the parser would not take or that is too large (`Salvaged`, one header
//! scan), and where a UDP answer goes.
//!
//! A header every answer carries goes in `finish`; one that some answers carry gets a
//! `write_*` function here, passed as `extra` by `sip::redirect` (or by the
//! `PendingRequest` answer that needs it).
//!
//! Must not touch: which answer a request gets (see `sip::redirect`), sockets or what a
//! transaction holds (see `sip::transport`, `sip::transaction`).

use super::dialog::{Dialog, TagKey, TopVia, has_tag, to_tag};
use super::message::{self, Name, Request};
use super::transaction::PendingRequest;
use crate::resolve::Decision;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// The methods this server answers (`Allow`), without and with the registrar.
const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS";
const ALLOW_WITH_REGISTER: &str = "INVITE, ACK, CANCEL, OPTIONS, REGISTER";

/// Writes a response per RFC 3261 §8.2.6 into `out` (cleared first): status line, the
/// Vias (top one with `received`/`rport`), From, To (with a To-tag when it had none),
/// Call-ID, CSeq, `extra` lines, Server, Content-Length: 0. Returns the UDP destination
/// and, for a final answer to an INVITE, its transaction key.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_reply(
    out: &mut Vec<u8>,
    key: &TagKey,
    server: &str,
    req: &Request<'_>,
    d: &Dialog<'_>,
    source: SocketAddr,
    status: u16,
    reason: &str,
    extra: impl FnOnce(&mut Vec<u8>),
) -> (SocketAddr, Option<u64>) {
    out.clear();
    status_line(out, status, reason);
    let dest = write_vias_and_from(out, req, d, source);
    write_to(out, key, d, status != 100);
    write_call_id_and_cseq(out, d);
    finish(out, server, extra);
    let invite_tx = (req.method == "INVITE" && status >= 200).then_some(d.tx);
    (dest, invite_tx)
}

fn status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"SIP/2.0 ");
    push_u16(out, status);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The Via lines (the top one rewritten, the others copied in order, one value per
/// line: RFC 3261 §8.2.6.2) and From. Returns where a UDP answer goes.
fn write_vias_and_from(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    d: &Dialog<'_>,
    source: SocketAddr,
) -> SocketAddr {
    let dest = write_top_via(out, &d.top, source);
    let only_top = req.count(Name::Via) == 1
        && req
            .header(Name::Via)
            .is_some_and(|h| memchr::memchr(b',', h.raw_value().as_bytes()).is_none());
    let mut first = true;
    for h in req.headers(Name::Via).filter(|_| !only_top) {
        let v = h.value();
        for part in message::split_commas(&v) {
            if std::mem::take(&mut first) {
                continue; // the top Via, written above
            }
            line(out, "Via: ", part.as_bytes());
        }
    }
    if let Some(f) = d.from {
        line(out, "From: ", f.as_bytes());
    }
    dest
}

/// Writes the top Via line for the response (with `received`/`rport` per RFC 3581 §4 and
/// RFC 3261 §18.2.1) and returns the UDP destination (RFC 3581 §4: source address and
/// port when `rport` is present; else RFC 3261 §18.2.2: the source address, sent-by
/// port or 5060).
fn write_top_via(out: &mut Vec<u8>, top: &TopVia<'_>, source: SocketAddr) -> SocketAddr {
    let (host, port) = top.host_port.unwrap_or((top.sent_by, None));
    // With `rport`, `received` is added whatever the host is: no need to read it.
    let host_is_source = !top.rport && host.parse::<IpAddr>().is_ok_and(|ip| ip == source.ip());
    out.extend_from_slice(b"Via: ");
    if !top.rport && !top.received {
        // Nothing to rewrite (the usual case without rport): the value as it came.
        out.extend_from_slice(top.value.as_bytes());
    } else {
        rewrite_via_params(out, top, source);
    }
    if top.rport || !host_is_source {
        out.extend_from_slice(b";received=");
        push_ip(out, source.ip());
    }
    out.extend_from_slice(b"\r\n");
    if top.rport {
        source
    } else {
        SocketAddr::new(source.ip(), port.unwrap_or(5060))
    }
}

/// The top Via's value with `rport` filled with the source port and `received` dropped.
fn rewrite_via_params(out: &mut Vec<u8>, top: &TopVia<'_>, source: SocketAddr) {
    out.extend_from_slice(top.head.trim_ascii_end().as_bytes());
    let mut write = |name: &str, v: &str| {
        if name.eq_ignore_ascii_case("rport") {
            out.extend_from_slice(b";rport=");
            push_u16(out, source.port());
        } else if !name.eq_ignore_ascii_case("received") {
            out.push(b';');
            out.extend_from_slice(name.as_bytes());
            if !v.is_empty() {
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
        }
    };
    if top.params.is_empty() {
        // More parameters than [`TopVia`] keeps: scan the value again.
        for (name, v) in message::params(top.value) {
            write(name, v);
        }
    } else {
        for &(name, v) in &top.params {
            write(name, v);
        }
    }
}

/// The To line; with `with_tag`, a deterministic To-tag is added when it has none.
fn write_to(out: &mut Vec<u8>, key: &TagKey, d: &Dialog<'_>, with_tag: bool) {
    let Some(t) = d.to else {
        return;
    };
    out.extend_from_slice(b"To: ");
    out.extend_from_slice(t.as_bytes());
    if with_tag && !has_tag(t) {
        let tag = to_tag(key, d);
        out.extend_from_slice(b";tag=");
        push_hex(out, tag);
    }
    out.extend_from_slice(b"\r\n");
}

fn write_call_id_and_cseq(out: &mut Vec<u8>, d: &Dialog<'_>) {
    if let Some(c) = d.call_id {
        line(out, "Call-ID: ", c.as_bytes());
    }
    if let Some(c) = d.cseq {
        line(out, "CSeq: ", c.as_bytes());
    }
}

/// `extra` lines, Server, and the end of the head (no body).
fn finish(out: &mut Vec<u8>, server: &str, extra: impl FnOnce(&mut Vec<u8>)) {
    extra(out);
    line(out, "Server: ", server.as_bytes());
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// Appends `name` (with its `": "`), `value` and CRLF.
#[inline]
fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl PendingRequest {
    /// Copies what the answers to a pending INVITE need out of the request, section by
    /// section as every answer writes them.
    pub(super) fn new(
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        key: &TagKey,
        server: &str,
    ) -> Self {
        let mut head = Vec::with_capacity(256);
        let dest = write_vias_and_from(&mut head, req, d, source);
        let mut to = Vec::with_capacity(96);
        write_to(&mut to, key, d, true);
        let mut tail = Vec::with_capacity(96);
        write_call_id_and_cseq(&mut tail, d);
        PendingRequest {
            uri: req.uri.to_string(),
            tx: d.tx,
            dest,
            head,
            to,
            tail,
            server: server.to_string(),
        }
    }

    /// A final answer for this INVITE: status line, the copied headers, `extra` lines,
    /// Server and Content-Length: 0.
    pub fn respond(&self, status: u16, reason: &str, extra: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        status_line(&mut out, status, reason);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.to);
        out.extend_from_slice(&self.tail);
        finish(&mut out, &self.server, extra);
        out
    }

    /// The answer a decision makes (302 with Contacts, 404, 503 with Retry-After …).
    pub fn answer(&self, decision: &Decision) -> Vec<u8> {
        self.respond(decision.status, decision.reason, |o| {
            write_contacts(o, decision)
        })
    }

    /// 487 Request Terminated, after a CANCEL (RFC 3261 §9.2).
    pub fn terminated(&self) -> Vec<u8> {
        self.respond(487, "Request Terminated", |_| {})
    }

    /// 503 + Retry-After: no slot is free for this INVITE, or the server stops.
    pub fn unavailable(&self) -> Vec<u8> {
        self.respond(503, "Service Unavailable", write_retry_after)
    }

    /// 500: the lookup failed in a way it could not answer (a panic), or a REGISTER's
    /// commit could not be confirmed.
    pub fn internal_error(&self) -> Vec<u8> {
        self.respond(500, "Server Internal Error", |_| {})
    }
}

/// Contact lines (and Retry-After for a 503) for a decision.
pub(super) fn write_contacts(o: &mut Vec<u8>, decision: &Decision) {
    for c in &decision.contacts {
        o.extend_from_slice(b"Contact: <");
        o.extend_from_slice(c.uri.as_bytes());
        o.extend_from_slice(b">;q=");
        c.q.write_digits(o);
        o.extend_from_slice(b"\r\n");
    }
    if decision.status == 503 {
        write_retry_after(o);
    }
}

/// `Allow` (405, 501 and the 200 to OPTIONS); REGISTER when the registrar is on.
pub(super) fn write_allow(o: &mut Vec<u8>, register: bool) {
    let allow = if register { ALLOW_WITH_REGISTER } else { ALLOW };
    line(o, "Allow: ", allow.as_bytes())
}

/// What the 200 to OPTIONS says this server takes (RFC 3261 §11.2): Allow, Accept and
/// an empty Supported.
pub(super) fn write_capabilities(o: &mut Vec<u8>, register: bool) {
    write_allow(o, register);
    o.extend_from_slice(b"Accept: application/sdp\r\nSupported: \r\n");
}

/// `Unsupported` with the options a request required (420, RFC 3261 §8.2.2.3).
pub(super) fn write_unsupported(o: &mut Vec<u8>, options: &[u8]) {
    line(o, "Unsupported: ", options)
}

/// One `WWW-Authenticate` per algorithm, in the configured order (RFC 8760 §2.4), all
/// with one nonce and `qop="auth"`; `stale=true` when the last nonce had expired.
pub(super) fn write_challenges(
    o: &mut Vec<u8>,
    realm: &str,
    nonce: &str,
    algorithms: &[crate::config::DigestAlgorithm],
    stale: bool,
) {
    for alg in algorithms {
        o.extend_from_slice(b"WWW-Authenticate: Digest realm=\"");
        o.extend_from_slice(realm.as_bytes());
        o.extend_from_slice(b"\", nonce=\"");
        o.extend_from_slice(nonce.as_bytes());
        o.extend_from_slice(b"\", algorithm=");
        o.extend_from_slice(alg.as_str().as_bytes());
        o.extend_from_slice(b", qop=\"auth\"");
        if stale {
            o.extend_from_slice(b", stale=true");
        }
        o.extend_from_slice(b"\r\n");
    }
}

/// `Min-Expires` (423 Interval Too Brief, RFC 3261 §10.3 step 7).
pub(super) fn write_min_expires(o: &mut Vec<u8>, seconds: u32) {
    o.extend_from_slice(b"Min-Expires: ");
    o.extend_from_slice(itoa::Buffer::new().format(seconds).as_bytes());
    o.extend_from_slice(b"\r\n");
}

/// The 200 to a REGISTER (RFC 3261 §10.3 step 8): every current binding with its
/// remaining `expires` (and its q when not 1), then `Date`.
pub(super) fn write_bindings(o: &mut Vec<u8>, bindings: &[crate::registrar::Binding], now: u64) {
    for b in bindings.iter().filter(|b| b.expires_at > now) {
        o.extend_from_slice(b"Contact: <");
        o.extend_from_slice(b.contact.as_bytes());
        o.extend_from_slice(b">;expires=");
        o.extend_from_slice(itoa::Buffer::new().format(b.expires_in(now)).as_bytes());
        if b.q != 1000 {
            o.extend_from_slice(b";q=");
            crate::resolve::decision::Q(b.q).write_digits(o);
        }
        o.extend_from_slice(b"\r\n");
    }
    let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now));
    line(o, "Date: ", date.as_bytes());
}

/// `Retry-After: 5` (every 503).
pub(super) fn write_retry_after(o: &mut Vec<u8>) {
    o.extend_from_slice(b"Retry-After: 5\r\n")
}

/// What an answer to a message that cannot be handled as a request is built from (the
/// salvaged 400 and 513): the first value of its first Via, and its From, To, Call-ID
/// and CSeq lines copied in their order under their long names.
pub(super) struct Salvaged {
    via: String,
    copied: Vec<u8>,
}

impl Salvaged {
    /// The one header scan of a message the parser would not take: its head (within the
    /// first 64 KiB, decoded lossily) line by line up to the first empty line. `None`
    /// without a Via.
    pub(super) fn scan(buf: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(&buf[..buf.len().min(65535)]);
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        let _start = lines.next();
        let mut via = None;
        let mut copied = Vec::new();
        for l in lines {
            if l.is_empty() {
                break;
            }
            let Some((name, value)) = l.split_once(':') else {
                continue;
            };
            let name = name.trim_ascii();
            let value = value.trim_ascii();
            let is = |long: &str, short: &str| {
                name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short)
            };
            if is("Via", "v") && via.is_none() {
                via = message::split_commas(value).next().map(str::to_string);
                continue;
            }
            let canonical = if is("From", "f") {
                "From: "
            } else if is("To", "t") {
                "To: "
            } else if is("Call-ID", "i") {
                "Call-ID: "
            } else if is("CSeq", "CSeq") {
                "CSeq: "
            } else {
                continue;
            };
            line(&mut copied, canonical, value.as_bytes());
        }
        Some(Salvaged { via: via?, copied })
    }

    /// Writes the answer into `out` (cleared first): status line, the top Via (with
    /// `received`/`rport`), the copied lines, Server, Content-Length: 0. Returns where a
    /// UDP answer goes.
    pub(super) fn write(
        &self,
        out: &mut Vec<u8>,
        source: SocketAddr,
        status: u16,
        reason: &str,
        server: &str,
    ) -> SocketAddr {
        let top = TopVia::read(&self.via);
        out.clear();
        status_line(out, status, reason);
        let dest = write_top_via(out, &top, source);
        out.extend_from_slice(&self.copied);
        finish(out, server, |_| {});
        dest
    }
}

fn push_u16(out: &mut Vec<u8>, n: u16) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

/// 16 lower-case hex digits.
fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out.extend_from_slice(&digits);
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut b = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(b.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rport_rewrite_is_the_same_with_few_or_many_parameters() {
        let source: SocketAddr = "192.0.2.7:5099".parse().unwrap();
        for extra in [0usize, 3, 20] {
            let head = "SIP/2.0/UDP host.example:5060;branch=z9hG4bKx";
            let more: String = (0..extra).map(|i| format!(";p{i}=v{i}")).collect();
            let value = format!("{head}{more};received=10.0.0.1;rport");
            let top = TopVia::read(&value);
            // Past the inline capacity nothing is kept: the rewrite scans again.
            assert_eq!(top.params.is_empty(), extra + 3 > 8, "{extra}");
            assert!(!top.params.spilled());
            assert!(top.rport && top.received);
            assert_eq!(top.branch, Some("z9hG4bKx"));
            let mut out = Vec::new();
            rewrite_via_params(&mut out, &top, source);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{head}{more};rport=5099")
            );
        }
    }

    #[test]
    fn via_with_white_space_is_answered_as_sent() {
        let source: SocketAddr = "127.0.0.1:5099".parse().unwrap();
        let answer = |via: &str| {
            let top = TopVia::read(via);
            let mut out = Vec::new();
            let dest = write_top_via(&mut out, &top, source);
            (String::from_utf8(out).unwrap(), dest)
        };
        // rport: filled with the source port, `received` added, answered to the source.
        assert_eq!(
            answer("SIP / 2.0 / UDP 127.0.0.1:5060 ;branch=z9hG4bKw ; rport"),
            (
                "Via: SIP / 2.0 / UDP 127.0.0.1:5060;branch=z9hG4bKw;rport=5099;received=127.0.0.1\r\n"
                    .to_string(),
                source
            )
        );
        // No rport: the sent-by port (white space around its colon), no `received` when
        // the host is the source.
        assert_eq!(
            answer("SIP / 2.0 / UDP 127.0.0.1 : 5070 ;branch=z9hG4bKw"),
            (
                "Via: SIP / 2.0 / UDP 127.0.0.1 : 5070 ;branch=z9hG4bKw\r\n".to_string(),
                "127.0.0.1:5070".parse().unwrap()
            )
        );
        assert_eq!(
            answer("SIP/2.0/UDP [::1] : 5071;branch=z9hG4bKw").1,
            "127.0.0.1:5071".parse().unwrap()
        );
    }
}
