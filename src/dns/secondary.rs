//! Secondary zones (`[[zone]] primary = "IP:PORT"`): kept from a primary by AXFR.
//!
//! Owns: one task per secondary zone that transfers at start, on an accepted NOTIFY
//! and every SOA refresh (retry interval after a failure); serves the last good copy
//! while the primary is unreachable until SOA expire, then withdraws the zone; and
//! keeps that copy on disk (`<store dir>/secondary/<origin>zone`, written atomically,
//! its modification time = the last successful check) so it survives a restart.
//!
//! Must not touch: answering queries (see `dns::answer`), routing, or the served
//! [`ZoneSet`] directly: a transferred copy and a withdrawal go through the keeper's
//! [`Publisher`], the one path every zone change takes (swap, so that SIP and DNS read it
//! at once; NOTIFY; stale cached decisions dropped; the old copy freed off the readers'
//! threads).

use super::xfr;
use crate::keeper::{Publisher, Stale};
use crate::name::Name;
use crate::zone::Zone;
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
}

impl SecondaryZone {
    pub fn new(origin: Name, primary: SocketAddr, dir: &Path) -> Self {
        let file = dir.join(format!("{}zone", origin.to_string().to_ascii_lowercase()));
        SecondaryZone {
            origin,
            primary,
            file,
        }
    }
}

/// Runs every secondary zone until shutdown; `refresh` carries the zones an accepted
/// NOTIFY names.
pub async fn run(
    zones_cfg: Vec<SecondaryZone>,
    publisher: Arc<Publisher>,
    mut refresh: mpsc::UnboundedReceiver<Name>,
    shutdown: watch::Receiver<bool>,
) {
    let mut kicks = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for z in zones_cfg {
        let (tx, rx) = mpsc::unbounded_channel();
        kicks.push((z.origin.clone(), tx));
        tasks.spawn(keep(z, publisher.clone(), rx, shutdown.clone()));
    }
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            Some(name) = refresh.recv() => {
                if let Some((_, tx)) = kicks.iter().find(|(o, _)| o.eq_ignore_case(&name)) {
                    let _ = tx.send(());
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Loads the copy kept on disk when it has not expired; returns it with the time of the
/// last successful check.
pub fn load_copy(z: &SecondaryZone) -> Option<(Zone, SystemTime)> {
    let checked = std::fs::metadata(&z.file).and_then(|m| m.modified()).ok()?;
    let zone = match Zone::load_file(&z.file, &z.origin) {
        Ok((zone, _)) => zone,
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

async fn keep(
    z: SecondaryZone,
    publisher: Arc<Publisher>,
    mut kick: mpsc::UnboundedReceiver<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    let zones = publisher.zones().clone();
    // The copy from disk, when one was loaded at start, is already served.
    let mut last_ok = std::fs::metadata(&z.file)
        .and_then(|m| m.modified())
        .ok()
        .filter(|_| zones.soa(&z.origin).is_some());
    loop {
        let served = zones.soa(&z.origin).map(|soa| soa.serial);
        let wait = match check(&z, served, &publisher).await {
            Ok(()) => {
                last_ok = Some(SystemTime::now());
                touch(&z.file);
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
                        let (p, origin) = (publisher.clone(), z.origin.clone());
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

/// One refresh: SOA serial from the primary, AXFR when newer (or nothing served yet).
async fn check(
    z: &SecondaryZone,
    served: Option<u32>,
    publisher: &Arc<Publisher>,
) -> Result<(), xfr::XfrError> {
    let serial = xfr::query_serial(z.primary, &z.origin).await?;
    if let Some(have) = served
        && !xfr::serial_newer(serial, have)
    {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let zone = xfr::fetch_zone(z.primary, &z.origin, TRANSFER_LIMIT).await?;
    let text = zone.to_master();
    let (serial, records) = (zone.soa.serial, zone.stats.records);
    let file = z.file.clone();
    let saved = tokio::task::spawn_blocking(move || save(&file, text.as_bytes())).await;
    if let Ok(Err(e)) | Err(e) = saved.map_err(std::io::Error::other) {
        tracing::warn!(zone = %z.origin, file = %z.file.display(), "copy not kept on disk: {e}");
    }
    // Anything in the zone may have changed: every cached decision is dropped. The
    // publisher may wait for readers to let go of the old copy, so not on this thread.
    let p = publisher.clone();
    tokio::task::spawn_blocking(move || p.publish(zone, Stale::All))
        .await
        .map_err(|e| xfr::XfrError::Io(std::io::Error::other(format!("publishing: {e}"))))?;
    tracing::info!(zone = %z.origin, primary = %z.primary, serial, records, ms = started.elapsed().as_millis() as u64, "AXFR in: serving the new copy");
    Ok(())
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
