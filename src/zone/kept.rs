//! A zone as a keeper of zones (the store) keeps it: the records of the names that are
//! not numbers, and each number as its key and the id of its shape, the shapes kept
//! once. At 10^8 numbers a number costs a row of three integers, not a row per record,
//! and a zone is read back without packing a record.
//!
//! Owns: [`RowSink`] (what a keeper is given), [`Zone::write_rows`] (a zone as rows, in
//! either index form), [`Records::add_kept_shape`] / [`Records::add_kept_number`] (the
//! way back), and [`number_shape`] (a number's shape after its NAPTR RRset is replaced,
//! for writing one edit) and its reading [`shape_naptr_set`]. Which names are numbers: 1–15 single-digit labels below the
//! apex whose RRsets encode as a shape (`index::shape`); any other name, or a number
//! whose records do not encode, is kept as records.
//!
//! Must not touch: SQL or when rows are written (`keeper::stored`), the shape layout
//! (`index::shape`).

use super::index::shape::{self, Digits, ShapeError, ShapeTable};
use super::index::{NameData, NodeKind, RrSetIter, pack_rrsets};
use super::{Records, Zone};
use crate::name::TYPE_NAPTR;

/// What a zone is written to: every call may fail with the keeper's error, which stops
/// the writing.
pub trait RowSink {
    type Error;
    /// One record of a name that is kept as records (labels below the apex, closest
    /// to the apex first).
    fn record(
        &mut self,
        below_apex: &[&[u8]],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Self::Error>;
    /// A shape under its id, with how many NAPTR records it holds. Every shape comes
    /// before the numbers that name it.
    fn shape(&mut self, id: u32, shape: &[u8], naptrs: usize) -> Result<(), Self::Error>;
    /// A number: its key ([`shape::number_key`] of the digits below the apex) and its
    /// shape's id.
    fn number(&mut self, key: u64, shape: u32) -> Result<(), Self::Error>;
}

impl Zone {
    /// Writes the zone's own records (derived prefix copies left out) to `sink`: the
    /// names that are not numbers as records, then the shapes, then the numbers. A
    /// compact zone gives its numbers as they are indexed; a zone in the trie form has
    /// its numbers' shapes made here.
    pub fn write_rows<S: RowSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        let mut failed = None;
        let mut local = None;
        match self.tree.numbers() {
            Some(_) => self.tree.walk_trie(|path, data| {
                if failed.is_none() && data.kind() != NodeKind::Copy {
                    failed = write_records(sink, path, data).err();
                }
            }),
            None => {
                let (mut table, mut keys) = (ShapeTable::new(), Vec::new());
                self.tree.walk(|path, data| {
                    if failed.is_some() || data.kind() == NodeKind::Copy {
                        return;
                    }
                    match as_number(&mut table, path, data) {
                        Some(key_id) => keys.push(key_id),
                        None => failed = write_records(sink, path, data).err(),
                    }
                });
                local = Some((table, keys));
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        match (&local, self.tree.numbers()) {
            (Some((table, keys)), _) => write_numbers(sink, table, keys.iter().copied()),
            (None, Some(numbers)) => write_numbers(sink, numbers.shapes(), numbers.keys()),
            (None, None) => Ok(()),
        }
    }
}

fn write_records<S: RowSink>(
    sink: &mut S,
    path: &[&[u8]],
    data: NameData<'_>,
) -> Result<(), S::Error> {
    for set in data.rrsets() {
        for rd in set.rdatas() {
            sink.record(path, set.rtype, set.ttl, &rd)?;
        }
    }
    Ok(())
}

/// Interns a trie-form name's RRsets as a number's shape, when the name is a number
/// and they encode; its key and shape id.
fn as_number(table: &mut ShapeTable, path: &[&[u8]], data: NameData<'_>) -> Option<(u64, u32)> {
    let digits = Digits::leading(path);
    if digits.len() != path.len() {
        return None;
    }
    let key = digits.key()?;
    let id = table.intern(&data.to_block(), digits.as_bytes()).ok()?;
    Some((key, id.0))
}

fn write_numbers<S: RowSink>(
    sink: &mut S,
    table: &ShapeTable,
    keys: impl Iterator<Item = (u64, u32)>,
) -> Result<(), S::Error> {
    for (id, bytes) in table.live() {
        sink.shape(id.0, bytes, shape_naptrs(bytes))?;
    }
    for (key, id) in keys {
        sink.number(key, id)?;
    }
    Ok(())
}

impl Records {
    /// Adds a shape as it was kept ([`RowSink::shape`]'s bytes) under the keeper's id,
    /// for the numbers that follow. A damaged shape fails the build.
    pub fn add_kept_shape(&mut self, kept_id: i64, shape: &[u8]) {
        self.builder.add_kept_shape(kept_id, shape);
    }

    /// Adds a number as it was kept: its key and its shape's kept id. A key that is not
    /// a number's, or a shape not given, fails the build.
    pub fn add_kept_number(&mut self, key: u64, kept_shape: i64) {
        self.builder.add_kept_number(key, kept_shape);
    }
}

/// How many NAPTR records a kept shape holds (0 for damaged bytes).
pub fn shape_naptrs(shape_bytes: &[u8]) -> usize {
    shape::shape_sets(shape_bytes)
        .map(|sets| {
            sets.iter()
                .filter(|s| s.0 == TYPE_NAPTR)
                .map(|s| usize::from(s.1))
                .sum()
        })
        .unwrap_or(0)
}

/// A number's shape once its NAPTR RRset is replaced by `naptrs` (TTL and rdatas;
/// `None` removes it), its other RRsets kept: from its kept shape, or from its records
/// `(type, ttl, rdata)` when it was kept as records. `Ok(None)` when no record is left.
/// `digits` are the number's below the apex (closest first), `1`–`15` of them.
pub fn number_shape(
    digits: &[u8],
    kept: Kept<'_>,
    naptrs: Option<(u32, &[Vec<u8>])>,
) -> Result<Option<Vec<u8>>, ShapeError> {
    let block = match kept {
        Kept::Shape(s) => shape::decode_shape(s, digits)?,
        Kept::Records(rows) => {
            let sets = group(rows.iter().map(|(t, ttl, rd)| (*t, *ttl, &rd[..])));
            pack_rrsets(&sets).map(|b| b.to_vec()).unwrap_or_default()
        }
    };
    let mut sets: Vec<(u16, u32, Vec<&[u8]>)> = Vec::new();
    for set in RrSetIter::plain(&block) {
        if set.rtype != TYPE_NAPTR {
            let rdatas = set.rdatas().filter_map(|rd| rd.wire()).collect();
            sets.push((set.rtype, set.ttl, rdatas));
        }
    }
    if let Some((ttl, rdatas)) = naptrs {
        sets.push((TYPE_NAPTR, ttl, rdatas.iter().map(|r| &r[..]).collect()));
    }
    match pack_rrsets(&sets) {
        Some(block) => shape::encode_shape(&block, digits).map(Some),
        None => Ok(None),
    }
}

/// A NAPTR RRset as a keeper edits it: TTL and rdatas (wire form).
pub type NaptrSet = (u32, Vec<Vec<u8>>);

/// The NAPTR RRset (TTL and rdatas) a shape gives the number `digits` (below the apex,
/// closest first); `Ok(None)` when it holds none.
pub fn shape_naptr_set(shape_bytes: &[u8], digits: &[u8]) -> Result<Option<NaptrSet>, ShapeError> {
    let block = shape::decode_shape(shape_bytes, digits)?;
    Ok(RrSetIter::plain(&block)
        .find(|set| set.rtype == TYPE_NAPTR)
        .map(|set| {
            let rdatas = set.rdatas().filter_map(|rd| rd.wire().map(<[u8]>::to_vec));
            (set.ttl, rdatas.collect())
        }))
}

/// What a keeper held for a number before an edit.
pub enum Kept<'a> {
    /// Its shape's bytes.
    Shape(&'a [u8]),
    /// Its records (none: a new number).
    Records(&'a [(u16, u32, Vec<u8>)]),
}

/// Records grouped into RRsets by type, in first-seen order of types.
fn group<'a>(rows: impl Iterator<Item = (u16, u32, &'a [u8])>) -> Vec<(u16, u32, Vec<&'a [u8]>)> {
    let mut sets: Vec<(u16, u32, Vec<&[u8]>)> = Vec::new();
    for (rtype, ttl, rd) in rows {
        match sets.iter_mut().find(|s| s.0 == rtype) {
            Some(s) => s.2.push(rd),
            None => sets.push((rtype, ttl, vec![rd])),
        }
    }
    sets
}
