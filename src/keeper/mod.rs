//! Keeps the served zones in step with the store (SPEC §6, §7), and publishes every zone
//! change.
//!
//! Owns: which copy of a zone is of record at start-up and on SIGHUP (a configured
//! master file replaces the stored zone when the store lacks it or the file's serial is
//! newer, else the store wins, with a warning naming the file when it holds other
//! records; a store-only zone is created from [`crate::zone::starter`] when the store
//! lacks it and is never touched by a reload), [`file_drift`] (the same verdict,
//! read-only, for `enroute zone check --config`), and every change the admin API
//! makes. A change is committed to the store first (fsynced), then the edited zone is swapped into the
//! [`ZoneSet`] the SIP, DNS and route paths read, its serial grown, NOTIFY sent and the
//! affected cached decisions dropped — so a caller that gets `Ok` can promise all four.
//! Changes are serialised by one mutex around the store's writer connection; callers
//! hold it on a blocking thread, never across an await.
//!
//! The swap, NOTIFY, cache drop and freeing of the old copy are the [`Publisher`]'s, and
//! it is the one path every zone change takes: the keeper's (admin, SIGHUP) and the
//! secondary zones' transfers and withdrawals, which `dns::secondary` hands to it. The
//! publisher needs no store, so the secondary tasks use it without the keeper's lock.
//!
//! Must not touch: HTTP and JSON (that is `admin`), the contents of secondary zones
//! (read-only here: `dns::secondary` keeps them and only hands them to the
//! [`Publisher`]), or routing rules.

use crate::config::{Config, ZoneSource};
use crate::name::Name;
use crate::store::{Store, StoreError};
use crate::zone::master::Diagnostic;
use crate::zone::starter::{Starter, date_serial_now};
use crate::zone::{ContentDigest, Zone, ZoneLoadError, ZoneSet, serial_newer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod stored;

pub use stored::ZoneStoreError;

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0} is not in any local zone")]
    NotInZone(String),
    #[error("zone {0} is a secondary zone, read-only here (its primary is the place to change it)")]
    ReadOnly(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("{0}")]
    Zone(#[from] ZoneLoadError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    StoreZone(#[from] ZoneStoreError),
}

/// The routes of one number (or prefix) as records: NAPTR rdatas in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    pub ttl: u32,
    pub naptrs: Vec<Vec<u8>>,
}

impl Routes {
    /// As the NAPTR RRset the zone and the store take: TTL and rdatas.
    fn set(&self) -> (u32, &[Vec<u8>]) {
        (self.ttl, &self.naptrs)
    }
}

/// One number of a bulk import, with the line it started on (for messages).
#[derive(Debug, Clone)]
pub struct ImportItem {
    pub line: usize,
    /// `+` and digits.
    pub number: String,
    pub routes: Routes,
}

/// The numbers of one import that fall in one zone: (item index, digits below the apex).
type ZoneGroup = (Arc<Zone>, Vec<(usize, Vec<u8>)>);

/// Above this many numbers in one zone, an import rebuilds the zone from the store
/// rather than editing the index name by name.
const REBUILD_ABOVE: usize = 2000;

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
}

/// Loads every configured file and store-only zone the way `serve` starts (secondary
/// zones are `dns::secondary`'s): the store decides unless a zone file is newer (then
/// the file is written to the store); a store-only zone the store lacks is created from
/// its starting copy ([`starter_zone`]) and written. A zone file that differs from the
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
                stored::save(store, zone, Some(digest)).map_err(|e| e.to_string())?;
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
    Ok(zones)
}

/// The zones as `serve` would serve them, without writing anything (CLI commands): the
/// store's copy where it wins, else the file; a store-only zone the store lacks as the
/// copy `serve` would create.
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
fn load_zone_file(config: &Config, i: usize, path: &Path) -> Result<Zone, ZoneFileError> {
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

/// SPEC §6: a zone file replaces the stored copy when its serial is newer (the store
/// lacking the zone is the caller's other case).
fn file_wins(file_zone: &Zone, stored: u32) -> bool {
    serial_newer(file_zone.soa.serial, stored)
}

/// When the store's copy wins (the file's serial is not higher): [`Drift::Same`] when
/// the file is what was last loaded into the store (`loaded`; changes made through the
/// API since are the store's and are kept) or holds what is served (`served`, asked
/// only then), else [`Drift::Ignored`]: someone edited the file without raising its
/// serial.
fn same_or_ignored(
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
fn warn_replaced(file_zone: &Zone) {
    tracing::warn!(
        zone = %file_zone.origin, file_serial = file_zone.soa.serial,
        "the zone file's serial is newer than the store's: the file replaces the stored zone (changes made through the API are gone)"
    );
}

/// A file edited without a higher serial ([`Drift::Ignored`]): say so, naming the file
/// and what to do, as a warning (a reload that changed nothing otherwise reads as
/// success).
fn warn_ignored(path: &Path, file_serial: u32, served: &Zone) {
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

fn log_created(zone: &Zone) {
    tracing::info!(zone = %zone.origin, serial = zone.soa.serial, "store-only zone created: SOA and the placeholder NS localhost.; add numbers through the admin API");
}

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

/// The one writer of zones of record, shared by the admin API and SIGHUP.
pub struct Keeper {
    store: Mutex<Store>,
    publisher: Arc<Publisher>,
    /// Origins of secondary zones: read-only through the API (SPEC §10.9).
    secondaries: Vec<Name>,
}

impl Keeper {
    pub fn new(store: Store, publisher: Arc<Publisher>, config: &Config) -> Keeper {
        Keeper {
            store: Mutex::new(store),
            publisher,
            secondaries: config
                .zones
                .iter()
                .filter(|z| matches!(z.source, ZoneSource::Primary(_)))
                .map(|z| z.origin.clone())
                .collect(),
        }
    }

    pub fn zones(&self) -> &Arc<ZoneSet> {
        self.publisher.zones()
    }

    /// Whether `origin` is a secondary zone.
    pub fn is_secondary(&self, origin: &Name) -> bool {
        self.secondaries.iter().any(|s| s.eq_ignore_case(origin))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The served zone holding `number` (`+digits`) and the digits of its name there
    /// (one label each, closest to the apex first).
    pub fn find(&self, number: &str) -> Option<(Arc<Zone>, Vec<u8>)> {
        let digits = number.strip_prefix('+').unwrap_or(number);
        let zones = self.zones().load();
        zones
            .iter()
            .find_map(|z| z.number_labels(digits).map(|l| (z.clone(), l)))
    }

    /// Like [`Keeper::find`], for a change: secondary zones are read-only, also before
    /// their first transfer (a secondary more specific than the zone that would take the
    /// number wins, as it will once its copy arrives).
    pub fn locate(&self, number: &str) -> Result<(Arc<Zone>, Vec<u8>), EditError> {
        let digits = number.strip_prefix('+').unwrap_or(number);
        let found = self.find(number);
        let taken = found.as_ref().map_or(0, |(z, _)| z.number_prefix().len());
        let secondary = self.secondaries.iter().find(|s| {
            let p = crate::zone::number_prefix(s);
            !p.is_empty() && digits.starts_with(&p) && p.len() >= taken
        });
        match (found, secondary) {
            (_, Some(s)) => Err(EditError::ReadOnly(s.to_string())),
            (Some(found), None) => Ok(found),
            (None, None) => Err(EditError::NotInZone(number.to_string())),
        }
    }

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
            stored::save(store, &file_zone, Some(file_zone.content_digest()))?;
            if stored.is_some() {
                warn_replaced(&file_zone);
            }
            let (serial, records) = (file_zone.soa.serial, file_zone.stats.records);
            self.publisher.publish(file_zone, Stale::All);
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
        let zone = match store.serial(&origin.to_string())? {
            Some(_) => stored::load(store, origin)?,
            None => {
                let zone = starter_zone(origin)?;
                stored::save(store, &zone, None)?;
                log_created(&zone);
                zone
            }
        };
        self.publisher.publish(zone, Stale::All);
        Ok(())
    }

    /// The served copy of the zone with this origin.
    fn served(&self, origin: &Name) -> Option<Arc<Zone>> {
        self.zones()
            .load()
            .iter()
            .find(|z| z.origin.eq_ignore_case(origin))
            .cloned()
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
}

/// What a published change tells the rest of the service, each called after the swap
/// on the publishing thread. `server` sets them up at start — NOTIFY out (`dns::notify`)
/// and the router's decision cache — so that the keeper names neither `dns` nor
/// `resolve`. [`Hooks::default`] does nothing (a publisher with no one to tell).
pub struct Hooks {
    /// The zone `origin` is now served at `serial`, which it did not have before.
    pub serial_changed: Box<dyn Fn(&Name, u32) + Send + Sync>,
    /// Drops every cached decision.
    pub invalidate_all: Box<dyn Fn() + Send + Sync>,
    /// Drops the cached decision for one number (`+digits`).
    pub invalidate: Box<dyn Fn(&str) + Send + Sync>,
}

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
        Publisher { zones, hooks }
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
        (self.hooks.invalidate_all)();
        free(old, origin);
    }

    fn current(&self, origin: &Name) -> Option<Arc<Zone>> {
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

/// Lowers the CPU priority of the calling thread (nice 10). Bulk work (imports, whole
/// zone loads) runs on a thread of its own at this priority, so that on a busy machine
/// SIP and DNS answers keep their latency while it runs; the thread ends with the work,
/// as raising the priority back would need a privilege.
pub fn lower_this_threads_priority() {
    // SAFETY: setpriority on our own thread id has no memory effects; a failure only
    // leaves the priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// The NAPTR RRset at an exact name (not a derived prefix copy): [`Zone::naptr_at`],
/// under the name the admin API imports it by.
pub fn naptr_at<'z>(zone: &'z Zone, labels: &[&[u8]]) -> Option<(u32, Vec<&'z [u8]>)> {
    zone.naptr_at(labels)
}
