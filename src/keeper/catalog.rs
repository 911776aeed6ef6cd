//! The catalog zone (SPEC §12, RFC 9432): with `dns.catalog_zone` set, a zone listing
//! every zone this instance is primary for, which Knot, BIND and enroute secondaries
//! follow to add and drop member zones without a restart.
//!
//! The catalog is kept like a store zone: its copy of record is in the store (so it
//! has a serial that survives restarts, and the journal, IXFR and NOTIFY cover it like
//! any zone), and a new copy takes the keeper's one change path ([`Change::Whole`],
//! [`Keeper::commit`], [`Keeper::publish`]). [`Keeper::sync_catalog`] compares the
//! members with the stored copy and writes a new one, serial one up, only when the list
//! differs; member labels are derived from each origin
//! ([`crate::zone::catalog::member_id`]), so they never change for a zone.
//!
//! Owns: which zones are members (every served zone but the secondaries and the
//! catalog itself) and when the catalog changes. Must not touch: the catalog's layout
//! (`zone::catalog`), the member zones, or transfers (`dns`).

use super::Keeper;
use super::change::Change;
use super::publish::Stale;
use super::stored::{self, ZoneStoreError};
use crate::name::Name;
use crate::store::{Store, StoreError};
use crate::zone::Zone;
use crate::zone::catalog::{self, CatalogError};
use std::collections::BTreeSet;

/// Why the catalog could not be brought in step (the member zones are served as they
/// are; the catalog keeps its last copy).
#[derive(Debug, thiserror::Error)]
pub enum CatalogSyncError {
    #[error("catalog zone: {0}")]
    Store(#[from] StoreError),
    #[error("catalog zone: {0}")]
    StoreZone(#[from] ZoneStoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl Keeper {
    /// The catalog zone's origin, when one is kept.
    pub fn catalog(&self) -> Option<&Name> {
        self.catalog.as_ref()
    }

    /// Whether `origin` is the catalog zone.
    pub fn is_catalog(&self, origin: &Name) -> bool {
        self.catalog
            .as_ref()
            .is_some_and(|c| c.eq_ignore_case(origin))
    }

    /// Brings the catalog zone in step with the zones served: at start, after a SIGHUP,
    /// after a zone is created or deleted. When its members differ from the stored
    /// copy's, a new copy (serial one up, or 1 for the first) is committed and served;
    /// else the stored copy is served if it is not yet. Returns the serial committed,
    /// `None` when nothing was written (or no catalog is configured).
    pub fn sync_catalog(&self) -> Result<Option<u32>, CatalogSyncError> {
        let mut store = self.lock();
        self.sync_catalog_locked(&mut store)
    }

    /// [`Keeper::sync_catalog`] for a caller that holds the store.
    pub(super) fn sync_catalog_locked(
        &self,
        store: &mut Store,
    ) -> Result<Option<u32>, CatalogSyncError> {
        let Some(origin) = self.catalog.clone() else {
            return Ok(None);
        };
        let members = self.catalog_members();
        let stored = self.stored_catalog(store, &origin)?;
        if let Some(zone) = &stored
            && listed(zone).as_ref() == Some(&key(&members))
        {
            if self.served(&origin).is_none() {
                // No numbers in a catalog: no cached decision depends on it.
                self.publisher.publish(zone.clone(), Stale::Numbers(&[]));
            }
            return Ok(None);
        }
        let serial = stored.map_or(1, |z| z.soa.serial.wrapping_add(1).max(1));
        let new = catalog::build(&origin, serial, &members)?;
        let change = Change::Whole {
            new: Box::new(new),
            file_digest: None,
        };
        let ready = self.commit(store, vec![change])?;
        self.publish(ready);
        tracing::info!(zone = %origin, serial, members = members.len(), "catalog zone updated");
        Ok(Some(serial))
    }

    /// Every served zone this instance is primary for, the catalog left out, sorted.
    fn catalog_members(&self) -> Vec<Name> {
        let mut members: Vec<Name> = self
            .zones()
            .load()
            .iter()
            .map(|z| z.origin.clone())
            .filter(|o| !self.is_secondary(o) && !self.is_catalog(o))
            .collect();
        members.sort_by_key(|n| n.to_string().to_ascii_lowercase());
        members
    }

    /// The catalog's copy of record: the served one, else the store's.
    fn stored_catalog(
        &self,
        store: &Store,
        origin: &Name,
    ) -> Result<Option<Zone>, CatalogSyncError> {
        if let Some(served) = self.served(origin) {
            return Ok(Some((*served).clone()));
        }
        if store.serial(&origin.to_string())?.is_none() {
            return Ok(None);
        }
        Ok(Some(stored::load(store, origin)?))
    }
}

/// The members a catalog copy lists, as comparable keys; `None` when it is not a
/// catalog this release reads (then it is rewritten).
fn listed(zone: &Zone) -> Option<BTreeSet<(String, String)>> {
    let read = catalog::read(zone).ok()?;
    if !read.skipped.is_empty() {
        return None;
    }
    Some(
        read.members
            .iter()
            .map(|(id, m)| (id.clone(), m.to_string().to_ascii_lowercase()))
            .collect(),
    )
}

/// `members` as [`listed`] reads them from a built catalog.
fn key(members: &[Name]) -> BTreeSet<(String, String)> {
    members
        .iter()
        .map(|m| (catalog::member_id(m), m.to_string().to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::keeper::{Hooks, Publisher, ZoneError};
    use crate::zone::ZoneSet;
    use std::sync::{Arc, Mutex};

    const CATALOG: &str = "catalog.example.net.";
    const CONFIGURED: &str = "2.3.6.1.4.4.e164.arpa.";
    const CREATED: &str = "9.9.9.4.4.e164.arpa.";

    fn name(s: &str) -> Name {
        Name::from_text(s).unwrap()
    }

    fn zone_text(serial: u32) -> String {
        format!(
            "$TTL 300\n@ IN SOA ns.example.net. hostmaster.example.net. {serial} 3600 900 604800 300\n@ IN NS ns.example.net.\n"
        )
    }

    /// The (origin, serial) of each serial change announced, in order.
    type Notified = Arc<Mutex<Vec<(String, u32)>>>;

    /// A keeper over `dir`'s store serving `zones`, keeping the catalog; the serial
    /// changes it announced (what NOTIFY is sent for) are collected.
    fn start(dir: &std::path::Path, zones: Vec<Zone>) -> (Keeper, Arc<ZoneSet>, Notified) {
        let store = Store::open(&dir.join("enroute.db")).unwrap();
        let set = Arc::new(ZoneSet::new(zones));
        let notified = Arc::new(Mutex::new(Vec::new()));
        let n = notified.clone();
        let hooks = Hooks {
            serial_changed: Box::new(move |o, s| n.lock().unwrap().push((o.to_string(), s))),
            ..Hooks::default()
        };
        let publisher = Arc::new(Publisher::new(set.clone(), hooks));
        let keeper =
            Keeper::new(store, publisher, &Config::builtin()).with_catalog(Some(name(CATALOG)));
        (keeper, set, notified)
    }

    fn configured() -> Zone {
        Zone::from_master(zone_text(5).as_bytes(), "t", &name(CONFIGURED), None)
            .unwrap()
            .0
    }

    /// The catalog as served: its serial and members (origins, lower case, sorted).
    fn served_catalog(set: &ZoneSet) -> (u32, Vec<String>) {
        let zones = set.load();
        let cat = zones
            .iter()
            .find(|z| z.origin.eq_ignore_case(&name(CATALOG)))
            .expect("the catalog is served");
        let mut members: Vec<String> = catalog::read(cat)
            .unwrap()
            .members
            .iter()
            .map(|(_, m)| m.to_string())
            .collect();
        members.sort();
        (cat.soa.serial, members)
    }

    #[test]
    fn the_catalog_follows_zones_created_and_deleted_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (keeper, set, notified) = start(dir.path(), vec![configured()]);
        assert_eq!(keeper.sync_catalog().unwrap(), Some(1));
        assert_eq!(served_catalog(&set), (1, vec![CONFIGURED.to_string()]));
        assert_eq!(
            keeper.sync_catalog().unwrap(),
            None,
            "same members: no new serial"
        );

        let put = keeper
            .put_zone(&name(CREATED), zone_text(3).as_bytes())
            .unwrap();
        assert_eq!((put.serial, put.created), (3, true));
        assert_eq!(
            served_catalog(&set),
            (2, vec![CONFIGURED.to_string(), CREATED.to_string()])
        );
        // Replacing a member changes no membership.
        let put = keeper
            .put_zone(&name(CREATED), zone_text(3).as_bytes())
            .unwrap();
        assert_eq!((put.serial, put.created), (4, false));
        assert_eq!(served_catalog(&set).0, 2);

        keeper.delete_zone(&name(CREATED)).unwrap();
        assert_eq!(served_catalog(&set), (3, vec![CONFIGURED.to_string()]));
        assert!(
            notified.lock().unwrap().contains(&(CATALOG.to_string(), 3)),
            "each new catalog serial is announced (NOTIFY): {notified:?}"
        );
        drop(keeper);

        // A restart: the stored catalog is served as it was, serial and all.
        let (again, set, _) = start(dir.path(), vec![configured()]);
        assert_eq!(again.sync_catalog().unwrap(), None);
        assert_eq!(served_catalog(&set), (3, vec![CONFIGURED.to_string()]));
    }

    #[test]
    fn a_member_keeps_its_label_when_others_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let (keeper, set, _) = start(dir.path(), vec![configured()]);
        keeper.sync_catalog().unwrap();
        let id_of = |set: &ZoneSet, origin: &str| {
            let zones = set.load();
            let cat = zones
                .iter()
                .find(|z| z.origin.eq_ignore_case(&name(CATALOG)))
                .unwrap();
            catalog::read(cat)
                .unwrap()
                .members
                .into_iter()
                .find(|(_, m)| m.eq_ignore_case(&name(origin)))
                .map(|(id, _)| id)
        };
        let before = id_of(&set, CONFIGURED).unwrap();
        keeper
            .put_zone(&name(CREATED), zone_text(1).as_bytes())
            .unwrap();
        assert_eq!(id_of(&set, CONFIGURED).as_ref(), Some(&before));
        keeper.delete_zone(&name(CREATED)).unwrap();
        assert_eq!(id_of(&set, CONFIGURED), Some(before));
        assert_eq!(id_of(&set, CREATED), None);
    }

    #[test]
    fn the_catalog_is_not_the_apis_to_change_and_holds_no_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let (keeper, _, _) = start(dir.path(), vec![configured()]);
        keeper.sync_catalog().unwrap();
        let text = zone_text(9);
        assert!(matches!(
            keeper.put_zone(&name(CATALOG), text.as_bytes()),
            Err(ZoneError::Conflict(m)) if m.contains("catalog")
        ));
        assert!(matches!(
            keeper.delete_zone(&name(CATALOG)),
            Err(ZoneError::Conflict(_))
        ));
        // A configured zone is not the API's to delete either.
        assert!(matches!(
            keeper.delete_zone(&name(CONFIGURED)),
            Err(ZoneError::Conflict(m)) if m.contains("[[zone]]")
        ));
        // A number outside every ENUM zone is not taken by the catalog.
        assert!(keeper.find("+4412345").is_none());
        assert!(keeper.find("+441632960001").is_some());
    }

    #[test]
    fn without_a_catalog_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (keeper, set, _) = start(dir.path(), vec![configured()]);
        let keeper = keeper.with_catalog(None);
        assert_eq!(keeper.sync_catalog().unwrap(), None);
        keeper
            .put_zone(&name(CREATED), zone_text(1).as_bytes())
            .unwrap();
        assert_eq!(set.load().iter().count(), 2);
    }
}
