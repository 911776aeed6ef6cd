//! The store↔zone mapping: a [`Zone`] built from the store's rows, and a zone's records
//! written to the store. The one place that knows both sides; `zone` never names the
//! store and `store` never names the index.
//!
//! Owns: which records of a zone are kept (every record as served, except the derived
//! wildcard copies of prefix routes), numbers kept as a key and a shape id
//! ([`crate::zone::kept::RowSink`]) and the rest as records with their owner key, the managed
//! prefix marks, the SOA row that goes with a new serial, and splitting the numbers of
//! a store written before the numbers table out of its records.
//!
//! Must not touch: when a change is made or served (the keeper and its
//! [`super::Publisher`]), SQL (the store's), or the index's layout (the zone's).

use crate::name::{Name, TYPE_NAPTR, TYPE_SOA};
use crate::store::{Store, StoreError, Write, ZoneRows, owner_key, owner_labels};
use crate::zone::index::shape::{Digits, ShapeError};
use crate::zone::kept::{Kept, NaptrSet, RowSink, number_shape, shape_naptrs};
use crate::zone::{ContentDigest, Records, Zone, ZoneLoadError};
use std::sync::Arc;

/// A zone the store could not give back.
#[derive(Debug, thiserror::Error)]
pub enum ZoneStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store holds no records for zone {0}")]
    Missing(String),
    #[error("zone in the store does not load: {0}")]
    Invalid(#[from] ZoneLoadError),
    #[error("a number's records in the store do not read: {0}")]
    Shape(#[from] ShapeError),
}

/// Builds a zone from the store's records and marks its managed prefix routes.
pub fn load(store: &Store, origin: &Name) -> Result<Zone, ZoneStoreError> {
    from_rows(origin, |rows| store.read_zone(&origin.to_string(), rows))
}

/// [`load`] inside a write transaction: the zone as it will be once `w` commits.
pub(super) fn load_in(w: &Write<'_>, origin: &Name) -> Result<Zone, ZoneStoreError> {
    from_rows(origin, |rows| w.read_zone(&origin.to_string(), rows))
}

/// The store's rows fed to the zone builder.
struct Feed(Records);

impl ZoneRows for Feed {
    fn record(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        self.0.add_key(owner, rtype, ttl, rdata, 0);
    }
    fn shape(&mut self, id: i64, data: &[u8]) {
        self.0.add_kept_shape(id, data);
    }
    fn number(&mut self, key: i64, shape: i64) {
        // A negative key is no number's: the builder reports it.
        self.0.add_kept_number(key as u64, shape);
    }
}

/// A zone from the rows `read` feeds (it returns the managed prefix owners).
fn from_rows(
    origin: &Name,
    read: impl FnOnce(&mut dyn ZoneRows) -> Result<Vec<Vec<u8>>, StoreError>,
) -> Result<Zone, ZoneStoreError> {
    let text = origin.to_string();
    let mut feed = Feed(Records::new(format!("store:{text}")));
    let prefixes = read(&mut feed)?;
    let records = feed.0;
    if records.is_empty() {
        return Err(ZoneStoreError::Missing(text));
    }
    let mut zone = records.build(origin)?;
    for p in &prefixes {
        zone = zone.prefix_marked(&owner_labels(p));
    }
    Ok(zone)
}

/// Replaces the store's copy of a zone with `zone` (every record as served, except
/// derived wildcard copies; prefix marks are dropped) in one transaction, recording
/// the digest of the file it came from (`None`: not from a file).
pub fn save(
    store: &mut Store,
    zone: &Zone,
    file_digest: Option<ContentDigest>,
) -> Result<(), StoreError> {
    let mut w = store.write()?;
    let id = w.zone(&zone.origin_text)?;
    write_zone(&mut w, id, zone, file_digest)?;
    // The copy it replaced is not at hand: its history no longer leads here.
    w.journal_clear(id)?;
    w.commit()
}

/// [`save`] over the stored copy `old`: the difference goes to the zone's journal (the
/// newest `keep` changes kept), so that secondaries holding `old` take the change by
/// IXFR — a zone file newer than the store at start, as on SIGHUP.
pub fn save_over(
    store: &mut Store,
    zone: &Zone,
    file_digest: Option<ContentDigest>,
    (old, keep): (&Zone, usize),
) -> Result<(), StoreError> {
    let mut w = store.write()?;
    let id = w.zone(&zone.origin_text)?;
    write_zone(&mut w, id, zone, file_digest)?;
    write_journal(&mut w, id, (Some(old), zone), keep, None)?;
    w.commit()
}

/// Replaces every record, number and prefix mark of zone `id` with `zone`'s (see
/// [`save`]).
pub(super) fn write_zone(
    w: &mut Write<'_>,
    id: i64,
    zone: &Zone,
    file_digest: Option<ContentDigest>,
) -> Result<(), StoreError> {
    w.clear_zone(id)?;
    zone.write_rows(&mut Sink { w, id, zone })?;
    w.set_serial(id, zone.soa.serial)?;
    w.set_file_digest(
        id,
        file_digest.map(|d| d.to_bytes()).as_ref().map(|b| &b[..]),
    )
}

/// A zone's rows written into a transaction, for zone `id`.
struct Sink<'w, 's> {
    w: &'w mut Write<'s>,
    id: i64,
    zone: &'w Zone,
}

impl RowSink for Sink<'_, '_> {
    type Error = StoreError;
    fn record(
        &mut self,
        labels: &[&[u8]],
        rtype: u16,
        ttl: u32,
        rd: &[u8],
    ) -> Result<(), StoreError> {
        let number = self.zone.number_of(labels);
        let at = (self.id, owner_key(labels));
        self.w
            .insert(at.0, &at.1, number.as_deref(), (rtype, ttl), rd)
    }
    fn shape(&mut self, id: u32, shape: &[u8], naptrs: usize) -> Result<(), StoreError> {
        self.w.put_shape(self.id, i64::from(id), shape, naptrs)
    }
    fn number(&mut self, key: u64, shape: u32) -> Result<(), StoreError> {
        self.w
            .put_number(self.id, key as i64, Some(i64::from(shape)))
    }
}

/// Moves the numbers of every zone still kept as records (a store from before the
/// numbers table) into the numbers table, one zone per transaction, the zone's serial,
/// file digest and journal kept (its records do not change). Returns the zones split.
pub fn split_numbers(store: &mut Store) -> Result<Vec<String>, ZoneStoreError> {
    let mut split = Vec::new();
    for origin in store.zones()? {
        if store.numbers_split(&origin)? {
            continue;
        }
        // A stored copy that does not load stays as it is: it still loads (or fails)
        // as before, and a zone file may replace it.
        let zone = match Name::from_text(&origin) {
            Ok(name) => load(store, &name),
            Err(_) => Err(ZoneStoreError::Missing(origin.clone())),
        };
        let zone = match zone {
            Ok(zone) => zone,
            Err(e) => {
                tracing::warn!(zone = %origin, error = %e, "numbers left in the store's records");
                continue;
            }
        };
        let digest = file_digest(store, &origin)?;
        let mut w = store.write()?;
        let id = w.zone(&origin)?;
        let prefixes = w.prefixes(id)?;
        write_zone(&mut w, id, &zone, digest)?;
        for p in &prefixes {
            w.set_prefix(id, p, true)?;
        }
        w.commit()?;
        split.push(origin);
    }
    Ok(split)
}

/// Largest journal entry kept (encoded): a bigger change empties the journal instead,
/// and secondaries behind it take the whole zone (smaller than such a difference).
const JOURNAL_ENTRY_MAX: usize = 256 << 20;

/// Most bytes of differences a zone's journal keeps (as Knot's `journal-max-usage`
/// default): its oldest changes go first. A 10^6-number delta's difference is about
/// 200–260 MB, so a daily feed keeps a few days, not `journal_max_changes` of them.
pub(super) const JOURNAL_BYTES_MAX: u64 = 1 << 30;

/// Most names a change may touch and still be journaled: beyond, its difference (every
/// record removed and added, ~100 bytes each) would pass [`JOURNAL_ENTRY_MAX`], and
/// computing it costs more than the change (15 s and 3 GB for 10^7 new numbers).
pub(super) const JOURNAL_NAMES_MAX: usize = 2_000_000;

/// Records the change from `old` to `new` of zone `id` in its journal, keeping the
/// newest `keep` changes. With no `old` copy, a serial that did not grow (RFC 1982), a
/// change of more than [`JOURNAL_NAMES_MAX`] names (`names`, when the caller knows) or a
/// difference too large to keep, the journal is emptied instead: its history no longer
/// leads to the stored copy, and secondaries behind it take the whole zone.
pub(super) fn write_journal(
    w: &mut Write<'_>,
    id: i64,
    (old, new): (Option<&Zone>, &Zone),
    keep: usize,
    names: Option<usize>,
) -> Result<(), StoreError> {
    let bytes = old
        .filter(|_| names.is_none_or(|n| n <= JOURNAL_NAMES_MAX))
        .filter(|o| keep > 0 && crate::zone::serial_newer(new.soa.serial, o.soa.serial))
        .and_then(|o| Some((o, Zone::encoded_diff(o, new, JOURNAL_ENTRY_MAX)?)));
    let Some((old, bytes)) = bytes else {
        return w.journal_clear(id);
    };
    let bound = (keep, JOURNAL_BYTES_MAX);
    w.journal_append(id, (old.soa.serial, new.soa.serial), &bytes, bound)
}

/// The digest of the zone file as last loaded into the store, if it came from one.
pub fn file_digest(store: &Store, origin: &str) -> Result<Option<ContentDigest>, StoreError> {
    Ok(store
        .file_digest(origin)?
        .and_then(|b| ContentDigest::from_bytes(&b)))
}

/// Replaces the NAPTR RRset of the name `below_apex` of zone `id` with `naptrs` (TTL and
/// rdatas; `None`: removes it), its other records kept: one edit (see [`NaptrWriter`]).
#[cfg(test)]
pub(super) fn write_naptrs(
    w: &mut Write<'_>,
    id: i64,
    below_apex: &[&[u8]],
    naptrs: Option<(u32, &[Vec<u8>])>,
) -> Result<(), ZoneStoreError> {
    NaptrWriter::new(w, id)?.write(w, (below_apex, None), naptrs)
}

/// Writes NAPTR edits of one zone into a transaction. A number (1–15 single-digit
/// labels) is kept as its key and shape, any other name as records. The shape ids found
/// or added are remembered, so a bulk import asks the store once per distinct shape;
/// a number's records are looked for only in a zone not yet split (see
/// [`split_numbers`]). A shape that no number names after an edit keeps its row until the
/// zone is next written whole (finding its last user would scan the numbers); a load
/// leaves it out of the served table.
pub(super) struct NaptrWriter {
    id: i64,
    split: bool,
    shape_ids: std::collections::HashMap<Vec<u8>, i64>,
    /// Store ids of the staged shapes written so far, by their id in the import.
    staged_ids: std::collections::HashMap<u32, i64>,
}

impl NaptrWriter {
    pub(super) fn new(w: &Write<'_>, id: i64) -> Result<Self, StoreError> {
        Ok(NaptrWriter {
            id,
            split: w.numbers_split(id)?,
            shape_ids: Default::default(),
            staged_ids: Default::default(),
        })
    }

    /// Replaces the NAPTR RRset of the name `below_apex` with `naptrs` (TTL and rdatas;
    /// `None`: removes it), its other records kept.
    /// `number` is the name as an E.164 number (`+digits`), when it is one.
    pub(super) fn write(
        &mut self,
        w: &mut Write<'_>,
        (below_apex, number): (&[&[u8]], Option<&str>),
        naptrs: Option<(u32, &[Vec<u8>])>,
    ) -> Result<(), ZoneStoreError> {
        let digits = Digits::leading(below_apex);
        let owner = owner_key(below_apex);
        match digits.key().filter(|_| digits.len() == below_apex.len()) {
            Some(key) => self.number(w, (key as i64, digits.as_bytes()), &owner, naptrs),
            None => Ok(write_records(w, (self.id, &owner), number, naptrs)?),
        }
    }

    /// [`NaptrWriter::write`] for a number: its kept shape (or, in a zone not split,
    /// its records) read, the NAPTRs replaced, the new shape kept.
    fn number(
        &mut self,
        w: &mut Write<'_>,
        (key, digits): (i64, &[u8]),
        owner: &[u8],
        naptrs: Option<(u32, &[Vec<u8>])>,
    ) -> Result<(), ZoneStoreError> {
        let id = self.id;
        let shape = match w.number_shape(id, key)? {
            Some(kept) => number_shape(digits, Kept::Shape(&kept), naptrs),
            None if self.split => number_shape(digits, Kept::Records(&[]), naptrs),
            None => {
                let rows = w.records_at(id, owner)?;
                if !rows.is_empty() {
                    w.delete_owner(id, owner)?;
                }
                number_shape(digits, Kept::Records(&rows), naptrs)
            }
        }?;
        let shape_id = match shape {
            Some(s) => Some(match self.shape_ids.get(&s) {
                Some(found) => *found,
                None => {
                    let found = w.shape_id(id, &s, shape_naptrs(&s))?;
                    self.shape_ids.insert(s, found);
                    found
                }
            }),
            None => None,
        };
        Ok(w.put_number(id, key, shape_id)?)
    }
}

impl NaptrWriter {
    /// Sets the NAPTR RRset of the number `key` (digits below the apex `digits`) to
    /// the staged shape `staged` (its id among the change's shapes, and its bytes: a
    /// NAPTR RRset alone; `None` removes it). `plain`: the number holds NAPTRs and
    /// nothing else, or nothing, as the served copy (the store's, under the keeper's
    /// lock) says; then it takes the shape as it is, with no read. Other records of a
    /// number are kept as [`NaptrWriter::write`] keeps them.
    pub(super) fn write_staged(
        &mut self,
        w: &mut Write<'_>,
        (key, digits, plain): (u64, &[u8], bool),
        staged: Option<(u32, &[u8])>,
        naptr_set: impl FnOnce() -> Result<Option<NaptrSet>, ShapeError>,
    ) -> Result<(), ZoneStoreError> {
        if !self.split || !plain {
            let set = naptr_set()?;
            let labels: Vec<&[u8]> = digits.chunks(1).collect();
            let naptrs = set.as_ref().map(|(ttl, rds)| (*ttl, &rds[..]));
            return self.write(w, (&labels, None), naptrs);
        }
        let Some((staged_id, shape)) = staged else {
            return Ok(w.put_number(self.id, key as i64, None)?);
        };
        let slot = self.staged_ids.entry(staged_id);
        let shape_id = match slot {
            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
            std::collections::hash_map::Entry::Vacant(v) => {
                *v.insert(w.shape_id(self.id, shape, shape_naptrs(shape))?)
            }
        };
        Ok(w.put_number(self.id, key as i64, Some(shape_id))?)
    }
}

/// [`NaptrWriter::write`] for a name kept as records.
fn write_records(
    w: &mut Write<'_>,
    (id, owner): (i64, &[u8]),
    number: Option<&str>,
    naptrs: Option<(u32, &[Vec<u8>])>,
) -> Result<(), StoreError> {
    w.delete_rrset(id, owner, TYPE_NAPTR)?;
    if let Some((ttl, rdatas)) = naptrs {
        for rd in rdatas {
            w.insert(id, owner, number, (TYPE_NAPTR, ttl), rd)?;
        }
    }
    Ok(())
}

/// `+`, the zone's digits and those of `key`.
pub(super) fn number_text(zone_prefix: &str, key: i64) -> String {
    let digits = Digits::of_key(key as u64);
    let mut s = String::with_capacity(1 + zone_prefix.len() + digits.len());
    s.push('+');
    s.push_str(zone_prefix);
    s.extend(digits.as_bytes().iter().map(|&d| d as char));
    s
}

/// Numbers with NAPTR records of the zones `zones` holds in the store, sorted, that
/// start with `prefix` (`+digits`, or `+`) and sort after `after` (exclusive), at most
/// `limit`.
pub fn list_numbers<'z>(
    store: &Store,
    zones: impl IntoIterator<Item = &'z Arc<Zone>>,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let want = prefix.trim_start_matches('+');
    let after = after.map(|a| a.trim_start_matches('+'));
    // Numbers too long for a key are kept as records, with their text.
    let (from, after_text) = (format!("+{want}"), after.map(|a| format!("+{a}")));
    let to = format!("{from}\u{ffff}");
    let text_bounds = (
        from.as_str(),
        to.as_str(),
        after_text.as_deref().unwrap_or(""),
    );
    let mut found = Vec::new();
    for zone in zones {
        let zone_digits = zone.number_prefix();
        if let Some(range) = key_range(&zone_digits, want, after) {
            let keys = store.number_keys(&zone.origin_text, range, limit)?;
            found.extend(keys.into_iter().map(|k| number_text(&zone_digits, k)));
        }
        found.extend(store.long_numbers(&zone.origin_text, text_bounds, limit)?);
    }
    found.sort_unstable();
    found.dedup();
    found.truncate(limit);
    Ok(found)
}

/// The keys `[from, to)` of a zone whose numbers all start with `zone` (digits) that
/// start with `want` and sort after `after`; `None` when there are none.
fn key_range(zone: &str, want: &str, after: Option<&str>) -> Option<(i64, i64)> {
    use crate::zone::index::shape::number_key;
    const ALL: (u64, u64) = (1, 1 << 60);
    // The keys of the names below the apex starting with `d` (digits).
    let starting = |d: &str| -> Option<(u64, u64)> {
        if d.is_empty() {
            return Some(ALL);
        }
        let from = number_key(d.as_bytes())?;
        Some((from, from + (1 << (56 - 4 * (d.len() - 1)))))
    };
    let (mut from, to) = match (want.strip_prefix(zone), zone.starts_with(want)) {
        (Some(rest), _) => starting(rest)?,
        (None, true) => ALL,
        (None, false) => return None,
    };
    if let Some(after) = after {
        match after.strip_prefix(zone) {
            Some("") => {}
            Some(rest) => {
                let rest = &rest[..rest.len().min(15)];
                from = from.max(number_key(rest.as_bytes())? + 1);
            }
            None if zone > after => {}
            None => return None,
        }
    }
    (from < to).then_some((from as i64, to as i64))
}

/// Sets (`Some`) or removes the prefix route at `prefix` of zone `id`: the NAPTR RRset
/// of the wildcard below it, and its managed mark.
pub(super) fn write_prefix(
    w: &mut Write<'_>,
    id: i64,
    prefix: &[&[u8]],
    naptrs: Option<(u32, &[Vec<u8>])>,
) -> Result<(), StoreError> {
    let mut star = prefix.to_vec();
    star.push(b"*");
    write_records(w, (id, &owner_key(&star)), None, naptrs)?;
    w.set_prefix(id, &owner_key(prefix), naptrs.is_some())
}

/// Records `serial` as zone `id`'s, with the SOA record of `served` carrying it.
pub(super) fn write_serial(
    w: &mut Write<'_>,
    id: i64,
    served: &Zone,
    serial: u32,
) -> Result<(), StoreError> {
    if let Some(soa) = served.soa_rdata_with_serial(serial) {
        w.delete_rrset(id, &[], TYPE_SOA)?;
        w.insert(id, &[], None, (TYPE_SOA, served.soa.ttl), &soa)?;
    }
    w.set_serial(id, serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APEX: &str = "$TTL 300\n@ IN SOA ns.example.net. hostmaster.example.net. 7 3600 900 604800 300\n@ IN NS ns.example.net.\n";

    fn naptr(regexp: &str) -> String {
        format!("IN NAPTR 100 10 \"u\" \"E2U+sip\" \"{regexp}\" .")
    }

    /// A zone with templated and literal NAPTRs, a number with a TXT beside them, a
    /// name that is not a number, a prefix route and numbers of 1 to 15 digits.
    fn zone_text(delegation: bool) -> String {
        let mut text = APEX.to_string();
        text += &format!("7.6.5 {}\n", naptr("!^.*$!sip:+44567@a.example!"));
        text += &format!("8.6.5 {}\n", naptr("!^.*$!sip:+44568@a.example!"));
        text += &format!("8.6.5 {}\n", naptr("!^.*$!tel:+44568!"));
        text += "8.6.5 IN TXT \"kept\"\n";
        text += &format!("1 {}\n", naptr("!^.*$!sip:fixed@b.example!"));
        text += &format!("*.9 {}\n", naptr("!^.*$!sip:prefix@c.example!"));
        text += &format!(
            "5.4.3.2.1.0.9.8.7.6.5.4.3.2.1 {}\n",
            naptr("!^.*$!sip:+44123456789012345@d.example!")
        );
        text += "host IN A 192.0.2.1\n";
        if delegation {
            text += "sub IN NS ns.sub.example.\n";
        }
        text
    }

    fn origin() -> Name {
        Name::from_text("4.4.e164.arpa.").unwrap()
    }

    /// Every record of the zone as text lines, sorted.
    fn records_of(zone: &Zone) -> Vec<String> {
        let mut out = Vec::new();
        zone.for_each_name(|labels, sets| {
            for set in sets {
                for rd in set.rdatas() {
                    out.push(format!(
                        "{labels:?} {} {} {:?}",
                        set.rtype,
                        set.ttl,
                        &rd[..]
                    ));
                }
            }
        });
        out.sort();
        out
    }

    fn zone_of(text: &str) -> Zone {
        Zone::from_master(text.as_bytes(), "test", &origin(), None)
            .unwrap()
            .0
    }

    #[test]
    fn a_zone_comes_back_from_the_store_as_it_was_in_both_forms() {
        for delegation in [false, true] {
            let zone = zone_of(&zone_text(delegation));
            assert_eq!(zone.tree.numbers().is_some(), !delegation);
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
            save(&mut store, &zone, None).unwrap();
            let back = load(&store, &origin()).unwrap();
            assert_eq!(
                records_of(&back),
                records_of(&zone),
                "delegation: {delegation}"
            );
            assert_eq!(back.content_digest(), zone.content_digest());
            assert_eq!(back.stats.records, zone.stats.records);
            assert_eq!(back.tree.numbers().is_some(), !delegation);
            // The four numbers with NAPTRs are rows of the numbers table.
            let keys = store
                .number_keys("4.4.e164.arpa.", (1, i64::MAX), 100)
                .unwrap();
            assert_eq!(keys.len(), 4, "delegation: {delegation}");
        }
    }

    #[test]
    fn a_number_edit_keeps_its_other_records() {
        let zone = zone_of(&zone_text(false));
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        save(&mut store, &zone, None).unwrap();
        let rdata = |regexp: &str| {
            let text = format!("{APEX}1 {}\n", naptr(regexp));
            let z = zone_of(&text);
            let labels: Vec<&[u8]> = vec![b"1"];
            z.naptr_at(&labels).unwrap().1[0].to_vec()
        };
        let new = vec![rdata("!^.*$!sip:+44568@new.example!")];
        let mut w = store.write().unwrap();
        let id = w.zone("4.4.e164.arpa.").unwrap();
        let labels = |d: &'static [u8]| d.chunks(1).collect::<Vec<_>>();
        write_naptrs(&mut w, id, &labels(b"568"), Some((60, &new))).unwrap();
        write_naptrs(&mut w, id, &labels(b"567"), None).unwrap();
        let added = vec![rdata("!^.*$!sip:+44569@new.example!")];
        write_naptrs(&mut w, id, &labels(b"569"), Some((60, &added))).unwrap();
        w.commit().unwrap();

        let back = load(&store, &origin()).unwrap();
        let at = |d: &'static [u8]| {
            back.naptr_at(&labels(d))
                .map(|(ttl, r)| (ttl, r.iter().map(|r| r.to_vec()).collect::<Vec<_>>()))
        };
        assert_eq!(at(b"568"), Some((60, new)));
        assert_eq!(at(b"569"), Some((60, added)));
        assert_eq!(at(b"567"), None, "removed");
        let txt = back.tree.lookup(&labels(b"568"), 16);
        let txt = format!("{txt:?}");
        assert!(
            txt.contains("rtype: 16, ttl: 300, count: 1, body: [0, 5, 4, 107, 101, 112, 116]"),
            "the TXT stays: {txt}"
        );
        let keys = store
            .number_keys("4.4.e164.arpa.", (1, i64::MAX), 100)
            .unwrap();
        assert_eq!(keys.len(), 4, "1, 568, 569 and the 15-digit one: {keys:?}");
    }

    #[test]
    fn a_staged_number_takes_its_shape_and_keeps_its_other_records() {
        let zone = zone_of(&zone_text(false));
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        save(&mut store, &zone, None).unwrap();
        let templated = |digits: &[u8]| {
            let number = format!("+44{}", std::str::from_utf8(digits).unwrap());
            let text = format!(
                "{APEX}1 {}\n",
                naptr(&format!("!^.*$!sip:{number}@new.example!"))
            );
            let labels: Vec<&[u8]> = vec![b"1"];
            let rdata = zone_of(&text).naptr_at(&labels).unwrap().1[0].to_vec();
            let set = vec![rdata];
            let shape = number_shape(digits, Kept::Records(&[]), Some((60, &set)));
            (shape.unwrap().unwrap(), set)
        };
        let (shape, _) = templated(b"567");
        let mut w = store.write().unwrap();
        let id = w.zone("4.4.e164.arpa.").unwrap();
        let mut naptrs = NaptrWriter::new(&w, id).unwrap();
        // One staged shape for three numbers: one plain, one with a TXT, one new.
        for digits in [&b"567"[..], b"568", b"569"] {
            let key = crate::zone::index::shape::number_key(digits).unwrap();
            let set = || Ok(Some((60, templated(digits).1)));
            let at: Vec<&[u8]> = digits.chunks(1).collect();
            let plain = zone.only_naptrs_at(&at);
            assert_eq!(plain, digits != b"568");
            let number = (key, digits, plain);
            naptrs
                .write_staged(&mut w, number, Some((0, &shape)), set)
                .unwrap();
        }
        let key = crate::zone::index::shape::number_key(b"1").unwrap();
        naptrs
            .write_staged(&mut w, (key, b"1", true), None, || Ok(None))
            .unwrap();
        w.commit().unwrap();

        let back = load(&store, &origin()).unwrap();
        let labels = |d: &'static [u8]| d.chunks(1).collect::<Vec<_>>();
        for digits in [&b"567"[..], b"568", b"569"] {
            let at: Vec<&[u8]> = digits.chunks(1).collect();
            let got = back
                .naptr_at(&at)
                .map(|(ttl, r)| (ttl, r.iter().map(|r| r.to_vec()).collect::<Vec<_>>()));
            assert_eq!(got, Some((60, templated(digits).1)), "{digits:?}");
        }
        assert_eq!(back.naptr_at(&labels(b"1")), None, "deleted");
        let txt = format!("{:?}", back.tree.lookup(&labels(b"568"), 16));
        assert!(
            txt.contains("rtype: 16, ttl: 300, count: 1"),
            "the TXT stays: {txt}"
        );
    }

    #[test]
    fn a_change_of_more_names_than_a_journal_entry_holds_empties_the_journal() {
        let zone = zone_of(&zone_text(false));
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        save(&mut store, &zone, None).unwrap();
        let newer = |z: &Zone, serial: u32| z.with_serial(serial);
        let (z8, z9) = (newer(&zone, 8), newer(&zone, 9));
        for (from, to, names) in [
            (&zone, &z8, Some(3)),
            (&z8, &z9, Some(JOURNAL_NAMES_MAX + 1)),
        ] {
            let mut w = store.write().unwrap();
            let id = w.zone("4.4.e164.arpa.").unwrap();
            write_journal(&mut w, id, (Some(from), to), 10, names).unwrap();
            w.commit().unwrap();
            let kept = store.journal_from("4.4.e164.arpa.", 7).unwrap();
            let expected = usize::from(names == Some(3));
            assert_eq!(kept.len(), expected, "{names:?}");
        }
    }

    #[test]
    fn a_store_from_before_the_numbers_table_is_split_once() {
        let zone = zone_of(&zone_text(false));
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        {
            // Rows as an older release wrote them: every record in `records`.
            let mut w = store.write().unwrap();
            let id = w.zone("4.4.e164.arpa.").unwrap();
            w.set_numbers_split(id, false).unwrap();
            zone.for_each_name(|labels, sets| {
                for set in sets {
                    for rd in set.rdatas() {
                        w.insert(id, &owner_key(labels), None, (set.rtype, set.ttl), &rd)
                            .unwrap();
                    }
                }
            });
            w.set_prefix(id, &owner_key(&[b"9"]), true).unwrap();
            w.set_serial(id, 7).unwrap();
            w.set_file_digest(id, Some(&zone.content_digest().to_bytes()))
                .unwrap();
            w.commit().unwrap();
        }
        assert!(!store.numbers_split("4.4.e164.arpa.").unwrap());
        let before = load(&store, &origin()).unwrap();
        assert_eq!(
            records_of(&before),
            records_of(&zone),
            "older rows still load"
        );
        assert!(
            store
                .number_keys("4.4.e164.arpa.", (1, i64::MAX), 100)
                .unwrap()
                .is_empty()
        );

        assert_eq!(split_numbers(&mut store).unwrap(), ["4.4.e164.arpa."]);
        assert!(store.numbers_split("4.4.e164.arpa.").unwrap());
        assert!(split_numbers(&mut store).unwrap().is_empty(), "once");
        let after = load(&store, &origin()).unwrap();
        assert_eq!(records_of(&after), records_of(&zone));
        assert_eq!(
            store
                .number_keys("4.4.e164.arpa.", (1, i64::MAX), 100)
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            file_digest(&store, "4.4.e164.arpa.").unwrap(),
            Some(zone.content_digest())
        );
        assert_eq!(store.serial("4.4.e164.arpa.").unwrap(), Some(7));
        let mut w = store.write().unwrap();
        let id = w.zone("4.4.e164.arpa.").unwrap();
        assert_eq!(
            w.prefixes(id).unwrap(),
            [owner_key(&[b"9"])],
            "prefix marks kept"
        );
    }

    #[test]
    fn numbers_list_across_zones_as_sorted_strings_would() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        let origins = [
            "e164.arpa.",
            "4.e164.arpa.",
            "9.4.e164.arpa.",
            "3.e164.arpa.",
        ];
        let (mut zones, mut long) = (Vec::new(), Vec::new());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut w = store.write().unwrap();
        for origin in origins {
            let zone = Arc::new(
                Zone::from_master(
                    APEX.as_bytes(),
                    "t",
                    &Name::from_text(origin).unwrap(),
                    None,
                )
                .unwrap()
                .0,
            );
            let id = w.zone(origin).unwrap();
            let (routed, bare) = (
                w.shape_id(id, b"r", 1).unwrap(),
                w.shape_id(id, b"b", 0).unwrap(),
            );
            for _ in 0..60 {
                let len = 1 + next(15) as usize;
                let digits: String = (0..len).map(|_| char::from(b'1' + next(3) as u8)).collect();
                let key = crate::zone::index::shape::number_key(digits.as_bytes()).unwrap();
                let has_naptrs = next(5) > 0;
                w.put_number(id, key as i64, Some(if has_naptrs { routed } else { bare }))
                    .unwrap();
            }
            // Numbers too long for a key: kept as records with their text.
            for _ in 0..10 {
                let len = 16 + next(3) as usize;
                let digits: String = (0..len).map(|_| char::from(b'1' + next(3) as u8)).collect();
                let number = format!("+{}{digits}", zone.number_prefix());
                let owner = owner_key(&digits.as_bytes().chunks(1).collect::<Vec<_>>());
                let rtype = if next(5) > 0 { TYPE_NAPTR } else { 16 };
                w.insert(id, &owner, Some(&number), (rtype, 60), b"x")
                    .unwrap();
                if rtype == TYPE_NAPTR {
                    long.push(number);
                }
            }
            zones.push(zone);
        }
        w.commit().unwrap();
        // The last write of a key in a zone wins; a number in two zones is listed once.
        let mut want: Vec<String> = Vec::new();
        for (i, origin) in origins.iter().enumerate() {
            let zone = &zones[i];
            let keys = store
                .number_keys(origin, (1, i64::MAX), usize::MAX)
                .unwrap();
            want.extend(
                keys.into_iter()
                    .map(|k| number_text(&zone.number_prefix(), k)),
            );
        }
        want.extend(long);
        want.sort();
        want.dedup();
        let digits = |len: u64, next: &mut dyn FnMut(u64) -> u64| -> String {
            (0..len)
                .map(|_| char::from(b'0' + next(10).min(4) as u8))
                .collect()
        };
        for _ in 0..400 {
            let prefix = format!("+{}", digits(next(5), &mut next));
            let after = (next(2) == 0).then(|| format!("+{}", digits(next(18), &mut next)));
            let limit = 1 + next(30) as usize;
            let got = list_numbers(&store, zones.iter(), &prefix, after.as_deref(), limit).unwrap();
            let expected: Vec<String> = want
                .iter()
                .filter(|n| n.starts_with(&prefix) && after.as_ref().is_none_or(|a| *n > a))
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(
                got, expected,
                "prefix {prefix} after {after:?} limit {limit}"
            );
        }
    }
}
