//! Keeps the served zones in step with the store (SPEC §6, §7), and publishes every zone
//! change.
//!
//! A zone change the keeper makes always takes one path: the served copy and what
//! changes → one store transaction (fsynced) → the [`Publisher`], which swaps the
//! edited copy into the [`ZoneSet`] the SIP, DNS and route paths read, NOTIFYs and
//! drops the affected cached decisions — so a caller that gets `Ok` can promise all of
//! them. A copy the store already holds and the keeper only starts to serve (a zone
//! configured since the start, on SIGHUP) has nothing to write and goes to the
//! [`Publisher`] directly. Changes are serialised by one mutex around the store's
//! writer connection; callers hold it on a blocking thread, never across an await.
//!
//! Owns, one concern a file:
//! - [`of_record`]: which copy of a zone is of record at start-up (a configured master
//!   file replaces the stored zone when the store lacks it or the file's serial is
//!   newer, else the store wins, with a warning naming the file when it holds other
//!   records; a store-only zone is created from [`crate::zone::starter`] when the store
//!   lacks it and is never touched by a reload).
//! - [`reload`]: the same rule on SIGHUP, all or nothing.
//! - [`drift`]: the same verdict, read-only, for `enroute zone check --config`.
//! - [`change`]: a zone change ([`change::Change`]: the served copy and an edit list,
//!   a staged import's numbers, or a whole new copy) and the one path it takes: [`Keeper::commit`] (one store
//!   transaction) then [`Keeper::publish`].
//! - [`edit`]: every change the admin API makes (numbers, prefix routes, whole
//!   zones replaced, created or deleted) but bulk imports;
//! - [`staged`]: a bulk import held between upload and commit, 16 bytes a number, each
//!   number found in its zone as the parser reads it ([`staged::Stager`]).
//! - [`import`]: bulk imports, merge or replace (SPEC §13).
//! - [`catalog`]: the catalog zone (RFC 9432), kept in the store like a store zone and
//!   rebuilt through the same path whenever the list of zones this instance is primary
//!   for changes ([`Keeper::sync_catalog`]).
//! - [`stored`]: the store↔zone mapping, the one place that knows both, and each
//!   change's journal entry.
//! - [`journal`]: the journal read back for IXFR ([`journal::Journal`]).
//! - [`transfers`]: each zone's last transfer in and out since start, noted by `dns`
//!   and shown by `admin`; the [`Publisher`] holds it and forgets a withdrawn zone's.
//! - [`publish`]: the [`Publisher`], the one path every zone change takes to the
//!   readers: the keeper's (admin, SIGHUP) and the secondary zones' transfers and
//!   withdrawals, which `dns::secondary` hands to it. It needs no store, so the
//!   secondary tasks use it without the keeper's lock; it tells the rest of the service
//!   through [`Hooks`] that `server` sets up.
//! - here: the [`Keeper`] itself, finding the zone a number falls in.
//!
//! Must not touch: HTTP and JSON (that is `admin`), the contents of secondary zones
//! (read-only here: `dns::secondary` keeps them and only hands them to the
//! [`Publisher`]), routing rules, or the modules above it: it names neither `dns` nor
//! `resolve` (NOTIFY and the decision cache are reached through [`Hooks`]).

use crate::config::{Config, ZoneSource};
use crate::name::Name;
use crate::store::{Store, StoreError};
use crate::zone::{Zone, ZoneLoadError, ZoneSet};
use std::sync::{Arc, Mutex};

pub mod catalog;
pub mod change;
pub mod drift;
pub mod edit;
pub mod import;
pub mod journal;
pub mod of_record;
pub mod publish;
pub mod reload;
pub mod staged;
pub mod stored;
pub mod transfers;

pub use drift::{DriftError, FileDrift, file_drift};
pub use of_record::{
    Drift, ZoneFileError, load_zones_of_record, read_zone_text, read_zones_of_record, starter_zone,
};
pub use publish::{Hooks, Publisher, Stale};
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
    /// A parameter of the request (a query parameter, named) is at fault.
    #[error("{field}: {message}")]
    Param {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Zone(#[from] ZoneLoadError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    StoreZone(#[from] ZoneStoreError),
}

/// Why a whole zone could not be created, replaced or deleted.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The zone is not the API's to change: configured in `[[zone]]`, or the catalog.
    #[error("{0}")]
    Conflict(String),
    /// The origin cannot be a zone created through the API.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Edit(#[from] EditError),
}

impl From<StoreError> for ZoneError {
    fn from(e: StoreError) -> Self {
        ZoneError::Edit(e.into())
    }
}

impl From<ZoneLoadError> for ZoneError {
    fn from(e: ZoneLoadError) -> Self {
        ZoneError::Edit(e.into())
    }
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

/// What a bulk import does beyond the numbers it names (SPEC §13).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `false` (merge): the numbers it does not name stay. `true` (replace): they are
    /// deleted: each zone the import touches (and `zone`, when given) holds exactly the
    /// import's numbers afterwards.
    pub replace: bool,
    /// The zone the import is for: every number must fall in it.
    pub zone: Option<Name>,
}

/// What a committed import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Numbers whose routes were set.
    pub numbers: usize,
    /// Routes (NAPTR records) written.
    pub routes: usize,
    /// Numbers deleted: by a delete line, or (replace) by being left out.
    pub deleted: usize,
    /// Lines of delete lines whose number had no routes (nothing to delete; at most
    /// 100 listed, `absent_total` counts them all).
    pub absent: Vec<(usize, String)>,
    pub absent_total: usize,
}

/// The one writer of zones of record, shared by the admin API and SIGHUP.
pub struct Keeper {
    store: Mutex<Store>,
    publisher: Arc<Publisher>,
    /// Origins of secondary zones: read-only through the API (SPEC §10.9). Configured
    /// ones, and the members of followed catalogs as they come and go
    /// ([`Keeper::set_secondary`]). Read without a lock: an import's parser, which
    /// runs in the idle scheduling class, reads it for every zone it meets.
    secondaries: arc_swap::ArcSwap<Vec<Name>>,
    /// Changes kept per zone in the IXFR journal (`dns.journal_max_changes`).
    journal_max: usize,
    /// The catalog zone's origin (`dns.catalog_zone`), when one is served.
    catalog: Option<Name>,
}

impl Keeper {
    pub fn new(store: Store, publisher: Arc<Publisher>, config: &Config) -> Keeper {
        Keeper {
            store: Mutex::new(store),
            publisher,
            secondaries: arc_swap::ArcSwap::from_pointee(
                config
                    .zones
                    .iter()
                    .filter(|z| matches!(z.source, ZoneSource::Primary(_)))
                    .map(|z| z.origin.clone())
                    .chain(config.catalogs.iter().map(|c| c.origin.clone()))
                    .collect(),
            ),
            journal_max: config.dns.journal_max_changes,
            catalog: config.dns.catalog_zone.clone(),
        }
    }

    /// The keeper with the catalog zone `origin` to keep (`None`: no catalog). Call
    /// [`Keeper::sync_catalog`] once the keeper serves, to publish it.
    pub fn with_catalog(mut self, origin: Option<Name>) -> Keeper {
        self.catalog = origin;
        self
    }

    /// Each zone's last transfer in and out since start.
    pub fn transfers(&self) -> &Arc<transfers::TransferLog> {
        self.publisher.transfers()
    }

    pub fn zones(&self) -> &Arc<ZoneSet> {
        self.publisher.zones()
    }

    /// Whether `origin` is a secondary zone.
    pub fn is_secondary(&self, origin: &Name) -> bool {
        self.secondary_list()
            .iter()
            .any(|s| s.eq_ignore_case(origin))
    }

    /// Whether this instance serves `origin` as a zone of its own (a primary zone or its
    /// catalog), not as a secondary.
    pub fn is_local_primary(&self, origin: &Name) -> bool {
        self.served(origin).is_some() && !self.is_secondary(origin)
    }

    /// Marks `origin` as a secondary zone (`on`) or no longer one: a member zone of a
    /// followed catalog that appeared or went away.
    pub fn set_secondary(&self, origin: &Name, on: bool) {
        self.secondaries.rcu(|list| {
            let mut list: Vec<Name> = list
                .iter()
                .filter(|s| !s.eq_ignore_case(origin))
                .cloned()
                .collect();
            if on {
                list.push(origin.clone());
            }
            list
        });
    }

    fn secondary_list(&self) -> arc_swap::Guard<Arc<Vec<Name>>> {
        self.secondaries.load()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The served zone holding `number` (`+digits`) and the digits of its name there
    /// (one label each, closest to the apex first).
    pub fn find(&self, number: &str) -> Option<(Arc<Zone>, Vec<u8>)> {
        let digits = number.strip_prefix('+').unwrap_or(number);
        let zones = self.zones().load();
        // The catalog has no digit labels, so it would "hold" every number.
        zones
            .iter()
            .filter(|z| !self.is_catalog(&z.origin))
            .find_map(|z| z.number_labels(digits).map(|l| (z.clone(), l)))
    }

    /// Like [`Keeper::find`], for a change: secondary zones are read-only, also before
    /// their first transfer (a secondary more specific than the zone that would take the
    /// number wins, as it will once its copy arrives).
    pub fn locate(&self, number: &str) -> Result<(Arc<Zone>, Vec<u8>), EditError> {
        let digits = number.strip_prefix('+').unwrap_or(number);
        let found = self.find(number);
        let taken = found.as_ref().map_or(0, |(z, _)| z.number_prefix().len());
        let list = self.secondary_list();
        let secondary = list.iter().find(|s| {
            let p = crate::zone::number_prefix(s);
            !p.is_empty() && digits.starts_with(&p) && p.len() >= taken
        });
        match (found, secondary) {
            (_, Some(s)) => Err(EditError::ReadOnly(s.to_string())),
            (Some(found), None) => Ok(found),
            (None, None) => Err(EditError::NotInZone(number.to_string())),
        }
    }

    /// Whether no served zone and no secondary has a number prefix that extends
    /// `prefix` (a zone's digits): then every longer number with those digits falls in
    /// the zone that has them (see [`Keeper::locate`]).
    pub fn is_leaf(&self, prefix: &str) -> bool {
        let inside = |p: &str| p.len() > prefix.len() && p.starts_with(prefix);
        let zones = self.zones().load();
        let served = zones
            .iter()
            .filter(|z| !self.is_catalog(&z.origin))
            .any(|z| inside(&z.number_prefix()));
        !served
            && !self
                .secondary_list()
                .iter()
                .any(|s| inside(&crate::zone::number_prefix(s)))
    }

    /// The served copy of the zone with this origin.
    fn served(&self, origin: &Name) -> Option<Arc<Zone>> {
        self.publisher.current(origin)
    }
}

/// A keeper of the zone `origin` (an SOA of serial 7, an NS, then the master-file lines
/// `more`) in a store of its own, for tests: the keeper, the zones it publishes to, and
/// the directory holding the store (`enroute.db`).
#[cfg(test)]
pub(crate) fn keeper_for_tests(
    origin: &str,
    more: &str,
) -> (Keeper, Arc<ZoneSet>, tempfile::TempDir) {
    let origin = Name::from_text(origin).unwrap();
    let text = format!(
        "$TTL 300\n@ IN SOA ns.example.net. hostmaster.example.net. 7 3600 900 604800 300\n@ IN NS ns.example.net.\n{more}"
    );
    let (zone, _) = Zone::from_master(text.as_bytes(), "test", &origin, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
    stored::save(&mut store, &zone, None).unwrap();
    let zones = Arc::new(ZoneSet::new(vec![zone]));
    let publisher = Arc::new(Publisher::new(zones.clone(), Hooks::default()));
    (
        Keeper::new(store, publisher, &Config::builtin()),
        zones,
        dir,
    )
}

/// Puts the calling thread in the idle scheduling class (`SCHED_IDLE`): the lowest
/// weight there is (about 0.3 % of a core when others want it all), and a waking SIP
/// or DNS worker takes its core at once, where a thread at nice 10 may keep it for the
/// rest of its slice (milliseconds). For work that holds no lock another thread waits
/// on: leaving the class needs a privilege, and on a saturated machine the thread may
/// wait long.
pub fn idle_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid parameter
    // has no memory effects; a failure only leaves the policy as it was.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// Lowers the CPU priority of the calling thread (nice 10), and of the threads it
/// starts after. Bulk work (imports, whole zone loads) runs on a thread of its own at
/// this priority, so that on a busy machine SIP and DNS answers keep their latency
/// while it runs; the thread ends with the work, as raising the priority back would
/// need a privilege. `enroute import` lowers itself so too.
pub fn lower_this_threads_priority() {
    // SAFETY: setpriority on our own thread id has no memory effects; a failure only
    // leaves the priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}
