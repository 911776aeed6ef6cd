//! The in-memory zone index: a label trie built in bulk, read without locks.
//!
//! Owns: the node layout, the bulk builder ([`ZoneBuilder`]), per-node RRset packing,
//! and the RFC 1034 §4.3.2 / RFC 4592 lookup ([`ZoneTree::lookup`]): exact matches,
//! wildcards, empty non-terminals (which hide wildcards), NXDOMAIN versus NODATA,
//! CNAME and delegation cuts.
//!
//! Must not touch: master-file syntax (see `master`), which zone a name belongs to (see
//! `zone::ZoneSet`), or what the records mean (DDDS).
//!
//! Why not hickory's in-memory authority: its negative answers scan the zone and its
//! wildcard handling deviates from RFC 4592 (see issue 2). Layout: every node holds its
//! children inline in one shared `Arc<[Node]>`, sorted, so a lookup is one binary search
//! per label (O(digits) for ENUM) and a later single-name update can copy just the path
//! from the apex (siblings are shared by reference count). RRsets of a node live in one
//! packed byte block: `[type u16][ttl u32][count u16]` then `count × [len u16][rdata]`,
//! with rdata in uncompressed wire form, ready to be copied into a DNS answer.

use crate::name::{Label, TYPE_CNAME, TYPE_DS, TYPE_NAPTR, TYPE_NS, TYPE_SOA, cmp_labels};
use std::sync::Arc;

/// One name in the zone (or an empty non-terminal on the way to one).
///
/// `repr(C)` keeps what a descent reads (children, digit map) together at the front, so a
/// step down one level touches one cache line of the node.
#[derive(Clone)]
#[repr(C)]
pub struct Node {
    children: Option<Arc<[Node]>>,
    /// Bit d set when a child labelled with the single digit d exists. With
    /// `first_digit` this finds a digit child with one popcount and one memory access
    /// instead of a binary search that touches several siblings (the lookup's cost in a
    /// million-number zone is its cache misses).
    digit_map: u16,
    /// Index of the first digit child among the children (siblings that sort before
    /// `"0"`, such as `*`, come first).
    first_digit: u8,
    /// Whether the data is a plain record set, a managed prefix route's wildcard, or a
    /// copy of one (see [`NodeKind`]). Placed here, it takes padding: the node stays 64
    /// bytes.
    kind: NodeKind,
    label: Label,
    data: Option<Arc<[u8]>>,
}

/// What a node's data is, for prefix routes (SPEC §7). A prefix route is a wildcard; an
/// empty non-terminal under it would hide it (RFC 4592 §2.2.2), so such an ENT gets a
/// `*` child holding a copy of the covering prefix's data, kept in step by
/// [`ZoneTree::with_data`] and [`ZoneTree::refresh_copies`]. Copies share the prefix's
/// bytes (one `Arc`), so they cost a node each, not a record set each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeKind {
    /// Records of the zone as stored.
    #[default]
    Plain,
    /// The `*` node of a prefix route managed through the admin API.
    Prefix,
    /// A `*` node derived from the covering prefix route; never stored.
    Copy,
}

impl Node {
    fn empty(label: Label) -> Self {
        Node {
            label,
            children: None,
            kind: NodeKind::Plain,
            data: None,
            digit_map: 0,
            first_digit: 0,
        }
    }

    /// Sets the children (sorted by [`cmp_labels`]) and their digit index.
    fn set_children(&mut self, children: Vec<Node>) {
        self.digit_map = 0;
        self.first_digit = 0;
        let mut first = None;
        for (i, c) in children.iter().enumerate() {
            if let [d @ b'0'..=b'9'] = c.label.as_bytes() {
                self.digit_map |= 1 << (d - b'0');
                first.get_or_insert(i);
            }
        }
        match first {
            // More than 255 siblings before the digits cannot use the fast path; the
            // empty map sends lookups to the binary search.
            Some(i) if i <= u8::MAX as usize => self.first_digit = i as u8,
            Some(_) => self.digit_map = 0,
            None => {}
        }
        self.children = (!children.is_empty()).then(|| children.into());
    }

    pub fn label(&self) -> &Label {
        &self.label
    }

    pub fn children(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }

    #[inline]
    pub fn child(&self, label: &[u8]) -> Option<&Node> {
        let kids = self.children.as_deref()?;
        if let [d @ b'0'..=b'9'] = label
            && self.digit_map != 0
        {
            let bit = 1u16 << (d - b'0');
            if self.digit_map & bit == 0 {
                return None;
            }
            let idx =
                self.first_digit as usize + (self.digit_map & (bit - 1)).count_ones() as usize;
            return kids.get(idx);
        }
        kids.binary_search_by(|n| cmp_labels(n.label.as_bytes(), label))
            .ok()
            .map(|i| &kids[i])
    }

    /// True when the node owns no RRset (an empty non-terminal, RFC 4592 §2.2.2).
    pub fn is_empty_non_terminal(&self) -> bool {
        self.data.is_none()
    }

    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The node's packed RRsets, shared (see [`pack_rrsets`] for the layout).
    pub fn data(&self) -> Option<&Arc<[u8]>> {
        self.data.as_ref()
    }

    /// The data copies under this node inherit: its own managed prefix route's.
    fn prefix_data(&self) -> Option<&Arc<[u8]>> {
        self.child(b"*")
            .filter(|c| c.kind == NodeKind::Prefix)
            .and_then(|c| c.data.as_ref())
    }

    pub fn rrsets(&self) -> RrSetIter<'_> {
        RrSetIter {
            data: self.data.as_deref().unwrap_or(&[]),
        }
    }

    #[inline]
    pub fn rrset(&self, rtype: u16) -> Option<RrSet<'_>> {
        self.rrsets().find(|r| r.rtype == rtype)
    }
}

/// One RRset borrowed from a node.
#[derive(Clone, Copy, Debug)]
pub struct RrSet<'a> {
    pub rtype: u16,
    pub ttl: u32,
    pub count: u16,
    body: &'a [u8],
}

impl<'a> RrSet<'a> {
    /// The rdata of each record, in wire form, in zone-file order.
    pub fn rdatas(&self) -> RdataIter<'a> {
        RdataIter {
            body: self.body,
            left: self.count,
        }
    }
}

pub struct RdataIter<'a> {
    body: &'a [u8],
    left: u16,
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 || self.body.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([self.body[0], self.body[1]]) as usize;
        let rd = self.body.get(2..2 + len)?;
        self.body = &self.body[2 + len..];
        self.left -= 1;
        Some(rd)
    }
}

pub struct RrSetIter<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for RrSetIter<'a> {
    type Item = RrSet<'a>;
    fn next(&mut self) -> Option<RrSet<'a>> {
        let d = self.data;
        if d.len() < 8 {
            return None;
        }
        let rtype = u16::from_be_bytes([d[0], d[1]]);
        let ttl = u32::from_be_bytes([d[2], d[3], d[4], d[5]]);
        let count = u16::from_be_bytes([d[6], d[7]]);
        let mut end = 8;
        for _ in 0..count {
            let len = u16::from_be_bytes([d[end], d[end + 1]]) as usize;
            end += 2 + len;
        }
        self.data = &d[end..];
        Some(RrSet {
            rtype,
            ttl,
            count,
            body: &d[8..end],
        })
    }
}

/// What a lookup found, per RFC 1034 §4.3.2 with RFC 4592 wildcards.
#[derive(Clone, Copy, Debug)]
pub enum Lookup<'a> {
    /// The RRset of the asked type; `wildcard` when synthesized from `*`.
    Answer { rrset: RrSet<'a>, wildcard: bool },
    /// The name (or its wildcard) owns a CNAME and another type was asked.
    Cname { rrset: RrSet<'a>, wildcard: bool },
    /// The name exists (or a wildcard covers it) but has no RRset of that type.
    NoData { wildcard: bool },
    /// Neither the name nor a covering wildcard exists.
    NxDomain,
    /// The name is at or below a zone cut: `depth` labels below the apex is the cut.
    Referral {
        ns: RrSet<'a>,
        node: &'a Node,
        depth: usize,
    },
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({:?})", self.label)
    }
}

/// The trie of one zone, rooted at its apex.
#[derive(Clone, Debug)]
pub struct ZoneTree {
    apex: Node,
    /// Exact-name index of every name below the apex made of at most
    /// [`DIGIT_KEY_MAX`] single-digit labels (every ENUM number): packed digits to the
    /// name's RRsets. A hit skips the walk's ~one cache miss per label; anything else
    /// (misses, wildcards, empty non-terminals) takes the walk. Absent when the zone has
    /// a delegation below its apex, where a name's own data is not the whole answer.
    digits: Option<Arc<DigitIndex>>,
    /// Names changed since `digits` was built (by [`ZoneTree::with_data`]): `None` means
    /// "no longer has data". Checked first; absent when empty so that the common case is
    /// one pointer test. Folded into `digits` when it grows past [`OVERLAY_MAX`].
    overlay: Option<Arc<DigitIndexOverlay>>,
}

/// Changed names held beside the digit index before it is rebuilt: a PUT copies the
/// overlay (a few hundred KiB at most), never the million-entry index.
const OVERLAY_MAX: usize = 4096;

/// Most digit labels a packed key holds.
pub const DIGIT_KEY_MAX: usize = 17;

/// Packs up to [`DIGIT_KEY_MAX`] digit labels (closest to the apex first) into a key
/// that keeps leading zeros apart: count in the top bits, decimal value below.
#[inline]
pub fn digit_key<L: AsRef<[u8]>>(below_apex: &[L]) -> Option<u64> {
    if below_apex.len() > DIGIT_KEY_MAX {
        return None;
    }
    let mut value: u64 = 0;
    for l in below_apex {
        match l.as_ref() {
            [d @ b'0'..=b'9'] => value = value * 10 + u64::from(d - b'0'),
            _ => return None,
        }
    }
    Some(((below_apex.len() as u64) << 58) | value)
}

/// Hasher for packed digit keys: one multiply and a shift mix (the keys are already
/// unique integers; SipHash would cost more than the lookup it serves).
#[derive(Default, Clone, Copy)]
pub struct DigitKeyHasher(u64);

impl std::hash::Hasher for DigitKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        let h = (x ^ self.0 ^ (x >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

type DigitIndex =
    std::collections::HashMap<u64, Arc<[u8]>, std::hash::BuildHasherDefault<DigitKeyHasher>>;
type DigitIndexOverlay = std::collections::HashMap<
    u64,
    Option<Arc<[u8]>>,
    std::hash::BuildHasherDefault<DigitKeyHasher>,
>;

/// A name's RRsets found through the digit index.
#[derive(Clone, Copy, Debug)]
pub struct NodeData<'a> {
    data: &'a [u8],
}

impl<'a> NodeData<'a> {
    pub fn rrsets(&self) -> RrSetIter<'a> {
        RrSetIter { data: self.data }
    }
}

impl ZoneTree {
    pub fn apex(&self) -> &Node {
        &self.apex
    }

    /// Whether exact all-digit lookups go through the digit index.
    pub fn has_digit_index(&self) -> bool {
        self.digits.is_some()
    }

    /// The RRsets of an all-digit name below the apex, when the digit index has it.
    /// `None` means "take [`ZoneTree::lookup`]", not "absent".
    #[inline]
    pub fn exact_digits<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<NodeData<'_>> {
        let index = self.digits.as_ref()?;
        let key = digit_key(below_apex)?;
        if let Some(changed) = &self.overlay
            && let Some(now) = changed.get(&key)
        {
            // Removed since the index was built: the walk gives the answer.
            return now.as_ref().map(|d| NodeData { data: d });
        }
        index.get(&key).map(|d| NodeData { data: d })
    }

    /// Looks up a name given as labels below the apex, closest to the apex first
    /// (`["4","4","1","6"]` for `6.1.4.4.<origin>`), and an RR type.
    #[inline]
    pub fn lookup<L: AsRef<[u8]>>(&self, below_apex: &[L], qtype: u16) -> Lookup<'_> {
        if let Some(data) = self.exact_digits(below_apex) {
            return answer_in(data.rrsets(), qtype, false);
        }
        let mut node = &self.apex;
        for (depth, label) in below_apex.iter().enumerate() {
            if depth > 0
                && let Some(ns) = node.rrset(TYPE_NS)
            {
                return Lookup::Referral { ns, node, depth };
            }
            match node.child(label.as_ref()) {
                Some(child) => node = child,
                None => {
                    // `node` is the closest encloser (RFC 4592 §3.3.1); only its own `*`
                    // child can synthesize an answer. An empty non-terminal on the path
                    // has no `*` child unless one was put there, so it hides wildcards
                    // further up, as RFC 4592 §2.2.2 requires.
                    return match node.child(b"*") {
                        Some(star) => answer_in(star.rrsets(), qtype, true),
                        None => Lookup::NxDomain,
                    };
                }
            }
        }
        // A DS query at a cut is answered by the parent side (RFC 4035 §3.1.4.1).
        if !below_apex.is_empty()
            && qtype != TYPE_DS
            && let Some(ns) = node.rrset(TYPE_NS)
        {
            return Lookup::Referral {
                ns,
                node,
                depth: below_apex.len(),
            };
        }
        answer_in(node.rrsets(), qtype, false)
    }

    /// Visits every node with data, depth first, with its labels below the apex
    /// (closest to the apex first).
    pub fn walk(&self, mut visit: impl FnMut(&[&Label], &Node)) {
        fn rec<'a>(
            node: &'a Node,
            path: &mut Vec<&'a Label>,
            visit: &mut impl FnMut(&[&Label], &Node),
        ) {
            if node.data.is_some() {
                visit(path, node);
            }
            for child in node.children() {
                path.push(&child.label);
                rec(child, path, visit);
                path.pop();
            }
        }
        let mut path = Vec::new();
        rec(&self.apex, &mut path, &mut visit);
    }

    /// The node of exactly this name (no wildcard), when it exists.
    pub fn node_at<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<&Node> {
        let mut node = &self.apex;
        for l in below_apex {
            node = node.child(l.as_ref())?;
        }
        Some(node)
    }

    /// A new tree in which the name `below_apex` owns `data` (`None`: nothing), marked
    /// `kind`. Only the path from the apex is copied; every other node is shared with
    /// `self`, so readers of the old tree are untouched. Names that end up with neither
    /// data nor children are removed, and the wildcard copies of prefix routes along the
    /// path are kept in step ([`NodeKind`]). `stats` is updated to match.
    pub fn with_data<L: AsRef<[u8]>>(
        &self,
        below_apex: &[L],
        data: Option<Arc<[u8]>>,
        kind: NodeKind,
        stats: &mut TreeStats,
    ) -> ZoneTree {
        let labels: Vec<&[u8]> = below_apex.iter().map(|l| l.as_ref()).collect();
        let mut delta = StatsDelta::default();
        let apex = edit_path(&self.apex, &labels, &data, kind, None, &mut delta, true)
            .expect("the apex is never removed");
        delta.apply(stats);
        let mut tree = ZoneTree {
            apex,
            digits: self.digits.clone(),
            overlay: self.overlay.clone(),
        };
        if stats.cuts == 0
            && let Some(key) = digit_key(&labels).filter(|_| !labels.is_empty())
        {
            let mut overlay = tree.overlay.as_deref().cloned().unwrap_or_default();
            let now = tree.node_at(&labels).and_then(|n| n.data.clone());
            overlay.insert(key, now);
            if overlay.len() > OVERLAY_MAX || tree.digits.is_none() {
                let mut index = tree.digits.as_deref().cloned().unwrap_or_default();
                for (k, v) in overlay.drain() {
                    match v {
                        Some(d) => index.insert(k, d),
                        None => index.remove(&k),
                    };
                }
                tree.digits = Some(Arc::new(index));
                tree.overlay = None;
            } else {
                tree.overlay = Some(Arc::new(overlay));
            }
        }
        tree
    }

    /// A new tree with every wildcard copy under the name `below_apex` recomputed: after
    /// a prefix route there was added, changed or removed. Copies the whole subtree.
    pub fn refresh_copies<L: AsRef<[u8]>>(
        &self,
        below_apex: &[L],
        stats: &mut TreeStats,
    ) -> ZoneTree {
        fn descend(
            node: &Node,
            rest: &[&[u8]],
            inherited: Option<&Arc<[u8]>>,
            delta: &mut StatsDelta,
        ) -> Node {
            let Some((first, more)) = rest.split_first() else {
                return refresh_subtree(node, inherited, delta);
            };
            let below = node.prefix_data().or(inherited);
            let mut kids: Vec<Node> = node.children().to_vec();
            if let Ok(i) = kids.binary_search_by(|c| cmp_labels(c.label.as_bytes(), first)) {
                kids[i] = descend(&kids[i], more, below, delta);
            }
            let mut n = node.clone();
            n.set_children(kids);
            n
        }
        fn refresh_subtree(
            node: &Node,
            inherited: Option<&Arc<[u8]>>,
            delta: &mut StatsDelta,
        ) -> Node {
            let mut n = node.clone();
            if node.children.is_some() {
                let below = node.prefix_data().or(inherited);
                let kids: Vec<Node> = node
                    .children()
                    .iter()
                    .map(|c| refresh_subtree(c, below, delta))
                    .collect();
                n.set_children(kids);
            }
            fix_copy(&mut n, inherited, delta);
            n
        }
        let labels: Vec<&[u8]> = below_apex.iter().map(|l| l.as_ref()).collect();
        let mut delta = StatsDelta::default();
        let apex = descend(&self.apex, &labels, None, &mut delta);
        delta.apply(stats);
        ZoneTree {
            apex,
            digits: self.digits.clone(),
            overlay: self.overlay.clone(),
        }
    }
}

/// Changes to [`TreeStats`] made by an edit, applied once at the end.
#[derive(Default)]
struct StatsDelta {
    records: isize,
    naptr_records: isize,
    nodes: isize,
}

impl StatsDelta {
    fn data(&mut self, data: Option<&Arc<[u8]>>, sign: isize) {
        if let Some(d) = data {
            for set in (RrSetIter { data: d }) {
                self.records += sign * set.count as isize;
                if set.rtype == TYPE_NAPTR {
                    self.naptr_records += sign * set.count as isize;
                }
            }
        }
    }

    fn apply(&self, stats: &mut TreeStats) {
        let add = |v: &mut usize, d: isize| *v = v.saturating_add_signed(d);
        add(&mut stats.records, self.records);
        add(&mut stats.naptr_records, self.naptr_records);
        add(&mut stats.nodes, self.nodes);
    }
}

/// One step of [`ZoneTree::with_data`]: `node` with the name `rest` below it changed.
/// `inherited` is the data of the nearest prefix route strictly above `node`. Returns
/// `None` when the node is left with nothing (and is not the apex).
fn edit_path(
    node: &Node,
    rest: &[&[u8]],
    data: &Option<Arc<[u8]>>,
    kind: NodeKind,
    inherited: Option<&Arc<[u8]>>,
    delta: &mut StatsDelta,
    apex: bool,
) -> Option<Node> {
    let mut n = node.clone();
    match rest.split_first() {
        Some((first, more)) => {
            let below = node.prefix_data().or(inherited);
            let mut kids: Vec<Node> = node.children().to_vec();
            match kids.binary_search_by(|c| cmp_labels(c.label.as_bytes(), first)) {
                Ok(i) => match edit_path(&kids[i], more, data, kind, below, delta, false) {
                    Some(c) => kids[i] = c,
                    None => {
                        kids.remove(i);
                    }
                },
                Err(i) if data.is_some() => {
                    delta.nodes += 1;
                    let fresh = Node::empty(Label::new(first));
                    if let Some(c) = edit_path(&fresh, more, data, kind, below, delta, false) {
                        kids.insert(i, c);
                    }
                }
                Err(_) => {}
            }
            n.set_children(kids);
        }
        None => {
            delta.data(n.data.as_ref(), -1);
            delta.data(data.as_ref(), 1);
            n.data = data.clone();
            n.kind = if data.is_some() {
                kind
            } else {
                NodeKind::Plain
            };
        }
    }
    fix_copy(&mut n, inherited, delta);
    let only_copies = n.children().iter().all(|c| c.kind == NodeKind::Copy);
    if !apex && n.data.is_none() && only_copies {
        // Nothing left here; a copy below an empty name goes with it.
        for c in n.children() {
            delta.data(c.data.as_ref(), -1);
            delta.nodes -= 1;
        }
        delta.nodes -= 1;
        return None;
    }
    Some(n)
}

/// Adds, updates or removes `n`'s wildcard copy: an empty non-terminal under a prefix
/// route (`inherited`) without a wildcard of its own gets one (SPEC §7).
fn fix_copy(n: &mut Node, inherited: Option<&Arc<[u8]>>, delta: &mut StatsDelta) {
    let kids = n.children();
    let star = kids.iter().position(|c| c.label.as_bytes() == b"*");
    let own_star = star.is_some_and(|i| kids[i].kind != NodeKind::Copy);
    let is_ent = n.data.is_none() && kids.iter().any(|c| c.kind != NodeKind::Copy);
    let want = if is_ent && !own_star { inherited } else { None };
    let have = star
        .filter(|i| kids[*i].kind == NodeKind::Copy)
        .and_then(|i| kids[i].data.as_ref());
    let same = match (want, have) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if same {
        return;
    }
    let mut kids = kids.to_vec();
    if let Some(i) = star.filter(|i| kids[*i].kind == NodeKind::Copy) {
        delta.data(kids[i].data.as_ref(), -1);
        delta.nodes -= 1;
        kids.remove(i);
    }
    if let Some(d) = want {
        let mut copy = Node::empty(Label::new(b"*"));
        copy.kind = NodeKind::Copy;
        copy.data = Some(d.clone());
        delta.data(Some(d), 1);
        delta.nodes += 1;
        let at = kids
            .binary_search_by(|c| cmp_labels(c.label.as_bytes(), b"*"))
            .unwrap_or_else(|i| i);
        kids.insert(at, copy);
    }
    n.set_children(kids);
}

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

/// The answer from one name's RRsets (RFC 1034 §4.3.2 step 3.a/3.c).
#[inline]
fn answer_in(rrsets: RrSetIter<'_>, qtype: u16, wildcard: bool) -> Lookup<'_> {
    let mut cname = None;
    for rrset in rrsets {
        if rrset.rtype == qtype {
            return Lookup::Answer { rrset, wildcard };
        }
        if rrset.rtype == TYPE_CNAME {
            cname = Some(rrset);
        }
    }
    match cname {
        Some(rrset) => Lookup::Cname { rrset, wildcard },
        None => Lookup::NoData { wildcard },
    }
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
/// and orders siblings exactly as [`cmp_labels`] does.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::TYPE_A;

    fn src() -> Origin {
        Origin { file: 0, line: 1 }
    }

    fn tree(names: &[(&[&str], u16)]) -> ZoneTree {
        let mut b = ZoneBuilder::new();
        b.add_labels::<&str>(&[], TYPE_SOA, 60, b"soa", src());
        for (labels, t) in names {
            b.add_labels(labels, *t, 60, b"x", src());
        }
        let (t, _, issues) = b.build();
        assert!(issues.iter().all(|i| !i.error), "{issues:?}");
        t
    }

    #[test]
    fn a_node_fits_one_cache_line() {
        // The prefix-route kind took padding, not a second cache line per descent.
        assert!(
            std::mem::size_of::<Node>() <= 64,
            "{}",
            std::mem::size_of::<Node>()
        );
    }

    #[test]
    fn digit_index_keeps_leading_zeros_apart() {
        assert_ne!(digit_key(&["0", "1"]), digit_key(&["1"]));
        assert_ne!(digit_key(&["0"]), digit_key(&["0", "0"]));
        assert_eq!(digit_key(&["1", "x"]), None);
        assert_eq!(digit_key(&["1"; 18]), None);
        let t = tree(&[
            (&["0", "1"], TYPE_NAPTR),
            (&["1"], TYPE_A),
            (&["0", "0"], TYPE_NAPTR),
        ]);
        assert!(t.has_digit_index());
        assert!(matches!(
            t.lookup(&["0", "1"], TYPE_NAPTR),
            Lookup::Answer { .. }
        ));
        assert!(matches!(
            t.lookup(&["1"], TYPE_NAPTR),
            Lookup::NoData { .. }
        ));
        assert!(matches!(t.lookup(&["1"], TYPE_A), Lookup::Answer { .. }));
        assert!(matches!(
            t.lookup(&["0"], TYPE_NAPTR),
            Lookup::NoData { .. }
        ));
        assert!(matches!(
            t.lookup(&["0", "2"], TYPE_NAPTR),
            Lookup::NxDomain
        ));
    }

    #[test]
    fn rfc4592_semantics() {
        // *.1          wildcard for everything under 1
        // 1.2.3.1      a number below: 2.1 and 3.2.1 become empty non-terminals
        let t = tree(&[
            (&["1", "*"], TYPE_NAPTR),
            (&["1", "2", "3", "1"], TYPE_NAPTR),
        ]);
        assert!(matches!(
            t.lookup(&["1", "9"], TYPE_NAPTR),
            Lookup::Answer { wildcard: true, .. }
        ));
        assert!(matches!(
            t.lookup(&["1", "9", "9"], TYPE_NAPTR),
            Lookup::Answer { wildcard: true, .. }
        ));
        // ENT hides the wildcard below it
        assert!(matches!(
            t.lookup(&["1", "2", "9"], TYPE_NAPTR),
            Lookup::NxDomain
        ));
        // the ENT itself: NODATA
        assert!(matches!(
            t.lookup(&["1", "2"], TYPE_NAPTR),
            Lookup::NoData {
                wildcard: false,
                ..
            }
        ));
        // other type at a wildcard-covered name: NODATA, not NXDOMAIN
        assert!(matches!(
            t.lookup(&["1", "9"], TYPE_A),
            Lookup::NoData { wildcard: true, .. }
        ));
        // other type at an existing name
        assert!(matches!(
            t.lookup(&["1", "2", "3", "1"], TYPE_A),
            Lookup::NoData {
                wildcard: false,
                ..
            }
        ));
        assert!(matches!(t.lookup(&["2"], TYPE_NAPTR), Lookup::NxDomain));
        // case-insensitive
        let t = tree(&[(&["Abc"], TYPE_A)]);
        assert!(matches!(t.lookup(&["aBC"], TYPE_A), Lookup::Answer { .. }));
    }

    /// Every name with data, its kind and its data: what two trees must agree on.
    fn dump(t: &ZoneTree) -> Vec<(String, NodeKind, Vec<u8>)> {
        let mut out = Vec::new();
        t.walk(|path, node| {
            let name: Vec<String> = path.iter().map(|l| format!("{l:?}")).collect();
            out.push((
                name.join("."),
                node.kind(),
                node.data().map(|d| d.to_vec()).unwrap_or_default(),
            ));
        });
        out
    }

    /// What a sequence of edits should give, computed independently of the edit code:
    /// the numbers, each prefix's wildcard, and a wildcard copy (plain records here) at
    /// every empty non-terminal strictly below a prefix that has no wildcard of its own.
    /// Returns the tree and the names that must be copies.
    fn oracle(
        numbers: &[Vec<u8>],
        prefixes: &[(Vec<u8>, u8)],
    ) -> (ZoneTree, TreeStats, Vec<String>) {
        let mut b = ZoneBuilder::new();
        b.add_labels::<&str>(&[], TYPE_SOA, 60, b"soa", src());
        for n in numbers {
            let labels: Vec<&[u8]> = n.chunks(1).collect();
            b.add_labels(&labels, TYPE_NAPTR, 60, b"num", src());
        }
        let mut ents = std::collections::BTreeSet::new();
        for n in numbers.iter().chain(prefixes.iter().map(|(p, _)| p)) {
            for len in 1..n.len() {
                ents.insert(n[..len].to_vec());
            }
        }
        for (p, _) in prefixes {
            ents.insert(p.clone());
        }
        let mut copies = Vec::new();
        for e in ents {
            if numbers.contains(&e) || prefixes.iter().any(|(p, _)| *p == e) {
                continue;
            }
            let cover = prefixes
                .iter()
                .filter(|(p, _)| p.len() < e.len() && e.starts_with(p))
                .max_by_key(|(p, _)| p.len());
            if let Some((_, v)) = cover {
                let mut labels: Vec<&[u8]> = e.chunks(1).collect();
                labels.push(b"*");
                b.add_labels(&labels, TYPE_NAPTR, 60, &[b'p', *v], src());
                let mut name: Vec<String> = e.iter().map(|d| (*d as char).to_string()).collect();
                name.push("*".into());
                copies.push(name.join("."));
            }
        }
        for (p, v) in prefixes {
            let mut labels: Vec<&[u8]> = p.chunks(1).collect();
            labels.push(b"*");
            b.add_labels(&labels, TYPE_NAPTR, 60, &[b'p', *v], src());
        }
        let (t, stats, _) = b.build();
        (t, stats, copies)
    }

    fn names_of(t: &ZoneTree, kind: NodeKind) -> Vec<String> {
        let mut v: Vec<String> = dump(t)
            .into_iter()
            .filter(|d| d.1 == kind)
            .map(|d| d.0)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn edits_match_a_rebuild_and_keep_prefix_copies_in_step() {
        let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut numbers: Vec<Vec<u8>> = Vec::new();
        let mut prefixes: Vec<(Vec<u8>, u8)> = Vec::new();
        let (mut tree, mut stats, _) = oracle(&numbers, &prefixes);
        for step in 0..600 {
            let len = 1 + next(4) as usize;
            let name: Vec<u8> = (0..len).map(|_| b'0' + next(3) as u8).collect();
            let labels: Vec<&[u8]> = name.chunks(1).collect();
            match next(4) {
                0 | 1 => {
                    if !numbers.contains(&name) {
                        numbers.push(name.clone());
                    }
                    let d = pack_rrsets(&[(TYPE_NAPTR, 60, vec![&b"num"[..]])]);
                    tree = tree.with_data(&labels, d, NodeKind::Plain, &mut stats);
                }
                2 => {
                    numbers.retain(|n| n != &name);
                    tree = tree.with_data(&labels, None, NodeKind::Plain, &mut stats);
                }
                _ => {
                    let mut star = labels.clone();
                    star.push(b"*");
                    if next(3) == 0 {
                        prefixes.retain(|(p, _)| p != &name);
                        tree = tree.with_data(&star, None, NodeKind::Plain, &mut stats);
                    } else {
                        let v = next(200) as u8;
                        prefixes.retain(|(p, _)| p != &name);
                        prefixes.push((name.clone(), v));
                        let d = pack_rrsets(&[(TYPE_NAPTR, 60, vec![&[b'p', v][..]])]);
                        tree = tree.with_data(&star, d, NodeKind::Prefix, &mut stats);
                    }
                    tree = tree.refresh_copies(&labels, &mut stats);
                }
            }
            let (want, want_stats, mut copies) = oracle(&numbers, &prefixes);
            let plain = |t: &ZoneTree| -> Vec<(String, Vec<u8>)> {
                dump(t).into_iter().map(|d| (d.0, d.2)).collect()
            };
            assert_eq!(plain(&tree), plain(&want), "step {step}");
            copies.sort();
            assert_eq!(names_of(&tree, NodeKind::Copy), copies, "step {step}");
            let mut stars: Vec<String> = prefixes
                .iter()
                .map(|(p, _)| {
                    p.iter()
                        .map(|d| format!("{}.", *d as char))
                        .collect::<String>()
                        + "*"
                })
                .collect();
            stars.sort();
            assert_eq!(names_of(&tree, NodeKind::Prefix), stars, "step {step}");
            assert_eq!(stats, want_stats, "step {step}");
            // The digit index (with its overlay) answers like the walk.
            for n in &numbers {
                let l: Vec<&[u8]> = n.chunks(1).collect();
                assert!(matches!(
                    tree.lookup(&l, TYPE_NAPTR),
                    Lookup::Answer {
                        wildcard: false,
                        ..
                    }
                ));
            }
        }
        assert!(prefixes.iter().any(|_| true) && dump(&tree).iter().any(|d| d.1 == NodeKind::Copy));
    }
}
