//! Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) to secondaries, and the
//! transfer metrics (`enroute_xfr_*`, transfers in counted by `dns::secondary`).
//!
//! Owns: the AXFR message stream (SOA, every record, SOA; messages up to 64 KiB, the
//! question in the first only), the IXFR answer (the journal's condensed changes from
//! the client's serial, or the whole zone in AXFR form when the journal does not reach
//! it; over UDP the changes when they fit, else our SOA), and RFC 1982 serial
//! comparison.
//!
//! Must not touch: who may transfer (see `dns::answer`), the journal's contents (read
//! through `keeper::journal`), transfers in (`dns::fetch`), sockets other than the one
//! transfer's.
//!
//! Transfers are written by hand from the index and the journal (the rdata is already
//! wire form; a million-number zone is streamed without building hickory records).

use super::tsig::{self, StreamSigner};
use super::wire::{Query, Response};
use crate::keeper::journal::Journal;
use crate::keeper::transfers::{Direction, TransferLog, TransferRecord};
use crate::metrics::{Counters, Family};
use crate::name::Name;
use crate::name::TYPE_SOA;
use crate::zone::Zone;
use crate::zone::diff::Diff;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Largest message in a transfer stream (TCP length prefix limit).
const MAX_MESSAGE: usize = 65535;

/// A zone transfer to answer: AXFR (TCP only), or IXFR from the serial the client
/// holds (older than ours: a current client has had its one SOA already).
pub struct Transfer {
    pub zone: Arc<Zone>,
    /// `Some(serial)`: IXFR from `serial`; `None`: AXFR.
    pub ixfr_from: Option<u32>,
    /// The key a signed request used and its MAC: every message of the answer is
    /// signed with it (RFC 8945 §5.3.1).
    pub tsig: Option<(crate::config::TsigKey, Vec<u8>)>,
}

/// Answers the transfer `t` asked by `query` (a packet already checked by
/// `Authority`) over `w`: the condensed difference when `t` is an IXFR the journal
/// covers, else the whole zone (AXFR, or IXFR in AXFR form, RFC 1995 §4). The messages
/// are built on a blocking thread (the journal is read there too) and handed over a
/// small channel, so a large zone is never held twice in memory and the runtime's
/// workers keep answering queries.
pub async fn send<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    query: Vec<u8>,
    t: Transfer,
    journal: Option<Arc<Journal>>,
    (stats, peer): (&XfrStats, SocketAddr),
) -> std::io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let (origin, serial) = (t.zone.origin.clone(), t.zone.soa.serial);
    let mut signer = t.tsig.as_ref().map(|(k, mac)| StreamSigner::new(k, mac));
    // Each message leaves room for its signature.
    let limit = MAX_MESSAGE - t.tsig.as_ref().map_or(0, |(k, _)| tsig::record_len(k));
    let producer = tokio::task::spawn_blocking(move || {
        let diff = t
            .ixfr_from
            .and_then(|from| changes(journal.as_deref(), &t.zone, from));
        let form = Form::of(&t, diff.as_ref());
        match &diff {
            Some(d) => build_ixfr(&query, &t.zone, d, (&tx, limit)),
            None => build_stream(&query, &t.zone, (&tx, limit)),
        }
        form
    });
    let mut bytes = 0u64;
    let mut sent = Ok(());
    while let Some(mut msg) = rx.recv().await {
        if let Some(s) = signer.as_mut() {
            s.sign(&mut msg, tsig::unix_now());
        }
        bytes += 2 + msg.len() as u64;
        sent = async {
            w.write_all(&(msg.len() as u16).to_be_bytes()).await?;
            w.write_all(&msg).await
        }
        .await;
        if sent.is_err() {
            break;
        }
    }
    drop(rx);
    if sent.is_ok() {
        sent = w.flush().await;
    }
    let form = producer.await.unwrap_or(Form::Axfr);
    stats.sent(form.kind(), sent.is_ok(), bytes);
    stats.logged(
        &origin,
        Direction::Out,
        form.kind(),
        sent.is_ok(),
        serial,
        peer,
    );
    form.log(&origin, serial, bytes, sent.is_ok());
    sent
}

/// Answers an IXFR over UDP (RFC 1995 §2): the condensed difference when the journal
/// covers the client and the answer fits in `limit` bytes, else our SOA alone, which
/// tells the client to ask over TCP.
pub async fn ixfr_udp(
    query: Vec<u8>,
    t: Transfer,
    journal: Option<Arc<Journal>>,
    limit: usize,
    (stats, peer): (&XfrStats, SocketAddr),
) -> Option<Vec<u8>> {
    let (origin, serial) = (t.zone.origin.clone(), t.zone.soa.serial);
    let built =
        tokio::task::spawn_blocking(move || ixfr_udp_answer(&query, &t, journal.as_deref(), limit))
            .await
            .ok()??;
    Some(counted_udp(built, stats, (&origin, serial, peer)))
}

/// [`ixfr_udp`] without the journal, on the caller's thread: our SOA alone (for a
/// listener with too many journal reads under way).
pub fn ixfr_udp_soa(
    query: &[u8],
    t: &Transfer,
    limit: usize,
    (stats, peer): (&XfrStats, SocketAddr),
) -> Option<Vec<u8>> {
    let answer = ixfr_udp_answer(query, t, None, limit)?;
    Some(counted_udp(
        answer,
        stats,
        (&t.zone.origin, t.zone.soa.serial, peer),
    ))
}

/// Counts a UDP IXFR answer; one that carried changes is the zone's last transfer out.
fn counted_udp(
    (out, incremental): (Vec<u8>, bool),
    stats: &XfrStats,
    (origin, serial, peer): (&Name, u32, SocketAddr),
) -> Vec<u8> {
    stats.sent(XfrKind::Ixfr, true, out.len() as u64);
    if incremental {
        stats.logged(origin, Direction::Out, XfrKind::Ixfr, true, serial, peer);
        tracing::info!(to = "udp", bytes = out.len(), "IXFR out");
    }
    out
}

/// The UDP answer to an IXFR: the changes when `journal` has them and they fit
/// (`true`), else our SOA alone; signed when the request was.
fn ixfr_udp_answer(
    query: &[u8],
    t: &Transfer,
    journal: Option<&Journal>,
    limit: usize,
) -> Option<(Vec<u8>, bool)> {
    let q = Query::parse(query).ok()?;
    let from = t.ixfr_from?;
    let limit = limit.saturating_sub(t.tsig.as_ref().map_or(0, |(k, _)| tsig::record_len(k)));
    let sign = |mut out: Vec<u8>| {
        if let Some((key, mac)) = &t.tsig {
            tsig::sign_response(&mut out, key, mac, tsig::unix_now());
        }
        out
    };
    let mut out = Vec::with_capacity(limit);
    if let Some(d) = changes(journal, &t.zone, from)
        && ixfr_message(&q, &t.zone, &d, limit, &mut out)
    {
        return Some((sign(out), true));
    }
    out.clear();
    let soa = t.zone.tree.apex().rrset(TYPE_SOA)?;
    let mut r = Response::new(&mut out, &q, limit);
    r.set_aa(true);
    r.rrset(&[], t.zone.origin_len(), TYPE_SOA, soa.ttl, soa.rdatas());
    r.finish();
    Some((sign(out), false))
}

/// The journal's difference from `from` to the zone's serial, if it has one.
fn changes(journal: Option<&Journal>, zone: &Zone, from: u32) -> Option<Diff> {
    match journal?.since(zone, from) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(zone = %zone.origin, "IXFR: journal not readable, sending the whole zone: {e}");
            None
        }
    }
}

/// What a transfer out sent.
#[derive(Clone, Copy)]
enum Form {
    Axfr,
    /// IXFR asked, the whole zone sent (the journal does not cover the client).
    IxfrAsAxfr(u32),
    Ixfr(u32),
}

impl Form {
    fn of(t: &Transfer, diff: Option<&Diff>) -> Form {
        match (t.ixfr_from, diff) {
            (Some(from), Some(_)) => Form::Ixfr(from),
            (Some(from), None) => Form::IxfrAsAxfr(from),
            (None, _) => Form::Axfr,
        }
    }

    fn kind(self) -> XfrKind {
        match self {
            Form::Ixfr(_) => XfrKind::Ixfr,
            _ => XfrKind::Axfr,
        }
    }

    fn log(self, origin: &Name, serial: u32, bytes: u64, ok: bool) {
        let how = if ok { "sent" } else { "cut short" };
        match self {
            Form::Axfr => tracing::info!(zone = %origin, serial, bytes, "AXFR out {how}"),
            Form::Ixfr(from) => {
                tracing::info!(zone = %origin, from, serial, bytes, "IXFR out {how}: the changes")
            }
            Form::IxfrAsAxfr(from) => tracing::info!(
                zone = %origin, from, serial, bytes,
                "IXFR out {how}: the whole zone (the journal does not reach the client's serial)"
            ),
        }
    }
}

/// Where a transfer's messages go, and the size each may reach.
type Sink<'a> = (&'a tokio::sync::mpsc::Sender<Vec<u8>>, usize);

fn build_stream(packet: &[u8], zone: &Zone, sink: Sink<'_>) {
    let Ok(q) = Query::parse(packet) else {
        return;
    };
    let origin: Vec<&[u8]> = zone.origin.labels().iter().map(|l| &l[..]).collect();
    let Some(soa) = zone.tree.apex().rrset(TYPE_SOA) else {
        return;
    };
    let soa_rdata = soa.rdatas().next();
    let soa_rdata: &[u8] = soa_rdata.as_deref().unwrap_or_default();
    let mut stream = Stream::new(&q, sink);
    stream.push(&origin, TYPE_SOA, soa.ttl, soa_rdata);
    zone.tree.walk(|path, node| {
        let mut owner: smallvec::SmallVec<[&[u8]; 40]> = smallvec::SmallVec::new();
        owner.extend(path.iter().rev().copied());
        owner.extend_from_slice(&origin);
        for set in node.rrsets() {
            if set.rtype == TYPE_SOA && path.is_empty() {
                continue;
            }
            for rd in set.rdatas() {
                stream.push(&owner, set.rtype, set.ttl, &rd);
            }
        }
    });
    stream.push(&origin, TYPE_SOA, soa.ttl, soa_rdata);
    stream.flush();
}

/// The IXFR answer (RFC 1995 §4) carrying `diff`: our SOA, then the client's SOA, the
/// records removed, our SOA, the records added, and our SOA to close.
fn build_ixfr(packet: &[u8], zone: &Zone, diff: &Diff, sink: Sink<'_>) {
    let Ok(q) = Query::parse(packet) else {
        return;
    };
    let mut stream = Stream::new(&q, sink);
    each_ixfr_record(zone, diff, |owner, rtype, ttl, rdata| {
        stream.push(owner, rtype, ttl, rdata);
        !stream.failed
    });
    stream.flush();
}

/// The IXFR answer carrying `diff` as one message of at most `limit` bytes; false when
/// it does not fit.
fn ixfr_message(q: &Query<'_>, zone: &Zone, diff: &Diff, limit: usize, out: &mut Vec<u8>) -> bool {
    let mut r = Response::new(out, q, limit);
    r.set_aa(true);
    let mut fits = true;
    each_ixfr_record(zone, diff, |owner, rtype, ttl, rdata| {
        fits = r.record_full(owner, rtype, ttl, rdata);
        fits
    });
    if fits {
        r.finish_transfer();
    }
    fits
}

/// Feeds the records of an IXFR answer carrying `diff`, in order, to `push` (owners in
/// wire order, the origin's labels included) until it returns false.
fn each_ixfr_record(
    zone: &Zone,
    diff: &Diff,
    mut push: impl FnMut(&[&[u8]], u16, u32, &[u8]) -> bool,
) {
    let origin: Vec<&[u8]> = zone.origin.labels().iter().map(|l| &l[..]).collect();
    let mut owner: Vec<&[u8]> = Vec::with_capacity(40);
    let (to, from) = (&diff.to, &diff.from);
    let soas = [
        (to, None),
        (from, Some(&diff.removed)),
        (to, Some(&diff.added)),
    ];
    for (soa, records) in soas {
        if !push(&origin, TYPE_SOA, soa.ttl, &soa.rdata) {
            return;
        }
        for r in records.into_iter().flatten() {
            owner.clear();
            let labels: smallvec::SmallVec<[&[u8]; 24]> =
                crate::name::key_labels(&r.owner).collect();
            owner.extend(labels.into_iter().rev());
            owner.extend_from_slice(&origin);
            if !push(&owner, r.rtype, r.ttl, &r.rdata) {
                return;
            }
        }
    }
    push(&origin, TYPE_SOA, to.ttl, &to.rdata);
}

/// Fills messages and sends each when full.
struct Stream<'a, 'q> {
    q: &'a Query<'q>,
    buf: Vec<u8>,
    /// Largest message (room left for a signature).
    limit: usize,
    /// Whether a message is being filled (its header and counts are in `buf`).
    open: bool,
    first: bool,
    tx: &'a tokio::sync::mpsc::Sender<Vec<u8>>,
    failed: bool,
}

impl<'a, 'q> Stream<'a, 'q> {
    fn new(q: &'a Query<'q>, (tx, limit): Sink<'a>) -> Self {
        Stream {
            q,
            limit,
            buf: Vec::with_capacity(MAX_MESSAGE),
            open: false,
            first: true,
            tx,
            failed: false,
        }
    }

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
            return Response::resume(&mut self.buf, self.limit);
        }
        let mut r = Response::new(&mut self.buf, self.q, self.limit);
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

/// Transfer kinds, as metrics label them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XfrKind {
    Axfr = 0,
    Ixfr = 1,
}

const KINDS: [&str; 2] = ["axfr", "ixfr"];
const RESULTS: [&str; 3] = ["ok", "failed", "refused"];

/// Transfers out and in, counted (`enroute_xfr_*`), and each zone's last one noted in
/// the keeper's [`TransferLog`] (for `GET /v1/zones`).
#[derive(Default)]
pub struct XfrStats {
    /// Where each zone's last transfer is noted.
    log: Arc<TransferLog>,
    /// Out, by kind sent × result.
    out: Counters<6>,
    /// Bytes sent, by kind.
    out_bytes: Counters<2>,
    /// In (secondary zones), by kind received × result.
    pub(super) inbound: Counters<6>,
}

impl XfrStats {
    /// Counters that note each zone's last transfer in `log`.
    pub fn new(log: Arc<TransferLog>) -> XfrStats {
        XfrStats {
            log,
            ..XfrStats::default()
        }
    }

    /// Notes a transfer of `origin` that ended as the zone's last one that way.
    pub fn logged(
        &self,
        origin: &Name,
        direction: Direction,
        kind: XfrKind,
        ok: bool,
        serial: u32,
        peer: SocketAddr,
    ) {
        let record = TransferRecord {
            at: std::time::SystemTime::now(),
            kind: KINDS[kind as usize],
            ok,
            serial,
            peer: Some(peer),
        };
        self.log.record(origin, direction, record);
    }

    /// A transfer out of kind `kind` ended, all of it sent or not.
    pub fn sent(&self, kind: XfrKind, ok: bool, bytes: u64) {
        self.out.inc(kind as usize * 3 + usize::from(!ok));
        self.out_bytes.add(kind as usize, bytes);
    }

    /// An IXFR from a client as new as we are: our SOA alone.
    pub fn up_to_date(&self) {
        self.out.inc(XfrKind::Ixfr as usize * 3);
    }

    /// A transfer asked (`qtype`) by a source outside `dns.allow_transfer`.
    pub fn refused(&self, qtype: u16) {
        let kind = if qtype == super::wire::TYPE_IXFR {
            XfrKind::Ixfr
        } else {
            XfrKind::Axfr
        };
        self.out.inc(kind as usize * 3 + 2);
    }

    /// A transfer in of kind `kind` ended (`ok`: served).
    pub fn received(&self, kind: XfrKind, ok: bool) {
        self.inbound.inc(kind as usize * 3 + usize::from(!ok));
    }
}

impl crate::metrics::Source for XfrStats {
    fn families(&self, out: &mut Vec<Family>) {
        out.push(
            Family::counter(
                "enroute_xfr_out_total",
                "Zone transfers out, by the form sent (a whole zone is axfr, also when IXFR was asked) and result.",
                &["type", "result"],
            )
            .per_cell(&self.out, &KINDS, &RESULTS, |_, r| r < 2),
        );
        out.push(
            Family::counter(
                "enroute_xfr_out_bytes_total",
                "Bytes of zone transfers sent over TCP and UDP, by form.",
                &["type"],
            )
            .per_label(&self.out_bytes, &KINDS, |_| true),
        );
        out.push(
            Family::counter(
                "enroute_xfr_in_total",
                "Zone transfers in for secondary zones, by the form received and result.",
                &["type", "result"],
            )
            .per_cell(&self.inbound, &KINDS, &RESULTS, |_, r| r < 2),
        );
    }
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
