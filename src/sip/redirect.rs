//! The redirect server's answers: one request in, one response out (or a counted drop),
//! per SPEC §4's table, RFC 3261 §8.2 (request checks in order: version and headers,
//! method (405/501), extensions (Require → 420), then the URI scheme (416, from the
//! router)), §8.2.6 (response construction) and RFC 3581 (rport).
//!
//! Owns: validating a parsed request, choosing the status, asking the [`Router`] for
//! INVITEs, building the response bytes (Via copied with `received`/`rport`, To-tag,
//! Contacts with q, Server, Content-Length: 0), and where a UDP answer goes.
//!
//! Must not touch: sockets (see `sip::transport`) or routing rules (the Router decides).
//!
//! Transactions: answers known at once (local zones, the cache) are computed here
//! synchronously; the transport keeps each final INVITE answer until ACK or Timer H
//! (re-sent on Timer G over UDP). A retransmitted INVITE of a live transaction is
//! recognised here before anything else and becomes [`Outcome::Retransmission`]: the
//! transport re-sends what it holds, byte for byte, and nothing is routed again. An
//! INVITE that needs upstream DNS becomes [`Outcome::Pending`]: 100 Trying now, and a
//! [`PendingInvite`] holding the copied headers from which the transport builds the
//! final answer (or the 487 after a CANCEL) when the lookup ends. Kept stateful rather
//! than RFC 3261 §8.2.7 stateless with signed To-tags: the state is small, bounded by
//! `sip.max_transactions`, and makes retransmissions byte-identical even when the cache
//! or zones change in between. Sent without state: the 503 of a server at that bound
//! (holding it would pass the bound), and answers to requests that cannot be matched
//! reliably or that we do not serve (403 to a source outside `sip.allow`, 400/505 for a
//! malformed request, the salvaged 400 and 513).

use super::dialog::{Dialog, TagKey, TopVia, has_tag, to_tag};
use super::message::{self, AddrProblem, Name, ParseError, Request, Status};
use super::stats::{Drop, SipStats};
use super::transaction::{PendingInvite, TxState, tx_key};
use crate::config::Transport;
use crate::resolve::{Decision, Router};
use ipnet::IpNet;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// Methods this server knows (RFC 3261 and common extensions); others get 501.
const KNOWN: &[&str] = super::stats::METHOD_LABELS
    .split_last()
    .expect("non-empty")
    .1;
const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS";

/// What to do with one message.
#[derive(Debug)]
pub enum Outcome<'h> {
    /// Send these bytes (to `dest` over UDP; on the same connection otherwise). They live
    /// in the handler's reused buffer until its next message. `invite_tx` identifies the
    /// INVITE server transaction a final answer belongs to, for retransmission until ACK
    /// over UDP (RFC 3261 §17.2.1).
    Reply {
        bytes: &'h [u8],
        dest: SocketAddr,
        status: u16,
        invite_tx: Option<u64>,
    },
    /// An ACK for the INVITE transaction `tx`: stop retransmitting; never answered.
    Ack {
        tx: u64,
    },
    /// An INVITE whose answer needs upstream DNS: send `trying` (100 Trying) now, route
    /// `invite.uri` with `Router::route_full`, answer with `invite.answer`.
    Pending {
        trying: &'h [u8],
        invite: PendingInvite,
    },
    /// A CANCEL for the pending INVITE `tx`: send `ok` (its 200), then the INVITE's 487.
    Cancel {
        ok: &'h [u8],
        tx: u64,
    },
    /// A retransmitted INVITE of the live transaction `tx` (RFC 3261 §17.2.1): send what
    /// the transaction holds (its final answer, or 100 Trying while it waits); it is
    /// not routed again (SPEC §10.27).
    Retransmission {
        tx: u64,
    },
    Drop(Drop),
}

impl PendingInvite {
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
}

/// Contact lines (and Retry-After for a 503) for a decision.
fn write_contacts(o: &mut Vec<u8>, decision: &Decision) {
    for c in &decision.contacts {
        o.extend_from_slice(b"Contact: <");
        o.extend_from_slice(c.uri.as_bytes());
        o.extend_from_slice(b">;q=");
        c.q.write_digits(o);
        o.extend_from_slice(b"\r\n");
    }
    if decision.status == 503 {
        o.extend_from_slice(b"Retry-After: 5\r\n");
    }
}

/// Settings the handler needs, taken from `[sip]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub allow: Vec<IpNet>,
    /// The `Server` header value.
    pub server: String,
}

/// The per-worker state: the router, settings, the tag key, a reused decision and a
/// reused response buffer (so an answer allocates nothing once the worker is warm).
pub struct Handler<'r> {
    pub router: &'r Router,
    pub settings: &'r Settings,
    /// Key for deterministic To-tags and transaction keys (random per process).
    pub tag_key: &'r TagKey,
    decision: Decision,
    out: Vec<u8>,
    /// Set by the transport when it holds `sip.max_transactions` INVITE transactions:
    /// new INVITEs get 503 with Retry-After instead of growing state.
    pub overloaded: bool,
    /// Where requests, answers and drops are counted, and the transport they came over.
    counting: Option<(&'r SipStats, Transport)>,
}

impl<'r> Handler<'r> {
    pub fn new(router: &'r Router, settings: &'r Settings, tag_key: &'r TagKey) -> Self {
        Handler {
            router,
            settings,
            tag_key,
            decision: Decision::default(),
            out: Vec::with_capacity(1024),
            overloaded: false,
            counting: None,
        }
    }

    /// Counts every request, answer and drop of this handler into `stats` under
    /// `transport`.
    pub fn counting(mut self, stats: &'r SipStats, transport: Transport) -> Self {
        self.counting = Some((stats, transport));
        self
    }

    fn count_drop(&self, why: Drop) -> Outcome<'static> {
        if let Some((stats, _)) = self.counting {
            stats.dropped(why);
        }
        Outcome::Drop(why)
    }

    /// Handles the message at the start of `buf`. Returns the outcome and how many bytes
    /// it took (`None`: incomplete, wait for more; streams only).
    pub fn handle(
        &mut self,
        buf: &[u8],
        source: SocketAddr,
        stream: bool,
    ) -> Option<(Outcome<'_>, usize)> {
        self.handle_with(buf, source, stream, &|_| TxState::None)
    }

    /// As [`Handler::handle`]; `tx_state(tx)` says where the INVITE server transaction
    /// `tx` stands, so that a CANCEL matching it gets 200 (and a pending INVITE its 487)
    /// rather than 481 (RFC 3261 §9.2).
    pub fn handle_with(
        &mut self,
        buf: &[u8],
        source: SocketAddr,
        stream: bool,
        tx_state: &dyn Fn(u64) -> TxState,
    ) -> Option<(Outcome<'_>, usize)> {
        match message::parse(buf, stream) {
            Ok(Status::Partial) => None,
            Ok(Status::Complete(req)) => {
                let len = req.len;
                Some((self.request(&req, source, tx_state), len))
            }
            Err(ParseError::Garbage) => Some((self.count_drop(Drop::Garbage), buf.len())),
            Err(ParseError::Response) => Some((self.count_drop(Drop::Response), buf.len())),
            Err(ParseError::Bad(why)) => Some((self.salvage(buf, source, 400, why), buf.len())),
        }
    }

    fn allowed(&self, source: SocketAddr) -> bool {
        let ip = source.ip();
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.settings.allow.iter().any(|n| n.contains(&ip))
    }

    fn request(
        &mut self,
        req: &Request<'_>,
        source: SocketAddr,
        tx_state: &dyn Fn(u64) -> TxState,
    ) -> Outcome<'_> {
        let is_ack = req.method == "ACK";
        if let Some((stats, transport)) = self.counting {
            stats.request(req.method, transport);
        }
        // Folded values are rare; unfolded copies live here for the answer's duration.
        let get = |n: Name| req.header(n).map(|h| h.value());
        let first_via = get(Name::Via);
        let Some(top) = first_via
            .as_deref()
            .and_then(|v| message::split_commas(v).next())
        else {
            return self.count_drop(Drop::NoVia);
        };
        let (from, to, call_id, cseq) = (
            get(Name::From),
            get(Name::To),
            get(Name::CallId),
            get(Name::CSeq),
        );
        let mut dialog = Dialog {
            top: TopVia::read(top),
            from: from.as_deref(),
            to: to.as_deref(),
            call_id: call_id.as_deref(),
            cseq: cseq.as_deref(),
            tx: 0,
        };
        if matches!(req.method, "INVITE" | "ACK" | "CANCEL") {
            dialog.tx = tx_key(self.tag_key, &dialog);
        }
        let d = &dialog;
        if !self.allowed(source) {
            if is_ack {
                return self.count_drop(Drop::Denied);
            }
            // No transaction state for sources we do not serve: a spoofed source must
            // not make us retransmit toward it.
            return without_state(self.reply(req, d, source, 403, "Forbidden", |_, _| {}));
        }
        if req.method == "INVITE" && tx_state(d.tx) != TxState::None {
            // Whatever its answer was (302, 404, 484, 416, 420, 503 …), the transaction
            // holds it.
            return Outcome::Retransmission { tx: d.tx };
        }
        if !req.version.eq_ignore_ascii_case("SIP/2.0") {
            return if is_ack {
                self.count_drop(Drop::Ack)
            } else {
                without_state(self.reply(req, d, source, 505, "Version Not Supported", |_, _| {}))
            };
        }
        if let Some(why) = check_headers(req, d) {
            // Without state: a malformed request may lack what tells transactions apart
            // (RFC 2543 matching on Call-ID, From tag and CSeq).
            return if is_ack {
                self.count_drop(Drop::Ack)
            } else {
                without_state(self.reply(req, d, source, 400, why, |_, _| {}))
            };
        }
        if is_ack {
            return Outcome::Ack { tx: d.tx };
        }
        // RFC 3261 §8.2.1 before §8.2.2.3: a method we do not handle gets 405/501
        // whatever it requires; Require binds the methods we answer (not CANCEL, §9.2).
        let handled = matches!(req.method, "INVITE" | "OPTIONS" | "BYE");
        if handled && req.count(Name::Require) > 0 {
            let mut unsupported = Vec::new();
            for h in req.headers(Name::Require) {
                let v = h.value();
                for option in message::split_commas(&v) {
                    if !unsupported.is_empty() {
                        unsupported.extend_from_slice(b", ");
                    }
                    unsupported.extend_from_slice(option.as_bytes());
                }
            }
            if !unsupported.is_empty() {
                return self.reply(req, d, source, 420, "Bad Extension", |o, _| {
                    line(o, "Unsupported: ", &unsupported)
                });
            }
        }
        match req.method {
            "INVITE" if self.overloaded => {
                // Sent without state: holding it would pass the bound (SPEC §10.29).
                without_state(
                    self.reply(req, d, source, 503, "Service Unavailable", |o, _| {
                        o.extend_from_slice(b"Retry-After: 5\r\n")
                    }),
                )
            }
            "INVITE" => {
                self.router.route_into(req.uri, false, &mut self.decision);
                if self.decision.is_pending() {
                    let invite = self.pending_invite(req, d, source);
                    self.write_reply(req, d, source, 100, "Trying", |_, _| {});
                    return Outcome::Pending {
                        trying: &self.out,
                        invite,
                    };
                }
                let (status, reason) = (self.decision.status, self.decision.reason);
                self.reply(req, d, source, status, reason, write_contacts)
            }
            "OPTIONS" => self.reply(req, d, source, 200, "OK", |o, _| {
                line(o, "Allow: ", ALLOW.as_bytes());
                o.extend_from_slice(b"Accept: application/sdp\r\nSupported: \r\n");
            }),
            // RFC 3261 §9.2: a CANCEL matching a transaction gets 200; a pending INVITE
            // then ends with 487 (the transport sends it); no transaction: 481.
            "CANCEL" => {
                let tx = d.tx;
                match tx_state(tx) {
                    TxState::Pending => {
                        self.write_reply(req, d, source, 200, "OK", |_, _| {});
                        Outcome::Cancel { ok: &self.out, tx }
                    }
                    TxState::Completed => self.reply(req, d, source, 200, "OK", |_, _| {}),
                    TxState::None => self.reply(
                        req,
                        d,
                        source,
                        481,
                        "Call/Transaction Does Not Exist",
                        |_, _| {},
                    ),
                }
            }
            "BYE" => self.reply(
                req,
                d,
                source,
                481,
                "Call/Transaction Does Not Exist",
                |_, _| {},
            ),
            m if KNOWN.contains(&m) => {
                self.reply(req, d, source, 405, "Method Not Allowed", |o, _| {
                    line(o, "Allow: ", ALLOW.as_bytes())
                })
            }
            _ => self.reply(req, d, source, 501, "Not Implemented", |o, _| {
                line(o, "Allow: ", ALLOW.as_bytes())
            }),
        }
    }

    /// Builds a response into the handler's buffer; `extra` appends header lines.
    fn reply(
        &mut self,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        status: u16,
        reason: &str,
        extra: impl FnOnce(&mut Vec<u8>, &Decision),
    ) -> Outcome<'_> {
        let (dest, invite_tx) = self.write_reply(req, d, source, status, reason, extra);
        tracing::debug!(method = req.method, uri = req.uri, status, %source, "SIP answer");
        Outcome::Reply {
            bytes: &self.out,
            dest,
            status,
            invite_tx,
        }
    }

    /// Writes a response into the handler's buffer (see [`build_reply`]); `extra` may
    /// read the decision just made. Returns the UDP destination and, for a final answer
    /// to an INVITE, its transaction key.
    fn write_reply(
        &mut self,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        status: u16,
        reason: &str,
        extra: impl FnOnce(&mut Vec<u8>, &Decision),
    ) -> (SocketAddr, Option<u64>) {
        if let Some((stats, _)) = self.counting {
            stats.response(status);
        }
        let Handler {
            out,
            tag_key,
            settings,
            decision,
            ..
        } = self;
        build_reply(
            out,
            tag_key,
            &settings.server,
            req,
            d,
            source,
            status,
            reason,
            |o| extra(o, decision),
        )
    }

    /// Copies what the answers to a pending INVITE need out of the request, section by
    /// section as every answer writes them.
    fn pending_invite(
        &self,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
    ) -> PendingInvite {
        let mut head = Vec::with_capacity(256);
        let dest = write_vias_and_from(&mut head, req, d, source);
        let mut to = Vec::with_capacity(96);
        write_to(&mut to, self.tag_key, d, true);
        let mut tail = Vec::with_capacity(96);
        write_call_id_and_cseq(&mut tail, d);
        PendingInvite {
            uri: req.uri.to_string(),
            tx: d.tx,
            dest,
            head,
            to,
            tail,
            server: self.settings.server.clone(),
        }
    }

    /// An answer to a message that cannot be handled as a request — 400 for one the
    /// parser rejected, 513 for one over `sip.max_message_bytes` on a stream — built from
    /// its top Via (with `received`/`rport` as for any answer) and its dialog headers,
    /// when the top Via can be read; else a counted drop.
    pub fn salvage(
        &mut self,
        buf: &[u8],
        source: SocketAddr,
        status: u16,
        why: &str,
    ) -> Outcome<'_> {
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
        let Some(via) = via else {
            return self.count_drop(Drop::NoVia);
        };
        if !self.allowed(source) {
            return self.count_drop(Drop::Denied);
        }
        if let Some((stats, _)) = self.counting {
            stats.response(status);
        }
        let top = TopVia::read(&via);
        let out = &mut self.out;
        out.clear();
        status_line(out, status, why);
        let dest = write_top_via(out, &top, source);
        out.extend_from_slice(&copied);
        finish(out, &self.settings.server, |_| {});
        Outcome::Reply {
            bytes: &self.out,
            dest,
            status,
            invite_tx: None,
        }
    }
}

/// An answer no transaction keeps (see the module doc): no retransmission, and a
/// retransmitted request is answered anew.
fn without_state(mut out: Outcome<'_>) -> Outcome<'_> {
    if let Outcome::Reply { invite_tx, .. } = &mut out {
        *invite_tx = None;
    }
    out
}

/// Appends `name` (with its `": "`), `value` and CRLF.
#[inline]
fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes a response per RFC 3261 §8.2.6 into `out` (cleared first): status line, the
/// Vias (top one with `received`/`rport`), From, To (with a To-tag when it had none),
/// Call-ID, CSeq, `extra` lines, Server, Content-Length: 0. Returns the UDP destination
/// and, for a final answer to an INVITE, its transaction key.
#[allow(clippy::too_many_arguments)]
fn build_reply(
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

/// RFC 3261 §8.2 header checks; `Some(reason phrase)` for a 400.
fn check_headers(req: &Request<'_>, d: &Dialog<'_>) -> Option<&'static str> {
    if let Err(why) = d.top.host_port {
        return Some(why);
    }
    if let Some(why) = message::request_uri_problem(req.uri) {
        return Some(why);
    }
    for (name, missing, duplicate) in [
        (Name::From, "Missing From header", "Duplicate From header"),
        (Name::To, "Missing To header", "Duplicate To header"),
        (
            Name::CallId,
            "Missing Call-ID header",
            "Duplicate Call-ID header",
        ),
        (Name::CSeq, "Missing CSeq header", "Duplicate CSeq header"),
    ] {
        match req.count(name) {
            0 => return Some(missing),
            1 => {}
            _ => return Some(duplicate),
        }
    }
    for (value, unterminated, unclosed) in [
        (
            d.from,
            "Unterminated quoted string in From",
            "Missing > in From",
        ),
        (d.to, "Unterminated quoted string in To", "Missing > in To"),
    ] {
        match value.and_then(message::addr_problem) {
            Some(AddrProblem::UnterminatedQuote) => return Some(unterminated),
            Some(AddrProblem::UnclosedBracket) => return Some(unclosed),
            None => {}
        }
    }
    let mut parts = d.cseq?.split_ascii_whitespace();
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
        let v = v.trim_ascii();
        match v.parse::<u32>() {
            Ok(n) if n <= 255 && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Some("Malformed Max-Forwards"),
        }
    }
    None
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
