//! INVITE server transactions (RFC 3261 §17.2.1): what identifies one ([`tx_key`]),
//! where one stands ([`TxState`]), and what a pending INVITE keeps of its request
//! ([`PendingInvite`]) so that its final answer can be written when the lookup ends.
//!
//! Must not touch: sockets (see `sip::transport`), the answer's bytes (see
//! `sip::response`), which answer a request gets (see `sip::redirect`).

use super::dialog::{Dialog, TagKey};
use super::message;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

/// Where an INVITE server transaction stands, as the transport knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// No such transaction.
    None,
    /// Waiting for an upstream lookup (100 Trying sent).
    Pending,
    /// Final answer sent, ACK not received yet.
    Completed,
}

/// An INVITE waiting for its answer: the parts of the response copied out of the
/// request (the receive buffer is reused), so the final answer or 487 can be built later.
#[derive(Debug, Clone)]
pub struct PendingInvite {
    /// The Request-URI to route.
    pub uri: String,
    /// The transaction key (RFC 3261 branch or RFC 2543 match).
    pub tx: u64,
    /// Where a UDP answer goes.
    pub dest: SocketAddr,
    /// Via and From lines, rendered.
    pub(super) head: Vec<u8>,
    /// The To line with the To-tag every final answer carries.
    pub(super) to: Vec<u8>,
    /// Call-ID and CSeq lines.
    pub(super) tail: Vec<u8>,
    /// The `Server` header value.
    pub(super) server: String,
}

/// Identifies an INVITE server transaction and the ACK that ends it: the top Via's
/// branch and sent-by when the branch has RFC 3261's magic cookie (the ACK to a non-2xx
/// answer reuses the INVITE's branch, §17.1.1.3), else RFC 2543 matching on Call-ID,
/// From tag and CSeq number (§17.2.3).
pub(super) fn tx_key(key: &TagKey, d: &Dialog<'_>) -> u64 {
    let mut h = key.build_hasher();
    match d.top.branch.filter(|b| b.starts_with("z9hG4bK")) {
        Some(branch) => {
            h.write(b"3261");
            h.write(branch.as_bytes());
            h.write_u8(0);
            h.write(d.top.sent_by.as_bytes());
        }
        None => {
            h.write(b"2543");
            h.write(d.call_id.unwrap_or("").as_bytes());
            h.write_u8(0);
            let from_tag = d.from.and_then(|f| message::param(f, "tag")).unwrap_or("");
            h.write(from_tag.as_bytes());
            h.write_u8(0);
            let cseq_number = d.cseq.and_then(|c| c.split_ascii_whitespace().next());
            h.write(cseq_number.unwrap_or("").as_bytes());
        }
    }
    h.finish()
}
