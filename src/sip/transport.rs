//! SIP over UDP, TCP and TLS: sockets, framing, limits and shutdown.
//!
//! Owns: binding every `sip.listen` entry (and the TLS certificate and key), one task
//! per UDP socket (a datagram is a message; over `sip.max_message_bytes` it is dropped
//! and counted), one task per TCP/TLS listener and per connection (Content-Length
//! framing, several messages per read, messages split across reads, `sip.tcp_idle_s`,
//! 513 then close for an oversized message, a connection limit), sending what each
//! message gets (`answer`, over a `Sink`: the socket or the connection) while
//! keeping the task's transactions in step (one `Transactions` set per task, the same
//! for UDP and streams: lookups and REGISTER commits spawned here and their answers
//! sent when they end, timers fired on the task's clock), and stopping every task on
//! shutdown after the message in hand.
//!
//! Must not touch: what the answer is (see `sip::redirect`), its bytes (see
//! `sip::response`), what a transaction holds and for how long (see
//! `sip::transaction`). No lock is held across an await: each task owns its buffers,
//! its [`Handler`] and its transactions.

use super::redirect::{Handler, Held, Outcome, Settings};
use super::stats::{DropReason, SipStats};
use super::transaction::{PendingRequest, Slots, Transactions};
use crate::config::{Listen, TlsConfig, Transport};
use crate::resolve::Router;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
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
    /// The registrar, when `registrar.enabled`.
    pub registrar: Option<Arc<crate::registrar::Registrar>>,
}

impl Shared {
    /// The bound every task's [`Transactions`] count against.
    fn slots(&self) -> Slots<'_> {
        Slots::new(&self.stats.transactions, self.max_transactions)
    }
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

/// A finished lookup: the transaction, its final answer and that answer's status.
type Done = (u64, Vec<u8>, u16);

/// Starts the lookup for a pending INVITE; the answer comes back on `done`, a 500 if the
/// lookup failed in a way it could not answer (a panic), so that the transaction and
/// its slot always end.
fn spawn_lookup(
    shared: &Arc<Shared>,
    invite: Arc<PendingRequest>,
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

/// Timer F (64·T1): how long a REGISTER waits for its commit before it is answered 500.
const TIMER_F: Duration = Duration::from_secs(32);

/// Hands a REGISTER's change (its transaction already held) to the registrar's writer
/// and waits for the commit, at most Timer F; its answer comes back on `done` like a
/// lookup's.
fn spawn_register(
    shared: &Arc<Shared>,
    register: Arc<PendingRequest>,
    update: crate::registrar::Update,
    done: tokio::sync::mpsc::UnboundedSender<Done>,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let Some(reg) = shared.registrar.as_deref() else {
            let _ = done.send((register.tx, register.internal_error(), 500));
            return;
        };
        let result = match reg.register(update) {
            Err(refused) => Some(Err(refused)),
            Ok(committed) => tokio::time::timeout(TIMER_F, committed)
                .await
                .ok()
                .and_then(Result::ok),
        };
        let (bytes, status) = super::register::committed_answer(&register, result, reg);
        let _ = done.send((register.tx, bytes, status));
    });
}

/// One UDP socket: a datagram is a message.
async fn udp_loop(sock: UdpSocket, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; shared.max_message_bytes + 1];
    let mut handler = Handler::new(&shared.router, &shared.settings, &shared.tag_key)
        .counting(&shared.stats, Transport::Udp)
        .with_registrar(shared.registrar.as_deref());
    let mut txs = Transactions::over_udp(shared.slots());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let mut out = Datagrams(&sock);
    loop {
        let due = txs.next_due();
        let (n, source) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on some systems: go on.
                Err(_) => continue,
            },
            Some(done) = done_rx.recv() => {
                let _ = lookup_done(&mut out, &mut txs, done, &shared.stats).await;
                continue;
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                let sent = retransmit(&sock, &mut txs).await;
                shared.stats.retransmitted(sent);
                continue;
            }
            _ = shutdown.changed() => {
                // INVITEs still waiting on DNS will not get their answer from us: tell
                // them to try again (or another server) rather than leave them to time out.
                for invite in txs.pending_invites() {
                    let _ = sock.send_to(&invite.unavailable(), invite.dest).await;
                    shared.stats.response(503);
                }
                return;
            }
        };
        handler.overloaded = txs.full();
        if n > shared.max_message_bytes {
            shared.stats.dropped(DropReason::Oversized);
            continue;
        }
        let state = |tx: u64| txs.state(tx);
        let Some((outcome, _)) = handler.handle_with(&buf[..n], source, false, &state) else {
            continue;
        };
        let _ = answer(&mut out, outcome, &mut txs, &shared, &done_tx).await;
    }
}

/// Timer G and H over UDP (see [`Transactions::fire`]): sends again every answer due;
/// returns how many.
async fn retransmit(sock: &UdpSocket, txs: &mut Transactions<'_>) -> u64 {
    let now = tokio::time::Instant::now();
    let mut sent = 0;
    while let Some((bytes, dest)) = txs.fire(now) {
        let _ = sock.send_to(bytes, dest).await;
        sent += 1;
    }
    sent
}

/// Where a task's answers go: over UDP, each to its destination (a failed send is not
/// an error: UDP may lose it anyway); over a stream, down the connection (a failed write
/// ends it).
trait Sink {
    async fn send(&mut self, bytes: &[u8], dest: SocketAddr) -> std::io::Result<()>;
}

/// A UDP socket's answers.
struct Datagrams<'s>(&'s UdpSocket);

impl Sink for Datagrams<'_> {
    #[inline]
    async fn send(&mut self, bytes: &[u8], dest: SocketAddr) -> std::io::Result<()> {
        let _ = self.0.send_to(bytes, dest).await;
        Ok(())
    }
}

/// A TCP or TLS connection's answers (the destination is the peer).
struct Connection<'s, S>(&'s mut S);

impl<S: AsyncWriteExt + Unpin> Sink for Connection<'_, S> {
    #[inline]
    async fn send(&mut self, bytes: &[u8], _dest: SocketAddr) -> std::io::Result<()> {
        self.0.write_all(bytes).await
    }
}

/// Sends what one message gets and keeps the transaction state it makes: a final
/// INVITE answer held, a retransmission answered from what is held, a pending INVITE's
/// 100 and lookup, a CANCEL's 200 and the INVITE's 487, an ACK ending its transaction.
/// `Err`: the stream cannot be written.
async fn answer(
    out: &mut impl Sink,
    outcome: Outcome<'_>,
    txs: &mut Transactions<'_>,
    shared: &Arc<Shared>,
    done: &tokio::sync::mpsc::UnboundedSender<Done>,
) -> std::io::Result<()> {
    match outcome {
        Outcome::Reply {
            bytes, dest, held, ..
        } => {
            let sent = out.send(bytes, dest).await;
            match held {
                Some(Held::Invite(tx)) => txs.complete(tx, bytes, dest),
                Some(Held::Register(tx)) => txs.complete_register(tx, bytes, dest),
                None => {}
            }
            sent
        }
        Outcome::Retransmission { tx } => match txs.held_answer(tx) {
            // The answer already given, byte for byte (or 100 again while pending).
            // A REGISTER still committing: discarded (RFC 3261 §17.2.2, Trying).
            Some(([], _, _)) => Ok(()),
            Some((bytes, dest, is_final)) => {
                if is_final {
                    shared.stats.retransmitted(1);
                }
                out.send(bytes, dest).await
            }
            None => Ok(()),
        },
        Outcome::Register { register, update } => match txs.hold_register(register) {
            Ok(register) => {
                spawn_register(shared, register, update, done.clone());
                Ok(())
            }
            Err(register) => {
                // No slot: nothing was handed to the registrar; the client retries.
                if let Some(reg) = &shared.registrar {
                    reg.count(crate::registrar::Outcome::Error);
                }
                shared.stats.response(503);
                out.send(&register.unavailable(), register.dest).await
            }
        },
        Outcome::Pending { trying, invite } => match txs.hold_pending(trying, invite) {
            Ok(invite) => {
                let sent = out.send(trying, invite.dest).await;
                spawn_lookup(shared, invite, done.clone());
                sent
            }
            Err(invite) => {
                // Another task took the last slot since `overloaded` was read.
                shared.stats.response(503);
                out.send(&invite.unavailable(), invite.dest).await
            }
        },
        Outcome::Cancel { ok, tx } => {
            // The lookup goes on (its answer fills the cache) but is not sent.
            let Some((terminated, dest)) = txs.answer_pending(tx, PendingRequest::terminated)
            else {
                return Ok(()); // the handler sends Cancel only for a pending INVITE
            };
            out.send(ok, dest).await?;
            shared.stats.response(487);
            out.send(terminated, dest).await
        }
        Outcome::Ack { tx } => {
            txs.end(tx);
            Ok(())
        }
        Outcome::Drop(_) => Ok(()),
    }
}

/// A lookup ended: its answer is sent unless a CANCEL already ended the INVITE (487).
/// The transaction keeps its slot until ACK or Timer H.
async fn lookup_done(
    out: &mut impl Sink,
    txs: &mut Transactions<'_>,
    (tx, answer, status): Done,
    stats: &SipStats,
) -> std::io::Result<()> {
    match txs.answer_pending(tx, |_| answer) {
        Some((bytes, dest)) => {
            stats.response(status);
            out.send(bytes, dest).await
        }
        None => Ok(()),
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

/// One TCP or TLS connection: frames messages and answers them on the same stream.
async fn stream_conn<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut handler = Handler::new(&shared.router, &shared.settings, &shared.tag_key)
        .counting(&shared.stats, transport)
        .with_registrar(shared.registrar.as_deref());
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut txs = Transactions::over_stream(shared.slots());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    loop {
        let mut conn = Connection(&mut stream);
        let answered = answer_buffered(
            &mut conn,
            &mut handler,
            &mut buf,
            peer,
            &mut txs,
            &shared,
            &done_tx,
        );
        if answered.await.is_break() {
            return;
        }
        if buf.len() > shared.max_message_bytes {
            // Too large to ever complete: 513 when its start reads (SPEC §10.19), then close.
            too_large(&mut stream, &mut handler, &buf, peer, &shared).await;
            return;
        }
        let expiry = txs.next_due();
        let read = tokio::select! {
            r = tokio::time::timeout(shared.tcp_idle, stream.read(&mut chunk)) => r,
            Some(done) = done_rx.recv() => {
                let mut conn = Connection(&mut stream);
                if lookup_done(&mut conn, &mut txs, done, &shared.stats).await.is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(tokio::time::Instant::now)), if expiry.is_some() => {
                // Timer H only: nothing is sent again over a reliable transport.
                let again = txs.fire(tokio::time::Instant::now());
                debug_assert!(again.is_none(), "no Timer G over a stream");
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

/// Answers every complete message at the start of `buf`, taking each from it, until
/// it is empty, holds only the start of a message, or follows a message that cannot be
/// framed. `Break`: the connection ends (a write failed, or a message too large got 513).
async fn answer_buffered<S: tokio::io::AsyncWrite + Unpin>(
    conn: &mut Connection<'_, S>,
    handler: &mut Handler<'_>,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
    txs: &mut Transactions<'_>,
    shared: &Arc<Shared>,
    done: &tokio::sync::mpsc::UnboundedSender<Done>,
) -> ControlFlow<()> {
    loop {
        handler.overloaded = txs.full();
        let state = |tx: u64| txs.state(tx);
        match handler.handle_with(buf, peer, true, &state) {
            None => return ControlFlow::Continue(()),
            Some((_, used)) if used > shared.max_message_bytes => {
                too_large(conn.0, handler, buf, peer, shared).await;
                return ControlFlow::Break(());
            }
            Some((outcome, used)) => {
                // After bytes that cannot be framed, where the next message starts
                // is unknown: stop answering what is buffered until more bytes come.
                // The connection stays open, as it always has (closing it would be
                // the stricter choice).
                let close = matches!(
                    outcome,
                    Outcome::Drop(DropReason::Garbage | DropReason::Response | DropReason::NoVia)
                );
                if answer(conn, outcome, txs, shared, done).await.is_err() {
                    return ControlFlow::Break(());
                }
                buf.drain(..used.min(buf.len()));
                if close || buf.is_empty() {
                    return ControlFlow::Continue(());
                }
            }
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
    shared.stats.dropped(DropReason::Oversized);
    if let Outcome::Reply { bytes, .. } = handler.too_large(buf, peer) {
        let _ = stream.write_all(bytes).await;
    }
}
