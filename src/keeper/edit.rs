//! Every change the admin API makes to a zone but bulk imports (`import`): a number's
//! routes, a prefix route, a whole zone replaced, created or deleted. Each is checked
//! here (the number's zone, not a secondary; what to remove exists), then made a
//! [`super::change::Change`] and takes
//! the keeper's one path: one store transaction (fsynced; the serial raised with it),
//! then the [`super::Publisher`].
//!
//! Owns: the checks and the serial each change takes (SPEC §10.9 for a whole zone),
//! and which zones the API may create and delete (SPEC §12: created zones are marked in
//! the store; only they may be deleted).
//! Must not touch: HTTP and JSON (`admin` parses bodies into [`super::Routes`]), SQL
//! (`store`), or the index (`zone`'s editing helpers).

use super::change::{Change, Edit};
use super::{EditError, Keeper, Routes, ZoneError};
use crate::name::Name;
use crate::zone::{Zone, serial_newer};

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

    /// Replaces a whole zone with master-file text, or creates it when no zone with this
    /// origin is served (SPEC §12). A replaced zone's serial is
    /// max(uploaded, current + 1) (SPEC §10.9); a created one keeps the uploaded serial, unless the store still
    /// holds rows of a zone of that origin (removed from the configuration): then the
    /// same rule holds against the stored serial, so that a secondary still holding the
    /// old copy sees a newer one. A created zone is marked in the store, so it is served
    /// again after a restart though no `[[zone]]` names it, and the catalog is brought
    /// in step. Secondary zones are read-only, the catalog is enroute's own.
    pub fn put_zone(&self, origin: &Name, text: &[u8]) -> Result<ZonePut, ZoneError> {
        self.check_api_may_change(origin)?;
        let mut store = self.lock();
        let current = self.served(origin);
        let created = current.is_none();
        if created && origin.label_count() == 0 {
            return Err(ZoneError::Invalid(
                "the root zone cannot be created through the API".into(),
            ));
        }
        let origin = current.as_ref().map_or(origin, |z| &z.origin).clone();
        let (zone, _warnings) = Zone::from_master(text, "body", &origin, None)?;
        let next = match &current {
            Some(z) => Some(z.next_serial()),
            None => store
                .serial(&origin.to_string())?
                .map(|s| s.wrapping_add(1)),
        };
        drop(current);
        let serial = match next {
            Some(next) if !serial_newer(zone.soa.serial, next) => next,
            _ => zone.soa.serial,
        };
        let zone = if zone.soa.serial == serial {
            zone
        } else {
            zone.with_serial(serial)
        };
        let change = Change::Whole {
            new: Box::new(zone),
            file_digest: None,
        };
        let ready = self
            .commit(&mut store, vec![change])
            .map_err(EditError::from)?;
        if created {
            // After the zone's own commit: a crash in between leaves a zone that is not
            // served after a restart (the client had no answer and may PUT again), never
            // a marked zone without records.
            let mut w = store.write()?;
            let id = w.zone(&origin.to_string())?;
            w.set_api_created(id, true)?;
            w.commit()?;
        }
        self.publish(ready);
        if created {
            tracing::info!(zone = %origin, serial, "zone created through the admin API");
            self.sync_catalog_after(&mut store);
        }
        Ok(ZonePut { serial, created })
    }

    /// Deletes a zone created through the API (SPEC §12): its rows (records, prefix
    /// routes, journal) in one transaction, then it is no longer served, then the
    /// catalog is brought in step. A configured zone (with a file or store-only: the
    /// configuration would bring it back), a secondary or the catalog is refused
    /// (`Conflict`, `ReadOnly`); an origin not served is `NotFound`.
    pub fn delete_zone(&self, origin: &Name) -> Result<(), ZoneError> {
        self.check_api_may_change(origin)?;
        let mut store = self.lock();
        let served = self
            .served(origin)
            .ok_or_else(|| EditError::NotFound(format!("zone {origin}")))?;
        let (origin, text) = (served.origin.clone(), served.origin_text.clone());
        // Dropped before the withdrawal, which waits for the last holder of the copy.
        drop(served);
        if !store.is_api_created(&text)? {
            return Err(ZoneError::Conflict(format!(
                "zone {origin} is configured in [[zone]], not created through the API: remove it from the configuration instead"
            )));
        }
        let mut w = store.write()?;
        w.delete_zone(&text)?;
        w.commit()?;
        self.publisher.withdraw(&origin);
        tracing::info!(zone = %origin, "zone deleted through the admin API");
        self.sync_catalog_after(&mut store);
        Ok(())
    }

    /// Whole-zone changes through the API: never to a secondary (its primary is the
    /// place) nor to the catalog (enroute keeps it from the zones served).
    fn check_api_may_change(&self, origin: &Name) -> Result<(), ZoneError> {
        if self.is_secondary(origin) {
            return Err(EditError::ReadOnly(origin.to_string()).into());
        }
        if self.is_catalog(origin) {
            return Err(ZoneError::Conflict(format!(
                "zone {origin} is the catalog zone (dns.catalog_zone): enroute keeps it from the zones it serves"
            )));
        }
        Ok(())
    }

    /// The catalog after a zone was created or deleted. That change is committed and
    /// served whatever happens here, so a failure is logged, not returned: the catalog
    /// keeps its last copy until the next change or SIGHUP brings it in step.
    fn sync_catalog_after(&self, store: &mut crate::store::Store) {
        if let Err(e) = self.sync_catalog_locked(store) {
            tracing::error!("{e}");
        }
    }
}

/// What [`Keeper::put_zone`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZonePut {
    /// The zone's serial now.
    pub serial: u32,
    /// Whether the zone was created (no zone of that origin was served).
    pub created: bool,
}
