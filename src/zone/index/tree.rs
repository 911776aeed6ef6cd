//! The index of one zone (a trie, and the numbers in compact form) and its RFC 1034
//! §4.3.2 / RFC 4592 lookup: the DNS and routing hot path.
//!
//! Owns: [`ZoneTree`] (apex, [`Numbers`]), [`Lookup`], [`NameData`],
//! [`ZoneTree::lookup`], [`ZoneTree::walk`], [`ZoneTree::name_data`],
//! [`ZoneTree::node_at`], the virtual wildcard copies of prefix routes in a compact zone
//! ([`ZoneTree::copy_at`]) and the answer from one name's RRsets.
//!
//! **Two forms.** A zone without delegations below its apex is *compact*: every name
//! made of 1–15 single-digit labels (every ENUM number) keeps its RRsets in
//! [`Numbers`] (a key and a shape id, see `numbers` and `shape`), not in the trie; the
//! trie keeps the rest (apex, wildcards, prefix routes, other names) and the empty
//! non-terminals on the way to them. The copies of a prefix route's wildcard that an
//! empty non-terminal under it needs (SPEC §7, [`NodeKind::Copy`]) are not stored there:
//! the lookup and the walk derive them, so a number edit never copies a subtree. A zone
//! with delegations below its apex keeps everything in the trie, copies included (a
//! cut's occlusion is a trie walk), as before the compact form existed.
//!
//! Must not touch: how a tree is changed (`edit`) or built (`build`); nodes' layout
//! (`node`); shapes' layout (`shape`). Imports `node`, `shape` and `numbers`.

use super::node::{Node, NodeKind, RrSet, RrSetIter};
use super::numbers::{NumberSet, common_digits};
use super::shape::{Digits, MAX_KEY_DIGITS, ShapeId, ShapeTable, key_len};
use crate::name::{TYPE_CNAME, TYPE_DS, TYPE_NS, cmp_labels};
use std::sync::Arc;

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

/// The index of one zone, rooted at its apex.
#[derive(Clone, Debug)]
pub struct ZoneTree {
    pub(super) apex: Node,
    /// The numbers, when the zone is compact (see the module header).
    pub(super) numbers: Option<Numbers>,
}

/// The numbers of a compact zone and the shapes they point at.
#[derive(Clone, Debug)]
pub struct Numbers {
    pub(super) set: NumberSet,
    pub(super) shapes: Arc<ShapeTable>,
    /// Copies of one zone whose tables share a lineage give a shape id one meaning:
    /// edits only add shapes to a copy of the table, they never free or reuse ids.
    pub(super) lineage: u64,
}

/// A lineage for a newly built shape table.
pub(super) fn new_lineage() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The digit labels, for paths of numbers.
pub(super) const DIGIT_LABELS: [&[u8]; 10] =
    [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];

impl Numbers {
    /// The RRsets of the number `digits`, when the set holds it.
    #[inline]
    pub(super) fn data(&self, digits: Digits) -> Option<NameData<'_>> {
        let shape = self.set.get(digits.key()?)?;
        self.data_of(digits, shape)
    }

    #[inline]
    pub(super) fn data_of(&self, digits: Digits, shape: u32) -> Option<NameData<'_>> {
        Some(NameData {
            data: self.shapes.shape(ShapeId(shape))?,
            number: digits,
            kind: NodeKind::Plain,
        })
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Distinct shapes the numbers point at (and those edits left behind).
    pub fn shape_count(&self) -> usize {
        self.shapes.shape_count()
    }

    /// Heap bytes of the number set (keys, shape ids, slots, overlay).
    pub fn set_bytes(&self) -> usize {
        self.set.bytes()
    }

    /// Heap bytes of the shape table.
    pub fn shape_bytes(&self) -> usize {
        self.shapes.bytes()
    }

    /// Every number's key and shape id, in key order (the names' canonical order).
    pub fn keys(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.set.iter()
    }

    /// The shape table the ids of [`Numbers::keys`] name.
    pub fn shapes(&self) -> &ShapeTable {
        &self.shapes
    }
}

/// One name's RRsets: a trie node's packed block, or a number's shape read with its
/// digits.
#[derive(Clone, Copy, Debug)]
pub struct NameData<'a> {
    data: &'a [u8],
    number: Digits,
    kind: NodeKind,
}

impl<'a> NameData<'a> {
    /// A plain packed block (see [`pack_rrsets`](super::pack_rrsets)).
    pub fn plain(data: &'a [u8], kind: NodeKind) -> Self {
        NameData {
            data,
            number: Digits::NONE,
            kind,
        }
    }

    pub fn rrsets(&self) -> RrSetIter<'a> {
        RrSetIter {
            data: self.data,
            number: self.number,
        }
    }

    pub fn rrset(&self, rtype: u16) -> Option<RrSet<'a>> {
        self.rrsets().find(|r| r.rtype == rtype)
    }

    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The RRsets as a plain packed block (a number's templates filled in).
    pub fn to_block(&self) -> Vec<u8> {
        if self.number.is_empty() {
            return self.data.to_vec();
        }
        let mut out = Vec::with_capacity(self.data.len() + 64);
        for set in self.rrsets() {
            out.extend_from_slice(&set.rtype.to_be_bytes());
            out.extend_from_slice(&set.ttl.to_be_bytes());
            let count_at = out.len();
            out.extend_from_slice(&[0, 0]);
            // The count written is the records read: a template that could not be
            // filled ends the set early rather than leave a count the bytes lack.
            let mut count = 0u16;
            for rd in set.rdatas() {
                out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                out.extend_from_slice(&rd);
                count += 1;
            }
            out[count_at..count_at + 2].copy_from_slice(&count.to_be_bytes());
        }
        out
    }

    /// Whether two names' data are the same records (same shape bytes for the same
    /// number, or the same plain bytes).
    pub fn same_as(&self, other: &NameData<'_>) -> bool {
        if self.number == other.number {
            return self.data == other.data;
        }
        self.to_block() == other.to_block()
    }
}

impl ZoneTree {
    pub fn apex(&self) -> &Node {
        &self.apex
    }

    /// The numbers in compact form, when the zone is compact.
    pub fn numbers(&self) -> Option<&Numbers> {
        self.numbers.as_ref()
    }

    /// Looks up a name given as labels below the apex, closest to the apex first
    /// (`["4","4","1","6"]` for `6.1.4.4.<origin>`), and an RR type.
    #[inline]
    pub fn lookup<L: AsRef<[u8]>>(&self, below_apex: &[L], qtype: u16) -> Lookup<'_> {
        match &self.numbers {
            Some(numbers) => self.lookup_compact(numbers, below_apex, qtype),
            None => self.lookup_trie(below_apex, qtype),
        }
    }

    /// The lookup of a zone with delegations: the trie holds every name.
    fn lookup_trie<L: AsRef<[u8]>>(&self, below_apex: &[L], qtype: u16) -> Lookup<'_> {
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

    /// The lookup of a compact zone (no delegations): a number is one hash probe; any
    /// other name walks the trie, and where the trie ends the numbers may continue the
    /// path (empty non-terminals made by numbers, RFC 4592 §2.2.2).
    #[inline]
    fn lookup_compact<'a, L: AsRef<[u8]>>(
        &'a self,
        numbers: &'a Numbers,
        below_apex: &[L],
        qtype: u16,
    ) -> Lookup<'a> {
        let digits = Digits::leading(below_apex);
        if digits.len() == below_apex.len()
            && let Some(data) = numbers.data(digits)
        {
            return answer_in(data.rrsets(), qtype, false);
        }
        let mut node = &self.apex;
        // The data of the nearest prefix route strictly above `node`.
        let mut above: Option<&Arc<[u8]>> = None;
        for (depth, label) in below_apex.iter().enumerate() {
            match node.child(label.as_ref()) {
                Some(child) => {
                    above = node.prefix_data().or(above);
                    node = child;
                }
                None => {
                    let end = TrieEnd { node, depth, above };
                    // Where the query has `*` labels (a name has at most 127 labels).
                    let stars = below_apex
                        .iter()
                        .take(128)
                        .enumerate()
                        .filter(|(_, l)| l.as_ref() == b"*")
                        .fold(0u128, |m, (i, _)| m | (1 << i));
                    let query = (below_apex.len(), digits, stars);
                    return numbers.past_trie(end, query, qtype);
                }
            }
        }
        match &node.data {
            Some(_) => answer_in(node.rrsets(), qtype, false),
            // An empty non-terminal of the trie that is not a number.
            None => Lookup::NoData { wildcard: false },
        }
    }

    /// [`ZoneTree::walk`] of the trie alone: in a compact zone, every name but the
    /// numbers (and no derived copies, which a compact zone does not store).
    pub fn walk_trie<'a>(&'a self, mut visit: impl FnMut(&[&'a [u8]], NameData<'a>)) {
        walk_trie(&self.apex, &mut Vec::new(), &mut visit);
    }

    /// Visits every name with data in canonical order (a name before the names below
    /// it, siblings in label order), with its labels below the apex (closest to the apex
    /// first), prefix-route copies included ([`NodeKind::Copy`]).
    pub fn walk<'a>(&'a self, mut visit: impl FnMut(&[&'a [u8]], NameData<'a>)) {
        let mut path = Vec::new();
        match &self.numbers {
            Some(numbers) => walk_compact(numbers, &self.apex, &mut path, None, &mut visit),
            None => walk_trie(&self.apex, &mut path, &mut visit),
        }
    }

    /// [`ZoneTree::walk`] of the names at and below `top` (labels below the apex).
    pub fn walk_under<'a>(
        &'a self,
        top: &[&[u8]],
        mut visit: impl FnMut(&[&'a [u8]], NameData<'a>),
    ) {
        let mut node = &self.apex;
        let mut above: Option<&'a Arc<[u8]>> = None;
        let mut path: Vec<&'a [u8]> = Vec::with_capacity(top.len());
        for label in top {
            match node.child(label) {
                Some(child) => {
                    above = node.prefix_data().or(above);
                    path.push(child.label.as_bytes());
                    node = child;
                }
                None => {
                    // Past the trie only numbers can be there.
                    let digits = Digits::leading(top);
                    if let Some(numbers) = &self.numbers
                        && digits.len() == top.len()
                    {
                        let inherited = node.prefix_data().or(above);
                        walk_numbers(numbers, digits, inherited, &mut visit);
                    }
                    return;
                }
            }
        }
        match &self.numbers {
            Some(numbers) => walk_compact(numbers, node, &mut path, above, &mut visit),
            None => walk_trie(node, &mut path, &mut visit),
        }
    }

    /// The data the name `below_apex` owns itself (no wildcard; in a compact zone no
    /// derived prefix copy either), when it has any.
    pub fn name_data<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<NameData<'_>> {
        if let Some(numbers) = &self.numbers {
            let digits = Digits::leading(below_apex);
            if digits.len() == below_apex.len() && !digits.is_empty() {
                return numbers.data(digits);
            }
        }
        let node = self.node_at(below_apex)?;
        Some(NameData::plain(node.data.as_deref()?, node.kind))
    }

    /// The trie node of exactly this name (no wildcard), when it exists. In a compact
    /// zone numbers have no node: use [`ZoneTree::name_data`] for a name's data.
    pub fn node_at<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<&Node> {
        let mut node = &self.apex;
        for l in below_apex {
            node = node.child(l.as_ref())?;
        }
        Some(node)
    }

    /// In a compact zone, the data of the prefix-route copy `below_apex.*` derives:
    /// the nearest managed prefix route's above the name, when the name is an empty
    /// non-terminal without a wildcard of its own (what the trie of a zone with
    /// delegations stores as a [`NodeKind::Copy`] node).
    pub fn copy_at<L: AsRef<[u8]>>(&self, below_apex: &[L]) -> Option<&Arc<[u8]>> {
        let numbers = self.numbers.as_ref()?;
        if below_apex.is_empty() {
            return None;
        }
        let mut node = &self.apex;
        let mut above: Option<&Arc<[u8]>> = None;
        let mut depth = 0;
        for l in below_apex {
            match node.child(l.as_ref()) {
                Some(child) => {
                    above = node.prefix_data().or(above);
                    node = child;
                    depth += 1;
                }
                None => break,
            }
        }
        let digits = Digits::leading(below_apex);
        let all_digits = digits.len() == below_apex.len();
        let is_number = all_digits && numbers.data(digits).is_some();
        if depth == below_apex.len() {
            // In the trie: an empty non-terminal unless it has data or is a number.
            let ent = node.data.is_none() && !is_number;
            return above.filter(|_| ent && node.child(b"*").is_none());
        }
        // Past the trie: only numbers can make it exist, and it has no `*` of its own.
        let key = digits.key().filter(|_| all_digits)?;
        let ent = !is_number && numbers.set.has_below(key);
        node.prefix_data().or(above).filter(|_| ent)
    }
}

/// Where a compact lookup left the trie: the deepest node on the query's path, its
/// depth, and the data of the nearest prefix route strictly above it.
struct TrieEnd<'a> {
    node: &'a Node,
    depth: usize,
    above: Option<&'a Arc<[u8]>>,
}

impl Numbers {
    /// The answer for a name the trie ends above (at `end`), given as its length in
    /// labels, the digits its leading labels spell and which of its labels are `*` (bit
    /// i: label i below the apex); the name is not a number itself.
    #[inline]
    fn past_trie<'a>(
        &'a self,
        end: TrieEnd<'a>,
        (len, digits, stars): (usize, Digits, u128),
        qtype: u16,
    ) -> Lookup<'a> {
        let TrieEnd { node, depth, above } = end;
        // The derived copy `*` under the closest encloser answers. A query whose next
        // label is that `*` reaches the copy as a name, as it reaches a stored copy in a
        // zone with delegations: exactly (no wildcard synthesis) or, below it, nothing
        // (the copy has no `*` of its own).
        let copy = |data: &'a Arc<[u8]>, encloser: usize| {
            let through = encloser < 128 && stars & (1 << encloser) != 0;
            match (through, encloser + 1 == len) {
                (false, _) => answer_in(RrSetIter::plain(data), qtype, true),
                (true, true) => answer_in(RrSetIter::plain(data), qtype, false),
                (true, false) => Lookup::NxDomain,
            }
        };
        let star = node.child(b"*");
        let inherited = node.prefix_data().or(above);
        // The common miss (a number nobody ported here) asks no ordered question: with
        // no wildcard to find, and the name too long to be an empty non-terminal, the
        // numbers cannot turn it into anything but NXDOMAIN.
        let may_continue = digits.len() > depth;
        if star.is_none() && inherited.is_none() && (!may_continue || len >= self.set.max_len()) {
            return Lookup::NxDomain;
        }
        let reach = match digits.key() {
            Some(key) if may_continue => self.set.longest_prefix(key),
            _ => 0,
        };
        if reach > depth {
            // The closest encloser is a name the numbers make (RFC 4592 §3.3.1).
            if reach == len {
                return Lookup::NoData { wildcard: false };
            }
            if self.data(digits.prefix(reach)).is_some() {
                // A number: its `*`, if it had one, would be in the trie.
                return Lookup::NxDomain;
            }
            // An empty non-terminal under a prefix route: its derived copy answers.
            return match inherited {
                Some(data) => copy(data, reach),
                None => Lookup::NxDomain,
            };
        }
        if let Some(star) = star {
            return answer_in(star.rrsets(), qtype, true);
        }
        let is_number = digits.len() >= depth && self.data(digits.prefix(depth)).is_some();
        match above {
            Some(data) if depth > 0 && node.data.is_none() && !is_number => copy(data, depth),
            _ => Lookup::NxDomain,
        }
    }
}

/// [`ZoneTree::walk`] of a zone with delegations: the trie alone, copies stored.
fn walk_trie<'a>(
    node: &'a Node,
    path: &mut Vec<&'a [u8]>,
    visit: &mut impl FnMut(&[&'a [u8]], NameData<'a>),
) {
    if let Some(data) = &node.data {
        visit(path, NameData::plain(data, node.kind));
    }
    for child in node.children() {
        path.push(child.label.as_bytes());
        walk_trie(child, path, visit);
        path.pop();
    }
}

/// One step of a compact walk below a trie node, in label order.
enum Step<'a> {
    Trie(&'a Node),
    /// A digit child made only by numbers: their subtree.
    Numbers(u8),
    /// The derived copy `*` under an empty non-terminal.
    Copy(&'a Arc<[u8]>),
}

/// [`ZoneTree::walk`] of a compact zone from the trie node `node` at `path`: its data
/// (or its number's), then its children, number-made subtrees and derived copy merged in
/// label order. `above` is the data of the nearest prefix route strictly above it.
fn walk_compact<'a>(
    numbers: &'a Numbers,
    node: &'a Node,
    path: &mut Vec<&'a [u8]>,
    above: Option<&'a Arc<[u8]>>,
    visit: &mut impl FnMut(&[&'a [u8]], NameData<'a>),
) {
    let digits = Digits::leading(path);
    let all_digits = digits.len() == path.len();
    let number = (all_digits && !path.is_empty())
        .then(|| numbers.data(digits))
        .flatten();
    if let Some(data) = &node.data {
        visit(path, NameData::plain(data, node.kind));
    } else if let Some(data) = number {
        visit(path, data);
    }
    let below = node.prefix_data().or(above);
    let mut steps: Vec<(&[u8], Step<'a>)> = node
        .children()
        .iter()
        .map(|c| (c.label.as_bytes(), Step::Trie(c)))
        .collect();
    let ent = !path.is_empty() && node.data.is_none() && number.is_none();
    if let Some(data) = above.filter(|_| ent && node.child(b"*").is_none()) {
        steps.push((b"*", Step::Copy(data)));
    }
    if all_digits {
        for d in 0..10u8 {
            let label = DIGIT_LABELS[usize::from(d)];
            let key = digits.with(b'0' + d).and_then(|c| c.key());
            if node.child(label).is_none() && key.is_some_and(|k| numbers.set.exists_at(k)) {
                steps.push((label, Step::Numbers(d)));
            }
        }
    }
    steps.sort_by(|a, b| cmp_labels(a.0, b.0));
    for (label, step) in steps {
        match step {
            Step::Trie(child) => {
                path.push(label);
                walk_compact(numbers, child, path, below, visit);
                path.pop();
            }
            Step::Copy(data) => {
                path.push(b"*");
                visit(path, NameData::plain(data, NodeKind::Copy));
                path.pop();
            }
            Step::Numbers(d) => {
                if let Some(child) = digits.with(b'0' + d) {
                    walk_numbers(numbers, child, below, visit);
                }
            }
        }
    }
}

/// The numbers at and below the name `prefix` (digits, closest to the apex first; no
/// trie node there or below), in key order, each empty non-terminal among them followed
/// by its derived copy of `inherited` (the nearest prefix route above `prefix`).
fn walk_numbers<'a>(
    numbers: &'a Numbers,
    prefix: Digits,
    inherited: Option<&'a Arc<[u8]>>,
    visit: &mut impl FnMut(&[&'a [u8]], NameData<'a>),
) {
    let Some(from) = prefix.key() else {
        return;
    };
    let to = from + (1u64 << (4 * (MAX_KEY_DIGITS - prefix.len())));
    let mut labels: [&'a [u8]; MAX_KEY_DIGITS + 1] = [b""; MAX_KEY_DIGITS + 1];
    let mut previous: Option<u64> = None;
    for (key, shape) in numbers.set.range(from, to) {
        let digits = Digits::of_key(key);
        for (slot, d) in labels.iter_mut().zip(digits.as_bytes()) {
            *slot = DIGIT_LABELS[usize::from(d - b'0')];
        }
        let len = key_len(key);
        // The names this key enters that the one before did not: each is an empty
        // non-terminal (a number there would have come between the two).
        let shared = previous.map_or(prefix.len() - 1, |p| common_digits(p, key));
        if let Some(data) = inherited {
            for depth in shared + 1..len {
                labels[depth] = b"*";
                visit(&labels[..=depth], NameData::plain(data, NodeKind::Copy));
                labels[depth] = DIGIT_LABELS[usize::from(digits.as_bytes()[depth] - b'0')];
            }
        }
        if let Some(data) = numbers.data_of(digits, shape) {
            visit(&labels[..len], data);
        }
        previous = Some(key);
    }
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
