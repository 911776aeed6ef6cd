//! DDDS for ENUM (RFC 3402 §4, RFC 3403, RFC 6116 §3): from NAPTR records to ranked
//! contacts.
//!
//! Owns: the single-record rule ([`Services::judge`]; the admin API asks it too, so what
//! it stores and what calls use never disagree; service fields are matched by
//! [`crate::naptr::enumservice::Enumservices`]), flags (`u` terminal, empty
//! non-terminal, anything else discards the record), the order cut-off of RFC 3403 §4.1
//! (only the lowest ORDER with a usable record contributes, PREFERENCE ranks within
//! it), non-terminal chains (at most [`MAX_HOPS`] deep, loops detected), running the
//! regexp (applied by [`crate::naptr::subst::apply_regexp`]), checking the result is a
//! URI of the service's scheme, expanding PSTN results into gateway URIs, and the
//! per-reason accounting of every skipped record.
//!
//! Must not touch: where records come from. Non-terminal targets are fetched through the
//! [`NaptrSource`] the caller passes, so the same code runs on local zones, the cache and
//! (later) upstream DNS.

use super::gateway::Gateways;
use crate::name::Name;
use crate::naptr::NaptrRef;
use crate::naptr::enumservice::{Enumservices, Schemes};
use crate::naptr::subst::apply_regexp;
use crate::uri;

/// Most non-terminal hops followed from the first lookup (SPEC §10.6).
pub const MAX_HOPS: usize = 5;

/// Why a record was not used. Counted per reason so operators can see why a number
/// fails (the metrics issue exports these counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// rdata that does not parse as NAPTR.
    Malformed,
    /// Service field not among `enum.services`, or not an enumservice.
    Service,
    /// Flags other than `u` or empty.
    Flags,
    /// Regexp that does not parse or compile, or a terminal record without one.
    Regexp,
    /// Regexp did not match the AUS.
    NoMatch,
    /// Both a regexp and a replacement (RFC 3403 §4.1).
    RegexpAndReplacement,
    /// Result is not a URI of the service's scheme.
    Uri,
    /// A PSTN result with no gateway for its number.
    NoGateway,
    /// Every contact it gave was filtered (sips-only request, equal to the Request-URI).
    Filtered,
    /// Non-terminal chain revisits a name.
    Loop,
    /// Non-terminal chain deeper than [`MAX_HOPS`].
    Depth,
    /// Non-terminal target had no usable record.
    EmptyChain,
    /// Order higher than the one that produced contacts (RFC 3403 §4.1 cut-off).
    HigherOrder,
}

impl SkipReason {
    /// Every reason, each at the index of its discriminant (`reason as usize`), which
    /// the per-reason counts use.
    pub const ALL: [SkipReason; 13] = [
        SkipReason::Malformed,
        SkipReason::Service,
        SkipReason::Flags,
        SkipReason::Regexp,
        SkipReason::NoMatch,
        SkipReason::RegexpAndReplacement,
        SkipReason::Uri,
        SkipReason::NoGateway,
        SkipReason::Filtered,
        SkipReason::Loop,
        SkipReason::Depth,
        SkipReason::EmptyChain,
        SkipReason::HigherOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Malformed => "malformed",
            SkipReason::Service => "service",
            SkipReason::Flags => "flags",
            SkipReason::Regexp => "regexp",
            SkipReason::NoMatch => "no_match",
            SkipReason::RegexpAndReplacement => "regexp_and_replacement",
            SkipReason::Uri => "uri",
            SkipReason::NoGateway => "no_gateway",
            SkipReason::Filtered => "filtered",
            SkipReason::Loop => "loop",
            SkipReason::Depth => "depth",
            SkipReason::EmptyChain => "empty_chain",
            SkipReason::HigherOrder => "higher_order",
        }
    }
}

/// Why [`Services::judge`] finds a record unusable for calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Flags other than `u` (terminal) or empty (non-terminal).
    Flags,
    /// Both a regexp and a replacement (RFC 3403 §4.1).
    RegexpAndReplacement,
    /// A service field that is not an ENUM one (`E2U+type[:subtype]…`), or an empty
    /// field on a terminal.
    NotEnumservice,
    /// An ENUM service field naming none of `enum.services`.
    Unrouted,
    /// A terminal without a regexp.
    NoRegexp,
    /// A non-terminal with neither regexp nor replacement.
    NoTarget,
    /// A terminal's result that is not a URI.
    NotUri,
    /// A terminal's result URI whose scheme fits none of the services the record
    /// matched, which take these.
    Scheme(Schemes),
}

impl Unusable {
    /// The skip reason DDDS counts it under.
    pub fn reason(self) -> SkipReason {
        match self {
            Unusable::Flags => SkipReason::Flags,
            Unusable::RegexpAndReplacement => SkipReason::RegexpAndReplacement,
            Unusable::NotEnumservice | Unusable::Unrouted => SkipReason::Service,
            Unusable::NoRegexp => SkipReason::Regexp,
            Unusable::NoTarget => SkipReason::Malformed,
            Unusable::NotUri | Unusable::Scheme(_) => SkipReason::Uri,
        }
    }
}

/// A record [`Services::judge_fields`] lets through: terminal or not, and which wanted
/// services (bits, as [`Enumservices::matches`] gives) it named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usable {
    pub terminal: bool,
    matched: u32,
}

/// The configured enumservices and the rule DDDS applies to one record with them.
#[derive(Debug, Clone)]
pub struct Services {
    wanted: Enumservices,
}

impl Services {
    /// From the configured enumservices (`E2U+sip`, `E2U+pstn:tel`; see
    /// [`Enumservices::new`]).
    pub fn new<S: AsRef<str>>(configured: &[S]) -> Self {
        Services {
            wanted: Enumservices::new(configured),
        }
    }

    /// The rule DDDS applies to one record, and the admin API to a route before storing
    /// it, so that the two never disagree: flags `u` or empty, not both a regexp and a
    /// replacement, a service field naming one of `enum.services` (a non-terminal may
    /// leave it empty), a regexp on a terminal and a target on a non-terminal; and for a
    /// terminal whose `result` is known, a URI whose scheme fits a service it matched.
    /// DDDS knows the result only after running the regexp, so it asks the two halves,
    /// [`Services::judge_fields`] and [`Services::judge_result`], in this order.
    pub fn judge(&self, n: &NaptrRef<'_>, result: Option<&str>) -> Result<Usable, Unusable> {
        let usable = self.judge_fields(n)?;
        if let (true, Some(result)) = (usable.terminal, result) {
            self.judge_result(usable, result)?;
        }
        Ok(usable)
    }

    /// The part of [`Services::judge`] the record's fields decide. No allocation: DDDS
    /// asks it for every record of every decision.
    pub fn judge_fields(&self, n: &NaptrRef<'_>) -> Result<Usable, Unusable> {
        let terminal = match n.flags {
            [] => false,
            [f] if f.eq_ignore_ascii_case(&b'u') => true,
            _ => return Err(Unusable::Flags),
        };
        let has_regexp = !n.regexp.is_empty();
        if has_regexp && n.has_replacement() {
            return Err(Unusable::RegexpAndReplacement);
        }
        let matched = match self.wanted.matches(n.services) {
            Some(m) => m,
            None if !terminal && n.services.is_empty() => 0,
            None => return Err(Unusable::NotEnumservice),
        };
        if matched == 0 && (terminal || !n.services.is_empty()) {
            return Err(Unusable::Unrouted);
        }
        if terminal && !has_regexp {
            return Err(Unusable::NoRegexp);
        }
        if !terminal && !has_regexp && !n.has_replacement() {
            return Err(Unusable::NoTarget);
        }
        Ok(Usable { terminal, matched })
    }

    /// The part of [`Services::judge`] a terminal record's result decides: a URI whose
    /// scheme fits one of the services the record matched. The URI, parsed, on success.
    pub fn judge_result<'r>(
        &self,
        usable: Usable,
        result: &'r str,
    ) -> Result<uri::Uri<'r>, Unusable> {
        let parsed = uri::parse(result).ok_or(Unusable::NotUri)?;
        if !self.wanted.fits(usable.matched, &parsed) {
            return Err(Unusable::Scheme(self.wanted.schemes(usable.matched)));
        }
        Ok(parsed)
    }
}

/// Where q-ranks come from: (order, preference) of each record on the chain that led
/// to a contact, compared lexicographically over the steps taken (a preferred
/// non-terminal outranks a less preferred terminal however deep its chain goes).
/// Fixed size: no allocation per contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RankKey {
    /// Steps in use; unused steps stay `(0, 0)`.
    len: u32,
    steps: [(u16, u16); MAX_HOPS + 1],
}

impl RankKey {
    /// The rank of the `i`-th entry of a list whose order is its preference (a
    /// gateway's URIs in the fallback).
    pub fn nth(i: usize) -> Self {
        RankKey::default().push(0, i.min(usize::from(u16::MAX)) as u16)
    }

    fn push(mut self, order: u16, pref: u16) -> Self {
        if (self.len as usize) < self.steps.len() {
            self.steps[self.len as usize] = (order, pref);
            self.len += 1;
        }
        self
    }

    fn used(&self) -> &[(u16, u16)] {
        &self.steps[..self.len as usize]
    }
}

impl Ord for RankKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.used().cmp(other.used())
    }
}

impl PartialOrd for RankKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A contact before q-values are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub uri: String,
    pub rank: RankKey,
}

/// What the request allows in Contacts (SPEC §4, §10.16).
#[derive(Debug, Clone, Default)]
pub struct ContactFilter<'a> {
    /// A `sips:` Request-URI: only `sips:` contacts.
    sips_only: bool,
    /// Contacts equal to this Request-URI (RFC 3261 §19.1.4) are dropped (RFC 3261
    /// §8.3). Kept as text: it is parsed only for a contact that could equal it.
    request_uri: Option<&'a str>,
    /// Where the Request-URI's host[:port] is (`Some(None)`: not a sip/sips URI), found
    /// at the first sip contact: a sip contact on another host[:port] cannot equal it,
    /// which one comparison shows. Offsets rather than a `&str`, so that the filter's
    /// lifetime stays covariant.
    request_hostport: std::cell::Cell<Option<Option<(usize, usize)>>>,
}

impl<'a> ContactFilter<'a> {
    /// The filter for a request: `sips_only` for a `sips:` Request-URI, and the
    /// Request-URI itself when contacts equal to it must be dropped.
    pub fn new(sips_only: bool, request_uri: Option<&'a str>) -> Self {
        ContactFilter {
            sips_only,
            request_uri,
            request_hostport: std::cell::Cell::new(None),
        }
    }

    /// Whether only `sips:` contacts are allowed.
    pub fn sips_only(&self) -> bool {
        self.sips_only
    }

    /// [`ContactFilter::allows_uri`] for a URI as text (one that does not parse as a
    /// URI equals no Request-URI).
    pub fn allows(&self, uri_text: &str) -> bool {
        match uri::parse(uri_text) {
            Some(u) => self.allows_uri(&u),
            None => {
                !self.sips_only
                    || uri_text
                        .get(..5)
                        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
            }
        }
    }

    /// Whether a contact may go into the answer.
    pub fn allows_uri(&self, u: &uri::Uri<'_>) -> bool {
        if self.sips_only && !u.is_sips() {
            return false;
        }
        let Some(raw) = self.request_uri else {
            return true;
        };
        // Equivalent sip/sips URIs have the same scheme and host[:port], ignoring case
        // (as [`uri::equivalent_uris`] compares them).
        if u.is_sip() {
            let at = match self.request_hostport.get() {
                Some(known) => known,
                None => {
                    let found = uri::sip_hostport(raw);
                    self.request_hostport.set(Some(found));
                    found
                }
            };
            let hostport = at.and_then(|(start, end)| raw.get(start..end));
            if !hostport.is_some_and(|hp| hp.eq_ignore_ascii_case(u.hostport)) {
                return true;
            }
        }
        !uri::parse(raw).is_some_and(|r| uri::equivalent_uris(&r, u))
    }
}

/// The answer to a NAPTR lookup of a non-terminal target.
pub enum SourceAnswer<'a> {
    /// Records (wire rdata) and their TTL.
    Records(Vec<crate::zone::index::Rdata<'a>>, u32),
    /// No records (NXDOMAIN or NODATA), with the negative TTL.
    Empty(u32),
    /// The lookup could not be done (upstream unavailable, failure).
    Unavailable(String),
}

/// Fetches NAPTR records for non-terminal targets.
pub trait NaptrSource<'a> {
    fn naptr(&mut self, name: &Name) -> SourceAnswer<'a>;
}

/// A step of the explanation kept when tracing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordTrace {
    /// The domain the record belongs to.
    pub domain: String,
    /// The record in presentation format.
    pub naptr: String,
    /// "used", or the skip reason.
    pub outcome: &'static str,
    /// What it produced or why it was skipped.
    pub detail: String,
    pub depth: usize,
}

/// Per-call state: inputs, the accumulated TTL and the optional trace.
pub struct Ddds<'c> {
    pub aus: &'c str,
    pub services: &'c Services,
    pub gateways: &'c Gateways,
    pub filter: ContactFilter<'c>,
    /// Lowest TTL of every RRset consulted.
    pub ttl: u32,
    pub trace: Option<Vec<RecordTrace>>,
    /// Skips by reason (indexes into [`SkipReason::ALL`]).
    pub skips: [u32; SkipReason::ALL.len()],
    /// Names on the current non-terminal chain (lower case), for loop detection; the
    /// start name is added only when a chain is first followed, so a decision without
    /// non-terminals allocates nothing here.
    visited: Vec<Name>,
    start: Name,
    /// Emptied strings to build results in (see [`Ddds::with_spare`]).
    spare: Vec<String>,
}

impl<'c> Ddds<'c> {
    pub fn new(
        aus: &'c str,
        services: &'c Services,
        gateways: &'c Gateways,
        filter: ContactFilter<'c>,
        trace: bool,
    ) -> Self {
        Ddds {
            aus,
            services,
            gateways,
            filter,
            ttl: u32::MAX,
            trace: trace.then(Vec::new),
            skips: [0; SkipReason::ALL.len()],
            visited: Vec::new(),
            start: Name::root(),
            spare: Vec::new(),
        }
    }

    /// Hands DDDS a pool of strings (cleared) to build results in, so that a caller
    /// that reuses its decisions allocates no new contact strings.
    pub fn with_spare(mut self, spare: Vec<String>) -> Self {
        self.spare = spare;
        self
    }

    /// Takes the pool back.
    pub fn take_spare(&mut self) -> Vec<String> {
        std::mem::take(&mut self.spare)
    }

    /// Evaluates the NAPTR RRset found at `domain`; appends contacts to `out` and returns
    /// how many it added. `domain` is only used for the trace and loop detection.
    pub fn evaluate<'s>(
        &mut self,
        domain: &Name,
        rdatas: &[&[u8]],
        ttl: u32,
        source: &mut dyn NaptrSource<'s>,
        out: &mut Vec<Candidate>,
    ) -> usize {
        self.visited.clear();
        self.start = domain.clone();
        self.eval_set(domain, rdatas, ttl, source, out, RankKey::default(), 0)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_set<'s>(
        &mut self,
        domain: &Name,
        rdatas: &[&[u8]],
        ttl: u32,
        source: &mut dyn NaptrSource<'s>,
        out: &mut Vec<Candidate>,
        rank: RankKey,
        depth: usize,
    ) -> usize {
        self.ttl = self.ttl.min(ttl);
        let mut recs: smallvec::SmallVec<[NaptrRef<'_>; 8]> = smallvec::SmallVec::new();
        for rd in rdatas {
            match NaptrRef::parse(rd) {
                Some(n) => recs.push(n),
                None => self.skip(
                    domain,
                    None,
                    SkipReason::Malformed,
                    || "not NAPTR data".into(),
                    depth,
                ),
            }
        }
        // Stable: equal (order, preference) keep their RRset order.
        recs.sort_by_key(|n| (n.order, n.preference));
        let mut added = 0;
        let mut answered_order = 0;
        let mut i = 0;
        while i < recs.len() {
            let order = recs[i].order;
            if added > 0 {
                // A lower order already produced contacts: the rest are not consulted.
                for n in &recs[i..] {
                    self.skip(
                        domain,
                        Some(n),
                        SkipReason::HigherOrder,
                        || format!("order {answered_order} already gave contacts"),
                        depth,
                    );
                }
                break;
            }
            answered_order = order;
            let mut j = i;
            while j < recs.len() && recs[j].order == order {
                let n = recs[j];
                added += self.eval_record(
                    domain,
                    &n,
                    source,
                    out,
                    rank.push(n.order, n.preference),
                    depth,
                );
                j += 1;
            }
            i = j;
        }
        added
    }

    fn skip(
        &mut self,
        domain: &Name,
        n: Option<&NaptrRef<'_>>,
        why: SkipReason,
        detail: impl FnOnce() -> String,
        depth: usize,
    ) {
        self.skips[why as usize] += 1;
        if let Some(t) = &mut self.trace {
            t.push(RecordTrace {
                domain: domain.to_string(),
                naptr: n.map(|n| n.to_presentation()).unwrap_or_default(),
                outcome: why.as_str(),
                detail: detail(),
                depth,
            });
        }
    }

    fn used(
        &mut self,
        domain: &Name,
        n: &NaptrRef<'_>,
        detail: impl FnOnce() -> String,
        depth: usize,
    ) {
        if let Some(t) = &mut self.trace {
            t.push(RecordTrace {
                domain: domain.to_string(),
                naptr: n.to_presentation(),
                outcome: "used",
                detail: detail(),
                depth,
            });
        }
    }

    fn eval_record<'s>(
        &mut self,
        domain: &Name,
        n: &NaptrRef<'_>,
        source: &mut dyn NaptrSource<'s>,
        out: &mut Vec<Candidate>,
        rank: RankKey,
        depth: usize,
    ) -> usize {
        let usable = match self.services.judge_fields(n) {
            Ok(u) => u,
            Err(why) => {
                self.refuse(domain, n, why, "", depth);
                return 0;
            }
        };
        if usable.terminal {
            match self.run_regexp(domain, n, depth) {
                Some(result) => self.terminal_result(domain, n, usable, result, out, rank, depth),
                None => 0,
            }
        } else {
            self.follow(domain, n, source, out, rank, depth)
        }
    }

    /// Records why [`Services::judge`] refused a record (`result`: a terminal's result,
    /// for the reasons that are about it).
    fn refuse(
        &mut self,
        domain: &Name,
        n: &NaptrRef<'_>,
        why: Unusable,
        result: &str,
        depth: usize,
    ) {
        let lossy = String::from_utf8_lossy;
        let detail = || match why {
            Unusable::Flags => format!("flags {:?} are not \"u\" or empty", lossy(n.flags)),
            Unusable::RegexpAndReplacement => "both regexp and replacement are set".into(),
            Unusable::NotEnumservice => {
                format!("{:?} is not an ENUM service field", lossy(n.services))
            }
            Unusable::Unrouted => format!("{} is not in enum.services", lossy(n.services)),
            Unusable::NoRegexp => "terminal record without a regexp".into(),
            Unusable::NoTarget => "non-terminal record with neither regexp nor replacement".into(),
            Unusable::NotUri => format!("{result:?} is not a URI"),
            Unusable::Scheme(_) => {
                format!("{result:?} does not fit service {}", lossy(n.services))
            }
        };
        self.skip(domain, Some(n), why.reason(), detail, depth);
    }

    /// Applies the record's regexp to the AUS; on failure records the skip (bad regexp
    /// or no match) and returns `None`.
    fn run_regexp(&mut self, domain: &Name, n: &NaptrRef<'_>, depth: usize) -> Option<String> {
        let mut result = self.spare.pop().unwrap_or_default();
        result.clear();
        let aus = self.aus;
        match apply_regexp(n.regexp, aus, &mut result) {
            Ok(true) => Some(result),
            Ok(false) => {
                self.spare.push(result);
                self.skip(
                    domain,
                    Some(n),
                    SkipReason::NoMatch,
                    || format!("does not match {aus}"),
                    depth,
                );
                None
            }
            Err(e) => {
                self.spare.push(result);
                self.skip(domain, Some(n), SkipReason::Regexp, || e.to_string(), depth);
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn terminal_result(
        &mut self,
        domain: &Name,
        n: &NaptrRef<'_>,
        usable: Usable,
        result: String,
        out: &mut Vec<Candidate>,
        rank: RankKey,
        depth: usize,
    ) -> usize {
        let services = self.services;
        let parsed = match services.judge_result(usable, &result) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.refuse(domain, n, why, &result, depth);
                return 0;
            }
        };
        if parsed.is_tel() {
            let Some(number) = uri::tel_global_number(&parsed) else {
                self.skip(
                    domain,
                    Some(n),
                    SkipReason::Uri,
                    || format!("{result:?} is not a global tel number"),
                    depth,
                );
                return 0;
            };
            let params = uri::np_params(&parsed);
            let Some(gw) = self.gateways.find(&number) else {
                self.skip(
                    domain,
                    Some(n),
                    SkipReason::NoGateway,
                    || format!("no [[gateway]] prefix matches {number}"),
                    depth,
                );
                return 0;
            };
            let before = out.len();
            for template in &gw.uris {
                let uri = template.expand(&number, &params);
                if self.filter.allows(&uri) {
                    out.push(Candidate { uri, rank });
                }
            }
            let added = out.len() - before;
            if added == 0 {
                self.skip(
                    domain,
                    Some(n),
                    SkipReason::Filtered,
                    || format!("gateway {} URIs not allowed for this request", gw.prefix),
                    depth,
                );
            } else {
                let uris: Vec<String> = out[before..].iter().map(|c| c.uri.clone()).collect();
                self.used(
                    domain,
                    n,
                    || format!("{result} via gateway {}: {}", gw.prefix, uris.join(", ")),
                    depth,
                );
            }
            return added;
        }
        if !self.filter.allows_uri(&parsed) {
            let why = if self.filter.sips_only() {
                "not sips: for a sips: request"
            } else {
                "equals the Request-URI"
            };
            self.skip(
                domain,
                Some(n),
                SkipReason::Filtered,
                || format!("{result} {why}"),
                depth,
            );
            return 0;
        }
        self.used(domain, n, || result.clone(), depth);
        out.push(Candidate { uri: result, rank });
        1
    }

    fn follow<'s>(
        &mut self,
        domain: &Name,
        n: &NaptrRef<'_>,
        source: &mut dyn NaptrSource<'s>,
        out: &mut Vec<Candidate>,
        rank: RankKey,
        depth: usize,
    ) -> usize {
        // [`Services::judge_fields`] has seen to it that there is one of the two.
        let target = if n.has_replacement() {
            n.replacement_name()
        } else {
            let Some(result) = self.run_regexp(domain, n, depth) else {
                return 0;
            };
            match Name::from_text(&result) {
                Ok(name) => name,
                Err(e) => {
                    self.skip(
                        domain,
                        Some(n),
                        SkipReason::Regexp,
                        || format!("result {result:?} is not a domain name: {e}"),
                        depth,
                    );
                    return 0;
                }
            }
        };
        if depth + 1 > MAX_HOPS {
            self.skip(
                domain,
                Some(n),
                SkipReason::Depth,
                || format!("chain longer than {MAX_HOPS} hops at {target}"),
                depth,
            );
            return 0;
        }
        let key = target.to_lowercase();
        if self.visited.is_empty() {
            self.visited.push(self.start.to_lowercase());
        }
        if self.visited.contains(&key) {
            self.skip(
                domain,
                Some(n),
                SkipReason::Loop,
                || format!("{target} was already visited"),
                depth,
            );
            return 0;
        }
        self.visited.push(key);
        let added = match source.naptr(&target) {
            SourceAnswer::Records(rdatas, ttl) => {
                self.used(
                    domain,
                    n,
                    || format!("non-terminal: following {target}"),
                    depth,
                );
                let rdatas: Vec<&[u8]> = rdatas.iter().map(|r| &r[..]).collect();
                self.eval_set(&target, &rdatas, ttl, source, out, rank, depth + 1)
            }
            SourceAnswer::Empty(ttl) => {
                self.ttl = self.ttl.min(ttl);
                0
            }
            SourceAnswer::Unavailable(why) => {
                self.skip(
                    domain,
                    Some(n),
                    SkipReason::EmptyChain,
                    || format!("{target}: {why}"),
                    depth,
                );
                return 0;
            }
        };
        self.visited.pop();
        if added == 0 {
            self.skip(
                domain,
                Some(n),
                SkipReason::EmptyChain,
                || format!("{target} gave no usable record"),
                depth,
            );
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_equal_to_the_request_uri_is_dropped_without_parsing_others() {
        let filter = ContactFilter::new(false, Some("sip:+441632960001@PBX.example;user=phone"));
        assert!(!filter.allows("sip:+441632960001@pbx.example;user=phone"));
        assert!(filter.allows("sip:+441632960001@other.example"));
        assert!(filter.allows("sip:alice@pbx.example"));
        assert!(filter.allows("tel:+441632960001"));
        let sips = ContactFilter::new(true, None);
        assert!(!sips.allows("sip:a@x.example"));
        assert!(sips.allows("SIPS:a@x.example"));
        assert!(!sips.allows("not a uri"));
    }

    struct NoRecords;

    impl<'a> NaptrSource<'a> for NoRecords {
        fn naptr(&mut self, _: &Name) -> SourceAnswer<'a> {
            SourceAnswer::Empty(60)
        }
    }

    /// DDDS skips a record exactly when [`Services::judge`] (what the admin API asks)
    /// refuses it, for the reason it gives.
    #[test]
    fn ddds_skips_what_the_rule_refuses() {
        let services = Services::new(&["E2U+sip", "E2U+pstn:tel"]);
        let gateways = Gateways::new(&[crate::config::GatewayConfig {
            prefix: "+".into(),
            uris: vec![crate::config::gateway::Template::parse("sip:{e164}@gw.example").unwrap()],
        }]);
        let start = Name::from_text("1.0.e164.arpa.").unwrap();
        for (flags, service, regexp, refused) in [
            ("u", "E2U+sip", "!^.*$!sip:a@b.example!", None),
            ("U", "E2U+pstn:tel", "!^(.*)$!tel:\\1!", None),
            (
                "u",
                "E2U+sip",
                "!^.*$!https://example.net/!",
                Some(SkipReason::Uri),
            ),
            (
                "u",
                "E2U+pstn:tel",
                "!^.*$!sip:a@b.example!",
                Some(SkipReason::Uri),
            ),
            ("u", "E2U+sip", "!^.*$!not a uri!", Some(SkipReason::Uri)),
            (
                "s",
                "E2U+sip",
                "!^.*$!sip:a@b.example!",
                Some(SkipReason::Flags),
            ),
            (
                "p",
                "E2U+sip",
                "!^.*$!sip:a@b.example!",
                Some(SkipReason::Flags),
            ),
            (
                "u",
                "E2U+web:https",
                "!^.*$!https://x/!",
                Some(SkipReason::Service),
            ),
            (
                "u",
                "sip",
                "!^.*$!sip:a@b.example!",
                Some(SkipReason::Service),
            ),
            ("u", "E2U+sip", "", Some(SkipReason::Regexp)),
            ("", "", "", Some(SkipReason::Malformed)),
        ] {
            let mut rd = Vec::new();
            crate::naptr::encode(
                10,
                10,
                flags.as_bytes(),
                service.as_bytes(),
                regexp.as_bytes(),
                &Name::root(),
                &mut rd,
            );
            let n = NaptrRef::parse(&rd).unwrap();
            let mut result = String::new();
            let known = apply_regexp(n.regexp, "+10", &mut result).is_ok_and(|m| m);
            let judged = services.judge(&n, known.then_some(result.as_str()));
            assert_eq!(judged.err().map(Unusable::reason), refused, "{regexp}");
            let mut ddds = Ddds::new("+10", &services, &gateways, ContactFilter::default(), false);
            let mut out = Vec::new();
            ddds.evaluate(&start, &[&rd], 60, &mut NoRecords, &mut out);
            let skipped: Vec<_> = SkipReason::ALL
                .iter()
                .filter(|r| ddds.skips[**r as usize] > 0)
                .copied()
                .collect();
            assert_eq!(
                skipped,
                Vec::from_iter(refused),
                "{flags} {service} {regexp}"
            );
            assert_eq!(out.is_empty(), refused.is_some());
        }
    }

    #[test]
    fn skip_reasons_and_sources_sit_at_their_discriminants() {
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        for (i, s) in crate::resolve::Source::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
    }
}
