//! The redirect server's answers: one request in, one response out (or a counted drop),
//! per SPEC §4's table, RFC 3261 §8.2 (request checks in order: method, URI scheme,
//! headers, extensions), §8.2.6 (response construction) and RFC 3581 (rport).
//!
//! Owns: validating a parsed request, choosing the status, asking the [`Router`] for
//! INVITEs, building the response bytes (Via copied with `received`/`rport`, To-tag,
//! Contacts with q, Server, Content-Length: 0), and where a UDP answer goes.
//!
//! Must not touch: sockets (see `sip::transport`) or routing rules (the Router decides).
//! The answer is computed synchronously from local data; transactions that wait on
//! upstream lookups arrive with issue 4.

use super::message::{self, Name, ParseError, Request, Status};
use crate::resolve::{Decision, Router};
use ipnet::IpNet;
use std::borrow::Cow;
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

/// Methods this server knows (RFC 3261 and common extensions); others get 501.
const KNOWN: &[&str] = &[
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "PRACK",
    "UPDATE",
    "REFER",
    "PUBLISH",
];
const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS";

/// Why a message got no answer; counted by the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Garbage,
    Response,
    Ack,
    /// A malformed request whose top Via cannot be read (SPEC §10.15).
    NoVia,
    /// An ACK (or anything unanswerable) from a source not in `sip.allow`.
    Denied,
}

impl Drop {
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::Garbage => "garbage",
            Drop::Response => "response",
            Drop::Ack => "ack",
            Drop::NoVia => "malformed",
            Drop::Denied => "denied",
        }
    }
}

/// What to do with one message.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes (to `dest` over UDP; on the same connection otherwise).
    /// `invite_tx` identifies the INVITE server transaction a final answer belongs to,
    /// for retransmission until ACK over UDP (RFC 3261 §17.2.1).
    Reply {
        bytes: Vec<u8>,
        dest: SocketAddr,
        status: u16,
        invite_tx: Option<u64>,
    },
    /// An ACK for the INVITE transaction `tx`: stop retransmitting; never answered.
    Ack {
        tx: u64,
    },
    Drop(Drop),
}

/// Settings the handler needs, taken from `[sip]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub allow: Vec<IpNet>,
    /// The `Server` header value.
    pub server: String,
}

/// The per-worker state: the router, settings, the tag key and a reused decision.
pub struct Handler<'r> {
    pub router: &'r Router,
    pub settings: &'r Settings,
    /// Key for deterministic To-tags (random per process).
    pub tag_key: &'r std::collections::hash_map::RandomState,
    decision: Decision,
    /// Set by the transport when it holds `sip.max_transactions` INVITE transactions:
    /// new INVITEs get 503 with Retry-After instead of growing state.
    pub overloaded: bool,
}

impl<'r> Handler<'r> {
    pub fn new(
        router: &'r Router,
        settings: &'r Settings,
        tag_key: &'r std::collections::hash_map::RandomState,
    ) -> Self {
        Handler {
            router,
            settings,
            tag_key,
            decision: Decision::default(),
            overloaded: false,
        }
    }

    /// Handles the message at the start of `buf`. Returns the outcome and how many bytes
    /// it took (`None`: incomplete, wait for more; streams only).
    pub fn handle(
        &mut self,
        buf: &[u8],
        source: SocketAddr,
        stream: bool,
    ) -> Option<(Outcome, usize)> {
        match message::parse(buf, stream) {
            Ok(Status::Partial) => None,
            Ok(Status::Complete(req)) => {
                let len = req.len;
                Some((self.request(&req, source), len))
            }
            Err(ParseError::Garbage) => Some((Outcome::Drop(Drop::Garbage), buf.len())),
            Err(ParseError::Response) => Some((Outcome::Drop(Drop::Response), buf.len())),
            Err(ParseError::Bad(why)) => Some((self.salvage_400(buf, source, why), buf.len())),
        }
    }

    fn allowed(&self, source: SocketAddr) -> bool {
        let ip = source.ip();
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.settings.allow.iter().any(|n| n.contains(&ip))
    }

    fn request(&mut self, req: &Request<'_>, source: SocketAddr) -> Outcome {
        let is_ack = req.method == "ACK";
        let vias = req.vias();
        let Some(top) = vias.first() else {
            return Outcome::Drop(Drop::NoVia);
        };
        if !self.allowed(source) {
            if is_ack {
                return Outcome::Drop(Drop::Denied);
            }
            // No transaction state for sources we do not serve: a spoofed source must
            // not make us retransmit toward it.
            let mut out = self.reply(req, &vias, source, 403, "Forbidden", |_| {});
            if let Outcome::Reply { invite_tx, .. } = &mut out {
                *invite_tx = None;
            }
            return out;
        }
        if !req.version.eq_ignore_ascii_case("SIP/2.0") {
            return if is_ack {
                Outcome::Drop(Drop::Ack)
            } else {
                self.reply(req, &vias, source, 505, "Version Not Supported", |_| {})
            };
        }
        if let Some(why) = check_headers(req, top) {
            return if is_ack {
                Outcome::Drop(Drop::Ack)
            } else {
                self.reply(req, &vias, source, 400, why, |_| {})
            };
        }
        if is_ack {
            return Outcome::Ack {
                tx: self.tx_key(req, &vias),
            };
        }
        if req.method != "CANCEL" {
            let unsupported: Vec<String> = req
                .headers(Name::Require)
                .flat_map(|h| {
                    let v = h.value();
                    message::split_commas(&v)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            if !unsupported.is_empty() {
                let extra = format!("Unsupported: {}\r\n", unsupported.join(", "));
                return self.reply(req, &vias, source, 420, "Bad Extension", |o| {
                    o.push_str(&extra)
                });
            }
        }
        match req.method {
            "INVITE" if self.overloaded => {
                self.reply(req, &vias, source, 503, "Service Unavailable", |o| {
                    o.push_str("Retry-After: 5\r\n")
                })
            }
            "INVITE" => {
                self.router.route_into(req.uri, false, &mut self.decision);
                let d = std::mem::take(&mut self.decision);
                let out = self.reply(req, &vias, source, d.status, d.reason, |o| {
                    for c in &d.contacts {
                        o.push_str("Contact: <");
                        o.push_str(&c.uri);
                        let _ = write!(o, ">;q={}\r\n", c.q);
                    }
                    if d.status == 503 {
                        o.push_str("Retry-After: 5\r\n");
                    }
                });
                self.decision = d;
                out
            }
            "OPTIONS" => self.reply(req, &vias, source, 200, "OK", |o| {
                let _ = write!(
                    o,
                    "Allow: {ALLOW}\r\nAccept: application/sdp\r\nSupported: \r\n"
                );
            }),
            "CANCEL" | "BYE" => {
                // Every INVITE is answered at once, so no transaction is pending to cancel.
                self.reply(
                    req,
                    &vias,
                    source,
                    481,
                    "Call/Transaction Does Not Exist",
                    |_| {},
                )
            }
            m if KNOWN.contains(&m) => {
                self.reply(req, &vias, source, 405, "Method Not Allowed", |o| {
                    let _ = write!(o, "Allow: {ALLOW}\r\n");
                })
            }
            _ => self.reply(req, &vias, source, 501, "Not Implemented", |o| {
                let _ = write!(o, "Allow: {ALLOW}\r\n");
            }),
        }
    }

    /// Identifies an INVITE server transaction and the ACK that ends it: the top Via's
    /// branch and sent-by when the branch has RFC 3261's magic cookie (the ACK to a
    /// non-2xx answer reuses the INVITE's branch, §17.1.1.3), else RFC 2543 matching on
    /// Call-ID, From tag and CSeq number (§17.2.3).
    pub fn tx_key(&self, req: &Request<'_>, vias: &[Cow<'_, str>]) -> u64 {
        let top = vias.first().map(|v| v.as_ref()).unwrap_or("");
        let mut h = self.tag_key.build_hasher();
        match message::param(top, "branch").filter(|b| b.starts_with("z9hG4bK")) {
            Some(branch) => {
                h.write(b"3261");
                h.write(branch.as_bytes());
                h.write_u8(0);
                h.write(top.split(';').next().unwrap_or("").as_bytes());
            }
            None => {
                h.write(b"2543");
                for n in [Name::CallId, Name::From] {
                    let v = req.header(n).map(|h| h.value()).unwrap_or_default();
                    let part = if n == Name::From {
                        message::param(&v, "tag").unwrap_or("").to_string()
                    } else {
                        v.to_string()
                    };
                    h.write(part.as_bytes());
                    h.write_u8(0);
                }
                let cseq = req
                    .header(Name::CSeq)
                    .map(|h| h.value())
                    .unwrap_or_default();
                h.write(cseq.split_whitespace().next().unwrap_or("").as_bytes());
            }
        }
        h.finish()
    }

    /// A deterministic To-tag: the same request (and its retransmissions) gets the same
    /// tag; different dialogs get different ones (RFC 3261 §8.2.6.2).
    fn to_tag(&self, call_id: &str, from_tag: &str, branch: &str) -> u64 {
        let mut h = self.tag_key.build_hasher();
        h.write(call_id.as_bytes());
        h.write_u8(0);
        h.write(from_tag.as_bytes());
        h.write_u8(0);
        h.write(branch.as_bytes());
        h.finish()
    }

    /// Builds a response to a parsed request; `extra` appends header lines.
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &self,
        req: &Request<'_>,
        vias: &[Cow<'_, str>],
        source: SocketAddr,
        status: u16,
        reason: &str,
        extra: impl FnOnce(&mut String),
    ) -> Outcome {
        let get = |n: Name| req.header(n).map(|h| h.value());
        let (dest, top) = via_for_response(&vias[0], source);
        let mut out = String::with_capacity(512);
        // Plain appends: this runs for every answer, and `write!` costs more than the copy.
        let line = |out: &mut String, name: &str, value: &str| {
            out.push_str(name);
            out.push_str(value);
            out.push_str("\r\n");
        };
        let _ = write!(out, "SIP/2.0 {status} ");
        out.push_str(reason);
        out.push_str("\r\n");
        line(&mut out, "Via: ", &top);
        for v in &vias[1..] {
            line(&mut out, "Via: ", v);
        }
        let from = get(Name::From);
        if let Some(f) = &from {
            line(&mut out, "From: ", f);
        }
        if let Some(t) = get(Name::To) {
            if message::param(&t, "tag").is_some() || status == 100 {
                line(&mut out, "To: ", &t);
            } else {
                let from_tag = from
                    .as_deref()
                    .and_then(|f| message::param(f, "tag"))
                    .unwrap_or("");
                let call_id = get(Name::CallId).unwrap_or_default();
                let branch = message::param(&vias[0], "branch").unwrap_or("");
                let tag = self.to_tag(&call_id, from_tag, branch);
                out.push_str("To: ");
                out.push_str(&t);
                let _ = write!(out, ";tag={tag:016x}\r\n");
            }
        }
        if let Some(c) = get(Name::CallId) {
            line(&mut out, "Call-ID: ", &c);
        }
        if let Some(c) = get(Name::CSeq) {
            line(&mut out, "CSeq: ", &c);
        }
        extra(&mut out);
        line(&mut out, "Server: ", &self.settings.server);
        out.push_str("Content-Length: 0\r\n\r\n");
        let invite_tx = (req.method == "INVITE" && status >= 200).then(|| self.tx_key(req, vias));
        Outcome::Reply {
            bytes: out.into_bytes(),
            dest,
            status,
            invite_tx,
        }
    }

    /// 400 for a message the parser rejected, when its top Via can still be read.
    fn salvage_400(&self, buf: &[u8], source: SocketAddr, why: &'static str) -> Outcome {
        let text = String::from_utf8_lossy(&buf[..buf.len().min(65535)]);
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        let _start = lines.next();
        let mut via = None;
        let mut copied = String::new();
        for line in lines {
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim();
            let value = value.trim();
            let is = |long: &str, short: &str| {
                name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short)
            };
            if is("Via", "v") && via.is_none() {
                via = message::split_commas(value).next().map(str::to_string);
            } else if is("From", "f") || is("To", "t") || is("Call-ID", "i") || is("CSeq", "CSeq") {
                let canonical = if is("From", "f") {
                    "From"
                } else if is("To", "t") {
                    "To"
                } else if is("Call-ID", "i") {
                    "Call-ID"
                } else {
                    "CSeq"
                };
                let _ = write!(copied, "{canonical}: {value}\r\n");
            }
        }
        let Some(via) = via else {
            return Outcome::Drop(Drop::NoVia);
        };
        if !self.allowed(source) {
            return Outcome::Drop(Drop::Denied);
        }
        let (dest, top) = via_for_response(&via, source);
        let bytes = format!(
            "SIP/2.0 400 {why}\r\nVia: {top}\r\n{copied}Server: {}\r\nContent-Length: 0\r\n\r\n",
            self.settings.server
        )
        .into_bytes();
        Outcome::Reply {
            bytes,
            dest,
            status: 400,
            invite_tx: None,
        }
    }
}

/// RFC 3261 §8.2 header checks; `Some(reason phrase)` for a 400.
fn check_headers(req: &Request<'_>, top_via: &str) -> Option<&'static str> {
    if !top_via
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/2.0/"))
    {
        return Some("Malformed Via");
    }
    for (name, why) in [
        (Name::From, "Missing From header"),
        (Name::To, "Missing To header"),
        (Name::CallId, "Missing Call-ID header"),
        (Name::CSeq, "Missing CSeq header"),
    ] {
        match req.headers(name).count() {
            0 => return Some(why),
            1 => {}
            _ => {
                return Some(match name {
                    Name::From => "Duplicate From header",
                    Name::To => "Duplicate To header",
                    Name::CallId => "Duplicate Call-ID header",
                    _ => "Duplicate CSeq header",
                });
            }
        }
    }
    let cseq = req.header(Name::CSeq)?.value();
    let mut parts = cseq.split_whitespace();
    let (Some(num), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return Some("Malformed CSeq");
    };
    if num.len() > 10 || num.parse::<u32>().is_err() {
        return Some("Malformed CSeq");
    }
    if method != req.method {
        return Some("CSeq method does not match the request method");
    }
    if let Some(mf) = req.header(Name::MaxForwards) {
        let v = mf.value();
        let v = v.trim();
        match v.parse::<u32>() {
            Ok(n) if n <= 255 && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Some("Malformed Max-Forwards"),
        }
    }
    None
}

/// The top Via for the response (with `received`/`rport` per RFC 3581 §4 and RFC 3261
/// §18.2.1) and the UDP destination (RFC 3581 §4: source address and port when `rport`
/// is present; else RFC 3261 §18.2.2: the source address, sent-by port or 5060).
fn via_for_response(via: &str, source: SocketAddr) -> (SocketAddr, String) {
    let sent_by = via
        .split_once(char::is_whitespace)
        .map(|(_, rest)| rest.trim_start())
        .and_then(|rest| rest.split(';').next())
        .unwrap_or("")
        .trim();
    let (host, port) = split_host_port(sent_by);
    let rport = message::param(via, "rport");
    let mut top = String::with_capacity(via.len() + 48);
    // Rebuild parameters: fill rport, add received when needed.
    let mut segments = via.split(';');
    top.push_str(segments.next().unwrap_or(via).trim_end());
    let ip_text = source.ip().to_string();
    let host_is_source = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .ok()
        == Some(source.ip());
    for seg in segments {
        let seg = seg.trim();
        let name = seg.split('=').next().unwrap_or(seg).trim();
        if name.eq_ignore_ascii_case("rport") {
            let _ = write!(top, ";rport={}", source.port());
        } else if name.eq_ignore_ascii_case("received") {
            continue; // replaced below
        } else {
            top.push(';');
            top.push_str(seg);
        }
    }
    if rport.is_some() || !host_is_source {
        let _ = write!(top, ";received={ip_text}");
    }
    let dest = if rport.is_some() {
        source
    } else {
        SocketAddr::new(source.ip(), port.unwrap_or(5060))
    };
    (dest, top)
}

fn split_host_port(sent_by: &str) -> (&str, Option<u16>) {
    if let Some(v6) = sent_by.strip_prefix('[')
        && let Some((h, rest)) = v6.split_once(']')
    {
        return (h, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match sent_by.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (sent_by, None),
    }
}
