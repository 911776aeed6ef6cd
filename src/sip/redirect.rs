//! The redirect server's decisions: one request in, one outcome out (an answer, or a
//! counted drop), per SPEC §4's table and RFC 3261 §8.2 (request checks in order:
//! version and headers, method (405/501), extensions (Require → 420), then the URI
//! scheme (416, from the router)).
//!
//! Owns: validating a parsed request, choosing the status and which extra lines its
//! answer carries, asking the [`Router`] for INVITEs (REGISTER, with the registrar on,
//! goes to `sip::register`, which extends this handler), and telling retransmissions,
//! ACKs and CANCELs of a live transaction apart. The request's top Via and dialog
//! headers are read by `sip::dialog`; the answer's bytes (and where a UDP answer goes)
//! are written by `sip::response`.
//!
//! Must not touch: sockets or what a transaction holds (see `sip::transport`,
//! `sip::transaction`), the bytes of an answer (see `sip::response`), or routing rules
//! (the Router decides).
//!
//! Transactions: answers known at once (local zones, the cache) are computed here
//! synchronously; the task's transaction set (`sip::transaction`) keeps each final
//! INVITE answer until ACK or Timer H (re-sent on Timer G over UDP). A retransmitted
//! INVITE of a live transaction is recognised here before anything else and becomes
//! [`Outcome::Retransmission`]: the transport re-sends what is held, byte for byte, and
//! nothing is routed again. An INVITE that needs upstream DNS becomes
//! [`Outcome::Pending`]: 100 Trying now, and a [`PendingRequest`] holding the copied
//! headers from which the final answer (or the 487 after a CANCEL) is built when the
//! lookup ends. Kept stateful rather than RFC 3261 §8.2.7 stateless with signed
//! To-tags: the state is small, bounded by
//! `sip.max_transactions`, and makes retransmissions byte-identical even when the cache
//! or zones change in between. Sent without state: the 503 of a server at that bound
//! (holding it would pass the bound), and answers to requests that cannot be matched
//! reliably or that we do not serve (403 to a source outside `sip.allow`, 400/505 for a
//! malformed request, the salvaged 400 and 513).

use super::dialog::{Dialog, TagKey, TopVia};
use super::message::{self, AddrProblem, Name, ParseError, Request, Status};
use super::response::{self, Salvaged};
use super::stats::{DropReason, SipStats};
use super::transaction::{PendingRequest, TxState, register_tx_key, tx_key};
use crate::config::Transport;
use crate::registrar::{Registrar, Update};
use crate::resolve::{Decision, Router};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// Methods this server knows (RFC 3261 and common extensions); others get 501.
const KNOWN: &[&str] = super::stats::METHOD_LABELS
    .split_last()
    .expect("non-empty")
    .1;

/// What to do with one message.
#[derive(Debug)]
pub enum Outcome<'h> {
    /// Send these bytes (to `dest` over UDP; on the same connection otherwise). They live
    /// in the handler's reused buffer until its next message. `held` names the server
    /// transaction that keeps a final answer: an INVITE's, for retransmission until ACK
    /// over UDP (RFC 3261 §17.2.1), or a REGISTER's, given again to a retransmitted
    /// request (§17.2.2).
    Reply {
        bytes: &'h [u8],
        dest: SocketAddr,
        status: u16,
        held: Option<Held>,
    },
    /// An ACK for the INVITE transaction `tx`: stop retransmitting; never answered.
    Ack {
        tx: u64,
    },
    /// An INVITE whose answer needs upstream DNS: send `trying` (100 Trying) now, route
    /// `invite.uri` with `Router::route_full`, answer with `invite.answer`.
    Pending {
        trying: &'h [u8],
        invite: PendingRequest,
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
    /// A REGISTER whose change the registrar's writer is to commit, once the transport
    /// holds its transaction: its answer (200 with the bindings, or 500/403) is built
    /// from `register` when the result comes.
    Register {
        register: PendingRequest,
        update: Update,
    },
    Drop(DropReason),
}

/// The server transaction a final answer belongs to (see [`Outcome::Reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Invite(u64),
    Register(u64),
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
    /// The registrar, when `registrar.enabled` (else REGISTER gets 405).
    pub registrar: Option<&'r Registrar>,
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
            registrar: None,
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

    /// Answers REGISTER as the registrar (SPEC §11).
    pub fn with_registrar(mut self, registrar: Option<&'r Registrar>) -> Self {
        self.registrar = registrar;
        self
    }

    fn count_drop(&self, why: DropReason) -> Outcome<'static> {
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
            Err(ParseError::Garbage) => Some((self.count_drop(DropReason::Garbage), buf.len())),
            Err(ParseError::Response) => Some((self.count_drop(DropReason::Response), buf.len())),
            Err(ParseError::Bad(why)) => Some((self.salvage(buf, source, 400, why), buf.len())),
        }
    }

    /// Copies what the answers to a pending INVITE (or REGISTER) need out of the request.
    pub(super) fn pending_request(
        &self,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
    ) -> PendingRequest {
        PendingRequest::new(req, d, source, self.tag_key, &self.settings.server)
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
        let Some(salvaged) = Salvaged::scan(buf) else {
            return self.count_drop(DropReason::NoVia);
        };
        if !self.allowed(source) {
            return self.count_drop(DropReason::Denied);
        }
        if let Some((stats, _)) = self.counting {
            stats.response(status);
        }
        let dest = salvaged.write(&mut self.out, source, status, why, &self.settings.server);
        Outcome::Reply {
            bytes: &self.out,
            dest,
            status,
            held: None,
        }
    }

    /// 513 Message Too Large for a message over `sip.max_message_bytes` on a stream
    /// (SPEC §10.19), salvaged as [`Handler::salvage`] does; the transport then closes
    /// the connection.
    pub fn too_large(&mut self, buf: &[u8], source: SocketAddr) -> Outcome<'_> {
        self.salvage(buf, source, 513, "Message Too Large")
    }

    fn allowed(&self, source: SocketAddr) -> bool {
        self.allowed_by(source, &self.settings.allow)
    }

    fn allowed_by(&self, source: SocketAddr, allow: &[IpNet]) -> bool {
        let ip = source.ip();
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        allow.iter().any(|n| n.contains(&ip))
    }

    /// Whether `source` may send this method: REGISTER by `registrar.allow` when set,
    /// everything else (and REGISTER without it) by `sip.allow`.
    fn allowed_method(&self, source: SocketAddr, method: &str) -> bool {
        match self.registrar.and_then(|r| r.config.allow.as_deref()) {
            Some(allow) if method == "REGISTER" => self.allowed_by(source, allow),
            _ => self.allowed(source),
        }
    }

    /// A parsed request: counted, its top Via and dialog headers read once (no Via: a
    /// counted drop) and its transaction key made; then whether the source is served
    /// (`sip.allow`) and the request retransmits a live INVITE, and the checks of RFC
    /// 3261 §8.2 in order (version, headers). A request that passes them gets its
    /// method's answer.
    fn request(
        &mut self,
        req: &Request<'_>,
        source: SocketAddr,
        tx_state: &dyn Fn(u64) -> TxState,
    ) -> Outcome<'_> {
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
            return self.count_drop(DropReason::NoVia);
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
        let register = req.method == "REGISTER" && self.registrar.is_some();
        if matches!(req.method, "INVITE" | "ACK" | "CANCEL") {
            dialog.tx = tx_key(self.tag_key, &dialog);
        } else if register {
            dialog.tx = register_tx_key(self.tag_key, &dialog);
        }
        let d = &dialog;
        let is_ack = req.method == "ACK";
        if !self.allowed_method(source, req.method) {
            if is_ack {
                return self.count_drop(DropReason::Denied);
            }
            // No transaction state for sources we do not serve: a spoofed source must
            // not make us retransmit toward it.
            return without_state(self.reply(req, d, source, 403, "Forbidden", |_, _| {}));
        }
        if (req.method == "INVITE" || register) && tx_state(d.tx) != TxState::None {
            // Whatever its answer was (302, 404, 484, 416, 420, 503 …), the transaction
            // holds it; a REGISTER's, while its change commits or for Timer J after.
            return Outcome::Retransmission { tx: d.tx };
        }
        if !req.version.eq_ignore_ascii_case("SIP/2.0") {
            return if is_ack {
                self.count_drop(DropReason::Ack)
            } else {
                without_state(self.reply(req, d, source, 505, "Version Not Supported", |_, _| {}))
            };
        }
        if let Some(why) = check_headers(req, d) {
            // Without state: a malformed request may lack what tells transactions apart
            // (RFC 2543 matching on Call-ID, From tag and CSeq).
            return if is_ack {
                self.count_drop(DropReason::Ack)
            } else {
                without_state(self.reply(req, d, source, 400, why, |_, _| {}))
            };
        }
        if is_ack {
            return Outcome::Ack { tx: d.tx };
        }
        self.answer(req, d, source, tx_state)
    }

    /// The answer a request that passed the checks gets, by method (SPEC §4).
    fn answer(
        &mut self,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        tx_state: &dyn Fn(u64) -> TxState,
    ) -> Outcome<'_> {
        // RFC 3261 §8.2.1 before §8.2.2.3: a method we do not handle gets 405/501
        // whatever it requires; Require binds the methods we answer (not CANCEL, §9.2).
        let registrar = self.registrar;
        let handled = matches!(req.method, "INVITE" | "OPTIONS" | "BYE")
            || (req.method == "REGISTER" && registrar.is_some());
        if handled && let Some(options) = unsupported(req) {
            return self.reply(req, d, source, 420, "Bad Extension", |o, _| {
                response::write_unsupported(o, &options)
            });
        }
        match req.method {
            "INVITE" if self.overloaded => {
                // Sent without state: holding it would pass the bound (SPEC §10.29).
                without_state(
                    self.reply(req, d, source, 503, "Service Unavailable", |o, _| {
                        response::write_retry_after(o)
                    }),
                )
            }
            "INVITE" => {
                self.router.route_into(req.uri, false, &mut self.decision);
                if self.decision.is_pending() {
                    let invite = self.pending_request(req, d, source);
                    self.write_reply(req, d, source, 100, "Trying", |_, _| {});
                    return Outcome::Pending {
                        trying: &self.out,
                        invite,
                    };
                }
                let (status, reason) = (self.decision.status, self.decision.reason);
                self.reply(req, d, source, status, reason, response::write_contacts)
            }
            "OPTIONS" => self.reply(req, d, source, 200, "OK", |o, _| {
                response::write_capabilities(o, registrar.is_some())
            }),
            "REGISTER" if let Some(reg) = registrar => self.register(reg, req, d, source),
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
                    response::write_allow(o, registrar.is_some())
                })
            }
            _ => self.reply(req, d, source, 501, "Not Implemented", |o, _| {
                response::write_allow(o, registrar.is_some())
            }),
        }
    }

    /// Builds a response into the handler's buffer; `extra` appends header lines.
    pub(super) fn reply(
        &mut self,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        status: u16,
        reason: &str,
        extra: impl FnOnce(&mut Vec<u8>, &Decision),
    ) -> Outcome<'_> {
        let (dest, invite_tx) = self.write_reply(req, d, source, status, reason, extra);
        let held = match invite_tx {
            Some(tx) => Some(Held::Invite(tx)),
            None if req.method == "REGISTER" && self.registrar.is_some() && status >= 200 => {
                Some(Held::Register(d.tx))
            }
            None => None,
        };
        tracing::debug!(method = req.method, uri = req.uri, status, %source, "SIP answer");
        Outcome::Reply {
            bytes: &self.out,
            dest,
            status,
            held,
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
        response::build_reply(
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
}

/// An answer no transaction keeps (see the module doc): no retransmission, and a
/// retransmitted request is answered anew.
fn without_state(mut out: Outcome<'_>) -> Outcome<'_> {
    if let Outcome::Reply { held, .. } = &mut out {
        *held = None;
    }
    out
}

/// The options a request requires (its Require values, comma-separated), none of which
/// this server supports (RFC 3261 §8.2.2.3); `None` without any.
fn unsupported(req: &Request<'_>) -> Option<Vec<u8>> {
    if req.count(Name::Require) == 0 {
        return None;
    }
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
    (!unsupported.is_empty()).then_some(unsupported)
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
