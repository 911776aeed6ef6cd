//! Resolution: from a dialled number to a routing [`Decision`].
//!
//! Owns: the one [`Router`] that SIP, `enroute route` and the admin API all call (SPEC
//! §1: the three never disagree), the suffix chain (SPEC §10.1), local-zone lookups with
//! CNAME following, q-values (§10.3), `max_contacts`, the gateway fallback, and the
//! decision's trace. Submodules own numbers and the dial plan ([`number`]), DDDS
//! ([`ddds`]), gateways ([`gateway`]), URIs ([`uri`]), upstream DNS ([`upstream`]) and
//! the cache of upstream answers ([`cache`]).
//!
//! Every decision, whether its upstream answers come from the wire or the cache, is
//! made by the same `decide` from those answers and the request's own filter (a `sips:`
//! Request-URI, a contact equal to the Request-URI), so what one request filters never
//! shows in another's answer.
//!
//! Must not touch: sockets, SIP messages, or zone storage. Local zones are read through a
//! lock-free snapshot taken once per decision.

pub mod cache;
pub mod ddds;
pub mod gateway;
pub mod number;
pub mod upstream;
pub mod uri;

use crate::config::{Config, DialplanConfig};
use crate::metrics::{Counters, Family, Histogram};
use crate::name::Name;
use crate::name::TYPE_NAPTR;
use crate::zone::index::Lookup;
use crate::zone::{Zone, ZoneSet, Zones};
use ddds::{
    Candidate, ContactFilter, Ddds, NaptrSource, RankKey, RecordTrace, Services, SkipReason,
    SourceAnswer,
};
use gateway::Gateways;
use serde::Serialize;
use std::sync::Arc;

/// Where a decision came from (SPEC §10.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Local,
    Cache,
    Upstream,
    Gateway,
    None,
}

impl Source {
    /// Every source, in declaration order (so `source as usize` is its index).
    pub const ALL: [Source; 5] = [
        Source::Local,
        Source::Cache,
        Source::Upstream,
        Source::Gateway,
        Source::None,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Cache => "cache",
            Source::Upstream => "upstream",
            Source::Gateway => "gateway",
            Source::None => "none",
        }
    }
}

/// A q-value in thousandths (1000 = 1.0), printed with one decimal as SIP shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Q(pub u16);

impl Q {
    /// q for a dense rank: 1.0, 0.9, … never below 0.1 (SPEC §10.3).
    pub fn for_rank(rank: usize) -> Q {
        Q(1000u16.saturating_sub((rank.min(9) as u16) * 100))
    }
}

impl std::fmt::Display for Q {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0 / 1000, (self.0 % 1000) / 100)
    }
}

impl Q {
    /// Appends the same text as `Display` (`1.0`, `0.5`) without the formatter: the SIP
    /// answer writes one per Contact.
    pub fn write_digits(self, out: &mut Vec<u8>) {
        if self.0 >= 10_000 {
            out.extend_from_slice(self.to_string().as_bytes());
            return;
        }
        out.extend_from_slice(&[
            b'0' + (self.0 / 1000) as u8,
            b'.',
            b'0' + ((self.0 % 1000) / 100) as u8,
        ]);
    }
}

impl Serialize for Q {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 1000.0)
    }
}

/// One Contact of a 302.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub uri: String,
    pub q: Q,
}

/// One step of a decision's explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TraceStep {
    /// How the input became a number.
    Number {
        dialled: String,
        scheme: Option<&'static str>,
        rule: Option<usize>,
        result: String,
    },
    /// A NAPTR lookup of the number's domain under one suffix.
    Lookup {
        suffix: String,
        domain: String,
        /// "local" or "upstream".
        via: &'static str,
        zone: Option<String>,
        /// answer, wildcard, nxdomain, nodata, delegated, not_queried
        result: &'static str,
        ttl: Option<u32>,
        records: Vec<String>,
        note: Option<String>,
    },
    /// A NAPTR record used or skipped.
    Record(RecordTrace),
    /// The gateway fallback for a number without a usable record.
    Gateway {
        prefix: String,
        number: String,
        uris: Vec<String>,
    },
    /// Contacts dropped by `sip.max_contacts`.
    Truncated { kept: usize, dropped: usize },
    /// The decision cache: `hit` (with the seconds left) or `miss`.
    Cache {
        result: &'static str,
        ttl: Option<u32>,
    },
}

/// A routing decision: exactly what the SIP answer carries, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The input as given; filled when the decision was traced (CLI, admin API), empty on
    /// the SIP path, which has the Request-URI itself.
    pub input: String,
    /// The E.164 number, when the input was one.
    pub number: Option<String>,
    /// SIP status: 302, 404, 416, 484, 503.
    pub status: u16,
    /// The SIP reason phrase.
    pub reason: &'static str,
    /// Why, in words (detailed when traced; a fixed phrase on the SIP path).
    pub detail: std::borrow::Cow<'static, str>,
    pub contacts: Vec<Contact>,
    pub source: Source,
    pub zone: Option<String>,
    pub suffix: Option<String>,
    /// Seconds the decision may be reused.
    pub ttl: u32,
    pub trace: Vec<TraceStep>,
    /// Buffers kept between decisions by [`Router::route_into`]; not part of the value.
    #[serde(skip)]
    scratch: Scratch,
}

/// Emptied buffers a reused [`Decision`] carries to its next routing, so that the SIP
/// path (one decision per worker, reused) allocates only what grows.
#[derive(Debug, Clone, Default)]
struct Scratch {
    number: String,
    zone: String,
    suffix: String,
    candidates: Vec<Candidate>,
    spare_uris: Vec<String>,
    /// An upstream name as cached answers are keyed (lower case, absolute).
    upstream_key: String,
}

/// Scratch space is not part of a decision's value.
impl PartialEq for Scratch {
    fn eq(&self, _: &Scratch) -> bool {
        true
    }
}
impl Eq for Scratch {}

/// Takes `buf`, fills it with `text` and returns it (no allocation once it has grown).
fn refill(buf: &mut String, text: &str) -> String {
    let mut s = std::mem::take(buf);
    s.clear();
    s.push_str(text);
    s
}

/// Contact strings kept for reuse, at most.
const SPARE_URIS: usize = 32;

impl Default for Decision {
    fn default() -> Self {
        Decision {
            input: String::new(),
            number: None,
            status: 404,
            reason: "",
            detail: "".into(),
            contacts: Vec::new(),
            source: Source::None,
            zone: None,
            suffix: None,
            ttl: 0,
            trace: Vec::new(),
            scratch: Scratch::default(),
        }
    }
}

impl Decision {
    /// Empties the decision for reuse, keeping its buffers.
    fn reset(&mut self) {
        self.input.clear();
        if let Some(n) = self.number.take() {
            self.scratch.number = n;
        }
        self.status = 404;
        self.reason = "";
        self.detail = "".into();
        for c in self.contacts.drain(..) {
            if self.scratch.spare_uris.len() < SPARE_URIS {
                self.scratch.spare_uris.push(c.uri);
            }
        }
        self.source = Source::None;
        if let Some(z) = self.zone.take() {
            self.scratch.zone = z;
        }
        if let Some(sfx) = self.suffix.take() {
            self.scratch.suffix = sfx;
        }
        self.ttl = 0;
        self.trace.clear();
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        302 => "Moved Temporarily",
        404 => "Not Found",
        416 => "Unsupported URI Scheme",
        484 => "Address Incomplete",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Whether the domain `name` lies under `suffix` (both absolute, any case).
fn under_suffix(name: &str, suffix: &str) -> bool {
    let (n, s) = (name.as_bytes(), suffix.as_bytes());
    n.len() > s.len()
        && n[n.len() - s.len()..].eq_ignore_ascii_case(s)
        && (s == b"." || n[n.len() - s.len() - 1] == b'.')
}

/// Decision outcomes as counted: by the SIP status they give.
pub const OUTCOMES: [(u16, &str); 6] = [
    (302, "redirect"),
    (404, "not_found"),
    (484, "incomplete"),
    (416, "unsupported_scheme"),
    (503, "unavailable"),
    (0, "other"),
];

const DECISION_SLOTS: usize = OUTCOMES.len() * Source::ALL.len();

/// Counters of one upstream ENUM suffix.
#[derive(Default)]
pub struct SuffixStats {
    /// By [`UPSTREAM_RESULTS`] index.
    results: Counters<{ UPSTREAM_RESULTS.len() }>,
    duration: Histogram,
}

/// Counters of what the router did; the metrics layer reads them.
#[derive(Default)]
pub struct RouteStats {
    /// By outcome ([`OUTCOMES`] index) × source ([`Source::ALL`] index).
    decisions: Counters<DECISION_SLOTS>,
    /// Time to a decision (local, cached or upstream).
    duration: Histogram,
    /// By [`SkipReason::ALL`] index.
    skips: Counters<{ SkipReason::ALL.len() }>,
    /// Upstream NAPTR lookups by suffix (`other` for names a non-terminal record led
    /// outside every suffix). Looked up per upstream lookup, not per decision.
    suffixes: std::sync::Mutex<Vec<(Arc<str>, Arc<SuffixStats>)>>,
    /// One warning per second at most for upstream failures.
    failure_log: crate::logging::RateLimit,
}

/// The results an upstream lookup is counted under.
pub const UPSTREAM_RESULTS: [&str; 7] = [
    "answer", "nxdomain", "nodata", "timeout", "servfail", "refused", "error",
];

/// [`Source::ALL`] index: the discriminant (`ALL` is in declaration order).
fn source_index(source: Source) -> usize {
    source as usize
}

impl RouteStats {
    pub fn skips(&self, reason: SkipReason) -> u64 {
        self.skips.get(reason as usize)
    }

    /// Upstream lookups that ended with `result` (see [`UPSTREAM_RESULTS`]), all
    /// suffixes together.
    pub fn upstream(&self, result: &str) -> u64 {
        let Some(i) = UPSTREAM_RESULTS.iter().position(|r| *r == result) else {
            return 0;
        };
        self.suffix_list()
            .iter()
            .map(|(_, s)| s.results.get(i))
            .sum()
    }

    fn suffix_list(&self) -> Vec<(Arc<str>, Arc<SuffixStats>)> {
        self.suffixes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The counters of `suffix` (created on first use; kept across reloads so the
    /// counters never go back).
    fn suffix(&self, suffix: &str) -> Arc<SuffixStats> {
        let mut list = self.suffixes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, s)) = list.iter().find(|(n, _)| &**n == suffix) {
            return s.clone();
        }
        let s = Arc::new(SuffixStats::default());
        list.push((suffix.into(), s.clone()));
        s
    }

    /// Counts one upstream lookup of `name` under `suffix` that took `elapsed`;
    /// failures are logged (one warning per second at most, with how many were left
    /// out), not-found answers only at debug level: NXDOMAIN is an answer.
    fn count_upstream(
        &self,
        suffix: &str,
        name: &str,
        server: &str,
        answer: &upstream::Answer,
        elapsed: Option<std::time::Duration>,
    ) {
        let result = answer.result();
        let stats = self.suffix(suffix);
        if let Some(i) = UPSTREAM_RESULTS.iter().position(|r| *r == result) {
            stats.results.inc(i);
        }
        if let Some(e) = elapsed {
            stats.duration.observe(e);
        }
        match answer {
            upstream::Answer::Failed(f) => {
                if let Some(suppressed) = self.failure_log.check() {
                    let detail = match f {
                        upstream::Failure::Other(text) => text.as_str(),
                        _ => "",
                    };
                    tracing::warn!(%name, %server, result, detail, suppressed, "upstream ENUM lookup failed");
                }
            }
            _ => tracing::debug!(%name, %server, result, "upstream ENUM answer"),
        }
    }

    /// Decisions from `source`, any outcome.
    pub fn decisions(&self, source: Source) -> u64 {
        let s = source_index(source);
        (0..OUTCOMES.len())
            .map(|o| self.decisions.get(o * Source::ALL.len() + s))
            .sum()
    }

    fn count_decision(&self, status: u16, source: Source) {
        let o = OUTCOMES
            .iter()
            .position(|(code, _)| *code == status)
            .unwrap_or(OUTCOMES.len() - 1);
        self.decisions
            .inc(o * Source::ALL.len() + source_index(source));
    }
}

impl crate::metrics::Source for RouteStats {
    fn families(&self, out: &mut Vec<Family>) {
        let outcomes = OUTCOMES.map(|(_, label)| label);
        let sources = Source::ALL.map(Source::as_str);
        out.push(
            Family::counter(
                "enroute_route_decisions_total",
                "Routing decisions (SIP, CLI and admin API) by outcome and where they came from.",
                &["outcome", "source"],
            )
            .per_cell(&self.decisions, &outcomes, &sources, |o, _| o == 0),
        );
        let mut duration = Family::histogram(
            "enroute_route_duration_seconds",
            "Time to a routing decision, upstream lookups included.",
            &[],
        );
        duration.histogram_value(&[], &self.duration);
        out.push(duration);
        out.push(
            Family::counter(
                "enroute_ddds_skipped_total",
                "NAPTR records the DDDS did not use, by reason.",
                &["reason"],
            )
            .per_label(
                &self.skips,
                &SkipReason::ALL.map(SkipReason::as_str),
                |_| true,
            ),
        );
        let mut lookups = Family::counter(
            "enroute_enum_lookups_total",
            "Upstream ENUM NAPTR lookups by suffix and result.",
            &["suffix", "result"],
        );
        let mut durations = Family::histogram(
            "enroute_enum_lookup_duration_seconds",
            "Upstream ENUM NAPTR lookup time by suffix.",
            &["suffix"],
        );
        for (suffix, s) in self.suffix_list() {
            for (i, result) in UPSTREAM_RESULTS.iter().enumerate() {
                lookups.value(&[&suffix, result], s.results.get(i) as f64);
            }
            durations.histogram_value(&[&suffix], &s.duration);
        }
        out.push(lookups);
        out.push(durations);
    }
}

/// The routing inputs taken from the configuration.
pub struct RoutingPlan {
    pub dialplan: DialplanConfig,
    pub services: Services,
    /// `enum.suffixes` with their presentation form.
    pub suffixes: Vec<(Name, Arc<str>)>,
    pub gateways: Gateways,
    pub max_contacts: usize,
    /// The upstream resolver, when there is a configured suffix to ask (built from
    /// `enum.nameservers` and `enum.timeout_ms`); `None` when none can be built.
    pub upstream: Option<Arc<upstream::Upstream>>,
    pub on_failure: crate::config::OnFailure,
}

impl RoutingPlan {
    pub fn from_config(c: &Config) -> Self {
        RoutingPlan {
            dialplan: c.dialplan.clone(),
            services: Services::new(&c.enum_.services),
            suffixes: c
                .enum_
                .suffixes
                .iter()
                .map(|n| (n.clone(), n.to_string().into()))
                .collect(),
            gateways: Gateways::new(&c.gateways),
            max_contacts: c.sip.max_contacts,
            upstream: if c.enum_.suffixes.is_empty() {
                None
            } else {
                match upstream::Upstream::new(
                    &c.enum_.nameservers,
                    std::time::Duration::from_millis(c.enum_.timeout_ms.max(1)),
                ) {
                    Ok(u) => Some(Arc::new(u)),
                    Err(e) => {
                        tracing::warn!("upstream ENUM disabled: {e}");
                        None
                    }
                }
            },
            on_failure: c.enum_.on_failure,
        }
    }
}

/// Marks a decision that cannot be made from local data and the cache: it needs
/// upstream DNS ([`Router::route_full`]).
const PENDING: u16 = 0;

/// Upstream state while one decision is made.
struct UpCtx<'a> {
    /// Answers fetched so far (the asynchronous path); `None` on the synchronous path,
    /// where any upstream name is "missing".
    fetched: Option<&'a cache::Answers>,
    /// Names needed from upstream and not fetched yet (lower case, absolute); on the
    /// synchronous path only their number counts, and they are left empty.
    missing: Vec<String>,
    /// The first upstream failure seen (timeout, servfail…).
    failed: Option<&'static str>,
}

/// The one routing function's owner.
pub struct Router {
    zones: Arc<ZoneSet>,
    /// Swapped whole on reload; read once per decision.
    plan: arc_swap::ArcSwap<RoutingPlan>,
    stats: Arc<RouteStats>,
    /// Decisions that needed upstream DNS.
    cache: Arc<cache::DecisionCache>,
}

/// Labels of an ENUM domain are at most 100 digits plus the suffix's labels.
const MAX_LABELS: usize = 128;

static DIGIT_LABELS: [&[u8]; 10] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];

/// Result of looking up NAPTR for one name in the local zones.
enum LocalAnswer<'z> {
    Records {
        zone: &'z Zone,
        rdatas: smallvec::SmallVec<[&'z [u8]; 8]>,
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
fn local_naptr<'z, L: AsRef<[u8]>>(zones: &'z Zones, root_side: &[L]) -> LocalAnswer<'z> {
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
            rdatas: rrset.rdatas().collect(),
            ttl: ttl.min(rrset.ttl),
            wildcard,
        },
        Lookup::Cname { rrset, .. } => {
            let ttl = ttl.min(rrset.ttl);
            let target = rrset.rdatas().next().and_then(Name::from_wire);
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

/// Non-terminal targets, from the local zones.
struct LocalSource<'z> {
    zones: &'z Zones,
    /// Upstream answers fetched so far (asynchronous path).
    fetched: Option<&'z cache::Answers>,
    /// Whether names outside the local zones may be asked upstream.
    upstream: bool,
    /// Names needed from upstream and not fetched yet.
    missing: Vec<String>,
    failed: Option<&'static str>,
}

impl<'z> LocalSource<'z> {
    fn new(zones: &'z Zones, fetched: Option<&'z cache::Answers>, upstream: bool) -> Self {
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
        if self.upstream && matches!(local, LocalAnswer::NotLocal | LocalAnswer::Delegated { .. }) {
            let key = name.to_string().to_ascii_lowercase();
            return match self.fetched.and_then(|f| f.get(&key)) {
                Some(upstream::Answer::Records { rdatas, ttl }) => {
                    SourceAnswer::Records(rdatas.iter().map(|r| &r[..]).collect(), *ttl)
                }
                Some(upstream::Answer::Negative { ttl, .. }) => SourceAnswer::Empty(*ttl),
                Some(upstream::Answer::Failed(f)) => {
                    self.failed = self.failed.or(Some(f.as_str()));
                    SourceAnswer::Unavailable(format!("upstream lookup failed: {}", f.as_str()))
                }
                None => {
                    self.missing.push(key);
                    SourceAnswer::Unavailable("waiting for upstream DNS".into())
                }
            };
        }
        match local {
            LocalAnswer::Records { rdatas, ttl, .. } => {
                SourceAnswer::Records(rdatas.into_vec(), ttl)
            }
            LocalAnswer::Negative { ttl, .. } => SourceAnswer::Empty(ttl),
            LocalAnswer::Delegated { zone } => SourceAnswer::Unavailable(format!(
                "delegated below {}; no upstream ENUM resolver configured",
                zone.origin
            )),
            LocalAnswer::NotLocal => SourceAnswer::Unavailable(
                "not in a local zone; no upstream ENUM resolver configured".into(),
            ),
        }
    }
}

impl Router {
    pub fn new(config: &Config, zones: Arc<ZoneSet>) -> Self {
        Router {
            zones,
            plan: arc_swap::ArcSwap::from_pointee(RoutingPlan::from_config(config)),
            stats: Arc::new(RouteStats::default()),
            cache: Arc::new(cache::DecisionCache::new(
                config.cache.capacity,
                cache::Limits {
                    max_ttl_s: config.cache.max_ttl_s,
                    negative_ttl_s: config.cache.negative_ttl_s,
                    failure_ttl_s: config.cache.failure_ttl_s,
                },
            )),
        }
    }

    /// The decision cache (flushed by reloads and admin changes).
    pub fn cache(&self) -> &Arc<cache::DecisionCache> {
        &self.cache
    }

    pub fn zones(&self) -> &Arc<ZoneSet> {
        &self.zones
    }

    pub fn stats(&self) -> &Arc<RouteStats> {
        &self.stats
    }

    pub fn plan(&self) -> arc_swap::Guard<Arc<RoutingPlan>> {
        self.plan.load()
    }

    /// Replaces the dial plan, services, suffixes, gateways and contact limit.
    pub fn set_plan(&self, plan: RoutingPlan) {
        self.plan.store(Arc::new(plan));
        // Decisions made under the old suffixes, services or gateways no longer hold.
        self.cache.invalidate_all();
    }

    /// Decides how to route `input`: a Request-URI (`sip:`, `sips:`, `tel:`) or a number
    /// as dialled. With `trace`, the decision explains every step (costs allocations; the
    /// SIP path leaves it off). Synchronous: from local zones and the cache only; a
    /// decision that needs upstream DNS comes back [`Decision::is_pending`] — use
    /// [`Router::route_full`] to finish it.
    pub fn route(&self, input: &str, trace: bool) -> Decision {
        let mut d = Decision::default();
        self.route_into(input, trace, &mut d);
        d
    }

    /// As [`Router::route`], into a decision that a caller reuses: its buffers (number,
    /// contact list, contact strings) are recycled, so a worker that keeps one decision
    /// routes without allocating once they have grown. Without `trace`, `input` is not
    /// copied into the decision (the SIP path has the Request-URI already).
    pub fn route_into(&self, input: &str, trace: bool, d: &mut Decision) {
        let started = crate::metrics::start_timer();
        self.decide_fresh(input, trace, d, None);
        if d.status == PENDING {
            let Some(hit) = d.number.as_deref().and_then(|n| self.cache.peek(n)) else {
                return; // the caller goes on with `route_full`
            };
            // What upstream said is cached: decide from it, with this request's filter.
            self.decide_fresh(input, trace, d, Some(&hit.answers));
            if d.status == PENDING {
                return; // this request needs names the cached lookup did not ask
            }
            self.cache.count_hit();
            d.mark_cached(&hit, trace);
        }
        self.finish(d);
        if let Some(t) = started {
            self.stats.duration.observe(t.elapsed());
        }
    }

    /// Empties `d` and decides into it with the upstream answers fetched so far (none:
    /// the synchronous path, where any upstream name leaves the decision pending).
    /// Returns the upstream names still to fetch (empty: the decision is made).
    fn decide_fresh(
        &self,
        input: &str,
        trace: bool,
        d: &mut Decision,
        fetched: Option<&cache::Answers>,
    ) -> Vec<String> {
        d.reset();
        if trace {
            d.input.push_str(input);
        }
        let mut up = UpCtx {
            fetched,
            missing: Vec::new(),
            failed: None,
        };
        self.decide(input, trace, d, &mut up);
        up.missing
    }

    fn finish(&self, d: &mut Decision) {
        d.reason = reason_phrase(d.status);
        self.stats.count_decision(d.status, d.source);
    }

    /// The whole decision, asking upstream DNS when local zones and the cache cannot
    /// answer: concurrent calls for one number share one lookup (untraced), and the
    /// answers are cached by their kind's TTL. `enum.timeout_ms` bounds the lookup.
    pub async fn route_full(&self, input: &str, trace: bool) -> Decision {
        let started = crate::metrics::start_timer();
        let mut d = Decision::default();
        self.route_into(input, trace, &mut d);
        if !d.is_pending() {
            return d;
        }
        let number = d.number.take().unwrap_or_default();
        let mut d = self.route_upstream(input, &number, trace).await;
        self.finish(&mut d);
        if let Some(t) = started {
            self.stats.duration.observe(t.elapsed());
        }
        d
    }

    /// The rest of [`Router::route_full`] for a decision left pending: the answers for
    /// `number` from the cache or upstream, then the decision from them with this
    /// request's own filter. Not yet counted ([`Router::finish`]).
    async fn route_upstream(&self, input: &str, number: &str, trace: bool) -> Decision {
        if trace {
            // Traced (CLI, admin API): every upstream step in the trace, then stored.
            self.cache.count_miss();
            let (answers, mut d) = self
                .fetch_and_decide(input, true, cache::Answers::new())
                .await;
            self.cache.store(number, answers);
            d.trace.insert(
                0,
                TraceStep::Cache {
                    result: "miss",
                    ttl: None,
                },
            );
            return d;
        }
        let (cached, hit) = self
            .cache
            .get_or_resolve(number, || async {
                self.fetch_and_decide(input, false, cache::Answers::new())
                    .await
                    .0
            })
            .await;
        let mut d = Decision::default();
        let missing = self.decide_fresh(input, false, &mut d, Some(&cached.answers));
        if !missing.is_empty() {
            // Another request's filter stopped the shared lookup earlier than this one
            // may stop: fetch the rest, starting from what is known, kept no longer than
            // the answers it starts from.
            self.cache.count_miss();
            let (answers, d) = self
                .fetch_and_decide(input, false, cached.answers.clone())
                .await;
            self.cache.store_within(number, answers, cached.ttl_left());
            return d;
        }
        if hit {
            self.cache.count_hit();
            d.mark_cached(&cached, false);
        }
        d
    }

    /// Decides with upstream answers, fetching the names the decision asks for until it
    /// needs none (suffix by suffix, hop by hop), within `enum.timeout_ms` in all.
    /// Returns every answer fetched (those passed in included) and the decision made
    /// from them, not yet counted.
    async fn fetch_and_decide(
        &self,
        input: &str,
        trace: bool,
        mut fetched: cache::Answers,
    ) -> (cache::Answers, Decision) {
        let plan = self.plan.load_full();
        let mut d = Decision::default();
        let Some(upstream) = plan.upstream.clone() else {
            self.decide_fresh(input, trace, &mut d, None);
            return (fetched, d);
        };
        let deadline = tokio::time::Instant::now() + upstream.timeout;
        // Each round adds at least one name; suffixes plus hops bound the rounds.
        for _round in 0..32 {
            let missing = self.decide_fresh(input, trace, &mut d, Some(&fetched));
            if missing.is_empty() {
                return (fetched, d);
            }
            for key in missing {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let started = crate::metrics::start_timer();
                let answer = match Name::from_text(&key) {
                    Ok(name) if !left.is_zero() => upstream.naptr(&name, left).await,
                    Ok(_) => upstream::Answer::Failed(upstream::Failure::Timeout),
                    Err(e) => upstream::Answer::Failed(upstream::Failure::Other(e.to_string())),
                };
                let suffix = plan
                    .suffixes
                    .iter()
                    .map(|(_, text)| &**text)
                    .find(|text| under_suffix(&key, text))
                    .unwrap_or("other");
                let elapsed = started.map(|t| t.elapsed());
                self.stats
                    .count_upstream(suffix, &key, &upstream.servers, &answer, elapsed);
                fetched.insert(key, answer);
            }
        }
        let d = Decision {
            status: 503,
            detail: "upstream ENUM lookup did not converge".into(),
            ..Decision::default()
        };
        (fetched, d)
    }

    fn decide(&self, input: &str, trace: bool, d: &mut Decision, up: &mut UpCtx<'_>) {
        let plan = self.plan.load();
        let plan: &RoutingPlan = &plan;
        let mut e164 = std::mem::take(&mut d.scratch.number);
        let scheme = match number::extract_into(input, &mut e164) {
            Ok(scheme) => scheme,
            Err(e) => {
                d.status = e.status();
                d.detail = e.to_string().into();
                d.scratch.number = e164;
                return;
            }
        };
        let dialled_text = trace.then(|| e164.clone());
        let rule = match number::normalize_in_place(&mut e164, &plan.dialplan) {
            Ok(rule) => rule,
            Err(e) => {
                d.status = e.status();
                d.detail = e.to_string().into();
                if let Some(text) = dialled_text {
                    d.trace.push(TraceStep::Number {
                        dialled: text,
                        scheme,
                        rule: None,
                        result: e.to_string(),
                    });
                }
                d.scratch.number = e164;
                return;
            }
        };
        if let Some(text) = dialled_text {
            d.trace.push(TraceStep::Number {
                dialled: text,
                scheme,
                rule,
                result: e164.clone(),
            });
        }
        let filter = ContactFilter::new(
            scheme == Some("sips"),
            scheme.is_some().then(|| input.trim_ascii()),
        );
        let zones = self.zones.load();
        let mut ddds = Ddds::new(&e164, &plan.services, &plan.gateways, filter.clone(), trace)
            .with_spare(std::mem::take(&mut d.scratch.spare_uris));
        let mut candidates = std::mem::take(&mut d.scratch.candidates);
        candidates.clear();
        let mut negative_ttl = u32::MAX;

        // Suffix chain (SPEC §10.1): local zones' ENUM suffixes not configured, then
        // the configured ones.
        let configured = &plan.suffixes;
        let local_only = zones
            .enum_suffixes()
            .iter()
            .filter(|(s, _)| !configured.iter().any(|(c, _)| c.eq_ignore_case(s)));
        let mut labels: smallvec::SmallVec<[&[u8]; 32]> = smallvec::SmallVec::new();
        let mut key = std::mem::take(&mut d.scratch.upstream_key);
        let chain = local_only
            .map(|(s, t)| (s, t, false))
            .chain(configured.iter().map(|(s, t)| (s, t, true)));
        for (suffix, suffix_text, is_configured) in chain {
            let n_suffix = suffix.label_count();
            let digits = &e164.as_bytes()[1..];
            if n_suffix + digits.len() > MAX_LABELS {
                continue;
            }
            labels.clear();
            labels.extend(suffix.labels().iter().rev().map(|l| &l[..]));
            labels.extend(digits.iter().map(|d| DIGIT_LABELS[(d - b'0') as usize]));
            let name = &labels[..];
            let answer = local_naptr(&zones, name);
            let domain = || {
                let mut s = String::new();
                for l in name.iter().rev() {
                    s.push_str(&String::from_utf8_lossy(l));
                    s.push('.');
                }
                s
            };
            // The trace entry for this lookup (built only when tracing).
            let step = |via, zone: Option<&Zone>, result, ttl, records, note: Option<&str>| {
                TraceStep::Lookup {
                    suffix: suffix.to_string(),
                    domain: domain(),
                    via,
                    zone: zone.map(|z| z.origin.to_string()),
                    result,
                    ttl,
                    records,
                    note: note.map(str::to_string),
                }
            };
            let upstream_name = matches!(
                answer,
                LocalAnswer::NotLocal | LocalAnswer::Delegated { .. }
            ) && is_configured
                && plan.upstream.is_some();
            if upstream_name {
                // The name as the answers are keyed, in a buffer kept between decisions.
                key.clear();
                for l in name.iter().rev() {
                    key.push_str(&String::from_utf8_lossy(l));
                    key.push('.');
                }
                key.make_ascii_lowercase();
                let Some(found) = up.fetched.and_then(|f| f.get(key.as_str())) else {
                    // Only the asynchronous path fetches names; the synchronous one
                    // only needs to know that one is missing.
                    up.missing.push(match up.fetched {
                        Some(_) => key.clone(),
                        None => String::new(),
                    });
                    break;
                };
                let servers = plan.upstream.as_ref().map(|u| u.servers.as_str());
                match found {
                    upstream::Answer::Records { rdatas, ttl } => {
                        let rdatas: smallvec::SmallVec<[&[u8]; 8]> =
                            rdatas.iter().map(|r| &r[..]).collect();
                        if trace {
                            let records = rdatas
                                .iter()
                                .map(|r| crate::zone::rdata_presentation(TYPE_NAPTR, r))
                                .collect();
                            d.trace.push(step(
                                "upstream",
                                None,
                                "answer",
                                Some(*ttl),
                                records,
                                servers,
                            ));
                        }
                        let domain_name = if trace || rdatas.iter().any(|r| is_non_terminal(r)) {
                            Name::from_text(&key).unwrap_or_default()
                        } else {
                            Name::root()
                        };
                        let source = LocalSource::new(&zones, up.fetched, true);
                        let Some(added) = evaluate_rrset(
                            &mut ddds,
                            source,
                            &domain_name,
                            &rdatas,
                            *ttl,
                            &mut candidates,
                            &mut d.trace,
                            up,
                        ) else {
                            break;
                        };
                        if added > 0 {
                            d.source = Source::Upstream;
                            d.suffix = Some(refill(&mut d.scratch.suffix, suffix_text));
                            break;
                        }
                    }
                    upstream::Answer::Negative { nxdomain, ttl } => {
                        negative_ttl = negative_ttl.min(*ttl);
                        if trace {
                            let result = if *nxdomain { "nxdomain" } else { "nodata" };
                            d.trace.push(step(
                                "upstream",
                                None,
                                result,
                                Some(*ttl),
                                Vec::new(),
                                servers,
                            ));
                        }
                    }
                    upstream::Answer::Failed(f) => {
                        up.failed = up.failed.or(Some(f.as_str()));
                        if trace {
                            let note = match f {
                                upstream::Failure::Other(text) => {
                                    format!("{}: {text}", servers.unwrap_or(""))
                                }
                                _ => servers.unwrap_or("").to_string(),
                            };
                            d.trace.push(step(
                                "upstream",
                                None,
                                f.as_str(),
                                None,
                                Vec::new(),
                                Some(&note),
                            ));
                        }
                    }
                }
                continue;
            }
            match answer {
                LocalAnswer::NotLocal => {
                    if trace {
                        let (via, note) = if is_configured {
                            (
                                "upstream",
                                "no local zone holds this name and no upstream ENUM resolver is configured",
                            )
                        } else {
                            (
                                "local",
                                "no local zone holds this name; the suffix is not in enum.suffixes, so it is not asked upstream",
                            )
                        };
                        d.trace
                            .push(step(via, None, "not_queried", None, Vec::new(), Some(note)));
                    }
                }
                LocalAnswer::Delegated { zone } => {
                    if trace {
                        d.trace.push(step(
                            "local",
                            Some(zone),
                            "delegated",
                            None,
                            Vec::new(),
                            Some("the name is delegated away from the local zone and no upstream ENUM resolver is configured"),
                        ));
                    }
                }
                LocalAnswer::Negative {
                    zone,
                    ttl,
                    nxdomain,
                } => {
                    negative_ttl = negative_ttl.min(ttl);
                    if trace {
                        let result = if nxdomain { "nxdomain" } else { "nodata" };
                        d.trace.push(step(
                            "local",
                            Some(zone),
                            result,
                            Some(ttl),
                            Vec::new(),
                            None,
                        ));
                    }
                }
                LocalAnswer::Records {
                    zone,
                    rdatas,
                    ttl,
                    wildcard,
                } => {
                    let domain_name = if trace || rdatas.iter().any(|r| is_non_terminal(r)) {
                        Name::from_text(&domain()).unwrap_or_default()
                    } else {
                        Name::root()
                    };
                    if trace {
                        let result = if wildcard { "wildcard" } else { "answer" };
                        let records = rdatas
                            .iter()
                            .map(|r| crate::zone::rdata_presentation(TYPE_NAPTR, r))
                            .collect();
                        d.trace
                            .push(step("local", Some(zone), result, Some(ttl), records, None));
                    }
                    let source = LocalSource::new(&zones, up.fetched, plan.upstream.is_some());
                    let Some(added) = evaluate_rrset(
                        &mut ddds,
                        source,
                        &domain_name,
                        &rdatas,
                        ttl,
                        &mut candidates,
                        &mut d.trace,
                        up,
                    ) else {
                        break;
                    };
                    if added > 0 {
                        d.source = Source::Local;
                        // Copied into recycled buffers: sharing the zone's Arc would make
                        // every SIP worker write the same reference count.
                        d.zone = Some(refill(&mut d.scratch.zone, &zone.origin_text));
                        d.suffix = Some(refill(&mut d.scratch.suffix, suffix_text));
                        break;
                    }
                }
            }
        }
        d.scratch.upstream_key = key;
        if ddds.skips.iter().any(|n| *n > 0) {
            for (i, n) in ddds.skips.iter().enumerate() {
                if *n > 0 {
                    self.stats.skips.add(i, u64::from(*n));
                }
            }
        }
        let ddds_ttl = ddds.ttl;
        d.scratch.spare_uris = ddds.take_spare();
        drop(ddds);
        if !up.missing.is_empty() {
            // Upstream answers are needed first: nothing is decided yet.
            candidates.clear();
            d.scratch.candidates = candidates;
            d.status = PENDING;
            d.number = Some(e164);
            return;
        }
        let reject = up.failed.is_some()
            && candidates.is_empty()
            && plan.on_failure == crate::config::OnFailure::Reject;
        if reject {
            d.status = 503;
            d.source = Source::None;
            d.detail = if trace {
                format!(
                    "upstream ENUM lookup failed ({}); enum.on_failure = reject",
                    up.failed.unwrap_or("")
                )
                .into()
            } else {
                "upstream ENUM lookup failed".into()
            };
            d.scratch.candidates = candidates;
            d.number = Some(e164);
            return;
        }
        if !candidates.is_empty() {
            d.ttl = ddds_ttl;
            d.status = 302;
            d.detail = if trace {
                match candidates.len() {
                    1 => "1 route from ENUM".into(),
                    n => format!("{n} routes from ENUM").into(),
                }
            } else {
                "routes from ENUM".into()
            };
        } else {
            // No usable record anywhere: the gateway for the called number.
            let ttl = negative_ttl.min(ddds_ttl);
            d.ttl = if ttl == u32::MAX { 0 } else { ttl };
            let gw = plan.gateways.find(&e164);
            if let Some(gw) = gw {
                // In list order: q 1.0, 0.9, … (SPEC §10.30), ranked after filtering.
                candidates.extend(
                    gw.uris
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (i, Gateways::expand(t, &e164, "")))
                        .filter(|(_, u)| filter.allows(u))
                        .map(|(i, uri)| Candidate {
                            uri,
                            rank: RankKey::nth(i),
                        }),
                );
                if trace {
                    d.trace.push(TraceStep::Gateway {
                        prefix: gw.prefix.clone(),
                        number: e164.clone(),
                        uris: candidates.iter().map(|c| c.uri.clone()).collect(),
                    });
                }
            }
            match gw.filter(|_| !candidates.is_empty()) {
                Some(gw) => {
                    d.status = 302;
                    d.source = Source::Gateway;
                    d.detail = if trace {
                        format!("no usable ENUM record; gateway {}", gw.prefix).into()
                    } else {
                        "no usable ENUM record; gateway".into()
                    };
                }
                None if up.failed.is_some() => {
                    // We do not know the number is absent: try again later.
                    d.status = 503;
                    d.source = Source::None;
                    d.detail = "upstream ENUM lookup failed and no gateway for the number".into();
                }
                None => {
                    d.status = 404;
                    d.source = Source::None;
                    d.detail = if trace {
                        format!("no usable ENUM record for {e164} and no gateway for it").into()
                    } else {
                        "no usable ENUM record and no gateway".into()
                    };
                }
            }
        }
        let total = candidates.len();
        push_ranked(plan.max_contacts, &mut candidates, &mut d.contacts);
        if trace && total > d.contacts.len() {
            d.trace.push(TraceStep::Truncated {
                kept: d.contacts.len(),
                dropped: total - d.contacts.len(),
            });
        }
        d.scratch.candidates = candidates;
        d.number = Some(e164);
    }
}

/// Runs DDDS on one NAPTR RRset: its record steps join the decision's `trace`, an
/// upstream failure met on a non-terminal chain joins `up`. Returns the contacts added,
/// or `None` when the chain needs upstream names not fetched yet (they are in
/// `up.missing`, and the decision waits for them).
#[allow(clippy::too_many_arguments)]
fn evaluate_rrset(
    ddds: &mut Ddds<'_>,
    mut source: LocalSource<'_>,
    domain: &Name,
    rdatas: &[&[u8]],
    ttl: u32,
    candidates: &mut Vec<Candidate>,
    trace: &mut Vec<TraceStep>,
    up: &mut UpCtx<'_>,
) -> Option<usize> {
    let added = ddds.evaluate(domain, rdatas, ttl, &mut source, candidates);
    if let Some(t) = ddds.trace.as_mut() {
        trace.extend(t.drain(..).map(TraceStep::Record));
    }
    up.failed = up.failed.or(source.failed);
    if source.missing.is_empty() {
        Some(added)
    } else {
        up.missing.append(&mut source.missing);
        None
    }
}

/// Sorts `candidates` by rank (stable), gives dense q-values by rank and appends the
/// first `max_contacts` to `contacts` (SPEC §10.3: the cut counts every contact, ties
/// included). Leaves `candidates` empty with its capacity.
fn push_ranked(max_contacts: usize, candidates: &mut Vec<Candidate>, contacts: &mut Vec<Contact>) {
    candidates.sort_by_key(|c| c.rank);
    candidates.truncate(max_contacts);
    let mut rank = 0;
    let mut prev = None;
    contacts.extend(candidates.drain(..).map(|c| {
        if prev.is_some_and(|p| p != c.rank) {
            rank += 1;
        }
        prev = Some(c.rank);
        Contact {
            uri: c.uri,
            q: Q::for_rank(rank),
        }
    }));
}

/// The ranked contacts for a list of candidates (see [`push_ranked`]).
pub fn rank_contacts(max_contacts: usize, mut candidates: Vec<Candidate>) -> Vec<Contact> {
    let mut contacts = Vec::with_capacity(candidates.len().min(max_contacts));
    push_ranked(max_contacts, &mut candidates, &mut contacts);
    contacts
}

fn is_non_terminal(rdata: &[u8]) -> bool {
    crate::naptr::NaptrRef::parse(rdata).is_some_and(|n| n.flags.is_empty())
}

impl Decision {
    /// Whether the decision waits for upstream DNS (see [`Router::route_full`]).
    pub fn is_pending(&self) -> bool {
        self.status == PENDING
    }

    /// Marks a decision made from cached answers: source `cache`, the seconds the entry
    /// has left, and (traced) a cache step first.
    fn mark_cached(&mut self, cached: &cache::Cached, trace: bool) {
        let left = cached.ttl_left();
        self.source = Source::Cache;
        self.ttl = left;
        if trace {
            self.trace.insert(
                0,
                TraceStep::Cache {
                    result: "hit",
                    ttl: Some(left),
                },
            );
        }
    }

    /// Human-readable form, as `enroute route` prints it.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "{} {}", self.status, self.reason);
        for c in &self.contacts {
            let _ = writeln!(s, "Contact: <{}>;q={}", c.uri, c.q);
        }
        let _ = writeln!(s, "number: {}", self.number.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "source: {}", self.source.as_str());
        let _ = writeln!(s, "zone: {}", self.zone.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "suffix: {}", self.suffix.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "ttl: {}", self.ttl);
        let _ = writeln!(s, "detail: {}", self.detail);
        if !self.trace.is_empty() {
            let _ = writeln!(s, "trace:");
        }
        for t in &self.trace {
            match t {
                TraceStep::Number {
                    dialled,
                    scheme,
                    rule,
                    result,
                } => {
                    let _ = writeln!(
                        s,
                        "  number: {}{dialled:?} -> {result}{}",
                        scheme.map(|x| format!("{x}: ")).unwrap_or_default(),
                        rule.map(|r| format!(" (dial-plan rule {r})"))
                            .unwrap_or_default()
                    );
                }
                TraceStep::Lookup {
                    suffix,
                    domain,
                    via,
                    zone,
                    result,
                    ttl,
                    records,
                    note,
                } => {
                    let _ = writeln!(
                        s,
                        "  lookup {domain} NAPTR (suffix {suffix}, {via}{}): {result}{}",
                        zone.as_ref()
                            .map(|z| format!(" zone {z}"))
                            .unwrap_or_default(),
                        ttl.map(|t| format!(", ttl {t}")).unwrap_or_default()
                    );
                    for r in records {
                        let _ = writeln!(s, "    NAPTR {r}");
                    }
                    if let Some(n) = note {
                        let _ = writeln!(s, "    ({n})");
                    }
                }
                TraceStep::Record(r) => {
                    let _ = writeln!(
                        s,
                        "  {}record {} at {}: {}: {}",
                        "  ".repeat(r.depth),
                        r.naptr,
                        r.domain,
                        r.outcome,
                        r.detail
                    );
                }
                TraceStep::Gateway {
                    prefix,
                    number,
                    uris,
                } => {
                    let _ = writeln!(
                        s,
                        "  gateway {prefix} for {number}: {}",
                        if uris.is_empty() {
                            "no allowed URI".into()
                        } else {
                            uris.join(", ")
                        }
                    );
                }
                TraceStep::Cache { result, ttl } => {
                    let _ = writeln!(
                        s,
                        "  cache: {result}{}",
                        ttl.map(|t| format!(" ({t} s left)")).unwrap_or_default()
                    );
                }
                TraceStep::Truncated { kept, dropped } => {
                    let _ = writeln!(s, "  sip.max_contacts kept {kept}, dropped {dropped}");
                }
            }
        }
        s
    }
}
