//! Building a zone tree in bulk, and packing RRsets into a node's data block.
//!
//! Owns: [`ZoneBuilder`] (flat arenas, one sort, the trie built bottom-up; in a zone
//! without delegations below its apex the numbers interned into shapes instead of
//! nodes, see `tree`), the zone-level rules reported while building ([`BuildIssue`]: one SOA at the
//! apex, CNAME alone at its name, one TTL per RRset), [`Origin`], [`TreeStats`], and
//! [`pack_rrsets`] (the packed block's layout, see `index`'s header).
//!
//! Must not touch: master-file syntax (`master`), the lookup (`tree`), or edits of a
//! built tree (`edit`).

use super::node::{Node, RrSetIter};
use super::numbers::NumberSet;
use super::shape::{Digits, ShapeError, ShapeId, ShapeTable, number_key};
use super::tree::{Numbers, ZoneTree, new_lineage};
use crate::name::{Label, TYPE_CNAME, TYPE_NAPTR, TYPE_NS, TYPE_SOA};
use std::sync::Arc;

/// Packs RRsets into a node's data block: `(type, ttl, rdatas)` each, sorted by type as
/// the builder does. Identical rdatas within a set collapse (RFC 2181 §5).
pub fn pack_rrsets(sets: &[(u16, u32, Vec<&[u8]>)]) -> Option<Arc<[u8]>> {
    let mut order: Vec<usize> = (0..sets.len()).filter(|i| !sets[*i].2.is_empty()).collect();
    if order.is_empty() {
        return None;
    }
    order.sort_by_key(|i| sets[*i].0);
    let mut out = Vec::new();
    for i in order {
        let (rtype, ttl, rdatas) = &sets[i];
        let header = out.len();
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        let mut count: u16 = 0;
        for (k, rd) in rdatas.iter().enumerate() {
            if rdatas[..k].contains(rd) {
                continue;
            }
            out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            out.extend_from_slice(rd);
            count += 1;
        }
        out[header + 6..header + 8].copy_from_slice(&count.to_be_bytes());
    }
    Some(out.into())
}

/// The digits of a builder key made of 1–15 single-digit labels.
fn number_digits(key: &[u8]) -> Option<Digits> {
    if key.is_empty() || !key.len().is_multiple_of(2) {
        return None;
    }
    let mut digits = Digits::NONE;
    for label in key.chunks(2) {
        match label {
            [1, d] => digits = digits.with(*d)?,
            _ => return None,
        }
    }
    Some(digits)
}

/// What [`ZoneBuilder::build`] collects on its way down: problems, statistics, and in a
/// compact zone the numbers (keys in key order, shape ids) and their shapes.
struct Built {
    issues: Vec<BuildIssue>,
    stats: TreeStats,
    numbers: Option<(Vec<(u64, u32)>, ShapeTable)>,
    /// The block of the name being built, reused.
    block: Vec<u8>,
}

/// The numbers the trie build found (in key order) and the streamed ones merged in key
/// order; a number given both ways is reported and kept once (its records' form).
fn twice() -> BuildIssue {
    BuildIssue {
        src: Origin { file: 0, line: 0 },
        error: true,
        message: "a number was given twice".into(),
    }
}

fn with_streamed(
    found: Vec<(u64, u32)>,
    streamed: Option<Vec<(u64, u32)>>,
    issues: &mut Vec<BuildIssue>,
) -> Vec<(u64, u32)> {
    let Some(mut streamed) = streamed.filter(|s| !s.is_empty()) else {
        return found;
    };
    streamed.sort_unstable_by_key(|e| e.0);
    let mut out = Vec::with_capacity(found.len() + streamed.len());
    let (mut a, mut b) = (
        found.into_iter().peekable(),
        streamed.into_iter().peekable(),
    );
    loop {
        let next = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (Some(x), Some(y)) if x.0 < y.0 => a.next(),
            (Some(x), Some(y)) if x.0 > y.0 => b.next(),
            _ => {
                b.next();
                issues.push(twice());
                a.next()
            }
        };
        let Some(next) = next else { break };
        if out.last().is_some_and(|l: &(u64, u32)| l.0 == next.0) {
            issues.push(twice());
            continue;
        }
        out.push(next);
    }
    out
}

/// Where a record came from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: u16,
    pub line: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    key_off: u32,
    key_len: u16,
    rtype: u16,
    ttl: u32,
    data_off: u32,
    data_len: u16,
    src: Origin,
}

/// A problem found while building, with where the record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildIssue {
    pub src: Origin,
    pub error: bool,
    pub message: String,
}

/// Statistics of a built tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Records the zone holds of its own (derived prefix copies not counted).
    pub records: usize,
    pub naptr_records: usize,
    /// Names: trie nodes (empty non-terminals among them) and numbers.
    pub nodes: usize,
    /// Names with an NS RRset below the apex (delegations).
    pub cuts: usize,
}

/// Collects records into flat arenas, then sorts once and builds the trie bottom-up.
///
/// Keys are the owner's labels below the apex, closest to the apex first, each as
/// `[len][lower-case bytes]`: byte order of such keys groups every subtree contiguously
/// and orders siblings exactly as [`cmp_labels`](crate::name::cmp_labels) does.
#[derive(Default)]
pub struct ZoneBuilder {
    keys: Vec<u8>,
    rdata: Vec<u8>,
    entries: Vec<Entry>,
    /// Build the trie form even without delegations (to compare the two forms).
    trie_only: bool,
    /// Numbers given with their blocks whole ([`ZoneBuilder::add_number`]), packed as
    /// they came ([`ZoneBuilder::add_in_owner_order`]) or by kept shape
    /// ([`ZoneBuilder::add_kept_number`]): keys and shape ids, 16 bytes a number, and the
    /// shapes.
    streamed: Option<(Vec<(u64, u32)>, ShapeTable)>,
    /// What the streamed numbers add to the statistics.
    streamed_stats: TreeStats,
    /// [`ZoneBuilder::add_in_owner_order`]: where the current number's records start
    /// in `entries`, while they are gathered.
    group: Option<usize>,
    /// Problems found packing streamed numbers' records.
    streamed_issues: Vec<BuildIssue>,
    /// Whether a streamed number holds NS records (a delegation: no compact form).
    streamed_ns: bool,
    /// The block of the number being packed, reused.
    group_block: Vec<u8>,
    /// Shapes given as kept ([`ZoneBuilder::add_kept_shape`]) by the keeper's id.
    kept_shapes: std::collections::HashMap<i64, KeptShape>,
}

/// A shape given as kept: its id in the streamed table and what one number of it adds
/// to the statistics.
#[derive(Clone, Copy)]
struct KeptShape {
    id: ShapeId,
    records: usize,
    naptr_records: usize,
    /// Holds NS records: a number of this shape is a delegation (no compact form).
    ns: bool,
}

impl ZoneBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        ZoneBuilder {
            keys: Vec::with_capacity(records * 12),
            rdata: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(records),
            ..Self::default()
        }
    }

    /// Adds a number's whole packed block (see [`pack_rrsets`]) by its digits below the
    /// apex (closest first): interned at once, 16 bytes staged, where [`ZoneBuilder::add`]
    /// stages every record (~100 bytes). For zones of 10^8 numbers built from a source
    /// that gives a name's records together. The zone must come out compact (no
    /// delegation below its apex), and a number must not also be given by records.
    pub fn add_number(&mut self, digits: &[u8], block: &[u8]) -> Result<(), ShapeError> {
        self.stream_number(digits, block)?;
        for set in RrSetIter::plain(block) {
            self.streamed_ns |= set.rtype == TYPE_NS;
            self.streamed_stats.records += usize::from(set.count);
            if set.rtype == TYPE_NAPTR {
                self.streamed_stats.naptr_records += usize::from(set.count);
            }
        }
        self.streamed_stats.nodes += 1;
        Ok(())
    }

    /// Adds a shape as it was kept (the bytes [`ShapeTable::shape`] gives, checked
    /// here), under the id `kept_id` the keeper of those bytes gave it, for
    /// [`ZoneBuilder::add_kept_number`]. The store's load path: a number costs its key
    /// and an id, not its records.
    /// A damaged shape is reported as an error of the build.
    pub fn add_kept_shape(&mut self, kept_id: i64, shape: &[u8]) {
        let (_, table) = self.streamed.get_or_insert_with(Default::default);
        let (id, sets) = match table.intern_shape(shape) {
            Ok(found) => found,
            Err(e) => {
                self.streamed_issues.push(BuildIssue {
                    src: Origin { file: 0, line: 0 },
                    error: true,
                    message: format!("kept shape {kept_id}: {e}"),
                });
                return;
            }
        };
        let count = |pick: &dyn Fn(u16) -> bool| {
            sets.iter()
                .filter(|(t, _)| pick(*t))
                .map(|(_, c)| usize::from(*c))
                .sum::<usize>()
        };
        let kept = KeptShape {
            id,
            records: count(&|_| true),
            naptr_records: count(&|t| t == TYPE_NAPTR),
            ns: sets.iter().any(|(t, _)| *t == TYPE_NS),
        };
        self.kept_shapes.insert(kept_id, kept);
    }

    /// Adds a number by its key ([`number_key`]) and the kept id of its shape (given
    /// before by [`ZoneBuilder::add_kept_shape`]). A key that is not a number's or an
    /// unknown shape is reported as an error of the build.
    pub fn add_kept_number(&mut self, key: u64, kept_shape: i64) {
        let kept = self.kept_shapes.get(&kept_shape).copied();
        let (Some(kept), true) = (kept, super::shape::is_number_key(key)) else {
            self.streamed_issues.push(BuildIssue {
                src: Origin { file: 0, line: 0 },
                error: true,
                message: format!(
                    "number key {key:#x} with shape {kept_shape}: no such number or shape"
                ),
            });
            return;
        };
        let (keys, table) = self.streamed.get_or_insert_with(Default::default);
        // The reference `intern` would have added; the id is live, so this cannot fail.
        let _ = table.retain(kept.id);
        keys.push((key, kept.id.0));
        self.streamed_ns |= kept.ns;
        self.streamed_stats.records += kept.records;
        self.streamed_stats.naptr_records += kept.naptr_records;
        self.streamed_stats.nodes += 1;
    }

    /// Builds the trie form (numbers as nodes, prefix copies stored) whatever the zone
    /// holds: the form a zone with delegations takes, for comparing the two.
    pub fn trie_only(mut self) -> Self {
        self.trie_only = true;
        self
    }

    /// Records gathered and numbers streamed.
    pub fn len(&self) -> usize {
        self.entries.len() + self.streamed.as_ref().map_or(0, |s| s.0.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`ZoneBuilder::add`] for records given in owner order, each owner's records
    /// together (the store's scan): a number's records are packed and interned as soon
    /// as the next owner comes ([`ZoneBuilder::add_number`], 16 bytes staged a number
    /// instead of ~100 a record), with the same rules checked. Records of other names
    /// are gathered as `add` does. Records of one number given apart are reported as a
    /// number given twice.
    pub fn add_in_owner_order(
        &mut self,
        key: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        src: Origin,
    ) {
        let same_owner = self.group.is_some_and(|start| {
            let e = self.entries[start];
            self.key(&e) == key
        });
        if !same_owner {
            self.flush_group();
            if number_digits(key).is_some() {
                self.group = Some(self.entries.len());
            }
        }
        self.add(key, rtype, ttl, rdata, src);
    }

    /// Packs and interns the number whose records were gathered last, if any.
    fn flush_group(&mut self) {
        let Some(start) = self.group.take() else {
            return;
        };
        // The group's bytes are the last in the arenas: its first entry's offsets.
        let first = self.entries[start];
        self.entries[start..].sort_by_key(|e| e.rtype);
        let digits = number_digits(self.key(&first)).unwrap_or_default();
        let mut block = std::mem::take(&mut self.group_block);
        let (mut issues, mut stats) = (Vec::new(), TreeStats::default());
        let own = &self.entries[start..];
        self.pack(own, false, &mut issues, &mut stats, &mut block);
        self.streamed_ns |= own.iter().any(|e| e.rtype == TYPE_NS);
        self.entries.truncate(start);
        self.keys.truncate(first.key_off as usize);
        self.rdata.truncate(first.data_off as usize);
        let streamed = self.stream_number(digits.as_bytes(), &block);
        self.group_block = block;
        match streamed {
            Ok(()) => {
                self.streamed_stats.records += stats.records;
                self.streamed_stats.naptr_records += stats.naptr_records;
                self.streamed_stats.nodes += 1;
            }
            Err(e) => issues.push(BuildIssue {
                src: first.src,
                error: true,
                message: format!("cannot index the name's records: {e}"),
            }),
        }
        self.streamed_issues.extend(issues);
    }

    /// Interns a number's block and stages its key (no statistics).
    fn stream_number(&mut self, digits: &[u8], block: &[u8]) -> Result<(), ShapeError> {
        let key = number_key(digits).ok_or(ShapeError::Malformed { at: 0 })?;
        let (keys, shapes) = self.streamed.get_or_insert_with(Default::default);
        let id = shapes.intern(block, digits)?;
        keys.push((key, id.0));
        Ok(())
    }

    /// Gives the streamed numbers back as records: a zone with a delegation below its
    /// apex keeps its numbers in the trie.
    fn unstream(&mut self) {
        let Some((keys, shapes)) = self.streamed.take() else {
            return;
        };
        let mut block = Vec::new();
        let mut key_bytes = Vec::new();
        for (key, shape) in keys {
            let digits = super::shape::Digits::of_key(key);
            if shapes
                .materialize(super::shape::ShapeId(shape), digits.as_bytes(), &mut block)
                .is_err()
            {
                continue;
            }
            key_bytes.clear();
            for d in digits.as_bytes() {
                key_bytes.extend_from_slice(&[1, *d]);
            }
            for set in RrSetIter::plain(&block) {
                for rd in set.rdatas() {
                    let src = Origin { file: 0, line: 0 };
                    self.add(&key_bytes, set.rtype, set.ttl, &rd, src);
                }
            }
        }
        self.streamed_stats = TreeStats::default();
    }

    /// Adds one record. `key` is in the builder's key format (see the type's doc);
    /// `rdata` is wire form (at most 65535 bytes).
    pub fn add(&mut self, key: &[u8], rtype: u16, ttl: u32, rdata: &[u8], src: Origin) {
        let key_off = self.keys.len() as u32;
        self.keys.extend_from_slice(key);
        let data_off = self.rdata.len() as u32;
        self.rdata.extend_from_slice(rdata);
        self.entries.push(Entry {
            key_off,
            key_len: key.len() as u16,
            rtype,
            ttl,
            data_off,
            data_len: rdata.len() as u16,
            src,
        });
    }

    /// Adds a record whose owner is given as labels below the apex.
    pub fn add_labels<L: AsRef<[u8]>>(
        &mut self,
        below_apex: &[L],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        src: Origin,
    ) {
        let mut key = Vec::with_capacity(below_apex.len() * 2);
        for l in below_apex {
            let l = l.as_ref();
            key.push(l.len() as u8);
            key.extend(l.iter().map(u8::to_ascii_lowercase));
        }
        self.add(&key, rtype, ttl, rdata, src);
    }

    fn key(&self, e: &Entry) -> &[u8] {
        &self.keys[e.key_off as usize..e.key_off as usize + e.key_len as usize]
    }

    fn data(&self, e: &Entry) -> &[u8] {
        &self.rdata[e.data_off as usize..e.data_off as usize + e.data_len as usize]
    }

    /// Sorts and builds. Zone-level rules (one SOA at the apex, CNAME alone at its
    /// name) are reported as issues; the caller decides whether errors are fatal. A zone
    /// without NS records below its apex comes out compact (see `tree`).
    pub fn build(mut self) -> (ZoneTree, TreeStats, Vec<BuildIssue>) {
        self.flush_group();
        // Each kept shape holds one reference of its own besides its numbers': dropped,
        // so that the shapes no number names are freed (not served, not written back).
        if let Some((_, table)) = self.streamed.as_mut() {
            for kept in self.kept_shapes.values() {
                let _ = table.release(kept.id);
            }
        }
        let cut = |b: &Self| {
            b.entries
                .iter()
                .any(|e| e.rtype == TYPE_NS && e.key_len > 0)
        };
        let compact = !self.trie_only && !self.streamed_ns && !cut(&self);
        if !compact {
            self.unstream();
        }
        let mut entries = std::mem::take(&mut self.entries);
        // Stable: records of one RRset keep their file order. Adaptive: a zone written in
        // name order (as generated zones are) sorts in linear time.
        entries.sort_by(|a, b| self.key(a).cmp(self.key(b)).then(a.rtype.cmp(&b.rtype)));
        let mut streamed = self.streamed.take();
        let mut out = Built {
            issues: Vec::new(),
            stats: TreeStats::default(),
            numbers: compact.then(|| {
                let shapes = streamed.as_mut().map(|s| std::mem::take(&mut s.1));
                let shapes = shapes.unwrap_or_default();
                (Vec::new(), shapes)
            }),
            block: Vec::new(),
        };
        let apex = self
            .build_node(Label::new(b""), &entries, 0, Some(Digits::NONE), &mut out)
            .unwrap_or_else(|| Node::empty(Label::new(b"")));
        let Built {
            mut issues,
            stats,
            numbers,
            ..
        } = out;
        issues.append(&mut self.streamed_issues);
        if !compact && streamed.as_ref().is_some_and(|s| !s.0.is_empty()) {
            issues.push(BuildIssue {
                src: Origin { file: 0, line: 0 },
                error: true,
                message: "numbers given whole need a zone without delegations".into(),
            });
        }
        let mut stats = stats;
        stats.records += self.streamed_stats.records;
        stats.naptr_records += self.streamed_stats.naptr_records;
        stats.nodes += self.streamed_stats.nodes;
        let numbers = numbers.map(|(keys, shapes)| {
            let keys = with_streamed(keys, streamed.map(|s| s.0), &mut issues);
            Numbers {
                set: NumberSet::from_sorted(keys).expect("numbers merged in key order, once each"),
                shapes: Arc::new(shapes),
                lineage: new_lineage(),
            }
        });
        let soa_count = apex.rrset(TYPE_SOA).map_or(0, |r| r.count);
        if soa_count == 0 {
            issues.push(BuildIssue {
                src: Origin { file: 0, line: 1 },
                error: true,
                message: "zone has no SOA record at its apex".into(),
            });
        }
        (ZoneTree { apex, numbers }, stats, issues)
    }

    /// The node of the name whose records are `entries` (and those of the names below
    /// it), `depth` key bytes below the apex. `digits` is the name's digits when every
    /// label so far is a single digit (and not too many of them), else `None`. Returns
    /// `None` for a name that needs no node: a number of a compact zone with nothing of
    /// the trie below it.
    fn build_node(
        &self,
        label: Label,
        entries: &[Entry],
        depth: usize,
        digits: Option<Digits>,
        out: &mut Built,
    ) -> Option<Node> {
        let mut node = Node::empty(label);
        // Entries whose key ends here sort first (a key sorts before its extensions).
        let own = entries
            .iter()
            .take_while(|e| e.key_len as usize == depth)
            .count();
        if own > 0 {
            // One buffer for every name's block: a number's is interned, not kept.
            let mut data = std::mem::take(&mut out.block);
            let at_apex = depth == 0;
            self.pack(
                &entries[..own],
                at_apex,
                &mut out.issues,
                &mut out.stats,
                &mut data,
            );
            let number = digits
                .filter(|d| !d.is_empty())
                .and_then(|d| Some((d, d.key()?)));
            match (&mut out.numbers, number) {
                (Some((keys, shapes)), Some((d, key))) => {
                    match shapes.intern(&data, d.as_bytes()) {
                        Ok(id) => keys.push((key, id.0)),
                        Err(e) => out.issues.push(BuildIssue {
                            src: entries[0].src,
                            error: true,
                            message: format!("cannot index the name's records: {e}"),
                        }),
                    }
                    out.stats.nodes += 1;
                }
                _ => node.data = Some(data[..].into()),
            }
            out.block = data;
        }
        let rest = &entries[own..];
        let mut children = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            let key = self.key(&rest[i]);
            let len = key[depth] as usize;
            let lab = &key[depth..depth + 1 + len];
            let mut j = i + 1;
            while j < rest.len() && self.key(&rest[j]).get(depth..depth + 1 + len) == Some(lab) {
                j += 1;
            }
            let child_digits = match (digits, &lab[1..]) {
                (Some(d), [c]) => d.with(*c),
                _ => None,
            };
            let child = self.build_node(
                Label::new(&lab[1..]),
                &rest[i..j],
                depth + 1 + len,
                child_digits,
                out,
            );
            children.extend(child);
            i = j;
        }
        node.set_children(children);
        if depth > 0 && node.data.is_none() && node.children().is_empty() {
            return None;
        }
        out.stats.nodes += 1;
        Some(node)
    }

    fn pack(
        &self,
        own: &[Entry],
        at_apex: bool,
        issues: &mut Vec<BuildIssue>,
        stats: &mut TreeStats,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        let mut i = 0;
        let cname = own.iter().any(|e| e.rtype == TYPE_CNAME);
        if cname && own.iter().any(|e| e.rtype != TYPE_CNAME) {
            let e = own.iter().find(|e| e.rtype == TYPE_CNAME).copied();
            if let Some(e) = e {
                issues.push(BuildIssue {
                    src: e.src,
                    error: true,
                    message: "CNAME cannot share its name with other records (RFC 1034 §3.6.2)"
                        .into(),
                });
            }
        }
        while i < own.len() {
            let rtype = own[i].rtype;
            let mut j = i;
            while j < own.len() && own[j].rtype == rtype {
                j += 1;
            }
            let set = &own[i..j];
            let ttl = set[0].ttl;
            if let Some(e) = set.iter().find(|e| e.ttl != ttl) {
                issues.push(BuildIssue {
                    src: e.src,
                    error: false,
                    message: format!(
                        "TTL {} differs from the {} of its RRset; {} is used (RFC 2181 §5.2)",
                        e.ttl, ttl, ttl
                    ),
                });
            }
            if rtype == TYPE_NS && !at_apex {
                stats.cuts += 1;
            }
            if rtype == TYPE_SOA {
                if !at_apex {
                    issues.push(BuildIssue {
                        src: set[0].src,
                        error: true,
                        message: "SOA record outside the zone apex".into(),
                    });
                }
                if set.len() > 1 {
                    issues.push(BuildIssue {
                        src: set[1].src,
                        error: true,
                        message: "duplicate SOA record: a zone has exactly one".into(),
                    });
                }
            }
            let header = out.len();
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            let mut count: u16 = 0;
            for (k, e) in set.iter().enumerate() {
                let data = self.data(e);
                // RFC 2181 §5: an RRset is a set; identical records collapse.
                if set[..k].iter().any(|p| self.data(p) == data) {
                    continue;
                }
                out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                out.extend_from_slice(data);
                count += 1;
            }
            out[header + 6..header + 8].copy_from_slice(&count.to_be_bytes());
            stats.records += count as usize;
            if rtype == TYPE_NAPTR {
                stats.naptr_records += count as usize;
            }
            i = j;
        }
    }
}
