//! Prometheus metrics (SPEC §8): the counters the hot paths bump, and `/metrics` text.
//!
//! Owns: the counter and histogram types the SIP, DNS and routing paths count into
//! ([`Counters`], [`Histogram`]), the process-wide on/off switch (`metrics.enabled`),
//! and turning every subsystem's counters into Prometheus metric families when scraped
//! ([`Exporter`], a `prometheus::core::Collector` beside the crate's process collector).
//!
//! Must not touch: what is counted or why — each module counts its own events into its
//! own stats struct; this module only stores numbers and renders them.
//!
//! Why counters of our own rather than `prometheus::IntCounterVec`/`Histogram` on the
//! hot path: a labelled `IntCounterVec` hashes its label values on every `with_label_values`
//! (hundreds of nanoseconds against a 1.5 µs INVITE budget), and `Histogram::observe`
//! takes four atomic read-modify-writes plus an `f64` compare-and-swap loop, all on
//! cache lines every core shares. Here a label set is an array index fixed at compile
//! time, and each thread adds into its own cache-line-padded shard, so one count is one
//! uncontended `fetch_add`; the shards are summed only when Prometheus scrapes. The
//! crate still does the text format, the registry, the process metrics and the admin
//! API's counter (not a hot path).

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// `metrics.enabled`: when off, nothing is counted (the benchmark's "metrics off") and
/// `/metrics` answers 404.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether counting is on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns counting on or off for the whole process (set once at start).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Shards per counter set: more than the threads that count at once on most hosts;
/// threads beyond it share shards (still correct, a little contention).
const SHARDS: usize = 16;

/// One shard on cache lines of its own (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
struct Padded<T>(T);

/// The shard this thread counts into, assigned round-robin on first use. A `const`
/// thread-local of a `Cell`: no lazy registration, one load and a compare per count.
#[inline]
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

/// `N` monotonic counters (one label set each, by index), sharded per thread.
pub struct Counters<const N: usize> {
    shards: Box<[Padded<[AtomicU64; N]>; SHARDS]>,
}

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters {
            shards: Box::new(std::array::from_fn(|_| {
                Padded(std::array::from_fn(|_| AtomicU64::new(0)))
            })),
        }
    }
}

impl<const N: usize> Counters<N> {
    /// Adds `n` to counter `i` (ignored when out of range or metrics are off).
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        if enabled()
            && let Some(c) = self.shards[shard()].0.get(i)
        {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn inc(&self, i: usize) {
        self.add(i, 1);
    }

    /// Counter `i` summed over the shards.
    pub fn get(&self, i: usize) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.get(i).map_or(0, |c| c.load(Ordering::Relaxed)))
            .sum()
    }
}

/// Upper bounds of the latency buckets in nanoseconds (compared on the hot path; the
/// exposition gives them in seconds): from 5 µs, where a local-zone route decision
/// lands, to 5 s, past `enum.timeout_ms`'s default.
const LATENCY_BOUNDS_NS: [u64; 19] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// Slots: one per bound, `+Inf`, then the sum in nanoseconds.
const HIST_SLOTS: usize = LATENCY_BOUNDS_NS.len() + 2;
const SUM_SLOT: usize = HIST_SLOTS - 1;

/// A latency histogram with [`LATENCY_BOUNDS_NS`]: two `fetch_add`s per observation on
/// the thread's own shard.
#[derive(Default)]
pub struct Histogram {
    slots: Counters<HIST_SLOTS>,
}

impl Histogram {
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_NS.partition_point(|b| *b < ns);
        self.slots.inc(bucket);
        self.slots.add(SUM_SLOT, ns);
    }

    fn proto(&self) -> proto::Histogram {
        let mut h = proto::Histogram::default();
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_NS.len());
        for (i, bound) in LATENCY_BOUNDS_NS.iter().enumerate() {
            cumulative += self.slots.get(i);
            let mut b = proto::Bucket::default();
            b.set_upper_bound(*bound as f64 / 1e9);
            b.set_cumulative_count(cumulative);
            buckets.push(b);
        }
        cumulative += self.slots.get(LATENCY_BOUNDS_NS.len());
        h.set_bucket(buckets);
        h.set_sample_count(cumulative);
        h.set_sample_sum(self.slots.get(SUM_SLOT) as f64 / 1e9);
        h
    }
}

/// A start time when metrics are on (so "off" skips the clock reads too). From
/// `quanta`, which reads the CPU's time-stamp counter where it is invariant (calibrated
/// against the OS clock once) and the OS clock elsewhere: a pair of `std` clock reads
/// measured 50 ns on the test machine (a thirtieth of the 1.5 µs INVITE budget), a TSC
/// read about 10 ns.
#[inline]
pub fn start_timer() -> Option<quanta::Instant> {
    enabled().then(quanta::Instant::now)
}

/// One metric family as the collector builds it.
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
    metrics: Vec<proto::Metric>,
}

impl Family {
    pub fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            name,
            help,
            kind: MetricType::COUNTER,
            labels,
            metrics: Vec::new(),
        }
    }
    pub fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            kind: MetricType::GAUGE,
            ..Family::counter(name, help, labels)
        }
    }
    pub fn histogram(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            kind: MetricType::HISTOGRAM,
            ..Family::counter(name, help, labels)
        }
    }

    fn metric(&self, values: &[&str]) -> proto::Metric {
        let mut m = proto::Metric::default();
        m.set_label(
            self.labels
                .iter()
                .zip(values)
                .map(|(n, v)| {
                    let mut p = proto::LabelPair::default();
                    p.set_name(n.to_string());
                    p.set_value(v.to_string());
                    p
                })
                .collect(),
        );
        m
    }

    /// Adds one sample with these label values (in `labels` order).
    pub fn value(&mut self, values: &[&str], v: f64) -> &mut Self {
        let mut m = self.metric(values);
        if self.kind == MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        self.metrics.push(m);
        self
    }

    /// [`Family::value`], by value: `Family::counter(…).with(&[], n)`.
    pub fn with(mut self, values: &[&str], v: f64) -> Self {
        self.value(values, v);
        self
    }

    /// One sample per label in `labels` (the family's one label), from counter `i` of
    /// `counts` for the `i`-th; zero counters are left out unless `keep(i)`.
    pub fn per_label<const N: usize>(
        mut self,
        counts: &Counters<N>,
        labels: &[&str],
        keep: impl Fn(usize) -> bool,
    ) -> Self {
        for (i, label) in labels.iter().enumerate() {
            let n = counts.get(i);
            if n > 0 || keep(i) {
                self.value(&[label], n as f64);
            }
        }
        self
    }

    /// One sample per cell of a two-label grid (the family's labels, in `rows`, `cols`
    /// order), from counter `row * cols.len() + col` of `counts`; zero counters are
    /// left out unless `keep(row, col)`.
    pub fn per_cell<const N: usize>(
        mut self,
        counts: &Counters<N>,
        rows: &[&str],
        cols: &[&str],
        keep: impl Fn(usize, usize) -> bool,
    ) -> Self {
        for (r, row) in rows.iter().enumerate() {
            for (c, col) in cols.iter().enumerate() {
                let n = counts.get(r * cols.len() + c);
                if n > 0 || keep(r, c) {
                    self.value(&[row, col], n as f64);
                }
            }
        }
        self
    }

    pub fn histogram_value(&mut self, values: &[&str], h: &Histogram) -> &mut Self {
        let mut m = self.metric(values);
        m.set_histogram(h.proto());
        self.metrics.push(m);
        self
    }

    fn build(self) -> MetricFamily {
        let mut f = MetricFamily::default();
        f.set_name(self.name.to_string());
        f.set_help(self.help.to_string());
        f.set_field_type(self.kind);
        f.set_metric(self.metrics);
        f
    }

    fn desc(&self) -> Option<Desc> {
        Desc::new(
            self.name.to_string(),
            self.help.to_string(),
            self.labels.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .ok()
    }
}

/// Something whose counters become metric families at scrape time.
pub trait Source: Send + Sync {
    /// The families with their current values; the same names every call.
    fn families(&self, out: &mut Vec<Family>);
}

/// Adapts the sources to the prometheus registry.
struct Collected {
    sources: Vec<Arc<dyn Source>>,
    descs: Vec<Desc>,
}

impl Collector for Collected {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = Vec::new();
        for s in &self.sources {
            s.families(&mut families);
        }
        families
            .into_iter()
            .filter(|f| !f.metrics.is_empty())
            .map(Family::build)
            .collect()
    }
}

/// The registry `/metrics` renders: our sources, the process collector, and the admin
/// API's request counter.
pub struct Exporter {
    registry: prometheus::Registry,
    /// `enroute_admin_requests_total{route,status}`.
    pub admin_requests: prometheus::IntCounterVec,
}

impl Exporter {
    pub fn new(sources: Vec<Arc<dyn Source>>) -> Self {
        let registry = prometheus::Registry::new();
        let mut families = Vec::new();
        for s in &sources {
            s.families(&mut families);
        }
        let descs = families.iter().filter_map(Family::desc).collect();
        // Registration fails only for invalid or duplicate names, fixed at compile time
        // (the metrics test scrapes every family).
        if let Err(e) = registry.register(Box::new(Collected { sources, descs })) {
            tracing::error!("metrics: {e}");
        }
        #[cfg(target_os = "linux")]
        if let Err(e) = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::error!("metrics: process collector: {e}");
        }
        let admin_requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "enroute_admin_requests_total",
                "Admin API requests by route template and HTTP status.",
            ),
            &["route", "status"],
        )
        .expect("valid metric name and labels");
        if let Err(e) = registry.register(Box::new(admin_requests.clone())) {
            tracing::error!("metrics: {e}");
        }
        Exporter {
            registry,
            admin_requests,
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::with_capacity(16 * 1024);
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!("metrics: encoding failed: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Process-level facts: build version and reload results.
#[derive(Default)]
pub struct ProcessStats {
    /// SIGHUP reloads: [ok, failed].
    pub reloads: Counters<2>,
    /// 1 when the last reload applied, 0 when it was rejected.
    pub last_reload_ok: AtomicBool,
}

impl ProcessStats {
    pub fn new() -> Self {
        let s = ProcessStats::default();
        s.last_reload_ok.store(true, Ordering::Relaxed);
        s
    }

    /// Counts a SIGHUP reload that applied (`ok`) or was rejected.
    pub fn record_reload(&self, ok: bool) {
        self.reloads.inc(usize::from(!ok));
        self.last_reload_ok.store(ok, Ordering::Relaxed);
    }
}

impl Source for ProcessStats {
    fn families(&self, out: &mut Vec<Family>) {
        out.push(
            Family::gauge(
                "enroute_build_info",
                "Always 1; the version of the running binary.",
                &["version"],
            )
            .with(&[env!("CARGO_PKG_VERSION")], 1.0),
        );
        out.push(
            Family::counter(
                "enroute_reloads_total",
                "SIGHUP reloads by result (ok: applied; failed: rejected, old state kept).",
                &["result"],
            )
            .per_label(&self.reloads, &["ok", "failed"], |_| true),
        );
        let ok = self.last_reload_ok.load(Ordering::Relaxed);
        out.push(
            Family::gauge(
                "enroute_reload_last_success",
                "1 when the last SIGHUP reload applied (or none happened), 0 when it was rejected.",
                &[],
            )
            .with(&[], f64::from(u8::from(ok))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(3));
        h.observe(Duration::from_micros(7));
        h.observe(Duration::from_secs(9));
        let p = h.proto();
        assert_eq!(p.get_sample_count(), 3);
        let b = p.get_bucket();
        assert_eq!(b[0].cumulative_count(), 1); // ≤ 5 µs
        assert_eq!(b[1].cumulative_count(), 2); // ≤ 10 µs
        assert_eq!(b.last().unwrap().cumulative_count(), 2); // 9 s is only in +Inf
        assert!((p.get_sample_sum() - 9.00001).abs() < 1e-9);
    }

    #[test]
    fn counters_sum_over_threads() {
        let c = Arc::new(Counters::<3>::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.inc(1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(1), 4000);
        assert_eq!(c.get(0), 0);
        c.inc(7); // out of range: ignored
    }
}
