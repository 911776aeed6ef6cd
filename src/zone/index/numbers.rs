//! The numbers of a zone in compact form: each all-digit name of 1–15 labels below the
//! apex as a [`number_key`](super::shape::number_key) and the id of its shape, in a
//! [`NumberSet`]: a sorted base (12-byte entries, key and shape side by side) with a
//! hash table of the same entries for exact hits, and a small overlay of the edits made
//! since the base was built, folded into a new base when it grows.
//!
//! Owns: the set's layout, exact lookups ([`NumberSet::get`]), the ordered questions
//! asked of names that are not numbers themselves ([`NumberSet::longest_prefix`]: how
//! deep the numbers make a query's path exist, for the lookup;
//! [`NumberSet::has_below`]: is this name an empty non-terminal made by numbers, for
//! walks and diffs), iteration in key order (the canonical order of the names), reads
//! of many keys in key order by one forward walk ([`NumberSet::shapes_in_order`], for
//! batches), edits as an overlay (its removals counted, never scanned one by one), and
//! folding.
//!
//! Must not touch: what a shape holds (`shape.rs`), the trie (`tree.rs`), or which
//! names are numbers (the builder decides). Imports only `shape.rs`'s key helpers.
//!
//! Why not a `HashMap<u64, u32>` or a `BTreeMap` alone: a hash map answers no ordered
//! question, and a B-tree costs ~40 bytes a number and a pointer chase per level. One
//! sorted array of 12-byte entries answers the ordered questions; beside it, a table
//! of the same entries by hash (16 bytes a number at load ≤ 0.75) answers an exact hit
//! with one random read: ~28 bytes a number in all. (A table of `u32` positions into
//! the array took 5.4 bytes a number but two dependent random reads a hit, and at 10^8
//! numbers those reads were half of a routing decision.)

use super::shape::{MAX_KEY_DIGITS, key_len};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Hasher for number keys: one multiply and a shift mix (the keys are already unique
/// integers; SipHash would cost more than the lookup it serves).
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

/// Ids of bases, so that a later set can say which base it was folded from.
static NEXT_BASE_ID: AtomicU64 = AtomicU64::new(1);

/// The overlay size past which [`NumberSet::with_edits`] folds it into a new base: an
/// edit copies the overlay, so it stays small against the base (1/64 of it, at least
/// 4,096 and at most 1,048,576 numbers).
pub fn fold_above(base_len: usize) -> usize {
    (base_len / 64).clamp(4096, 1 << 20)
}

/// The numbers of one zone: an immutable sorted base and the edits since.
#[derive(Clone, Debug, Default)]
pub struct NumberSet {
    base: Arc<Base>,
    /// Edits since `base` was built: a key's shape now (`None`: removed). Absent when
    /// empty, so the common case costs one pointer test.
    overlay: Option<Arc<Overlay>>,
    /// Numbers in the set (base and overlay together).
    len: usize,
    /// No key is longer than this many digits (it may be an overestimate after
    /// removals): a missing name at least this long cannot be an empty non-terminal.
    max_len: u8,
}

/// Sorted keys and their shapes, and a hash table of the same entries that finds a
/// key's shape.
#[derive(Debug, Default)]
struct Base {
    /// Each number's key and shape side by side, in key order: walks, ranges and folds.
    entries: Box<[Entry]>,
    /// The same entries by hash (open addressing, linear probing, key 0: empty, at most
    /// 3/4 full): a hit reads its key and shape in one place, one random read where a
    /// table of positions into `entries` took two. At 10^8 numbers each random read
    /// costs ~300 ns even on huge pages (the two were half of a routing decision); the
    /// table costs 16 bytes a number where positions took 5.4.
    slots: Box<[Entry]>,
    /// This base's id (0 for the empty default).
    id: u64,
    /// The base this one was folded from and the keys the fold changed, so that the
    /// difference between a set and its edited copy stays proportional to the edits
    /// across a fold ([`NumberSet::changed_keys`]).
    folded_from: Option<(u64, Box<[u64]>)>,
}

/// One number of a base: its key in two halves (so that the entry is 12 bytes, not 16)
/// and its shape.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    key: [u32; 2],
    shape: u32,
}

impl Entry {
    fn new(key: u64, shape: u32) -> Entry {
        Entry {
            key: [(key >> 32) as u32, key as u32],
            shape,
        }
    }

    #[inline]
    fn key(&self) -> u64 {
        (u64::from(self.key[0]) << 32) | u64::from(self.key[1])
    }
}

/// Edits since the base, by key, and the same keys sorted (for ordered questions).
#[derive(Debug, Default)]
struct Overlay {
    map: OverlayMap,
    sorted: Box<[u64]>,
    /// The keys it gives a shape and the keys it removes, each sorted: ordered
    /// questions binary-search and count them instead of probing key by key.
    added: Box<[u64]>,
    removed: Box<[u64]>,
}

impl Base {
    /// A base of `entries`, sorted by key, keys unique.
    fn from_sorted(entries: Vec<(u64, u32)>) -> Base {
        let mut packed: Vec<Entry> = huge_pages(entries.len());
        packed.extend(
            entries
                .into_iter()
                .map(|(key, shape)| Entry::new(key, shape)),
        );
        let entries = packed;
        let mut base = Base {
            entries: entries.into_boxed_slice(),
            slots: Box::new([]),
            id: NEXT_BASE_ID.fetch_add(1, Ordering::Relaxed),
            folded_from: None,
        };
        base.slots = base.slot_table();
        base
    }

    fn slot_table(&self) -> Box<[Entry]> {
        if self.entries.is_empty() {
            return Box::new([]);
        }
        // At most 3/4 full; any size (the home slot is taken by multiplication).
        let size = self.entries.len() * 4 / 3 + 1;
        let mut slots: Vec<Entry> = huge_pages(size);
        slots.resize(size, Entry::default());
        let mut slots = slots.into_boxed_slice();
        // Robin Hood: an entry further from its home slot takes the place of one nearer
        // to its own, so along a run the entries keep the order of their homes, and a
        // miss stops at the first entry whose home lies past its own.
        for entry in self.entries.iter() {
            let mut carried = *entry;
            let mut home = home_slot(carried.key(), size);
            let mut at = home;
            loop {
                let resident = slots[at];
                if resident.key() == 0 {
                    slots[at] = carried;
                    break;
                }
                let resident_home = home_slot(resident.key(), size);
                if distance(home, at, size) > distance(resident_home, at, size) {
                    slots[at] = carried;
                    (carried, home) = (resident, resident_home);
                }
                at = if at + 1 == size { 0 } else { at + 1 };
            }
        }
        slots
    }

    /// The shape of `key`, when the base holds it. A hit probes ~2.5 slots at load 3/4;
    /// a miss stops at an empty slot or at an entry nearer its home than `key` would be
    /// (Robin Hood order, see [`Base::slot_table`]): ~3 slots, where plain linear
    /// probing reads ~8.5. Slots are 12 bytes: one or two neighbouring cache lines.
    #[inline]
    fn shape_of(&self, key: u64) -> Option<u32> {
        let size = self.slots.len();
        if size == 0 {
            return None;
        }
        let home = home_slot(key, size);
        let (mut at, mut probed) = (home, 0);
        loop {
            let slot = &self.slots[at];
            match slot.key() {
                0 => return None,
                k if k == key => return Some(slot.shape),
                k if distance(home_slot(k, size), at, size) < probed => return None,
                _ => {}
            }
            at = if at + 1 == size { 0 } else { at + 1 };
            probed += 1;
        }
    }

    /// Positions of the keys in `[from, to)`.
    fn range(&self, from: u64, to: u64) -> std::ops::Range<usize> {
        let start = self.entries.partition_point(|e| e.key() < from);
        let end = start + self.entries[start..].partition_point(|e| e.key() < to);
        start..end
    }
}

/// An empty vector with room for `len` items whose pages the kernel is asked to back
/// with transparent huge pages (Linux, where THP is `madvise`): a lookup in a base of
/// 10^8 numbers touches a random place of a 1.6 GB table, and with 4 KiB pages that
/// costs a TLB miss and a page walk besides the cache miss. Elsewhere, or when refused, the
/// pages are ordinary ones.
fn huge_pages<T>(len: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(len);
    let bytes = len * std::mem::size_of::<T>();
    #[cfg(target_os = "linux")]
    if bytes >= 4 << 20 {
        const HUGE: usize = 2 << 20;
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (v.as_ptr() as usize + bytes) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE
            // only changes how the kernel backs it, never its contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    let _ = bytes;
    v
}

/// The slot where probing for `key` starts in a table of `size` slots: the hash's high
/// bits scaled to the size (Lemire's multiply-shift), so the size need not be a power of
/// two.
#[inline]
fn home_slot(key: u64, size: usize) -> usize {
    ((u128::from(slot_hash(key)) * size as u128) >> 64) as usize
}

/// How far slot `at` lies past `home`, around the end of a table of `size` slots.
#[inline]
fn distance(home: usize, at: usize, size: usize) -> usize {
    if at >= home {
        at - home
    } else {
        at + size - home
    }
}

#[inline]
fn slot_hash(key: u64) -> u64 {
    // A key's digits sit in its high bits and its low bits are often all 0 (a short
    // number), and `home_slot` takes the hash's high bits: every bit of the key must
    // reach every bit of the hash (MurmurHash3's 64-bit finalizer).
    let mut h = key ^ (key >> 33);
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    h
}

/// The first key past every extension of `key` (its subtree is `[key, end)`).
#[inline]
fn subtree_end(key: u64) -> u64 {
    key + (1u64 << (4 * (MAX_KEY_DIGITS - key_len(key))))
}

impl NumberSet {
    /// A set of `entries`, which must be sorted by key with each key once (as the store
    /// and the builder give them); `None` when they are not.
    pub fn from_sorted(entries: Vec<(u64, u32)>) -> Option<NumberSet> {
        // Key 0 (no name's) marks an empty slot of the entry table.
        if entries.first().is_some_and(|e| e.0 == 0) || entries.windows(2).any(|w| w[0].0 >= w[1].0)
        {
            return None;
        }
        let len = entries.len();
        let max_len = max_len_of(entries.iter().map(|e| e.0));
        Some(NumberSet {
            base: Arc::new(Base::from_sorted(entries)),
            overlay: None,
            len,
            max_len,
        })
    }

    /// Heap bytes of the base (keys, shapes, slots) and the overlay (approximate).
    pub fn bytes(&self) -> usize {
        let base = (self.base.entries.len() + self.base.slots.len()) * std::mem::size_of::<Entry>();
        let overlay = self
            .overlay
            .as_ref()
            .map_or(0, |o| o.map.capacity() * 17 + o.sorted.len() * 8);
        base + overlay
    }

    /// No key of the set is longer than this many digits.
    pub fn max_len(&self) -> usize {
        self.max_len as usize
    }

    /// The longest prefix of `key`'s digits (in digits, at most its length) that some
    /// number of the set starts with: the depth of the deepest name on `key`'s path that
    /// exists because of the numbers (a number, or an empty non-terminal above one).
    /// 0 when no number shares even the first digit.
    pub fn longest_prefix(&self, key: u64) -> usize {
        let len = key_len(key);
        let shared = |k: u64| common_digits(key, k).min(len);
        let mut best = 0;
        // The keys sharing the longest prefix with `key` form a run in key order that
        // `key`'s place touches: its live neighbours on either side are enough.
        let at = self.base.entries.partition_point(|e| e.key() < key);
        for k in self.live_before(at).into_iter().chain(self.live_from(at)) {
            best = best.max(shared(k));
        }
        if let Some(o) = &self.overlay {
            let at = o.added.partition_point(|&k| k < key);
            let below = at.checked_sub(1).map(|i| o.added[i]);
            for k in below.into_iter().chain(o.added.get(at).copied()) {
                best = best.max(shared(k));
            }
        }
        best
    }

    /// How many base keys in `[from, to)` the overlay removes (every key it removes is
    /// a base key: [`NumberSet::with_edits`] drops the removal of one the base lacks).
    fn removed_in(&self, from: u64, to: u64) -> usize {
        self.overlay.as_ref().map_or(0, |o| {
            let start = o.removed.partition_point(|&k| k < from);
            o.removed[start..].partition_point(|&k| k < to)
        })
    }

    /// Whether base positions `[lo, hi)` hold a key the overlay keeps.
    fn live_in(&self, lo: usize, hi: usize) -> bool {
        let e = &self.base.entries;
        lo < hi && hi - lo > self.removed_in(e[lo].key(), e[hi - 1].key() + 1)
    }

    /// The key of the last base entry before position `at` that the overlay does not
    /// remove. Removed keys are counted per range, never visited one by one, so that
    /// a query next to a bulk delete does not cost the run's length.
    fn live_before(&self, at: usize) -> Option<u64> {
        if at == 0 || !self.live_in(0, at) {
            return None;
        }
        // The first p whose range [p, at) holds nothing live, less one.
        let p = first_true(0, at, |p| !self.live_in(p, at)) - 1;
        Some(self.base.entries[p].key())
    }

    /// The key of the first base entry at or after position `at` that the overlay
    /// does not remove (see [`NumberSet::live_before`]).
    fn live_from(&self, at: usize) -> Option<u64> {
        let len = self.base.entries.len();
        if at >= len || !self.live_in(at, len) {
            return None;
        }
        let q = first_true(at, len, |q| self.live_in(at, q + 1));
        Some(self.base.entries[q].key())
    }

    /// The numbers with keys in `[from, to)` and their shapes, in key order.
    pub fn range(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
        let r = self.base.range(from, to);
        let base = self.base.entries[r].iter().map(|e| (e.key(), e.shape));
        let overlay: &[u64] = self.overlay.as_ref().map_or(&[], |o| {
            let start = o.sorted.partition_point(|&k| k < from);
            let end = start + o.sorted[start..].partition_point(|&k| k < to);
            &o.sorted[start..end]
        });
        Merged {
            base: base.peekable(),
            overlay: overlay.iter().copied().peekable(),
            set: self,
        }
    }

    /// Whether a number of the set has `key` or extends it (the name exists).
    pub fn exists_at(&self, key: u64) -> bool {
        self.get(key).is_some() || self.has_below(key)
    }

    /// Keys whose shape may differ between `old` and `new` when `new` was made from
    /// `old` by edits (the same base, or a base folded from `old`'s), sorted; `None`
    /// when the two are unrelated (built apart), and every key must be compared.
    pub fn changed_keys(old: &NumberSet, new: &NumberSet) -> Option<Vec<u64>> {
        let overlay_keys = |s: &NumberSet| -> Vec<u64> {
            s.overlay.as_ref().map_or(Vec::new(), |o| o.sorted.to_vec())
        };
        let mut keys = if Arc::ptr_eq(&old.base, &new.base) {
            if old.overlay.as_ref().map(Arc::as_ptr) == new.overlay.as_ref().map(Arc::as_ptr) {
                return Some(Vec::new());
            }
            overlay_keys(old)
        } else {
            match &new.base.folded_from {
                Some((from, folded)) if *from == old.base.id => {
                    let mut k = overlay_keys(old);
                    k.extend_from_slice(folded);
                    k
                }
                _ => return None,
            }
        };
        keys.extend(overlay_keys(new));
        keys.sort_unstable();
        keys.dedup();
        Some(keys)
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The shape of the number `key`, when the set holds it.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u32> {
        if let Some(o) = &self.overlay
            && let Some(now) = o.map.get(&key)
        {
            return *now;
        }
        self.base.shape_of(key)
    }

    /// The shapes of the numbers `keys` (ascending), in their order: the base read in
    /// one forward walk, each key found by galloping from the last one. A batch of
    /// edits comes in key order, and at 10^8 numbers a random read ([`NumberSet::get`])
    /// costs ~300 ns where a step forward costs a few. Keys out of order are still
    /// answered (the walk starts over), only slower.
    pub fn shapes_in_order(&self, keys: &[u64]) -> Vec<Option<u32>> {
        let mut walk = Gallop {
            entries: &self.base.entries,
            at: 0,
            last: 0,
        };
        let overlay = self.overlay.as_deref();
        keys.iter()
            .map(|&key| match overlay.and_then(|o| o.map.get(&key)) {
                Some(now) => *now,
                None => walk.shape_of(key),
            })
            .collect()
    }

    /// Whether the set holds a number that extends `key` (a name below it): then the
    /// name of `key`, when not a number itself, is an empty non-terminal.
    pub fn has_below(&self, key: u64) -> bool {
        let (from, to) = (key + 1, subtree_end(key));
        if let Some(o) = &self.overlay {
            let start = o.added.partition_point(|&k| k < from);
            if o.added.get(start).is_some_and(|&k| k < to) {
                return true;
            }
        }
        self.base.range(from, to).len() > self.removed_in(from, to)
    }

    /// Every number and its shape, in key order (the canonical order of the names).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let base = self.base.entries.iter().map(|e| (e.key(), e.shape));
        let overlay: &[u64] = self.overlay.as_ref().map_or(&[], |o| &o.sorted);
        Merged {
            base: base.peekable(),
            overlay: overlay.iter().copied().peekable(),
            set: self,
        }
    }

    /// A copy with `edits` made (a key's new shape, or `None`: removed). Edits to keys
    /// not in the set that remove them are no-ops. The overlay is copied, not the
    /// base, until it grows past [`fold_above`]; then both fold into a new base.
    pub fn with_edits(&self, edits: impl IntoIterator<Item = (u64, Option<u32>)>) -> NumberSet {
        let mut map = self.overlay_map();
        let mut len = self.len;
        for (key, shape) in edits {
            let before = self.get_in(&map, key);
            let in_base = || self.base.shape_of(key).is_some();
            edit_map(&mut map, &mut len, (key, before, shape), in_base);
        }
        self.with_map(map, len)
    }

    /// [`NumberSet::with_edits`] for edits whose keys' shapes in this set the caller
    /// has read ([`NumberSet::shapes_in_order`]): `(key, shape now, new shape)`, each
    /// key once. No key is read again unless the set has an overlay and the edit
    /// removes it (at 10^8 numbers, those reads were most of a large edit's cost).
    pub fn with_read_edits(
        &self,
        edits: impl IntoIterator<Item = (u64, Option<u32>, Option<u32>)>,
    ) -> NumberSet {
        let mut map = self.overlay_map();
        let mut len = self.len;
        for (key, before, shape) in edits {
            // Without an overlay, the shape now is the base's.
            let in_base = || match self.overlay {
                None => before.is_some(),
                Some(_) => self.base.shape_of(key).is_some(),
            };
            edit_map(&mut map, &mut len, (key, before, shape), in_base);
        }
        self.with_map(map, len)
    }

    /// A copy of the overlay's edits, to make more.
    fn overlay_map(&self) -> OverlayMap {
        self.overlay
            .as_ref()
            .map(|o| o.map.clone())
            .unwrap_or_default()
    }

    /// This set's base with the edits `map` (holding `len` numbers in all): an overlay,
    /// or a new base when the overlay outgrows [`fold_above`].
    fn with_map(&self, map: OverlayMap, len: usize) -> NumberSet {
        let set = NumberSet {
            base: self.base.clone(),
            overlay: None,
            len,
            max_len: self.max_len.max(max_len_of(
                map.iter().filter(|(_, s)| s.is_some()).map(|(k, _)| *k),
            )),
        };
        if map.len() > fold_above(self.base.entries.len()) {
            return set.fold_with(&map);
        }
        let mut edits: Vec<(u64, bool)> = map.iter().map(|(k, s)| (*k, s.is_some())).collect();
        edits.sort_unstable();
        let sorted: Vec<u64> = edits.iter().map(|e| e.0).collect();
        let keys = |added: bool| edits.iter().filter(move |e| e.1 == added).map(|e| e.0);
        let (added, removed): (Vec<u64>, Vec<u64>) = (keys(true).collect(), keys(false).collect());
        NumberSet {
            overlay: (!map.is_empty()).then(|| {
                Arc::new(Overlay {
                    map,
                    sorted: sorted.into_boxed_slice(),
                    added: added.into_boxed_slice(),
                    removed: removed.into_boxed_slice(),
                })
            }),
            ..set
        }
    }

    /// The set with its overlay folded into a new base (the same numbers).
    pub fn folded(&self) -> NumberSet {
        match &self.overlay {
            Some(o) => self.fold_with(&o.map),
            None => self.clone(),
        }
    }

    fn get_in(
        &self,
        map: &HashMap<u64, Option<u32>, impl std::hash::BuildHasher>,
        key: u64,
    ) -> Option<u32> {
        match map.get(&key) {
            Some(now) => *now,
            None => self.base.shape_of(key),
        }
    }

    /// A new base of this set's base with `map`'s edits made: the base and the edits,
    /// sorted, merged in one pass (no key looked up).
    fn fold_with(&self, map: &HashMap<u64, Option<u32>, impl std::hash::BuildHasher>) -> NumberSet {
        let mut changed: Vec<(u64, Option<u32>)> = map.iter().map(|(k, s)| (*k, *s)).collect();
        changed.sort_unstable_by_key(|c| c.0);
        let mut entries = Vec::with_capacity(self.base.entries.len() + changed.len());
        let mut edits = changed.iter().copied().peekable();
        for (key, shape) in self.base.entries.iter().map(|e| (e.key(), e.shape)) {
            while let Some((k, s)) = edits.next_if(|(k, _)| *k < key) {
                entries.extend(s.map(|s| (k, s)));
            }
            match edits.next_if(|(k, _)| *k == key) {
                Some((_, now)) => entries.extend(now.map(|s| (key, s))),
                None => entries.push((key, shape)),
            }
        }
        entries.extend(edits.filter_map(|(k, s)| Some((k, s?))));
        let len = entries.len();
        let max_len = max_len_of(entries.iter().map(|e| e.0));
        let mut base = Base::from_sorted(entries);
        let changed: Box<[u64]> = changed.into_iter().map(|c| c.0).collect();
        base.folded_from = Some((self.base.id, changed));
        NumberSet {
            base: Arc::new(base),
            overlay: None,
            len,
            max_len,
        }
    }
}

/// A set's overlay: a key's shape now (`None`: removed from the base).
type OverlayMap = HashMap<u64, Option<u32>, std::hash::BuildHasherDefault<DigitKeyHasher>>;

/// Makes one edit `(key, shape now, new shape)` in an overlay map and counts it in
/// `len`. A removal of a key the base lacks (`in_base`) leaves no entry.
fn edit_map(
    map: &mut OverlayMap,
    len: &mut usize,
    (key, before, shape): (u64, Option<u32>, Option<u32>),
    in_base: impl FnOnce() -> bool,
) {
    *len = *len + usize::from(shape.is_some()) - usize::from(before.is_some());
    if shape.is_none() && !in_base() {
        map.remove(&key);
    } else {
        map.insert(key, shape);
    }
}

/// [`NumberSet::shapes_in_order`]'s walk of a base's sorted entries.
struct Gallop<'a> {
    entries: &'a [Entry],
    /// Where the last key was found (or would be).
    at: usize,
    last: u64,
}

impl Gallop<'_> {
    /// The shape of `key`: found from `at` forward, by steps of 1, 2, 4… then a binary
    /// search in the last step.
    fn shape_of(&mut self, key: u64) -> Option<u32> {
        if key < self.last {
            self.at = 0;
        }
        self.last = key;
        let rest = &self.entries[self.at..];
        let (mut lo, mut hi) = (0, 1);
        while hi <= rest.len() && rest[hi - 1].key() < key {
            lo = hi;
            hi *= 2;
        }
        let hi = hi.min(rest.len());
        self.at += lo + rest[lo..hi].partition_point(|e| e.key() < key);
        let found = self.entries.get(self.at).filter(|e| e.key() == key);
        found.map(|e| e.shape)
    }
}

/// The first index in `[lo, hi)` where `pred` holds (`hi` when none), for a `pred`
/// that is false and then true.
fn first_true(mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The longest of `keys`, in digits.
fn max_len_of(keys: impl Iterator<Item = u64>) -> u8 {
    keys.map(key_len).max().unwrap_or(0) as u8
}

/// How many leading digits two keys share (not capped by their lengths: a key and its
/// own extension share the shorter one's length, two equal keys their length).
#[inline]
pub fn common_digits(a: u64, b: u64) -> usize {
    let shared = ((a ^ b) << 4).leading_zeros() as usize / 4;
    shared.min(key_len(a)).min(key_len(b))
}

/// [`NumberSet::iter`]: the base and the overlay's keys merged in key order, the
/// overlay's word taken for a key both hold.
struct Merged<'a, B: Iterator<Item = (u64, u32)>, O: Iterator<Item = u64>> {
    base: std::iter::Peekable<B>,
    overlay: std::iter::Peekable<O>,
    set: &'a NumberSet,
}

impl<B: Iterator<Item = (u64, u32)>, O: Iterator<Item = u64>> Iterator for Merged<'_, B, O> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        loop {
            let next_base = self.base.peek().map(|(k, _)| *k);
            let next_over = self.overlay.peek().copied();
            let take_overlay = match (next_base, next_over) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(b), Some(o)) => o <= b,
            };
            if !take_overlay {
                return self.base.next();
            }
            let key = self.overlay.next()?;
            if next_base == Some(key) {
                self.base.next();
            }
            if let Some(shape) = self.set.get(key) {
                return Some((key, shape));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::shape::number_key;
    use super::*;
    use std::collections::BTreeMap;

    /// Deterministic 64-bit LCG.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
        /// A number of 1–7 digits from a small alphabet, so that prefixes are shared.
        fn key(&mut self) -> u64 {
            let len = 1 + self.below(7) as usize;
            let digits: Vec<u8> = (0..len).map(|_| b'0' + self.below(3) as u8).collect();
            number_key(&digits).unwrap()
        }
    }

    /// Whether the model holds a key strictly below `key`.
    fn model_has_below(model: &BTreeMap<u64, u32>, key: u64) -> bool {
        model.range(key + 1..subtree_end(key)).next().is_some()
    }

    fn check(set: &NumberSet, model: &BTreeMap<u64, u32>, rng: &mut Rng) {
        assert_eq!(set.len(), model.len());
        let all: Vec<(u64, u32)> = set.iter().collect();
        let want: Vec<(u64, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(all, want, "iteration in key order");
        for _ in 0..300 {
            let k = rng.key();
            assert_eq!(set.get(k), model.get(&k).copied(), "get {k:x}");
            assert_eq!(
                set.has_below(k),
                model_has_below(model, k),
                "has_below {k:x}"
            );
            let longest = model
                .keys()
                .map(|m| common_digits(k, *m))
                .max()
                .unwrap_or(0);
            assert_eq!(set.longest_prefix(k), longest, "longest_prefix {k:x}");
            assert!(model.keys().all(|m| key_len(*m) <= set.max_len()));
        }
        // Read in order, the shapes are those of single reads; keys out of order too.
        let mut keys: Vec<u64> = (0..200).map(|_| rng.key()).collect();
        keys.extend(model.keys().step_by(7));
        keys.sort_unstable();
        keys.dedup();
        keys.push(keys[keys.len() / 2]);
        keys.push(keys[0]);
        let read: Vec<Option<u32>> = keys.iter().map(|k| model.get(k).copied()).collect();
        assert_eq!(set.shapes_in_order(&keys), read, "shapes_in_order");
        let (from, to) = (rng.key(), rng.key());
        let (from, to) = (from.min(to), from.max(to));
        let ranged: Vec<(u64, u32)> = set.range(from, to).collect();
        let want: Vec<(u64, u32)> = model.range(from..to).map(|(k, v)| (*k, *v)).collect();
        assert_eq!(ranged, want, "range {from:x}..{to:x}");
    }

    #[test]
    fn edits_overlays_and_folds_agree_with_a_sorted_map() {
        let mut rng = Rng(19);
        let mut model = BTreeMap::new();
        for _ in 0..2000 {
            model.insert(rng.key(), rng.below(50) as u32);
        }
        let mut set =
            NumberSet::from_sorted(model.iter().map(|(k, v)| (*k, *v)).collect()).unwrap();
        check(&set, &model, &mut rng);
        for round in 0..60 {
            let edits: Vec<(u64, Option<u32>)> = (0..1 + rng.below(200))
                .map(|_| {
                    let k = rng.key();
                    let shape = (rng.below(3) > 0).then(|| rng.below(50) as u32);
                    (k, shape)
                })
                .collect();
            for (k, s) in &edits {
                match s {
                    Some(s) => model.insert(*k, *s),
                    None => model.remove(k),
                };
            }
            let before = set.clone();
            // Five rounds of each kind, the read edits first on a folded set.
            set = if (round / 5) % 2 == 0 {
                set.with_edits(edits.clone())
            } else {
                // Each key once, its shape now read first: the last edit of a key wins.
                let mut last: BTreeMap<u64, Option<u32>> = BTreeMap::new();
                last.extend(edits.iter().copied());
                let keys: Vec<u64> = last.keys().copied().collect();
                let now = set.shapes_in_order(&keys);
                let read = last.iter().zip(now).map(|((k, s), now)| (*k, now, *s));
                set.with_read_edits(read.collect::<Vec<_>>())
            };
            check(&set, &model, &mut rng);
            // The keys said to have changed cover every key that did.
            let changed = NumberSet::changed_keys(&before, &set).expect("related sets");
            for (k, _) in &edits {
                if before.get(*k) != set.get(*k) {
                    assert!(changed.binary_search(k).is_ok(), "changed {k:x}");
                }
            }
            if round % 10 == 4 {
                set = set.folded();
                assert!(set.overlay.is_none());
                check(&set, &model, &mut rng);
            }
        }
    }

    #[test]
    fn a_large_overlay_folds_by_itself() {
        let one = NumberSet::from_sorted(vec![(number_key(b"9").unwrap(), 2)]).unwrap();
        let keys: Vec<u64> = (0..5000u64)
            .map(|i| number_key(format!("{:07}", i * 7).as_bytes()).unwrap())
            .collect();
        let now = one.shapes_in_order(&keys);
        let read = keys.iter().zip(now).map(|(k, now)| (*k, now, Some(1)));
        for set in [
            one.with_edits(keys.iter().map(|k| (*k, Some(1)))),
            one.with_read_edits(read),
        ] {
            assert!(
                set.overlay.is_none(),
                "past fold_above, the overlay is folded"
            );
            assert_eq!(set.len(), 5001);
            assert_eq!(set.get(keys[4999]), Some(1));
            assert_eq!(set.get(number_key(b"9").unwrap()), Some(2));
            assert!(set.has_below(number_key(b"000").unwrap()));
            assert!(!set.has_below(number_key(b"0000000").unwrap()));
        }
    }

    #[test]
    fn short_numbers_spread_over_the_slots() {
        // Keys of short numbers differ only in their top bits; every one of them must
        // still find its own slot without a long probe.
        for digits in [3usize, 4, 5] {
            let count = 10usize.pow(digits as u32);
            let keys: Vec<(u64, u32)> = (0..count)
                .map(|i| {
                    let d = format!("{i:0digits$}");
                    (number_key(d.as_bytes()).unwrap(), 0)
                })
                .collect();
            let set = NumberSet::from_sorted(keys.clone()).unwrap();
            let size = set.base.slots.len();
            let homes: std::collections::HashSet<usize> =
                keys.iter().map(|(k, _)| home_slot(*k, size)).collect();
            assert!(
                homes.len() * 2 > count,
                "{digits} digits: {} home slots for {count} keys",
                homes.len()
            );
        }
    }

    #[test]
    fn every_key_is_found_and_no_other_at_various_sizes() {
        for len in [1usize, 2, 3, 255, 256, 257, 65_535, 65_536, 65_537] {
            let keys: Vec<(u64, u32)> = (0..len)
                .map(|i| (number_key(format!("7{i:06}").as_bytes()).unwrap(), i as u32))
                .collect();
            let set = NumberSet::from_sorted(keys.clone()).unwrap();
            for (key, shape) in &keys {
                assert_eq!(set.get(*key), Some(*shape), "len {len}");
            }
            for i in 0..1000 {
                let absent = number_key(format!("8{i:06}").as_bytes()).unwrap();
                assert_eq!(set.get(absent), None, "len {len}");
            }
        }
    }

    #[test]
    fn the_entry_table_keeps_robin_hood_order_through_collisions_and_wraparound() {
        let mut rng = Rng(7);
        for n in 1..=64usize {
            for _ in 0..20 {
                let mut keys: Vec<u64> = (0..n).map(|_| rng.key()).collect();
                keys.sort_unstable();
                keys.dedup();
                let entries: Vec<(u64, u32)> = keys.iter().map(|k| (*k, *k as u32)).collect();
                let set = NumberSet::from_sorted(entries).unwrap();
                let slots = &set.base.slots;
                let size = slots.len();
                // Along a run, each slot's entry is at most one further from its home
                // than the one before it, and at home after an empty slot.
                for i in 0..size {
                    let key = slots[i].key();
                    if key == 0 {
                        continue;
                    }
                    let d = distance(home_slot(key, size), i, size);
                    let before = slots[(i + size - 1) % size].key();
                    match before {
                        0 => assert_eq!(d, 0, "n {n} slot {i}"),
                        b => {
                            let db = distance(home_slot(b, size), (i + size - 1) % size, size);
                            assert!(d <= db + 1, "n {n} slot {i}: {d} after {db}");
                        }
                    }
                }
                for k in &keys {
                    assert_eq!(set.get(*k), Some(*k as u32), "n {n}");
                }
                for _ in 0..50 {
                    let k = rng.key();
                    if keys.binary_search(&k).is_err() {
                        assert_eq!(set.get(k), None, "n {n}");
                    }
                }
            }
        }
        assert!(
            NumberSet::from_sorted(vec![(0, 1)]).is_none(),
            "key 0 marks empty"
        );
    }

    #[test]
    fn a_removed_run_is_skipped_by_counting() {
        let keys: Vec<(u64, u32)> = (0..100_000u32)
            .map(|i| (number_key(format!("5{i:06}").as_bytes()).unwrap(), i))
            .collect();
        let set = NumberSet::from_sorted(keys.clone()).unwrap();
        // One run of 4,000 removed numbers: 5048000 to 5051999.
        let gone = keys[48_000..52_000].iter().map(|(k, _)| (*k, None));
        let set = set.with_edits(gone);
        assert!(set.overlay.is_some(), "kept as an overlay, not folded");
        assert_eq!(set.live_before(50_000), Some(keys[47_999].0));
        assert_eq!(set.live_from(50_000), Some(keys[52_000].0));
        assert_eq!(set.live_from(48_000), Some(keys[52_000].0));
        assert_eq!(set.live_before(52_000), Some(keys[47_999].0));
        let mid = number_key(b"5050000").unwrap();
        assert_eq!(set.longest_prefix(mid), 3, "5052000 still shares 505");
        assert!(!set.has_below(number_key(b"5050").unwrap()));
        assert!(set.has_below(number_key(b"5052").unwrap()));
    }

    #[test]
    fn unsorted_or_repeated_keys_are_refused() {
        let a = number_key(b"1").unwrap();
        let b = number_key(b"12").unwrap();
        assert!(NumberSet::from_sorted(vec![(b, 0), (a, 0)]).is_none());
        assert!(NumberSet::from_sorted(vec![(a, 0), (a, 1)]).is_none());
        assert!(NumberSet::from_sorted(vec![(a, 0), (b, 1)]).is_some());
    }
}
