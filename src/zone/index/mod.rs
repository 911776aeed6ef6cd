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
//!
//! Files, each importing only those listed before it:
//! - `node.rs`: [`Node`], [`NodeKind`], reading a node's packed RRsets ([`RrSet`],
//!   [`RrSetIter`], [`RdataIter`]);
//! - `tree.rs`: [`ZoneTree`], [`Lookup`], the digit index and its overlay, the lookup
//!   (the DNS and routing hot path), [`ZoneTree::walk`], [`ZoneTree::node_at`];
//! - `build.rs`: the bulk builder ([`ZoneBuilder`], [`BuildIssue`], [`Origin`]),
//!   [`TreeStats`], [`pack_rrsets`];
//! - `edit.rs`: the copy-on-write edits ([`ZoneTree::with_data`],
//!   [`ZoneTree::refresh_copies`]);
//! - `diff.rs`: which names differ between two trees ([`ZoneTree::changed_names`]),
//!   skipping what they share;
//! - `shape.rs`: number keys and the shape table of the compact form of number zones
//!   (imports nothing of the index; not yet used by the tree);
//! - `numbers.rs`: the numbers of a zone in compact form, keys and shape ids in a
//!   [`numbers::NumberSet`] (sorted base, position hash, overlay of edits; not yet used
//!   by the tree).
//!
//! This file holds only the module lines, the re-exports (every `zone::index::X` path)
//! and the tests: the files import each other (`super::node::Node`), never this one, so
//! there is no import cycle.

mod build;
mod diff;
mod edit;
mod node;
pub mod numbers;
pub mod shape;
mod tree;

pub use build::{BuildIssue, Origin, TreeStats, ZoneBuilder, pack_rrsets};
pub use node::{Node, NodeKind, RdataIter, RrSet, RrSetIter};
pub use tree::{DIGIT_KEY_MAX, DigitKeyHasher, Lookup, NodeData, ZoneTree, digit_key};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::{TYPE_A, TYPE_NAPTR, TYPE_SOA};

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
