//! SIGHUP for zones (SPEC §6): every zone file re-read and checked first, all or
//! nothing; then each file newer than the store's copy replaces it, and zones configured
//! since the start are served — each through the store, then the [`super::Publisher`].
//!
//! Owns: [`Keeper::reload_files`] and what it reports ([`Reloaded`],
//! [`ZoneFilesRejected`]). Must not touch: the rest of the configuration (the routing
//! plan is `server`'s to swap), zones already served from the store only, or secondary
//! zones.

use super::Keeper;
use super::change::Change;
use super::of_record::{
    Drift, ZoneFileError, file_wins, load_zone_file, log_created, same_or_ignored, starter_zone,
    warn_ignored, warn_replaced,
};
use super::publish::Stale;
use super::stored;
use crate::config::{Config, ZoneSource};
use crate::name::Name;
use crate::store::Store;
use crate::zone::Zone;
use std::path::Path;

impl Keeper {
    /// SIGHUP: every configured file zone whose file is newer than the store's copy
    /// replaces it; a file that differs without a higher serial is ignored with a
    /// warning naming it; zones configured since the start are served (a store-only
    /// one created if the store lacks it). Store-only zones already served are not
    /// touched. All or nothing: every file is read and parsed first, and one
    /// that fails (each error logged, `FILE:LINE: message`) leaves every zone as it was.
    pub fn reload_files(&self, config: &Config) -> Result<Reloaded, ZoneFilesRejected> {
        let mut parsed = Vec::new();
        let mut failed = 0;
        for (i, z) in config.zones.iter().enumerate() {
            let ZoneSource::File(path) = &z.source else {
                continue;
            };
            match load_zone_file(config, i, path) {
                Ok(zone) => parsed.push((z, path, zone)),
                Err(e) => {
                    failed += 1;
                    log_rejected(&z.origin, &e);
                }
            }
        }
        if failed > 0 {
            return Err(ZoneFilesRejected { failed });
        }
        let mut store = self.lock();
        let mut done = Reloaded::default();
        for (z, path, file_zone) in parsed {
            match self.reload_file(&mut store, path, file_zone) {
                Ok(Reload::Replaced) => done.replaced += 1,
                Ok(Reload::Ignored) => done.ignored += 1,
                Ok(Reload::Unchanged) => {}
                Err(e) => tracing::error!(zone = %z.origin, "reload: {e}"),
            }
        }
        for z in &config.zones {
            if z.source == ZoneSource::Store && self.served(&z.origin).is_none() {
                match self.serve_new_store_zone(&mut store, &z.origin) {
                    Ok(()) => done.replaced += 1,
                    Err(e) => tracing::error!(zone = %z.origin, "reload: {e}"),
                }
            }
        }
        Ok(done)
    }

    /// One parsed zone file on SIGHUP (SPEC §6): stored and served when the store lacks
    /// the zone or the file is newer; else the store's copy stays (and is served, if
    /// this zone is new to the configuration).
    fn reload_file(
        &self,
        store: &mut Store,
        path: &Path,
        file_zone: Zone,
    ) -> Result<Reload, ZoneFileError> {
        let origin = file_zone.origin.clone();
        let stored = store.serial(&file_zone.origin_text)?;
        if stored.is_none_or(|serial| file_wins(&file_zone, serial)) {
            let (serial, records) = (file_zone.soa.serial, file_zone.stats.records);
            let file_digest = Some(file_zone.content_digest());
            let change = Change::Whole {
                new: Box::new(file_zone),
                file_digest,
            };
            let ready = self.commit(store, vec![change])?;
            if stored.is_some() {
                warn_replaced(ready[0].zone());
            }
            self.publish(ready);
            // Logged once served: a reader of the log may rely on the new answers.
            tracing::info!(zone = %origin, serial, records, "zone reloaded");
            return Ok(Reload::Replaced);
        }
        let loaded = stored::file_digest(store, &file_zone.origin_text)?;
        let file_serial = file_zone.soa.serial;
        if let Some(served) = self.served(&origin) {
            let drift = same_or_ignored(&file_zone, loaded, || served.content_digest());
            if let Drift::Ignored = drift {
                warn_ignored(path, file_serial, &served);
                return Ok(Reload::Ignored);
            }
            return Ok(Reload::Unchanged);
        }
        // Newly configured and already in the store.
        let zone = stored::load(store, &origin)?;
        if let Drift::Ignored = same_or_ignored(&file_zone, loaded, || zone.content_digest()) {
            warn_ignored(path, file_serial, &zone);
        }
        self.publisher.publish(zone, Stale::All);
        Ok(Reload::Replaced)
    }

    /// Serves a store-only zone configured since the start: the store's copy, else a
    /// new starting copy, written first.
    fn serve_new_store_zone(&self, store: &mut Store, origin: &Name) -> Result<(), ZoneFileError> {
        if store.serial(&origin.to_string())?.is_some() {
            let zone = stored::load(store, origin)?;
            self.publisher.publish(zone, Stale::All);
            return Ok(());
        }
        let zone = starter_zone(origin)?;
        let change = Change::Whole {
            new: Box::new(zone),
            file_digest: None,
        };
        let ready = self.commit(store, vec![change])?;
        log_created(ready[0].zone());
        self.publish(ready);
        Ok(())
    }
}

/// What a SIGHUP did to the zones ([`Keeper::reload_files`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Zones now served from a newer file, or newly configured and now served.
    pub replaced: usize,
    /// Zone files that differ from the served zone without a higher serial, each
    /// logged as a warning naming the file.
    pub ignored: usize,
}

/// What a SIGHUP did with one zone file.
enum Reload {
    Replaced,
    Ignored,
    Unchanged,
}

/// A reload found zone files that do not load (each error was logged as
/// `FILE:LINE: message`); every zone was kept as it was.
#[derive(Debug, thiserror::Error)]
#[error("{failed} zone file(s) failed to load; every zone kept as it was")]
pub struct ZoneFilesRejected {
    pub failed: usize,
}

/// Logs why a zone file stops a reload: each error on a line of its own.
fn log_rejected(origin: &Name, e: &ZoneFileError) {
    match e {
        ZoneFileError::Invalid(e) => {
            for d in e.diagnostics.iter().filter(|d| !d.warning) {
                tracing::error!(zone = %origin, "reload rejected: {d}");
            }
        }
        other => tracing::error!(zone = %origin, "reload rejected: {other}"),
    }
}
