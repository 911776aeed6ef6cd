//! `enroute zone check --config`: how each configured zone file stands against the
//! zone being served, by the rule of [`super::of_record`], read-only.
//!
//! Owns: [`FileDrift`] (a file's serials and its [`Drift`] verdict). Must not touch: the
//! store's contents (a reader connection only; nothing is written, not even a missing store), the served
//! zones, or the log (a file's warnings go into the verdict).

use super::of_record::{Drift, file_wins, read_zone_text, same_or_ignored};
use super::stored::{self, ZoneStoreError};
use crate::config::{Config, ZoneSource};
use crate::name::Name;
use crate::store::{Store, StoreError};
use crate::zone::Zone;
use std::path::{Path, PathBuf};

/// How a configured zone file stands against the zone being served, as
/// `enroute zone check --config` reports it ([`file_drift`]).
#[derive(Debug)]
pub struct FileDrift {
    /// The zone's origin.
    pub origin: Name,
    /// The zone file, as configured (relative paths resolved against the config's
    /// directory).
    pub file: PathBuf,
    /// The file's SOA serial; `None` when the file cannot be read or does not load.
    pub file_serial: Option<u32>,
    /// The serial of the stored copy, which `serve` serves unless the file wins;
    /// `None` when the store does not hold the zone (or there is no store yet).
    pub served_serial: Option<u32>,
    pub verdict: Drift,
}

/// Why [`file_drift`] could not compare: the store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    StoreZone(#[from] ZoneStoreError),
}

/// For each file zone of `config` (in configuration order; secondary and store-only
/// zones have no file and are left out): whether the file holds what `serve` serves,
/// or will replace it, or is being ignored. For `enroute zone check --config F`.
///
/// Read-only: opens the store with a reader connection (SQLite WAL lets it run beside
/// a server using the same store) and writes nothing, not even when the store does
/// not exist yet (every file is then [`Drift::NotInStore`]). A file that cannot be read
/// or does not load is a verdict, not an error: the other zones are still compared.
/// Logs nothing (the file's warnings are in [`Drift::Invalid`] only when it fails).
pub fn file_drift(config: &Config) -> Result<Vec<FileDrift>, DriftError> {
    let store = Store::open_reader(&config.store)?;
    let mut out = Vec::new();
    for (i, z) in config.zones.iter().enumerate() {
        let ZoneSource::File(path) = &z.source else {
            continue;
        };
        let served_serial = match &store {
            Some(s) => s.serial(&z.origin.to_string())?,
            None => None,
        };
        let mut drift = FileDrift {
            origin: z.origin.clone(),
            file: path.clone(),
            file_serial: None,
            served_serial,
            verdict: Drift::NotInStore,
        };
        let file_zone = match read_quietly(config, i, path) {
            Ok(zone) => zone,
            Err(verdict) => {
                drift.verdict = verdict;
                out.push(drift);
                continue;
            }
        };
        drift.file_serial = Some(file_zone.soa.serial);
        drift.verdict = match (&store, served_serial) {
            (Some(s), Some(stored)) if !file_wins(&file_zone, stored) => {
                let origin = z.origin.to_string();
                match stored::file_digest(s, &origin)? {
                    Some(d) if d == file_zone.content_digest() => Drift::Same,
                    loaded => {
                        let served = stored::load(s, &z.origin)?.content_digest();
                        same_or_ignored(&file_zone, loaded, || served)
                    }
                }
            }
            (_, Some(_)) => Drift::FileNewer,
            (_, None) => Drift::NotInStore,
        };
        out.push(drift);
    }
    Ok(out)
}

/// [`load_zone_file`] without logging; a failure as its [`Drift`] verdict.
fn read_quietly(config: &Config, i: usize, path: &Path) -> Result<Zone, Drift> {
    let text = read_zone_text(config, i, path).map_err(Drift::Unreadable)?;
    let display = path.display().to_string();
    Zone::from_master(&text, &display, &config.zones[i].origin, path.parent())
        .map(|(zone, _)| zone)
        .map_err(|e| Drift::Invalid(e.diagnostics))
}
