//! `[[zone]]` and `[store]`: which zones are served and where their data of record is.
//!
//! Owns: the sections as written, zone origins (each once), each zone's source (a
//! master file, a primary to transfer from, or the store alone), the store's path.
//!
//! Must not touch: zone data (`keeper` and `zone/` load it) or the store itself.

use super::value::{ConfigError, invalid, resolve_path};
use crate::name::Name;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    origin: String,
    file: Option<String>,
    primary: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStore {
    pub(super) path: String,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: "../data/enroute.db".into(),
        }
    }
}

/// Where a `[[zone]]`'s data of record comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSource {
    /// `file = "..."`: a master file, loaded into the store when newer (SPEC §6).
    File(PathBuf),
    /// `primary = "IP:PORT"`: a secondary zone, transferred from its primary.
    Primary(SocketAddr),
    /// Neither: a store-only zone, created empty (SOA and a placeholder NS) on first
    /// start and changed through the admin API only.
    Store,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub origin: Name,
    pub source: ZoneSource,
}

impl ZoneConfig {
    /// `[[zone]]`: each zone in order, its origin (not configured twice) and its source.
    pub(super) fn from_raw_list(
        raw: &[RawZone],
        base: &Path,
    ) -> Result<Vec<ZoneConfig>, ConfigError> {
        let mut zones: Vec<ZoneConfig> = Vec::new();
        for (i, z) in raw.iter().enumerate() {
            let origin = Name::from_text(&z.origin).map_err(|err| {
                invalid(
                    format!("zone[{i}].origin"),
                    format!("{:?}: {err}", z.origin),
                )
            })?;
            if zones.iter().any(|x| x.origin.eq_ignore_case(&origin)) {
                return Err(invalid(
                    format!("zone[{i}].origin"),
                    format!("{origin} is configured twice"),
                ));
            }
            let source = match (&z.file, &z.primary) {
                (Some(f), None) => ZoneSource::File(resolve_path(base, f)),
                (None, Some(p)) => ZoneSource::Primary(p.parse().map_err(|_| {
                    invalid(
                        format!("zone[{i}].primary"),
                        format!("{p:?} is not IP:PORT"),
                    )
                })?),
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("zone[{i}]"),
                        "set either file or primary, not both",
                    ));
                }
                (None, None) => ZoneSource::Store,
            };
            zones.push(ZoneConfig { origin, source });
        }
        Ok(zones)
    }
}
