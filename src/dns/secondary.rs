//! Secondary zones (`[[zone]] primary = "IP:PORT"`): kept from a primary by IXFR, or
//! AXFR when there is no copy yet or the changes do not apply.
//!
//! Owns: one task per secondary zone that transfers at start, on an accepted NOTIFY
//! and every SOA refresh (retry interval after a failure); applies IXFR changes in
//! place on the served copy (cost proportional to the change) and falls back to AXFR
//! when the primary answers in AXFR form, the stream is broken or the changes do not
//! apply cleanly; serves the last good copy while the primary is unreachable until SOA
//! expire, then withdraws the zone; and keeps that copy on disk so it survives a
//! restart: `<store dir>/secondary/<origin>zone` (the last whole copy, written
//! atomically, its modification time = the last successful check) and beside it
//! `<origin>zone.ixfr`, the changes applied since, appended and fsynced one by one and
//! replayed at start. The whole copy is rewritten only when that log outgrows it.
//!
//! Which secondary zones exist (configured ones, catalog members as they come and go)
//! is `dns::follow`'s; this file keeps one.
//!
//! Must not touch: answering queries (see `dns::answer`), routing, or the served
//! [`ZoneSet`] directly: a transferred copy and a withdrawal go through the keeper's
//! [`Publisher`], the one path every zone change takes (swap, so that SIP and DNS read it
//! at once; NOTIFY; stale cached decisions dropped; the old copy freed off the readers'
//! threads).

use super::fetch::{self, Fetched, XfrError};
use super::xfr::{XfrKind, XfrStats};
use crate::config::TsigKey;
use crate::keeper::transfers::Direction;
use crate::keeper::{Publisher, Stale};
use crate::name::Name;
use crate::zone::Zone;
use crate::zone::diff::Diff;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// Wait before the first retry when nothing is known of the zone yet.
const NO_ZONE_RETRY: Duration = Duration::from_secs(10);
/// Longest a transfer may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(300);

/// One secondary zone's settings.
#[derive(Clone, Debug)]
pub struct SecondaryZone {
    pub origin: Name,
    pub primary: SocketAddr,
    /// Where the copy is kept.
    pub file: PathBuf,
    /// The changes applied since `file` was written.
    pub log: PathBuf,
    /// `[[zone]] key`: requests to the primary are signed with it, and only answers
    /// signed with it are taken.
    pub key: Option<TsigKey>,
    /// What the zone is to this instance.
    pub role: Role,
}

/// What a secondary zone is to this instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A `[[zone]]` with `primary`.
    Zone,
    /// A `[[catalog]]`: its members are followed as secondary zones.
    Catalog,
    /// A member of the catalog with this origin, followed while the catalog lists it.
    Member(Name),
}

impl SecondaryZone {
    /// Where its transfers come from, and the key they are signed with.
    fn source(&self) -> fetch::Source<'_> {
        fetch::Source {
            primary: self.primary,
            key: self.key.as_ref(),
        }
    }

    pub fn new(origin: Name, primary: SocketAddr, dir: &Path, key: Option<TsigKey>) -> Self {
        let file = dir.join(format!("{}zone", origin.to_string().to_ascii_lowercase()));
        let log = file.with_extension("zone.ixfr");
        SecondaryZone {
            origin,
            primary,
            file,
            log,
            key,
            role: Role::Zone,
        }
    }

    /// The same zone in `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The member zones of this catalog as its kept or served copy lists them (RFC
    /// 9432), each a secondary of the catalog's primary with the catalog's key. `None`
    /// for a zone that is not a catalog, or a copy that is not a valid catalog.
    pub fn members(&self, catalog: &Zone, dir: &Path) -> Option<Vec<SecondaryZone>> {
        if self.role != Role::Catalog {
            return None;
        }
        let members = match crate::zone::catalog::members(catalog) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(zone = %self.origin, "catalog not usable, members kept as they were: {e}");
                return None;
            }
        };
        let members = members
            .into_iter()
            .map(|(_, origin)| {
                SecondaryZone::new(origin, self.primary, dir, self.key.clone())
                    .with_role(Role::Member(self.origin.clone()))
            })
            .collect();
        Some(members)
    }
}

/// Loads the copy kept on disk when it has not expired; returns it with the time of the
/// last successful check.
pub fn load_copy(z: &SecondaryZone) -> Option<(Zone, SystemTime)> {
    let checked = std::fs::metadata(&z.file).and_then(|m| m.modified()).ok()?;
    let zone = match Zone::load_file(&z.file, &z.origin) {
        Ok((zone, _)) => replay(z, zone),
        Err(e) => {
            tracing::warn!(zone = %z.origin, file = %z.file.display(), "kept copy unusable: {e}");
            return None;
        }
    };
    let age = SystemTime::now()
        .duration_since(checked)
        .unwrap_or_default();
    if age > Duration::from_secs(u64::from(zone.soa.expire)) {
        tracing::warn!(zone = %z.origin, "kept copy is past its SOA expire; not served until a transfer succeeds");
        return None;
    }
    Some((zone, checked))
}

/// The publisher as one secondary zone uses it. Once the zone is dropped for good (a
/// catalog member gone), nothing its task still had in flight is published: the
/// check and the publication happen under one lock, which [`Outlet::close`] takes too.
#[derive(Clone)]
pub struct Outlet {
    publisher: Arc<Publisher>,
    alive: Arc<std::sync::Mutex<bool>>,
}

impl Outlet {
    pub fn new(publisher: Arc<Publisher>) -> Self {
        Outlet {
            publisher,
            alive: Arc::new(std::sync::Mutex::new(true)),
        }
    }

    fn alive(&self) -> std::sync::MutexGuard<'_, bool> {
        self.alive.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Publisher::publish`], unless the zone was closed. Blocks like it.
    fn publish(&self, zone: Zone, stale: Stale<'_>) {
        if *self.alive() {
            self.publisher.publish(zone, stale);
        }
    }

    /// [`Publisher::withdraw`] (SOA expire), unless the zone was closed. Blocks like it.
    fn withdraw(&self, origin: &Name) {
        if *self.alive() {
            self.publisher.withdraw(origin);
        }
    }

    /// Runs `write` (a write of the zone's copy on disk) unless the zone was closed, under
    /// the same lock, so that a closed zone's files, once removed, stay removed.
    fn while_alive<T>(&self, write: impl FnOnce() -> T) -> Option<T> {
        let alive = self.alive();
        alive.then(write)
    }

    /// Withdraws the zone for good: nothing is published for it afterwards. Blocks
    /// like [`Publisher::withdraw`].
    pub fn close(&self, origin: &Name) {
        let mut alive = self.alive();
        *alive = false;
        self.publisher.withdraw(origin);
    }

    fn zones(&self) -> &Arc<crate::zone::ZoneSet> {
        self.publisher.zones()
    }

    /// [`Publisher::current`].
    fn current(&self, origin: &Name) -> Option<Arc<Zone>> {
        self.publisher.current(origin)
    }
}

/// One secondary zone's task: its settings, where its copies go, what it counts.
pub struct Task {
    pub z: SecondaryZone,
    pub publisher: Outlet,
    pub stats: Arc<XfrStats>,
    /// For a catalog: where its copy goes after each successful refresh, for its
    /// members to be followed (`dns::follow`).
    pub catalog_copies: Option<mpsc::UnboundedSender<(Name, Arc<Zone>)>>,
}

impl Task {
    /// A transfer in ended (`ok`: served): counted, and noted as the zone's last.
    fn received(&self, kind: XfrKind, ok: bool, serial: u32) {
        self.stats.received(kind, ok);
        let z = &self.z;
        self.stats
            .logged(&z.origin, Direction::In, kind, ok, serial, z.primary);
    }
}

/// Keeps one secondary zone until shutdown; `kick` asks for a refresh now (an accepted
/// NOTIFY).
pub async fn keep(
    t: Task,
    mut kick: mpsc::UnboundedReceiver<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    let z = &t.z;
    let zones = t.publisher.zones().clone();
    // The copy from disk, when one was loaded at start, is already served.
    let mut last_ok = std::fs::metadata(&z.file)
        .and_then(|m| m.modified())
        .ok()
        .filter(|_| zones.soa(&z.origin).is_some());
    loop {
        let wait = match check(&t).await {
            Ok(()) => {
                last_ok = Some(SystemTime::now());
                let (outlet, file) = (t.publisher.clone(), z.file.clone());
                let _ =
                    tokio::task::spawn_blocking(move || outlet.while_alive(|| touch(&file))).await;
                if let (Some(tx), Some(copy)) = (&t.catalog_copies, t.publisher.current(&z.origin))
                {
                    let _ = tx.send((z.origin.clone(), copy));
                }
                zones
                    .soa(&z.origin)
                    .map_or(NO_ZONE_RETRY, |soa| secs(soa.refresh))
            }
            Err(e) => {
                tracing::warn!(zone = %z.origin, primary = %z.primary, "refresh failed: {e}");
                if let (Some(soa), Some(ok)) = (zones.soa(&z.origin), last_ok) {
                    let age = SystemTime::now().duration_since(ok).unwrap_or_default();
                    if age > secs(soa.expire) {
                        tracing::error!(zone = %z.origin, "SOA expire passed without reaching the primary: zone withdrawn");
                        let (p, origin) = (t.publisher.clone(), z.origin.clone());
                        if let Err(e) =
                            tokio::task::spawn_blocking(move || p.withdraw(&origin)).await
                        {
                            tracing::error!(zone = %z.origin, "withdrawal failed: {e}");
                        }
                        last_ok = None;
                    }
                }
                zones
                    .soa(&z.origin)
                    .map_or(NO_ZONE_RETRY, |soa| secs(soa.retry))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(()) = kick.recv() => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s.max(1)))
}

/// One refresh: SOA serial from the primary; when newer (or nothing served yet), IXFR
/// from the served copy, else — or when that fails — AXFR.
async fn check(t: &Task) -> Result<(), XfrError> {
    let z = &t.z;
    let served = t.publisher.current(&z.origin);
    let serial = fetch::query_serial(z.primary, &z.origin, z.key.as_ref()).await?;
    if let Some(have) = &served
        && !crate::zone::serial_newer(serial, have.soa.serial)
    {
        return Ok(());
    }
    if let Some(have) = served {
        match incremental(t, have).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                t.received(XfrKind::Ixfr, false, serial);
                tracing::warn!(zone = %z.origin, primary = %z.primary, "IXFR in failed ({e}); transferring the whole zone");
            }
        }
    }
    let started = std::time::Instant::now();
    let zone = match fetch::fetch(z.source(), &z.origin, None, TRANSFER_LIMIT).await {
        Ok(Fetched::Whole(zone)) => zone,
        Ok(_) => Err(XfrError::Bad("an AXFR answered with changes".into()))?,
        Err(e) => {
            t.received(XfrKind::Axfr, false, serial);
            return Err(e);
        }
    };
    serve_whole(t, zone, started).await
}

/// IXFR from the served copy `have`: the changes applied in place and kept, or the
/// whole zone when the primary answers in AXFR form.
async fn incremental(t: &Task, have: Arc<Zone>) -> Result<(), XfrError> {
    let z = &t.z;
    let started = std::time::Instant::now();
    let fetched = fetch::fetch(z.source(), &z.origin, Some(&have), TRANSFER_LIMIT).await?;
    let diff = match fetched {
        Fetched::UpToDate => return Ok(()),
        Fetched::Whole(zone) => return serve_whole(t, zone, started).await,
        Fetched::Changes(diff) => diff,
    };
    let (p, log) = (t.publisher.clone(), z.log.clone());
    let (serial, changes) = (diff.to_serial(), diff.len());
    let kept = tokio::task::spawn_blocking(move || -> Result<Option<Zone>, XfrError> {
        let new = have
            .apply(&diff)
            .map_err(|e| XfrError::Zone(format!("the changes do not apply: {e}")))?;
        drop(have);
        if let Some(Err(e)) = p.while_alive(|| append_change(&log, &diff)) {
            tracing::warn!(file = %log.display(), "change not kept on disk: {e}");
        }
        let numbers = changed_numbers(&new, &diff);
        let refs: Option<Vec<&str>> = numbers
            .as_ref()
            .map(|n| n.iter().map(String::as_str).collect());
        let stale = match &refs {
            Some(n) => Stale::Numbers(n),
            None => Stale::All,
        };
        let compact = log_outgrew_copy(&log);
        let copy = compact.then(|| new.clone());
        p.publish(new, stale);
        Ok(copy)
    })
    .await
    .map_err(|e| XfrError::Io(std::io::Error::other(format!("applying: {e}"))))??;
    t.received(XfrKind::Ixfr, true, serial);
    tracing::info!(zone = %z.origin, primary = %z.primary, serial, changes, ms = started.elapsed().as_millis() as u64, "IXFR in: serving the new copy");
    if let Some(copy) = kept {
        keep_whole(t, copy).await;
    }
    Ok(())
}

/// Serves a whole transferred copy and keeps it on disk.
async fn serve_whole(t: &Task, zone: Zone, started: std::time::Instant) -> Result<(), XfrError> {
    let z = &t.z;
    let (serial, records) = (zone.soa.serial, zone.stats.records);
    keep_whole(t, zone.clone()).await;
    // Anything in the zone may have changed: every cached decision is dropped. The
    // publisher may wait for readers to let go of the old copy, so not on this thread.
    let p = t.publisher.clone();
    tokio::task::spawn_blocking(move || p.publish(zone, Stale::All))
        .await
        .map_err(|e| XfrError::Io(std::io::Error::other(format!("publishing: {e}"))))?;
    t.received(XfrKind::Axfr, true, serial);
    tracing::info!(zone = %z.origin, primary = %z.primary, serial, records, ms = started.elapsed().as_millis() as u64, "AXFR in: serving the new copy");
    Ok(())
}

/// Writes `zone` as the kept whole copy and empties the change log (in that order: a
/// change log left beside a newer copy is skipped at start, see [`replay`]).
async fn keep_whole(t: &Task, zone: Zone) {
    let z = &t.z;
    let (file, log, outlet) = (z.file.clone(), z.log.clone(), t.publisher.clone());
    let saved = tokio::task::spawn_blocking(move || {
        let text = zone.to_master();
        drop(zone);
        let write = || {
            save(&file, text.as_bytes())?;
            match std::fs::remove_file(&log) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        };
        outlet.while_alive(write).unwrap_or(Ok(()))
    })
    .await;
    if let Ok(Err(e)) | Err(e) = saved.map_err(std::io::Error::other) {
        tracing::warn!(zone = %z.origin, file = %z.file.display(), "copy not kept on disk: {e}");
    }
}

/// The numbers (`+digits`) whose records a change touched, when it touched numbers
/// only; `None` when it touched anything else (a wildcard, the apex): every cached
/// decision is then stale.
fn changed_numbers(zone: &Zone, diff: &Diff) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(diff.len());
    for r in diff.removed.iter().chain(&diff.added) {
        out.push(zone.number_of(&r.labels())?);
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// Appends one applied change to the log: `[u32 length][encoded change]`, fsynced.
fn append_change(log: &Path, diff: &Diff) -> std::io::Result<()> {
    use std::io::Write;
    let mut bytes = vec![0; 4];
    diff.encode(&mut bytes);
    let len = (bytes.len() - 4) as u32;
    bytes[..4].copy_from_slice(&len.to_be_bytes());
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)?;
    f.write_all(&bytes)?;
    f.sync_data()
}

/// Whether the change log is larger than the whole copy beside it (then rewriting the
/// copy is cheaper than replaying the log at the next start).
fn log_outgrew_copy(log: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    size(log) > size(&log.with_extension("")).max(1 << 20)
}

/// `zone` (the kept whole copy) with the logged changes applied, in order. Changes
/// older than the copy (left by a stop between rewriting the copy and emptying the
/// log) are skipped; a damaged or torn tail (a stop mid-append) ends the replay.
fn replay(z: &SecondaryZone, mut zone: Zone) -> Zone {
    let Ok(bytes) = std::fs::read(&z.log) else {
        return zone;
    };
    let mut at = 0;
    while let Some(len) = bytes.get(at..at + 4) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(Ok(diff)) = bytes.get(at + 4..at + 4 + len).map(Diff::decode) else {
            tracing::warn!(zone = %z.origin, file = %z.log.display(), "kept changes end in a damaged record; later ones ignored");
            break;
        };
        at += 4 + len;
        if !crate::zone::serial_newer(diff.to_serial(), zone.soa.serial) {
            continue;
        }
        match zone.apply(&diff) {
            Ok(next) => zone = next,
            Err(e) => {
                tracing::warn!(zone = %z.origin, file = %z.log.display(), "kept change does not apply ({e}); later ones ignored");
                break;
            }
        }
    }
    zone
}

/// Writes `bytes` to `path` atomically and durably (temp file, fsync, rename, fsync the
/// directory).
fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Records a successful check in the copy's modification time.
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}
