//! What the SIP side counts (SPEC §8 `sip_*`, `transactions_active`) and how those
//! counts become metrics: requests by transport and method, responses by code,
//! retransmitted final answers, messages not answered by reason ([`DropReason`]), and the
//! INVITE transactions held.
//!
//! Owns: the label sets (methods, transports, response codes, drop reasons) and
//! [`SipStats`]. Every other file of `sip/` may count here; this file imports none of
//! them. Must not touch: what is answered or how (see `sip::redirect`,
//! `sip::response`), sockets or transactions (see `sip::transport`,
//! `sip::transaction`).

use crate::config::Transport;
use crate::metrics::{Counters, Family};

/// Method labels: the methods `sip::redirect` knows, then `other` (a label per unknown
/// method would let any client grow the metric without bound).
pub const METHOD_LABELS: [&str; 15] = [
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
    "other",
];

pub const TRANSPORT_LABELS: [&str; 3] = ["udp", "tcp", "tls"];

/// Response codes this server sends; anything else counts under the last slot (`other`).
pub const RESPONSE_CODES: [u16; 20] = [
    100, 200, 302, 400, 401, 403, 404, 405, 416, 420, 423, 481, 484, 487, 500, 501, 503, 505, 513,
    0,
];

/// Why a message got no answer; counted by the handler (`enroute_sip_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Garbage,
    Response,
    Ack,
    /// A malformed request whose top Via cannot be read (SPEC §10.15).
    NoVia,
    /// An ACK (or anything unanswerable) from a source not in `sip.allow`.
    Denied,
    /// Larger than `sip.max_message_bytes` (counted by the transport, which sees the
    /// size; the handler never returns it).
    Oversized,
}

impl DropReason {
    /// Every reason, in declaration order (so `reason as usize` is its index).
    pub const ALL: [DropReason; 6] = [
        DropReason::Garbage,
        DropReason::Response,
        DropReason::Ack,
        DropReason::NoVia,
        DropReason::Denied,
        DropReason::Oversized,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Garbage => "garbage",
            DropReason::Response => "response",
            DropReason::Ack => "ack",
            DropReason::NoVia => "malformed",
            DropReason::Denied => "denied",
            DropReason::Oversized => "oversized",
        }
    }
}

/// Why a message got no answer: [`DropReason`]'s labels, by its index.
pub const DROP_REASONS: [&str; DropReason::ALL.len()] = {
    let mut labels = [""; DropReason::ALL.len()];
    let mut i = 0;
    while i < labels.len() {
        labels[i] = DropReason::ALL[i].as_str();
        i += 1;
    }
    labels
};

const REQUEST_SLOTS: usize = METHOD_LABELS.len() * TRANSPORT_LABELS.len();

/// What the SIP side counts (SPEC §8 `sip_*`, `transactions_active`).
#[derive(Default)]
pub struct SipStats {
    /// Requests by transport × method.
    requests: Counters<REQUEST_SLOTS>,
    /// Responses sent, by [`RESPONSE_CODES`] index.
    responses: Counters<{ RESPONSE_CODES.len() }>,
    /// Messages not answered, by [`DROP_REASONS`] index.
    dropped: Counters<{ DROP_REASONS.len() }>,
    /// Final INVITE answers sent again: on Timer G, or to a retransmitted INVITE.
    retransmissions: Counters<1>,
    /// INVITE transactions held (bounded by `sip.max_transactions`).
    pub transactions: std::sync::atomic::AtomicUsize,
}

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

impl SipStats {
    /// Counts a request of `method` (as on the wire) received over `transport`.
    #[inline]
    pub fn request(&self, method: &str, transport: Transport) {
        let m = METHOD_LABELS[..METHOD_LABELS.len() - 1]
            .iter()
            .position(|k| *k == method)
            .unwrap_or(METHOD_LABELS.len() - 1);
        self.requests
            .inc(transport_index(transport) * METHOD_LABELS.len() + m);
    }

    /// Counts a response sent with `code`.
    #[inline]
    pub fn response(&self, code: u16) {
        let i = RESPONSE_CODES[..RESPONSE_CODES.len() - 1]
            .iter()
            .position(|c| *c == code)
            .unwrap_or(RESPONSE_CODES.len() - 1);
        self.responses.inc(i);
    }

    /// Counts a message not answered, for `reason`.
    #[inline]
    pub fn dropped(&self, reason: DropReason) {
        self.dropped.inc(reason as usize);
    }

    pub fn retransmitted(&self, n: u64) {
        self.retransmissions.add(0, n);
    }
}

impl crate::metrics::Source for SipStats {
    fn families(&self, out: &mut Vec<Family>) {
        // INVITE per transport and 302 exist from the start (alerts compare their
        // rates); other series appear once seen.
        out.push(
            Family::counter(
                "enroute_sip_requests_total",
                "SIP requests received, by method and transport.",
                &["transport", "method"],
            )
            .per_cell(&self.requests, &TRANSPORT_LABELS, &METHOD_LABELS, |_, m| {
                METHOD_LABELS[m] == "INVITE"
            }),
        );
        let codes = RESPONSE_CODES.map(|c| {
            if c == 0 {
                "other".to_string()
            } else {
                c.to_string()
            }
        });
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        out.push(
            Family::counter(
                "enroute_sip_responses_total",
                "SIP responses sent, by status code.",
                &["code"],
            )
            .per_label(&self.responses, &codes, |i| RESPONSE_CODES[i] == 302),
        );
        out.push(
            Family::counter(
                "enroute_sip_retransmissions_total",
                "Final INVITE answers sent again (Timer G, or a retransmitted INVITE).",
                &[],
            )
            .with(&[], self.retransmissions.get(0) as f64),
        );
        out.push(
            Family::counter(
                "enroute_sip_dropped_total",
                "SIP messages not answered, by reason.",
                &["reason"],
            )
            .per_label(&self.dropped, &DROP_REASONS, |_| true),
        );
        let held = self.transactions.load(std::sync::atomic::Ordering::Relaxed);
        out.push(
            Family::gauge(
                "enroute_transactions_active",
                "INVITE server transactions held (waiting for upstream DNS or for the ACK).",
                &[],
            )
            .with(&[], held as f64),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_sit_at_their_discriminants() {
        for (i, d) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "{d:?}");
            assert_eq!(DROP_REASONS[i], d.as_str());
        }
    }
}
