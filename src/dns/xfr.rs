//! Zone transfers: AXFR out to secondaries (RFC 5936) and AXFR in for our own
//! secondary zones, plus the SOA serial query a secondary refreshes with.
//!
//! Owns: the AXFR message stream (SOA, every record, SOA; messages up to 64 KiB, the
//! question in the first only), reading a primary's AXFR into a [`Zone`] (all or
//! nothing, through [`crate::zone::Records`]: the same builder and checks as a master
//! file), and RFC 1982 serial comparison.
//!
//! Must not touch: who may transfer (see `dns::answer`), when to refresh (see
//! `dns::secondary`), sockets other than the one transfer's TCP connection.
//!
//! Outgoing transfers are written by hand from the index (the rdata is already wire
//! form; a million-number zone is streamed without building hickory records). Incoming
//! ones use hickory-proto's `Message` decoder: it is off the hot path and must accept
//! whatever compression the primary uses.

use super::wire::{Query, Response};
use crate::name::Name;
use crate::name::TYPE_SOA;
use crate::zone::{Records, Zone};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest message in a transfer stream (TCP length prefix limit).
const MAX_MESSAGE: usize = 65535;

/// Streams `zone` as the AXFR answer to `query` (a packet already checked by
/// `Authority`) onto `w`. The messages are built on a blocking thread and handed over a
/// small channel, so a large zone is never held twice in memory and the runtime's
/// workers keep answering queries.
pub async fn send_zone<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    query: Vec<u8>,
    zone: Arc<Zone>,
) -> std::io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let producer = tokio::task::spawn_blocking(move || build_stream(&query, &zone, tx));
    while let Some(msg) = rx.recv().await {
        w.write_all(&(msg.len() as u16).to_be_bytes()).await?;
        w.write_all(&msg).await?;
    }
    w.flush().await?;
    let _ = producer.await;
    Ok(())
}

fn build_stream(packet: &[u8], zone: &Zone, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    let Ok(q) = Query::parse(packet) else {
        return;
    };
    let origin: Vec<&[u8]> = zone.origin.labels().iter().map(|l| &l[..]).collect();
    let Some(soa) = zone.tree.apex().rrset(TYPE_SOA) else {
        return;
    };
    let soa_rdata = soa.rdatas().next().unwrap_or_default();
    let mut stream = Stream {
        q: &q,
        buf: Vec::with_capacity(MAX_MESSAGE),
        open: false,
        first: true,
        tx: &tx,
        failed: false,
    };
    stream.push(&origin, TYPE_SOA, soa.ttl, soa_rdata);
    zone.tree.walk(|path, node| {
        let mut owner: smallvec::SmallVec<[&[u8]; 40]> = smallvec::SmallVec::new();
        owner.extend(path.iter().rev().map(|l| l.as_bytes()));
        owner.extend_from_slice(&origin);
        for set in node.rrsets() {
            if set.rtype == TYPE_SOA && path.is_empty() {
                continue;
            }
            for rd in set.rdatas() {
                stream.push(&owner, set.rtype, set.ttl, rd);
            }
        }
    });
    stream.push(&origin, TYPE_SOA, soa.ttl, soa_rdata);
    stream.flush();
}

/// Fills messages and sends each when full.
struct Stream<'a, 'q> {
    q: &'a Query<'q>,
    buf: Vec<u8>,
    /// Whether a message is being filled (its header and counts are in `buf`).
    open: bool,
    first: bool,
    tx: &'a tokio::sync::mpsc::Sender<Vec<u8>>,
    failed: bool,
}

impl Stream<'_, '_> {
    fn push(&mut self, owner: &[&[u8]], rtype: u16, ttl: u32, rdata: &[u8]) {
        if self.failed {
            return;
        }
        loop {
            let mut r = self.reopen();
            if r.record_full(owner, rtype, ttl, rdata) {
                r.finish_transfer();
                self.open = true;
                return;
            }
            if !self.open {
                // One record larger than a message: cannot be sent (rdata ≤ 65535 makes
                // this a near-impossible case); end the stream.
                self.failed = true;
                return;
            }
            self.flush();
        }
    }

    /// A response over the bytes written so far (or a fresh one).
    fn reopen(&mut self) -> Response<'_, '_> {
        if self.open {
            return Response::resume(&mut self.buf, MAX_MESSAGE);
        }
        let mut r = Response::new(&mut self.buf, self.q, MAX_MESSAGE);
        if !self.first {
            r.drop_question();
        }
        r.set_aa(true);
        r
    }

    fn flush(&mut self) {
        if std::mem::take(&mut self.open) {
            self.first = false;
            let msg = std::mem::replace(&mut self.buf, Vec::with_capacity(MAX_MESSAGE));
            if self.tx.blocking_send(msg).is_err() {
                self.failed = true;
            }
        }
    }
}

/// Why a transfer in failed.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("primary answered {0}")]
    Rcode(String),
    #[error("bad message from the primary: {0}")]
    Bad(String),
    #[error("zone rejected: {0}")]
    Zone(String),
}

/// Asks `primary` for the zone's SOA serial over UDP (three tries of 1 s).
pub async fn query_serial(primary: SocketAddr, origin: &Name) -> Result<u32, XfrError> {
    use hickory_proto::op::{Message, Query as HQuery};
    use hickory_proto::rr::{RData, RecordType};
    let name = hickory_name(origin)?;
    let bind: SocketAddr = if primary.is_ipv6() {
        "[::]:0".parse().unwrap_or(primary)
    } else {
        "0.0.0.0:0".parse().unwrap_or(primary)
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(primary).await?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..3 {
        let mut msg = Message::query();
        msg.add_query(HQuery::query(name.clone(), RecordType::SOA));
        let wire = msg.to_vec().map_err(|e| XfrError::Bad(e.to_string()))?;
        sock.send(&wire).await?;
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await
        else {
            continue;
        };
        let Ok(resp) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if resp.metadata.id != msg.metadata.id {
            continue;
        }
        if resp.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
            return Err(XfrError::Rcode(resp.metadata.response_code.to_string()));
        }
        for r in &resp.answers {
            if let RData::SOA(soa) = &r.data {
                return Ok(soa.serial);
            }
        }
        return Err(XfrError::Bad("no SOA in the answer".into()));
    }
    Err(XfrError::Timeout)
}

fn hickory_name(origin: &Name) -> Result<hickory_proto::rr::Name, XfrError> {
    use std::str::FromStr;
    hickory_proto::rr::Name::from_str(&origin.to_string()).map_err(|e| XfrError::Bad(e.to_string()))
}

/// Transfers the zone from `primary` by AXFR over TCP and builds it, all or nothing,
/// within `limit`.
pub async fn fetch_zone(
    primary: SocketAddr,
    origin: &Name,
    limit: Duration,
) -> Result<Zone, XfrError> {
    tokio::time::timeout(limit, fetch_inner(primary, origin))
        .await
        .map_err(|_| XfrError::Timeout)?
}

async fn fetch_inner(primary: SocketAddr, origin: &Name) -> Result<Zone, XfrError> {
    use hickory_proto::op::{Message, Query as HQuery};
    use hickory_proto::rr::RecordType;
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let name = hickory_name(origin)?;
    let mut stream = tokio::net::TcpStream::connect(primary).await?;
    let mut msg = Message::query();
    msg.add_query(HQuery::query(name, RecordType::AXFR));
    let wire = msg.to_vec().map_err(|e| XfrError::Bad(e.to_string()))?;
    stream.write_all(&(wire.len() as u16).to_be_bytes()).await?;
    stream.write_all(&wire).await?;
    let mut zone = Records::new(format!("AXFR from {primary}"));
    let mut soas = 0usize;
    let mut records = 0u32;
    let mut rdata = Vec::new();
    let mut buf = Vec::new();
    'messages: loop {
        let len = stream.read_u16().await? as usize;
        buf.resize(len, 0);
        stream.read_exact(&mut buf).await?;
        let resp = Message::from_vec(&buf).map_err(|e| XfrError::Bad(e.to_string()))?;
        if resp.metadata.id != msg.metadata.id {
            return Err(XfrError::Bad("answer to another query".into()));
        }
        if resp.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
            return Err(XfrError::Rcode(resp.metadata.response_code.to_string()));
        }
        for r in &resp.answers {
            let rtype = u16::from(r.record_type());
            if records == 0 && rtype != TYPE_SOA {
                return Err(XfrError::Bad("the transfer does not start with SOA".into()));
            }
            records += 1;
            if rtype == TYPE_SOA {
                soas += 1;
                if soas > 1 {
                    break 'messages;
                }
            }
            let owner = Name::from_text(&r.name.to_ascii())
                .map_err(|e| XfrError::Bad(format!("owner {}: {e:?}", r.name)))?;
            if !owner.is_at_or_below(origin) {
                return Err(XfrError::Bad(format!("{owner} is outside {origin}")));
            }
            rdata.clear();
            let mut enc = BinEncoder::new(&mut rdata);
            enc.set_name_encoding(NameEncoding::Uncompressed);
            r.data
                .emit(&mut enc)
                .map_err(|e| XfrError::Bad(e.to_string()))?;
            let below: Vec<&[u8]> = owner.relative_root_side(origin).collect();
            zone.add(&below, rtype, r.ttl, &rdata, records);
        }
    }
    zone.build(origin)
        .map_err(|e| XfrError::Zone(e.to_string()))
}

pub use crate::zone::serial_newer;

#[cfg(test)]
mod tests {
    use super::serial_newer;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_newer(2, 1));
        assert!(!serial_newer(1, 2));
        assert!(!serial_newer(5, 5));
        assert!(serial_newer(0, u32::MAX));
        assert!(serial_newer(10, 0xFFFF_FFF0));
    }
}
