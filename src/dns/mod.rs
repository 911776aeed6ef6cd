//! The DNS service for local zones (SPEC §6): listeners, answers, transfers, NOTIFY and
//! secondary zones.
//!
//! Owns: the `dns.listen` sockets — one UDP socket per core with SO_REUSEPORT (as SIP),
//! TCP with RFC 1035 §4.2.2 length framing, several queries per connection, an idle
//! timeout and a connection limit — and stopping them on shutdown. Submodules:
//! [`wire`] (messages on byte slices), [`answer`] (the authority over the index),
//! [`xfr`] (AXFR and IXFR out, transfer metrics), [`fetch`] (AXFR and IXFR in),
//! [`tsig`] (RFC 8945 signatures on message bytes), [`guard`] (which requests TSIG lets
//! through), [`follow`] (which secondary zones are kept: configured ones and catalog
//! members), [`notify`] (NOTIFY out), [`secondary`] (zones kept from a
//! primary).
//!
//! Must not touch: routing (SIP reads the same [`crate::zone::ZoneSet`], never the
//! DNS listener), or how zones are loaded from files.
//!
//! Why not hickory-server's `ServerFuture` with a `RequestHandler` over our index: its
//! request path decodes every query into owned hickory messages and wants answers as
//! `Record<RData>` values, so each answer would decode the index's wire rdata into
//! hickory types only to encode it again, and each UDP packet is a spawned task. The
//! index already holds answers in wire form; the listener here copies them straight
//! into a reused buffer (see BENCHMARKS.md, issue 5, for the figures).

pub mod answer;
pub mod fetch;
pub mod follow;
pub mod guard;
pub mod notify;
pub mod secondary;
pub mod tsig;
pub mod wire;
pub mod xfr;

use crate::config::{Listen, Transport};
use crate::net::BindError;
use answer::{Action, Authority};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use wire::Query;

/// Most TCP connections at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 1024;
/// A TCP connection with no query for this long is closed (RFC 7766 §6.2.3: seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// UDP IXFR answers being built at once per socket (each reads the journal off the
/// loop); past it a client gets our SOA alone, which sends it to TCP (RFC 1995 §2).
const UDP_IXFR_IN_FLIGHT: usize = 8;

/// A bound DNS socket.
pub enum Bound {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

/// Binds every `dns.listen` entry (TLS is not a DNS transport here). The start-up
/// summary in `server` names what was bound.
pub async fn bind(listen: &[Listen]) -> Result<Vec<Bound>, BindError> {
    let mut out = Vec::new();
    for l in listen {
        let err = |error| BindError {
            addr: l.addr,
            error,
        };
        match l.transport {
            Transport::Udp => {
                for s in crate::net::udp_sockets(l.addr).map_err(err)? {
                    out.push(Bound::Udp(s));
                }
            }
            Transport::Tcp => {
                out.push(Bound::Tcp(TcpListener::bind(l.addr).await.map_err(err)?));
            }
            Transport::Tls => {
                return Err(BindError {
                    addr: l.addr,
                    error: std::io::Error::other("dns.listen takes udp: and tcp: only"),
                });
            }
        }
    }
    Ok(out)
}

/// Serves until `shutdown` turns true.
pub async fn serve(sockets: Vec<Bound>, auth: Arc<Authority>, shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in sockets {
        let (auth, shutdown) = (auth.clone(), shutdown.clone());
        match s {
            Bound::Udp(sock) => tasks.spawn(udp_loop(sock, auth, shutdown)),
            Bound::Tcp(l) => tasks.spawn(tcp_accept(l, auth, shutdown)),
        };
    }
    while tasks.join_next().await.is_some() {}
}

async fn udp_loop(sock: UdpSocket, auth: Arc<Authority>, mut shutdown: watch::Receiver<bool>) {
    let sock = Arc::new(sock);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(wire::MAX_UDP_PAYLOAD);
    loop {
        let (n, src) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        match auth.answer(&buf[..n], src, false, &mut out) {
            Action::Reply => {
                let _ = sock.send_to(&out, src).await;
            }
            // An IXFR (AXFR is refused over UDP): the journal is read off this loop.
            Action::Transfer(t) => {
                let query = buf[..n].to_vec();
                let limit = Query::parse(&query).map_or(512, |q| q.udp_limit());
                if in_flight.load(Ordering::Relaxed) >= UDP_IXFR_IN_FLIGHT {
                    if let Some(out) = xfr::ixfr_udp_soa(&query, &t, limit, (&auth.xfr, src)) {
                        let _ = sock.send_to(&out, src).await;
                    }
                    continue;
                }
                let journal = auth.journal.clone();
                in_flight.fetch_add(1, Ordering::Relaxed);
                let (sock, auth, in_flight) = (sock.clone(), auth.clone(), in_flight.clone());
                tokio::spawn(async move {
                    if let Some(out) =
                        xfr::ixfr_udp(query, t, journal, limit, (&auth.xfr, src)).await
                    {
                        let _ = sock.send_to(&out, src).await;
                    }
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Action::Drop => {}
        }
    }
}

async fn tcp_accept(l: TcpListener, auth: Arc<Authority>, mut shutdown: watch::Receiver<bool>) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, src) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = shutdown.changed() => break,
        };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            drop(stream);
            auth.stats.dropped.inc(0);
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (auth, open, shutdown) = (auth.clone(), open.clone(), shutdown.clone());
        conns.spawn(async move {
            let _ = tcp_conn(stream, src, &auth, shutdown).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Let connections finish the query in hand.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

async fn tcp_conn(
    mut stream: tokio::net::TcpStream,
    src: SocketAddr,
    auth: &Authority,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    // Length prefix + answer, written in one call (one segment with TCP_NODELAY).
    let mut framed = Vec::new();
    loop {
        let len = tokio::select! {
            r = tokio::time::timeout(TCP_IDLE, stream.read_u16()) => match r {
                Ok(Ok(n)) => n as usize,
                _ => return Ok(()),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        buf.resize(len, 0);
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        match auth.answer(&buf, src, true, &mut out) {
            Action::Reply => {
                framed.clear();
                framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
                framed.extend_from_slice(&out);
                stream.write_all(&framed).await?;
            }
            Action::Transfer(t) => {
                let span = tracing::info_span!("transfer", to = %src);
                let journal = auth.journal.clone();
                let sent = xfr::send(&mut stream, buf.clone(), t, journal, (&auth.xfr, src));
                tracing::Instrument::instrument(sent, span).await?;
            }
            Action::Drop => {}
        }
    }
}
