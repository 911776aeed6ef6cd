//! Upstream ENUM over DNS: NAPTR queries for the names no local zone holds, through
//! `enum.nameservers` (the system resolver when the list is empty), with
//! hickory-resolver.
//!
//! Owns: the resolver and its options — servers asked in the configured order (no
//! reordering by statistics), one at a time, each try bounded so that the whole lookup
//! fits in `enum.timeout_ms` with a retry; no resolver cache (decisions are cached by
//! `resolve::cache`, with the TTL rules of SPEC §5) — and turning each outcome into
//! records (NAPTR rdata in wire form with the RRset TTL), a negative answer (NXDOMAIN or
//! NODATA with its RFC 2308 TTL: min(SOA TTL, SOA MINIMUM)), or a failure (timeout,
//! SERVFAIL, REFUSED, anything else). NXDOMAIN is an answer, not an error.
//!
//! Must not touch: DDDS, decisions or SIP. The caller bounds the whole lookup in time.

use crate::zone::name::Name;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    NameServerConfig, ResolverConfig, ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::serialize::binary::{BinEncodable, BinEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

/// The upstream resolver, shared by every worker.
pub struct Upstream {
    resolver: TokioResolver,
    /// The servers asked, for traces (`127.0.0.1:5300, …` or `system resolver`).
    pub servers: String,
    /// The bound of the whole lookup (`enum.timeout_ms`).
    pub timeout: Duration,
}

impl Upstream {
    /// A resolver for `nameservers` (the system configuration when empty) whose whole
    /// lookup fits in `timeout`.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Upstream, String> {
        let (config, servers) = if nameservers.is_empty() {
            let (config, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
            (config, "system resolver".to_string())
        } else {
            let list = nameservers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            let text = nameservers
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            (ResolverConfig::from_name_servers(list), text)
        };
        let n_servers = config.name_servers().len().max(1) as u32;
        let mut opts = ResolverOpts::default();
        // Each server gets two tries within the budget; the caller's timeout is the bound.
        opts.timeout = (timeout / (2 * n_servers)).max(Duration::from_millis(50));
        opts.attempts = 2;
        opts.cache_size = 0;
        opts.num_concurrent_reqs = 1;
        opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        opts.edns0 = true;
        opts.recursion_desired = true;
        opts.max_active_requests = 4096;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("cannot build the upstream resolver: {e}"))?;
        Ok(Upstream {
            resolver,
            servers,
            timeout,
        })
    }

    /// One NAPTR query for `name` (absolute), within `budget`.
    pub async fn naptr(&self, name: &Name, budget: Duration) -> Answer {
        let Ok(query) = hickory_resolver::proto::rr::Name::from_ascii(name.to_string()) else {
            return Answer::Failed(Failure::Other(format!("{name} is not a DNS name")));
        };
        let lookup = tokio::time::timeout(budget, self.resolver.lookup(query, RecordType::NAPTR));
        match lookup.await {
            Err(_) => Answer::Failed(Failure::Timeout),
            Ok(Ok(found)) => {
                let mut ttl = u32::MAX;
                let mut rdatas: Vec<Box<[u8]>> = Vec::new();
                for record in found.answers() {
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
                    // Only other types (a CNAME chain ending elsewhere): no NAPTR here.
                    Answer::Negative {
                        nxdomain: false,
                        ttl: 0,
                    }
                } else {
                    Answer::Records {
                        rdatas: rdatas.into(),
                        ttl,
                    }
                }
            }
            Ok(Err(e)) => classify(&e),
        }
    }
}

fn classify(e: &NetError) -> Answer {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NXDomain | ResponseCode::NoError => Answer::Negative {
                nxdomain: no.response_code == ResponseCode::NXDomain,
                ttl: no.negative_ttl.unwrap_or(0),
            },
            ResponseCode::ServFail => Answer::Failed(Failure::ServFail),
            ResponseCode::Refused => Answer::Failed(Failure::Refused),
            other => Answer::Failed(Failure::Other(format!("rcode {other}"))),
        },
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            Answer::Failed(Failure::ServFail)
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            Answer::Failed(Failure::Refused)
        }
        NetError::Timeout => Answer::Failed(Failure::Timeout),
        other => Answer::Failed(Failure::Other(other.to_string())),
    }
}
