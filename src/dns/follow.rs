//! The set of secondary zones this instance keeps: the configured ones (`[[zone]]` with
//! `primary`), each followed catalog (`[[catalog]]`, RFC 9432) and the member zones it
//! lists, which appear and disappear as the catalog changes, without a restart.
//!
//! Owns: one task per secondary zone (`dns::secondary::keep`), starting and stopping
//! member zones when a catalog's copy changes (a member gone is withdrawn and its copy
//! on disk removed), routing an accepted NOTIFY to its zone's task, and telling the
//! others which zones are secondaries: the DNS listener (NOTIFY accepted from the
//! zone's primary only, signed with its key) and the keeper (read-only through the API).
//!
//! Must not touch: transfers and copies (`dns::secondary`), reading a catalog's
//! members (`zone::catalog`), or answers.

use super::answer::SecondaryOf;
use super::secondary::{self, Outlet, Role, SecondaryZone, Task};
use super::xfr::XfrStats;
use crate::keeper::{Keeper, Publisher};
use crate::name::Name;
use crate::zone::Zone;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, watch};

/// Who must know which zones are secondaries.
pub struct Registry {
    /// The DNS listener's list: NOTIFY is taken for these zones, from their primary.
    pub notify_from: Arc<RwLock<Vec<SecondaryOf>>>,
    /// The keeper: secondary zones are read-only through the API.
    pub keeper: Arc<Keeper>,
    /// Where member zones' copies are kept.
    pub dir: PathBuf,
}

/// The configured secondary zones and catalogs, with the member zones their kept
/// copies list (so that members start from their kept copies too). A member that is
/// also configured, or listed by two catalogs, is followed once (the first); one whose
/// origin is in `local` (zones this instance is primary for) is not followed.
pub fn with_members(
    configured: Vec<SecondaryZone>,
    dir: &std::path::Path,
    local: &[Name],
) -> Vec<SecondaryZone> {
    let mut all = configured;
    let catalogs: Vec<SecondaryZone> = all
        .iter()
        .filter(|z| z.role == Role::Catalog)
        .cloned()
        .collect();
    for c in catalogs {
        let Some((copy, _)) = secondary::load_copy(&c) else {
            continue;
        };
        for m in c.members(&copy, dir).into_iter().flatten() {
            let taken = |o: &Name| o.eq_ignore_case(&m.origin);
            if !all.iter().any(|z| taken(&z.origin)) && !local.iter().any(taken) {
                all.push(m);
            }
        }
    }
    all
}

/// One followed zone's task.
struct Entry {
    zone: SecondaryZone,
    /// What its task publishes through (closed when the zone is dropped).
    outlet: Outlet,
    kick: mpsc::UnboundedSender<()>,
    task: tokio::task::AbortHandle,
}

/// Runs every secondary zone until shutdown; `refresh` carries the zones an accepted
/// NOTIFY names.
pub async fn run(
    zones: Vec<SecondaryZone>,
    (publisher, stats): (Arc<Publisher>, Arc<XfrStats>),
    registry: Registry,
    mut refresh: mpsc::UnboundedReceiver<Name>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (copies_tx, mut copies) = mpsc::unbounded_channel();
    let mut set = Set {
        entries: HashMap::new(),
        tasks: tokio::task::JoinSet::new(),
        publisher,
        stats,
        registry,
        copies_tx,
        shutdown: shutdown.clone(),
    };
    for z in zones {
        set.start(z);
    }
    loop {
        tokio::select! {
            Some(name) = refresh.recv() => set.kick(&name),
            Some((catalog, copy)) = copies.recv() => set.follow(&catalog, &copy).await,
            Some(_) = set.tasks.join_next(), if !set.tasks.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    while set.tasks.join_next().await.is_some() {}
}

/// The zones followed now.
struct Set {
    /// By origin in lower case.
    entries: HashMap<String, Entry>,
    tasks: tokio::task::JoinSet<()>,
    publisher: Arc<Publisher>,
    stats: Arc<XfrStats>,
    registry: Registry,
    copies_tx: mpsc::UnboundedSender<(Name, Arc<Zone>)>,
    shutdown: watch::Receiver<bool>,
}

fn key(origin: &Name) -> String {
    origin.to_string().to_ascii_lowercase()
}

impl Set {
    fn start(&mut self, z: SecondaryZone) {
        let (kick, rx) = mpsc::unbounded_channel();
        let outlet = Outlet::new(self.publisher.clone());
        let task = Task {
            z: z.clone(),
            publisher: outlet.clone(),
            stats: self.stats.clone(),
            catalog_copies: (z.role == Role::Catalog).then(|| self.copies_tx.clone()),
        };
        let task = self
            .tasks
            .spawn(secondary::keep(task, rx, self.shutdown.clone()));
        self.register(&z, true);
        self.entries.insert(
            key(&z.origin),
            Entry {
                zone: z,
                outlet,
                kick,
                task,
            },
        );
    }

    fn kick(&self, origin: &Name) {
        if let Some(e) = self.entries.get(&key(origin)) {
            let _ = e.kick.send(());
        }
    }

    /// Starts the members `copy` of `catalog` lists that are not followed yet, and stops
    /// those it no longer lists.
    async fn follow(&mut self, catalog: &Name, copy: &Zone) {
        let Some(template) = self.entries.get(&key(catalog)).map(|e| e.zone.clone()) else {
            return;
        };
        let Some(wanted) = template.members(copy, &self.registry.dir) else {
            // Logged by `members`; the members stay as they were.
            return;
        };
        let listed: Vec<Name> = wanted.iter().map(|m| m.origin.clone()).collect();
        for m in wanted {
            if self.registry.keeper.is_local_primary(&m.origin) {
                tracing::warn!(zone = %m.origin, %catalog, "catalog lists a zone this server is primary for; left as it is");
                continue;
            }
            match self.entries.get(&key(&m.origin)) {
                None => {
                    tracing::info!(zone = %m.origin, %catalog, "catalog: member zone added; transferring it");
                    self.start(m);
                }
                Some(e) if e.zone.role != Role::Member(catalog.clone()) => {
                    tracing::warn!(zone = %m.origin, %catalog, "catalog lists a zone already kept otherwise; left as it is");
                }
                Some(_) => {}
            }
        }
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.zone.role == Role::Member(catalog.clone()))
            .filter(|(_, e)| !listed.iter().any(|o| o.eq_ignore_case(&e.zone.origin)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some(e) = self.entries.remove(&k) {
                self.stop(e).await;
            }
        }
    }

    /// Stops following a member zone: its task ends, it is no longer served (nor
    /// published again by a transfer the task had in flight), and its copy on disk is
    /// removed.
    async fn stop(&mut self, e: Entry) {
        e.task.abort();
        self.register(&e.zone, false);
        let (outlet, z) = (e.outlet, e.zone);
        let origin = z.origin.clone();
        let done = tokio::task::spawn_blocking(move || {
            outlet.close(&z.origin);
            for f in [&z.file, &z.log] {
                let _ = std::fs::remove_file(f);
            }
        })
        .await;
        match done {
            Ok(()) => {
                tracing::info!(zone = %origin, "catalog: member zone removed; no longer served")
            }
            Err(e) => tracing::error!(zone = %origin, "catalog: removing the member failed: {e}"),
        }
    }

    /// Tells the listener and the keeper that `z` is (`on`) or no longer is a secondary.
    fn register(&self, z: &SecondaryZone, on: bool) {
        self.registry.keeper.set_secondary(&z.origin, on);
        let mut list = self
            .registry
            .notify_from
            .write()
            .unwrap_or_else(|e| e.into_inner());
        list.retain(|s| !s.origin.eq_ignore_case(&z.origin));
        if on {
            list.push(SecondaryOf {
                origin: z.origin.clone(),
                primary: z.primary,
                key: z.key.as_ref().map(|k| k.name.clone()),
            });
        }
    }
}
