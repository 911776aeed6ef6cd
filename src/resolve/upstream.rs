//! Upstream ENUM over DNS: NAPTR queries for the names no local zone holds, through
//! `enum.nameservers` (the servers of the system resolver configuration when the list
//! is empty, read with hickory-resolver).
//!
//! Owns: asking the servers in the configured order, two tries each, the tries spaced so
//! that the whole lookup fits in `enum.timeout_ms`; UDP with TCP when the answer is
//! truncated; and turning each outcome into records (NAPTR rdata in wire form with the
//! RRset TTL), a negative answer (NXDOMAIN or NODATA with its RFC 2308 TTL:
//! min(SOA TTL, SOA MINIMUM)), or a failure (timeout, SERVFAIL, REFUSED, anything else).
//! NXDOMAIN is an answer, not an error. No cache here: decisions are cached by
//! `resolve::cache` with the TTL rules of SPEC §5.
//!
//! A try that has not been answered when the next one goes out stays outstanding: a
//! lookup takes the first valid answer to any of its tries, until its deadline, so a
//! slow server (an answer in 600 ms with a 1000 ms budget) is an answer, not a failure.
//! The next try goes to the same server once, then to the next server, while the
//! earlier ones still wait. A valid answer matches an outstanding try's ID and question
//! and comes from the server that try asked (the sockets are connected, so the kernel
//! drops datagrams from anyone else); anything else (garbage, another ID, another
//! question) is dropped and leaves the try outstanding.
//!
//! Written on hickory-proto (messages) rather than with hickory-resolver's lookups:
//! measured for issue 4, hickory-resolver's UDP client opens, registers and closes a
//! socket for every query, which made a cache miss cost 84 CPU-µs and held misses below
//! the 20,000/s target. Here each server gets a few long-lived connected UDP sockets
//! on random ephemeral ports, answers are matched to queries by ID (random, 16 bits)
//! and question, so a miss costs one send and one receive.
//!
//! Must not touch: DDDS, decisions or SIP. The caller bounds the whole lookup in time.

use crate::name::Name;
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::serialize::binary::{BinEncodable, BinEncoder};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// What one upstream NAPTR query gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NAPTR rdata in wire form and the lowest TTL of the answer.
    Records { rdatas: Arc<[Box<[u8]>]>, ttl: u32 },
    /// No NAPTR at the name: NXDOMAIN (`nxdomain`) or NODATA, cacheable for `ttl`
    /// seconds (0 when the answer carried no SOA: RFC 2308 §5, not cached).
    Negative { nxdomain: bool, ttl: u32 },
    /// No answer to rely on.
    Failed(Failure),
}

/// Why an upstream lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    ServFail,
    Refused,
    Other(String),
}

impl Failure {
    /// The label used in traces, logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::ServFail => "servfail",
            Failure::Refused => "refused",
            Failure::Other(_) => "error",
        }
    }
}

impl Answer {
    /// The label used in traces, logs and metrics: answer, nxdomain, nodata or the
    /// failure's.
    pub fn result(&self) -> &'static str {
        match self {
            Answer::Records { .. } => "answer",
            Answer::Negative { nxdomain: true, .. } => "nxdomain",
            Answer::Negative { .. } => "nodata",
            Answer::Failed(f) => f.as_str(),
        }
    }
}

/// Long-lived UDP sockets per server: spreads IDs over several source ports.
const SOCKETS_PER_SERVER: usize = 4;
/// Queries waiting on one socket, at most (IDs are 16 bits).
const MAX_WAITING: usize = 30_000;
/// Tries per server.
const TRIES_PER_SERVER: usize = 2;
/// The least time between two tries.
const MIN_TRY_SPACING: Duration = Duration::from_millis(20);

/// One lookup as the receive tasks see it: the question its tries asked and where the
/// answers go, tagged with the try they answer. The channel holds one answer per try
/// (a try's waiter is removed when its answer is delivered), so it never fills.
struct Lookup {
    qname: hickory_resolver::proto::rr::Name,
    answers: mpsc::Sender<(usize, Message)>,
}

/// Who waits for one query ID on one socket: a try of a lookup.
struct Waiter {
    lookup: Arc<Lookup>,
    try_no: usize,
}

impl Waiter {
    fn is(&self, lookup: &Arc<Lookup>, try_no: usize) -> bool {
        Arc::ptr_eq(&self.lookup, lookup) && self.try_no == try_no
    }
}

/// Who waits for which query ID on one socket.
type Waiting = Mutex<HashMap<u16, Waiter>>;

fn lock(w: &Waiting) -> std::sync::MutexGuard<'_, HashMap<u16, Waiter>> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// One server's sockets and their receive tasks.
struct Endpoint {
    addr: SocketAddr,
    socks: Vec<(Arc<UdpSocket>, Arc<Waiting>)>,
    next: AtomicUsize,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Endpoint {
    async fn open(addr: SocketAddr) -> std::io::Result<Endpoint> {
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("literal")
        } else {
            "0.0.0.0:0".parse().expect("literal")
        };
        let mut socks = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..SOCKETS_PER_SERVER {
            let sock = Arc::new(UdpSocket::bind(bind).await?);
            // Connected: only datagrams from `addr` are received.
            sock.connect(addr).await?;
            let waiting: Arc<Waiting> = Arc::default();
            tasks.push(tokio::spawn(receive(sock.clone(), waiting.clone())));
            socks.push((sock, waiting));
        }
        Ok(Endpoint {
            addr,
            socks,
            next: AtomicUsize::new(0),
            tasks,
        })
    }
}

/// Reads one socket until aborted, handing each valid answer to the try it answers.
async fn receive(sock: Arc<UdpSocket>, waiting: Arc<Waiting>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP errors (port unreachable) surface here: keep reading, after a pause
            // so that a socket that keeps failing cannot spin a core.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        if n < 12 {
            continue; // shorter than a DNS header
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        let Some((lookup, try_no)) = lock(&waiting)
            .get(&id)
            .map(|w| (w.lookup.clone(), w.try_no))
        else {
            continue; // no try waits for this ID: late, stray or spoofed
        };
        // Parsed outside the lock. Garbage, or an answer to another question, leaves the
        // try waiting for the real answer.
        let Ok(message) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if !answers(&message, id, &lookup.qname) {
            continue;
        }
        let mut w = lock(&waiting);
        // The lookup may have ended (and the ID been taken again) meanwhile.
        if w.get(&id).is_some_and(|w| w.is(&lookup, try_no)) {
            w.remove(&id);
            drop(w);
            let _ = lookup.answers.try_send((try_no, message));
        }
    }
}

/// One try sent: where its waiter is registered.
struct Try {
    server: usize,
    sock: usize,
    id: u16,
    /// Not answered yet: its waiter is still registered.
    open: bool,
}

/// The tries of one lookup. Dropping it (the lookup answered, gave up or was
/// cancelled) removes the waiters of the tries still open.
struct Tries<'a> {
    endpoints: &'a [Endpoint],
    lookup: Arc<Lookup>,
    sent: Vec<Try>,
}

impl Tries<'_> {
    fn open(&self) -> usize {
        self.sent.iter().filter(|t| t.open).count()
    }
}

impl Drop for Tries<'_> {
    fn drop(&mut self) {
        for (try_no, t) in self.sent.iter().enumerate().filter(|(_, t)| t.open) {
            let mut w = lock(&self.endpoints[t.server].socks[t.sock].1);
            if w.get(&t.id).is_some_and(|w| w.is(&self.lookup, try_no)) {
                w.remove(&t.id);
            }
        }
    }
}

/// What ended one wait of a lookup.
enum Event {
    Answer(usize, Message),
    Tcp(Result<Message, Failure>),
    NextTry,
    Deadline,
}

type TcpTry = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Message, Failure>> + Send>>;

/// The upstream client, shared by every worker.
pub struct Upstream {
    servers_list: Vec<SocketAddr>,
    /// Sockets, opened on first use (inside the runtime).
    endpoints: tokio::sync::OnceCell<Vec<Endpoint>>,
    /// The servers asked, for traces (`127.0.0.1:5300, …`).
    pub servers: String,
    /// The bound of the whole lookup (`enum.timeout_ms`).
    pub timeout: Duration,
    ids: std::collections::hash_map::RandomState,
    seq: AtomicU64,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(eps) = self.endpoints.get() {
            for t in eps.iter().flat_map(|e| &e.tasks) {
                t.abort();
            }
        }
    }
}

impl Upstream {
    /// A client for `nameservers` (the system configuration's when empty) whose whole
    /// lookup fits in `timeout`.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Upstream, String> {
        let list: Vec<SocketAddr> = if nameservers.is_empty() {
            let (config, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
            let mut seen = Vec::new();
            for ns in config.name_servers() {
                let port = ns.connections.first().map_or(53, |c| c.port);
                let addr = SocketAddr::new(ns.ip, port);
                if !seen.contains(&addr) {
                    seen.push(addr);
                }
            }
            seen
        } else {
            nameservers.to_vec()
        };
        if list.is_empty() {
            return Err("no name servers configured or found in the system configuration".into());
        }
        let servers = list
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Upstream {
            servers_list: list,
            endpoints: tokio::sync::OnceCell::new(),
            servers,
            timeout,
            ids: Default::default(),
            seq: AtomicU64::new(0),
        })
    }

    /// One NAPTR lookup for `name` (absolute) within `budget`: the servers in order, two
    /// tries each, the next try sent when the earlier ones are unanswered after their
    /// share of the time left; the first valid answer to any try still outstanding wins.
    /// SERVFAIL or REFUSED moves to the next server at once.
    pub async fn naptr(&self, name: &Name, budget: Duration) -> Answer {
        let Ok(qname) = hickory_resolver::proto::rr::Name::from_ascii(name.to_string()) else {
            return Answer::Failed(Failure::Other(format!("{name} is not a DNS name")));
        };
        let endpoints = match self
            .endpoints
            .get_or_try_init(|| async {
                let mut eps = Vec::new();
                for addr in &self.servers_list {
                    eps.push(Endpoint::open(*addr).await?);
                }
                Ok::<_, std::io::Error>(eps)
            })
            .await
        {
            Ok(eps) => eps,
            Err(e) => return Answer::Failed(Failure::Other(format!("cannot open a socket: {e}"))),
        };
        let deadline = tokio::time::Instant::now() + budget;
        let total = TRIES_PER_SERVER * endpoints.len();
        let (tx, mut rx) = mpsc::channel(total.max(1));
        let mut tries = Tries {
            endpoints,
            lookup: Arc::new(Lookup { qname, answers: tx }),
            sent: Vec::with_capacity(total),
        };
        // The next try to send (server = next / TRIES_PER_SERVER), and when.
        let mut next = 0usize;
        let mut next_at = tokio::time::Instant::now();
        // The last failure a server answered (or a send failed with).
        let mut failed: Option<Failure> = None;
        // A TCP query after a truncated answer (one at a time), and its server.
        let mut tcp: Option<(usize, TcpTry)> = None;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Answer::Failed(failed.unwrap_or(Failure::Timeout));
            }
            if next < total && now >= next_at {
                let left = deadline - now;
                let per_try = (left / (total - next) as u32).max(MIN_TRY_SPACING);
                match self.send_try(&mut tries, next / TRIES_PER_SERVER).await {
                    Ok(()) => next_at = now + per_try,
                    // Nothing to wait for: the next try at once.
                    Err(f) => failed = Some(f),
                }
                next += 1;
                continue;
            }
            if next >= total && tries.open() == 0 && tcp.is_none() {
                return Answer::Failed(failed.unwrap_or(Failure::Timeout));
            }
            let event = tokio::select! {
                Some((try_no, m)) = rx.recv() => Event::Answer(try_no, m),
                r = async {
                    match tcp.as_mut() {
                        Some((_, f)) => f.await,
                        None => std::future::pending().await,
                    }
                }, if tcp.is_some() => Event::Tcp(r),
                _ = tokio::time::sleep_until(next_at), if next < total => Event::NextTry,
                _ = tokio::time::sleep_until(deadline) => Event::Deadline,
            };
            let (server, message) = match event {
                Event::NextTry => continue,
                Event::Deadline => {
                    return Answer::Failed(failed.unwrap_or(Failure::Timeout));
                }
                Event::Tcp(Ok(m)) => match tcp.take() {
                    Some((server, _)) => (server, m),
                    None => continue,
                },
                Event::Tcp(Err(f)) => {
                    tcp = None;
                    failed = Some(f);
                    continue;
                }
                Event::Answer(try_no, m) => {
                    let Some(t) = tries.sent.get_mut(try_no) else {
                        continue;
                    };
                    t.open = false;
                    if m.metadata.truncation {
                        if tcp.is_none() {
                            let addr = tries.endpoints[t.server].addr;
                            let query = ask_tcp(addr, t.id, tries.lookup.qname.clone());
                            tcp = Some((t.server, Box::pin(query)));
                        }
                        continue;
                    }
                    (t.server, m)
                }
            };
            match classify(&message) {
                Answer::Failed(f @ (Failure::ServFail | Failure::Refused)) => {
                    // This server's remaining tries are skipped: the next server, now.
                    // (Its tries already sent stay outstanding.)
                    failed = Some(f);
                    let skip_to = (server + 1) * TRIES_PER_SERVER;
                    if next < skip_to {
                        next = skip_to;
                        next_at = tokio::time::Instant::now();
                    }
                }
                answer => return answer,
            }
        }
    }

    /// Sends one try to server `server` and registers its waiter.
    async fn send_try(&self, tries: &mut Tries<'_>, server: usize) -> Result<(), Failure> {
        let ep = &tries.endpoints[server];
        let sock_no = ep.next.fetch_add(1, Ordering::Relaxed) % ep.socks.len();
        let (sock, waiting) = &ep.socks[sock_no];
        let try_no = tries.sent.len();
        let id = {
            let mut w = lock(waiting);
            if w.len() >= MAX_WAITING {
                return Err(Failure::Other("too many queries in flight".into()));
            }
            let mut id;
            loop {
                id = self.ids.hash_one(self.seq.fetch_add(1, Ordering::Relaxed)) as u16;
                if !w.contains_key(&id) {
                    break;
                }
            }
            w.insert(
                id,
                Waiter {
                    lookup: tries.lookup.clone(),
                    try_no,
                },
            );
            id
        };
        tries.sent.push(Try {
            server,
            sock: sock_no,
            id,
            open: true,
        });
        // Registered before it is sent (an answer cannot beat its waiter); a lookup
        // dropped during the send removes the waiter with its other tries.
        let sent = match query_bytes(id, &tries.lookup.qname) {
            Ok(q) => sock
                .send(&q)
                .await
                .map_err(|e| Failure::Other(format!("send to {}: {e}", ep.addr))),
            Err(e) => Err(Failure::Other(e)),
        };
        if sent.is_err() {
            let t = tries.sent.last_mut().expect("just pushed");
            t.open = false;
            let mut w = lock(waiting);
            if w.get(&id).is_some_and(|w| w.is(&tries.lookup, try_no)) {
                w.remove(&id);
            }
        }
        sent.map(|_| ())
    }
}

/// A recursive NAPTR query with EDNS (1232-byte payload).
fn query_bytes(id: u16, qname: &hickory_resolver::proto::rr::Name) -> Result<Vec<u8>, String> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(qname.clone(), RecordType::NAPTR));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m.to_vec().map_err(|e| e.to_string())
}

/// Whether `m` is the answer to query `id` for `qname`/NAPTR.
fn answers(m: &Message, id: u16, qname: &hickory_resolver::proto::rr::Name) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && m.queries[0].query_type() == RecordType::NAPTR
        && m.queries[0].name().eq_case(qname)
}

/// The query of a try whose UDP answer was truncated, again over TCP to the same server
/// with the same ID; its answer is checked like a UDP one.
async fn ask_tcp(
    addr: SocketAddr,
    id: u16,
    qname: hickory_resolver::proto::rr::Name,
) -> Result<Message, Failure> {
    let query = query_bytes(id, &qname).map_err(Failure::Other)?;
    let io = |e: std::io::Error| Failure::Other(format!("tcp {addr}: {e}"));
    let mut s = TcpStream::connect(addr).await.map_err(io)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(&query);
    s.write_all(&framed).await.map_err(io)?;
    let len = s.read_u16().await.map_err(io)?;
    let mut body = vec![0u8; usize::from(len)];
    s.read_exact(&mut body).await.map_err(io)?;
    let m = Message::from_vec(&body).map_err(|e| Failure::Other(format!("tcp {addr}: {e}")))?;
    if !answers(&m, id, &qname) {
        return Err(Failure::Other(format!("mismatched answer from {addr}")));
    }
    Ok(m)
}

/// What an answer means for ENUM.
fn classify(m: &Message) -> Answer {
    let negative_ttl = || {
        m.authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
            .unwrap_or(0)
    };
    match m.metadata.response_code {
        ResponseCode::NoError => {
            let mut ttl = u32::MAX;
            let mut rdatas: Vec<Box<[u8]>> = Vec::new();
            for record in &m.answers {
                if let RData::NAPTR(naptr) = &record.data {
                    let mut wire = Vec::with_capacity(64);
                    let mut encoder = BinEncoder::new(&mut wire);
                    // NAPTR replacement names are never compressed (RFC 3403 §4.1).
                    encoder.set_canonical_form(true);
                    if naptr.emit(&mut encoder).is_ok() {
                        rdatas.push(wire.into_boxed_slice());
                        ttl = ttl.min(record.ttl);
                    }
                }
            }
            if rdatas.is_empty() {
                Answer::Negative {
                    nxdomain: false,
                    ttl: negative_ttl(),
                }
            } else {
                Answer::Records {
                    rdatas: rdatas.into(),
                    ttl,
                }
            }
        }
        ResponseCode::NXDomain => Answer::Negative {
            nxdomain: true,
            ttl: negative_ttl(),
        },
        ResponseCode::ServFail => Answer::Failed(Failure::ServFail),
        ResponseCode::Refused => Answer::Failed(Failure::Refused),
        other => Answer::Failed(Failure::Other(format!("rcode {other}"))),
    }
}
