//! Copy-on-write edits of a zone index: names' data set, prefix-route copies
//! refreshed.
//!
//! Owns: [`ZoneTree::with_data`], [`ZoneTree::with_data_many`],
//! [`ZoneTree::with_number_shapes`] (a batch of numbers given by their kept shapes, read
//! first in one ordered walk: [`ZoneTree::numbers_now`]) and
//! [`ZoneTree::refresh_copies`] (in the trie, the path from the apex copied, everything
//! else shared; in a compact zone, numbers' edits made in the number set's overlay, new
//! shapes added to a copy of the shape table), the stored wildcard copies of prefix
//! routes kept in step in a zone with delegations (SPEC §7; a compact zone derives them,
//! see `tree`), and the [`TreeStats`] delta an edit makes.
//!
//! Must not touch: the lookup (`tree`), the bulk builder (`build`), or what a change
//! means for the zone's serial and the store (`zone`, `keeper`).

use super::build::TreeStats;
use super::node::{Node, NodeKind, RrSetIter};
use super::shape::{Digits, ShapeError, ShapeId, ShapeTable, shape_sets};
use super::tree::{Numbers, ZoneTree};
use crate::name::{Label, TYPE_NAPTR, cmp_labels};
use std::sync::Arc;

/// One name's edit in [`ZoneTree::with_data_many`]: its labels below the apex (closest
/// first), its new data (`None`: nothing) and kind.
pub type NameEdit<'a> = (Vec<&'a [u8]>, Option<Arc<[u8]>>, NodeKind);

impl ZoneTree {
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
        self.with_data_many(&[(labels, data, kind)], stats)
    }

    /// [`ZoneTree::with_data`] for many names at once (each named once): the trie's
    /// paths are copied name by name, and a compact zone's numbers change in one copy of
    /// the number set's overlay (folded into a new base when it outgrows it) for the
    /// whole batch, not once a name: what applying a large IXFR or import needs.
    pub fn with_data_many(&self, edits: &[NameEdit<'_>], stats: &mut TreeStats) -> ZoneTree {
        let mut delta = StatsDelta::default();
        let mut apex = self.apex.clone();
        let stored_copies = self.numbers.is_none();
        let mut number_edits = Vec::new();
        for (labels, data, kind) in edits {
            let digits = Digits::leading(labels);
            if self.numbers.is_some() && !labels.is_empty() && digits.len() == labels.len() {
                number_edits.push((digits, data));
                continue;
            }
            let edit = Edit {
                data,
                kind: *kind,
                stored_copies,
            };
            if let Some(a) = edit_path(&apex, labels, &edit, None, &mut delta, true) {
                apex = a;
            }
        }
        let numbers = match &self.numbers {
            Some(n) if !number_edits.is_empty() => Some(edit_numbers(n, &number_edits, &mut delta)),
            other => other.clone(),
        };
        delta.apply(stats);
        ZoneTree { apex, numbers }
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
        if self.numbers.is_some() {
            // A compact zone derives its copies; there is nothing stored to refresh.
            return self.clone();
        }
        let labels: Vec<&[u8]> = below_apex.iter().map(|l| l.as_ref()).collect();
        let mut delta = StatsDelta::default();
        let apex = descend(&self.apex, &labels, None, &mut delta);
        delta.apply(stats);
        ZoneTree {
            apex,
            numbers: None,
        }
    }
}

/// The numbers of `n` with `edits` made (each number's new data, `None`: removed),
/// their shapes found in the table or added to a copy of it.
fn edit_numbers(
    n: &Numbers,
    edits: &[(Digits, &Option<Arc<[u8]>>)],
    delta: &mut StatsDelta,
) -> Numbers {
    let mut table: Option<ShapeTable> = None;
    let mut changes = Vec::with_capacity(edits.len());
    for (digits, data) in edits {
        let Some(key) = digits.key() else { continue };
        let old = n.data(*digits);
        let new = match data {
            None => None,
            Some(block) => {
                let shapes = table.as_ref().unwrap_or(&n.shapes);
                let found = match shapes.find(block, digits.as_bytes()) {
                    Ok(Some(id)) => Ok(id),
                    _ => table
                        .get_or_insert_with(|| (*n.shapes).clone())
                        .intern(block, digits.as_bytes()),
                };
                match found {
                    Ok(id) => Some(id.0),
                    Err(e) => {
                        // Only a full table (2^32 shapes) or a block the zone code did
                        // not pack gets here: the number keeps what it had.
                        tracing::error!(number = ?digits, "number not changed: {e}");
                        continue;
                    }
                }
            }
        };
        if let Some(old) = old {
            delta.rrsets(old.rrsets(), -1);
            delta.nodes -= 1;
        }
        if let Some(block) = data.as_ref().filter(|_| new.is_some()) {
            delta.rrsets(RrSetIter::plain(block), 1);
            delta.nodes += 1;
        }
        changes.push((key, new));
    }
    Numbers {
        set: n.set.with_edits(changes),
        shapes: table.map_or_else(|| n.shapes.clone(), Arc::new),
        lineage: n.lineage,
    }
}

/// What a batch of numbers' edits ([`ZoneTree::with_number_shapes`]) reads of a
/// compact tree first, in one ordered walk: each number's shape now, and which shapes
/// hold NAPTR records and nothing else.
pub struct NumbersNow {
    /// By position among the keys read: the number's shape now.
    shapes: Vec<Option<u32>>,
    /// By id, for the shapes those numbers hold: how many NAPTR records the shape
    /// holds, when it holds nothing else.
    naptr_only: std::collections::HashMap<u32, Option<usize>>,
}

impl NumbersNow {
    /// Whether the `i`-th number read holds NAPTR records and nothing else, or nothing.
    pub fn only_naptrs(&self, i: usize) -> bool {
        self.shapes[i].is_none_or(|s| self.naptrs_of(s).is_some())
    }

    /// The NAPTR records of shape `id`, when it holds nothing else.
    fn naptrs_of(&self, id: u32) -> Option<usize> {
        self.naptr_only.get(&id).copied().flatten()
    }
}

/// The records and NAPTR records a shape holds, from its RRsets.
fn shape_counts(sets: &[(u16, u16)]) -> (usize, usize) {
    let count = |naptr: bool| {
        let sets = sets.iter().filter(|s| !naptr || s.0 == TYPE_NAPTR);
        sets.map(|s| usize::from(s.1)).sum()
    };
    (count(false), count(true))
}

impl ZoneTree {
    /// Reads the numbers `keys` (ascending) for [`ZoneTree::with_number_shapes`];
    /// `None` when the tree is not compact.
    pub fn numbers_now(&self, keys: &[u64]) -> Option<NumbersNow> {
        let n = self.numbers.as_ref()?;
        let shapes = n.set.shapes_in_order(keys);
        let mut naptr_only = std::collections::HashMap::new();
        for &id in shapes.iter().flatten() {
            naptr_only.entry(id).or_insert_with(|| {
                let sets = n.shapes.shape(ShapeId(id)).map(shape_sets)?.ok()?;
                let (all, naptrs) = shape_counts(&sets);
                (all == naptrs).then_some(naptrs)
            });
        }
        Some(NumbersNow { shapes, naptr_only })
    }

    /// [`ZoneTree::with_data_many`] for numbers that hold NAPTR records and nothing
    /// else, or nothing ([`NumbersNow::only_naptrs`]): each edit is `(i, key, shape)`,
    /// the number's position among the keys `now` read, its key, and its whole new
    /// shape as a keeper keeps it (`None`: removed). No number is read again and no
    /// record decoded: at 10^8 numbers, reading each name three times and packing its
    /// records were most of a 10^6-number import's copy. `Err` for a damaged shape or a
    /// full table, with nothing changed.
    pub fn with_number_shapes<'s>(
        &self,
        now: &NumbersNow,
        edits: impl Iterator<Item = (usize, u64, Option<&'s [u8]>)>,
        stats: &mut TreeStats,
    ) -> Result<ZoneTree, ShapeError> {
        let Some(n) = &self.numbers else {
            return Ok(self.clone());
        };
        let mut delta = StatsDelta::default();
        let mut table: Option<ShapeTable> = None;
        // A batch holds few distinct shapes: each is found or interned once.
        let mut ids: std::collections::HashMap<&[u8], (u32, usize, usize)> = Default::default();
        let mut changes = Vec::new();
        for (i, key, shape) in edits {
            debug_assert!(now.only_naptrs(i), "number {key:x} holds more than NAPTRs");
            let before = now.shapes[i];
            let new = match shape {
                None => None,
                Some(bytes) => Some(match ids.get(bytes) {
                    Some(found) => *found,
                    None => {
                        let found = intern_kept(&n.shapes, &mut table, bytes)?;
                        *ids.entry(bytes).or_insert(found)
                    }
                }),
            };
            if let Some(naptrs) = before.and_then(|s| now.naptrs_of(s)) {
                delta.counted(naptrs, naptrs, -1);
            }
            if let Some((_, records, naptrs)) = new {
                delta.counted(records, naptrs, 1);
            }
            changes.push((key, before, new.map(|n| n.0)));
        }
        let numbers = Numbers {
            set: n.set.with_read_edits(changes),
            shapes: table.map_or_else(|| n.shapes.clone(), Arc::new),
            lineage: n.lineage,
        };
        delta.apply(stats);
        Ok(ZoneTree {
            apex: self.apex.clone(),
            numbers: Some(numbers),
        })
    }
}

/// The id of the kept shape `bytes` in `shapes`, or in `table` (a copy of it, made
/// when a shape must be added), with its record and NAPTR counts.
fn intern_kept(
    shapes: &ShapeTable,
    table: &mut Option<ShapeTable>,
    bytes: &[u8],
) -> Result<(u32, usize, usize), ShapeError> {
    let sets = shape_sets(bytes)?;
    let (records, naptrs) = shape_counts(&sets);
    let id = match table.as_ref().unwrap_or(shapes).id_of(bytes) {
        Some(ShapeId(id)) => id,
        None => {
            let table = table.get_or_insert_with(|| shapes.clone());
            table.intern_shape(bytes)?.0.0
        }
    };
    Ok((id, records, naptrs))
}

/// One name's change, as [`edit_path`] carries it down.
struct Edit<'e> {
    data: &'e Option<Arc<[u8]>>,
    kind: NodeKind,
    /// Whether the trie keeps prefix-route copies (a zone with delegations).
    stored_copies: bool,
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
            self.rrsets(RrSetIter::plain(d), sign);
        }
    }

    /// A number's data of `records` records, `naptrs` of them NAPTRs, added (`sign`
    /// 1) or removed (-1).
    fn counted(&mut self, records: usize, naptrs: usize, sign: isize) {
        self.records += sign * records as isize;
        self.naptr_records += sign * naptrs as isize;
        self.nodes += sign;
    }

    fn rrsets(&mut self, sets: RrSetIter<'_>, sign: isize) {
        for set in sets {
            self.records += sign * set.count as isize;
            if set.rtype == TYPE_NAPTR {
                self.naptr_records += sign * set.count as isize;
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
    edit: &Edit<'_>,
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
                Ok(i) => match edit_path(&kids[i], more, edit, below, delta, false) {
                    Some(c) => kids[i] = c,
                    None => {
                        kids.remove(i);
                    }
                },
                Err(i) if edit.data.is_some() => {
                    delta.nodes += 1;
                    let fresh = Node::empty(Label::new(first));
                    if let Some(c) = edit_path(&fresh, more, edit, below, delta, false) {
                        kids.insert(i, c);
                    }
                }
                Err(_) => {}
            }
            n.set_children(kids);
        }
        None => {
            // A derived copy's records are not the zone's own: not counted.
            if n.kind != NodeKind::Copy {
                delta.data(n.data.as_ref(), -1);
            }
            delta.data(edit.data.as_ref(), 1);
            n.data = edit.data.clone();
            n.kind = if edit.data.is_some() {
                edit.kind
            } else {
                NodeKind::Plain
            };
        }
    }
    if edit.stored_copies {
        fix_copy(&mut n, inherited, delta);
    }
    let only_copies = n.children().iter().all(|c| c.kind == NodeKind::Copy);
    if !apex && n.data.is_none() && only_copies {
        // Nothing left here; a copy below an empty name goes with it.
        delta.nodes -= n.children().len() as isize;
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
        delta.nodes -= 1;
        kids.remove(i);
    }
    if let Some(d) = want {
        let mut copy = Node::empty(Label::new(b"*"));
        copy.kind = NodeKind::Copy;
        copy.data = Some(d.clone());
        delta.nodes += 1;
        let at = kids
            .binary_search_by(|c| cmp_labels(c.label.as_bytes(), b"*"))
            .unwrap_or_else(|i| i);
        kids.insert(at, copy);
    }
    n.set_children(kids);
}
