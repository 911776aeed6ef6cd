//! Which copy of a zone is of record when `serve` starts (SPEC §6), and the rule SIGHUP
//! and `zone check` share: a configured master file replaces the stored zone when the
//! store lacks it or the file's serial is newer; else the store's copy wins, with a
//! warning naming the file when it holds other records. A store-only zone the store
//! lacks is created from its starting copy ([`crate::zone::starter`]). Zones created
//! through the admin API are served beside them from the store, though no `[[zone]]`
//! names them; a zone removed from the configuration is not served otherwise.
//!
//! Owns: reading and parsing a configured zone file (errors named by file and line),
//! the file-vs-store verdict ([`Drift`]), the warnings it logs, and the starting copy of a
//! store-only zone. Must not touch: the served [`crate::zone::ZoneSet`] (start-up hands
//! its zones to `serve`; SIGHUP publishes through `reload`), or secondary zones.

use super::stored::{self, ZoneStoreError};
use crate::config::{Config, ZoneSource};
use crate::name::Name;
use crate::store::{Store, StoreError};
use crate::zone::master::Diagnostic;
use crate::zone::starter::{Starter, date_serial_now};
use crate::zone::{ContentDigest, Zone, ZoneLoadError, serial_newer};
use std::path::Path;

/// Where the copy of a zone to serve came from, as [`zone_of_record`] decides it.
enum Choice {
    /// The master file (the store lacks the zone, [`Drift::NotInStore`], or the file
    /// is newer, [`Drift::FileNewer`]): store it.
    File(Box<Zone>, Drift),
    /// A store-only zone the store lacks: its starting copy, to store.
    Starter(Box<Zone>),
    /// The store's copy; beside a zone file, whether the file is what was loaded
    /// ([`Drift::Same`]) or was edited without a higher serial ([`Drift::Ignored`]),
    /// and the file's serial.
    Store(Box<Zone>, Option<(Drift, u32)>),
}

impl Choice {
    fn zone(self) -> Zone {
        match self {
            Choice::File(z, _) | Choice::Starter(z) | Choice::Store(z, _) => *z,
        }
    }
}

/// Why a configured zone gave nothing to serve: the message names the file and line
/// (`CONFIG:LINE: zone[i].file: …` for a file that cannot be read, `ZONEFILE:LINE: …`
/// for each error in one that can), or the store.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    #[error("{0}")]
    Unreadable(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Invalid(#[from] ZoneLoadError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    StoreZone(#[from] ZoneStoreError),
    #[error("the store holds a zone whose origin is not a domain name: {0}")]
    BadOrigin(String),
}

/// Loads every configured file and store-only zone the way `serve` starts (secondary
/// zones are `dns::secondary`'s): the store decides unless a zone file is newer (then
/// the file is written to the store); a store-only zone the store lacks is created from
/// its starting copy ([`starter_zone`]) and written; then the zones created through the
/// admin API that no `[[zone]]` names. A zone file that differs from the
/// stored copy without a higher serial is logged as a warning. Any error is fatal and
/// names the file and line.
pub fn load_zones_of_record(config: &Config, store: &mut Store) -> Result<Vec<Zone>, String> {
    let mut zones = Vec::new();
    for i in 0..config.zones.len() {
        let choice = zone_of_record(config, i, Some(store)).map_err(|e| e.to_string())?;
        let Some(choice) = choice else { continue };
        match &choice {
            Choice::File(zone, drift) => {
                let digest = zone.content_digest();
                // A newer file over a stored copy: journaled, for IXFR after the start.
                let old = match drift {
                    Drift::FileNewer => stored::load(store, &zone.origin).ok(),
                    _ => None,
                };
                let keep = config.dns.journal_max_changes;
                match &old {
                    Some(old) => stored::save_over(store, zone, Some(digest), (old, keep)),
                    None => stored::save(store, zone, Some(digest)),
                }
                .map_err(|e| e.to_string())?;
                if let Drift::FileNewer = drift {
                    warn_replaced(zone);
                }
            }
            Choice::Starter(zone) => {
                stored::save(store, zone, None).map_err(|e| e.to_string())?;
                log_created(zone);
            }
            Choice::Store(zone, Some((Drift::Ignored, file_serial))) => {
                if let ZoneSource::File(path) = &config.zones[i].source {
                    warn_ignored(path, *file_serial, zone);
                }
            }
            Choice::Store(..) => {}
        }
        zones.push(choice.zone());
    }
    zones.extend(api_created_zones(config, store).map_err(|e| e.to_string())?);
    Ok(zones)
}

/// The zones created through the admin API that the configuration does not name (a
/// configured zone of the same origin is served as configured), from the store. They
/// are served though no `[[zone]]` names them, until deleted through the API.
fn api_created_zones(config: &Config, store: &Store) -> Result<Vec<Zone>, ZoneFileError> {
    let mut zones = Vec::new();
    for origin in store.api_created_zones()? {
        let name = Name::from_text(&origin)
            .map_err(|e| ZoneFileError::BadOrigin(format!("{origin:?}: {e}")))?;
        if config.zones.iter().any(|z| z.origin.eq_ignore_case(&name)) {
            continue;
        }
        let zone = stored::load(store, &name)?;
        tracing::info!(zone = %origin, serial = zone.soa.serial, "zone created through the admin API: served from the store");
        zones.push(zone);
    }
    Ok(zones)
}

/// The zones as `serve` would serve them, without writing anything (CLI commands): the
/// store's copy where it wins, else the file; a store-only zone the store lacks as the
/// copy `serve` would create; the zones created through the admin API.
pub fn read_zones_of_record(config: &Config) -> Result<Vec<Zone>, String> {
    let store = Store::open_reader(&config.store).map_err(|e| e.to_string())?;
    let mut zones = Vec::new();
    for i in 0..config.zones.len() {
        if let Some(choice) =
            zone_of_record(config, i, store.as_ref()).map_err(|e| e.to_string())?
        {
            zones.push(choice.zone());
        }
    }
    if let Some(store) = &store {
        zones.extend(api_created_zones(config, store).map_err(|e| e.to_string())?);
    }
    Ok(zones)
}

/// The copy of `config.zones[i]` to serve, from `store` (`None`: no store yet) and its
/// file; `None` for a secondary zone. Logs the file's warnings.
fn zone_of_record(
    config: &Config,
    i: usize,
    store: Option<&Store>,
) -> Result<Option<Choice>, ZoneFileError> {
    let z = &config.zones[i];
    let origin = z.origin.to_string();
    let stored = match store {
        Some(s) => s.serial(&origin)?.map(|serial| (s, serial)),
        None => None,
    };
    match &z.source {
        ZoneSource::Primary(_) => Ok(None),
        ZoneSource::Store => Ok(Some(match stored {
            Some((s, _)) => Choice::Store(Box::new(stored::load(s, &z.origin)?), None),
            None => Choice::Starter(Box::new(starter_zone(&z.origin)?)),
        })),
        ZoneSource::File(path) => {
            let file_zone = load_zone_file(config, i, path)?;
            let Some((s, serial)) = stored else {
                return Ok(Some(Choice::File(Box::new(file_zone), Drift::NotInStore)));
            };
            if file_wins(&file_zone, serial) {
                return Ok(Some(Choice::File(Box::new(file_zone), Drift::FileNewer)));
            }
            let zone = stored::load(s, &z.origin)?;
            let loaded = stored::file_digest(s, &origin)?;
            let drift = same_or_ignored(&file_zone, loaded, || zone.content_digest());
            let file_serial = file_zone.soa.serial;
            Ok(Some(Choice::Store(
                Box::new(zone),
                Some((drift, file_serial)),
            )))
        }
    }
}

/// Reads and parses the master file of `config.zones[i]`, logging its warnings. A file
/// that cannot be read is named with the config's file, line and key
/// (`e.toml:14: zone[0].file: cannot read "…": …`); a file that does not load, with its
/// own `ZONEFILE:LINE: message` errors.
pub(super) fn load_zone_file(
    config: &Config,
    i: usize,
    path: &Path,
) -> Result<Zone, ZoneFileError> {
    let text = read_zone_text(config, i, path)?;
    let display = path.display().to_string();
    let origin = &config.zones[i].origin;
    let (zone, warnings) = Zone::from_master(&text, &display, origin, path.parent())?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(zone)
}

/// The bytes of `config.zones[i]`'s file; a failure named by the config's file, line
/// and key (`e.toml:14: zone[0].file: cannot read "…": …`).
pub fn read_zone_text(
    config: &Config,
    i: usize,
    path: &Path,
) -> Result<Vec<u8>, crate::config::ConfigError> {
    std::fs::read(path).map_err(|e| {
        config.value_error(
            &format!("zone[{i}].file"),
            format!("cannot read \"{}\": {e}", path.display()),
        )
    })
}

/// The verdict on one zone file, by SPEC §6's rule (the store's copy is served unless
/// the store lacks the zone or the file's serial is newer).
#[derive(Debug)]
pub enum Drift {
    /// The file is what was last loaded into the store (changes made through the API
    /// since then are the store's, and kept), or holds the records being served
    /// (serials aside): nothing to do.
    Same,
    /// The file's serial is newer than the stored one: the file replaces the stored
    /// zone on the next start or SIGHUP (changes made through the API are then gone).
    FileNewer,
    /// The file was edited since it was loaded (it holds other records than both that
    /// copy and the zone being served), but its serial is not newer: start and SIGHUP
    /// ignore it (with a warning). To load it, raise its serial
    /// above `served_serial`; or make the change through the admin API.
    Ignored,
    /// The store does not hold the zone yet: the next start or SIGHUP loads the file.
    NotInStore,
    /// The file cannot be read: `CONFIG:LINE: zone[i].file: cannot read "…": …`.
    Unreadable(crate::config::ConfigError),
    /// The file does not load: its diagnostics (`ZONEFILE:LINE: message`, errors and
    /// warnings).
    Invalid(Vec<Diagnostic>),
}

impl Drift {
    /// Whether the verdict needs the operator: a file ignored, unreadable or invalid
    /// (`zone check --config` exits 1 for these).
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            Drift::Ignored | Drift::Unreadable(_) | Drift::Invalid(_)
        )
    }
}

/// SPEC §6: a zone file replaces the stored copy when its serial is newer (the store
/// lacking the zone is the caller's other case).
pub(super) fn file_wins(file_zone: &Zone, stored: u32) -> bool {
    serial_newer(file_zone.soa.serial, stored)
}

/// When the store's copy wins (the file's serial is not higher): [`Drift::Same`] when
/// the file is what was last loaded into the store (`loaded`; changes made through the
/// API since are the store's and are kept) or holds what is served (`served`, asked
/// only then), else [`Drift::Ignored`]: someone edited the file without raising its
/// serial.
pub(super) fn same_or_ignored(
    file_zone: &Zone,
    loaded: Option<ContentDigest>,
    served: impl FnOnce() -> ContentDigest,
) -> Drift {
    let file = file_zone.content_digest();
    if loaded == Some(file) || served() == file {
        Drift::Same
    } else {
        Drift::Ignored
    }
}

/// A zone file with a newer serial replaced the stored zone: a warning, since changes
/// made through the API are then gone (SPEC §10.9).
pub(super) fn warn_replaced(file_zone: &Zone) {
    tracing::warn!(
        zone = %file_zone.origin, file_serial = file_zone.soa.serial,
        "the zone file's serial is newer than the store's: the file replaces the stored zone (changes made through the API are gone)"
    );
}

/// A file edited without a higher serial ([`Drift::Ignored`]): say so, naming the file
/// and what to do, as a warning (a reload that changed nothing otherwise reads as
/// success).
pub(super) fn warn_ignored(path: &Path, file_serial: u32, served: &Zone) {
    let served_serial = served.soa.serial;
    tracing::warn!(
        zone = %served.origin, file_serial, served_serial,
        "{}: differs from the zone being served, but its SOA serial {file_serial} is not higher than {served_serial}: the file is ignored and the store's copy served. To load the file, raise its serial above {served_serial} and send SIGHUP; or make the change through the admin API",
        path.display()
    );
}

/// The starting copy of a store-only zone (`[[zone]]` with neither `file` nor
/// `primary`): SOA with the starter's timers and today's date as serial, and NS
/// `localhost.` standing in for name servers (see [`crate::zone::starter`]).
pub fn starter_zone(origin: &Name) -> Result<Zone, ZoneLoadError> {
    let text = Starter {
        origin: origin.clone(),
        name_servers: Vec::new(),
        serial: date_serial_now(),
    }
    .to_master();
    let display = format!("store-only zone {origin}");
    Zone::from_master(text.as_bytes(), &display, origin, None).map(|(zone, _)| zone)
}

pub(super) fn log_created(zone: &Zone) {
    tracing::info!(zone = %zone.origin, serial = zone.soa.serial, "store-only zone created: SOA and the placeholder NS localhost.; add numbers through the admin API");
}
