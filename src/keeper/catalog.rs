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
        self.catalog.as_ref().is_some_and(|c| c.eq_ignore_case(origin))
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
        let change = [Change::Whole {
            new,
            file_digest: None,
        }];
        self.commit(store, &change)?;
        self.publish(store, change.into())?;
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
