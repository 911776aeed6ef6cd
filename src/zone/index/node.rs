//! A zone index node and the RRsets packed in its data.
//!
//! Owns: [`Node`] (its `repr(C)` layout, its sorted children and their digit map,
//! one-step descent), [`NodeKind`], and reading a node's packed RRset block
//! ([`RrSet`], [`RrSetIter`], [`RdataIter`]).
//!
//! A block is either a node's plain packed RRsets or a number's shape (see `shape`):
//! [`RrSetIter`] and [`RdataIter`] carry the number's [`Digits`] (none for a plain
//! block) and read either the same way, so that callers never see which one it was.
//!
//! Must not touch: the tree above a node (lookup, the numbers: `tree`), edits
//! (`edit`), or building (`build`). Imports only `shape`'s record reader.

use super::shape::{Digits, Rdata, read_shape_record, shape_record_len};
use crate::name::{Label, cmp_labels};
use std::sync::Arc;

/// One name in the zone (or an empty non-terminal on the way to one).
///
/// `repr(C)` keeps what a descent reads (children, digit map) together at the front, so a
/// step down one level touches one cache line of the node.
#[derive(Clone)]
#[repr(C)]
pub struct Node {
    pub(super) children: Option<Arc<[Node]>>,
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
    pub(super) kind: NodeKind,
    pub(super) label: Label,
    pub(super) data: Option<Arc<[u8]>>,
}

/// What a node's data is, for prefix routes (SPEC §7). A prefix route is a wildcard; an
/// empty non-terminal under it would hide it (RFC 4592 §2.2.2), so such an ENT gets a
/// `*` child holding a copy of the covering prefix's data. In a zone with delegations
/// the trie stores these copies, kept in step by
/// [`ZoneTree::with_data`](super::ZoneTree::with_data) and
/// [`ZoneTree::refresh_copies`](super::ZoneTree::refresh_copies), sharing the prefix's
/// bytes (one `Arc`); a compact zone derives them as it walks and looks up, and only
/// walks and diffs hand out data of this kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeKind {
    /// Records of the zone as stored.
    #[default]
    Plain,
    /// The `*` node of a prefix route managed through the admin API.
    Prefix,
    /// A `*` derived from the covering prefix route; never written to the store.
    Copy,
}

impl Node {
    pub(super) fn empty(label: Label) -> Self {
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
    pub(super) fn set_children(&mut self, children: Vec<Node>) {
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

    /// True when the node owns no RRset in the trie. In a compact zone a number's
    /// records are not in its node (see [`ZoneTree::name_data`](super::ZoneTree::name_data)),
    /// so this alone does not make the name an empty non-terminal (RFC 4592 §2.2.2).
    pub fn is_empty_non_terminal(&self) -> bool {
        self.data.is_none()
    }

    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The node's packed RRsets, shared (see [`pack_rrsets`](super::pack_rrsets) for the layout).
    pub fn data(&self) -> Option<&Arc<[u8]>> {
        self.data.as_ref()
    }

    /// The data copies under this node inherit: its own managed prefix route's.
    pub(super) fn prefix_data(&self) -> Option<&Arc<[u8]>> {
        self.child(b"*")
            .filter(|c| c.kind == NodeKind::Prefix)
            .and_then(|c| c.data.as_ref())
    }

    pub fn rrsets(&self) -> RrSetIter<'_> {
        RrSetIter::plain(self.data.as_deref().unwrap_or(&[]))
    }

    #[inline]
    pub fn rrset(&self, rtype: u16) -> Option<RrSet<'_>> {
        self.rrsets().find(|r| r.rtype == rtype)
    }
}

/// One RRset borrowed from a node or a number's shape.
#[derive(Clone, Copy, Debug)]
pub struct RrSet<'a> {
    pub rtype: u16,
    pub ttl: u32,
    pub count: u16,
    body: &'a [u8],
    number: Digits,
}

impl<'a> RrSet<'a> {
    /// The rdata of each record, in wire form, in zone-file order.
    pub fn rdatas(&self) -> RdataIter<'a> {
        RdataIter {
            body: self.body,
            left: self.count,
            number: self.number,
        }
    }
}

pub struct RdataIter<'a> {
    body: &'a [u8],
    left: u16,
    number: Digits,
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = Rdata<'a>;
    #[inline]
    fn next(&mut self) -> Option<Rdata<'a>> {
        if self.left == 0 {
            return None;
        }
        let (rd, used) = if self.number.is_empty() {
            let len = usize::from(u16::from_be_bytes([
                *self.body.first()?,
                *self.body.get(1)?,
            ]));
            (Rdata::Wire(self.body.get(2..2 + len)?), 2 + len)
        } else {
            read_shape_record(self.body, self.number.as_bytes())?
        };
        self.body = &self.body[used..];
        self.left -= 1;
        Some(rd)
    }
}

/// The RRsets of one block, in type order.
pub struct RrSetIter<'a> {
    pub(super) data: &'a [u8],
    pub(super) number: Digits,
}

impl<'a> RrSetIter<'a> {
    /// The RRsets of a plain packed block.
    pub fn plain(data: &'a [u8]) -> Self {
        RrSetIter {
            data,
            number: Digits::NONE,
        }
    }
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
            let rest = d.get(end..)?;
            end += if self.number.is_empty() {
                2 + usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]))
            } else {
                shape_record_len(rest)?
            };
        }
        let body = d.get(8..end)?;
        self.data = &d[end..];
        Some(RrSet {
            rtype,
            ttl,
            count,
            body,
            number: self.number,
        })
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({:?})", self.label)
    }
}
