//! Counters of what the router did, read by the metrics layer: decisions by outcome and
//! source, decision time, DDDS skips, and upstream lookups by suffix and result.
//!
//! Owns: the counter layout and the metric families it exports. Must not touch: the
//! decision itself (the router and `decide` count into it) or any I/O beyond its rate-limited
//! warning for upstream failures.

use super::ddds::SkipReason;
use super::decision::Source;
use super::upstream;
use crate::metrics::{Counters, Family, Histogram};
use std::sync::Arc;

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
    pub(super) duration: Histogram,
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
    pub(super) fn count_upstream(
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

    /// Counts one decision's DDDS skips (by [`SkipReason::ALL`] index).
    pub(super) fn count_skips(&self, skips: &[u32; SkipReason::ALL.len()]) {
        if skips.iter().any(|n| *n > 0) {
            for (i, n) in skips.iter().enumerate() {
                if *n > 0 {
                    self.skips.add(i, u64::from(*n));
                }
            }
        }
    }

    /// Decisions from `source`, any outcome.
    pub fn decisions(&self, source: Source) -> u64 {
        let s = source_index(source);
        (0..OUTCOMES.len())
            .map(|o| self.decisions.get(o * Source::ALL.len() + s))
            .sum()
    }

    pub(super) fn count_decision(&self, status: u16, source: Source) {
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
