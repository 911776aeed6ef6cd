//! `[[zone]]`, `[[catalog]]` and `[store]`: which zones are served and where their data
//! of record is.
//!
//! Owns: the sections as written, zone origins (each once), each zone's source (a
//! master file, a primary to transfer from, or the store alone) and the TSIG key a
//! secondary zone uses, the catalogs followed (RFC 9432) with their primaries and keys,
//! the store's path, and keeping the catalog zone we serve (`dns.catalog_zone`) apart
//! from the zones configured here.
//!
//! Must not touch: zone data (`keeper` and `zone/` load it) or the store itself.

use super::tsig::{TsigKey, reference};
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
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalog {
    origin: String,
    primary: String,
    key: Option<String>,
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
    /// `key`: the `[[tsig]]` a secondary zone signs its requests to the primary with,
    /// and requires on the primary's answers and NOTIFYs. Only with `primary`.
    pub key: Option<Name>,
}

/// One `[[catalog]]`: a catalog zone (RFC 9432) kept from `primary`, whose member zones
/// are served as secondaries of that primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    pub origin: Name,
    pub primary: SocketAddr,
    /// The `[[tsig]]` used with `primary`, for the catalog and its members alike.
    pub key: Option<Name>,
}

impl ZoneConfig {
    /// `[[zone]]`: each zone in order, its origin (not configured twice) and its source.
    pub(super) fn from_raw_list(
        raw: &[RawZone],
        base: &Path,
        keys: &[TsigKey],
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
            let key = zone_key(i, z.key.as_deref(), &source, keys)?;
            zones.push(ZoneConfig {
                origin,
                source,
                key,
            });
        }
        Ok(zones)
    }
}

/// `zone[i].key`: a `[[tsig]]` name, for a secondary zone only (a zone we are primary
/// for is signed with `dns.transfer_key`).
fn zone_key(
    i: usize,
    key: Option<&str>,
    source: &ZoneSource,
    keys: &[TsigKey],
) -> Result<Option<Name>, ConfigError> {
    let Some(name) = key else { return Ok(None) };
    let at = format!("zone[{i}].key");
    if !matches!(source, ZoneSource::Primary(_)) {
        return Err(invalid(
            at,
            "only a zone with primary has a key (dns.transfer_key signs the zones served from here)",
        ));
    }
    reference(keys, &at, name).map(Some)
}

impl CatalogConfig {
    /// `[[catalog]]`: each catalog in order, its origin (once, and neither a `[[zone]]`
    /// nor the catalog we serve), its primary and key.
    pub(super) fn from_raw_list(
        raw: &[RawCatalog],
        zones: &[ZoneConfig],
        served: Option<&Name>,
        keys: &[TsigKey],
    ) -> Result<Vec<CatalogConfig>, ConfigError> {
        let mut catalogs: Vec<CatalogConfig> = Vec::with_capacity(raw.len());
        for (i, c) in raw.iter().enumerate() {
            let at = |field: &str| format!("catalog[{i}].{field}");
            let origin = Name::from_text(&c.origin)
                .map_err(|e| invalid(at("origin"), format!("{:?}: {e}", c.origin)))?;
            let clash = if catalogs.iter().any(|x| x.origin.eq_ignore_case(&origin)) {
                Some("is configured twice".to_string())
            } else if let Some(j) = zones.iter().position(|z| z.origin.eq_ignore_case(&origin)) {
                Some(format!("is also zone[{j}].origin"))
            } else if served.is_some_and(|s| s.eq_ignore_case(&origin)) {
                Some("is also dns.catalog_zone".to_string())
            } else {
                None
            };
            if let Some(clash) = clash {
                return Err(invalid(at("origin"), format!("{origin} {clash}")));
            }
            let primary = c
                .primary
                .parse()
                .map_err(|_| invalid(at("primary"), format!("{:?} is not IP:PORT", c.primary)))?;
            let key = match &c.key {
                Some(k) => Some(reference(keys, &at("key"), k)?),
                None => None,
            };
            catalogs.push(CatalogConfig {
                origin,
                primary,
                key,
            });
        }
        Ok(catalogs)
    }
}

/// `dns.catalog_zone` is a zone of its own, built from the others: it cannot also be a
/// `[[zone]]`.
pub(super) fn catalog_zone_apart(
    served: Option<&Name>,
    zones: &[ZoneConfig],
) -> Result<(), ConfigError> {
    let Some(catalog) = served else { return Ok(()) };
    match zones.iter().position(|z| z.origin.eq_ignore_case(catalog)) {
        Some(i) => Err(invalid(
            "dns.catalog_zone",
            format!("{catalog} is also zone[{i}].origin"),
        )),
        None => Ok(()),
    }
}
