//! The router: the one routing function SIP, `enroute route` and the admin API all call
//! (SPEC §1: the three never disagree). It takes the routing plan and a snapshot of the
//! local zones, has [`decide`](super::decide) make the decision, and around that owns
//! the asynchronous part: the decision cache, fetching upstream names a decision waits
//! for (within `enum.timeout_ms`), and counting.
//!
//! Every decision, whether its upstream answers come from the wire or the cache, is
//! made by the same `decide` from those answers and the request's own filter (a `sips:`
//! Request-URI, a contact equal to the Request-URI), so what one request filters never
//! shows in another's answer.
//!
//! Must not touch: sockets, SIP messages, or zone storage. Local zones are read through a
//! lock-free snapshot taken once per decision.

use super::aor::Registered;
use super::cache;
use super::decide::{UpCtx, decide};
use super::decision::{Decision, PENDING, TraceStep, Tracer, reason_phrase};
use super::plan::RoutingPlan;
use super::stats::RouteStats;
use super::upstream;
use crate::config::Config;
use crate::name::Name;
use crate::registrar::Location;
use crate::zone::ZoneSet;
use std::sync::Arc;

/// Whether the domain `name` lies under `suffix` (both absolute, any case).
fn under_suffix(name: &str, suffix: &str) -> bool {
    let (n, s) = (name.as_bytes(), suffix.as_bytes());
    n.len() > s.len()
        && n[n.len() - s.len()..].eq_ignore_ascii_case(s)
        && (s == b"." || n[n.len() - s.len() - 1] == b'.')
}

/// The one routing function's owner.
pub struct Router {
    zones: Arc<ZoneSet>,
    /// Swapped whole on reload; read once per decision.
    plan: arc_swap::ArcSwap<RoutingPlan>,
    stats: Arc<RouteStats>,
    /// Decisions that needed upstream DNS.
    cache: Arc<cache::DecisionCache>,
    /// The registrar's bindings and its domains, consulted first (SPEC §11).
    registrar: Option<(Arc<Location>, Vec<String>)>,
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
            registrar: None,
        }
    }

    /// Routes an AOR with live bindings (`registrar.domains`) to them before anything
    /// else.
    pub fn with_registrar(mut self, location: Arc<Location>, domains: Vec<String>) -> Self {
        self.registrar = Some((location, domains));
        self
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
        let plan = self.plan.load();
        let tracer = Tracer::new(trace);
        let reg = self
            .registrar
            .as_ref()
            .map(|(location, domains)| Registered { location, domains });
        decide(
            &plan,
            &self.zones,
            &self.stats,
            input,
            tracer,
            d,
            &mut up,
            reg.as_ref(),
        );
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
}
