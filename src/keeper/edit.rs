//! Every change the admin API makes to a zone: a number's routes, a prefix route, a bulk
//! import, a whole zone replaced. Each is checked here (the number's zone, not a
//! secondary; what to remove exists), then made a [`super::change::Change`] and takes
//! the keeper's one path: one store transaction (fsynced; the serial raised with it),
//! then the [`super::Publisher`].
//!
//! Owns: the checks and the serial each change takes (SPEC §10.9 for a whole zone).
//! Must not touch: HTTP and JSON (`admin` parses bodies into [`super::Routes`] and
//! [`super::ImportItem`]), SQL (`store`), or the index (`zone`'s editing helpers).

use super::change::{Change, Edit};
use super::{EditError, ImportItem, Keeper, Routes};
use crate::name::Name;
use crate::zone::{Zone, serial_newer};
use std::sync::Arc;

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
        let edits = vec![Edit::Number {
            number,
            digits,
            routes,
        }];
        let change = Change::Edit { old: zone, edits };
        let serial = change.serial();
        let ready = self.commit(&mut store, vec![change])?;
        self.publish(ready);
        Ok(serial)
    }

    /// Sets or removes a prefix route (`+digits`): the wildcard below the prefix's name,
    /// marked managed so that empty non-terminals under it get copies.
    pub fn set_prefix(&self, prefix: &str, routes: Option<&Routes>) -> Result<u32, EditError> {
        let mut store = self.lock();
        let (zone, digits) = self.locate(prefix)?;
        let mut star: Vec<&[u8]> = digits.chunks(1).collect();
        star.push(b"*");
        if routes.is_none() && zone.naptr_at(&star).is_none() {
            return Err(EditError::NotFound(prefix.to_string()));
        }
        let edits = vec![Edit::Prefix { digits, routes }];
        let change = Change::Edit { old: zone, edits };
        let serial = change.serial();
        let ready = self.commit(&mut store, vec![change])?;
        self.publish(ready);
        Ok(serial)
    }

    /// Replaces the routes of every number in `items`, all or nothing. Returns (numbers,
    /// routes).
    pub fn import(&self, items: &[ImportItem]) -> Result<(usize, usize), EditError> {
        let mut store = self.lock();
        // Group by zone (in first-seen order), checking every number first.
        let mut changes: Vec<Change<'_>> = Vec::new();
        for item in items {
            let (zone, digits) = self.locate(&item.number).map_err(|e| EditError::Line {
                line: item.line,
                message: e.to_string(),
            })?;
            let edit = Edit::Number {
                number: &item.number,
                digits,
                routes: Some(&item.routes),
            };
            let group = changes.iter_mut().find_map(|c| match c {
                Change::Edit { old, edits } if Arc::ptr_eq(old, &zone) => Some(edits),
                _ => None,
            });
            match group {
                Some(edits) => edits.push(edit),
                None => changes.push(Change::Edit {
                    old: zone,
                    edits: vec![edit],
                }),
            }
        }
        tracing::info!(
            numbers = items.len(),
            zones = changes.len(),
            "import: checked; writing to the store"
        );
        let ready = self.commit(&mut store, changes)?;
        tracing::info!(numbers = items.len(), "import: committed");
        self.publish(ready);
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
            .served(origin)
            .ok_or_else(|| EditError::NotFound(format!("zone {origin}")))?;
        let (zone, _warnings) = Zone::from_master(text, "body", &current.origin, None)?;
        let next = current.next_serial();
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
        drop(current);
        let change = Change::Whole {
            new: zone,
            file_digest: None,
        };
        let ready = self.commit(&mut store, vec![change])?;
        self.publish(ready);
        Ok(serial)
    }
}
