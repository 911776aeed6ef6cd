//! The routing decision as every caller sees it: [`Decision`], its [`Contact`]s with
//! their [`Q`] values (SPEC §10.3 dense ranking and the `max_contacts` cut), where it came
//! from ([`Source`]), the steps of its explanation ([`TraceStep`]) and the [`Tracer`]
//! every step and detailed text is built through (so an untraced decision builds none).
//!
//! Owns: the decision's value, its reuse between decisions (buffers kept in `Scratch`
//! so the SIP path allocates only what grows), and q-ranking. Must not touch: zones,
//! upstream DNS, counters or text rendering (the CLI renders the JSON form).

use super::cache;
use super::ddds::{Candidate, RecordTrace};
use serde::Serialize;

/// Where a decision came from (SPEC §10.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Registrar,
    Local,
    Cache,
    Upstream,
    Gateway,
    None,
}

impl Source {
    /// Every source, in declaration order (so `source as usize` is its index).
    pub const ALL: [Source; 6] = [
        Source::Registrar,
        Source::Local,
        Source::Cache,
        Source::Upstream,
        Source::Gateway,
        Source::None,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Registrar => "registrar",
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
    /// One decimal at least, more when the value has them (a binding's `q=0.75`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::with_capacity(8);
        self.write_digits(&mut out);
        f.write_str(std::str::from_utf8(&out).expect("digits"))
    }
}

impl Q {
    /// Appends the same text as `Display` (`1.0`, `0.5`) without the formatter: the SIP
    /// answer writes one per Contact.
    pub fn write_digits(self, out: &mut Vec<u8>) {
        let mut whole = itoa::Buffer::new();
        out.extend_from_slice(whole.format(self.0 / 1000).as_bytes());
        out.push(b'.');
        let frac = self.0 % 1000;
        out.push(b'0' + (frac / 100) as u8);
        if !frac.is_multiple_of(100) {
            out.push(b'0' + (frac / 10 % 10) as u8);
            if !frac.is_multiple_of(10) {
                out.push(b'0' + (frac % 10) as u8);
            }
        }
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
    /// The AOR's registered contacts (SPEC §11), taken before any zone or ENUM lookup.
    Registrar { aor: String, contacts: usize },
    /// The decision cache: `hit` (with the seconds left) or `miss`.
    Cache {
        result: &'static str,
        ttl: Option<u32>,
    },
}

/// Whether a decision explains itself: every trace step and detailed text is built
/// through this, so the untraced SIP path never formats one.
#[derive(Debug, Clone, Copy)]
pub struct Tracer(bool);

impl Tracer {
    pub fn new(on: bool) -> Tracer {
        Tracer(on)
    }

    #[inline]
    pub fn on(self) -> bool {
        self.0
    }

    /// Adds the step `make` builds, when tracing.
    #[inline]
    pub fn push(self, trace: &mut Vec<TraceStep>, make: impl FnOnce() -> TraceStep) {
        if self.0 {
            trace.push(make());
        }
    }

    /// The detailed text when tracing, else the fixed `plain` one.
    #[inline]
    pub fn detail(
        self,
        plain: &'static str,
        detailed: impl FnOnce() -> String,
    ) -> std::borrow::Cow<'static, str> {
        if self.0 {
            detailed().into()
        } else {
            plain.into()
        }
    }
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
    pub(super) scratch: Scratch,
}

/// Emptied buffers a reused [`Decision`] carries to its next routing, so that the SIP
/// path (one decision per worker, reused) allocates only what grows.
#[derive(Debug, Clone, Default)]
pub(super) struct Scratch {
    pub(super) number: String,
    pub(super) zone: String,
    pub(super) suffix: String,
    pub(super) candidates: Vec<Candidate>,
    pub(super) spare_uris: Vec<String>,
    /// An upstream name as cached answers are keyed (lower case, absolute).
    pub(super) upstream_key: String,
    /// The canonical AOR the registrar step looks up.
    pub(super) aor: String,
}

/// Scratch space is not part of a decision's value.
impl PartialEq for Scratch {
    fn eq(&self, _: &Scratch) -> bool {
        true
    }
}
impl Eq for Scratch {}

/// Takes `buf`, fills it with `text` and returns it (no allocation once it has grown).
pub(super) fn refill(buf: &mut String, text: &str) -> String {
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
    pub(super) fn reset(&mut self) {
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

/// Marks a decision that cannot be made from local data and the cache: it needs
/// upstream DNS ([`Router::route_full`](super::Router::route_full)).
pub(super) const PENDING: u16 = 0;

/// Sorts `candidates` by rank (stable), gives dense q-values by rank and appends the
/// first `max_contacts` to `contacts` (SPEC §10.3: the cut counts every contact, ties
/// included). Leaves `candidates` empty with its capacity.
pub(super) fn push_ranked(
    max_contacts: usize,
    candidates: &mut Vec<Candidate>,
    contacts: &mut Vec<Contact>,
) {
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

impl Decision {
    /// Whether the decision waits for upstream DNS (see [`Router::route_full`](super::Router::route_full)).
    pub fn is_pending(&self) -> bool {
        self.status == PENDING
    }

    /// Marks a decision made from cached answers: source `cache`, the seconds the entry
    /// has left, and (traced) a cache step first.
    pub(super) fn mark_cached(&mut self, cached: &cache::Cached, trace: bool) {
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
}
