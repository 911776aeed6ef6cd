//! DNS messages on byte slices: reading a query, writing an answer.
//!
//! Owns: the RFC 1035 §4 header and question, the EDNS(0) OPT record (RFC 6891) of a
//! query, and a response writer that compresses owner names against the question name
//! and keeps track of the size limit (TC); the IDs of the queries we send ourselves.
//!
//! Must not touch: which records answer (see `dns::answer`) or sockets.
//!
//! Why by hand and not hickory-proto's `Message`: decoding a query into hickory's owned
//! structures and encoding `Record<RData>` values back costs allocations per name and
//! per record on every packet, while the zone index already holds every rdata in
//! uncompressed wire form, ready to copy. A query is read in place (label offsets into
//! the packet, no copy) and an answer is a run of appends into a reused buffer. hickory
//! is still used where speed does not matter (NOTIFY, zone transfers in).

pub const TYPE_OPT: u16 = 41;
pub const TYPE_TSIG: u16 = 250;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub const OPCODE_QUERY: u8 = 0;
pub const OPCODE_NOTIFY: u8 = 4;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
/// Extended rcode 16 (upper bits 1 in the OPT TTL, lower bits 0 in the header).
pub const RCODE_BADVERS: u16 = 16;

/// Largest UDP answer we send (DNS flag day 2020 / SPEC §10.14).
pub const MAX_UDP_PAYLOAD: usize = 1232;

/// Most labels a name can have (255 bytes of wire form).
const MAX_LABELS: usize = 127;

/// Why a message could not be read as a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// Not even 12 bytes of header: nothing can be answered.
    Short,
    /// The header is readable (the ID can be echoed) but the rest is not a query we can
    /// read: FORMERR.
    Malformed,
}

/// A query read in place from the packet.
#[derive(Debug)]
pub struct Query<'a> {
    pub packet: &'a [u8],
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    /// Question name labels as (offset, length) into `packet`, closest to the root last
    /// (wire order).
    labels: [(u16, u8); MAX_LABELS],
    pub label_count: usize,
    /// Byte range of the question (name, type, class) in `packet`.
    pub question: std::ops::Range<usize>,
    pub qtype: u16,
    pub qclass: u16,
    /// EDNS: the client's UDP payload size and the OPT version, when it sent OPT.
    pub edns: Option<Edns>,
    /// Records after the question (answer, authority, additional) as counted in the
    /// header; NOTIFY carries the new SOA in the answer section.
    pub ancount: u16,
    /// Whether the additional section holds a TSIG record (RFC 8945): the request is
    /// signed, and `dns::guard` checks it.
    pub signed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

impl<'a> Query<'a> {
    /// Reads a query. Responses (QR set) are reported as `Malformed` with the caller
    /// expected to check [`is_response`] first and drop them.
    pub fn parse(packet: &'a [u8]) -> Result<Query<'a>, QueryError> {
        if packet.len() < 12 {
            return Err(QueryError::Short);
        }
        let u16_at = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
        let id = u16_at(0);
        let flags = u16_at(2);
        let opcode = ((flags >> 11) & 0xf) as u8;
        let rd = flags & 0x0100 != 0;
        let (qd, an, ns, ar) = (u16_at(4), u16_at(6), u16_at(8), u16_at(10));
        if qd != 1 {
            return Err(QueryError::Malformed);
        }
        let mut labels = [(0u16, 0u8); MAX_LABELS];
        let mut count = 0;
        let mut pos = 12;
        let mut wire_len = 1;
        loop {
            let len = *packet.get(pos).ok_or(QueryError::Malformed)? as usize;
            if len == 0 {
                pos += 1;
                break;
            }
            // No compression pointers in a question: there is nothing before it to
            // point to.
            if len > 63 || count == MAX_LABELS {
                return Err(QueryError::Malformed);
            }
            wire_len += len + 1;
            if wire_len > 255 || pos + 1 + len > packet.len() {
                return Err(QueryError::Malformed);
            }
            labels[count] = ((pos + 1) as u16, len as u8);
            count += 1;
            pos += 1 + len;
        }
        if pos + 4 > packet.len() {
            return Err(QueryError::Malformed);
        }
        let qtype = u16_at(pos);
        let qclass = u16_at(pos + 2);
        let question = 12..pos + 4;
        let mut edns = None;
        let mut signed = false;
        // Find OPT (and TSIG) in the additional section, skipping whatever comes before.
        if ar > 0 {
            let mut p = question.end;
            let total = an as usize + ns as usize + ar as usize;
            for i in 0..total {
                let name_end = skip_name(packet, p).ok_or(QueryError::Malformed)?;
                if name_end + 10 > packet.len() {
                    return Err(QueryError::Malformed);
                }
                let rtype = u16_at(name_end);
                let rdlen = u16_at(name_end + 8) as usize;
                let next = name_end + 10 + rdlen;
                if next > packet.len() {
                    return Err(QueryError::Malformed);
                }
                signed |= rtype == TYPE_TSIG && i >= an as usize + ns as usize;
                if rtype == TYPE_OPT && i >= an as usize + ns as usize {
                    if edns.is_some() || packet[p] != 0 {
                        // Two OPTs, or OPT not owned by the root (RFC 6891 §6.1.1).
                        return Err(QueryError::Malformed);
                    }
                    let ttl = u32::from_be_bytes([
                        packet[name_end + 4],
                        packet[name_end + 5],
                        packet[name_end + 6],
                        packet[name_end + 7],
                    ]);
                    edns = Some(Edns {
                        payload: u16_at(name_end + 2),
                        version: (ttl >> 16) as u8,
                        dnssec_ok: ttl & 0x8000 != 0,
                    });
                }
                p = next;
            }
        }
        Ok(Query {
            packet,
            id,
            opcode,
            rd,
            labels,
            label_count: count,
            question,
            qtype,
            qclass,
            edns,
            ancount: an,
            signed,
        })
    }

    /// The question name's labels, closest to the root last.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator + '_ {
        self.labels[..self.label_count]
            .iter()
            .map(|&(o, l)| &self.packet[o as usize..o as usize + l as usize])
    }

    /// The largest answer this query may get over UDP: 512 without EDNS, else the
    /// client's size clamped to 512..=1232.
    pub fn udp_limit(&self) -> usize {
        match self.edns {
            None => 512,
            Some(e) => (e.payload as usize).clamp(512, MAX_UDP_PAYLOAD),
        }
    }

    /// The question name in presentation form (for logs and NOTIFY handling).
    pub fn qname_text(&self) -> String {
        let mut s = String::new();
        for l in self.labels() {
            let _ = crate::name::write_label(&mut s, l);
            s.push('.');
        }
        if s.is_empty() {
            s.push('.');
        }
        s
    }
}

/// A message ID for a query we send (transfers in, NOTIFY out): the clock through a
/// randomly seeded hasher, so IDs are not a counter an off-path sender could follow
/// (RFC 5452 §4.3). One helper for both senders, so they cannot drift apart.
pub fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::RandomState::default().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() as u16
}

/// Whether a packet of at least 12 bytes has QR set (a response: never answered).
pub fn is_response(packet: &[u8]) -> bool {
    packet.len() >= 3 && packet[2] & 0x80 != 0
}

/// The end of the (possibly compressed) name starting at `p`.
fn skip_name(packet: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let len = *packet.get(p)? as usize;
        match len {
            0 => return Some(p + 1),
            1..=63 => p += 1 + len,
            0xc0..=0xff => return (p + 2 <= packet.len()).then_some(p + 2),
            _ => return None,
        }
    }
}

/// The serial of the SOA an IXFR query carries in its authority section (RFC 1995 §3):
/// the version the client holds. `None` when there is no such SOA.
pub fn ixfr_client_serial(q: &Query<'_>) -> Option<u32> {
    let packet = q.packet;
    let nscount = u16::from_be_bytes([*packet.get(8)?, *packet.get(9)?]);
    if nscount == 0 {
        return None;
    }
    let mut p = q.question.end;
    // Skip the answer section (empty in a well-formed IXFR query).
    for _ in 0..q.ancount {
        let end = skip_name(packet, p)?;
        let rdlen = u16::from_be_bytes([*packet.get(end + 8)?, *packet.get(end + 9)?]);
        p = end + 10 + usize::from(rdlen);
    }
    let end = skip_name(packet, p)?;
    let rtype = u16::from_be_bytes([*packet.get(end)?, *packet.get(end + 1)?]);
    let rdlen = usize::from(u16::from_be_bytes([
        *packet.get(end + 8)?,
        *packet.get(end + 9)?,
    ]));
    let rdata = packet.get(end + 10..end + 10 + rdlen)?;
    if rtype != crate::name::TYPE_SOA {
        return None;
    }
    // MNAME and RNAME, possibly compressed (pointers into the packet end a name).
    let mname = skip_name(packet, end + 10)?;
    let rname = skip_name(packet, mname)?;
    let serial = packet.get(rname..rname + 4)?;
    (rname + 20 <= end + 10 + rdata.len())
        .then(|| u32::from_be_bytes([serial[0], serial[1], serial[2], serial[3]]))
}

/// An answer being written into a caller's buffer.
pub struct Response<'b, 'q> {
    buf: &'b mut Vec<u8>,
    /// The question name's labels (offset, length), borrowed from the query, for
    /// compression pointers; empty when the message has no question.
    qname_labels: &'q [(u16, u8)],
    limit: usize,
    counts: [u16; 3],
    section: usize,
    truncated: bool,
    edns: Option<Edns>,
    /// Upper 8 bits of a 12-bit rcode, carried in the OPT record.
    ext_rcode: u8,
}

/// Response sections.
pub const ANSWER: usize = 0;
pub const AUTHORITY: usize = 1;
pub const ADDITIONAL: usize = 2;

impl<'b, 'q> Response<'b, 'q> {
    /// Starts an answer to `q`: header (ID, opcode and RD echoed, QR set) and the
    /// question as received. `limit` is the most bytes the whole message may take.
    pub fn new(buf: &'b mut Vec<u8>, q: &'q Query<'_>, limit: usize) -> Self {
        buf.clear();
        buf.extend_from_slice(&q.id.to_be_bytes());
        let flags: u16 = 0x8000 | (u16::from(q.opcode) << 11) | if q.rd { 0x0100 } else { 0 };
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&q.packet[q.question.clone()]);
        let edns = q.edns;
        let mut limit = limit;
        if edns.is_some() {
            // Room for our OPT record (11 bytes) is kept back.
            limit -= 11;
        }
        Response {
            buf,
            qname_labels: &q.labels[..q.label_count],
            limit,
            counts: [0; 3],
            section: ANSWER,
            truncated: false,
            edns,
            ext_rcode: 0,
        }
    }

    /// Continues a transfer message already in `buf` (header counts kept there).
    pub fn resume(buf: &'b mut Vec<u8>, limit: usize) -> Self {
        let count = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let counts = [count(6), count(8), count(10)];
        Response {
            buf,
            qname_labels: &[],
            limit,
            counts,
            section: ANSWER,
            truncated: false,
            edns: None,
            ext_rcode: 0,
        }
    }

    /// Leaves the question out (transfer messages after the first, RFC 5936 §2.2).
    pub fn drop_question(&mut self) {
        self.buf.truncate(12);
        self.buf[4..6].copy_from_slice(&[0, 0]);
        self.qname_labels = &[];
    }

    /// Ends a transfer message: counts only (no OPT, never TC).
    pub fn finish_transfer(self) {
        self.buf[6..8].copy_from_slice(&self.counts[ANSWER].to_be_bytes());
        self.buf[8..10].copy_from_slice(&self.counts[AUTHORITY].to_be_bytes());
        self.buf[10..12].copy_from_slice(&self.counts[ADDITIONAL].to_be_bytes());
    }

    /// A header-only answer (FORMERR for a query whose question cannot be read).
    pub fn header_only(buf: &mut Vec<u8>, packet: &[u8], rcode: u8) {
        buf.clear();
        buf.extend_from_slice(&packet[..2]);
        let opcode = packet[2] & 0x78;
        buf.push(0x80 | opcode | (packet[2] & 0x01));
        buf.push(rcode);
        buf.extend_from_slice(&[0; 8]);
    }

    pub fn set_aa(&mut self, aa: bool) {
        if aa {
            self.buf[2] |= 0x04;
        } else {
            self.buf[2] &= !0x04;
        }
    }

    /// Sets the rcode; values above 15 go partly in the OPT record.
    pub fn set_rcode(&mut self, rcode: u16) {
        self.buf[3] = (self.buf[3] & 0xf0) | (rcode & 0xf) as u8;
        if rcode > 15 {
            self.ext_rcode = (rcode >> 4) as u8;
        }
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Moves to the next section (records must be written answer, authority, additional).
    pub fn section(&mut self, s: usize) {
        debug_assert!(s >= self.section);
        self.section = s;
    }

    /// Writes an owner name given as labels below a known suffix of the question name:
    /// `prefix` labels (wire order) then a pointer to the question name's last
    /// `suffix_labels` labels (or the root when 0 and no question label is left).
    fn write_owner(&mut self, prefix: &[&[u8]], suffix_labels: usize) {
        for l in prefix {
            self.buf.push(l.len() as u8);
            self.buf.extend_from_slice(l);
        }
        if suffix_labels == 0 {
            self.buf.push(0);
        } else {
            let first = self.qname_labels.len() - suffix_labels;
            let at = self.qname_labels[first].0 - 1;
            self.buf.extend_from_slice(&(0xc000 | at).to_be_bytes());
        }
    }

    /// Appends one RRset whose owner is `prefix` + the question name's last
    /// `suffix_labels` labels. All or nothing: if the set does not fit, nothing of it is
    /// written and the message is marked truncated (in the answer and authority
    /// sections) or the set is left out (additional). Returns whether it was written.
    pub fn rrset(
        &mut self,
        prefix: &[&[u8]],
        suffix_labels: usize,
        rtype: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = impl AsRef<[u8]>>,
    ) -> bool {
        let mark = self.buf.len();
        let mut n = 0u16;
        for rd in rdatas {
            let rd = rd.as_ref();
            self.write_owner(prefix, suffix_labels);
            self.buf.extend_from_slice(&rtype.to_be_bytes());
            self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
            self.buf.extend_from_slice(&ttl.to_be_bytes());
            self.buf.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            self.buf.extend_from_slice(rd);
            n += 1;
        }
        if self.buf.len() > self.limit {
            self.buf.truncate(mark);
            if self.section != ADDITIONAL {
                self.truncated = true;
            }
            return false;
        }
        self.counts[self.section] += n;
        true
    }

    /// Appends one record with an owner given in full (wire order labels), written
    /// uncompressed: for AXFR, where owners are not below the question.
    pub fn record_full(&mut self, owner: &[&[u8]], rtype: u16, ttl: u32, rdata: &[u8]) -> bool {
        let mark = self.buf.len();
        for l in owner {
            self.buf.push(l.len() as u8);
            self.buf.extend_from_slice(l);
        }
        self.buf.push(0);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        if self.buf.len() > self.limit {
            self.buf.truncate(mark);
            return false;
        }
        self.counts[self.section] += 1;
        true
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Records in the answer section so far.
    pub fn answer_count(&self) -> u16 {
        self.counts[ANSWER]
    }

    /// Ends the message: counts, TC (dropping the partial sections as RFC 2181 §9
    /// allows), and the OPT record when the query had one.
    pub fn finish(self) {
        if self.truncated {
            self.buf[2] |= 0x02;
        }
        self.buf[6..8].copy_from_slice(&self.counts[ANSWER].to_be_bytes());
        self.buf[8..10].copy_from_slice(&self.counts[AUTHORITY].to_be_bytes());
        let mut ar = self.counts[ADDITIONAL];
        if self.edns.is_some() {
            // OPT: root owner, our payload size, extended rcode, version 0.
            self.buf.push(0);
            self.buf.extend_from_slice(&TYPE_OPT.to_be_bytes());
            self.buf
                .extend_from_slice(&(MAX_UDP_PAYLOAD as u16).to_be_bytes());
            self.buf.extend_from_slice(&[self.ext_rcode, 0, 0, 0, 0, 0]);
            ar += 1;
        }
        self.buf[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}
