//! Copy-on-write edits of a zone tree: one name's data set, prefix-route copies
//! refreshed.
//!
//! Owns: [`ZoneTree::with_data`] and [`ZoneTree::refresh_copies`] (the path from the
//! apex copied, everything else shared), the wildcard copies of prefix routes kept in
//! step (SPEC §7), the digit-index overlay kept in step, and the [`TreeStats`] delta an
//! edit makes.
//!
//! Must not touch: the lookup (`tree`), the bulk builder (`build`), or what a change
//! means for the zone's serial and the store (`zone`, `keeper`).

use super::build::TreeStats;
use super::node::{Node, NodeKind, RrSetIter};
use super::tree::{ZoneTree, digit_key, overlay_max};
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

    /// [`ZoneTree::with_data`] for many names at once (each named once): the paths are
    /// copied name by name, but the digit index's overlay is copied (and folded into
    /// the index when it outgrows [`overlay_max`]) once for the whole batch, not once a
    /// name — what applying a large IXFR needs.
    pub fn with_data_many(&self, edits: &[NameEdit<'_>], stats: &mut TreeStats) -> ZoneTree {
        let mut delta = StatsDelta::default();
        let mut apex = self.apex.clone();
        for (labels, data, kind) in edits {
            if let Some(a) = edit_path(&apex, labels, data, *kind, None, &mut delta, true) {
                apex = a;
            }
        }
        delta.apply(stats);
        let mut tree = ZoneTree {
            apex,
            digits: self.digits.clone(),
            overlay: self.overlay.clone(),
        };
        if stats.cuts == 0 {
            let changed: Vec<(u64, Option<Arc<[u8]>>)> = edits
                .iter()
                .filter(|(labels, ..)| !labels.is_empty())
                .filter_map(|(labels, ..)| {
                    let key = digit_key(labels)?;
                    Some((key, tree.node_at(labels).and_then(|n| n.data.clone())))
                })
                .collect();
            tree.index_changed(changed);
        }
        tree
    }

    /// Records changed digit names in the overlay, folding it into the index when it
    /// outgrows [`overlay_max`] (or there is no index yet).
    fn index_changed(&mut self, changed: Vec<(u64, Option<Arc<[u8]>>)>) {
        if changed.is_empty() {
            return;
        }
        let mut overlay = self.overlay.as_deref().cloned().unwrap_or_default();
        overlay.extend(changed);
        let cap = overlay_max(self.digits.as_ref().map_or(0, |d| d.len()));
        if overlay.len() > cap || self.digits.is_none() {
            let mut index = self.digits.as_deref().cloned().unwrap_or_default();
            for (k, v) in overlay.drain() {
                match v {
                    Some(d) => index.insert(k, d),
                    None => index.remove(&k),
                };
            }
            self.digits = Some(Arc::new(index));
            self.overlay = None;
        } else {
            self.overlay = Some(Arc::new(overlay));
        }
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
