//! Upstream ENUM over DNS: NAPTR queries for the names no local zone holds, through
//! `enum.nameservers` (the servers of the system resolver configuration when the list
//! is empty, read with hickory-resolver).
//!
//! Owns: asking the servers in the configured order, two tries each, every try bounded
//! so that the whole lookup fits in `enum.timeout_ms`; UDP with TCP when the answer is
//! truncated; and turning each outcome into records (NAPTR rdata in wire form with the
//! RRset TTL), a negative answer (NXDOMAIN or NODATA with its RFC 2308 TTL:
//! min(SOA TTL, SOA MINIMUM)), or a failure (timeout, SERVFAIL, REFUSED, anything else).
//! NXDOMAIN is an answer, not an error. No cache here: decisions are cached by
//! `resolve::cache` with the TTL rules of SPEC §5.
//!
//! Written on hickory-proto (messages) rather than with hickory-resolver's lookups:
//! measured for issue 4, hickory-resolver's UDP client opens, registers and closes a
//! socket for every query, which made a cache miss cost 84 CPU-µs and held misses below
//! the 20,000/s target. Here each server gets a few long-lived connected UDP sockets
//! on random ephemeral ports, answers are matched to queries by ID (random, 16 bits)
//! and question, so a miss costs one send and one receive.
//!
//! Must not touch: DDDS, decisions or SIP. The caller bounds the whole lookup in time.

use crate::zone::name::Name;
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
use tokio::sync::oneshot;

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

/// Who waits for which query ID on one socket.
type Waiting = Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>;

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
            sock.connect(addr).await?;
            let waiting: Arc<Waiting> = Arc::default();
            let (s, w) = (sock.clone(), waiting.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                loop {
                    let n = match s.recv(&mut buf).await {
                        Ok(n) => n,
                        // ICMP errors (port unreachable) surface here: keep reading, after
                        // a pause so that a socket that keeps failing cannot spin a core.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            continue;
                        }
                    };
                    if n < 12 {
                        continue;
                    }
                    let id = u16::from_be_bytes([buf[0], buf[1]]);
                    let waiter = w.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    if let Some(tx) = waiter {
                        let _ = tx.send(buf[..n].to_vec());
                    }
                }
            }));
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
    /// tries each on timeout; SERVFAIL or REFUSED moves to the next server.
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
        let tries = 2 * endpoints.len() as u32;
        let mut last = Failure::Timeout;
        let mut done = 0u32;
        for ep in endpoints {
            for _ in 0..2 {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Answer::Failed(last);
                }
                let per_try = (left / (tries - done).max(1)).max(Duration::from_millis(20));
                done += 1;
                match self.ask(ep, &qname, per_try.min(left)).await {
                    Ok(message) => match classify(&message) {
                        Answer::Failed(f @ (Failure::ServFail | Failure::Refused)) => {
                            last = f;
                            break; // the next server
                        }
                        answer => return answer,
                    },
                    Err(f) => last = f, // timeout: try again
                }
            }
        }
        Answer::Failed(last)
    }

    /// One try at one server: UDP, then TCP when the answer is truncated.
    async fn ask(
        &self,
        ep: &Endpoint,
        qname: &hickory_resolver::proto::rr::Name,
        wait: Duration,
    ) -> Result<Message, Failure> {
        let i = ep.next.fetch_add(1, Ordering::Relaxed) % ep.socks.len();
        let (sock, waiting) = &ep.socks[i];
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut w = waiting.lock().unwrap_or_else(|p| p.into_inner());
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
            w.insert(id, tx);
            id
        };
        let query = query_bytes(id, qname).map_err(Failure::Other)?;
        let forget = || {
            waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        };
        if let Err(e) = sock.send(&query).await {
            forget();
            return Err(Failure::Other(format!("send to {}: {e}", ep.addr)));
        }
        let bytes = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(bytes)) => bytes,
            _ => {
                forget();
                return Err(Failure::Timeout);
            }
        };
        let message = Message::from_vec(&bytes)
            .map_err(|e| Failure::Other(format!("bad answer from {}: {e}", ep.addr)))?;
        if !answers(&message, id, qname) {
            return Err(Failure::Other(format!(
                "mismatched answer from {}",
                ep.addr
            )));
        }
        if message.metadata.truncation {
            return tokio::time::timeout(wait, ask_tcp(ep.addr, id, qname, &query))
                .await
                .unwrap_or(Err(Failure::Timeout));
        }
        Ok(message)
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

async fn ask_tcp(
    addr: SocketAddr,
    id: u16,
    qname: &hickory_resolver::proto::rr::Name,
    query: &[u8],
) -> Result<Message, Failure> {
    let io = |e: std::io::Error| Failure::Other(format!("tcp {addr}: {e}"));
    let mut s = TcpStream::connect(addr).await.map_err(io)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    s.write_all(&framed).await.map_err(io)?;
    let len = s.read_u16().await.map_err(io)?;
    let mut body = vec![0u8; usize::from(len)];
    s.read_exact(&mut body).await.map_err(io)?;
    let m = Message::from_vec(&body).map_err(|e| Failure::Other(format!("tcp {addr}: {e}")))?;
    if !answers(&m, id, qname) {
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
