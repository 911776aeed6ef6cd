//! A bulk import (SPEC §7, §13): many numbers set or deleted in one change, all or
//! nothing, through the keeper's one path ([`super::change`]).
//!
//! Owns: the import modes' rules: in merge mode the numbers the import does not name
//! stay, a delete line removes its number (a number without routes is left alone and
//! reported); in replace mode each zone the import touches (and the zone named, when
//! one is) ends up with exactly the import's numbers, the others deleted; a zone named
//! holds every number of the import; the grouping of the edits by zone and the counts
//! the answer gives.
//!
//! Must not touch: parsing (the admin API hands over [`ImportItem`]s), SQL (the store's
//! read calls only, under the keeper's lock), or the index (`zone`'s editing helpers).

use super::change::{Change, Edit};
use super::{EditError, ImportCounts, ImportItem, ImportOptions, Keeper};
use crate::name::Name;
use crate::store::Store;
use crate::zone::Zone;
use std::collections::HashSet;
use std::sync::Arc;

/// Delete lines of absent numbers listed in [`ImportCounts::absent`]; the rest counted.
const MAX_ABSENT_LISTED: usize = 100;

/// For a replace: each zone replaced (by its place in [`Zones`]), with the numbers
/// (`+digits`) the import leaves out of it.
type LeftOut = Vec<(usize, Vec<String>)>;

/// The served copies of the zones an import touches, each once; items name them by
/// place. They are dropped before the new copies are published: the publisher waits
/// for the last holder of an old copy to let go.
type Zones = Vec<Arc<Zone>>;

/// An import's number, found in its zone.
struct Located<'a> {
    item: &'a ImportItem,
    /// The zone's place in [`Zones`].
    zone: usize,
    digits: Vec<u8>,
}

impl Keeper {
    /// Sets or deletes every number of `items` in one change, all or nothing, and with
    /// [`ImportOptions::replace`] deletes the numbers the import leaves out of the zones
    /// it replaces. Every number is checked (its zone, the one named, not a secondary)
    /// before anything is written.
    pub fn import(
        &self,
        items: &[ImportItem],
        options: &ImportOptions,
    ) -> Result<ImportCounts, EditError> {
        let mut store = self.lock();
        let mut zones = Zones::new();
        if let Some(origin) = &options.zone {
            zones.push(self.import_target(origin)?);
        }
        let mut counts = ImportCounts::default();
        let located = self.locate_all(items, &mut zones, options, &mut counts)?;
        let left_out = match options.replace {
            true => left_out(&store, &located, &zones)?,
            false => Vec::new(),
        };
        counts.deleted += left_out.iter().map(|(_, gone)| gone.len()).sum::<usize>();
        let changes = grouped(&zones, &located, &left_out);
        tracing::info!(
            numbers = counts.numbers,
            deleted = counts.deleted,
            zones = changes.len(),
            "import: checked; writing to the store"
        );
        let ready = self.commit(&mut store, changes)?;
        tracing::info!(
            numbers = counts.numbers,
            deleted = counts.deleted,
            "import: committed"
        );
        drop(zones);
        self.publish(ready);
        Ok(counts)
    }

    /// Every item found in its zone (added to `zones` when new) and counted; delete
    /// lines of numbers without routes are left out (and reported in `counts.absent`).
    /// With `options.zone` (the first of `zones`), every number must fall in it.
    fn locate_all<'a>(
        &self,
        items: &'a [ImportItem],
        zones: &mut Zones,
        options: &ImportOptions,
        counts: &mut ImportCounts,
    ) -> Result<Vec<Located<'a>>, EditError> {
        let target = options.zone.as_ref().and(zones.first().cloned());
        let mut located = Vec::with_capacity(items.len());
        for item in items {
            let (zone, digits) = self.locate_item(item, target.as_ref(), options.replace)?;
            match &item.routes {
                Some(routes) => {
                    counts.numbers += 1;
                    counts.routes += routes.naptrs.len();
                }
                None if zone
                    .naptr_at(&digits.chunks(1).collect::<Vec<_>>())
                    .is_none() =>
                {
                    counts.absent_total += 1;
                    if counts.absent.len() < MAX_ABSENT_LISTED {
                        counts.absent.push((item.line, item.number.clone()));
                    }
                    continue;
                }
                None => counts.deleted += 1,
            }
            let zone = match zones.iter().position(|z| Arc::ptr_eq(z, &zone)) {
                Some(at) => at,
                None => {
                    zones.push(zone);
                    zones.len() - 1
                }
            };
            located.push(Located { item, zone, digits });
        }
        Ok(located)
    }

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

    /// Finds the zone of one import line's number; with a `target`, the number must fall
    /// in it; a replace import has no delete lines.
    fn locate_item(
        &self,
        item: &ImportItem,
        target: Option<&Arc<Zone>>,
        replace: bool,
    ) -> Result<(Arc<Zone>, Vec<u8>), EditError> {
        let at_line = |message: String| EditError::Line {
            line: item.line,
            message,
        };
        let (zone, digits) = self
            .locate(&item.number)
            .map_err(|e| at_line(e.to_string()))?;
        if let Some(target) = target.filter(|t| !Arc::ptr_eq(t, &zone)) {
            return Err(at_line(format!(
                "{} is in zone {}, not in {}, the zone this import is for",
                item.number, zone.origin_text, target.origin_text
            )));
        }
        if replace && item.routes.is_none() {
            return Err(at_line(format!(
                "{}: a delete line has no place in mode=replace (leave the number out \
                 of the import to delete it)",
                item.number
            )));
        }
        Ok((zone, digits))
    }
}

/// For a replace: each zone replaced (those the import touches, and the one named:
/// all of `zones`) with the numbers of it that the import leaves out, to be deleted.
fn left_out(store: &Store, located: &[Located<'_>], zones: &Zones) -> Result<LeftOut, EditError> {
    if zones.is_empty() {
        return Err(EditError::Param {
            field: "zone",
            message: "an empty import in mode=replace needs zone=ORIGIN, the zone to empty".into(),
        });
    }
    let mut out = Vec::with_capacity(zones.len());
    for (at, zone) in zones.iter().enumerate() {
        let kept: HashSet<&str> = located
            .iter()
            .filter(|l| l.zone == at)
            .map(|l| l.item.number.as_str())
            .collect();
        let mut gone = super::stored::zone_numbers(store, zone)?;
        gone.retain(|n| !kept.contains(n.as_str()));
        out.push((at, gone));
    }
    Ok(out)
}

/// The edits, one [`Change`] per zone of `zones` that has any: the import's numbers,
/// then the numbers a replace leaves out (deleted).
fn grouped<'a>(
    zones: &Zones,
    located: &'a [Located<'a>],
    left_out: &'a LeftOut,
) -> Vec<Change<'a>> {
    let mut edits: Vec<Vec<Edit<'a>>> = zones.iter().map(|_| Vec::new()).collect();
    for l in located {
        edits[l.zone].push(Edit::Number {
            number: &l.item.number,
            digits: l.digits.clone(),
            routes: l.item.routes.as_ref(),
        });
    }
    for (at, numbers) in left_out {
        let skip = zones[*at].number_prefix().len() + 1;
        for number in numbers {
            edits[*at].push(Edit::Number {
                number,
                digits: number.as_bytes()[skip..].to_vec(),
                routes: None,
            });
        }
    }
    zones
        .iter()
        .zip(edits)
        .filter(|(_, edits)| !edits.is_empty())
        .map(|(zone, edits)| Change::Edit {
            old: zone.clone(),
            edits,
        })
        .collect()
}
