//! SIP over UDP and TCP: sockets, framing, limits and shutdown.
//!
//! Owns: one task per UDP socket (a datagram is a message; over `sip.max_message_bytes`
//! it is dropped and counted), one task per TCP listener and per connection
//! (Content-Length framing, several messages per read, messages split across reads,
//! `sip.tcp_idle_s`, 513 then close for an oversized message, a connection limit), the
//! INVITE server transactions each task holds (pending lookups, final answers kept
//! until ACK or Timer H and re-sent to retransmissions, Timer G over UDP), the one
//! bound on all of them together (`sip.max_transactions`, the slots behind
//! `enroute_transactions_active`), and stopping every task on shutdown after the
//! message in hand.
//!
//! Must not touch: what the answer is (see `sip::redirect`). No lock is held across an
//! await: each task owns its buffers and its [`Handler`].

use super::redirect::{Handler, Outcome, Settings};
use super::stats::{Drop, SipStats};
use super::transaction::{PendingInvite, TxState};
use crate::config::{Listen, TlsConfig, Transport};
use crate::resolve::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// Most TCP connections at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 4096;

/// Everything the SIP tasks share.
pub struct Shared {
    pub router: Arc<Router>,
    /// INVITE transactions held (every socket and connection together) before new
    /// INVITEs get 503.
    pub max_transactions: usize,
    pub settings: Settings,
    pub tag_key: super::dialog::TagKey,
    pub max_message_bytes: usize,
    pub tcp_idle: Duration,
    pub stats: Arc<SipStats>,
}

/// Why the SIP listeners could not start; the message names the address or file.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Bind(#[from] crate::net::BindError),
    #[error("sip.tls: {0}")]
    Tls(String),
}

/// Binds every `sip.listen` entry; fails on the first that cannot be bound. `tls` is
/// `[sip.tls]`, needed when a `tls:` listener is configured.
pub async fn bind(listen: &[Listen], tls: Option<&TlsConfig>) -> Result<Vec<Bound>, BindError> {
    let mut out = Vec::new();
    let mut acceptor: Option<tokio_rustls::TlsAcceptor> = None;
    for l in listen {
        let err = |error| {
            BindError::Bind(crate::net::BindError {
                addr: l.addr,
                error,
            })
        };
        match l.transport {
            Transport::Udp => {
                for sock in crate::net::udp_sockets(l.addr).map_err(err)? {
                    out.push(Bound::Udp(sock));
                }
            }
            Transport::Tcp => out.push(Bound::Tcp(TcpListener::bind(l.addr).await.map_err(err)?)),
            Transport::Tls => {
                let tls_acceptor = match &acceptor {
                    Some(a) => a.clone(),
                    None => {
                        let cfg = tls.ok_or_else(|| {
                            BindError::Tls("a tls: listener needs [sip.tls] cert and key".into())
                        })?;
                        let a = tls_acceptor(cfg)?;
                        acceptor = Some(a.clone());
                        a
                    }
                };
                let listener = TcpListener::bind(l.addr).await.map_err(err)?;
                out.push(Bound::Tls(listener, tls_acceptor));
            }
        }
    }
    Ok(out)
}

/// Loads the certificate chain and key (PEM) into a rustls server configuration.
fn tls_acceptor(cfg: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, BindError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect())
        .map_err(|e| BindError::Tls(format!("cert {}: {e}", cfg.cert.display())))?;
    if certs.is_empty() {
        return Err(BindError::Tls(format!(
            "cert {}: no certificate in the file",
            cfg.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .map_err(|e| BindError::Tls(format!("key {}: {e}", cfg.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BindError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| BindError::Tls(format!("cert and key do not make a usable pair: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A bound socket, ready to serve.
pub enum Bound {
    Udp(UdpSocket),
    Tcp(TcpListener),
    Tls(TcpListener, tokio_rustls::TlsAcceptor),
}

/// Serves every socket until `shutdown` turns true; returns when all tasks have ended.
/// (The start-up summary in `server` names the listeners, one line per address.)
pub async fn serve(sockets: Vec<Bound>, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in sockets {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        match s {
            Bound::Udp(sock) => {
                tasks.spawn(udp_loop(sock, shared, shutdown));
            }
            Bound::Tcp(l) => {
                tasks.spawn(tcp_accept(l, None, shared, shutdown));
            }
            Bound::Tls(l, acceptor) => {
                tasks.spawn(tcp_accept(l, Some(acceptor), shared, shutdown));
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// RFC 3261 §17: T1, T2 and Timer H (64·T1).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_H: Duration = Duration::from_secs(32);

/// The per-transaction state of every SIP task together, bounded by
/// `sip.max_transactions` (SPEC §10.29): a slot is taken before anything is held and
/// given back when it is dropped, so `enroute_transactions_active` is the truth and
/// never passes the bound. What finds no slot is answered without state.
#[derive(Clone, Copy)]
struct Slots<'a> {
    held: &'a AtomicUsize,
    max: usize,
}

impl<'a> Slots<'a> {
    fn of(shared: &'a Shared) -> Self {
        Slots {
            held: &shared.stats.transactions,
            max: shared.max_transactions,
        }
    }

    /// Whether every slot is taken (new INVITEs then get 503 without state).
    fn full(self) -> bool {
        self.held.load(Ordering::Relaxed) >= self.max
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

/// A final INVITE answer sent over UDP and not yet acknowledged (RFC 3261 §17.2.1).
struct Unacked {
    bytes: Vec<u8>,
    dest: SocketAddr,
    interval: Duration,
    next: tokio::time::Instant,
    give_up: tokio::time::Instant,
}

/// The INVITE server transactions of one UDP socket: retransmission on Timer G until the
/// ACK arrives or Timer H fires. Each holds one of the [`Slots`].
#[derive(Default)]
struct Transactions {
    unacked: HashMap<u64, Unacked>,
    /// INVITEs waiting for an upstream lookup: their 100 Trying (re-sent to a
    /// retransmitted INVITE) and what their final answer or 487 is built from.
    pending: HashMap<u64, (Vec<u8>, Arc<PendingInvite>)>,
    /// (when, transaction): entries whose time no longer matches are stale.
    timers: std::collections::BinaryHeap<std::cmp::Reverse<(tokio::time::Instant, u64)>>,
}

impl Transactions {
    /// Holds the final answer `bytes` of transaction `tx` for retransmission, in a slot
    /// the transaction already has (`has_slot`: it was pending) or a new one; without a
    /// free slot nothing is held.
    fn complete(&mut self, tx: u64, bytes: &[u8], dest: SocketAddr, has_slot: bool, slots: Slots) {
        if !has_slot && !slots.take() {
            return;
        }
        let now = tokio::time::Instant::now();
        let next = now + T1;
        let unacked = Unacked {
            bytes: bytes.to_vec(),
            dest,
            interval: T1,
            next,
            give_up: now + TIMER_H,
        };
        if self.unacked.insert(tx, unacked).is_some() {
            // Defensive: a live transaction's INVITE is never answered anew.
            slots.give_back(1);
        }
        self.timers.push(std::cmp::Reverse((next, tx)));
    }

    /// Where the INVITE transaction `tx` stands.
    fn state(&self, tx: u64) -> TxState {
        // Pending INVITEs are rare (only upstream lookups): skip hashing for them.
        if !self.pending.is_empty() && self.pending.contains_key(&tx) {
            TxState::Pending
        } else if self.unacked.contains_key(&tx) {
            TxState::Completed
        } else {
            TxState::None
        }
    }

    /// What a retransmission of `tx`'s INVITE gets, where it goes, and whether it is
    /// the final answer (else the 100 Trying of a pending lookup).
    fn held_answer(&self, tx: u64) -> Option<(&[u8], SocketAddr, bool)> {
        if let Some(u) = self.unacked.get(&tx) {
            return Some((&u.bytes, u.dest, true));
        }
        self.pending
            .get(&tx)
            .map(|(trying, invite)| (&trying[..], invite.dest, false))
    }

    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.timers.peek().map(|std::cmp::Reverse((t, _))| *t)
    }

    /// Ends a transaction (its ACK arrived).
    fn end(&mut self, tx: u64, slots: Slots) {
        if self.unacked.remove(&tx).is_some() {
            slots.give_back(1);
        }
    }

    /// Retransmits what is due; returns how many were sent.
    async fn fire(&mut self, sock: &UdpSocket, slots: Slots<'_>) -> u64 {
        let now = tokio::time::Instant::now();
        let mut sent = 0;
        while let Some(std::cmp::Reverse((t, tx))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(u) = self.unacked.get_mut(&tx) else {
                continue;
            };
            if u.next != t {
                continue;
            }
            if now >= u.give_up {
                // Timer H: no ACK came.
                self.unacked.remove(&tx);
                slots.give_back(1);
                continue;
            }
            let _ = sock.send_to(&u.bytes, u.dest).await;
            sent += 1;
            u.interval = (u.interval * 2).min(T2);
            u.next = now + u.interval;
            self.timers.push(std::cmp::Reverse((u.next, tx)));
        }
        sent
    }
}

/// A finished lookup: the transaction, its final answer and that answer's status.
type Done = (u64, Vec<u8>, u16);

/// Starts the lookup for a pending INVITE; the answer comes back on `done`, a 500 if the
/// lookup failed in a way it could not answer (a panic), so that the transaction and
/// its slot always end.
fn spawn_lookup(
    shared: &Arc<Shared>,
    invite: Arc<PendingInvite>,
    done: tokio::sync::mpsc::UnboundedSender<Done>,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let uri = invite.uri.clone();
        let lookup = tokio::spawn(async move { shared.router.route_full(&uri, false).await });
        let (bytes, status) = match lookup.await {
            Ok(decision) => (invite.answer(&decision), decision.status),
            Err(_) => (invite.internal_error(), 500),
        };
        let _ = done.send((invite.tx, bytes, status));
    });
}

async fn udp_loop(sock: UdpSocket, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; shared.max_message_bytes + 1];
    let mut handler = Handler::new(&shared.router, &shared.settings, &shared.tag_key)
        .counting(&shared.stats, Transport::Udp);
    let mut txs = Transactions::default();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let slots = Slots::of(&shared);
    loop {
        let due = txs.next_due();
        let (n, source) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on some systems: go on.
                Err(_) => continue,
            },
            Some((tx, bytes, status)) = done_rx.recv() => {
                // The lookup ended: answer unless a CANCEL already did (487). The
                // transaction keeps its slot until ACK or Timer H.
                if let Some((_, invite)) = txs.pending.remove(&tx) {
                    shared.stats.response(status);
                    let _ = sock.send_to(&bytes, invite.dest).await;
                    txs.complete(tx, &bytes, invite.dest, true, slots);
                }
                continue;
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                let sent = txs.fire(&sock, slots).await;
                shared.stats.retransmitted(sent);
                continue;
            }
            _ = shutdown.changed() => {
                // INVITEs still waiting on DNS will not get their answer from us: tell
                // them to try again (or another server) rather than leave them to time out.
                for (_, invite) in txs.pending.values() {
                    let _ = sock.send_to(&invite.unavailable(), invite.dest).await;
                    shared.stats.response(503);
                }
                slots.give_back(txs.pending.len() + txs.unacked.len());
                return;
            }
        };
        handler.overloaded = slots.full();
        if n > shared.max_message_bytes {
            shared.stats.dropped(Drop::Oversized);
            continue;
        }
        let state = |tx: u64| txs.state(tx);
        let Some((outcome, _)) = handler.handle_with(&buf[..n], source, false, &state) else {
            continue;
        };
        match outcome {
            Outcome::Reply {
                bytes,
                dest,
                invite_tx,
                ..
            } => {
                let _ = sock.send_to(bytes, dest).await;
                if let Some(tx) = invite_tx {
                    txs.complete(tx, bytes, dest, false, slots);
                }
            }
            Outcome::Retransmission { tx } => {
                // The answer already given, byte for byte (or 100 again while pending).
                if let Some((bytes, dest, is_final)) = txs.held_answer(tx) {
                    if is_final {
                        shared.stats.retransmitted(1);
                    }
                    let _ = sock.send_to(bytes, dest).await;
                }
            }
            Outcome::Pending { trying, invite } => {
                if !slots.take() {
                    // Another socket took the last slot since `overloaded` was read.
                    shared.stats.response(503);
                    let _ = sock.send_to(&invite.unavailable(), invite.dest).await;
                    continue;
                }
                let _ = sock.send_to(trying, invite.dest).await;
                let invite = Arc::new(invite);
                txs.pending
                    .insert(invite.tx, (trying.to_vec(), invite.clone()));
                spawn_lookup(&shared, invite, done_tx.clone());
            }
            Outcome::Cancel { ok, tx } => {
                if let Some((_, invite)) = txs.pending.remove(&tx) {
                    let _ = sock.send_to(ok, invite.dest).await;
                    // The lookup goes on (its answer fills the cache) but is not sent.
                    let terminated = invite.terminated();
                    shared.stats.response(487);
                    let _ = sock.send_to(&terminated, invite.dest).await;
                    txs.complete(tx, &terminated, invite.dest, true, slots);
                }
            }
            Outcome::Ack { tx } => txs.end(tx, slots),
            Outcome::Drop(_) => {}
        }
    }
}

/// Accepts TCP connections (wrapped in TLS when `tls` is set) up to the limit.
async fn tcp_accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
            _ = shutdown.changed() => break,
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => stream_conn(stream, peer, Transport::Tcp, shared, shutdown).await,
                Some(acceptor) => {
                    // The handshake gets the idle timeout too: a silent client cannot
                    // hold a connection slot.
                    if let Ok(Ok(tls_stream)) =
                        tokio::time::timeout(shared.tcp_idle, acceptor.accept(stream)).await
                    {
                        stream_conn(tls_stream, peer, Transport::Tls, shared, shutdown).await;
                    }
                }
            }
            drop(permit);
        });
        while conns.try_join_next().is_some() {}
    }
    // Let connections finish the message in hand.
    while conns.join_next().await.is_some() {}
}

/// The INVITE server transactions of one TCP or TLS connection (RFC 3261 §17.2.1 over
/// a reliable transport): no Timer G, but a final answer is held until the ACK or
/// Timer H so that a retransmitted INVITE (a stateless proxy in front may forward one)
/// gets it again rather than a new decision. Every entry holds one of the [`Slots`];
/// all are given back when the connection ends.
struct StreamTransactions<'a> {
    slots: Slots<'a>,
    /// INVITEs waiting for upstream DNS: their 100 Trying and their answers' headers.
    pending: HashMap<u64, (Vec<u8>, Arc<PendingInvite>)>,
    /// Final answers not acknowledged yet, with their Timer H deadline.
    completed: HashMap<u64, (Vec<u8>, tokio::time::Instant)>,
    /// (Timer H deadline, transaction) in the order answered, which is deadline order.
    expiry: std::collections::VecDeque<(tokio::time::Instant, u64)>,
}

impl<'a> StreamTransactions<'a> {
    fn new(slots: Slots<'a>) -> Self {
        StreamTransactions {
            slots,
            pending: HashMap::new(),
            completed: HashMap::new(),
            expiry: Default::default(),
        }
    }

    fn state(&self, tx: u64) -> TxState {
        if self.pending.contains_key(&tx) {
            TxState::Pending
        } else if self.completed.contains_key(&tx) {
            TxState::Completed
        } else {
            TxState::None
        }
    }

    /// Holds a final answer (see [`Transactions::complete`]).
    fn complete(&mut self, tx: u64, bytes: &[u8], has_slot: bool) {
        if !has_slot && !self.slots.take() {
            return;
        }
        let give_up = tokio::time::Instant::now() + TIMER_H;
        if self
            .completed
            .insert(tx, (bytes.to_vec(), give_up))
            .is_some()
        {
            self.slots.give_back(1);
        }
        self.expiry.push_back((give_up, tx));
    }

    /// As [`Transactions::held_answer`], without a destination (the stream is it).
    fn held_answer(&self, tx: u64) -> Option<(&[u8], bool)> {
        match self.completed.get(&tx) {
            Some((bytes, _)) => Some((bytes, true)),
            None => self
                .pending
                .get(&tx)
                .map(|(trying, _)| (&trying[..], false)),
        }
    }

    fn end(&mut self, tx: u64) {
        if self.completed.remove(&tx).is_some() {
            self.slots.give_back(1);
            // Acknowledged answers leave their Timer H entries behind: compacted now and
            // then, so the queue stays within a small multiple of what is held.
            if self.expiry.len() > 2 * self.completed.len() + 64 {
                let completed = &self.completed;
                self.expiry
                    .retain(|(t, tx)| completed.get(tx).is_some_and(|(_, g)| g == t));
            }
        }
    }

    /// The next Timer H deadline, if any answer is held.
    fn next_expiry(&self) -> Option<tokio::time::Instant> {
        self.expiry.front().map(|(t, _)| *t)
    }

    /// Drops the answers whose Timer H has fired.
    fn expire(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some(&(t, tx)) = self.expiry.front() {
            if t > now {
                break;
            }
            self.expiry.pop_front();
            if self.completed.get(&tx).is_some_and(|(_, g)| *g == t) {
                self.completed.remove(&tx);
                self.slots.give_back(1);
            }
        }
    }
}

impl std::ops::Drop for StreamTransactions<'_> {
    /// The peer left: nothing of this connection is held any more.
    fn drop(&mut self) {
        self.slots
            .give_back(self.pending.len() + self.completed.len());
    }
}

/// One TCP or TLS connection: frames messages and answers them on the same stream.
async fn stream_conn<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut handler = Handler::new(&shared.router, &shared.settings, &shared.tag_key)
        .counting(&shared.stats, transport);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let slots = Slots::of(&shared);
    let mut txs = StreamTransactions::new(slots);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    loop {
        // Answer every complete message in the buffer.
        loop {
            handler.overloaded = slots.full();
            let state = |tx: u64| txs.state(tx);
            match handler.handle_with(&buf, peer, true, &state) {
                None => break,
                Some((_, used)) if used > shared.max_message_bytes => {
                    too_large(&mut stream, &mut handler, &buf, peer, &shared).await;
                    return;
                }
                Some((outcome, used)) => {
                    // After bytes that cannot be framed there is no way to find the
                    // next message on this stream: close it.
                    let close = matches!(
                        outcome,
                        Outcome::Drop(Drop::Garbage | Drop::Response | Drop::NoVia)
                    );
                    let written = match outcome {
                        Outcome::Reply {
                            bytes, invite_tx, ..
                        } => {
                            if let Some(tx) = invite_tx {
                                txs.complete(tx, bytes, false);
                            }
                            stream.write_all(bytes).await
                        }
                        Outcome::Retransmission { tx } => match txs.held_answer(tx) {
                            Some((bytes, is_final)) => {
                                if is_final {
                                    shared.stats.retransmitted(1);
                                }
                                stream.write_all(bytes).await
                            }
                            None => Ok(()),
                        },
                        Outcome::Pending { trying, invite } => {
                            if slots.take() {
                                let invite = Arc::new(invite);
                                txs.pending
                                    .insert(invite.tx, (trying.to_vec(), invite.clone()));
                                spawn_lookup(&shared, invite, done_tx.clone());
                                stream.write_all(trying).await
                            } else {
                                shared.stats.response(503);
                                stream.write_all(&invite.unavailable()).await
                            }
                        }
                        Outcome::Cancel { ok, tx } => {
                            let mut w = stream.write_all(ok).await;
                            if let Some((_, invite)) = txs.pending.remove(&tx) {
                                let terminated = invite.terminated();
                                txs.complete(tx, &terminated, true);
                                if w.is_ok() {
                                    shared.stats.response(487);
                                    w = stream.write_all(&terminated).await;
                                }
                            }
                            w
                        }
                        Outcome::Ack { tx } => {
                            txs.end(tx);
                            Ok(())
                        }
                        Outcome::Drop(_) => Ok(()),
                    };
                    if written.is_err() {
                        return;
                    }
                    buf.drain(..used.min(buf.len()));
                    if close || buf.is_empty() {
                        break;
                    }
                }
            }
        }
        if buf.len() > shared.max_message_bytes {
            // Too large to ever complete: 513 when its start reads (SPEC §10.19), then close.
            too_large(&mut stream, &mut handler, &buf, peer, &shared).await;
            return;
        }
        let expiry = txs.next_expiry();
        let read = tokio::select! {
            r = tokio::time::timeout(shared.tcp_idle, stream.read(&mut chunk)) => r,
            Some((tx, bytes, status)) = done_rx.recv() => {
                if txs.pending.remove(&tx).is_some() {
                    txs.complete(tx, &bytes, true);
                    shared.stats.response(status);
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(tokio::time::Instant::now)), if expiry.is_some() => {
                txs.expire();
                continue;
            }
            _ = shutdown.changed() => return,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Answers a message over `sip.max_message_bytes` with 513 (from its top Via and
/// dialog headers, like any salvaged answer) when its start can be read; the caller
/// then closes the connection.
async fn too_large<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    handler: &mut Handler<'_>,
    buf: &[u8],
    peer: SocketAddr,
    shared: &Shared,
) {
    shared.stats.dropped(Drop::Oversized);
    if let Outcome::Reply { bytes, .. } = handler.too_large(buf, peer) {
        let _ = stream.write_all(bytes).await;
    }
}
