//! The in-memory zone index: a label trie built in bulk, read without locks, and the
//! numbers of a zone without delegations in compact form.
//!
//! Owns: the node layout, the bulk builder ([`ZoneBuilder`]), per-node RRset packing,
//! the compact form of numbers (keys, shapes, the number set), and the RFC 1034 §4.3.2 /
//! RFC 4592 lookup ([`ZoneTree::lookup`]): exact matches, wildcards, empty
//! non-terminals (which hide wildcards), NXDOMAIN versus NODATA, CNAME and delegation
//! cuts.
//!
//! Must not touch: master-file syntax (see `master`), which zone a name belongs to (see
//! `zone::ZoneSet`), or what the records mean (DDDS).
//!
//! Why not hickory's in-memory authority: its negative answers scan the zone and its
//! wildcard handling deviates from RFC 4592 (see issue 2). Layout: every node holds its
//! children inline in one shared `Arc<[Node]>`, sorted, so a lookup is one binary search
//! per label and a later single-name update can copy just the path from the apex
//! (siblings are shared by reference count). RRsets of a node live in one packed byte
//! block: `[type u16][ttl u32][count u16]` then `count × [len u16][rdata]`, with rdata in
//! uncompressed wire form, ready to be copied into a DNS answer. In a zone without
//! delegations below its apex, every number (1–15 single-digit labels) is instead a
//! 12-byte entry of a sorted number set pointing at a shared *shape*: the block with the
//! number cut out of its NAPTR regexps, filled back in as records are read ([`Rdata`]).
//! At 10^8 numbers a node and a block each would cost ~330 bytes a number; the entry
//! and its copy in the set's hash table cost ~28 (see `tree` for the two forms).
//!
//! Files, each importing only those listed before it:
//! - `shape.rs`: number keys and [`Digits`](shape::Digits), the shape table, reading a
//!   shape's records ([`Rdata`]);
//! - `node.rs`: [`Node`], [`NodeKind`], reading a node's packed RRsets or a number's
//!   shape ([`RrSet`], [`RrSetIter`], [`RdataIter`]);
//! - `numbers.rs`: the number set ([`numbers::NumberSet`]: sorted base, a hash table of
//!   its entries, overlay of edits, folds, ordered questions);
//! - `tree.rs`: [`ZoneTree`] and its two forms, [`Numbers`], [`Lookup`], [`NameData`],
//!   the lookup (the DNS and routing hot path), walks, derived prefix copies;
//! - `build.rs`: the bulk builder ([`ZoneBuilder`], [`BuildIssue`], [`Origin`]),
//!   [`TreeStats`], [`pack_rrsets`];
//! - `edit.rs`: the copy-on-write edits ([`ZoneTree::with_data`],
//!   [`ZoneTree::refresh_copies`]);
//! - `diff.rs`: which names differ between two copies ([`ZoneTree::changed_names`]),
//!   skipping what they share.
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
pub use edit::{NameEdit, NumbersNow};
pub use node::{Node, NodeKind, RdataIter, RrSet, RrSetIter};
pub use numbers::DigitKeyHasher;
pub use shape::Rdata;
pub use tree::{Lookup, NameData, Numbers, ZoneTree};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::{Label, TYPE_A, TYPE_NAPTR, TYPE_SOA};
    use edit::NameEdit;
    use std::sync::Arc;

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
    fn numbers_keep_leading_zeros_apart() {
        let t = tree(&[
            (&["0", "1"], TYPE_NAPTR),
            (&["1"], TYPE_A),
            (&["0", "0"], TYPE_NAPTR),
        ]);
        assert_eq!(t.numbers().map(|n| n.len()), Some(3));
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
        t.walk(|path, data| {
            let name: Vec<String> = path
                .iter()
                .map(|l| format!("{:?}", Label::new(l)))
                .collect();
            out.push((name.join("."), data.kind(), data.to_block()));
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
        trie_only: bool,
    ) -> (ZoneTree, TreeStats, Vec<String>) {
        let mut b = ZoneBuilder::new();
        if trie_only {
            b = b.trie_only();
        }
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
        edits_match_a_rebuild(true);
        edits_match_a_rebuild(false);
    }

    fn edits_match_a_rebuild(trie_only: bool) {
        let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut numbers: Vec<Vec<u8>> = Vec::new();
        let mut prefixes: Vec<(Vec<u8>, u8)> = Vec::new();
        let (mut tree, mut stats, _) = oracle(&numbers, &prefixes, trie_only);
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
            let (want, want_stats, mut copies) = oracle(&numbers, &prefixes, trie_only);
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
            // The oracle stores the copies as records; the zone's statistics count only
            // its own records, in either form.
            let copies = names_of(&tree, NodeKind::Copy).len();
            assert_eq!(stats.records + copies, want_stats.records, "step {step}");
            assert_eq!(
                stats.naptr_records + copies,
                want_stats.naptr_records,
                "step {step}"
            );
            if trie_only {
                assert_eq!(stats.nodes, want_stats.nodes, "step {step}");
            }
            // Every number is found by its name.
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

    /// What a lookup says, in a form two trees can be compared by.
    fn summary(l: Lookup<'_>) -> String {
        let set = |r: RrSet<'_>| {
            let rds: Vec<Vec<u8>> = r.rdatas().map(|d| d.to_vec()).collect();
            format!("{} {} {rds:?}", r.rtype, r.ttl)
        };
        match l {
            Lookup::Answer { rrset, wildcard } => format!("answer {wildcard} {}", set(rrset)),
            Lookup::Cname { rrset, wildcard } => format!("cname {wildcard} {}", set(rrset)),
            Lookup::NoData { wildcard } => format!("nodata {wildcard}"),
            Lookup::NxDomain => "nxdomain".into(),
            Lookup::Referral { ns, depth, .. } => format!("referral {depth} {}", set(ns)),
        }
    }

    fn changes(old: &ZoneTree, new: &ZoneTree) -> Vec<String> {
        let mut out = Vec::new();
        ZoneTree::changed_names(old, new, |path, a, b| {
            let name: Vec<String> = path
                .iter()
                .map(|l| format!("{:?}", Label::new(l)))
                .collect();
            let side = |d: Option<NameData<'_>>| d.map(|d| (d.kind(), d.to_block()));
            out.push(format!("{} {:?} {:?}", name.join("."), side(a), side(b)));
        });
        out
    }

    /// A name's RRsets with the number in them, as a generated ENUM zone has.
    fn number_block(digits: &[u8], variant: u8) -> Arc<[u8]> {
        let mut rd = vec![0, 10, 0, 10 + u16::from(variant) as u8, 1, b'u', 7];
        rd.extend_from_slice(b"E2U+sip");
        let re = format!(
            "!^.*$!sip:+44{}@h{}.example!",
            String::from_utf8_lossy(digits),
            variant % 3
        );
        rd.push(re.len() as u8);
        rd.extend_from_slice(re.as_bytes());
        rd.push(0);
        let other = [variant, 1, 2, 3];
        let mut sets = vec![(TYPE_NAPTR, 60, vec![&rd[..]])];
        if variant.is_multiple_of(4) {
            sets.push((TYPE_A, 30, vec![&other[..]]));
        }
        pack_rrsets(&sets).unwrap()
    }

    /// The compact form answers, walks and diffs exactly as the trie form does, through
    /// random numbers, wildcards, prefix routes and other names, built and edited.
    #[test]
    fn the_compact_form_agrees_with_the_trie_form() {
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let digits = |next: &mut dyn FnMut(u64) -> u64, max: u64| -> Vec<u8> {
            let len = 1 + next(max) as usize;
            (0..len).map(|_| b'0' + next(3) as u8).collect()
        };
        for zone in 0..12 {
            let mut b = ZoneBuilder::new();
            let mut t = ZoneBuilder::new().trie_only();
            for b in [&mut b, &mut t] {
                b.add_labels::<&str>(&[], TYPE_SOA, 60, b"soa", src());
            }
            for i in 0..(20 + next(60)) {
                // Now and then a name of 14 to 16 digits: 16 stay in the trie.
                let name = if i % 17 == 16 {
                    let mut n = digits(&mut next, 2);
                    n.resize(14 + next(3) as usize, b'1');
                    n
                } else {
                    digits(&mut next, 5)
                };
                let mut labels: Vec<&[u8]> = name.chunks(1).collect();
                let (rtype, data): (u16, Vec<u8>) = match next(10) {
                    0 => {
                        labels.push(b"*");
                        (TYPE_NAPTR, b"star".to_vec())
                    }
                    1 => {
                        labels.insert(0, b"host");
                        (TYPE_A, vec![10, 0, 0, 1])
                    }
                    2 => {
                        labels.push(b"x");
                        (TYPE_A, vec![10, 0, 0, 2])
                    }
                    _ => {
                        let block = number_block(&name, next(5) as u8);
                        let set = RrSetIter::plain(&block).next().unwrap();
                        let rd = set.rdatas().next().unwrap().to_vec();
                        (TYPE_NAPTR, rd)
                    }
                };
                for b in [&mut b, &mut t] {
                    b.add_labels(&labels, rtype, 60, &data, src());
                }
            }
            let (mut compact, mut cstats, _) = b.build();
            let (mut trie, mut tstats, _) = t.build();
            assert!(compact.numbers().is_some() && trie.numbers().is_none());
            for step in 0..80 {
                let (old_c, old_t) = (compact.clone(), trie.clone());
                let name = digits(&mut next, 5);
                let labels: Vec<&[u8]> = name.chunks(1).collect();
                let what = next(7);
                let edit = |tree: &ZoneTree, stats: &mut TreeStats| -> ZoneTree {
                    match what {
                        0..=2 => {
                            let data = (what < 2).then(|| number_block(&name, what as u8));
                            tree.with_data(&labels, data, NodeKind::Plain, stats)
                        }
                        _ => {
                            let mut star = labels.clone();
                            star.push(b"*");
                            let data = match what {
                                // A zone file's wildcard (same bytes) made a prefix route:
                                // only its kind changes.
                                6 => pack_rrsets(&[(TYPE_NAPTR, 60, vec![&b"star"[..]])]),
                                5 => None,
                                _ => {
                                    pack_rrsets(&[(TYPE_NAPTR, 60, vec![&[b'p', what as u8][..]])])
                                }
                            };
                            let kind = if data.is_some() {
                                NodeKind::Prefix
                            } else {
                                NodeKind::Plain
                            };
                            tree.with_data(&star, data, kind, stats)
                                .refresh_copies(&labels, stats)
                        }
                    }
                };
                compact = edit(&compact, &mut cstats);
                trie = edit(&trie, &mut tstats);
                assert_eq!(
                    dump(&compact),
                    dump(&trie),
                    "zone {zone} step {step}: walks"
                );
                assert_eq!(
                    changes(&old_c, &compact),
                    changes(&old_t, &trie),
                    "zone {zone} step {step}: changed names"
                );
                for _ in 0..40 {
                    let mut q = digits(&mut next, 6);
                    let mut labels: Vec<&[u8]> = q.chunks(1).collect();
                    match next(8) {
                        0 => labels.push(b"*"),
                        1 => labels.push(b"x"),
                        2 => labels.insert(0, b"host"),
                        3 => labels.insert(next(labels.len() as u64 + 1) as usize, b"*"),
                        4 => {
                            labels.insert(next(labels.len() as u64) as usize, b"*");
                            labels.push(b"*");
                        }
                        _ => {}
                    }
                    for qtype in [TYPE_NAPTR, TYPE_A] {
                        assert_eq!(
                            summary(compact.lookup(&labels, qtype)),
                            summary(trie.lookup(&labels, qtype)),
                            "zone {zone} step {step}: {labels:?} type {qtype}"
                        );
                    }
                    q.clear();
                }
                for labels in [vec![], vec![&b"*"[..]]] {
                    assert_eq!(
                        summary(compact.lookup(&labels, TYPE_NAPTR)),
                        summary(trie.lookup(&labels, TYPE_NAPTR))
                    );
                }
            }
            // Both forms against a rebuild of what they hold now.
            assert_eq!(cstats.records, tstats.records, "zone {zone}");
            assert_eq!(cstats.naptr_records, tstats.naptr_records, "zone {zone}");
        }
    }

    /// A batch large enough to fold the number set, and diffs across the fold, agree
    /// between the two forms.
    #[test]
    fn a_folding_batch_agrees_between_the_forms() {
        let mut rng: u64 = 0x1234_5678_9ABC_DEF1;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let name_of = |i: u64| format!("{:06}", i).into_bytes();
        let mut b = ZoneBuilder::new();
        let mut t = ZoneBuilder::new().trie_only();
        for b in [&mut b, &mut t] {
            b.add_labels::<&str>(&[], TYPE_SOA, 60, b"soa", src());
            b.add_labels(&[&b"1"[..], b"*"], TYPE_NAPTR, 60, b"star", src());
        }
        for i in 0..3000 {
            let name = name_of(next(20_000));
            let labels: Vec<&[u8]> = name.chunks(1).collect();
            let block = number_block(&name, (i % 5) as u8);
            let set = RrSetIter::plain(&block).next().unwrap();
            let rd = set.rdatas().next().unwrap().to_vec();
            for b in [&mut b, &mut t] {
                b.add_labels(&labels, TYPE_NAPTR, 60, &rd, src());
            }
        }
        let (compact, mut cstats, _) = b.build();
        let (trie, mut tstats, _) = t.build();
        // Make `1.*` a prefix route in both, then one batch of 6,000 number edits.
        let star: [&[u8]; 2] = [b"1", b"*"];
        let star_data = pack_rrsets(&[(TYPE_NAPTR, 60, vec![&b"star"[..]])]);
        let compact = compact
            .with_data(&star, star_data.clone(), NodeKind::Prefix, &mut cstats)
            .refresh_copies(&star[..1], &mut cstats);
        let trie = trie
            .with_data(&star, star_data, NodeKind::Prefix, &mut tstats)
            .refresh_copies(&star[..1], &mut tstats);
        let names: Vec<Vec<u8>> = (0..6000).map(|_| name_of(next(20_000))).collect();
        let mut seen = std::collections::HashSet::new();
        let edits: Vec<NameEdit<'_>> = names
            .iter()
            .filter(|n| seen.insert(n.to_vec()))
            .map(|n| {
                let data = (next(3) > 0).then(|| number_block(n, next(5) as u8));
                (n.chunks(1).collect(), data, NodeKind::Plain)
            })
            .collect();
        let (mut cs, mut ts) = (cstats, tstats);
        let compact2 = compact.with_data_many(&edits, &mut cs);
        let trie2 = trie.with_data_many(&edits, &mut ts);
        assert_eq!(dump(&compact2), dump(&trie2));
        assert_eq!(changes(&compact, &compact2), changes(&trie, &trie2));
        assert_eq!(cs.records, ts.records);
        for i in 0..2000 {
            let q = name_of(i * 10);
            let labels: Vec<&[u8]> = q.chunks(1).collect();
            assert_eq!(
                summary(compact2.lookup(&labels, TYPE_NAPTR)),
                summary(trie2.lookup(&labels, TYPE_NAPTR)),
                "{labels:?}"
            );
        }
    }

    /// Records fed in owner order (the store's scan, numbers packed as they come) build
    /// the same zone as records gathered and sorted, in both forms; a delegation at a
    /// number sends the numbers back to the trie.
    #[test]
    fn owner_order_feeding_builds_the_same_zone() {
        let mut rng: u64 = 0xDEAD_BEEF_1234_5678;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..20 {
            let mut records: Vec<(Vec<u8>, u16, u32, Vec<u8>)> = Vec::new();
            let key_of = |labels: &[&[u8]]| -> Vec<u8> {
                labels
                    .iter()
                    .flat_map(|l| [&[l.len() as u8][..], l].concat())
                    .collect()
            };
            records.push((Vec::new(), TYPE_SOA, 60, b"soa".to_vec()));
            for _ in 0..(10 + next(80)) {
                let len = 1 + next(5) as usize;
                let name: Vec<u8> = (0..len).map(|_| b'0' + next(3) as u8).collect();
                let mut labels: Vec<&[u8]> = name.chunks(1).collect();
                let (rtype, ttl, data): (u16, u32, Vec<u8>) = match next(12) {
                    0 => {
                        labels.push(b"*");
                        (TYPE_NAPTR, 60, b"star".to_vec())
                    }
                    1 => (TYPE_A, 30 + next(2) as u32, vec![10, 0, 0, next(3) as u8]),
                    _ => (TYPE_NAPTR, 60, vec![b'n', next(4) as u8]),
                };
                records.push((key_of(&labels), rtype, ttl, data));
            }
            if round % 5 == 4 {
                // A delegation at a number: the zone cannot be compact.
                let ns = b"\x02ns\x00".to_vec();
                records.push((key_of(&[b"1", b"2"]), crate::name::TYPE_NS, 60, ns));
            }
            let feed = |owner_order: bool, trie_only: bool| {
                let mut b = ZoneBuilder::new();
                if trie_only {
                    b = b.trie_only();
                }
                let mut sorted = records.clone();
                if owner_order {
                    sorted.sort_by(|a, b| a.0.cmp(&b.0));
                }
                for (k, t, ttl, d) in &sorted {
                    if owner_order {
                        b.add_in_owner_order(k, *t, *ttl, d, src());
                    } else {
                        b.add(k, *t, *ttl, d, src());
                    }
                }
                let (tree, stats, issues) = b.build();
                let errors = issues.iter().filter(|i| i.error).count();
                let warnings = issues.len() - errors;
                (
                    dump(&tree),
                    stats,
                    errors,
                    warnings,
                    tree.numbers().is_some(),
                )
            };
            for trie_only in [false, true] {
                let (d1, s1, e1, w1, c1) = feed(false, trie_only);
                let (d2, s2, e2, w2, c2) = feed(true, trie_only);
                assert_eq!(d1, d2, "round {round}");
                assert_eq!(
                    (s1.records, s1.naptr_records),
                    (s2.records, s2.naptr_records)
                );
                assert_eq!((e1, w1, c1), (e2, w2, c2), "round {round}");
                assert_eq!(c1, !trie_only && round % 5 != 4, "round {round}");
            }
        }
    }
}
