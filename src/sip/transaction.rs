//! Server transactions: INVITE (RFC 3261 §17.2.1) and REGISTER (§17.2.2): what
//! identifies one (`tx_key`, `register_tx_key`), where one stands ([`TxState`]), what
//! a waiting request keeps of itself ([`PendingRequest`]) so that its final answer can
//! be written when the lookup or the registrar's commit ends, and the one set every SIP
//! task keeps them in (`Transactions`): requests waiting, final INVITE answers held
//! until the ACK or Timer H and given again to a retransmitted INVITE, Timer G
//! retransmission over UDP, REGISTER answers held for Timer J (at most half the
//! slots), and the bound on all sets together (`sip.max_transactions`, the `Slots`
//! behind `enroute_transactions_active`).
//!
//! Must not touch: sockets (see `sip::transport`: this file hands back the bytes to
//! send), the answer's bytes (see `sip::response`), which answer a request gets (see
//! `sip::redirect`).

use super::dialog::{Dialog, TagKey};
use super::message;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// RFC 3261 §17: T1, T2 and Timer H (64·T1).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_H: Duration = Duration::from_secs(32);
/// Timer J (64·T1 over UDP, RFC 3261 §17.2.2): how long a non-INVITE answer is held
/// for retransmitted requests; over a reliable transport it is 0.
const TIMER_J: Duration = Duration::from_secs(32);

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

/// A request waiting for its answer — an INVITE for its upstream lookup, a REGISTER for
/// the registrar's commit: the parts of the response copied out of the request (the
/// receive buffer is reused), so the final answer (or an INVITE's 487) can be built
/// later. Copied and answered by `sip::response` (`PendingRequest::new`,
/// [`PendingRequest::answer`] …).
#[derive(Debug, Clone)]
pub struct PendingRequest {
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

/// A REGISTER's server transaction (RFC 3261 §17.2.3: the method is part of the match,
/// so a REGISTER never meets an INVITE's transaction).
pub(super) fn register_tx_key(key: &TagKey, d: &Dialog<'_>) -> u64 {
    let mut h = key.build_hasher();
    h.write(b"REGISTER");
    h.write_u64(tx_key(key, d));
    h.finish()
}

/// The transaction state of every SIP task together, bounded by `sip.max_transactions`
/// (SPEC §10.29): a slot is taken before anything is held and given back when it is
/// dropped, so `enroute_transactions_active` is the truth and never passes the bound.
/// What finds no slot is answered without state.
#[derive(Clone, Copy)]
pub(super) struct Slots<'a> {
    held: &'a AtomicUsize,
    max: usize,
}

impl<'a> Slots<'a> {
    /// Slots counted in `held`, at most `max` taken.
    pub(super) fn new(held: &'a AtomicUsize, max: usize) -> Self {
        Slots { held, max }
    }

    /// Whether every slot is taken (new INVITEs then get 503 without state).
    fn full(self) -> bool {
        self.held.load(Ordering::Relaxed) >= self.max
    }

    /// Takes a slot while fewer than half are taken: what a REGISTER's answer may use,
    /// so that a registration storm never leaves INVITEs without slots.
    fn take_below_half(self) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max / 2).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether no more than half the slots are taken.
    fn at_most_half(self) -> bool {
        self.held.load(Ordering::Relaxed) <= self.max / 2
    }

    /// Takes a slot if one is free.
    fn take(self) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(self, n: usize) {
        if n > 0 {
            self.held.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// A request waiting for its answer: an INVITE for an upstream lookup, a REGISTER for
/// the registrar's commit.
struct Pending {
    /// Its 100 Trying, sent again to a retransmitted INVITE (empty for a REGISTER: a
    /// retransmission in the Trying state is discarded, RFC 3261 §17.2.2).
    trying: Vec<u8>,
    /// Whether it is an INVITE (its answer is held until ACK, with Timer G over UDP) or
    /// a REGISTER (held for Timer J, never sent again unasked).
    is_invite: bool,
    /// What its final answer or 487 is built from.
    invite: Arc<PendingRequest>,
}

/// A final INVITE answer sent and not acknowledged yet.
struct Completed {
    bytes: Vec<u8>,
    dest: SocketAddr,
    /// Timer G's current interval (T1 doubling up to T2; unused without Timer G).
    interval: Duration,
    /// When its timer fires next: Timer G with retransmission, else Timer H.
    next: Instant,
    /// Timer H: no ACK by then ends the transaction.
    give_up: Instant,
}

/// The INVITE server transactions of one SIP task: a UDP socket, or a TCP or TLS
/// connection. Each holds one of the [`Slots`], all given back when the set is dropped
/// (the task ends: shutdown, or the peer left).
///
/// Over UDP a final answer is sent again on Timer G until the ACK arrives or Timer H
/// fires; over a reliable transport there is no Timer G, but the answer is still held
/// until the ACK or Timer H so that a retransmitted INVITE (a stateless proxy in front
/// may forward one) gets it again rather than a new decision.
pub(super) struct Transactions<'a> {
    slots: Slots<'a>,
    /// Timer G: final answers are sent again (unreliable transports).
    retransmit: bool,
    pending: HashMap<u64, Pending>,
    completed: HashMap<u64, Completed>,
    /// (when, transaction) for each completed answer's next timer; entries whose time no
    /// longer matches theirs (or whose answer was acknowledged) are stale.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl<'a> Transactions<'a> {
    /// The set of a UDP socket: final answers are sent again on Timer G.
    pub(super) fn over_udp(slots: Slots<'a>) -> Self {
        Self::new(slots, true)
    }

    /// The set of a TCP or TLS connection: no Timer G.
    pub(super) fn over_stream(slots: Slots<'a>) -> Self {
        Self::new(slots, false)
    }

    fn new(slots: Slots<'a>, retransmit: bool) -> Self {
        Transactions {
            slots,
            retransmit,
            pending: HashMap::new(),
            completed: HashMap::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// Whether every slot (of every task) is taken: new INVITEs then get 503.
    pub(super) fn full(&self) -> bool {
        self.slots.full()
    }

    /// Where the INVITE transaction `tx` stands.
    pub(super) fn state(&self, tx: u64) -> TxState {
        // Pending INVITEs are rare (only upstream lookups): skip hashing for them.
        if !self.pending.is_empty() && self.pending.contains_key(&tx) {
            TxState::Pending
        } else if self.completed.contains_key(&tx) {
            TxState::Completed
        } else {
            TxState::None
        }
    }

    /// Holds an INVITE waiting for its lookup, and its 100 `trying`, in a new slot; its
    /// answer comes with [`Transactions::answer_pending`]; gives back the INVITE shared
    /// with its lookup. Without a free slot (another task took the last since the
    /// handler was told) nothing is held and the INVITE comes back, to be answered 503.
    // The refused INVITE is moved back, not boxed: the refusal needs it whole (its 503).
    #[allow(clippy::result_large_err)]
    pub(super) fn hold_pending(
        &mut self,
        trying: &[u8],
        invite: PendingRequest,
    ) -> Result<Arc<PendingRequest>, PendingRequest> {
        self.hold_waiting(trying, invite, true)
    }

    /// As [`Transactions::hold_pending`] for a REGISTER about to be handed to the
    /// registrar's writer: no 100 Trying, at most half the slots (as for every REGISTER
    /// answer), and its answer is held for Timer J only.
    #[allow(clippy::result_large_err)]
    pub(super) fn hold_register(
        &mut self,
        register: PendingRequest,
    ) -> Result<Arc<PendingRequest>, PendingRequest> {
        self.hold_waiting(&[], register, false)
    }

    #[allow(clippy::result_large_err)]
    fn hold_waiting(
        &mut self,
        trying: &[u8],
        invite: PendingRequest,
        is_invite: bool,
    ) -> Result<Arc<PendingRequest>, PendingRequest> {
        let taken = if is_invite {
            self.slots.take()
        } else {
            self.slots.take_below_half()
        };
        if !taken {
            return Err(invite);
        }
        let invite = Arc::new(invite);
        let pending = Pending {
            trying: trying.to_vec(),
            is_invite,
            invite: invite.clone(),
        };
        self.pending.insert(invite.tx, pending);
        Ok(invite)
    }

    /// Ends the wait of the pending INVITE `tx` with the final answer `answer` builds
    /// (the lookup's, or 487 after a CANCEL), held from now on in the slot the
    /// transaction already has. Returns that answer and where it goes; `None` when `tx`
    /// is not pending (a CANCEL ended it first).
    pub(super) fn answer_pending(
        &mut self,
        tx: u64,
        answer: impl FnOnce(&PendingRequest) -> Vec<u8>,
    ) -> Option<(&[u8], SocketAddr)> {
        let Pending {
            invite, is_invite, ..
        } = self.pending.remove(&tx)?;
        let held = self.hold(tx, answer(&invite), invite.dest, is_invite);
        Some((&held.bytes, held.dest))
    }

    /// Holds the final answer `bytes` of transaction `tx`, just answered at once, in a
    /// new slot; without a free slot nothing is held.
    pub(super) fn complete(&mut self, tx: u64, bytes: &[u8], dest: SocketAddr) {
        if self.slots.take() {
            self.hold(tx, bytes.to_vec(), dest, true);
        }
    }

    /// Holds the final answer `bytes` of REGISTER transaction `tx`, given at once, for
    /// Timer J over UDP (RFC 3261 §17.2.2: a retransmitted request gets it again, byte
    /// for byte); over a stream Timer J is 0 and nothing is held. REGISTER answers use
    /// at most half the slots; beyond that they are given without state.
    pub(super) fn complete_register(&mut self, tx: u64, bytes: &[u8], dest: SocketAddr) {
        if self.retransmit && self.slots.take_below_half() {
            self.hold(tx, bytes.to_vec(), dest, false);
        }
    }

    /// Holds a final answer in a slot already taken and starts its timer: an INVITE's
    /// until Timer H (with Timer G over UDP), a REGISTER's until Timer J (over UDP, and
    /// while at most half the slots are taken; else it is dropped at the next timer).
    fn hold(&mut self, tx: u64, bytes: Vec<u8>, dest: SocketAddr, is_invite: bool) -> &Completed {
        let now = Instant::now();
        let give_up = match (is_invite, self.retransmit) {
            (true, _) => now + TIMER_H,
            (false, true) if self.slots.at_most_half() => now + TIMER_J,
            (false, _) => now,
        };
        let (interval, next) = if self.retransmit && is_invite {
            (T1, now + T1)
        } else {
            (TIMER_H, give_up)
        };
        self.timers.push(Reverse((next, tx)));
        let completed = Completed {
            bytes,
            dest,
            interval,
            next,
            give_up,
        };
        match self.completed.entry(tx) {
            Entry::Occupied(mut e) => {
                // Defensive: a live transaction's INVITE is never answered anew.
                self.slots.give_back(1);
                e.insert(completed);
                e.into_mut()
            }
            Entry::Vacant(e) => e.insert(completed),
        }
    }

    /// What a retransmission of `tx`'s INVITE gets, where it goes, and whether it is
    /// the final answer (else the 100 Trying of a pending lookup).
    pub(super) fn held_answer(&self, tx: u64) -> Option<(&[u8], SocketAddr, bool)> {
        if let Some(c) = self.completed.get(&tx) {
            return Some((&c.bytes, c.dest, true));
        }
        self.pending
            .get(&tx)
            .map(|p| (&p.trying[..], p.invite.dest, false))
    }

    /// Ends a transaction (its ACK arrived).
    pub(super) fn end(&mut self, tx: u64) {
        if self.completed.remove(&tx).is_some() {
            self.slots.give_back(1);
            // Acknowledged answers leave their timer entries behind: compacted now and
            // then, so the queue stays within a small multiple of what is held.
            if self.timers.len() > 2 * self.completed.len() + 64 {
                let completed = &self.completed;
                self.timers
                    .retain(|Reverse((t, tx))| completed.get(tx).is_some_and(|c| c.next == *t));
            }
        }
    }

    /// When the next timer fires, if any answer is held.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs the timers due by `now`: an answer whose Timer H fired is dropped; one whose
    /// Timer G fired is handed back to be sent again (its next one set). Call until it
    /// returns `None`; without Timer G it always does.
    pub(super) fn fire(&mut self, now: Instant) -> Option<(&[u8], SocketAddr)> {
        let tx = loop {
            let Reverse((t, tx)) = *self.timers.peek()?;
            if t > now {
                return None;
            }
            self.timers.pop();
            let Some(c) = self.completed.get_mut(&tx) else {
                continue;
            };
            if c.next != t {
                continue;
            }
            if now >= c.give_up {
                // Timer H: no ACK came.
                self.completed.remove(&tx);
                self.slots.give_back(1);
                continue;
            }
            c.interval = (c.interval * 2).min(T2);
            c.next = now + c.interval;
            self.timers.push(Reverse((c.next, tx)));
            break tx;
        };
        let c = &self.completed[&tx];
        Some((&c.bytes, c.dest))
    }

    /// The INVITEs still waiting for their lookup (not the REGISTERs waiting for their
    /// commit: those changes are being made, and must not be answered 503).
    pub(super) fn pending_invites(&self) -> impl Iterator<Item = &PendingRequest> {
        self.pending
            .values()
            .filter(|p| p.is_invite)
            .map(|p| &*p.invite)
    }
}

impl Drop for Transactions<'_> {
    /// The task ends: nothing of it is held any more.
    fn drop(&mut self) {
        self.slots
            .give_back(self.pending.len() + self.completed.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(tx: u64) -> PendingRequest {
        PendingRequest {
            uri: "sip:+441632960002@h".into(),
            tx,
            dest: "192.0.2.1:5060".parse().unwrap(),
            head: Vec::new(),
            to: Vec::new(),
            tail: Vec::new(),
            server: "s".into(),
        }
    }

    const DEST: &str = "192.0.2.9:5070";

    #[test]
    fn udp_answers_are_sent_again_on_timer_g_until_timer_h() {
        let held = AtomicUsize::new(0);
        let mut txs = Transactions::over_udp(Slots::new(&held, 10));
        txs.complete(7, b"302", DEST.parse().unwrap());
        assert_eq!(txs.state(7), TxState::Completed);
        assert_eq!(held.load(Ordering::Relaxed), 1);
        // Timer G: T1 after the answer, then doubling up to T2.
        let start = txs.next_due().expect("a timer") - T1;
        let mut at = start;
        for interval in [500, 1000, 2000, 4000, 4000] {
            at += Duration::from_millis(interval);
            assert_eq!(txs.next_due(), Some(at));
            assert_eq!(txs.fire(at - Duration::from_millis(1)), None);
            let (bytes, dest) = txs.fire(at).expect("due");
            assert_eq!((bytes, dest), (&b"302"[..], DEST.parse().unwrap()));
            assert_eq!(txs.fire(at), None);
        }
        // Timer H: no ACK by 64·T1, the transaction and its slot end.
        while txs.fire(start + TIMER_H + T2).is_some() {}
        assert_eq!(txs.state(7), TxState::None);
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn stream_answers_are_held_until_timer_h_and_never_sent_again() {
        let held = AtomicUsize::new(0);
        let mut txs = Transactions::over_stream(Slots::new(&held, 10));
        let start = Instant::now();
        txs.complete(7, b"404", DEST.parse().unwrap());
        let give_up = txs.next_due().expect("Timer H");
        assert!(give_up >= start + TIMER_H);
        assert_eq!(txs.fire(give_up - Duration::from_millis(1)), None);
        assert_eq!(txs.state(7), TxState::Completed);
        assert_eq!(
            txs.held_answer(7).map(|(b, _, f)| (b, f)),
            Some((&b"404"[..], true))
        );
        assert_eq!(txs.fire(give_up), None);
        assert_eq!(txs.state(7), TxState::None);
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn every_held_transaction_takes_a_slot_and_gives_it_back() {
        let held = AtomicUsize::new(0);
        let dest = DEST.parse().unwrap();
        {
            let mut txs = Transactions::over_udp(Slots::new(&held, 2));
            assert!(txs.hold_pending(b"100", invite(1)).is_ok());
            assert_eq!(txs.state(1), TxState::Pending);
            assert_eq!(
                txs.held_answer(1),
                Some((&b"100"[..], invite(1).dest, false))
            );
            txs.complete(2, b"302", dest);
            assert!(txs.full());
            // No slot: an answer is not held, a pending INVITE is refused.
            txs.complete(3, b"302", dest);
            assert_eq!(txs.state(3), TxState::None);
            assert!(txs.hold_pending(b"100", invite(4)).is_err());
            // The pending INVITE's answer keeps its slot; the ACK gives one back.
            let (bytes, to) = txs
                .answer_pending(1, |i| i.uri.as_bytes().to_vec())
                .unwrap();
            assert_eq!((bytes, to), (&b"sip:+441632960002@h"[..], invite(1).dest));
            assert_eq!(txs.answer_pending(1, |_| Vec::new()), None);
            assert_eq!(held.load(Ordering::Relaxed), 2);
            txs.end(2);
            assert_eq!(held.load(Ordering::Relaxed), 1);
            assert_eq!(txs.pending_invites().count(), 0);
        }
        // The task ended: nothing is held.
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn register_answers_are_held_for_timer_j_over_udp_within_half_the_slots() {
        let held = AtomicUsize::new(0);
        let dest = DEST.parse().unwrap();
        let mut udp = Transactions::over_udp(Slots::new(&held, 4));
        udp.complete_register(1, b"200", dest);
        udp.complete_register(2, b"401", dest);
        // Half the slots are REGISTERs': the third is answered without state.
        udp.complete_register(3, b"401", dest);
        assert_eq!(
            (udp.state(1), udp.state(2), udp.state(3)),
            (TxState::Completed, TxState::Completed, TxState::None)
        );
        assert_eq!(udp.held_answer(1), Some((&b"200"[..], dest, true)));
        // Never sent again unasked (no Timer G); gone after Timer J.
        let start = Instant::now();
        assert_eq!(udp.fire(start + T1 * 4), None);
        assert_eq!(udp.state(1), TxState::Completed);
        assert_eq!(udp.fire(start + TIMER_J + T1), None);
        assert_eq!(udp.state(1), TxState::None);
        assert_eq!(held.load(Ordering::Relaxed), 0);
        // Over a stream Timer J is 0: nothing is held.
        let mut tcp = Transactions::over_stream(Slots::new(&held, 4));
        tcp.complete_register(5, b"200", dest);
        assert_eq!(tcp.state(5), TxState::None);
        // A REGISTER waiting for its commit: retransmissions get nothing (empty), its
        // answer is then held for Timer J.
        let mut register = invite(6);
        register.dest = dest;
        assert!(udp.hold_register(register).is_ok());
        assert_eq!(udp.held_answer(6), Some((&b""[..], dest, false)));
        let (bytes, _) = udp.answer_pending(6, |_| b"200 listing".to_vec()).unwrap();
        assert_eq!(bytes, b"200 listing");
        assert_eq!(udp.held_answer(6), Some((&b"200 listing"[..], dest, true)));
        assert_eq!(udp.fire(Instant::now() + T1 * 4), None, "no Timer G");
        assert_eq!(udp.state(6), TxState::Completed);
    }

    #[test]
    fn acknowledged_answers_leave_no_timers_behind() {
        let held = AtomicUsize::new(0);
        let mut txs = Transactions::over_stream(Slots::new(&held, 1000));
        for tx in 0..500 {
            txs.complete(tx, b"302", DEST.parse().unwrap());
            txs.end(tx);
        }
        assert!(txs.timers.len() <= 64, "{}", txs.timers.len());
        txs.complete(1000, b"302", DEST.parse().unwrap());
        assert!(txs.next_due().is_some());
    }
}
