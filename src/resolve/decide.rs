//! One decision, step by step, from the local zones and the upstream answers fetched so
//! far: the number ([`dial`]), the suffix chain (SPEC §10.1: the local zones' ENUM
//! suffixes that are not configured, then `enum.suffixes`), DDDS over the first answer
//! that gives contacts, then the conclusion — pending (upstream names needed), the
//! failure policy, the ENUM routes or the gateway fallback, and the contact limit.
//!
//! Owns: the order of those steps and what each writes into the [`Decision`] and its
//! trace (through one [`Tracer`], so the untraced SIP path builds no trace text).
//! Must not touch: the network, the cache or counters beyond the DDDS skips — the
//! [`Router`](super::Router) fetches, caches and counts around this.

use super::aor::{self, Registered, registered};
use super::cache;
use super::ddds::{Candidate, ContactFilter, Ddds, RankKey};
use super::decision::{Decision, PENDING, Source, TraceStep, Tracer, push_ranked, refill};
use super::local::{Found, LocalAnswer, LocalSource, find, local_naptr};
use super::number;
use super::plan::RoutingPlan;
use super::stats::RouteStats;
use super::upstream;
use crate::name::{Name, TYPE_NAPTR};
use crate::zone::index::Rdata;
use crate::zone::{Zone, ZoneSet, Zones};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Upstream state while one decision is made.
pub(super) struct UpCtx<'a> {
    /// Answers fetched so far (the asynchronous path); `None` on the synchronous path,
    /// where any upstream name is "missing".
    pub fetched: Option<&'a cache::Answers>,
    /// Names needed from upstream and not fetched yet (lower case, absolute); on the
    /// synchronous path only their number counts, and they are left empty.
    pub missing: Vec<String>,
    /// The first upstream failure seen (timeout, servfail…).
    pub failed: Option<&'static str>,
}

/// Labels of an ENUM domain are at most 100 digits plus the suffix's labels.
const MAX_LABELS: usize = 128;

static DIGIT_LABELS: [&[u8]; 10] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];

/// Decides `input` into `d` (emptied by the caller) under `plan` and the local `zones`.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide(
    plan: &RoutingPlan,
    zones: &ZoneSet,
    stats: &RouteStats,
    input: &str,
    tracer: Tracer,
    d: &mut Decision,
    up: &mut UpCtx<'_>,
    reg: Option<&Registered<'_>>,
) {
    let reg = reg.filter(|r| !r.location.is_empty());
    let mut e164 = std::mem::take(&mut d.scratch.number);
    let Some(scheme) = dial(input, plan, tracer, &mut e164, d) else {
        if let Some(reg) = reg
            && matches!(d.status, 404 | 484)
        {
            // No number, but perhaps a registered name (`sip:alice@example.net`, or an
            // extension `sip:1001@example.net` that no dial-plan rule makes E.164).
            registered_name(reg, plan, input, tracer, d);
        }
        d.scratch.number = e164;
        return;
    };
    let filter = ContactFilter::new(
        scheme == Some("sips"),
        scheme.is_some().then(|| input.trim_ascii()),
    );
    if let Some(reg) = reg
        && let Some(domain) = reg.domains.first()
    {
        let mut aor = std::mem::take(&mut d.scratch.aor);
        aor::number_key(&e164, domain, &mut aor);
        let found = registered(reg, &aor, &filter, plan.max_contacts, tracer, d);
        d.scratch.aor = aor;
        if found {
            d.number = Some(e164);
            return;
        }
    }
    let zones = zones.load();
    let mut candidates = std::mem::take(&mut d.scratch.candidates);
    candidates.clear();
    let mut chain = Chain {
        plan,
        zones: &zones,
        ddds: Ddds::new(
            &e164,
            &plan.services,
            &plan.gateways,
            filter.clone(),
            tracer.on(),
        )
        .with_spare(std::mem::take(&mut d.scratch.spare_uris)),
        candidates,
        negative_ttl: u32::MAX,
        tracer,
        up,
    };
    chain.walk(&e164, d);
    let Chain {
        mut ddds,
        mut candidates,
        negative_ttl,
        up,
        ..
    } = chain;
    stats.count_skips(&ddds.skips);
    let ttl = Ttls {
        negative: negative_ttl,
        ddds: ddds.ttl,
    };
    d.scratch.spare_uris = ddds.take_spare();
    drop(ddds);
    if !up.missing.is_empty() {
        // Upstream answers are needed first: nothing is decided yet.
        candidates.clear();
        d.status = PENDING;
    } else if !reject_on_failure(plan, up.failed, &candidates, tracer, d) {
        conclude(
            plan,
            &e164,
            &filter,
            &mut candidates,
            ttl,
            up.failed,
            tracer,
            d,
        );
    }
    d.scratch.candidates = candidates;
    d.number = Some(e164);
}

/// Step 1 for an input that is no number: the registered contacts of its AOR, when it
/// names one of a served domain (`sip:alice@example.net`).
fn registered_name(
    reg: &Registered<'_>,
    plan: &RoutingPlan,
    input: &str,
    tracer: Tracer,
    d: &mut Decision,
) {
    let mut aor = std::mem::take(&mut d.scratch.aor);
    if aor::name_aor(input, reg.domains, &mut aor) {
        let trimmed = input.trim_ascii();
        let sips = trimmed
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        let filter = ContactFilter::new(sips, Some(trimmed));
        registered(reg, &aor, &filter, plan.max_contacts, tracer, d);
    }
    d.scratch.aor = aor;
}

/// Step 1: the input as an E.164 number, through the dial plan, in `e164`. Returns the
/// Request-URI's scheme (`None` for a bare number), or `None` with the decision's
/// status and detail set when the input is no number.
fn dial(
    input: &str,
    plan: &RoutingPlan,
    tracer: Tracer,
    e164: &mut String,
    d: &mut Decision,
) -> Option<Option<&'static str>> {
    let scheme = match number::extract_into(input, e164) {
        Ok(scheme) => scheme,
        Err(e) => {
            d.status = e.status();
            d.detail = e.to_string().into();
            return None;
        }
    };
    let dialled = tracer.on().then(|| e164.clone());
    let rule = number::normalize_in_place(e164, &plan.dialplan);
    if let Some(dialled) = dialled {
        let (rule, result) = match &rule {
            Ok(rule) => (*rule, e164.clone()),
            Err(e) => (None, e.to_string()),
        };
        d.trace.push(TraceStep::Number {
            dialled,
            scheme,
            rule,
            result,
        });
    }
    match rule {
        Ok(_) => Some(scheme),
        Err(e) => {
            d.status = e.status();
            d.detail = e.to_string().into();
            None
        }
    }
}

/// The TTLs a conclusion without contacts is kept by.
#[derive(Clone, Copy)]
struct Ttls {
    /// The lowest negative-answer TTL met on the chain (`u32::MAX`: none).
    negative: u32,
    /// The lowest TTL of every RRset DDDS consulted (`u32::MAX`: none).
    ddds: u32,
}

/// Step 2: the suffix chain, walked until one answer gives contacts, one needs names
/// not fetched yet, or the suffixes run out.
struct Chain<'a, 'u> {
    plan: &'a RoutingPlan,
    zones: &'a Zones,
    ddds: Ddds<'a>,
    candidates: Vec<Candidate>,
    negative_ttl: u32,
    tracer: Tracer,
    up: &'a mut UpCtx<'u>,
}

/// One suffix's NAPTR name as asked: the suffix and the name's labels, root side first.
struct Asked<'a> {
    suffix: &'a Name,
    suffix_text: &'a Arc<str>,
    name: &'a [&'a [u8]],
}

impl Asked<'_> {
    /// The name as text (absolute, as the zone holds it).
    fn domain(&self) -> String {
        let mut s = String::new();
        write_domain(&mut s, self.name);
        s
    }

    /// The trace entry for this lookup (built only when tracing).
    fn step(
        &self,
        via: &'static str,
        zone: Option<&Zone>,
        result: &'static str,
        ttl: Option<u32>,
        records: Vec<String>,
        note: Option<&str>,
    ) -> TraceStep {
        TraceStep::Lookup {
            suffix: self.suffix.to_string(),
            domain: self.domain(),
            via,
            zone: zone.map(|z| z.origin.to_string()),
            result,
            ttl,
            records,
            note: note.map(str::to_string),
        }
    }
}

/// Appends the labels (root side first) as an absolute domain name.
fn write_domain(out: &mut String, root_side: &[&[u8]]) {
    for l in root_side.iter().rev() {
        out.push_str(&String::from_utf8_lossy(l));
        out.push('.');
    }
}

impl<'a> Chain<'a, '_> {
    fn walk(&mut self, e164: &str, d: &mut Decision) {
        let configured = &self.plan.suffixes;
        let local_only = self
            .zones
            .enum_suffixes()
            .iter()
            .filter(|(s, _)| !configured.iter().any(|(c, _)| c.eq_ignore_case(s)))
            .map(|(s, t)| (s, t, false));
        let chain = local_only.chain(configured.iter().map(|(s, t)| (s, t, true)));
        let digits = &e164.as_bytes()[1..];
        let mut labels: smallvec::SmallVec<[&[u8]; 32]> = smallvec::SmallVec::new();
        let mut key = std::mem::take(&mut d.scratch.upstream_key);
        for (suffix, suffix_text, is_configured) in chain {
            if suffix.label_count() + digits.len() > MAX_LABELS {
                continue;
            }
            labels.clear();
            labels.extend(suffix.labels().iter().rev().map(|l| &l[..]));
            labels.extend(digits.iter().map(|d| DIGIT_LABELS[(d - b'0') as usize]));
            let asked = Asked {
                suffix,
                suffix_text,
                name: &labels,
            };
            if self.ask(&asked, is_configured, &mut key, d).is_break() {
                break;
            }
        }
        d.scratch.upstream_key = key;
    }

    /// One suffix: its name looked up locally or upstream (the one rule in [`find`]),
    /// then used. Breaks the chain when it gave contacts or needs names not fetched.
    fn ask(
        &mut self,
        asked: &Asked<'_>,
        is_configured: bool,
        key: &mut String,
        d: &mut Decision,
    ) -> ControlFlow<()> {
        let local = local_naptr(self.zones, asked.name);
        let ask_upstream = is_configured && self.plan.upstream.is_some();
        match find(local, ask_upstream, self.up.fetched, key, |k| {
            write_domain(k, asked.name)
        }) {
            Found::Missing => {
                // Only the asynchronous path fetches names; the synchronous one only
                // needs to know that one is missing.
                let missing = match self.up.fetched {
                    Some(_) => key.clone(),
                    None => String::new(),
                };
                self.up.missing.push(missing);
                ControlFlow::Break(())
            }
            Found::Upstream(answer) => self.upstream_answer(asked, answer, key, d),
            Found::Local(answer) => self.local_answer(asked, answer, is_configured, d),
        }
    }

    /// An upstream answer for the suffix's name (keyed `key`).
    fn upstream_answer(
        &mut self,
        asked: &Asked<'_>,
        answer: &upstream::Answer,
        key: &str,
        d: &mut Decision,
    ) -> ControlFlow<()> {
        let servers = self.plan.upstream.as_ref().map(|u| u.servers.as_str());
        match answer {
            upstream::Answer::Records { rdatas, ttl } => {
                let rdatas: smallvec::SmallVec<[&[u8]; 8]> =
                    rdatas.iter().map(|r| &r[..]).collect();
                self.tracer.push(&mut d.trace, || {
                    let records = presentation(&rdatas);
                    asked.step("upstream", None, "answer", Some(*ttl), records, servers)
                });
                let domain = self.domain_for(&rdatas, || Name::from_text(key));
                if self.use_records(&domain, &rdatas, *ttl, d)? > 0 {
                    d.source = Source::Upstream;
                    d.suffix = Some(refill(&mut d.scratch.suffix, asked.suffix_text));
                    return ControlFlow::Break(());
                }
            }
            upstream::Answer::Negative { nxdomain, ttl } => {
                self.negative_ttl = self.negative_ttl.min(*ttl);
                let result = if *nxdomain { "nxdomain" } else { "nodata" };
                self.tracer.push(&mut d.trace, || {
                    asked.step("upstream", None, result, Some(*ttl), Vec::new(), servers)
                });
            }
            upstream::Answer::Failed(f) => {
                self.up.failed = self.up.failed.or(Some(f.as_str()));
                self.tracer.push(&mut d.trace, || {
                    let servers = servers.unwrap_or("");
                    let note = match f {
                        upstream::Failure::Other(text) => format!("{servers}: {text}"),
                        _ => servers.to_string(),
                    };
                    asked.step("upstream", None, f.as_str(), None, Vec::new(), Some(&note))
                });
            }
        }
        ControlFlow::Continue(())
    }

    /// A local answer (or the lack of one) for the suffix's name.
    fn local_answer(
        &mut self,
        asked: &Asked<'_>,
        answer: LocalAnswer<'_>,
        is_configured: bool,
        d: &mut Decision,
    ) -> ControlFlow<()> {
        match answer {
            LocalAnswer::NotLocal => self.tracer.push(&mut d.trace, || {
                let (via, note) = if is_configured {
                    ("upstream", "no local zone holds this name and no upstream ENUM resolver is configured")
                } else {
                    ("local", "no local zone holds this name; the suffix is not in enum.suffixes, so it is not asked upstream")
                };
                asked.step(via, None, "not_queried", None, Vec::new(), Some(note))
            }),
            LocalAnswer::Delegated { zone } => self.tracer.push(&mut d.trace, || {
                let note = "the name is delegated away from the local zone and no upstream ENUM resolver is configured";
                asked.step("local", Some(zone), "delegated", None, Vec::new(), Some(note))
            }),
            LocalAnswer::Negative {
                zone,
                ttl,
                nxdomain,
            } => {
                self.negative_ttl = self.negative_ttl.min(ttl);
                let result = if nxdomain { "nxdomain" } else { "nodata" };
                self.tracer.push(&mut d.trace, || {
                    asked.step("local", Some(zone), result, Some(ttl), Vec::new(), None)
                });
            }
            LocalAnswer::Records {
                zone,
                rrset,
                ttl,
                wildcard,
            } => {
                // Inline for up to 8 records (~2 KiB of stack), as the borrowed slices
                // were before templates.
                let read: smallvec::SmallVec<[Rdata<'_>; 8]> = rrset.rdatas().collect();
                let rdatas: smallvec::SmallVec<[&[u8]; 8]> = read.iter().map(|r| &r[..]).collect();
                let domain = self.domain_for(&rdatas, || Name::from_text(&asked.domain()));
                let result = if wildcard { "wildcard" } else { "answer" };
                self.tracer.push(&mut d.trace, || {
                    let records = presentation(&rdatas);
                    asked.step("local", Some(zone), result, Some(ttl), records, None)
                });
                if self.use_records(&domain, &rdatas, ttl, d)? > 0 {
                    d.source = Source::Local;
                    // Copied into recycled buffers: sharing the zone's Arc would make
                    // every SIP worker write the same reference count.
                    d.zone = Some(refill(&mut d.scratch.zone, &zone.origin_text));
                    d.suffix = Some(refill(&mut d.scratch.suffix, asked.suffix_text));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The name DDDS evaluates an RRset at: only needed (and so only parsed) when the
    /// decision is traced or a record is non-terminal.
    fn domain_for<E>(&self, rdatas: &[&[u8]], name: impl FnOnce() -> Result<Name, E>) -> Name {
        if self.tracer.on() || rdatas.iter().any(|r| is_non_terminal(r)) {
            name().unwrap_or_default()
        } else {
            Name::root()
        }
    }

    /// Runs DDDS on one NAPTR RRset: its record steps join the decision's trace, an
    /// upstream failure met on a non-terminal chain joins `up`. Breaks when the chain
    /// needs upstream names not fetched yet (they are in `up.missing`, and the decision
    /// waits for them); otherwise gives the contacts added.
    fn use_records(
        &mut self,
        domain: &Name,
        rdatas: &[&[u8]],
        ttl: u32,
        d: &mut Decision,
    ) -> ControlFlow<(), usize> {
        let upstream = self.plan.upstream.is_some();
        let mut source = LocalSource::new(self.zones, self.up.fetched, upstream);
        let added = self
            .ddds
            .evaluate(domain, rdatas, ttl, &mut source, &mut self.candidates);
        if let Some(t) = self.ddds.trace.as_mut() {
            d.trace.extend(t.drain(..).map(TraceStep::Record));
        }
        self.up.failed = self.up.failed.or(source.failed);
        if source.missing.is_empty() {
            ControlFlow::Continue(added)
        } else {
            self.up.missing.append(&mut source.missing);
            ControlFlow::Break(())
        }
    }
}

/// The records in presentation form, for the trace.
fn presentation(rdatas: &[&[u8]]) -> Vec<String> {
    rdatas
        .iter()
        .map(|r| crate::zone::rdata_presentation(TYPE_NAPTR, r))
        .collect()
}

fn is_non_terminal(rdata: &[u8]) -> bool {
    crate::naptr::NaptrRef::parse(rdata).is_some_and(|n| n.flags.is_empty())
}

/// Step 3a: `enum.on_failure = reject` — an upstream failure without any contact is a
/// 503. Returns whether it applied.
fn reject_on_failure(
    plan: &RoutingPlan,
    failed: Option<&'static str>,
    candidates: &[Candidate],
    tracer: Tracer,
    d: &mut Decision,
) -> bool {
    let reject = failed.is_some()
        && candidates.is_empty()
        && plan.on_failure == crate::config::OnFailure::Reject;
    if reject {
        d.status = 503;
        d.source = Source::None;
        d.detail = tracer.detail("upstream ENUM lookup failed", || {
            format!(
                "upstream ENUM lookup failed ({}); enum.on_failure = reject",
                failed.unwrap_or("")
            )
        });
    }
    reject
}

/// Step 3b: the routes from ENUM, or else the gateway for the number (or a 404/503),
/// ranked and cut to `sip.max_contacts`.
#[allow(clippy::too_many_arguments)]
fn conclude(
    plan: &RoutingPlan,
    e164: &str,
    filter: &ContactFilter<'_>,
    candidates: &mut Vec<Candidate>,
    ttl: Ttls,
    failed: Option<&'static str>,
    tracer: Tracer,
    d: &mut Decision,
) {
    if !candidates.is_empty() {
        d.ttl = ttl.ddds;
        d.status = 302;
        d.detail = tracer.detail("routes from ENUM", || match candidates.len() {
            1 => "1 route from ENUM".into(),
            n => format!("{n} routes from ENUM"),
        });
    } else {
        let ttl = ttl.negative.min(ttl.ddds);
        d.ttl = if ttl == u32::MAX { 0 } else { ttl };
        gateway_fallback(plan, e164, filter, candidates, failed, tracer, d);
    }
    let total = candidates.len();
    push_ranked(plan.max_contacts, candidates, &mut d.contacts);
    let kept = d.contacts.len();
    if total > kept {
        tracer.push(&mut d.trace, || TraceStep::Truncated {
            kept,
            dropped: total - kept,
        });
    }
}

/// No usable record anywhere: the gateway for the called number, in list order (q 1.0,
/// 0.9, … SPEC §10.30, ranked after filtering); without one, 503 when an upstream
/// failure leaves the number's absence unknown, else 404.
fn gateway_fallback(
    plan: &RoutingPlan,
    e164: &str,
    filter: &ContactFilter<'_>,
    candidates: &mut Vec<Candidate>,
    failed: Option<&'static str>,
    tracer: Tracer,
    d: &mut Decision,
) {
    let gw = plan.gateways.find(e164);
    if let Some(gw) = gw {
        candidates.extend(
            gw.uris
                .iter()
                .enumerate()
                .map(|(i, t)| (i, t.expand(e164, "")))
                .filter(|(_, u)| filter.allows(u))
                .map(|(i, uri)| Candidate {
                    uri,
                    rank: RankKey::nth(i),
                }),
        );
        tracer.push(&mut d.trace, || TraceStep::Gateway {
            prefix: gw.prefix.clone(),
            number: e164.to_string(),
            uris: candidates.iter().map(|c| c.uri.clone()).collect(),
        });
    }
    match gw.filter(|_| !candidates.is_empty()) {
        Some(gw) => {
            d.status = 302;
            d.source = Source::Gateway;
            d.detail = tracer.detail("no usable ENUM record; gateway", || {
                format!("no usable ENUM record; gateway {}", gw.prefix)
            });
        }
        None if failed.is_some() => {
            // We do not know the number is absent: try again later.
            d.status = 503;
            d.source = Source::None;
            d.detail = "upstream ENUM lookup failed and no gateway for the number".into();
        }
        None => {
            d.status = 404;
            d.source = Source::None;
            d.detail = tracer.detail("no usable ENUM record and no gateway", || {
                format!("no usable ENUM record for {e164} and no gateway for it")
            });
        }
    }
}
