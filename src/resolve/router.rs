//! The router: the one routing function SIP, `enroute route` and the admin API all call
//! (SPEC §1: the three never disagree), the suffix chain (SPEC §10.1), DDDS over each
//! answer, the gateway fallback, the failure policy and the contact limit.
//!
//! Every decision, whether its upstream answers come from the wire or the cache, is
//! made by the same `decide` from those answers and the request's own filter (a `sips:`
//! Request-URI, a contact equal to the Request-URI), so what one request filters never
//! shows in another's answer.
//!
//! Must not touch: sockets, SIP messages, or zone storage. Local zones are read through a
//! lock-free snapshot taken once per decision.

use super::cache;
use super::ddds::{Candidate, ContactFilter, Ddds, RankKey};
use super::decision::{Decision, PENDING, Source, TraceStep, push_ranked, reason_phrase, refill};
use super::gateway::Gateways;
use super::local::{LocalAnswer, LocalSource, local_naptr};
use super::number;
use super::plan::RoutingPlan;
use super::stats::RouteStats;
use super::upstream;
use crate::config::Config;
use crate::name::{Name, TYPE_NAPTR};
use crate::zone::{Zone, ZoneSet};
use std::sync::Arc;

/// Whether the domain `name` lies under `suffix` (both absolute, any case).
fn under_suffix(name: &str, suffix: &str) -> bool {
    let (n, s) = (name.as_bytes(), suffix.as_bytes());
    n.len() > s.len()
        && n[n.len() - s.len()..].eq_ignore_ascii_case(s)
        && (s == b"." || n[n.len() - s.len() - 1] == b'.')
}

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

fn is_non_terminal(rdata: &[u8]) -> bool {
    crate::naptr::NaptrRef::parse(rdata).is_some_and(|n| n.flags.is_empty())
}
