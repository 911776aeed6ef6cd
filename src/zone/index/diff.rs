//! Which names differ between two trees: the walk an IXFR journal entry is computed
//! from (SPEC §12).
//!
//! Owns: [`ZoneTree::changed_names`], a merge of two tries in label order that skips
//! every subtree the two share. An edited copy shares all but the path from the apex
//! to the edit ([`ZoneTree::with_data`]), so comparing it with the tree it came from
//! costs the length of that path times the siblings along it, not the zone's size; two
//! trees built apart (a zone file reloaded) share nothing and are compared name by name.
//!
//! Must not touch: what a difference means in records (`zone::diff`), lookups (`tree`),
//! or edits (`edit`). Imports only `node` and `tree`.

use super::node::Node;
use super::tree::ZoneTree;
use crate::name::{Label, cmp_labels};
use std::cmp::Ordering;
use std::sync::Arc;

impl ZoneTree {
    /// Calls `visit(path, in_old, in_new)` for every name whose records differ between
    /// `old` and `new`, parents before children, siblings in label order. `path` is the
    /// name's labels below the apex (closest to the apex first); a side is `None` when
    /// the name has no records there. Names whose data block is the same (shared or
    /// equal bytes) are not visited, whatever their [`super::NodeKind`].
    pub fn changed_names<'a>(
        old: &'a ZoneTree,
        new: &'a ZoneTree,
        mut visit: impl FnMut(&[&'a Label], Option<&'a Node>, Option<&'a Node>),
    ) {
        let mut path = Vec::new();
        compare(Some(&old.apex), Some(&new.apex), &mut path, &mut visit);
    }
}

fn compare<'a>(
    old: Option<&'a Node>,
    new: Option<&'a Node>,
    path: &mut Vec<&'a Label>,
    visit: &mut impl FnMut(&[&'a Label], Option<&'a Node>, Option<&'a Node>),
) {
    let (a, b) = (old.and_then(|n| n.data()), new.and_then(|n| n.data()));
    let same_data = match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x[..] == y[..],
        _ => false,
    };
    if !same_data {
        visit(
            path,
            old.filter(|_| a.is_some()),
            new.filter(|_| b.is_some()),
        );
    }
    let kids = |n: Option<&'a Node>| n.map_or(&[][..], |n| n.children());
    let (ka, kb) = (kids(old), kids(new));
    if std::ptr::eq(ka, kb) {
        // The same shared children (or none on either side).
        return;
    }
    let (mut i, mut j) = (0, 0);
    while i < ka.len() || j < kb.len() {
        let order = match (ka.get(i), kb.get(j)) {
            (Some(x), Some(y)) => cmp_labels(x.label().as_bytes(), y.label().as_bytes()),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        let (x, y) = match order {
            Ordering::Less => (ka.get(i), None),
            Ordering::Greater => (None, kb.get(j)),
            Ordering::Equal => (ka.get(i), kb.get(j)),
        };
        i += usize::from(x.is_some());
        j += usize::from(y.is_some());
        let Some(label) = x.or(y).map(|n| n.label()) else {
            break;
        };
        path.push(label);
        compare(x, y, path, visit);
        path.pop();
    }
}
