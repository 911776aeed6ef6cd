//! Authoritative answers from the in-memory index: the one place a DNS query becomes a
//! response (SPEC §6, §10.14).
//!
//! Owns: RFC 1034 §4.3.2 answer assembly over [`crate::zone::index::ZoneTree::lookup`]
//! — AA answers, NXDOMAIN vs NODATA with the SOA in authority (RFC 2308 §3: TTL
//! min(SOA TTL, MINIMUM)), referrals with glue below a cut, CNAMEs followed inside the
//! zone, REFUSED outside our zones, minimal ANY (RFC 8482), EDNS(0) sizes and TC — and
//! the decisions around transfers and NOTIFY: who may AXFR (`dns.allow_transfer`),
//! which NOTIFY a secondary accepts (only from its primary, SPEC §10.25), and acting on
//! TSIG's verdict (`dns::guard`): refusing, or signing the answer.
//!
//! Must not touch: sockets (the listeners in `dns`), zone storage, or the transfer stream
//! itself (see `dns::xfr`). Reads one lock-free zone snapshot per query.

use super::guard::{Gate, Keys};
use super::tsig;
use super::wire::*;
use super::xfr::{Transfer, XfrStats};
use crate::metrics::{Counters, Family};
use crate::name::Name;
use crate::name::{TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_NS, TYPE_SOA};
use crate::zone::index::{Lookup, RrSet};
use crate::zone::{Zone, ZoneSet};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// RFC 6895 rcode for "not authoritative for the zone" (AXFR of a name that is not a
/// zone apex).
const RCODE_NOTAUTH: u16 = 9;

/// Types tried, in order, for a minimal ANY answer (RFC 8482 §4.2: one RRset).
const ANY_ORDER: [u16; 6] = [35, TYPE_SOA, TYPE_NS, TYPE_A, TYPE_AAAA, 16];

/// Query type labels: the types an ENUM server is asked for, then `other` (a label per
/// type number would let any client grow the metric without bound).
pub const QTYPE_LABELS: [(u16, &str); 17] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (48, "DNSKEY"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
    (256, "URI"),
    (0, "other"),
];

/// Rcode labels by rcode (RFC 6895); BADVERS (16) counts in the last slot.
pub const RCODE_LABELS: [&str; 12] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "BADVERS",
];

const QUERY_SLOTS: usize = QTYPE_LABELS.len() * RCODE_LABELS.len();

/// [`QTYPE_LABELS`] index by query type (types above 256 are `other`), built from the
/// list at compile time: one load per query instead of a search.
const QTYPE_INDEX: [u8; 257] = {
    let other = (QTYPE_LABELS.len() - 1) as u8;
    let mut t = [other; 257];
    let mut i = 0;
    while i < QTYPE_LABELS.len() - 1 {
        t[QTYPE_LABELS[i].0 as usize] = i as u8;
        i += 1;
    }
    t
};

/// Counters the metrics layer exports.
#[derive(Default)]
pub struct DnsStats {
    /// Answers by qtype ([`QTYPE_LABELS`] index) × rcode ([`RCODE_LABELS`] index).
    queries: Counters<QUERY_SLOTS>,
    /// Packets not answered: responses, shorter than a header, over the TCP connection
    /// limit.
    pub dropped: Counters<1>,
    /// UDP answers sent with TC.
    truncated: Counters<1>,
    /// NOTIFY messages received (accepted or not).
    notify_in: Counters<1>,
    /// One warning per second at most for refused NOTIFYs (any host can send them).
    refused_notify_log: crate::logging::RateLimit,
    /// One warning per second at most for refused transfers.
    refused_transfer_log: crate::logging::RateLimit,
    /// One warning per second at most for requests TSIG refused.
    refused_tsig_log: crate::logging::RateLimit,
}

impl DnsStats {
    /// Counts one answer to a query of `qtype` with `rcode`.
    #[inline]
    pub fn query(&self, qtype: u16, rcode: u16) {
        let t = QTYPE_INDEX
            .get(usize::from(qtype))
            .map_or(QTYPE_LABELS.len() - 1, |i| usize::from(*i));
        let r = usize::from(rcode).min(RCODE_LABELS.len() - 1);
        self.queries.inc(t * RCODE_LABELS.len() + r);
    }
}

impl crate::metrics::Source for DnsStats {
    fn families(&self, out: &mut Vec<Family>) {
        let qtypes = QTYPE_LABELS.map(|(_, label)| label);
        // NAPTR NOERROR exists from the start: the failure-ratio alert divides by it.
        out.push(
            Family::counter(
                "enroute_dns_queries_total",
                "DNS queries answered, by query type and rcode (zone transfers included).",
                &["qtype", "rcode"],
            )
            .per_cell(&self.queries, &qtypes, &RCODE_LABELS, |t, r| {
                qtypes[t] == "NAPTR" && r == 0
            }),
        );
        for (name, help, c) in [
            (
                "enroute_dns_dropped_total",
                "DNS messages not answered (responses, runts, over the TCP connection limit).",
                &self.dropped,
            ),
            (
                "enroute_dns_truncated_total",
                "UDP answers sent truncated (TC), for the client to retry over TCP.",
                &self.truncated,
            ),
            (
                "enroute_dns_notify_received_total",
                "NOTIFY messages received.",
                &self.notify_in,
            ),
        ] {
            out.push(Family::counter(name, help, &[]).with(&[], c.get(0) as f64));
        }
    }
}

/// What the listener does after [`Authority::answer`].
pub enum Action {
    /// Send the buffer.
    Reply,
    /// Answer a transfer (see [`Transfer`]): the buffer holds nothing yet.
    Transfer(Transfer),
    /// Send nothing.
    Drop,
}

/// A secondary zone's primary, for NOTIFY acceptance.
#[derive(Clone, Debug)]
pub struct SecondaryOf {
    pub origin: Name,
    pub primary: SocketAddr,
    /// The TSIG key its NOTIFYs must be signed with (`[[zone]] key`).
    pub key: Option<Name>,
}

/// Everything the DNS listeners share.
pub struct Authority {
    pub zones: Arc<ZoneSet>,
    pub allow_transfer: Vec<IpNet>,
    /// Secondary zones (configured, and catalog members as they come and go).
    pub secondaries: Arc<std::sync::RwLock<Vec<SecondaryOf>>>,
    /// Where an accepted NOTIFY goes (the secondary's refresh task).
    pub refresh: tokio::sync::mpsc::UnboundedSender<Name>,
    pub stats: Arc<DnsStats>,
    /// Transfers out, counted.
    pub xfr: Arc<XfrStats>,
    /// The IXFR journal; `None`: every IXFR is answered with the whole zone.
    pub journal: Option<Arc<crate::keeper::journal::Journal>>,
    /// TSIG keys, and which requests need which.
    pub keys: Keys,
}

impl Authority {
    /// Answers one message into `out`. `tcp` lifts the UDP size limit and allows
    /// transfers.
    pub fn answer(&self, packet: &[u8], src: SocketAddr, tcp: bool, out: &mut Vec<u8>) -> Action {
        if packet.len() < 12 || is_response(packet) {
            self.stats.dropped.inc(0);
            return Action::Drop;
        }
        let q = match Query::parse(packet) {
            Ok(q) => q,
            Err(_) => {
                Response::header_only(out, packet, RCODE_FORMERR);
                self.stats.query(0, RCODE_FORMERR.into());
                return Action::Reply;
            }
        };
        // The clock matters only to a signed request (its time check, the answer's MAC).
        let now = if q.signed { tsig::unix_now() } else { 0 };
        let notify_key = self.notify_key(&q);
        let gate = self.keys.gate(&q, notify_key.as_ref(), now);
        if let Gate::Refused(refusal) = &gate {
            return self.refuse_tsig(&q, refusal, src, now, out);
        }
        let room = gate.signer().map_or(0, |(k, _)| tsig::record_len(k));
        let limit = if tcp { 65535 } else { q.udp_limit() }.saturating_sub(room);
        let mut r = Response::new(out, &q, limit);
        let rcode = self.fill(&q, src, tcp, &gate, &mut r);
        let rcode = match rcode {
            Ok(rcode) => rcode,
            Err(mut transfer) => {
                self.stats.query(q.qtype, RCODE_NOERROR.into());
                transfer.tsig = gate.signer().map(|(k, mac)| (k.clone(), mac.to_vec()));
                return Action::Transfer(transfer);
            }
        };
        r.set_rcode(rcode);
        if r.truncated() {
            self.stats.truncated.inc(0);
        }
        r.finish();
        if let Some((key, mac)) = gate.signer() {
            tsig::sign_response(out, key, mac, now);
        }
        self.stats.query(q.qtype, rcode);
        tracing::debug!(qtype = q.qtype, rcode, %src, tcp, "DNS answer");
        Action::Reply
    }

    /// The key a NOTIFY must be signed with: its secondary zone's, if any.
    fn notify_key(&self, q: &Query<'_>) -> Option<Name> {
        if q.opcode != OPCODE_NOTIFY {
            return None;
        }
        self.secondary_of(&Name::from_text(&q.qname_text()).ok()?)?
            .key
    }

    /// The secondary zone with this origin.
    fn secondary_of(&self, origin: &Name) -> Option<SecondaryOf> {
        let list = self.secondaries.read().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .find(|s| s.origin.eq_ignore_case(origin))
            .cloned()
    }

    /// Answers a request TSIG refused: NOTAUTH with the TSIG error (or FORMERR).
    fn refuse_tsig(
        &self,
        q: &Query<'_>,
        refusal: &tsig::Refusal<'_>,
        src: SocketAddr,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Action {
        tsig::error_answer(q.packet, refusal, now, out);
        self.stats.query(q.qtype, refusal.rcode().into());
        if q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR {
            self.xfr.refused(q.qtype);
        }
        if let Some(suppressed) = self.stats.refused_tsig_log.check() {
            let error = refusal
                .error()
                .map_or("FORMERR", |e| tsig::error_name(e.code()));
            tracing::warn!(from = %src, qtype = q.qtype, opcode = q.opcode, error, suppressed, "TSIG: request refused");
        }
        if out.is_empty() {
            return Action::Drop;
        }
        Action::Reply
    }

    /// Writes the sections; returns the rcode, or the transfer to make.
    fn fill(
        &self,
        q: &Query<'_>,
        src: SocketAddr,
        tcp: bool,
        gate: &Gate<'_>,
        r: &mut Response<'_, '_>,
    ) -> Result<u16, Transfer> {
        if let Some(e) = q.edns
            && e.version > 0
        {
            return Ok(RCODE_BADVERS);
        }
        match q.opcode {
            OPCODE_QUERY => {}
            OPCODE_NOTIFY => return Ok(self.notify(q, src, gate, r)),
            _ => return Ok(RCODE_NOTIMP.into()),
        }
        if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
            return Ok(RCODE_REFUSED.into());
        }
        // Root-side labels (`arpa`, `e164`, …), as the zone set and the index take them.
        let root_side: smallvec::SmallVec<[&[u8]; 32]> = q.labels().rev().collect();
        let zones = self.zones.load();
        let Some(zone) = zones.find(&root_side) else {
            return Ok(RCODE_REFUSED.into());
        };
        let apex_labels = zone.origin_len();
        if q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR {
            if root_side.len() != apex_labels {
                return Ok(RCODE_NOTAUTH);
            }
            let why = if !allowed(&self.allow_transfer, src.ip()) {
                Some("the source is not in dns.allow_transfer")
            } else if matches!(gate, Gate::Unsigned) {
                Some("not signed with dns.transfer_key")
            } else {
                None
            };
            if let Some(why) = why {
                self.xfr.refused(q.qtype);
                if let Some(suppressed) = self.stats.refused_transfer_log.check() {
                    tracing::warn!(zone = %zone.origin, from = %src, qtype = q.qtype, suppressed, "transfer refused: {why}");
                }
                return Ok(RCODE_REFUSED.into());
            }
            return self.transfer(q, zone, tcp, r);
        }
        r.set_aa(true);
        let below: &[&[u8]] = &root_side[apex_labels..];
        let qname_labels = root_side.len();
        let lookup = if q.qtype == TYPE_ANY {
            let mut found = zone.tree.lookup(below, ANY_ORDER[0]);
            for t in &ANY_ORDER[1..] {
                if matches!(found, Lookup::Answer { .. }) {
                    break;
                }
                found = zone.tree.lookup(below, *t);
            }
            found
        } else {
            zone.tree.lookup(below, q.qtype)
        };
        match lookup {
            Lookup::Answer { rrset, .. } => {
                r.rrset(&[], qname_labels, rrset.rtype, rrset.ttl, rrset.rdatas());
                if q.qtype == rrset.rtype {
                    additional(zone, &rrset, r);
                }
                Ok(RCODE_NOERROR.into())
            }
            Lookup::Cname { rrset, .. } => {
                r.rrset(&[], qname_labels, TYPE_CNAME, rrset.ttl, rrset.rdatas());
                let target = rrset.rdatas().next().and_then(|rd| Name::from_wire(&rd));
                Ok(self.chase(zone, target.map(|(n, _)| n), q.qtype, r))
            }
            Lookup::NoData { .. } => {
                negative(zone, r);
                Ok(RCODE_NOERROR.into())
            }
            Lookup::NxDomain => {
                negative(zone, r);
                Ok(RCODE_NXDOMAIN.into())
            }
            Lookup::Referral { ns, depth, .. } => {
                r.set_aa(false);
                r.section(AUTHORITY);
                r.rrset(&[], apex_labels + depth, TYPE_NS, ns.ttl, ns.rdatas());
                r.section(ADDITIONAL);
                for rd in ns.rdatas() {
                    let Some((target, _)) = Name::from_wire(&rd) else {
                        continue;
                    };
                    glue(zone, &target, r);
                }
                Ok(RCODE_NOERROR.into())
            }
        }
    }

    /// An allowed AXFR or IXFR of `zone`: AXFR over TCP only; IXFR needs the client's
    /// SOA (RFC 1995 §3), and a client as new as we are gets our SOA alone (over UDP
    /// too); an older one gets its transfer.
    fn transfer(
        &self,
        q: &Query<'_>,
        zone: &Arc<Zone>,
        tcp: bool,
        r: &mut Response<'_, '_>,
    ) -> Result<u16, Transfer> {
        if q.qtype == TYPE_AXFR {
            if !tcp {
                return Ok(RCODE_FORMERR.into());
            }
            return Err(Transfer {
                zone: zone.clone(),
                ixfr_from: None,
                tsig: None,
            });
        }
        let Some(client) = super::wire::ixfr_client_serial(q) else {
            return Ok(RCODE_FORMERR.into());
        };
        if crate::zone::serial_newer(zone.soa.serial, client) {
            return Err(Transfer {
                zone: zone.clone(),
                ixfr_from: Some(client),
                tsig: None,
            });
        }
        self.xfr.up_to_date();
        r.set_aa(true);
        if let Some(soa) = zone.tree.apex().rrset(TYPE_SOA) {
            r.rrset(&[], zone.origin_len(), TYPE_SOA, soa.ttl, soa.rdatas());
        }
        Ok(RCODE_NOERROR.into())
    }

    /// Follows a CNAME chain inside the zone (8 hops at most), appending each step; the
    /// rcode is that of the last name (RFC 6604).
    fn chase(
        &self,
        zone: &Arc<Zone>,
        mut target: Option<Name>,
        qtype: u16,
        r: &mut Response<'_, '_>,
    ) -> u16 {
        for _ in 0..8 {
            let Some(t) = target.take() else {
                break;
            };
            if !t.is_at_or_below(&zone.origin) {
                break;
            }
            let below: Vec<&[u8]> = t.relative_root_side(&zone.origin).collect();
            let owner: Vec<&[u8]> = t.labels().iter().map(|l| &l[..]).collect();
            match zone.tree.lookup(&below, qtype) {
                Lookup::Answer { rrset, .. } => {
                    for rd in rrset.rdatas() {
                        r.record_full(&owner, rrset.rtype, rrset.ttl, &rd);
                    }
                    return RCODE_NOERROR.into();
                }
                Lookup::Cname { rrset, .. } => {
                    for rd in rrset.rdatas() {
                        r.record_full(&owner, TYPE_CNAME, rrset.ttl, &rd);
                    }
                    target = rrset
                        .rdatas()
                        .next()
                        .and_then(|rd| Name::from_wire(&rd))
                        .map(|(n, _)| n);
                }
                Lookup::NoData { .. } => {
                    negative(zone, r);
                    return RCODE_NOERROR.into();
                }
                Lookup::NxDomain => {
                    negative(zone, r);
                    return RCODE_NXDOMAIN.into();
                }
                Lookup::Referral { .. } => break,
            }
        }
        RCODE_NOERROR.into()
    }

    /// NOTIFY (RFC 1996): accepted for a secondary zone from its primary's address, which
    /// triggers a refresh; REFUSED otherwise (SPEC §10.25).
    fn notify(
        &self,
        q: &Query<'_>,
        src: SocketAddr,
        gate: &Gate<'_>,
        r: &mut Response<'_, '_>,
    ) -> u16 {
        self.stats.notify_in.inc(0);
        let Ok(name) = Name::from_text(&q.qname_text()) else {
            return RCODE_FORMERR.into();
        };
        let Some(sec) = self.secondary_of(&name) else {
            return RCODE_REFUSED.into();
        };
        if !same_ip(sec.primary.ip(), src.ip()) {
            if let Some(suppressed) = self.stats.refused_notify_log.check() {
                tracing::warn!(zone = %sec.origin, from = %src, suppressed, "NOTIFY not from the zone's primary: refused");
            }
            return RCODE_REFUSED.into();
        }
        if matches!(gate, Gate::Unsigned) {
            if let Some(suppressed) = self.stats.refused_notify_log.check() {
                tracing::warn!(zone = %sec.origin, from = %src, suppressed, "NOTIFY not signed with the zone's key: refused");
            }
            return RCODE_REFUSED.into();
        }
        tracing::info!(zone = %sec.origin, from = %src, "NOTIFY from the primary: refreshing");
        let _ = self.refresh.send(sec.origin.clone());
        r.set_aa(true);
        RCODE_NOERROR.into()
    }
}

/// The SOA in authority for NXDOMAIN/NODATA, with the negative TTL (RFC 2308 §3).
fn negative(zone: &Zone, r: &mut Response<'_, '_>) {
    r.section(AUTHORITY);
    if let Some(soa) = zone.tree.apex().rrset(TYPE_SOA) {
        r.rrset(
            &[],
            zone.origin_len(),
            TYPE_SOA,
            zone.soa.negative_ttl(),
            soa.rdatas(),
        );
    }
}

/// Additional-section processing (RFC 1034 §4.3.2 step 6; RFC 1035 §3.3.9, §3.3.11):
/// the addresses of the NS and MX targets answered that are names of the zone, when
/// they fit, as Knot does.
fn additional(zone: &Zone, rrset: &RrSet<'_>, r: &mut Response<'_, '_>) {
    // Where the target name starts in the rdata.
    let at = match rrset.rtype {
        TYPE_NS => 0,
        TYPE_MX => 2,
        _ => return,
    };
    r.section(ADDITIONAL);
    for rd in rrset.rdatas() {
        if let Some((target, _)) = rd.get(at..).and_then(Name::from_wire) {
            glue(zone, &target, r);
        }
    }
}

/// MX (RFC 1035 §3.3.9).
const TYPE_MX: u16 = 15;

/// A and AAAA of a name server inside the zone (glue below the cut, or an in-zone
/// address), written in the additional section when they fit, as Knot does.
fn glue(zone: &Zone, target: &Name, r: &mut Response<'_, '_>) {
    if !target.is_at_or_below(&zone.origin) {
        return;
    }
    let below: smallvec::SmallVec<[&[u8]; 16]> = target.relative_root_side(&zone.origin).collect();
    let Some(node) = zone.tree.name_data(&below) else {
        return;
    };
    let owner: Vec<&[u8]> = target.labels().iter().map(|l| &l[..]).collect();
    for t in [TYPE_A, TYPE_AAAA] {
        if let Some(set) = node.rrset(t) {
            for rd in set.rdatas() {
                r.record_full(&owner, t, set.ttl, &rd);
            }
        }
    }
}

fn allowed(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let norm = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    norm(a) == norm(b)
}
