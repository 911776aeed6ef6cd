//! Every change the admin API makes to a zone: a number's routes, a prefix route, a bulk
//! import, a whole zone replaced. Each goes the keeper's one path: the served copy and
//! what changes → one store transaction (fsynced; the serial raised with it) → the
//! [`super::Publisher`].
//!
//! Owns: what each change writes and which cached decisions it makes stale, and when a
//! large import rebuilds the zone from the store rather than editing it name by name.
//! Must not touch: HTTP and JSON (`admin` parses bodies into [`super::Routes`] and
//! [`super::ImportItem`]), SQL (`store`), or the index (`zone`'s editing helpers).

use super::stored;
use super::{EditError, ImportItem, Keeper, Routes, Stale};
use crate::name::Name;
use crate::zone::{Zone, serial_newer};
use std::sync::Arc;

/// The numbers of one import that fall in one zone: (item index, digits below the apex).
type ZoneGroup = (Arc<Zone>, Vec<(usize, Vec<u8>)>);

/// Above this many numbers in one zone, an import rebuilds the zone from the store
/// rather than editing the index name by name.
const REBUILD_ABOVE: usize = 2000;

impl Keeper {
    /// Sets (`Some`) or removes (`None`) the routes of one number. Returns the zone's new
    /// serial; removing a number that has no routes is `NotFound`.
    pub fn set_number(&self, number: &str, routes: Option<&Routes>) -> Result<u32, EditError> {
        let mut store = self.lock();
        let (zone, digits) = self.locate(number)?;
        let labels: Vec<&[u8]> = digits.chunks(1).collect();
        if routes.is_none() && zone.naptr_at(&labels).is_none() {
            return Err(EditError::NotFound(number.to_string()));
        }
        let serial = zone.next_serial();
        let naptrs = routes.map(Routes::set);
        let mut w = store.write()?;
        let id = w.zone(&zone.origin_text)?;
        stored::write_naptrs(&mut w, id, &labels, Some(number), naptrs)?;
        stored::write_serial(&mut w, id, &zone, serial)?;
        w.commit()?;
        let edited = zone.with_naptrs(&labels, naptrs).with_serial(serial);
        drop(zone);
        self.publisher.publish(edited, Stale::Numbers(&[number]));
        Ok(serial)
    }

    /// Sets or removes a prefix route (`+digits`): the wildcard below the prefix's name,
    /// marked managed so that empty non-terminals under it get copies.
    pub fn set_prefix(&self, prefix: &str, routes: Option<&Routes>) -> Result<u32, EditError> {
        let mut store = self.lock();
        let (zone, digits) = self.locate(prefix)?;
        let labels: Vec<&[u8]> = digits.chunks(1).collect();
        let mut star = labels.clone();
        star.push(b"*");
        if routes.is_none() && zone.naptr_at(&star).is_none() {
            return Err(EditError::NotFound(prefix.to_string()));
        }
        let serial = zone.next_serial();
        let naptrs = routes.map(Routes::set);
        let mut w = store.write()?;
        let id = w.zone(&zone.origin_text)?;
        stored::write_prefix(&mut w, id, &labels, naptrs)?;
        stored::write_serial(&mut w, id, &zone, serial)?;
        w.commit()?;
        let edited = zone.with_prefix_naptrs(&labels, naptrs).with_serial(serial);
        drop(zone);
        self.publisher.publish(edited, Stale::All);
        Ok(serial)
    }

    /// Replaces the routes of every number in `items`, all or nothing. Returns (numbers,
    /// routes).
    pub fn import(&self, items: &[ImportItem]) -> Result<(usize, usize), EditError> {
        let mut store = self.lock();
        // Group by zone (in first-seen order), checking every number first.
        let mut groups: Vec<ZoneGroup> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (zone, digits) = self.locate(&item.number).map_err(|e| EditError::Line {
                line: item.line,
                message: e.to_string(),
            })?;
            match groups.iter_mut().find(|(z, _)| Arc::ptr_eq(z, &zone)) {
                Some((_, v)) => v.push((i, digits)),
                None => groups.push((zone, vec![(i, digits)])),
            }
        }
        tracing::info!(
            numbers = items.len(),
            zones = groups.len(),
            "import: checked; writing to the store"
        );
        let mut w = store.write()?;
        let mut serials = Vec::with_capacity(groups.len());
        for (zone, members) in &groups {
            let id = w.zone(&zone.origin_text)?;
            for (i, digits) in members {
                let labels: Vec<&[u8]> = digits.chunks(1).collect();
                let item = &items[*i];
                let naptrs = Some(item.routes.set());
                stored::write_naptrs(&mut w, id, &labels, Some(&item.number), naptrs)?;
            }
            let serial = zone.next_serial();
            stored::write_serial(&mut w, id, zone, serial)?;
            serials.push(serial);
        }
        w.commit()?;
        tracing::info!(numbers = items.len(), "import: committed");
        for ((zone, members), serial) in groups.into_iter().zip(serials) {
            let edited = if members.len() > REBUILD_ABOVE {
                stored::load(&store, &zone.origin)?
            } else {
                let mut z = (*zone).clone();
                for (i, digits) in &members {
                    let labels: Vec<&[u8]> = digits.chunks(1).collect();
                    z = z.with_naptrs(&labels, Some(items[*i].routes.set()));
                }
                z.with_serial(serial)
            };
            let numbers: Vec<&str> = if members.len() > REBUILD_ABOVE {
                Vec::new()
            } else {
                members
                    .iter()
                    .map(|(i, _)| items[*i].number.as_str())
                    .collect()
            };
            let stale = if members.len() > REBUILD_ABOVE {
                Stale::All
            } else {
                Stale::Numbers(&numbers)
            };
            // The served copy may be freed only once nothing here holds it.
            drop(zone);
            self.publisher.publish(edited, stale);
        }
        Ok((
            items.len(),
            items.iter().map(|i| i.routes.naptrs.len()).sum(),
        ))
    }

    /// Replaces a whole zone with master-file text (SPEC §10.9: the new serial is
    /// max(uploaded, current + 1)). Returns the serial.
    pub fn replace_zone(&self, origin: &Name, text: &[u8]) -> Result<u32, EditError> {
        if self.is_secondary(origin) {
            return Err(EditError::ReadOnly(origin.to_string()));
        }
        let mut store = self.lock();
        let current = self
            .zones()
            .load()
            .iter()
            .find(|z| z.origin.eq_ignore_case(origin))
            .cloned()
            .ok_or_else(|| EditError::NotFound(format!("zone {origin}")))?;
        let (zone, _warnings) = Zone::from_master(text, "body", &current.origin, None)?;
        let next = current.soa.serial.wrapping_add(1);
        let serial = if serial_newer(zone.soa.serial, next) {
            zone.soa.serial
        } else {
            next
        };
        let zone = if zone.soa.serial == serial {
            zone
        } else {
            zone.with_serial(serial)
        };
        stored::save(&mut store, &zone, None)?;
        drop(current);
        self.publisher.publish(zone, Stale::All);
        Ok(serial)
    }
}
