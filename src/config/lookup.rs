//! `[enum]` and `[cache]`: where ENUM answers come from and how long they are kept.
//!
//! Owns: the sections as written (with their defaults), suffixes as domain names,
//! `enum.services` (each parsed by [`Enumservice::parse`], which owns their syntax),
//! upstream nameservers, the failure policy, and the cache's bounds.
//!
//! Must not touch: lookups (`resolve::upstream`, `resolve::cache` make them).

use super::value::{ConfigError, addrs, invalid};
use crate::name::Name;
use crate::naptr::enumservice::Enumservice;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawEnum {
    suffixes: Vec<String>,
    services: Vec<String>,
    nameservers: Vec<String>,
    timeout_ms: u64,
    on_failure: OnFailure,
}

impl Default for RawEnum {
    fn default() -> Self {
        RawEnum {
            suffixes: vec!["e164.arpa.".into()],
            services: vec![
                "E2U+sip".into(),
                "E2U+pstn:tel".into(),
                "E2U+pstn:sip".into(),
            ],
            nameservers: Vec::new(),
            timeout_ms: 2000,
            on_failure: OnFailure::Gateway,
        }
    }
}

/// What to answer when every DNS lookup for a number failed.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Route to the gateway as if there were no record.
    Gateway,
    /// Answer 503 with Retry-After.
    Reject,
}

/// `[cache]`: used as written.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub capacity: u64,
    pub max_ttl_s: u32,
    pub negative_ttl_s: u32,
    pub failure_ttl_s: u32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: 1_000_000,
            max_ttl_s: 3600,
            negative_ttl_s: 300,
            failure_ttl_s: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EnumConfig {
    pub suffixes: Vec<Name>,
    /// As configured (`E2U+pstn:tel`), in order.
    pub services: Vec<Enumservice>,
    pub nameservers: Vec<SocketAddr>,
    pub timeout_ms: u64,
    pub on_failure: OnFailure,
}

impl EnumConfig {
    /// `[enum]`: suffixes, services, timeout, nameservers.
    pub(super) fn from_raw(e: RawEnum) -> Result<EnumConfig, ConfigError> {
        let mut suffixes = Vec::new();
        for (i, sfx) in e.suffixes.iter().enumerate() {
            let n = Name::from_text(sfx)
                .map_err(|err| invalid(format!("enum.suffixes[{i}]"), format!("{sfx:?}: {err}")))?;
            suffixes.push(n);
        }
        let mut services = Vec::with_capacity(e.services.len());
        for (i, svc) in e.services.iter().enumerate() {
            services.push(
                Enumservice::parse(svc).map_err(|m| invalid(format!("enum.services[{i}]"), m))?,
            );
        }
        if e.timeout_ms == 0 {
            return Err(invalid("enum.timeout_ms", "must be at least 1"));
        }
        Ok(EnumConfig {
            suffixes,
            services,
            nameservers: addrs("enum.nameservers", &e.nameservers)?,
            timeout_ms: e.timeout_ms,
            on_failure: e.on_failure,
        })
    }
}

impl CacheConfig {
    /// `[cache]`: used as written, once its capacity is at least 1.
    pub(super) fn checked(self) -> Result<CacheConfig, ConfigError> {
        if self.capacity == 0 {
            return Err(invalid("cache.capacity", "must be at least 1"));
        }
        Ok(self)
    }
}
