//! A bulk import (SPEC §7, §13): many numbers set or deleted in one change, all or
//! nothing, through the keeper's one path ([`super::change`]).
//!
//! Owns: the import modes' rules: in merge mode the numbers the import does not name
//! stay, a delete line removes its number (a number without routes is left alone and
//! reported); in replace mode each zone the import touches (and the zone named, when
//! one is) ends up with exactly the import's numbers, the others deleted; a zone named
//! holds every number of the import; the counts the answer gives.
//!
//! Must not touch: parsing and staging (the admin API stages numbers through
//! [`super::staged::Stager`]), SQL (the store's read calls only, under the keeper's
//! lock), or the index (`zone`'s editing helpers).

use super::change::Change;
use super::staged::{DELETE, Keyed, Named, Staged, StagedZone, keep_first_lines};
use super::stored::number_text;
use super::{EditError, ImportCounts, Keeper};
use crate::name::Name;
use crate::store::{Store, StoreError};
use crate::zone::Zone;
use crate::zone::index::shape::{Digits, number_key};
use std::sync::Arc;

/// Delete lines of absent numbers listed in [`ImportCounts::absent`]; the rest counted.
const MAX_ABSENT_LISTED: usize = 100;

/// Keys read from the store at a time when a replace looks for the numbers it leaves
/// out.
const KEYS_PAGE: usize = 1 << 16;

impl Keeper {
    /// Writes a staged import ([`super::staged::Stager`]) in one change, all or
    /// nothing: its numbers set or deleted and, in a replace, the numbers it leaves out
    /// of the zones it replaces deleted. Under the keeper's lock each zone is taken as
    /// served now (an API edit may have come during the upload) and delete lines of
    /// numbers without routes are left out (and reported in `absent`).
    pub fn import(&self, staged: Staged) -> Result<ImportCounts, EditError> {
        let Staged {
            mut zones,
            shapes,
            options,
        } = staged;
        let mut store = self.lock();
        if options.replace && zones.is_empty() {
            return Err(EditError::Param {
                field: "zone",
                message: "an empty import in mode=replace needs zone=ORIGIN, the zone to empty"
                    .into(),
            });
        }
        let mut counts = ImportCounts::default();
        let mut served = Vec::with_capacity(zones.len());
        for z in &mut zones {
            let zone = self.import_target(&z.origin)?;
            leave_out_absent(&zone, z, &mut counts);
            if options.replace {
                counts.deleted += left_out(&store, z)?;
            }
            served.push(zone);
            for shape in z
                .keyed
                .iter()
                .map(|k| k.shape)
                .chain(z.named.iter().map(|n| n.shape))
            {
                match shape {
                    DELETE => {}
                    shape => {
                        counts.numbers += 1;
                        counts.routes += shapes.naptrs(shape);
                    }
                }
            }
        }
        keep_first_lines(&mut counts.absent, MAX_ABSENT_LISTED, |a| a.0, true);
        let changes: Vec<Change<'_>> = zones
            .into_iter()
            .zip(served)
            .filter(|(z, _)| !z.is_empty())
            .map(|(numbers, zone)| Change::Staged {
                zone,
                numbers,
                shapes: &shapes,
            })
            .collect();
        tracing::info!(
            numbers = counts.numbers,
            deleted = counts.deleted,
            zones = changes.len(),
            shapes = shapes.len(),
            "import: checked; writing to the store"
        );
        let ready = self.commit(&mut store, changes)?;
        tracing::info!(
            numbers = counts.numbers,
            deleted = counts.deleted,
            "import: committed"
        );
        self.publish(ready);
        Ok(counts)
    }
}

impl Keeper {
    /// The zone an import names: served here and changeable through the API.
    pub fn import_target(&self, origin: &Name) -> Result<Arc<Zone>, EditError> {
        let param = |message: String| EditError::Param {
            field: "zone",
            message,
        };
        let zone = self
            .served(origin)
            .ok_or_else(|| param(format!("no zone {origin} is served here")))?;
        if self.is_catalog(&zone.origin) {
            return Err(param(format!(
                "{origin} is the catalog zone, kept by enroute"
            )));
        }
        if self.secondary_list().iter().any(|s| *s == zone.origin) {
            return Err(EditError::ReadOnly(zone.origin_text.to_string()));
        }
        Ok(zone)
    }
}

/// Drops the delete lines of `z` whose number has no NAPTRs in the served `zone`
/// (those of the smallest lines listed in `counts.absent`, all counted), and counts the
/// others as deleted.
fn leave_out_absent(zone: &Zone, z: &mut StagedZone, counts: &mut ImportCounts) {
    let prefix = z.prefix.clone();
    let mut absent = |number: String, line: u32| {
        counts.absent_total += 1;
        counts.absent.push((line as usize, number));
        keep_first_lines(&mut counts.absent, MAX_ABSENT_LISTED, |a| a.0, false);
    };
    let mut deleted = 0;
    z.keyed.retain(|k| {
        if k.shape != DELETE {
            return true;
        }
        let digits = Digits::of_key(k.key);
        let labels: Vec<&[u8]> = digits.as_bytes().chunks(1).collect();
        let here = zone.naptr_at(&labels).is_some();
        match here {
            true => deleted += 1,
            false => absent(number_text(&prefix, k.key as i64), k.line),
        }
        here
    });
    let mut named = std::mem::take(&mut z.named);
    named.retain(|n| {
        if n.shape != DELETE {
            return true;
        }
        let labels: Vec<&[u8]> = z.digits_of(n).chunks(1).collect();
        let here = zone.naptr_at(&labels).is_some();
        match here {
            true => deleted += 1,
            false => absent(n.number.to_string(), n.line),
        }
        here
    });
    z.named = named;
    counts.deleted += deleted;
}

/// For a replace: adds to `z` a delete of every number the store holds in its zone that
/// the import leaves out (merged into key order); how many.
fn left_out(store: &Store, z: &mut StagedZone) -> Result<usize, StoreError> {
    let origin = z.origin.to_string();
    let mut gone = Vec::new();
    let (mut from, mut staged) = (1i64, z.keyed.iter().map(|k| k.key as i64).peekable());
    loop {
        let page = store.number_keys(&origin, (from, 1 << 60), KEYS_PAGE)?;
        for &key in &page {
            while staged.next_if(|s| *s < key).is_some() {}
            if staged.next_if_eq(&key).is_none() {
                gone.push(key as u64);
            }
        }
        match page.last() {
            Some(last) if page.len() == KEYS_PAGE => from = last + 1,
            _ => break,
        }
    }
    // Numbers the store keeps as records: the long ones, and in a zone not yet split
    // (or whose records did not encode as a shape) short ones too, which the import
    // stages by key: those join the keyed deletes.
    let mut named_gone: Vec<String> =
        store.long_numbers(&origin, ("+", "+\u{ffff}", ""), usize::MAX)?;
    let skip = 1 + z.prefix.len();
    let mut short_gone = Vec::new();
    named_gone.retain(|n| {
        let below = n.as_bytes().get(skip..).unwrap_or_default();
        match number_key(below) {
            Some(key) => {
                if z.keyed.binary_search_by_key(&key, |k| k.key).is_err() {
                    short_gone.push(key);
                }
                false
            }
            None => z
                .named
                .binary_search_by(|s| (*s.number).cmp(n.as_str()))
                .is_err(),
        }
    });
    gone.extend(short_gone);
    let count = gone.len() + named_gone.len();
    if !gone.is_empty() {
        // In place: extended and sorted again rather than merged into a second list,
        // which a 10^8-number replace could not afford beside the first.
        z.keyed.reserve_exact(gone.len());
        z.keyed.extend(gone.into_iter().map(|key| Keyed {
            key,
            shape: DELETE,
            line: 0,
        }));
        z.keyed.sort_unstable_by_key(|k| k.key);
    }
    z.named.extend(named_gone.into_iter().map(|number| Named {
        number: number.into(),
        shape: DELETE,
        line: 0,
    }));
    z.named.sort_by(|a, b| a.number.cmp(&b.number));
    Ok(count)
}
