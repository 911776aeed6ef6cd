//! Local zones: records, master files and the in-memory index.
//!
//! Owns: [`Zone`] (one authoritative zone: origin, SOA facts, the [`index::ZoneTree`])
//! and the edits a change makes to it (a copy with a name's NAPTRs replaced, a prefix
//! route set, the serial raised), [`ZoneSet`] (every configured zone behind one
//! lock-free `ArcSwap` snapshot, replaced whole zone at a time), building a zone all or
//! nothing from a master file or from records given one at a time ([`Records`]: a
//! transfer, the store), export back to master-file text, and the content digest that
//! tells whether two copies of a zone hold the same records. [`diff`] has the
//! differences between two copies (what IXFR carries) and applying one to a copy.
//!
//! Must not touch: what NAPTR records mean (that is `resolve`), sockets (`dns`), or the
//! durable store (`keeper::stored` maps zones to the store's rows and back). Readers
//! never block: they take a snapshot (`ZoneSet::load`) and keep using it while a reload
//! swaps in a new one.

pub mod catalog;
pub mod diff;
pub mod index;
pub mod kept;
pub mod master;
pub mod starter;

use crate::name::{self, Name, TYPE_NAPTR, TYPE_SOA};
use arc_swap::ArcSwap;
use index::{NodeKind, Rdata, TreeStats, ZoneTree};
use master::Diagnostic;
use std::path::Path;
use std::sync::Arc;

/// The SOA facts the router and (later) the DNS listener need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soa {
    pub ttl: u32,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl Soa {
    fn from_rdata(ttl: u32, rdata: &[u8]) -> Option<Soa> {
        let (_, a) = Name::from_wire(rdata)?;
        let (_, b) = Name::from_wire(&rdata[a..])?;
        let nums = rdata.get(a + b..a + b + 20)?;
        let n = |i: usize| u32::from_be_bytes([nums[i], nums[i + 1], nums[i + 2], nums[i + 3]]);
        Some(Soa {
            ttl,
            serial: n(0),
            refresh: n(4),
            retry: n(8),
            expire: n(12),
            minimum: n(16),
        })
    }

    /// TTL of a negative answer from this zone: min(SOA TTL, MINIMUM) (RFC 2308 §5).
    pub fn negative_ttl(&self) -> u32 {
        self.ttl.min(self.minimum)
    }
}

/// One authoritative zone. Cloning shares the index (every node is reference-counted).
#[derive(Clone)]
pub struct Zone {
    pub origin: Name,
    /// `origin` in presentation form, shared by every decision that names the zone.
    pub origin_text: Arc<str>,
    /// Origin labels, lower case, closest to the root first: matched against queries.
    origin_root_side: Vec<Box<[u8]>>,
    pub tree: ZoneTree,
    pub soa: Soa,
    pub stats: TreeStats,
}

/// A zone that failed to load: every error, each with its file and line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .diagnostics.iter().filter(|d| !d.warning).map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ZoneLoadError {
    pub diagnostics: Vec<Diagnostic>,
}

/// A zone built from records given one at a time in wire form (a transfer, the store),
/// all or nothing, through the same index builder and checks as a master file. Each
/// record carries a `line` for messages (`SOURCE:LINE: …`), such as its ordinal in a
/// transfer.
pub struct Records {
    builder: index::ZoneBuilder,
    source: String,
}

impl Records {
    /// No records yet; `source` names where they come from in messages
    /// (`AXFR from 192.0.2.1:53`, `store:ORIGIN`).
    pub fn new(source: impl Into<String>) -> Self {
        Records {
            builder: index::ZoneBuilder::new(),
            source: source.into(),
        }
    }

    /// Adds one record whose owner is a key: its labels below the apex, closest first,
    /// each `[len][bytes]` (the form the store keeps).
    /// Records must come in owner order, each owner's together (as the store's scan
    /// gives them): numbers are packed as they come (see
    /// [`index::ZoneBuilder::add_in_owner_order`]).
    pub fn add_key(&mut self, key: &[u8], rtype: u16, ttl: u32, rdata: &[u8], line: u32) {
        let src = index::Origin { file: 0, line };
        self.builder.add_in_owner_order(key, rtype, ttl, rdata, src);
    }

    /// Adds one record whose owner is given as labels below the apex (closest first).
    pub fn add<L: AsRef<[u8]>>(
        &mut self,
        below_apex: &[L],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        line: u32,
    ) {
        let src = index::Origin { file: 0, line };
        self.builder.add_labels(below_apex, rtype, ttl, rdata, src);
    }

    pub fn is_empty(&self) -> bool {
        self.builder.is_empty()
    }

    /// Indexes the records as the zone `origin`; any error rejects the zone (warnings
    /// are dropped).
    pub fn build(self, origin: &Name) -> Result<Zone, ZoneLoadError> {
        let parsed = master::Parsed {
            builder: self.builder,
            files: vec![self.source],
            diagnostics: Vec::new(),
        };
        Zone::finish(parsed, origin).map(|(zone, _)| zone)
    }
}

impl Zone {
    /// Parses and indexes master-file text. All or nothing: any error rejects the zone.
    /// On success returns the zone and its warnings.
    pub fn from_master(
        text: &[u8],
        display: &str,
        origin: &Name,
        base_dir: Option<&Path>,
    ) -> Result<(Zone, Vec<Diagnostic>), ZoneLoadError> {
        let parsed = master::parse(text, display, origin, base_dir);
        Self::finish(parsed, origin)
    }

    /// Reads, parses and indexes a master file.
    pub fn load_file(path: &Path, origin: &Name) -> Result<(Zone, Vec<Diagnostic>), ZoneLoadError> {
        Self::finish(master::parse_path(path, origin), origin)
    }

    /// Builds from a parse result, turning build issues into diagnostics.
    pub fn finish(
        mut parsed: master::Parsed,
        origin: &Name,
    ) -> Result<(Zone, Vec<Diagnostic>), ZoneLoadError> {
        if parsed.diagnostics.iter().any(|d| d.line == 0 && !d.warning) {
            // The file could not be read: nothing else is worth saying.
            return Err(ZoneLoadError {
                diagnostics: parsed.diagnostics,
            });
        }
        let builder = std::mem::take(&mut parsed.builder);
        let (tree, stats, issues) = builder.build();
        let mut diagnostics = parsed.diagnostics;
        diagnostics.extend(issues.into_iter().map(|i| Diagnostic {
            file: parsed.files[i.src.file as usize].clone(),
            line: i.src.line,
            warning: !i.error,
            message: i.message,
        }));
        diagnostics.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
        if diagnostics.iter().any(|d| !d.warning) {
            return Err(ZoneLoadError { diagnostics });
        }
        let soa = tree
            .apex()
            .rrset(TYPE_SOA)
            .and_then(|r| Soa::from_rdata(r.ttl, &r.rdatas().next()?))
            .ok_or_else(|| ZoneLoadError {
                diagnostics: vec![Diagnostic {
                    file: parsed.files[0].clone(),
                    line: 1,
                    warning: false,
                    message: "zone has no usable SOA record".into(),
                }],
            })?;
        Ok((
            Zone {
                origin_root_side: origin
                    .labels()
                    .iter()
                    .rev()
                    .map(|l| l.to_ascii_lowercase().into_boxed_slice())
                    .collect(),
                origin: origin.clone(),
                origin_text: origin.to_string().into(),
                tree,
                soa,
                stats,
            },
            diagnostics,
        ))
    }

    /// After the wildcard of the prefix route at `prefix` (labels below the apex) was
    /// stored: marks it managed and recomputes the copies under it (or, when it has no
    /// wildcard any more, removes them).
    pub fn prefix_marked<L: AsRef<[u8]>>(&self, prefix: &[L]) -> Zone {
        let mut star: Vec<&[u8]> = prefix.iter().map(|l| l.as_ref()).collect();
        star.push(b"*");
        let mut stats = self.stats;
        let data = self.tree.node_at(&star).and_then(|n| n.data().cloned());
        let kind = if data.is_some() {
            NodeKind::Prefix
        } else {
            NodeKind::Plain
        };
        let tree = self
            .tree
            .with_data(&star, data, kind, &mut stats)
            .refresh_copies(&star[..star.len() - 1], &mut stats);
        Zone {
            tree,
            stats,
            ..self.clone()
        }
    }

    /// A copy in which the name `below_apex` owns `data` (`None`: nothing), marked `kind`.
    fn with_data<L: AsRef<[u8]>>(
        &self,
        below_apex: &[L],
        data: Option<Arc<[u8]>>,
        kind: NodeKind,
    ) -> Zone {
        let mut stats = self.stats;
        let tree = self.tree.with_data(below_apex, data, kind, &mut stats);
        Zone {
            tree,
            stats,
            ..self.clone()
        }
    }

    /// Whether the name `below_apex` holds NAPTR records and nothing else, or nothing:
    /// then a new NAPTR RRset alone is all it will hold.
    pub fn only_naptrs_at<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> bool {
        self.tree
            .name_data(below_apex)
            .filter(|d| d.kind() != NodeKind::Copy)
            .is_none_or(|d| d.rrsets().all(|s| s.rtype == TYPE_NAPTR))
    }

    /// The NAPTR RRset the name `below_apex` owns (not a derived prefix copy): its TTL
    /// and rdatas.
    pub fn naptr_at<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<(u32, Vec<Rdata<'_>>)> {
        let data = self.tree.name_data(below_apex)?;
        if data.kind() == NodeKind::Copy {
            return None;
        }
        let set = data.rrset(TYPE_NAPTR)?;
        Some((set.ttl, set.rdatas().collect()))
    }

    /// A copy in which the name `below_apex` owns `naptrs` (TTL and rdatas in wire
    /// form; `None`: no NAPTR RRset), its other RRsets kept.
    pub fn with_naptrs<L: AsRef<[u8]>>(
        &self,
        below_apex: &[L],
        naptrs: Option<(u32, &[Vec<u8>])>,
    ) -> Zone {
        self.with_naptrs_as(below_apex, naptrs, NodeKind::Plain)
    }

    /// A copy in which the prefix route at `prefix` (labels below the apex) holds
    /// `naptrs` (`None`: the route removed): the wildcard below the prefix's name, marked
    /// managed, with the copies under it recomputed (see [`Zone::prefix_marked`]).
    pub fn with_prefix_naptrs<L: AsRef<[u8]>>(
        &self,
        prefix: &[L],
        naptrs: Option<(u32, &[Vec<u8>])>,
    ) -> Zone {
        let mut star: Vec<&[u8]> = prefix.iter().map(|l| l.as_ref()).collect();
        star.push(b"*");
        let kind = if naptrs.is_some() {
            NodeKind::Prefix
        } else {
            NodeKind::Plain
        };
        self.with_naptrs_as(&star, naptrs, kind)
            .prefix_marked(prefix)
    }

    /// [`Zone::with_naptrs`] for many names at once, each named once: one copy of the
    /// index for the batch (a compact zone's numbers change in one overlay copy), not
    /// one a name.
    pub fn with_naptrs_many(&self, edits: &[NaptrEdit<'_>]) -> Zone {
        let batch: Vec<index::NameEdit<'_>> = edits
            .iter()
            .map(|(labels, naptrs)| {
                let data = self.naptrs_data(labels, *naptrs);
                let kind = NodeKind::Plain;
                (labels.clone(), data, kind)
            })
            .collect();
        let mut stats = self.stats;
        let tree = self.tree.with_data_many(&batch, &mut stats);
        Zone {
            tree,
            stats,
            ..self.clone()
        }
    }

    /// A copy in which numbers that hold NAPTRs and nothing else (or nothing) take new
    /// NAPTR RRsets, each given as a kept shape that holds a NAPTR RRset alone (`None`:
    /// none): `edits` are `(i, key, shape)`, `i` the number's position among the keys
    /// `now` read ([`ZoneTree::numbers_now`] of this copy). Each takes its shape whole,
    /// unread and undecoded. Edits of numbers that hold other records too
    /// ([`index::NumbersNow::only_naptrs`] false) are left out: the caller makes them
    /// with [`Zone::with_naptrs_many`], which keeps those records. `Err` for a damaged
    /// shape.
    pub fn with_number_shapes(
        &self,
        now: &index::NumbersNow,
        edits: &[(usize, u64, Option<&[u8]>)],
    ) -> Result<Zone, index::shape::ShapeError> {
        let mut stats = self.stats;
        let plain = edits.iter().filter(|e| now.only_naptrs(e.0)).copied();
        let tree = self.tree.with_number_shapes(now, plain, &mut stats)?;
        Ok(Zone {
            tree,
            stats,
            ..self.clone()
        })
    }

    /// [`Zone::with_naptrs`], the name's data marked `kind` (plain when nothing is left).
    fn with_naptrs_as<L: AsRef<[u8]>>(
        &self,
        below_apex: &[L],
        naptrs: Option<(u32, &[Vec<u8>])>,
        kind: NodeKind,
    ) -> Zone {
        let data = self.naptrs_data(below_apex, naptrs);
        let kind = if data.is_some() {
            kind
        } else {
            NodeKind::Plain
        };
        self.with_data(below_apex, data, kind)
    }

    /// The packed RRsets of the name `below_apex` with its NAPTR RRset replaced by
    /// `naptrs` (`None`: removed), its other RRsets kept.
    fn naptrs_data<L: AsRef<[u8]>>(
        &self,
        below_apex: &[L],
        naptrs: Option<(u32, &[Vec<u8>])>,
    ) -> Option<Arc<[u8]>> {
        let data = self
            .tree
            .name_data(below_apex)
            .filter(|n| n.kind() != NodeKind::Copy);
        let kept: Vec<(u16, u32, Vec<Rdata<'_>>)> = data
            .map(|n| {
                n.rrsets()
                    .filter(|s| s.rtype != TYPE_NAPTR)
                    .map(|s| (s.rtype, s.ttl, s.rdatas().collect()))
                    .collect()
            })
            .unwrap_or_default();
        let mut sets: Vec<(u16, u32, Vec<&[u8]>)> = kept
            .iter()
            .map(|(t, ttl, rds)| (*t, *ttl, rds.iter().map(|r| &r[..]).collect()))
            .collect();
        if let Some((ttl, rdatas)) = naptrs {
            sets.push((
                TYPE_NAPTR,
                ttl,
                rdatas.iter().map(|n| n.as_slice()).collect(),
            ));
        }
        index::pack_rrsets(&sets)
    }

    /// The apex SOA's rdata.
    pub fn soa_rdata(&self) -> Option<&[u8]> {
        let set = self.tree.apex().rrset(TYPE_SOA)?;
        set.rdatas().next()?.wire()
    }

    /// The apex SOA's rdata as it reads with `serial` (what [`Zone::with_serial`]
    /// serves, for a store to keep).
    pub fn soa_rdata_with_serial(&self, serial: u32) -> Option<Vec<u8>> {
        self.soa_rdata().map(|old| soa_with_serial(old, serial))
    }

    /// The serial a change to this copy takes: one more (RFC 1982, wrapping).
    pub fn next_serial(&self) -> u32 {
        self.soa.serial.wrapping_add(1)
    }

    /// A copy whose SOA carries `serial`.
    pub fn with_serial(&self, serial: u32) -> Zone {
        let Some(rdata) = self.soa_rdata_with_serial(serial) else {
            return self.clone();
        };
        let apex = self.tree.apex();
        let mut sets: Vec<(u16, u32, Vec<&[u8]>)> = apex
            .rrsets()
            .map(|s| {
                if s.rtype == TYPE_SOA {
                    (s.rtype, s.ttl, vec![&rdata[..]])
                } else {
                    (s.rtype, s.ttl, s.rdatas().filter_map(Rdata::wire).collect())
                }
            })
            .collect();
        sets.sort_by_key(|s| s.0);
        let data = index::pack_rrsets(&sets);
        let mut zone = self.with_data::<&[u8]>(&[], data, NodeKind::Plain);
        zone.soa.serial = serial;
        zone
    }

    /// The digits of the E.164 prefix the origin stands for: `441632` for
    /// `2.3.6.1.4.4.e164.arpa.` (its leading single-digit labels, reversed).
    pub fn number_prefix(&self) -> String {
        number_prefix(&self.origin)
    }

    /// Labels below the apex (closest first) of the name for `digits` (an E.164 number
    /// without `+`), when the number falls in this zone.
    pub fn number_labels(&self, digits: &str) -> Option<Vec<u8>> {
        let rest = digits.strip_prefix(self.number_prefix().as_str())?;
        Some(rest.bytes().collect())
    }

    /// The E.164 number (`+digits`) a name below the apex stands for, when every label
    /// is one digit and the name is not the apex.
    pub fn number_of<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<String> {
        // Checked before anything is allocated: most names asked about are not numbers.
        let digit = |l: &L| matches!(l.as_ref(), [b'0'..=b'9']);
        if below_apex.is_empty() || !below_apex.iter().all(digit) {
            return None;
        }
        let mut s = String::with_capacity(16);
        s.push('+');
        s.push_str(&self.number_prefix());
        s.extend(below_apex.iter().map(|l| l.as_ref()[0] as char));
        Some(s)
    }

    /// Number of origin labels; a query's labels past this many are below the apex.
    pub fn origin_len(&self) -> usize {
        self.origin_root_side.len()
    }

    fn contains_root_side<L: AsRef<[u8]>>(&self, name: &[L]) -> bool {
        name.len() >= self.origin_root_side.len()
            && self
                .origin_root_side
                .iter()
                .zip(name)
                .all(|(o, n)| o[..].eq_ignore_ascii_case(n.as_ref()))
    }

    /// Records a whole transfer of the zone carries: its own and the derived prefix
    /// copies (which the statistics do not count; this walks the zone).
    pub fn served_records(&self) -> usize {
        let mut copies = 0;
        self.tree.walk(|_, data| {
            if data.kind() == NodeKind::Copy {
                copies += data.rrsets().map(|s| s.count as usize).sum::<usize>();
            }
        });
        self.stats.records + copies
    }

    /// Visits every name that holds records of the zone's own — derived prefix copies
    /// ([`NodeKind::Copy`]) left out — apex first, with its labels below the apex
    /// (closest first) and its RRsets: what a copy of the zone must keep.
    pub fn for_each_name(&self, mut visit: impl FnMut(&[&[u8]], index::RrSetIter<'_>)) {
        self.tree.walk(|path, node| {
            if node.kind() == NodeKind::Copy {
                return;
            }
            visit(path, node.rrsets());
        });
    }

    /// A fingerprint of the zone's data: every record except derived prefix copies,
    /// the SOA counted without its serial, owner names without case. Two zones with
    /// equal digests hold the same records whatever their serials, so a zone file can
    /// be compared with the stored copy (SPEC §6: which one is served) in one pass over
    /// each, without holding either as text. Records are summed, so their order does
    /// not matter.
    pub fn content_digest(&self) -> ContentDigest {
        use std::hash::Hasher;
        let mut digest = ContentDigest::default();
        self.tree.walk(|path, node| {
            if node.kind() == NodeKind::Copy {
                return;
            }
            for set in node.rrsets() {
                for rd in set.rdatas() {
                    // FNV-1a fed explicit big-endian bytes: the digest is kept in the
                    // store, so it must not change with the Rust release or the CPU.
                    let mut h = fnv::FnvHasher::default();
                    for l in path {
                        h.write(&[l.len() as u8]);
                        h.write(&l.to_ascii_lowercase());
                    }
                    h.write(&set.rtype.to_be_bytes());
                    h.write(&set.ttl.to_be_bytes());
                    if set.rtype == TYPE_SOA {
                        h.write(&soa_with_serial(&rd, 0));
                    } else {
                        h.write(&rd);
                    }
                    digest.add(h.finish());
                }
            }
        });
        digest
    }

    /// The zone as master-file text, in index order (apex first).
    pub fn to_master(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "$ORIGIN {}", self.origin);
        self.tree.walk(|path, node| {
            let mut owner = String::new();
            for l in path.iter().rev() {
                let _ = name::write_label(&mut owner, l);
                owner.push('.');
            }
            if owner.is_empty() {
                owner.push('@');
            } else {
                owner.pop();
            }
            // SOA first at the apex, as every master-file reader expects.
            let mut sets: Vec<_> = node.rrsets().collect();
            sets.sort_by_key(|r| r.rtype != TYPE_SOA);
            for set in sets {
                for rd in set.rdatas() {
                    let _ = writeln!(
                        out,
                        "{owner}\t{}\tIN\t{}\t{}",
                        set.ttl,
                        master::type_name(set.rtype),
                        rdata_presentation(set.rtype, &rd)
                    );
                }
            }
        });
        out
    }
}

/// What [`Zone::content_digest`] gives: a count and two order-independent sums of the
/// records' hashes (a collision needs both sums to agree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentDigest {
    records: u64,
    sum: u64,
    xor: u64,
}

impl ContentDigest {
    /// The digest as the store keeps it (24 bytes).
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut out = [0; 24];
        out[..8].copy_from_slice(&self.records.to_be_bytes());
        out[8..16].copy_from_slice(&self.sum.to_be_bytes());
        out[16..].copy_from_slice(&self.xor.to_be_bytes());
        out
    }

    /// A digest the store kept; `None` when the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<ContentDigest> {
        let word = |i: usize| Some(u64::from_be_bytes(bytes.get(i..i + 8)?.try_into().ok()?));
        (bytes.len() == 24).then_some(())?;
        Some(ContentDigest {
            records: word(0)?,
            sum: word(8)?,
            xor: word(16)?,
        })
    }

    fn add(&mut self, hash: u64) {
        self.records += 1;
        self.sum = self.sum.wrapping_add(hash);
        self.xor ^= hash.rotate_left((hash % 64) as u32);
    }
}

/// SOA rdata with its serial replaced (the serial follows MNAME and RNAME).
fn soa_with_serial(rdata: &[u8], serial: u32) -> Vec<u8> {
    let mut out = rdata.to_vec();
    let skip = name::wire_name_len(rdata).and_then(|a| Some(a + name::wire_name_len(&rdata[a..])?));
    if let Some(at) = skip
        && let Some(field) = out.get_mut(at..at + 4)
    {
        field.copy_from_slice(&serial.to_be_bytes());
    }
    out
}

/// One name's NAPTR change for [`Zone::with_naptrs_many`]: its labels below the apex
/// and its new TTL and rdatas (`None`: no NAPTR RRset).
pub type NaptrEdit<'a> = (Vec<&'a [u8]>, Option<(u32, &'a [Vec<u8>])>);

/// The digits of the E.164 prefix a zone origin stands for: `441632` for
/// `2.3.6.1.4.4.e164.arpa.` (its leading single-digit labels, reversed).
pub fn number_prefix(origin: &Name) -> String {
    let mut digits: Vec<char> = origin
        .labels()
        .iter()
        .take_while(|l| l.len() == 1 && l[0].is_ascii_digit())
        .map(|l| l[0] as char)
        .collect();
    digits.reverse();
    digits.into_iter().collect()
}

/// Serial arithmetic (RFC 1982 §3.2): `a` is newer than `b`.
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Presentation form of one record's data (hickory's formatter for all but NAPTR).
pub fn rdata_presentation(rtype: u16, rdata: &[u8]) -> String {
    use hickory_proto::rr::{RData, RecordType};
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    if rtype == TYPE_NAPTR
        && let Some(n) = crate::naptr::NaptrRef::parse(rdata)
    {
        return n.to_presentation();
    }
    // TXT and SPF are character-strings only: each written quoted, so that spaces,
    // quotes and string boundaries read back as they were (hickory's Display runs
    // them together).
    if matches!(rtype, TYPE_TXT | TYPE_SPF)
        && let Some(text) = char_strings_presentation(rdata)
    {
        return text;
    }
    let mut dec = BinDecoder::new(rdata);
    match RData::read(
        &mut dec,
        RecordType::from(rtype),
        Restrict::new(rdata.len() as u16),
    ) {
        Ok(rd) if !matches!(rd, RData::Unknown { .. }) => rd.to_string(),
        _ => {
            let hex: String = rdata.iter().map(|b| format!("{b:02x}")).collect();
            format!("\\# {} {hex}", rdata.len())
        }
    }
}

/// TXT and SPF record type numbers (RFC 1035, RFC 7208).
const TYPE_TXT: u16 = 16;
const TYPE_SPF: u16 = 99;

/// Rdata made of `<character-string>`s, each quoted (RFC 1035 §5.1), space-separated;
/// `None` when the bytes are not whole character-strings.
fn char_strings_presentation(mut rdata: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(rdata.len() + 8);
    while let Some((&len, rest)) = rdata.split_first() {
        let s = rest.get(..usize::from(len))?;
        if !out.is_empty() {
            out.push(' ');
        }
        crate::naptr::quote_char_string(&mut out, s);
        rdata = &rest[usize::from(len)..];
    }
    (!out.is_empty()).then_some(out)
}

/// An immutable set of zones: what one reader sees.
#[derive(Default)]
pub struct Zones {
    /// Longest origin first, so the first match is the most specific zone.
    zones: Vec<Arc<Zone>>,
    /// The ENUM suffix of each zone (its origin without the leading digit labels, e.g.
    /// `e164.arpa.` for `6.1.4.4.e164.arpa.`), once each, in configuration order, with
    /// its presentation form.
    enum_suffixes: Vec<(Name, Arc<str>)>,
}

impl Zones {
    pub fn new(mut zones: Vec<Arc<Zone>>) -> Self {
        let mut enum_suffixes: Vec<(Name, Arc<str>)> = Vec::new();
        for z in &zones {
            let labels = z.origin.labels();
            let digits = labels
                .iter()
                .take_while(|l| l.len() == 1 && l[0].is_ascii_digit())
                .count();
            let mut suffix = Name::root();
            for l in labels[digits..].iter().rev() {
                suffix = suffix.prepend(l);
            }
            if !enum_suffixes.iter().any(|(s, _)| s.eq_ignore_case(&suffix)) {
                let text = suffix.to_string().into();
                enum_suffixes.push((suffix, text));
            }
        }
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin_len()));
        Zones {
            zones,
            enum_suffixes,
        }
    }

    /// ENUM suffixes served by local zones (SPEC §10.1).
    pub fn enum_suffixes(&self) -> &[(Name, Arc<str>)] {
        &self.enum_suffixes
    }

    /// The most specific zone containing a name given root-side
    /// (`["arpa","e164","4","4",…]`).
    #[inline]
    pub fn find<L: AsRef<[u8]>>(&self, root_side: &[L]) -> Option<&Arc<Zone>> {
        self.zones.iter().find(|z| z.contains_root_side(root_side))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.iter()
    }
}

/// Every local zone, swapped atomically. Readers call [`ZoneSet::load`]; writers
/// replace a zone or the whole set.
pub struct ZoneSet {
    current: ArcSwap<Zones>,
}

impl ZoneSet {
    pub fn new(zones: Vec<Zone>) -> Self {
        ZoneSet {
            current: ArcSwap::from_pointee(Zones::new(zones.into_iter().map(Arc::new).collect())),
        }
    }

    /// A snapshot to read from; lock-free, and stays valid across swaps.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Zones>> {
        self.current.load()
    }

    /// Withdraws the zone with this origin (a secondary past its SOA expire).
    pub fn remove(&self, origin: &Name) {
        self.current.rcu(|cur| {
            Zones::new(
                cur.zones
                    .iter()
                    .filter(|z| !z.origin.eq_ignore_case(origin))
                    .cloned()
                    .collect(),
            )
        });
    }

    /// The SOA facts of the zone with this origin, when it is served.
    pub fn soa(&self, origin: &Name) -> Option<Soa> {
        self.load()
            .iter()
            .find(|z| z.origin.eq_ignore_case(origin))
            .map(|z| z.soa)
    }

    /// Puts `zone` in place of the zone with the same origin (or adds it).
    pub fn replace(&self, zone: Zone) {
        let zone = Arc::new(zone);
        self.current.rcu(|cur| {
            let mut v: Vec<Arc<Zone>> = cur
                .zones
                .iter()
                .filter(|z| !z.origin.eq_ignore_case(&zone.origin))
                .cloned()
                .collect();
            v.push(zone.clone());
            Zones::new(v)
        });
    }
}

impl crate::metrics::Source for ZoneSet {
    fn families(&self, out: &mut Vec<crate::metrics::Family>) {
        use crate::metrics::Family;
        let zones = self.load();
        let mut records = Family::gauge(
            "enroute_zone_records",
            "Resource records of each zone's own (derived prefix-route copies not counted).",
            &["zone"],
        );
        let mut serial = Family::gauge(
            "enroute_zone_serial",
            "SOA serial of each zone as served.",
            &["zone"],
        );
        for z in zones.iter() {
            records.value(&[&z.origin_text], z.stats.records as f64);
            serial.value(&[&z.origin_text], f64::from(z.soa.serial));
        }
        out.push(records);
        out.push(serial);
    }
}
