//! Building a zone tree in bulk, and packing RRsets into a node's data block.
//!
//! Owns: [`ZoneBuilder`] (flat arenas, one sort, the trie built bottom-up with its digit
//! index), the zone-level rules reported while building ([`BuildIssue`]: one SOA at the
//! apex, CNAME alone at its name, one TTL per RRset), [`Origin`], [`TreeStats`], and
//! [`pack_rrsets`] (the packed block's layout, see `index`'s header).
//!
//! Must not touch: master-file syntax (`master`), the lookup (`tree`), or edits of a
//! built tree (`edit`).

use super::node::Node;
use super::tree::{DIGIT_KEY_MAX, DigitIndex, ZoneTree};
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
    pub records: usize,
    pub naptr_records: usize,
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
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
    /// name) are reported as issues; the caller decides whether errors are fatal.
    pub fn build(mut self) -> (ZoneTree, TreeStats, Vec<BuildIssue>) {
        let mut entries = std::mem::take(&mut self.entries);
        // Stable: records of one RRset keep their file order. Adaptive: a zone written in
        // name order (as generated zones are) sorts in linear time.
        entries.sort_by(|a, b| self.key(a).cmp(self.key(b)).then(a.rtype.cmp(&b.rtype)));
        let mut issues = Vec::new();
        let mut stats = TreeStats::default();
        let mut digits = DigitIndex::default();
        let apex = self.build_node(
            Label::new(b""),
            &entries,
            0,
            Some((0, 0)),
            &mut digits,
            &mut issues,
            &mut stats,
        );
        let digits = (stats.cuts == 0 && !digits.is_empty()).then(|| {
            digits.shrink_to_fit();
            Arc::new(digits)
        });
        let soa_count = apex.rrset(TYPE_SOA).map_or(0, |r| r.count);
        if soa_count == 0 {
            issues.push(BuildIssue {
                src: Origin { file: 0, line: 1 },
                error: true,
                message: "zone has no SOA record at its apex".into(),
            });
        }
        (
            ZoneTree {
                apex,
                digits,
                overlay: None,
            },
            stats,
            issues,
        )
    }

    /// `digits` is the packed value and count of this node's name when every label so
    /// far is a single digit (and not too many of them), else `None`.
    #[allow(clippy::too_many_arguments)]
    fn build_node(
        &self,
        label: Label,
        entries: &[Entry],
        depth: usize,
        digits: Option<(u64, usize)>,
        index: &mut DigitIndex,
        issues: &mut Vec<BuildIssue>,
        stats: &mut TreeStats,
    ) -> Node {
        stats.nodes += 1;
        let mut node = Node::empty(label);
        // Entries whose key ends here sort first (a key sorts before its extensions).
        let own = entries
            .iter()
            .take_while(|e| e.key_len as usize == depth)
            .count();
        if own > 0 {
            let data = self.pack(&entries[..own], depth == 0, issues, stats);
            if let Some((value, count)) = digits.filter(|(_, c)| *c > 0) {
                index.insert(((count as u64) << 58) | value, data.clone());
            }
            node.data = Some(data);
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
                (Some((value, count)), [d @ b'0'..=b'9']) if count < DIGIT_KEY_MAX => {
                    Some((value * 10 + u64::from(d - b'0'), count + 1))
                }
                _ => None,
            };
            children.push(self.build_node(
                Label::new(&lab[1..]),
                &rest[i..j],
                depth + 1 + len,
                child_digits,
                index,
                issues,
                stats,
            ));
            i = j;
        }
        node.set_children(children);
        node
    }

    fn pack(
        &self,
        own: &[Entry],
        at_apex: bool,
        issues: &mut Vec<BuildIssue>,
        stats: &mut TreeStats,
    ) -> Arc<[u8]> {
        let mut out = Vec::with_capacity(own.iter().map(|e| e.data_len as usize + 10).sum());
        let mut i = 0;
        let types = {
            let mut t: Vec<u16> = own.iter().map(|e| e.rtype).collect();
            t.dedup();
            t
        };
        if types.contains(&TYPE_CNAME) && types.len() > 1 {
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
        out.into()
    }
}
