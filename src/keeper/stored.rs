//! The store↔zone mapping: a [`Zone`] built from the store's rows, and a zone's records
//! written to the store. The one place that knows both sides; `zone` never names the
//! store and `store` never names the index.
//!
//! Owns: which records of a zone are kept (every record as served, except the derived
//! wildcard copies of prefix routes), the owner key and E.164 number each row carries,
//! the managed prefix marks, and the SOA row that goes with a new serial.
//!
//! Must not touch: when a change is made or served (the keeper and its
//! [`super::Publisher`]), SQL (the store's), or the index's layout (the zone's).

use crate::name::{Name, TYPE_NAPTR, TYPE_SOA};
use crate::store::{Store, StoreError, Write, owner_key, owner_labels};
use crate::zone::{ContentDigest, Records, Zone, ZoneLoadError};

/// A zone the store could not give back.
#[derive(Debug, thiserror::Error)]
pub enum ZoneStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store holds no records for zone {0}")]
    Missing(String),
    #[error("zone in the store does not load: {0}")]
    Invalid(#[from] ZoneLoadError),
}

/// Builds a zone from the store's records and marks its managed prefix routes.
pub fn load(store: &Store, origin: &Name) -> Result<Zone, ZoneStoreError> {
    from_rows(origin, |each| store.read_zone(&origin.to_string(), each))
}

/// [`load`] inside a write transaction: the zone as it will be once `w` commits.
pub(super) fn load_in(w: &Write<'_>, origin: &Name) -> Result<Zone, ZoneStoreError> {
    from_rows(origin, |each| w.read_zone(&origin.to_string(), each))
}

/// A zone from the rows `read` feeds (it returns the managed prefix owners).
fn from_rows(
    origin: &Name,
    read: impl FnOnce(&mut dyn FnMut(&[u8], u16, u32, &[u8])) -> Result<Vec<Vec<u8>>, StoreError>,
) -> Result<Zone, ZoneStoreError> {
    let text = origin.to_string();
    let mut records = Records::new(format!("store:{text}"));
    let prefixes =
        read(&mut |owner, rtype, ttl, rdata| records.add_key(owner, rtype, ttl, rdata, 0))?;
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
    write_journal(&mut w, id, Some(old), zone, keep)?;
    w.commit()
}

/// Replaces every record and prefix mark of zone `id` with `zone`'s (see [`save`]).
pub(super) fn write_zone(
    w: &mut Write<'_>,
    id: i64,
    zone: &Zone,
    file_digest: Option<ContentDigest>,
) -> Result<(), StoreError> {
    w.clear_zone(id)?;
    let mut failed = None;
    zone.for_each_name(|labels, rrsets| {
        if failed.is_some() {
            return;
        }
        let owner = owner_key(labels);
        let number = zone.number_of(labels);
        for set in rrsets {
            for rd in set.rdatas() {
                if let Err(e) = w.insert(id, &owner, number.as_deref(), set.rtype, set.ttl, &rd) {
                    failed = Some(e);
                    return;
                }
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    w.set_serial(id, zone.soa.serial)?;
    w.set_file_digest(
        id,
        file_digest.map(|d| d.to_bytes()).as_ref().map(|b| &b[..]),
    )
}

/// Largest journal entry kept (encoded): a bigger change empties the journal instead,
/// and secondaries behind it take the whole zone (smaller than such a difference).
const JOURNAL_ENTRY_MAX: usize = 256 << 20;

/// Records the change from `old` to `new` of zone `id` in its journal, keeping the
/// newest `keep` changes. With no `old` copy, a serial that did not grow (RFC 1982) or a
/// difference too large to keep, the journal is emptied instead: its history no longer
/// leads to the stored copy.
pub(super) fn write_journal(
    w: &mut Write<'_>,
    id: i64,
    old: Option<&Zone>,
    new: &Zone,
    keep: usize,
) -> Result<(), StoreError> {
    let diff = old
        .filter(|o| keep > 0 && crate::zone::serial_newer(new.soa.serial, o.soa.serial))
        .and_then(|o| Zone::diff(o, new));
    let Some(diff) = diff else {
        return w.journal_clear(id);
    };
    let mut bytes = Vec::new();
    diff.encode(&mut bytes);
    if bytes.len() > JOURNAL_ENTRY_MAX {
        return w.journal_clear(id);
    }
    w.journal_append(id, (diff.from_serial(), diff.to_serial()), &bytes, keep)
}

/// The digest of the zone file as last loaded into the store, if it came from one.
pub fn file_digest(store: &Store, origin: &str) -> Result<Option<ContentDigest>, StoreError> {
    Ok(store
        .file_digest(origin)?
        .and_then(|b| ContentDigest::from_bytes(&b)))
}

/// Replaces the NAPTR RRset of the name `below_apex` of zone `id` with `naptrs` (TTL and
/// rdatas; `None`: removes it). `number` is the name as an E.164 number when it is one.
pub(super) fn write_naptrs(
    w: &mut Write<'_>,
    id: i64,
    below_apex: &[&[u8]],
    number: Option<&str>,
    naptrs: Option<(u32, &[Vec<u8>])>,
) -> Result<(), StoreError> {
    let owner = owner_key(below_apex);
    w.delete_rrset(id, &owner, TYPE_NAPTR)?;
    if let Some((ttl, rdatas)) = naptrs {
        for rd in rdatas {
            w.insert(id, &owner, number, TYPE_NAPTR, ttl, rd)?;
        }
    }
    Ok(())
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
    write_naptrs(w, id, &star, None, naptrs)?;
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
        w.insert(id, &[], None, TYPE_SOA, served.soa.ttl, &soa)?;
    }
    w.set_serial(id, serial)
}
