//! The trie of one zone and its RFC 1034 §4.3.2 / RFC 4592 lookup: the DNS and routing
//! hot path.
//!
//! Owns: [`ZoneTree`] (apex, digit index, overlay), [`Lookup`], the digit keys and their
//! hasher, [`ZoneTree::exact_digits`], [`ZoneTree::lookup`], [`ZoneTree::walk`],
//! [`ZoneTree::node_at`] and the answer from one name's RRsets.
//!
//! Must not touch: how a tree is changed (`edit`) or built (`build`); nodes' layout
//! (`node`). Imports only `node`.

use super::node::{Node, RrSet, RrSetIter};
use crate::name::{Label, TYPE_CNAME, TYPE_DS, TYPE_NS};
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

/// The trie of one zone, rooted at its apex.
#[derive(Clone, Debug)]
pub struct ZoneTree {
    pub(super) apex: Node,
    /// Exact-name index of every name below the apex made of at most
    /// [`DIGIT_KEY_MAX`] single-digit labels (every ENUM number): packed digits to the
    /// name's RRsets. A hit skips the walk's ~one cache miss per label; anything else
    /// (misses, wildcards, empty non-terminals) takes the walk. Absent when the zone has
    /// a delegation below its apex, where a name's own data is not the whole answer.
    pub(super) digits: Option<Arc<DigitIndex>>,
    /// Names changed since `digits` was built (by [`ZoneTree::with_data`]): `None` means
    /// "no longer has data". Checked first; absent when empty so that the common case is
    /// one pointer test. Folded into `digits` when it grows past [`overlay_max`].
    pub(super) overlay: Option<Arc<DigitIndexOverlay>>,
}

/// Changed names held beside the digit index before it is rebuilt: a PUT copies the
/// overlay (under a MiB: at most [`OVERLAY_CAP`] names), never the million-entry index.
pub(super) const OVERLAY_MAX: usize = 4096;
/// The overlay's largest size, whatever the index's.
const OVERLAY_CAP: usize = 32_768;

/// The overlay size past which it is folded into an index of `index_len` names:
/// [`OVERLAY_MAX`], or 1/64 of the index when that is larger (up to [`OVERLAY_CAP`]).
/// Folding copies the whole index, so a cap in proportion to it keeps that copy's cost
/// per changed name bounded: a 10,000-name IXFR on a million-name zone stays in the
/// overlay instead of copying the index.
pub(super) fn overlay_max(index_len: usize) -> usize {
    OVERLAY_MAX.max(index_len / 64).min(OVERLAY_CAP)
}

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

pub(super) type DigitIndex =
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
