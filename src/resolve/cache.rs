//! The decision cache: what upstream DNS said about a number, keyed by the E.164
//! number, with one lookup per number at a time.
//!
//! Owns: the moka cache (bounded by `cache.capacity`, each entry expiring after its own
//! TTL: the answers' lowest record TTL capped by `max_ttl_s`, negative answers by
//! `negative_ttl_s`, failures for `failure_ttl_s`; an entry replaced by more answers
//! never outlives the answers it already held), the in-flight map that makes concurrent
//! misses for one number share one lookup, and dropping one entry or all (reload, admin
//! changes). Local answers are never cached (SPEC §10.17): the index
//! answers them faster than a cache would.
//!
//! An entry holds the upstream answers a decision was made from, by name, not the
//! decision itself: what one request filters (a `sips:` Request-URI, a contact equal
//! to its Request-URI) must never change what another request for the same number gets,
//! so every request decides from the cached answers with its own filter.
//!
//! Must not touch: how a decision is made (the `Router` passes the lookup in) or DNS.
//! The in-flight lock is held only to find or remove an entry, never across an await.

use super::upstream::Answer;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upstream answers by name (lower case, absolute, presentation form), as fetched while
/// deciding for one number: every suffix asked and every non-terminal hop followed.
pub type Answers = HashMap<String, Answer>;

/// What kind of outcome the answers are, which sets how long they are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Some name had records: their lowest TTL, capped by `max_ttl_s`.
    Positive,
    /// Only NXDOMAIN/NODATA: the lowest negative TTL, capped by `negative_ttl_s`.
    Negative,
    /// Some lookup failed (timeout, SERVFAIL): `failure_ttl_s`, whatever else came back,
    /// since the decision was made without an answer it asked for.
    Failure,
}

impl Kind {
    /// The kind of a set of answers and the TTL their records (or negative answers) said.
    pub fn of(answers: &Answers) -> (Kind, u32) {
        let (mut positive, mut negative, mut failed) = (None::<u32>, None::<u32>, false);
        for answer in answers.values() {
            match answer {
                Answer::Records { ttl, .. } => {
                    positive = Some(positive.map_or(*ttl, |t| t.min(*ttl)))
                }
                Answer::Negative { ttl, .. } => {
                    negative = Some(negative.map_or(*ttl, |t| t.min(*ttl)))
                }
                Answer::Failed(_) => failed = true,
            }
        }
        match (failed, positive) {
            (true, _) => (Kind::Failure, 0),
            (false, Some(ttl)) => (Kind::Positive, ttl),
            (false, None) => (Kind::Negative, negative.unwrap_or(0)),
        }
    }
}

/// Cached answers and how long they are kept.
#[derive(Debug)]
pub struct Cached {
    pub answers: Answers,
    pub kind: Kind,
    /// Seconds the entry lives (0: not cached).
    pub ttl: u32,
    pub stored: std::time::Instant,
}

impl Cached {
    /// Seconds the entry has left.
    pub fn ttl_left(&self) -> u32 {
        u64::from(self.ttl).saturating_sub(self.stored.elapsed().as_secs()) as u32
    }
}

struct PerEntryTtl;

impl moka::Expiry<Box<str>, Arc<Cached>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Box<str>,
        value: &Arc<Cached>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(value.ttl)))
    }

    /// A replaced entry lives by its own TTL too (moka's default keeps the old deadline).
    fn expire_after_update(
        &self,
        _key: &Box<str>,
        value: &Arc<Cached>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(value.ttl)))
    }
}

/// TTL limits from `[cache]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_ttl_s: u32,
    pub negative_ttl_s: u32,
    pub failure_ttl_s: u32,
}

type Flight = Arc<tokio::sync::OnceCell<Arc<Cached>>>;

/// Upstream answers by number, shared by every worker.
pub struct DecisionCache {
    entries: moka::sync::Cache<Box<str>, Arc<Cached>>,
    inflight: Mutex<HashMap<Box<str>, Flight>>,
    limits: Limits,
    /// Lookups through [`DecisionCache::get`]: [hits, misses].
    counts: crate::metrics::Counters<2>,
}

impl DecisionCache {
    pub fn new(capacity: u64, limits: Limits) -> Self {
        DecisionCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(PerEntryTtl)
                .build(),
            inflight: Mutex::new(HashMap::new()),
            limits,
            counts: Default::default(),
        }
    }

    /// The entry's lifetime for answers of `kind` whose records said `ttl`.
    pub fn ttl_for(&self, kind: Kind, ttl: u32) -> u32 {
        match kind {
            Kind::Positive => ttl.min(self.limits.max_ttl_s),
            Kind::Negative => ttl.min(self.limits.negative_ttl_s),
            Kind::Failure => self.limits.failure_ttl_s,
        }
    }

    /// The cached answers for `number`, if any (no lookup, nothing counted: the caller
    /// counts a hit with [`DecisionCache::count_hit`] once the answers settled its
    /// decision; a miss is counted where the lookup it leads to starts
    /// ([`DecisionCache::get_or_resolve`], [`DecisionCache::count_miss`])).
    pub fn peek(&self, number: &str) -> Option<Arc<Cached>> {
        self.entries.get(number)
    }

    /// Counts a decision settled by cached answers.
    pub fn count_hit(&self) {
        self.counts.inc(0);
    }

    /// Counts a miss that leads to a lookup outside [`DecisionCache::get_or_resolve`].
    pub fn count_miss(&self) {
        self.counts.inc(1);
    }

    /// The cached answers for `number`, or those `resolve` fetches — run once for all
    /// callers asking for the same number meanwhile — stored when their TTL allows.
    /// Returns whether it was a cache hit (counted by the caller, once the answers
    /// settled its decision; a miss is counted here).
    pub async fn get_or_resolve<F, Fut>(&self, number: &str, resolve: F) -> (Arc<Cached>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Answers>,
    {
        if let Some(hit) = self.entries.get(number) {
            return (hit, true);
        }
        self.counts.inc(1);
        let flight = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(number.into()).or_default().clone()
        };
        let value = flight
            .get_or_init(|| async { self.store(number, resolve().await) })
            .await
            .clone();
        {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(number).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                map.remove(number);
            }
        }
        (value, false)
    }

    /// Keeps `answers` for `number` as long as their kind's TTL allows (not at all when
    /// it is 0), replacing what was there; returns them as an entry either way.
    pub fn store(&self, number: &str, answers: Answers) -> Arc<Cached> {
        self.store_within(number, answers, u32::MAX)
    }

    /// As [`DecisionCache::store`], living at most `at_most` seconds: answers that add to
    /// an entry keep its older answers no longer than that entry had left.
    pub fn store_within(&self, number: &str, answers: Answers, at_most: u32) -> Arc<Cached> {
        let (kind, ttl) = Kind::of(&answers);
        let ttl = self.ttl_for(kind, ttl).min(at_most);
        let cached = Arc::new(Cached {
            answers,
            kind,
            ttl,
            stored: std::time::Instant::now(),
        });
        if ttl > 0 {
            self.entries.insert(number.into(), cached.clone());
        }
        cached
    }

    /// Drops the answers for one number.
    pub fn invalidate(&self, number: &str) {
        self.entries.invalidate(number);
    }

    /// Drops every entry (reload, prefix changes).
    pub fn invalidate_all(&self) {
        self.entries.invalidate_all();
    }

    /// Entries held (approximate, as moka counts).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl crate::metrics::Source for DecisionCache {
    fn families(&self, out: &mut Vec<crate::metrics::Family>) {
        use crate::metrics::Family;
        let (hits, misses) = (self.counts.get(0), self.counts.get(1));
        out.push(
            Family::counter(
                "enroute_cache_hits_total",
                "Decisions that needed upstream DNS found in the cache.",
                &[],
            )
            .with(&[], hits as f64),
        );
        out.push(
            Family::counter(
                "enroute_cache_misses_total",
                "Decisions that needed upstream DNS not found in the cache.",
                &[],
            )
            .with(&[], misses as f64),
        );
        out.push(
            Family::gauge(
                "enroute_cache_entries",
                "Numbers whose upstream answers are held in the cache.",
                &[],
            )
            .with(&[], self.len() as f64),
        );
    }
}
