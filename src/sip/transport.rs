//! SIP over UDP and TCP: sockets, framing, limits and shutdown.
//!
//! Owns: one task per UDP socket (a datagram is a message; over `sip.max_message_bytes`
//! it is dropped and counted), one task per TCP listener and per connection
//! (Content-Length framing, several messages per read, messages split across reads,
//! `sip.tcp_idle_s`, 513 then close for an oversized message, a connection limit), and
//! stopping all of them on shutdown after the message in hand.
//!
//! Must not touch: what the answer is (see `sip::redirect`). No lock is held across an
//! await: each task owns its buffers and its [`Handler`].

use super::redirect::{Drop, Handler, Outcome, Settings};
use crate::config::{Listen, TlsConfig, Transport};
use crate::resolve::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// Most TCP connections at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 4096;

/// Counters the metrics layer will export.
#[derive(Default)]
pub struct SipStats {
    pub requests: AtomicU64,
    pub responses: AtomicU64,
    pub dropped: AtomicU64,
    pub oversized: AtomicU64,
    /// Final INVITE answers re-sent on Timer G.
    pub retransmissions: AtomicU64,
    /// INVITE transactions held across all UDP sockets (bounded by `sip.max_transactions`).
    pub transactions: std::sync::atomic::AtomicUsize,
}

/// Everything the SIP tasks share.
pub struct Shared {
    pub router: Arc<Router>,
    /// INVITE transactions held (all UDP sockets together) before new INVITEs get 503.
    pub max_transactions: usize,
    pub settings: Settings,
    pub tag_key: super::redirect::TagKey,
    pub max_message_bytes: usize,
    pub tcp_idle: Duration,
    pub stats: SipStats,
}

/// Why the listeners could not start; the message names the address or file.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot bind {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("sip.tls: {0}")]
    Tls(String),
}

/// Binds every `sip.listen` entry; fails on the first that cannot be bound. `tls` is
/// `[sip.tls]`, needed when a `tls:` listener is configured.
pub async fn bind(listen: &[Listen], tls: Option<&TlsConfig>) -> Result<Vec<Bound>, BindError> {
    let mut out = Vec::new();
    let mut acceptor: Option<tokio_rustls::TlsAcceptor> = None;
    for l in listen {
        let err = |error| BindError::Bind {
            addr: l.addr,
            error,
        };
        match l.transport {
            Transport::Udp => {
                for sock in udp_sockets(l.addr).map_err(err)? {
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

/// One UDP socket per core on the same address with SO_REUSEPORT: the kernel spreads
/// datagrams over them by the sender's address and port, so each runtime worker answers
/// its share, and one peer's retransmissions and ACKs always reach the same socket (and
/// its transaction table).
fn udp_sockets(addr: SocketAddr) -> std::io::Result<Vec<UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_port(true)?;
        // Room for bursts: a full 64 KiB message queue per socket (the kernel caps it).
        let _ = s.set_recv_buffer_size(4 << 20);
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        out.push(UdpSocket::from_std(s.into())?);
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
pub async fn serve(sockets: Vec<Bound>, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in sockets {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        match s {
            Bound::Udp(sock) => {
                tracing::info!(addr = %sock.local_addr().map_or("?".into(), |a| a.to_string()), "SIP listening on udp");
                tasks.spawn(udp_loop(sock, shared, shutdown));
            }
            Bound::Tcp(l) => {
                tracing::info!(addr = %l.local_addr().map_or("?".into(), |a| a.to_string()), "SIP listening on tcp");
                tasks.spawn(tcp_accept(l, None, shared, shutdown));
            }
            Bound::Tls(l, acceptor) => {
                tracing::info!(addr = %l.local_addr().map_or("?".into(), |a| a.to_string()), "SIP listening on tls");
                tasks.spawn(tcp_accept(l, Some(acceptor), shared, shutdown));
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

fn count(shared: &Shared, outcome: &Outcome) {
    match outcome {
        Outcome::Reply { .. } => {
            shared.stats.requests.fetch_add(1, Ordering::Relaxed);
            shared.stats.responses.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Ack { .. } => {
            shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Drop(_) => {
            shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// RFC 3261 §17: T1, T2 and Timer H (64·T1).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_H: Duration = Duration::from_secs(32);

/// A final INVITE answer sent over UDP and not yet acknowledged (RFC 3261 §17.2.1).
struct Unacked {
    bytes: Vec<u8>,
    dest: SocketAddr,
    interval: Duration,
    next: tokio::time::Instant,
    give_up: tokio::time::Instant,
}

/// The INVITE server transactions of one UDP socket: retransmission on Timer G until the
/// ACK arrives or Timer H fires. Bounded by `sip.max_transactions`.
#[derive(Default)]
struct Transactions {
    unacked: std::collections::HashMap<u64, Unacked>,
    /// (when, transaction): entries whose time no longer matches are stale.
    timers: std::collections::BinaryHeap<std::cmp::Reverse<(tokio::time::Instant, u64)>>,
}

impl Transactions {
    fn start(
        &mut self,
        tx: u64,
        bytes: &[u8],
        dest: SocketAddr,
        held: &std::sync::atomic::AtomicUsize,
    ) {
        if self.unacked.contains_key(&tx) {
            return; // a retransmitted INVITE: the timers already run
        }
        held.fetch_add(1, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        let next = now + T1;
        self.unacked.insert(
            tx,
            Unacked {
                bytes: bytes.to_vec(),
                dest,
                interval: T1,
                next,
                give_up: now + TIMER_H,
            },
        );
        self.timers.push(std::cmp::Reverse((next, tx)));
    }

    /// Whether the INVITE transaction `tx` is still waiting for its ACK.
    fn is_open(&self, tx: u64) -> bool {
        self.unacked.contains_key(&tx)
    }

    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.timers.peek().map(|std::cmp::Reverse((t, _))| *t)
    }

    /// Ends a transaction (its ACK arrived).
    fn end(&mut self, tx: u64, held: &std::sync::atomic::AtomicUsize) {
        if self.unacked.remove(&tx).is_some() {
            held.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Retransmits what is due; returns how many were sent.
    async fn fire(&mut self, sock: &UdpSocket, held: &std::sync::atomic::AtomicUsize) -> u64 {
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
                held.fetch_sub(1, Ordering::Relaxed);
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

async fn udp_loop(sock: UdpSocket, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; shared.max_message_bytes + 1];
    let mut handler = Handler::new(&shared.router, &shared.settings, &shared.tag_key);
    let mut txs = Transactions::default();
    loop {
        let due = txs.next_due();
        let (n, source) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on some systems: go on.
                Err(_) => continue,
            },
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                let sent = txs.fire(&sock, &shared.stats.transactions).await;
                shared.stats.retransmissions.fetch_add(sent, Ordering::Relaxed);
                continue;
            }
            _ = shutdown.changed() => return,
        };
        handler.overloaded =
            shared.stats.transactions.load(Ordering::Relaxed) >= shared.max_transactions;
        if n > shared.max_message_bytes {
            shared.stats.oversized.fetch_add(1, Ordering::Relaxed);
            shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let open = |tx: u64| txs.is_open(tx);
        let Some((outcome, _)) = handler.handle_with(&buf[..n], source, false, &open) else {
            continue;
        };
        count(&shared, &outcome);
        match outcome {
            Outcome::Reply {
                bytes,
                dest,
                invite_tx,
                ..
            } => {
                let _ = sock.send_to(bytes, dest).await;
                if let Some(tx) = invite_tx {
                    txs.start(tx, bytes, dest, &shared.stats.transactions);
                }
            }
            Outcome::Ack { tx } => txs.end(tx, &shared.stats.transactions),
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
                None => stream_conn(stream, peer, shared, shutdown).await,
                Some(acceptor) => {
                    // The handshake gets the idle timeout too: a silent client cannot
                    // hold a connection slot.
                    if let Ok(Ok(tls_stream)) =
                        tokio::time::timeout(shared.tcp_idle, acceptor.accept(stream)).await
                    {
                        stream_conn(tls_stream, peer, shared, shutdown).await;
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
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut handler = Handler::new(&shared.router, &shared.settings, &shared.tag_key);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Answer every complete message in the buffer.
        loop {
            match handler.handle(&buf, peer, true) {
                None => break,
                Some((_, used)) if used > shared.max_message_bytes => {
                    shared.stats.oversized.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.write_all(&too_large(&buf, &shared)).await;
                    return;
                }
                Some((outcome, used)) => {
                    count(&shared, &outcome);
                    // After bytes that cannot be framed there is no way to find the
                    // next message on this stream: close it.
                    let close = matches!(
                        outcome,
                        Outcome::Drop(Drop::Garbage | Drop::Response | Drop::NoVia)
                    );
                    if let Outcome::Reply { bytes, .. } = &outcome
                        && stream.write_all(bytes).await.is_err()
                    {
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
            shared.stats.oversized.fetch_add(1, Ordering::Relaxed);
            let _ = stream.write_all(&too_large(&buf, &shared)).await;
            return;
        }
        let read = tokio::select! {
            r = tokio::time::timeout(shared.tcp_idle, stream.read(&mut chunk)) => r,
            _ = shutdown.changed() => return,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A 513 for an oversized message, built from its top Via and dialog headers.
fn too_large(buf: &[u8], shared: &Shared) -> Vec<u8> {
    let text = String::from_utf8_lossy(&buf[..buf.len().min(8192)]);
    let mut out = String::from("SIP/2.0 513 Message Too Large\r\n");
    for line in text.split('\n').skip(1).map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "Server: {}\r\nContent-Length: 0\r\n\r\n",
        shared.settings.server
    ));
    out.into_bytes()
}
