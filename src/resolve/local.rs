//! Where a NAPTR answer comes from: the local zones (with CNAMEs followed inside them),
//! or — for a name no local zone holds, or one delegated away — upstream answers fetched
//! so far. [`LocalSource`] gives DDDS its non-terminal targets by that same rule.
//!
//! Owns: local lookups and the local-vs-upstream choice. Must not touch: the network
//! (upstream answers are fetched by the router and handed in), decisions or counters.

use super::cache;
use super::ddds::{NaptrSource, SourceAnswer};
use super::upstream;
use crate::name::{Name, TYPE_NAPTR};
use crate::zone::index::{Lookup, Rdata, RrSet};
use crate::zone::{Zone, Zones};

/// Result of looking up NAPTR for one name in the local zones.
pub(super) enum LocalAnswer<'z> {
    Records {
        zone: &'z Zone,
        /// The records, read (a number's templates filled in) where they are used.
        rrset: RrSet<'z>,
        ttl: u32,
        wildcard: bool,
    },
    Negative {
        zone: &'z Zone,
        ttl: u32,
        nxdomain: bool,
    },
    Delegated {
        zone: &'z Zone,
    },
    NotLocal,
}

/// NAPTR lookup in the local zones for a name given root-side, following CNAMEs within
/// local zones (at most 8, as resolvers bound chains).
pub(super) fn local_naptr<'z, L: AsRef<[u8]>>(
    zones: &'z Zones,
    root_side: &[L],
) -> LocalAnswer<'z> {
    let Some(zone) = zones.find(root_side) else {
        return LocalAnswer::NotLocal;
    };
    let first = zone
        .tree
        .lookup(&root_side[zone.origin_len()..], TYPE_NAPTR);
    resolve_lookup(zones, zone, first, u32::MAX, 0)
}

/// Turns one lookup into a [`LocalAnswer`], following a CNAME into the local zones (at
/// most 8 hops, as resolvers bound chains). Allocates only to follow a CNAME.
fn resolve_lookup<'z>(
    zones: &'z Zones,
    zone: &'z Zone,
    found: Lookup<'z>,
    ttl: u32,
    hops: usize,
) -> LocalAnswer<'z> {
    match found {
        Lookup::Answer { rrset, wildcard } => LocalAnswer::Records {
            zone,
            rrset,
            ttl: ttl.min(rrset.ttl),
            wildcard,
        },
        Lookup::Cname { rrset, .. } => {
            let ttl = ttl.min(rrset.ttl);
            let target = rrset.rdatas().next().and_then(|rd| Name::from_wire(&rd));
            let Some((target, _)) = target.filter(|_| hops < 8) else {
                return LocalAnswer::Delegated { zone };
            };
            let owned: Vec<&[u8]> = target.labels().iter().rev().map(|l| &l[..]).collect();
            match zones.find(&owned) {
                Some(next) => {
                    let found = next.tree.lookup(&owned[next.origin_len()..], TYPE_NAPTR);
                    // The target's labels are only borrowed for the lookup; what it
                    // returns borrows the zone, not them.
                    resolve_lookup(zones, next, found, ttl, hops + 1)
                }
                None => LocalAnswer::NotLocal,
            }
        }
        Lookup::NoData { .. } => LocalAnswer::Negative {
            zone,
            ttl: ttl.min(zone.soa.negative_ttl()),
            nxdomain: false,
        },
        Lookup::NxDomain => LocalAnswer::Negative {
            zone,
            ttl: ttl.min(zone.soa.negative_ttl()),
            nxdomain: true,
        },
        Lookup::Referral { .. } => LocalAnswer::Delegated { zone },
    }
}

/// Where one name's NAPTR answer comes from (see [`find`]).
pub(super) enum Found<'z> {
    /// From the local zones (or the lack of one there).
    Local(LocalAnswer<'z>),
    /// From the upstream answers fetched so far.
    Upstream(&'z upstream::Answer),
    /// To be asked upstream, and not fetched yet: its key is in the caller's buffer.
    Missing,
}

impl LocalAnswer<'_> {
    /// Whether the local zones leave the name to upstream: none holds it, or it is
    /// delegated away.
    fn leaves_zones(&self) -> bool {
        matches!(self, LocalAnswer::NotLocal | LocalAnswer::Delegated { .. })
    }
}

/// The one local-vs-upstream rule, for the suffix chain and for DDDS's non-terminal
/// targets alike: a name the local zones leave to upstream is answered from the answers
/// `fetched` so far when it may be asked upstream (`ask_upstream`); any other name by the
/// local answer. `write_key` writes the name as upstream answers are keyed (absolute;
/// lowered here) into `key`, a buffer the caller keeps — only when upstream is asked.
pub(super) fn find<'z>(
    local: LocalAnswer<'z>,
    ask_upstream: bool,
    fetched: Option<&'z cache::Answers>,
    key: &mut String,
    write_key: impl FnOnce(&mut String),
) -> Found<'z> {
    if !(ask_upstream && local.leaves_zones()) {
        return Found::Local(local);
    }
    key.clear();
    write_key(key);
    key.make_ascii_lowercase();
    match fetched.and_then(|f| f.get(key.as_str())) {
        Some(answer) => Found::Upstream(answer),
        None => Found::Missing,
    }
}

/// Non-terminal targets, from the local zones.
pub(super) struct LocalSource<'z> {
    zones: &'z Zones,
    /// Upstream answers fetched so far (asynchronous path).
    fetched: Option<&'z cache::Answers>,
    /// Whether names outside the local zones may be asked upstream.
    upstream: bool,
    /// Names needed from upstream and not fetched yet.
    pub(super) missing: Vec<String>,
    pub(super) failed: Option<&'static str>,
}

impl<'z> LocalSource<'z> {
    pub(super) fn new(
        zones: &'z Zones,
        fetched: Option<&'z cache::Answers>,
        upstream: bool,
    ) -> Self {
        LocalSource {
            zones,
            fetched,
            upstream,
            missing: Vec::new(),
            failed: None,
        }
    }
}

impl<'z> NaptrSource<'z> for LocalSource<'z> {
    fn naptr(&mut self, name: &Name) -> SourceAnswer<'z> {
        let root_side: Vec<&[u8]> = name.labels().iter().rev().map(|l| &l[..]).collect();
        let local = local_naptr(self.zones, &root_side);
        let mut key = String::new();
        let write_key = |k: &mut String| {
            use std::fmt::Write;
            let _ = write!(k, "{name}");
        };
        match find(local, self.upstream, self.fetched, &mut key, write_key) {
            Found::Upstream(upstream::Answer::Records { rdatas, ttl }) => {
                SourceAnswer::Records(rdatas.iter().map(|r| Rdata::Wire(&r[..])).collect(), *ttl)
            }
            Found::Upstream(upstream::Answer::Negative { ttl, .. }) => SourceAnswer::Empty(*ttl),
            Found::Upstream(upstream::Answer::Failed(f)) => {
                self.failed = self.failed.or(Some(f.as_str()));
                SourceAnswer::Unavailable(format!("upstream lookup failed: {}", f.as_str()))
            }
            Found::Missing => {
                self.missing.push(key);
                SourceAnswer::Unavailable("waiting for upstream DNS".into())
            }
            Found::Local(LocalAnswer::Records { rrset, ttl, .. }) => {
                SourceAnswer::Records(rrset.rdatas().collect(), ttl)
            }
            Found::Local(LocalAnswer::Negative { ttl, .. }) => SourceAnswer::Empty(ttl),
            Found::Local(LocalAnswer::Delegated { zone }) => SourceAnswer::Unavailable(format!(
                "delegated below {}; no upstream ENUM resolver configured",
                zone.origin
            )),
            Found::Local(LocalAnswer::NotLocal) => SourceAnswer::Unavailable(
                "not in a local zone; no upstream ENUM resolver configured".into(),
            ),
        }
    }
}
