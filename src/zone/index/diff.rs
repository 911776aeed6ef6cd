//! Which names differ between two copies of a zone index: the walk an IXFR journal
//! entry is computed from (SPEC §12).
//!
//! Owns: [`ZoneTree::changed_names`]. For tries, a merge in label order that skips every
//! subtree the two share: an edited copy shares all but the path from the apex to the
//! edit ([`ZoneTree::with_data`]), so comparing it with the tree it came from costs the
//! length of that path times the siblings along it, not the zone's size. For compact
//! zones, the trie part the same way, the numbers by the keys their sets say may have
//! changed ([`NumberSet::changed_keys`](super::numbers::NumberSet::changed_keys)), and
//! the derived prefix copies at the names on those changes' paths (or under a prefix
//! route that changed). Copies built apart (a zone file reloaded) are compared name by
//! name.
//!
//! Must not touch: what a difference means in records (`zone::diff`), lookups (`tree`),
//! or edits (`edit`). Imports `node`, `shape`, `numbers` and `tree`.

use super::node::{Node, NodeKind};
use super::numbers::NumberSet;
use super::shape::Digits;
use super::tree::{DIGIT_LABELS, NameData, Numbers, ZoneTree};
use crate::name::cmp_labels;
use std::cmp::Ordering;
use std::sync::Arc;

/// One changed name: its labels below the apex and its data on each side.
type Change<'a> = (Vec<&'a [u8]>, Option<NameData<'a>>, Option<NameData<'a>>);

impl ZoneTree {
    /// Calls `visit(path, in_old, in_new)` for every name whose records differ between
    /// `old` and `new`, in canonical order (parents before children, siblings in label
    /// order). `path` is the name's labels below the apex (closest to the apex first); a
    /// side is `None` when the name has no records there. Prefix-route copies count as
    /// names ([`NodeKind::Copy`]).
    pub fn changed_names<'a>(
        old: &'a ZoneTree,
        new: &'a ZoneTree,
        mut visit: impl FnMut(&[&[u8]], Option<NameData<'_>>, Option<NameData<'_>>),
    ) {
        match (&old.numbers, &new.numbers) {
            (None, None) => {
                let mut path = Vec::new();
                let cmp = (Some(&old.apex), Some(&new.apex), false);
                compare(cmp, &mut path, &mut |p, a, b| visit(p, a, b));
            }
            (Some(a), Some(b)) => {
                let mut changes = compact_changes(old, new, a, b);
                changes.sort_by(|x, y| cmp_paths(&x.0, &y.0));
                // A `*` that is a derived copy on one side and a stored wildcard on the
                // other comes once from each source: one change of that name.
                let mut merged: Vec<Change<'_>> = Vec::with_capacity(changes.len());
                for (path, x, y) in changes {
                    match merged.last_mut() {
                        Some(last) if last.0 == path => {
                            last.1 = last.1.or(x);
                            last.2 = last.2.or(y);
                        }
                        _ => merged.push((path, x, y)),
                    }
                }
                for (path, a, b) in merged {
                    let same = match (&a, &b) {
                        (Some(x), Some(y)) => x.same_as(y),
                        (None, None) => true,
                        _ => false,
                    };
                    if !same {
                        visit(&path, a, b);
                    }
                }
            }
            _ => by_walk(old, new, &mut visit),
        }
    }
}

/// Canonical order of two names given as labels below the apex, closest first.
pub(super) fn cmp_paths(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match cmp_labels(x, y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// The trie part of [`ZoneTree::changed_names`]: `(old, new, kinds)`, where `kinds`
/// also reports a name whose data stayed but whose kind went to or from
/// [`NodeKind::Prefix`] (a compact zone derives copies from that kind, so the copies
/// below it must be looked at).
fn compare<'a>(
    (old, new, kinds): (Option<&'a Node>, Option<&'a Node>, bool),
    path: &mut Vec<&'a [u8]>,
    visit: &mut impl FnMut(&[&'a [u8]], Option<NameData<'a>>, Option<NameData<'a>>),
) {
    let (a, b) = (old.and_then(|n| n.data()), new.and_then(|n| n.data()));
    let prefix = |n: Option<&Node>| n.is_some_and(|n| n.kind() == NodeKind::Prefix);
    let same_data = match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            (Arc::ptr_eq(x, y) || x[..] == y[..]) && !(kinds && prefix(old) != prefix(new))
        }
        _ => false,
    };
    if !same_data {
        let side =
            |n: Option<&'a Node>, d: Option<&'a Arc<[u8]>>| Some(NameData::plain(d?, n?.kind()));
        visit(path, side(old, a), side(new, b));
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
        let Some(label) = x.or(y).map(|n| n.label().as_bytes()) else {
            break;
        };
        path.push(label);
        compare((x, y, kinds), path, visit);
        path.pop();
    }
}

/// The labels of a number key.
fn number_path(key: u64) -> Vec<&'static [u8]> {
    Digits::of_key(key)
        .as_bytes()
        .iter()
        .map(|d| DIGIT_LABELS[usize::from(d - b'0')])
        .collect()
}

/// The changes between two compact copies (see the module header), unsorted.
fn compact_changes<'a>(
    old: &'a ZoneTree,
    new: &'a ZoneTree,
    a: &'a Numbers,
    b: &'a Numbers,
) -> Vec<Change<'a>> {
    let mut changes: Vec<Change<'a>> = Vec::new();
    let mut path = Vec::new();
    let cmp = (Some(&old.apex), Some(&new.apex), true);
    compare(cmp, &mut path, &mut |p, x, y| {
        changes.push((p.to_vec(), x, y))
    });
    let same_ids = a.lineage == b.lineage;
    let differ = |x: &Option<NameData<'_>>, y: &Option<NameData<'_>>| match (x, y) {
        (None, None) => false,
        (Some(x), Some(y)) => !x.same_as(y),
        _ => true,
    };
    let sides: Box<dyn Iterator<Item = (u64, Option<u32>, Option<u32>)> + 'a> =
        match NumberSet::changed_keys(&a.set, &b.set) {
            Some(keys) => {
                // Each side read in one ordered walk, not a random read a key.
                let (sa, sb) = (a.set.shapes_in_order(&keys), b.set.shapes_in_order(&keys));
                let sides = keys.into_iter().zip(sa).zip(sb);
                Box::new(sides.map(|((key, x), y)| (key, x, y)))
            }
            // Built apart: every number of both, merged in key order.
            None => Box::new(both_sides(a.set.iter(), b.set.iter())),
        };
    for (key, sa, sb) in sides {
        if same_ids && sa == sb {
            continue;
        }
        let digits = Digits::of_key(key);
        let x = sa.and_then(|s| a.data_of(digits, s));
        let y = sb.and_then(|s| b.data_of(digits, s));
        if differ(&x, &y) {
            changes.push((number_path(key), x, y));
        }
    }
    let copies = copy_changes(old, new, &changes);
    changes.extend(copies);
    changes
}

/// Two sets' numbers, each in key order, merged: `(key, shape in a, shape in b)`.
fn both_sides<'s>(
    a: impl Iterator<Item = (u64, u32)> + 's,
    b: impl Iterator<Item = (u64, u32)> + 's,
) -> impl Iterator<Item = (u64, Option<u32>, Option<u32>)> + 's {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.0.cmp(&y.0),
        };
        let x = a.next_if(|_| order != Ordering::Greater);
        let y = b.next_if(|_| order != Ordering::Less);
        let key = x.or(y).map(|e| e.0)?;
        Some((key, x.map(|e| e.1), y.map(|e| e.1)))
    })
}

/// The derived prefix copies that differ between two compact copies, given the other
/// changes between them: at the names on those changes' paths below a prefix route, and
/// everywhere under a prefix route that changed.
fn copy_changes<'a>(
    old: &'a ZoneTree,
    new: &'a ZoneTree,
    changes: &[Change<'a>],
) -> Vec<Change<'a>> {
    let mut candidates: Vec<Vec<&'a [u8]>> = Vec::new();
    let mut subtrees: Vec<Vec<&'a [u8]>> = Vec::new();
    for (path, x, y) in changes {
        let prefix_star = path.last() == Some(&&b"*"[..])
            && [x, y]
                .iter()
                .any(|d| d.is_some_and(|d| d.kind() == NodeKind::Prefix));
        if prefix_star {
            subtrees.push(path[..path.len() - 1].to_vec());
        }
        // Copies need a prefix route strictly above them.
        let top = shallowest_prefix(old, path).min(shallowest_prefix(new, path));
        for len in top + 1..=path.len() {
            candidates.push(path[..len].to_vec());
        }
    }
    candidates.sort_by(|x, y| cmp_paths(x, y));
    candidates.dedup();
    let mut out = Vec::new();
    let same = |x: Option<&Arc<[u8]>>, y: Option<&Arc<[u8]>>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x[..] == y[..],
        _ => false,
    };
    let side = |d: Option<&'a Arc<[u8]>>| d.map(|d| NameData::plain(d, NodeKind::Copy));
    let under = |p: &[&[u8]]| {
        subtrees
            .iter()
            .any(|s| p.len() > s.len() && p.starts_with(s))
    };
    for ent in candidates.iter().filter(|c| !under(c)) {
        let (x, y) = (old.copy_at(ent), new.copy_at(ent));
        if !same(x, y) {
            let mut path = ent.clone();
            path.push(b"*");
            out.push((path, side(x), side(y)));
        }
    }
    subtrees.sort_by(|x, y| cmp_paths(x, y));
    subtrees.dedup();
    for (i, top) in subtrees.iter().enumerate() {
        if subtrees[..i]
            .iter()
            .any(|s| top.len() > s.len() && top.starts_with(s))
        {
            continue;
        }
        let (xs, ys) = (copies_under(old, top), copies_under(new, top));
        merge_copies(xs, ys, &mut out);
    }
    out
}

/// How many labels down the shallowest prefix route on `path` is (its name's length),
/// or `path.len()` when there is none above the name.
fn shallowest_prefix(tree: &ZoneTree, path: &[&[u8]]) -> usize {
    let mut node = tree.apex();
    for (depth, label) in path.iter().enumerate() {
        if depth < path.len()
            && node
                .child(b"*")
                .is_some_and(|c| c.kind() == NodeKind::Prefix)
        {
            return depth;
        }
        match node.child(label) {
            Some(c) => node = c,
            None => break,
        }
    }
    path.len()
}

/// Every derived copy strictly below the name `top` (labels below the apex; its own
/// copy is not in its subtree's care), with its path, in canonical order.
fn copies_under<'a>(tree: &'a ZoneTree, top: &[&[u8]]) -> Vec<(Vec<&'a [u8]>, NameData<'a>)> {
    let mut out = Vec::new();
    tree.walk_under(top, |path, data| {
        if data.kind() == NodeKind::Copy && path.len() > top.len() + 1 {
            out.push((path.to_vec(), data));
        }
    });
    out
}

fn merge_copies<'a>(
    xs: Vec<(Vec<&'a [u8]>, NameData<'a>)>,
    ys: Vec<(Vec<&'a [u8]>, NameData<'a>)>,
    out: &mut Vec<Change<'a>>,
) {
    let (mut xs, mut ys) = (xs.into_iter().peekable(), ys.into_iter().peekable());
    loop {
        let order = match (xs.peek(), ys.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => cmp_paths(&x.0, &y.0),
        };
        match order {
            Ordering::Less => {
                let (p, d) = xs.next().expect("peeked");
                out.push((p, Some(d), None));
            }
            Ordering::Greater => {
                let (p, d) = ys.next().expect("peeked");
                out.push((p, None, Some(d)));
            }
            Ordering::Equal => {
                let ((p, x), (_, y)) = (xs.next().expect("peeked"), ys.next().expect("peeked"));
                if !x.same_as(&y) {
                    out.push((p, Some(x), Some(y)));
                }
            }
        }
    }
}

/// Two copies of different forms compared name by name through their walks.
fn by_walk(
    old: &ZoneTree,
    new: &ZoneTree,
    visit: &mut impl FnMut(&[&[u8]], Option<NameData<'_>>, Option<NameData<'_>>),
) {
    type Named = (Vec<Vec<u8>>, Vec<u8>, NodeKind);
    let collect = |t: &ZoneTree| {
        let mut v: Vec<Named> = Vec::new();
        t.walk(|path, data| {
            v.push((
                path.iter().map(|l| l.to_vec()).collect(),
                data.to_block(),
                data.kind(),
            ));
        });
        v
    };
    let (xs, ys) = (collect(old), collect(new));
    let (mut i, mut j) = (0, 0);
    fn labels(n: &Named) -> Vec<&[u8]> {
        n.0.iter().map(|l| &l[..]).collect()
    }
    while i < xs.len() || j < ys.len() {
        let order = match (xs.get(i), ys.get(j)) {
            (Some(x), Some(y)) => cmp_paths(&labels(x), &labels(y)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        let (x, y) = match order {
            Ordering::Less => (xs.get(i), None),
            Ordering::Greater => (None, ys.get(j)),
            Ordering::Equal => (xs.get(i), ys.get(j)),
        };
        i += usize::from(x.is_some());
        j += usize::from(y.is_some());
        if let (Some(x), Some(y)) = (x, y)
            && x.1 == y.1
        {
            continue;
        }
        let path = labels(x.or(y).expect("one side"));
        fn side(n: Option<&Named>) -> Option<NameData<'_>> {
            n.map(|n| NameData::plain(&n.1, n.2))
        }
        visit(&path, side(x), side(y));
    }
}
