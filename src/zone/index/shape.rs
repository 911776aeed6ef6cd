//! Number keys and the shape table: the compact form of the numbers of a zone.
//!
//! Owns: the number key ([`number_key`], [`key_len`], [`key_digits`],
//! [`is_number_key`]): up to [`MAX_KEY_DIGITS`] single-digit labels as one `u64` whose
//! integer order is the zone's canonical name order; and [`ShapeTable`]: one name's
//! packed RRset block (the layout of [`pack_rrsets`](super::pack_rrsets)) interned with
//! the name's number cut out of its NAPTR regexps, so that the numbers sharing routes
//! share one copy, and materialized back byte for byte.
//!
//! Must not touch: which names are numbers, where keys and shape ids are kept, lookups,
//! walks or the store (the owner of the table decides all of these). Imports nothing else
//! of the index: the packed block is read here by its own checked parser.
//!
//! ## Shape layout
//!
//! A shape is a packed block (`[type u16][ttl u32][count u16]`, then `count` records)
//! in which a record's `len u16` says how to read it:
//! - `len < 0x8000`: a literal record, `[len][rdata]`, as in the block;
//! - `0x8000 | n` with `n ≤ 250`: a **template** record,
//!   `[0x8000 | n][hole u8][strlen_at u8][n bytes of rdata without the number]`. The
//!   number goes in at offset `hole`; the byte at `strlen_at` is the length byte of the
//!   character-string that held it, stored *minus* the number's length, so one template
//!   serves numbers of every length;
//! - `0xFFFF`: an escaped literal, `[0xFFFF][len u16][rdata]`, for an rdata of 32 KiB or
//!   more, whose length would otherwise read as a template mark.
//!
//! Only a NAPTR record (RFC 3403 §4.1) of at most [`TEMPLATE_RDATA_MAX`] bytes whose
//! regexp (its third character-string) contains the number becomes a template: the first
//! `+<number>` if there is one (the `+` stays literal), else the first `<number>`; one hole
//! per record. Everything else, the number in the flags, services or replacement, a second
//! occurrence, stays literal. Reconstruction copies the bytes, puts the number in and adds
//! its length to the two length fields, so it is byte-identical by construction.

use memchr::memmem;
use std::collections::HashMap;
use std::sync::Arc;

/// Most digit labels a number key holds (E.164 numbers have at most 15 digits).
pub const MAX_KEY_DIGITS: usize = 15;

/// Largest NAPTR rdata (with the number) that may become a template: the template's
/// `hole` and `strlen_at` are single bytes.
pub const TEMPLATE_RDATA_MAX: usize = 250;

const TYPE_NAPTR: u16 = 35;
/// Top bit of a record's `len`: a template or an escaped literal follows.
const MARK: u16 = 0x8000;
/// `len` of an escaped literal (its real length follows).
const ESCAPE: u16 = 0xFFFF;

// ---------------------------------------------------------------------------------
// Number keys

/// The key of a name made of 1–[`MAX_KEY_DIGITS`] single-digit labels below the apex,
/// given as their ASCII digits, closest to the apex first (`5.5.5.1` below the apex is
/// `b"1555"`, key `0x2666 << 44`). `None` for no digit, too many, or a byte that is not
/// a digit.
///
/// Each digit `d` is a nibble `d + 1`, left-aligned in the low 60 bits: the first digit
/// in bits 56–59. So integer order is the canonical DNS order of the names (RFC 4034
/// §6.1, labels compared from the apex down): a name sorts before its extensions (its
/// trailing nibbles are 0) and siblings sort by digit. The top 4 bits stay clear, so a
/// key is a positive SQLite INTEGER.
pub fn number_key(digits_apex_first: &[u8]) -> Option<u64> {
    if digits_apex_first.is_empty() || digits_apex_first.len() > MAX_KEY_DIGITS {
        return None;
    }
    let mut key = 0u64;
    for (i, &d) in digits_apex_first.iter().enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        key |= u64::from(d - b'0' + 1) << (56 - 4 * i);
    }
    Some(key)
}

/// How many digits a key holds: 0 for key 0 (which no name has). Every nibble of a
/// valid key is 1–10, so the trailing zero nibbles are exactly the unused places.
#[inline]
pub fn key_len(key: u64) -> usize {
    let key = key & KEY_MASK;
    if key == 0 {
        0
    } else {
        MAX_KEY_DIGITS - key.trailing_zeros() as usize / 4
    }
}

const KEY_MASK: u64 = (1 << (4 * MAX_KEY_DIGITS)) - 1;

/// The ASCII digits of a key, closest to the apex first, and how many there are: the
/// inverse of [`number_key`]. A key that [`is_number_key`] rejects (a damaged store row)
/// may give bytes that are not digits, never a panic.
#[inline]
pub fn key_digits(key: u64) -> ([u8; MAX_KEY_DIGITS], usize) {
    let len = key_len(key);
    let mut out = [0u8; MAX_KEY_DIGITS];
    for (i, slot) in out.iter_mut().enumerate().take(len) {
        let nibble = ((key >> (56 - 4 * i)) & 0xF) as u8;
        *slot = (b'0' - 1).wrapping_add(nibble);
    }
    (out, len)
}

/// True when `key` is what [`number_key`] makes of some digits: top bits clear, and
/// nibbles 1–10 up to the first 0, then only zeros.
pub fn is_number_key(key: u64) -> bool {
    let len = key_len(key);
    key & !KEY_MASK == 0
        && len > 0
        && (0..len).all(|i| matches!((key >> (56 - 4 * i)) & 0xF, 1..=10))
}

/// The digits of a number name (closest to the apex first), held inline: what a shape's
/// templates are filled with when its records are read.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Digits {
    bytes: [u8; MAX_KEY_DIGITS],
    len: u8,
}

impl Digits {
    /// No digits: what plain (non-shape) RRset blocks carry.
    pub const NONE: Digits = Digits {
        bytes: [0; MAX_KEY_DIGITS],
        len: 0,
    };

    /// The leading single-digit labels of `labels` (at most [`MAX_KEY_DIGITS`]).
    #[inline]
    pub fn leading<L: AsRef<[u8]>>(labels: &[L]) -> Digits {
        let mut d = Digits::NONE;
        for l in labels.iter().take(MAX_KEY_DIGITS) {
            match l.as_ref() {
                [c @ b'0'..=b'9'] => {
                    d.bytes[d.len as usize] = *c;
                    d.len += 1;
                }
                _ => break,
            }
        }
        d
    }

    /// The digits of a number key.
    #[inline]
    pub fn of_key(key: u64) -> Digits {
        let (bytes, len) = key_digits(key);
        Digits {
            bytes,
            len: len as u8,
        }
    }

    /// The first `len` digits (all of them when there are fewer).
    #[inline]
    pub fn prefix(&self, len: usize) -> Digits {
        let mut d = *self;
        d.len = d.len.min(len as u8);
        d.bytes[d.len as usize..].fill(0);
        d
    }

    /// These digits and one more ASCII digit, when there is room.
    #[inline]
    pub fn with(&self, digit: u8) -> Option<Digits> {
        if self.len as usize >= MAX_KEY_DIGITS || !digit.is_ascii_digit() {
            return None;
        }
        let mut d = *self;
        d.bytes[d.len as usize] = digit;
        d.len += 1;
        Some(d)
    }

    /// The key of these digits (`None` when there are none).
    #[inline]
    pub fn key(&self) -> Option<u64> {
        number_key(self.as_bytes())
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for Digits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digits({})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Longest rdata a template gives back: the template's limit with the number in.
pub const BUILT_RDATA_MAX: usize = TEMPLATE_RDATA_MAX + MAX_KEY_DIGITS;

/// One record's rdata read from a zone: borrowed as stored, or built from a shape's
/// template with the name's number put in. Reads as `&[u8]` either way.
// The built variant is large on purpose: a lookup's records are read without a heap
// allocation, and an `Rdata` lives on the stack only while it is used.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum Rdata<'a> {
    Wire(&'a [u8]),
    Built {
        len: u16,
        buf: [u8; BUILT_RDATA_MAX],
    },
}

impl<'a> Rdata<'a> {
    /// The rdata as stored, when it was not built from a template (always so for the
    /// records of names other than numbers, such as the apex's).
    pub fn wire(self) -> Option<&'a [u8]> {
        match self {
            Rdata::Wire(w) => Some(w),
            Rdata::Built { .. } => None,
        }
    }
}

impl std::ops::Deref for Rdata<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Rdata::Wire(w) => w,
            Rdata::Built { len, buf } => &buf[..*len as usize],
        }
    }
}

impl AsRef<[u8]> for Rdata<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Rdata<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rdata({:?})", &self[..])
    }
}

impl PartialEq for Rdata<'_> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Rdata<'_> {}

/// How many bytes the record at the start of `s` (inside a shape) takes, or `None`
/// when it is cut short.
#[inline]
pub fn shape_record_len(s: &[u8]) -> Option<usize> {
    let mark = u16_at(s, 0)?;
    let used = if mark == ESCAPE {
        4 + usize::from(u16_at(s, 2)?)
    } else if mark & MARK != 0 {
        4 + usize::from(mark & !MARK)
    } else {
        2 + usize::from(mark)
    };
    (used <= s.len()).then_some(used)
}

/// Reads the record at the start of `s` (inside a shape) with `number` put into a
/// template, and the bytes it takes. `None` when it is cut short or the number does not
/// fit (not one the shape was interned for).
#[inline]
pub fn read_shape_record<'a>(s: &'a [u8], number: &[u8]) -> Option<(Rdata<'a>, usize)> {
    let used = shape_record_len(s)?;
    let mark = u16_at(s, 0)?;
    if mark == ESCAPE {
        return Some((Rdata::Wire(&s[4..used]), used));
    }
    if mark & MARK == 0 {
        return Some((Rdata::Wire(&s[2..used]), used));
    }
    let (hole, strlen_at) = (usize::from(s[2]), usize::from(s[3]));
    let body = &s[4..used];
    let total = body.len() + number.len();
    let strlen = usize::from(*body.get(strlen_at)?) + number.len();
    if hole > body.len() || strlen > usize::from(u8::MAX) || total > BUILT_RDATA_MAX {
        return None;
    }
    let mut buf = [0u8; BUILT_RDATA_MAX];
    buf[..hole].copy_from_slice(&body[..hole]);
    buf[hole..hole + number.len()].copy_from_slice(number);
    buf[hole + number.len()..total].copy_from_slice(&body[hole..]);
    buf[if strlen_at < hole {
        strlen_at
    } else {
        strlen_at + number.len()
    }] = strlen as u8;
    let len = total as u16;
    Some((Rdata::Built { len, buf }, used))
}

// ---------------------------------------------------------------------------------
// Shapes

/// A shape's number in its table. Dense from 0: a base can keep it in 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeId(pub u32);

/// Why a block cannot be interned or a shape materialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The bytes are not a packed RRset block: a header or record is cut short at `at`.
    #[error("packed RRset block cut short at byte {at}")]
    Malformed { at: usize },
    /// The id names no live shape (never interned, or released).
    #[error("no shape {0} in the table")]
    Unknown(u32),
    /// Putting the number in would make a character-string longer than 255 bytes: the
    /// number is not one of those the shape was interned for.
    #[error("a {len}-digit number does not fit shape {id}")]
    NumberTooLong { id: u32, len: usize },
    /// Every `u32` id is taken.
    #[error("the shape table is full")]
    Full,
}

/// Interned shapes with a reference count each.
///
/// **Ids and their release.** The table keeps the counts: each [`intern`](Self::intern)
/// (and [`retain`](Self::retain)) adds one reference, each [`release`](Self::release)
/// drops one. At zero the shape's bytes are freed and its id goes on a free list, to be
/// handed out again by a later `intern`. Reuse keeps the ids dense (a `Vec` index) and
/// is safe because releasing needs `&mut self`: a reader that materializes through a
/// shared table (`&self`, or an older clone) cannot see an id change meaning. An owner
/// that keeps ids outside the table (a base built against an older clone, the store)
/// must release only ids that nothing it still serves names.
///
/// The zone index today counts only what its builder interns: an edit looks a shape up
/// with [`find`](Self::find) (no reference) and interns into a copy of the table only
/// a shape it lacks, and nothing is released, so shapes that edits leave unused stay
/// until the zone is next built whole (a restart or reload).
#[derive(Clone, Default)]
pub struct ShapeTable {
    slots: Vec<Slot>,
    /// Shape bytes → id, for interning; the bytes are shared with the slot.
    index: HashMap<Arc<[u8]>, u32, foldhash::quality::RandomState>,
    /// Ids of released slots, reused first.
    free: Vec<u32>,
    /// Sum of the live shapes' byte lengths, and of their specials' counts.
    shape_bytes: usize,
    special_count: usize,
    /// Reused by `intern`: the shape being encoded and its special records.
    scratch: Vec<u8>,
    scratch_specials: Vec<usize>,
}

#[derive(Clone, Default)]
struct Slot {
    /// `None` once released.
    shape: Option<Arc<[u8]>>,
    /// Offsets in `shape` of the records that are not copied as they are (templates and
    /// escaped literals), in order: `materialize` copies the runs between them in one
    /// `memcpy` each, so a shape without a template is one copy.
    specials: Box<[usize]>,
    refs: u64,
}

impl ShapeTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Interns the shape of one name's packed RRset `block` (exactly as
    /// [`pack_rrsets`](super::pack_rrsets) makes it), with `number` (the ASCII digits of
    /// the E.164 number the name spells, zone prefix included, no `+`) cut out of its
    /// NAPTR regexps. Adds one reference to the shape, new or not. A `number` that is
    /// empty or not all digits templates nothing (the block is kept whole).
    pub fn intern(&mut self, block: &[u8], number: &[u8]) -> Result<ShapeId, ShapeError> {
        let mut shape = std::mem::take(&mut self.scratch);
        let mut specials = std::mem::take(&mut self.scratch_specials);
        shape.clear();
        specials.clear();
        let encoded = encode(block, number, &mut shape, &mut specials);
        let id = encoded.and_then(|()| self.insert(&shape, &specials));
        self.scratch = shape;
        self.scratch_specials = specials;
        id
    }

    /// The id of the shape `block` would intern as for `number`, when the table has it
    /// (no reference added: for owners that share the table with older copies).
    pub fn find(&self, block: &[u8], number: &[u8]) -> Result<Option<ShapeId>, ShapeError> {
        let (mut shape, mut specials) = (Vec::new(), Vec::new());
        encode(block, number, &mut shape, &mut specials)?;
        Ok(self.index.get(&shape[..]).map(|id| ShapeId(*id)))
    }

    /// The id of a shape given in its kept bytes ([`shape`](Self::shape)), when the
    /// table has it (no reference added, as for [`find`](Self::find)).
    pub fn id_of(&self, shape: &[u8]) -> Option<ShapeId> {
        self.index.get(shape).map(|id| ShapeId(*id))
    }

    fn insert(&mut self, shape: &[u8], specials: &[usize]) -> Result<ShapeId, ShapeError> {
        if let Some(&id) = self.index.get(shape) {
            self.slots[id as usize].refs += 1;
            return Ok(ShapeId(id));
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => u32::try_from(self.slots.len()).map_err(|_| ShapeError::Full)?,
        };
        let bytes: Arc<[u8]> = shape.into();
        let slot = Slot {
            shape: Some(bytes.clone()),
            specials: specials.into(),
            refs: 1,
        };
        match self.slots.get_mut(id as usize) {
            Some(s) => *s = slot,
            None => self.slots.push(slot),
        }
        self.index.insert(bytes, id);
        self.shape_bytes += shape.len();
        self.special_count += specials.len();
        Ok(ShapeId(id))
    }

    /// Interns shape bytes as they were kept (the store's copy of [`shape`](Self::shape)),
    /// checked first: a damaged copy is an error, never a panic when read. Adds one
    /// reference, as [`intern`](Self::intern) does. Returns the id and the shape's
    /// RRsets (see [`shape_sets`]).
    pub fn intern_shape(&mut self, shape: &[u8]) -> Result<(ShapeId, Vec<(u16, u16)>), ShapeError> {
        let mut specials = std::mem::take(&mut self.scratch_specials);
        specials.clear();
        let checked = check_shape(shape, &mut specials);
        let id = checked.and_then(|sets| Ok((self.insert(shape, &specials)?, sets)));
        self.scratch_specials = specials;
        id
    }

    /// Adds a reference to a live shape (the owner copied a number that points at it).
    pub fn retain(&mut self, id: ShapeId) -> Result<(), ShapeError> {
        match self.slots.get_mut(id.0 as usize) {
            Some(s) if s.shape.is_some() => {
                s.refs += 1;
                Ok(())
            }
            _ => Err(ShapeError::Unknown(id.0)),
        }
    }

    /// Drops one reference; at zero the shape is freed and its id may be reused. Returns
    /// whether it was freed.
    pub fn release(&mut self, id: ShapeId) -> Result<bool, ShapeError> {
        let slot = match self.slots.get_mut(id.0 as usize) {
            Some(s) if s.shape.is_some() => s,
            _ => return Err(ShapeError::Unknown(id.0)),
        };
        slot.refs -= 1;
        if slot.refs > 0 {
            return Ok(false);
        }
        if let Some(bytes) = slot.shape.take() {
            self.shape_bytes -= bytes.len();
            self.index.remove(&bytes[..]);
        }
        self.special_count -= std::mem::take(&mut slot.specials).len();
        self.free.push(id.0);
        Ok(true)
    }

    /// The references a shape holds (0 for an unknown or released id).
    pub fn refs(&self, id: ShapeId) -> u64 {
        self.slots.get(id.0 as usize).map_or(0, |s| s.refs)
    }

    /// A live shape's bytes in the layout described in the module header (for the store
    /// and for reading RRsets without materializing them).
    pub fn shape(&self, id: ShapeId) -> Option<&[u8]> {
        self.slots.get(id.0 as usize)?.shape.as_deref()
    }

    /// Writes the block `intern` was given for a number into `out` (cleared first; no
    /// allocation when `out` already has the room), with `number` put back into every
    /// template record. On an error `out` is left empty.
    pub fn materialize(
        &self,
        id: ShapeId,
        number: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ShapeError> {
        out.clear();
        let slot = self.slots.get(id.0 as usize);
        let Some((shape, specials)) = slot.and_then(|s| Some((s.shape.as_deref()?, &s.specials)))
        else {
            return Err(ShapeError::Unknown(id.0));
        };
        fill(shape, specials, number, out).map_err(|()| {
            out.clear();
            ShapeError::NumberTooLong {
                id: id.0,
                len: number.len(),
            }
        })
    }

    /// Every live shape and its id, by id.
    pub fn live(&self) -> impl Iterator<Item = (ShapeId, &[u8])> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((ShapeId(i as u32), s.shape.as_deref()?)))
    }

    /// Live shapes.
    pub fn shape_count(&self) -> usize {
        self.index.len()
    }

    /// Heap bytes the table uses (shapes, slots, the intern index; allocator overhead
    /// not counted), for metrics.
    pub fn bytes(&self) -> usize {
        let arc_header = 2 * std::mem::size_of::<usize>();
        self.shape_bytes
            + self.index.len() * arc_header
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.special_count * std::mem::size_of::<usize>()
            + self.index.capacity() * (std::mem::size_of::<(Arc<[u8]>, u32)>() + 1)
            + self.free.capacity() * 4
            + self.scratch.capacity()
            + self.scratch_specials.capacity() * std::mem::size_of::<usize>()
    }
}

impl std::fmt::Debug for ShapeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapeTable")
            .field("shapes", &self.shape_count())
            .field("bytes", &self.bytes())
            .finish()
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Encodes a packed block as a shape (see the module header) into `out`, noting where
/// its special records start in `specials`.
fn encode(
    block: &[u8],
    number: &[u8],
    out: &mut Vec<u8>,
    specials: &mut Vec<usize>,
) -> Result<(), ShapeError> {
    let templating = !number.is_empty() && number.iter().all(u8::is_ascii_digit);
    let mut at = 0;
    while at < block.len() {
        let header = block.get(at..at + 8).ok_or(ShapeError::Malformed { at })?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let count = u16::from_be_bytes([header[6], header[7]]);
        out.extend_from_slice(header);
        at += 8;
        for _ in 0..count {
            let len = u16_at(block, at).ok_or(ShapeError::Malformed { at })?;
            let rdata = block
                .get(at + 2..at + 2 + len as usize)
                .ok_or(ShapeError::Malformed { at })?;
            let hole = (templating && rtype == TYPE_NAPTR)
                .then(|| find_hole(rdata, number))
                .flatten();
            if let Some(hole) = hole {
                specials.push(out.len());
                put_template(rdata, number.len(), hole, out);
            } else if len >= MARK {
                specials.push(out.len());
                out.extend_from_slice(&ESCAPE.to_be_bytes());
                out.extend_from_slice(&block[at..at + 2 + len as usize]);
            } else {
                out.extend_from_slice(&block[at..at + 2 + len as usize]);
            }
            at += 2 + len as usize;
        }
    }
    Ok(())
}

/// The shape of one name's packed RRset `block` for `number` (see
/// [`ShapeTable::intern`]), without a table: what the store keeps for a number.
pub fn encode_shape(block: &[u8], number: &[u8]) -> Result<Vec<u8>, ShapeError> {
    let (mut shape, mut specials) = (Vec::with_capacity(block.len()), Vec::new());
    encode(block, number, &mut shape, &mut specials)?;
    Ok(shape)
}

/// The packed block a shape stands for with `number` put back (see
/// [`ShapeTable::materialize`]), for shape bytes not in a table; they are checked first.
pub fn decode_shape(shape: &[u8], number: &[u8]) -> Result<Vec<u8>, ShapeError> {
    let mut specials = Vec::new();
    check_shape(shape, &mut specials)?;
    let mut out = Vec::new();
    fill(shape, &specials, number, &mut out).map_err(|()| ShapeError::NumberTooLong {
        id: u32::MAX,
        len: number.len(),
    })?;
    Ok(out)
}

/// Appends the block `shape` stands for with `number` put into its special records
/// (at `specials`, as `check_shape` or `encode` found them): the runs between them in
/// one copy each. `Err` when the number does not fit a template.
fn fill(shape: &[u8], specials: &[usize], number: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    out.reserve(shape.len() + specials.len() * number.len());
    let mut from = 0;
    for &at in specials {
        out.extend_from_slice(&shape[from..at]);
        from = at + put_special(&shape[at..], number, out).ok_or(())?;
    }
    out.extend_from_slice(&shape[from..]);
    Ok(())
}

/// The RRsets a shape holds, `(type, record count)` each, in order: the shape's reading
/// of [`RrSetIter`](super::node::RrSetIter) headers, for statistics. Checks the shape.
pub fn shape_sets(shape: &[u8]) -> Result<Vec<(u16, u16)>, ShapeError> {
    check_shape(shape, &mut Vec::new())
}

/// Checks that `shape` reads as the module header lays it out, every template's hole
/// and length byte inside its record (so `put_special` cannot index out of bounds);
/// pushes the offsets of its special records onto `specials` and returns its RRsets.
fn check_shape(shape: &[u8], specials: &mut Vec<usize>) -> Result<Vec<(u16, u16)>, ShapeError> {
    let mut sets = Vec::new();
    let mut at = 0;
    while at < shape.len() {
        let header = shape.get(at..at + 8).ok_or(ShapeError::Malformed { at })?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let count = u16::from_be_bytes([header[6], header[7]]);
        sets.push((rtype, count));
        at += 8;
        for _ in 0..count {
            let rest = &shape[at..];
            let used = shape_record_len(rest).ok_or(ShapeError::Malformed { at })?;
            let mark = u16_at(rest, 0).ok_or(ShapeError::Malformed { at })?;
            if mark == ESCAPE {
                specials.push(at);
            } else if mark & MARK != 0 {
                // `encode` puts the length byte before the hole; `put_special` counts on it.
                let body_len = used - 4;
                let (hole, strlen_at) = (usize::from(rest[2]), usize::from(rest[3]));
                if hole > body_len || strlen_at >= hole {
                    return Err(ShapeError::Malformed { at });
                }
                specials.push(at);
            }
            at += used;
        }
    }
    Ok(sets)
}

/// Where a number sits in a NAPTR rdata: its first digit, and the length byte of the
/// character-string around it.
#[derive(Clone, Copy)]
struct Hole {
    at: usize,
    strlen_at: usize,
}

/// The hole for `number` in a NAPTR rdata's regexp, if the record may be a template.
fn find_hole(rdata: &[u8], number: &[u8]) -> Option<Hole> {
    if rdata.len() > TEMPLATE_RDATA_MAX {
        return None;
    }
    // order u16, preference u16, then flags, services and regexp character-strings
    let mut strlen_at = 4;
    for _ in 0..2 {
        strlen_at += 1 + usize::from(*rdata.get(strlen_at)?);
    }
    let start = strlen_at + 1;
    let regexp = rdata.get(start..start + usize::from(*rdata.get(strlen_at)?))?;
    // The first `+<number>`, else the first `<number>`. Matches of an all-digit number
    // cannot overlap a `+`, so the non-overlapping search misses no `+<number>`.
    let mut first = None;
    for i in memmem::find_iter(regexp, number) {
        if i > 0 && regexp[i - 1] == b'+' {
            first = Some(i);
            break;
        }
        first.get_or_insert(i);
    }
    Some(Hole {
        at: start + first?,
        strlen_at,
    })
}

/// Writes a template record for `rdata` with the `n` number bytes at `hole` cut out.
fn put_template(rdata: &[u8], n: usize, hole: Hole, out: &mut Vec<u8>) {
    let without = rdata.len() - n;
    // find_hole bounds rdata at TEMPLATE_RDATA_MAX, so these fit their fields
    out.extend_from_slice(&(MARK | without as u16).to_be_bytes());
    out.push(hole.at as u8);
    out.push(hole.strlen_at as u8);
    let base = out.len();
    out.extend_from_slice(&rdata[..hole.at]);
    out.extend_from_slice(&rdata[hole.at + n..]);
    out[base + hole.strlen_at] -= n as u8;
}

/// Writes the record a special starts at `s` with `number` put in; returns the shape
/// bytes it used, or `None` when the number does not fit the character-string.
#[inline]
fn put_special(s: &[u8], number: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mark = u16::from_be_bytes([s[0], s[1]]);
    if mark == ESCAPE {
        let len = usize::from(u16::from_be_bytes([s[2], s[3]]));
        out.extend_from_slice(&s[2..4 + len]);
        return Some(4 + len);
    }
    let len = usize::from(mark & !MARK);
    let (hole, strlen_at) = (usize::from(s[2]), usize::from(s[3]));
    let body = &s[4..4 + len];
    let strlen = usize::from(body[strlen_at]) + number.len();
    if strlen > usize::from(u8::MAX) {
        return None;
    }
    out.extend_from_slice(&((len + number.len()) as u16).to_be_bytes());
    let base = out.len();
    out.extend_from_slice(&body[..hole]);
    out.extend_from_slice(number);
    out.extend_from_slice(&body[hole..]);
    out[base + strlen_at] = strlen as u8;
    Some(4 + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::{TYPE_A, cmp_labels};
    use crate::zone::index::{Origin, ZoneBuilder, pack_rrsets};
    use std::cmp::Ordering;

    const TYPE_TXT: u16 = 16;

    /// SplitMix64: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    // ----------------------------------------------------------------------------
    // Keys

    /// The canonical order of two names given as apex-first digit labels: label by
    /// label with the index's label order, a name before its extensions.
    fn name_order(a: &[u8], b: &[u8]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            match cmp_labels(std::slice::from_ref(x), std::slice::from_ref(y)) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        a.len().cmp(&b.len())
    }

    /// Random digit names, drawn so that prefixes, siblings and equal names are common.
    fn random_names(rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
        let stems: Vec<Vec<u8>> = (0..8)
            .map(|_| {
                (0..rng.below(6))
                    .map(|_| b'0' + rng.below(10) as u8)
                    .collect()
            })
            .collect();
        (0..count)
            .map(|_| {
                let mut n = stems[rng.below(8) as usize].clone();
                let extra = rng.below(16) as usize;
                while n.len() < MAX_KEY_DIGITS && n.len() < extra.max(1) {
                    // a small alphabet makes shared prefixes likely
                    n.push(b'0' + [0, 1, 9, rng.below(10) as u8][rng.below(4) as usize]);
                }
                n
            })
            .collect()
    }

    #[test]
    fn keys_sort_as_the_names_do() {
        let mut rng = Rng(19);
        let names = random_names(&mut rng, 4000);
        for (i, a) in names.iter().enumerate() {
            let ka = number_key(a).unwrap();
            let (digits, len) = key_digits(ka);
            assert_eq!(&digits[..len], &a[..], "round trip of {a:?}");
            assert_eq!(key_len(ka), a.len());
            assert!(is_number_key(ka));
            // against a few others, some of them near in the list (shared stems)
            for b in names.iter().skip(i).take(40) {
                let kb = number_key(b).unwrap();
                assert_eq!(ka.cmp(&kb), name_order(a, b), "{a:?} vs {b:?}");
            }
        }
        let mut by_key = names.clone();
        by_key.sort_by_key(|n| number_key(n));
        let mut by_name = names;
        by_name.sort_by(|a, b| name_order(a, b));
        assert_eq!(by_key, by_name);
    }

    #[test]
    fn keys_follow_the_zone_walk() {
        // the order a zone transfer lists names in is the keys' integer order
        let mut rng = Rng(7);
        let mut b = ZoneBuilder::new();
        let src = Origin { file: 0, line: 1 };
        b.add_labels::<&[u8]>(&[], crate::name::TYPE_SOA, 60, b"soa", src);
        for n in random_names(&mut rng, 3000) {
            let labels: Vec<&[u8]> = n.chunks(1).collect();
            b.add_labels(&labels, TYPE_A, 60, &[127, 0, 0, 1], src);
        }
        let (tree, _, issues) = b.build();
        assert!(issues.iter().all(|i| !i.error), "{issues:?}");
        let mut keys = Vec::new();
        tree.walk(|path, _| {
            let digits: Vec<u8> = path.iter().map(|l| l[0]).collect();
            if !digits.is_empty() {
                keys.push(number_key(&digits).unwrap());
            }
        });
        assert!(keys.len() > 1000, "{}", keys.len());
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "walk order is key order"
        );
    }

    #[test]
    fn keys_of_known_names() {
        assert_eq!(number_key(b"1555"), Some(0x2666 << 44));
        assert_eq!(number_key(b"0"), Some(1 << 56));
        let longest = number_key(b"999999999999999").unwrap();
        assert_eq!(longest, 0x0AAA_AAAA_AAAA_AAAA);
        assert_eq!(key_len(longest), 15);
        assert!(longest < 1 << 60, "a positive SQLite INTEGER");
        assert_eq!(number_key(b""), None);
        assert_eq!(number_key(b"1234567890123456"), None);
        assert_eq!(number_key(b"12a"), None);
        assert_eq!(number_key(b"*"), None);
    }

    #[test]
    fn damaged_keys_are_told_apart() {
        assert!(!is_number_key(0));
        assert!(!is_number_key(1 << 60 | 1 << 56), "top bits");
        assert!(!is_number_key(0x0B << 56), "nibble 11");
        assert!(!is_number_key(0x0F << 56), "nibble 15");
        // a trailing 1 after an empty place: reads as 15 digits, one of them not a digit
        let gap = (2 << 56) | 1;
        assert!(!is_number_key(gap));
        let (digits, len) = key_digits(gap);
        assert_eq!(len, 15);
        assert!(!digits[..len].iter().all(u8::is_ascii_digit));
        for key in [u64::MAX, 1, 1 << 63, 0x0FFF_FFFF_FFFF_FFFF] {
            let (_, len) = key_digits(key);
            assert!(len <= MAX_KEY_DIGITS);
            assert!(!is_number_key(key), "{key:x}");
        }
    }

    // ----------------------------------------------------------------------------
    // Shapes: record builders

    /// A character-string.
    fn cs(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    /// NAPTR rdata (RFC 3403 §4.1) with a wire-form replacement.
    fn naptr_wire(
        order: u16,
        pref: u16,
        flags: &str,
        services: &str,
        re: &[u8],
        repl: &[u8],
    ) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&order.to_be_bytes());
        r.extend_from_slice(&pref.to_be_bytes());
        cs(&mut r, flags.as_bytes());
        cs(&mut r, services.as_bytes());
        cs(&mut r, re);
        r.extend_from_slice(repl);
        r
    }

    /// NAPTR rdata with the root as replacement, as ENUM records have.
    fn naptr(order: u16, pref: u16, flags: &str, services: &str, re: &str) -> Vec<u8> {
        naptr_wire(order, pref, flags, services, re.as_bytes(), &[0])
    }

    fn sip(e164: &str, host: &str, tail: &str) -> String {
        format!("!^.*$!sip:{e164}@{host}{tail}!")
    }

    fn block(sets: &[(u16, u32, Vec<Vec<u8>>)]) -> Vec<u8> {
        let sets: Vec<(u16, u32, Vec<&[u8]>)> = sets
            .iter()
            .map(|(t, ttl, rds)| (*t, *ttl, rds.iter().map(Vec::as_slice).collect()))
            .collect();
        pack_rrsets(&sets).map(|b| b.to_vec()).unwrap_or_default()
    }

    fn naptrs(rdatas: Vec<Vec<u8>>) -> Vec<u8> {
        block(&[(TYPE_NAPTR, 3600, rdatas)])
    }

    /// Interns and checks that materializing gives the block back, byte for byte.
    fn round_trip(t: &mut ShapeTable, block: &[u8], number: &str) -> ShapeId {
        let id = t.intern(block, number.as_bytes()).unwrap();
        let mut out = Vec::new();
        t.materialize(id, number.as_bytes(), &mut out).unwrap();
        assert_eq!(out, block, "number {number}");
        id
    }

    /// How many template records a shape has.
    fn templates(t: &ShapeTable, id: ShapeId) -> usize {
        let s = t.shape(id).unwrap();
        t.slots[id.0 as usize]
            .specials
            .iter()
            .filter(|&&at| u16_at(s, at) != Some(ESCAPE))
            .count()
    }

    const SBC: &str = "sbc3.carrier-a.example.net";
    const PBX: &str = "pbx7.tenant.example.com";

    /// The generator's record forms (`examples/gen_numbers/set.rs`) for one number.
    fn gen_forms(e164: &str) -> Vec<(&'static str, Vec<Vec<u8>>)> {
        let backref = format!("!^\\+([0-9]+)$!sip:\\1@{PBX}!");
        vec![
            (
                "sip1",
                vec![naptr(100, 10, "u", "E2U+sip", &sip(e164, SBC, ""))],
            ),
            (
                "sip2pref",
                vec![
                    naptr(100, 20, "u", "E2U+sip", &sip(e164, PBX, ";transport=tcp")),
                    naptr(100, 10, "u", "E2U+sip", &sip(e164, SBC, "")),
                ],
            ),
            (
                "sip_tel",
                vec![
                    naptr(100, 10, "u", "E2U+sip", &sip(e164, SBC, "")),
                    naptr(100, 20, "u", "E2U+pstn:tel", &format!("!^.*$!tel:{e164}!")),
                ],
            ),
            (
                "order3",
                vec![
                    naptr(200, 10, "u", "E2U+sip", &sip(e164, PBX, "")),
                    naptr(300, 10, "u", "E2U+pstn:tel", &format!("!^.*$!tel:{e164}!")),
                    naptr(100, 50, "u", "E2U+sip", &sip(e164, SBC, ":5080")),
                ],
            ),
            ("backref", vec![naptr(100, 10, "u", "E2U+sip", &backref)]),
            (
                "mixedcase",
                vec![
                    naptr(10, 10, "U", "e2u+sip", &sip(e164, PBX, "")),
                    naptr(
                        10,
                        20,
                        "u",
                        "E2U+email:mailto",
                        "!^.*$!mailto:voicemail@tenant.example.com!",
                    ),
                ],
            ),
            (
                "equalpref",
                vec![
                    naptr(100, 10, "u", "E2U+sip", &sip(e164, SBC, "")),
                    naptr(
                        100,
                        10,
                        "u",
                        "E2U+sip",
                        &sip(e164, "sbc8.carrier-a.example.net", ""),
                    ),
                ],
            ),
        ]
    }

    // ----------------------------------------------------------------------------
    // Shapes: behaviour

    #[test]
    fn every_generated_form_round_trips_and_templates_what_carries_the_number() {
        let mut t = ShapeTable::new();
        for (name, rdatas) in gen_forms("+15551234567") {
            let carrying = rdatas
                .iter()
                .filter(|r| memmem::find(r, b"15551234567").is_some())
                .count();
            let id = round_trip(&mut t, &naptrs(rdatas), "15551234567");
            assert_eq!(templates(&t, id), carrying, "{name}");
            // the shape no longer holds the number
            assert!(
                memmem::find(t.shape(id).unwrap(), b"15551234567").is_none(),
                "{name}"
            );
        }
        assert_eq!(t.shape_count(), 7);
    }

    #[test]
    fn numbers_of_different_lengths_share_a_shape() {
        let mut t = ShapeTable::new();
        // (a one-digit number would match the `\1` of the back-reference form)
        let numbers = ["15551234567", "4930123456789", "442071", "77"];
        for (name, _) in gen_forms("+0") {
            let ids: Vec<ShapeId> = numbers
                .iter()
                .map(|n| {
                    let forms = gen_forms(&format!("+{n}"));
                    let rdatas = forms.into_iter().find(|f| f.0 == name).unwrap().1;
                    round_trip(&mut t, &naptrs(rdatas), n)
                })
                .collect();
            assert!(ids.iter().all(|i| *i == ids[0]), "{name}: {ids:?}");
            assert_eq!(t.refs(ids[0]), numbers.len() as u64);
        }
        assert_eq!(t.shape_count(), 7);
    }

    #[test]
    fn the_plus_form_wins_and_only_its_first_occurrence_is_a_hole() {
        let mut t = ShapeTable::new();
        // bare number first, then +number: the hole is the +number
        let re = "!^.*$!sip:4930123@h.example;x=+4930123;y=+4930123!";
        let id = round_trip(
            &mut t,
            &naptrs(vec![naptr(1, 1, "u", "E2U+sip", re)]),
            "4930123",
        );
        let shape = t.shape(id).unwrap();
        assert_eq!(templates(&t, id), 1);
        assert!(memmem::find(shape, b"sip:4930123@h.example;x=+;y=+4930123!").is_some());
        // the literal occurrences make the shape the number's own
        let other = "!^.*$!sip:4930124@h.example;x=+4930124;y=+4930124!";
        let id2 = round_trip(
            &mut t,
            &naptrs(vec![naptr(1, 1, "u", "E2U+sip", other)]),
            "4930124",
        );
        assert_ne!(id, id2);

        // no +number: the first bare occurrence, the second stays literal
        let re = "!^.*$!sip:4930123@h.example;x=4930123!";
        let id = round_trip(
            &mut t,
            &naptrs(vec![naptr(1, 1, "u", "E2U+sip", re)]),
            "4930123",
        );
        assert!(memmem::find(t.shape(id).unwrap(), b"sip:@h.example;x=4930123!").is_some());
    }

    #[test]
    fn the_number_outside_the_regexp_stays_literal() {
        let mut t = ShapeTable::new();
        let mut repl = Vec::new();
        cs(&mut repl, b"4930123");
        cs(&mut repl, b"example");
        repl.push(0);
        let cases = [
            // in the services field only
            naptr(1, 1, "u", "E2U+4930123", "!^.*$!sip:x@h!"),
            // in the flags field only
            naptr(1, 1, "4930123", "E2U+sip", "!^.*$!sip:x@h!"),
            // in the replacement only (regexp empty)
            naptr_wire(1, 1, "", "E2U+sip", b"", &repl),
        ];
        for rdata in cases {
            let b = naptrs(vec![rdata]);
            let id = round_trip(&mut t, &b, "4930123");
            assert_eq!(t.shape(id), Some(&b[..]), "kept whole");
        }
        // in services and regexp: the regexp's is the hole, the services' stays
        let b = naptrs(vec![naptr(
            1,
            1,
            "u",
            "E2U+4930123",
            "!^.*$!sip:+4930123@h!",
        )]);
        let id = round_trip(&mut t, &b, "4930123");
        assert_eq!(templates(&t, id), 1);
        let shape = t.shape(id).unwrap();
        assert!(memmem::find(shape, b"E2U+4930123").is_some());
        assert!(memmem::find(shape, b"sip:+@h").is_some());
    }

    #[test]
    fn other_record_types_stay_literal_beside_templates() {
        let mut t = ShapeTable::new();
        let b = block(&[
            (TYPE_A, 60, vec![vec![192, 0, 2, 1]]),
            (TYPE_TXT, 60, vec![b"\x0b+4930123456".to_vec()]),
            (
                TYPE_NAPTR,
                60,
                vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930123456@h!")],
            ),
        ]);
        let id = round_trip(&mut t, &b, "4930123456");
        assert_eq!(templates(&t, id), 1, "only the NAPTR");
        assert!(memmem::find(t.shape(id).unwrap(), b"\x0b+4930123456").is_some());
        // a block of no NAPTR at all is its own shape, copied whole
        let a = block(&[(TYPE_A, 60, vec![vec![192, 0, 2, 1]])]);
        let id = round_trip(&mut t, &a, "4930123456");
        assert_eq!(t.shape(id), Some(&a[..]));
    }

    /// A NAPTR rdata of exactly `total` bytes whose regexp holds `+number` and padding.
    fn naptr_of_len(total: usize, number: &str) -> Vec<u8> {
        // order, pref, "u", "E2U+sip", regexp's length byte, root: 4 + 2 + 8 + 1 + 1
        let fixed = 16 + "!^.*$!sip:+@h!".len() + number.len();
        let pad = "x".repeat(total - fixed);
        let r = naptr(
            1,
            1,
            "u",
            "E2U+sip",
            &format!("!^.*$!sip:+{number}@h{pad}!"),
        );
        assert_eq!(r.len(), total);
        r
    }

    #[test]
    fn rdata_size_limits_templates() {
        let mut t = ShapeTable::new();
        let at_limit = naptrs(vec![naptr_of_len(TEMPLATE_RDATA_MAX, "4930123")]);
        let id = round_trip(&mut t, &at_limit, "4930123");
        assert_eq!(templates(&t, id), 1, "250 bytes: a template");
        let over = naptrs(vec![naptr_of_len(TEMPLATE_RDATA_MAX + 1, "4930123")]);
        let id = round_trip(&mut t, &over, "4930123");
        assert_eq!(t.shape(id), Some(&over[..]), "251 bytes: literal");
    }

    #[test]
    fn a_full_character_string_stays_literal_and_round_trips() {
        let mut t = ShapeTable::new();
        // the regexp is exactly 255 bytes with the number in it
        let number = "4930123456789";
        let head = format!("!^.*$!sip:+{number}@h");
        let re = format!("{head}{}!", "x".repeat(255 - head.len() - 1));
        assert_eq!(re.len(), 255);
        let b = naptrs(vec![naptr(1, 1, "u", "E2U+sip", &re)]);
        let id = round_trip(&mut t, &b, number);
        assert_eq!(t.shape(id), Some(&b[..]));
    }

    #[test]
    fn a_number_that_would_overflow_the_length_byte_is_refused() {
        let mut t = ShapeTable::new();
        // a one-digit number in a 240-byte regexp (rdata 248 bytes: still a template)
        let head = "!^.*$!sip:+5@h";
        let re = format!("{head}{}!", "x".repeat(240 - head.len() - 1));
        let b = naptrs(vec![naptr(1, 1, "u", "", &re)]);
        let id = round_trip(&mut t, &b, "5");
        assert_eq!(templates(&t, id), 1);
        let mut out = b"stale".to_vec();
        // 239 + 16 = 255: the longest that fits
        t.materialize(id, b"1234567890123456", &mut out).unwrap();
        // block header, len, order and preference, "u", "": the regexp's length byte
        let strlen_at = 8 + 2 + 4 + 2 + 1;
        assert_eq!(out[strlen_at], 255);
        assert_eq!(
            usize::from(u16::from_be_bytes([out[8], out[9]])),
            b.len() - 10 + 15
        );
        // one more digit would make a 256-byte string
        let err = t.materialize(id, b"12345678901234567", &mut out);
        assert_eq!(err, Err(ShapeError::NumberTooLong { id: id.0, len: 17 }));
        assert!(out.is_empty());
    }

    #[test]
    fn rdata_of_32k_and_more_is_escaped() {
        let mut t = ShapeTable::new();
        let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let edge = vec![7u8; 0x8000];
        let b = block(&[
            (TYPE_TXT, 60, vec![big, edge, b"\x03abc".to_vec()]),
            (
                TYPE_NAPTR,
                60,
                vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930123@h!")],
            ),
        ]);
        let id = round_trip(&mut t, &b, "4930123");
        assert_eq!(templates(&t, id), 1);
        let other = block(&[
            (TYPE_TXT, 60, vec![vec![7u8; 0x8000]]),
            (
                TYPE_NAPTR,
                60,
                vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+1@h!")],
            ),
        ]);
        round_trip(&mut t, &other, "1");
    }

    #[test]
    fn without_a_usable_number_nothing_is_templated() {
        let mut t = ShapeTable::new();
        let b = naptrs(vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930123@h!")]);
        for number in ["", "+4930123", "49x0123"] {
            let id = round_trip(&mut t, &b, number);
            assert_eq!(t.shape(id), Some(&b[..]), "{number:?}");
        }
        assert_eq!(t.shape_count(), 1);
    }

    #[test]
    fn malformed_blocks_are_refused_without_a_trace() {
        let mut t = ShapeTable::new();
        let good = naptrs(vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930123@h!")]);
        for cut in [1, 7, 9, good.len() - 1] {
            let r = t.intern(&good[..cut], b"4930123");
            assert!(
                matches!(r, Err(ShapeError::Malformed { .. })),
                "cut {cut}: {r:?}"
            );
        }
        // a count larger than the records there
        let mut more = good.clone();
        more[7] = 2;
        assert!(matches!(
            t.intern(&more, b"4930123"),
            Err(ShapeError::Malformed { .. })
        ));
        assert_eq!(t.shape_count(), 0);
        // a short NAPTR (no regexp) is not malformed as a block: kept literal
        let short = block(&[(TYPE_NAPTR, 60, vec![vec![0, 1, 0]])]);
        let id = round_trip(&mut t, &short, "4930123");
        assert_eq!(t.shape(id), Some(&short[..]));
        // an empty block is an empty shape
        round_trip(&mut t, &[], "4930123");
    }

    #[test]
    fn any_bytes_intern_without_panic_and_round_trip_when_accepted() {
        // blocks of the mix, then damaged: bytes flipped (lengths and counts included),
        // cut, or NAPTR character-string lengths pointing past the rdata
        let mut rng = Rng(3403);
        let mut t = ShapeTable::new();
        let mut out = Vec::new();
        let (mut accepted, mut refused) = (0, 0);
        for i in 0..20_000 {
            let number = format!("49{}", 1_000_000 + i);
            let mut b = naptrs(mix_records(&mut rng, &format!("+{number}")));
            for _ in 0..rng.below(4) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = match rng.below(3) {
                    0 => rng.next() as u8,
                    1 => b[at].wrapping_add(1),
                    _ => 0xFF,
                };
            }
            if rng.below(4) == 0 {
                b.truncate(rng.below(b.len() as u64) as usize);
            }
            match t.intern(&b, number.as_bytes()) {
                Ok(id) => {
                    t.materialize(id, number.as_bytes(), &mut out).unwrap();
                    assert_eq!(out, b, "case {i}");
                    accepted += 1;
                }
                Err(ShapeError::Malformed { .. }) => refused += 1,
                Err(e) => panic!("case {i}: {e}"),
            }
        }
        assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
    }

    #[test]
    fn released_shapes_free_their_ids_for_reuse() {
        let mut t = ShapeTable::new();
        let empty_bytes = t.bytes();
        let a = naptrs(vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930123@a!")]);
        let b = naptrs(vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930123@b!")]);
        let a2 = naptrs(vec![naptr(1, 1, "u", "E2U+sip", "!^.*$!sip:+4930124@a!")]);
        let id = round_trip(&mut t, &a, "4930123");
        assert_eq!(round_trip(&mut t, &a2, "4930124"), id, "same shape");
        t.retain(id).unwrap();
        assert_eq!(t.refs(id), 3);
        assert!(t.bytes() > empty_bytes);
        assert_eq!(t.release(id), Ok(false));
        assert_eq!(t.release(id), Ok(false));
        let held = t.bytes();
        assert_eq!(t.release(id), Ok(true));
        assert!(t.bytes() < held, "the shape's bytes are given back");
        assert_eq!(t.refs(id), 0);
        assert_eq!(t.shape_count(), 0);
        assert_eq!(t.shape(id), None);
        let mut out = Vec::new();
        assert_eq!(
            t.materialize(id, b"1", &mut out),
            Err(ShapeError::Unknown(id.0))
        );
        assert_eq!(t.release(id), Err(ShapeError::Unknown(id.0)));
        assert_eq!(t.retain(id), Err(ShapeError::Unknown(id.0)));
        assert_eq!(t.release(ShapeId(99)), Err(ShapeError::Unknown(99)));
        // the freed id serves the next new shape, which materializes as its own
        assert_eq!(round_trip(&mut t, &b, "4930123"), id);
        assert_eq!(t.shape_count(), 1);
    }

    #[test]
    fn materialize_reuses_the_callers_buffer() {
        let mut t = ShapeTable::new();
        let forms = gen_forms("+15551234567");
        let id = round_trip(&mut t, &naptrs(forms[3].1.clone()), "15551234567");
        let mut out = Vec::with_capacity(1024);
        let ptr = out.as_ptr();
        for n in ["15551234567", "1", "123456789012345"] {
            t.materialize(id, n.as_bytes(), &mut out).unwrap();
            assert_eq!(out.as_ptr(), ptr, "no new allocation");
            assert_eq!(out, naptrs(gen_forms(&format!("+{n}"))[3].1.clone()));
        }
    }

    // ----------------------------------------------------------------------------
    // A zone of the generator's mix

    const SBC_HOSTS: usize = 8;
    const PBX_HOSTS: usize = 16;

    /// One number's NAPTRs as the generator's mix makes them: the categories with
    /// their weights and host choices of `examples/gen_numbers/set.rs`.
    fn mix_records(rng: &mut Rng, e164: &str) -> Vec<Vec<u8>> {
        let sbc = format!(
            "sbc{}.carrier-a.example.net",
            1 + rng.below(SBC_HOSTS as u64)
        );
        let pbx = format!("pbx{}.tenant.example.com", 1 + rng.below(PBX_HOSTS as u64));
        let tel = format!("!^.*$!tel:{e164}!");
        let s = |host: &str, tail: &str| sip(e164, host, tail);
        match rng.below(100) {
            0..45 => vec![naptr(100, 10, "u", "E2U+sip", &s(&sbc, ""))],
            45..60 => vec![
                naptr(100, 20, "u", "E2U+sip", &s(&pbx, ";transport=tcp")),
                naptr(100, 10, "u", "E2U+sip", &s(&sbc, "")),
            ],
            60..75 => vec![
                naptr(100, 10, "u", "E2U+sip", &s(&sbc, "")),
                naptr(100, 20, "u", "E2U+pstn:tel", &tel),
            ],
            75..85 => vec![
                naptr(200, 10, "u", "E2U+sip", &s(&pbx, "")),
                naptr(300, 10, "u", "E2U+pstn:tel", &tel),
                naptr(100, 50, "u", "E2U+sip", &s(&sbc, ":5080")),
            ],
            85..92 => {
                let re = format!("!^\\+([0-9]+)$!sip:\\1@{pbx}!");
                vec![naptr(100, 10, "u", "E2U+sip", &re)]
            }
            92..97 => vec![
                naptr(10, 10, "U", "e2u+sip", &s(&pbx, "")),
                naptr(
                    10,
                    20,
                    "u",
                    "E2U+email:mailto",
                    "!^.*$!mailto:voicemail@tenant.example.com!",
                ),
            ],
            _ => {
                let other = (rng.below(SBC_HOSTS as u64 - 1) + 2) as usize;
                let other = format!("sbc{other}.carrier-a.example.net");
                let other = if other == sbc {
                    "sbc1.carrier-a.example.net".to_string()
                } else {
                    other
                };
                vec![
                    naptr(100, 10, "u", "E2U+sip", &s(&sbc, "")),
                    naptr(100, 10, "u", "E2U+sip", &s(&other, "")),
                ]
            }
        }
    }

    #[test]
    fn a_100k_zone_of_the_generated_mix_has_few_shapes() {
        // zone 9.4.e164.arpa: the prefix "49" and ten digit labels below it
        const PREFIX: &str = "49";
        const COUNT: usize = 100_000;
        let mut rng = Rng(2026);
        let src = Origin { file: 0, line: 1 };
        let mut b = ZoneBuilder::with_capacity(COUNT * 2, COUNT * 200);
        b.add_labels::<&[u8]>(&[], crate::name::TYPE_SOA, 60, b"soa", src);
        for i in 0..COUNT {
            // spread over the space, in order, as the generator's slots are
            let local = format!("{:010}", i as u64 * 99_991 + rng.below(99_991));
            let e164 = format!("+{PREFIX}{local}");
            let labels: Vec<&[u8]> = local.as_bytes().chunks(1).collect();
            for rd in mix_records(&mut rng, &e164) {
                b.add_labels(&labels, TYPE_NAPTR, 3600, &rd, src);
            }
        }
        let (tree, stats, issues) = b.build();
        assert!(issues.iter().all(|i| !i.error), "{issues:?}");

        let mut t = ShapeTable::new();
        let (mut names, mut data_bytes, mut last_key) = (0, 0, 0);
        let mut distinct_blocks = std::collections::HashSet::new();
        let mut out = Vec::new();
        tree.walk(|path, node| {
            if path.is_empty() {
                return; // the apex
            }
            let digits: Vec<u8> = path.iter().map(|l| l[0]).collect();
            let key = number_key(&digits).unwrap();
            assert!(key > last_key, "walk in key order");
            last_key = key;
            let number = [PREFIX.as_bytes(), &digits].concat();
            let data = node.to_block();
            let id = t.intern(&data, &number).unwrap();
            t.materialize(id, &number, &mut out).unwrap();
            assert_eq!(&out[..], &data[..], "{}", String::from_utf8_lossy(&number));
            names += 1;
            data_bytes += data.len();
            distinct_blocks.insert(data.clone());
        });
        assert_eq!(names, COUNT);
        let shapes = t.shape_count();
        println!(
            "{COUNT} numbers, {} NAPTRs, {data_bytes} bytes of blocks, {} distinct blocks \
             -> {shapes} shapes, {} bytes of table",
            stats.naptr_records,
            distinct_blocks.len(),
            t.bytes()
        );
        // 8 + 128 + 8 + 128 + 16 + 16 + 56 combinations of category and hosts
        assert!((300..=360).contains(&shapes), "{shapes} shapes");
        assert!(distinct_blocks.len() > COUNT * 9 / 10);
        assert!(t.bytes() < data_bytes / 50, "{} bytes", t.bytes());
    }
}
