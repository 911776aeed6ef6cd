//! The one path by which a zone change reaches the readers: [`Publisher`].
//!
//! Owns: swapping a zone into the [`ZoneSet`] (or withdrawing one), telling the rest of
//! the service through [`Hooks`] (NOTIFY when the serial changed, the stale cached
//! decisions), and freeing the old copy off the readers' threads.
//!
//! Must not touch: the store (the publisher needs none, so secondary zones publish
//! without the keeper's lock), or the modules it tells: `server` sets the hooks up, so
//! nothing here names `dns` or `resolve`.

use super::transfers::TransferLog;
use crate::name::Name;
use crate::zone::{Zone, ZoneSet};
use std::sync::Arc;

/// Which cached decisions a zone change makes stale. The cache holds upstream decisions
/// only, but a decision may have gone upstream because a local zone lacked the number
/// (or sent it on with a non-terminal record), so a local change can make it wrong.
#[derive(Debug, Clone, Copy)]
pub enum Stale<'a> {
    /// Every decision: a whole zone replaced or transferred, a prefix changed.
    All,
    /// The decisions for these numbers (`+digits`).
    Numbers(&'a [&'a str]),
}

/// The one path by which a zone change reaches the readers: the keeper's changes and
/// the secondary zones' transfers and withdrawals alike. It swaps the copy into the
/// [`ZoneSet`] (which the SIP, DNS and route paths read, and `/metrics` reports:
/// `enroute_zone_serial`, `enroute_zone_records`), NOTIFYs `dns.notify` when the serial
/// changed, drops the stale cached decisions and frees the old copy on the writer's
/// thread. It holds no lock and needs no store.
///
/// [`Publisher::publish`] and [`Publisher::withdraw`] may block for up to a second
/// while readers let go of the old copy: call them from a blocking thread
/// (`spawn_blocking`), never on a runtime worker.
pub struct Publisher {
    zones: Arc<ZoneSet>,
    hooks: Hooks,
    /// Each zone's last transfer in and out.
    transfers: Arc<TransferLog>,
}

/// What a published change tells the rest of the service, each called after the swap
/// on the publishing thread. `server` sets them up at start — NOTIFY out (`dns::notify`)
/// and the router's decision cache — so that the keeper names neither `dns` nor
/// `resolve`. [`Hooks::default`] does nothing (a publisher with no one to tell).
pub struct Hooks {
    /// The zone `origin` is now served at `serial`, which it did not have before.
    pub serial_changed: SerialChanged,
    /// Drops every cached decision.
    pub invalidate_all: Box<dyn Fn() + Send + Sync>,
    /// Drops the cached decision for one number (`+digits`).
    pub invalidate: Box<dyn Fn(&str) + Send + Sync>,
}

/// [`Hooks::serial_changed`]: called with the zone's origin and its new serial.
pub type SerialChanged = Box<dyn Fn(&Name, u32) + Send + Sync>;

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            serial_changed: Box::new(|_, _| {}),
            invalidate_all: Box::new(|| {}),
            invalidate: Box::new(|_| {}),
        }
    }
}

impl Publisher {
    pub fn new(zones: Arc<ZoneSet>, hooks: Hooks) -> Self {
        Publisher {
            zones,
            hooks,
            transfers: Arc::default(),
        }
    }

    /// Each zone's last transfer in and out, noted by `dns` (forgotten when the zone is
    /// withdrawn, so that a zone made again under its origin starts with none).
    pub fn transfers(&self) -> &Arc<TransferLog> {
        &self.transfers
    }

    /// The zones published to.
    pub fn zones(&self) -> &Arc<ZoneSet> {
        &self.zones
    }

    /// Serves `zone` (in place of the copy with its origin), NOTIFYs when its serial
    /// changed, then drops the `stale` cached decisions and frees the old copy.
    pub fn publish(&self, zone: Zone, stale: Stale<'_>) {
        let (origin, serial) = (zone.origin.clone(), zone.soa.serial);
        let old = self.current(&origin);
        self.zones.replace(zone);
        if old.as_ref().map(|z| z.soa.serial) != Some(serial) {
            (self.hooks.serial_changed)(&origin, serial);
        }
        // After the swap, so that a lookup that read the old copy cannot leave its
        // decision behind a drop that came first.
        match stale {
            Stale::All => (self.hooks.invalidate_all)(),
            Stale::Numbers(numbers) => {
                for n in numbers {
                    (self.hooks.invalidate)(n);
                }
            }
        }
        free(old, &origin);
    }

    /// Stops serving the zone with this origin (a secondary past its SOA expire): its
    /// names go to upstream DNS from now on, so every cached decision is dropped.
    pub fn withdraw(&self, origin: &Name) {
        let old = self.current(origin);
        self.zones.remove(origin);
        self.transfers.forget(origin);
        (self.hooks.invalidate_all)();
        free(old, origin);
    }

    /// The copy of the zone with this origin now served.
    pub fn current(&self, origin: &Name) -> Option<Arc<Zone>> {
        self.zones
            .load()
            .iter()
            .find(|z| z.origin.eq_ignore_case(origin))
            .cloned()
    }
}

/// Frees a replaced copy here rather than on whichever SIP or DNS worker lets go of it
/// last: after a rebuild or a transfer it is a whole zone (a million nodes take tens of
/// ms to free). Readers hold a snapshot for one request, so this wait is short; after a
/// second it gives up and lets the last reader free it.
fn free(old: Option<Arc<Zone>>, origin: &Name) {
    if let Some(old) = old {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if Arc::strong_count(&old) > 1 {
            tracing::debug!(zone = %origin, "old zone copy still held after 1 s; its last reader frees it");
        }
        drop(old);
    }
}
