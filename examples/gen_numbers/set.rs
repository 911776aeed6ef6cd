//! The generator behind `examples/gen_numbers`: deterministic large ENUM test sets,
//! written as a stream (memory stays bounded whatever the count; the set is never held).
//!
//! Owns the record-shape mix (the categories and weights of the peers' `gen-zone.py`),
//! the choice of numbers, and the file formats it writes. Uses only std and `itoa`, and
//! nothing of the server: its output is what a user would feed to `enroute` (a master
//! file, an admin-API import), so it must follow the documented formats, not the code.
//!
//! How numbers are chosen, so every file can be written in one pass at O(1) memory:
//! - the `numbers + absent` picks are *slots*, spread over the prefixes in turn; slot `l`
//!   of a prefix with `c` slots over a space of `S` numbers owns `[l*S/c, (l+1)*S/c)`
//!   and picks one number in it from a hash of (seed, slot): sorted, distinct, no state;
//! - a keyed permutation of the slots (a Feistel network with cycle walking) says which
//!   slots are absent (those it maps below `absent`), and its inverse lists the present
//!   and absent numbers in a shuffled order for query files, again without state;
//! - each number's category and hosts come from a hash of (seed, number), so a number
//!   has the same records whatever else is generated with it.
//!
//! The random source is SplitMix64, written out here so a seed gives the same files on
//! every platform and with every version of every crate.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// SIP hosts of the generated URIs (nothing resolves them; they end up in Contacts).
const SBC_HOSTS: [&str; 8] = [
    "sbc1.carrier-a.example.net",
    "sbc2.carrier-a.example.net",
    "sbc3.carrier-a.example.net",
    "sbc4.carrier-a.example.net",
    "sbc5.carrier-a.example.net",
    "sbc6.carrier-a.example.net",
    "sbc7.carrier-a.example.net",
    "sbc8.carrier-a.example.net",
];
const PBX_HOSTS: [&str; 16] = [
    "pbx1.tenant.example.com",
    "pbx2.tenant.example.com",
    "pbx3.tenant.example.com",
    "pbx4.tenant.example.com",
    "pbx5.tenant.example.com",
    "pbx6.tenant.example.com",
    "pbx7.tenant.example.com",
    "pbx8.tenant.example.com",
    "pbx9.tenant.example.com",
    "pbx10.tenant.example.com",
    "pbx11.tenant.example.com",
    "pbx12.tenant.example.com",
    "pbx13.tenant.example.com",
    "pbx14.tenant.example.com",
    "pbx15.tenant.example.com",
    "pbx16.tenant.example.com",
];

/// The record shapes and their weights (percent), as in `gen-zone.py`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// One E2U+sip record carrying the number.
    Sip1,
    /// Two E2U+sip, same order, the less preferred listed first.
    Sip2Pref,
    /// E2U+sip and E2U+pstn:tel.
    SipTel,
    /// Three records, orders listed unsorted.
    Order3,
    /// One E2U+sip with a back-reference regexp: identical for every number of a host.
    Backref,
    /// Flag `U`, service `e2u+sip`, plus a mailto record identical for every number.
    MixedCase,
    /// Two E2U+sip with identical order and preference, different SBCs.
    EqualPref,
}

pub const CATEGORIES: [(Category, &str, u64); 7] = [
    (Category::Sip1, "sip1", 45),
    (Category::Sip2Pref, "sip2pref", 15),
    (Category::SipTel, "sip_tel", 15),
    (Category::Order3, "order3", 10),
    (Category::Backref, "backref", 7),
    (Category::MixedCase, "mixedcase", 5),
    (Category::EqualPref, "equalpref", 3),
];

/// What a generation run produces and from what.
#[derive(Clone, Debug)]
pub struct Options {
    pub numbers: u64,
    /// Numbers of the prefixes deliberately left out (for NXDOMAIN / not-found queries).
    pub absent: u64,
    /// E.164 prefixes with `+`; the numbers are spread evenly over them.
    pub prefixes: Vec<String>,
    /// Digits after each prefix; `None`: the fewest giving each prefix at least four
    /// times the space its numbers need (at least 4).
    pub digits: Option<u32>,
    pub seed: u64,
    /// The zone's origin, with the trailing dot; the prefixes must fall below it.
    pub origin: String,
    /// TTL of the NAPTR records (`$TTL` of the zone, `ttl` of the imports).
    pub ttl: u32,
    /// SOA minimum (negative TTL).
    pub neg_ttl: u32,
    /// Address of the in-zone NS glue `ns`.
    pub ns_addr: String,
    pub formats: Formats,
    pub out: PathBuf,
}

/// Which files to write (the manifest is always written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Formats {
    /// `numbers.zone`: master file.
    pub zone: bool,
    /// `numbers.csv`: admin import CSV.
    pub csv: bool,
    /// `numbers.ndjson`: admin import NDJSON.
    pub ndjson: bool,
    /// `dnsperf-present.txt`, `dnsperf-absent.txt`: "<name> NAPTR", shuffled.
    pub queries: bool,
    /// `present.txt`, `absent.txt`: E.164 numbers, shuffled.
    pub lists: bool,
}

impl Formats {
    /// Parses `zone,csv,ndjson,queries,lists` (any subset, `all` for every one).
    pub fn parse(text: &str) -> Result<Formats, String> {
        let mut f = Formats::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "zone" => f.zone = true,
                "csv" => f.csv = true,
                "ndjson" => f.ndjson = true,
                "queries" => f.queries = true,
                "lists" => f.lists = true,
                "all" => {
                    f = Formats {
                        zone: true,
                        csv: true,
                        ndjson: true,
                        queries: true,
                        lists: true,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown format {other:?}; formats are zone,csv,ndjson,queries,lists,all"
                    ));
                }
            }
        }
        Ok(f)
    }
}

/// What a run wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub numbers: u64,
    pub absent: u64,
    pub naptr_records: u64,
    /// Numbers per category, in [`CATEGORIES`] order.
    pub categories: [u64; 7],
    pub digits: u32,
    /// Bytes written per file name.
    pub files: Vec<(String, u64)>,
}

/// Why the options cannot be generated.
#[derive(Debug)]
pub enum GenError {
    Invalid(String),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for GenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenError::Invalid(m) => f.write_str(m),
            GenError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for GenError {}

// ---------------------------------------------------------------------------------
// Randomness

/// The SplitMix64 finaliser: a good 64-bit mix, used for hashing and as the generator.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 seeded from a hash.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, salt: u64, key: u64) -> Rng {
        Rng(mix(seed ^ mix(salt ^ mix(key))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-40 for the n used here).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

/// Salts keeping the hash streams apart.
const SALT_SLOT: u64 = 1;
const SALT_NUMBER: u64 = 2;
const SALT_PERM: u64 = 3;

/// A keyed bijection of `0..n`: a balanced Feistel network on the smallest even bit
/// width covering `n`, walked until the value falls below `n` (under 4 steps expected).
struct Permutation {
    n: u64,
    half: u32,
    keys: [u64; 4],
}

impl Permutation {
    fn new(n: u64, seed: u64) -> Permutation {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let half = bits.div_ceil(2);
        let mut rng = Rng::new(seed, SALT_PERM, n);
        Permutation {
            n,
            half,
            keys: [rng.next(), rng.next(), rng.next(), rng.next()],
        }
    }

    fn round(&self, k: usize, x: u64) -> u64 {
        mix(self.keys[k] ^ x) & ((1 << self.half) - 1)
    }

    fn step(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half) - 1;
        let (mut l, mut r) = (x >> self.half, x & mask);
        for k in 0..4 {
            (l, r) = (r, l ^ self.round(k, r));
        }
        (l << self.half) | r
    }

    fn step_back(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half) - 1;
        let (mut l, mut r) = (x >> self.half, x & mask);
        for k in (0..4).rev() {
            (l, r) = (r ^ self.round(k, l), l);
        }
        (l << self.half) | r
    }

    fn apply(&self, mut x: u64) -> u64 {
        loop {
            x = self.step(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn invert(&self, mut x: u64) -> u64 {
        loop {
            x = self.step_back(x);
            if x < self.n {
                return x;
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Numbers

/// The checked plan: prefixes, their slots, and where the zone's origin cuts the digits.
struct Plan {
    /// Prefix digits (no `+`).
    prefixes: Vec<Vec<u8>>,
    /// First global slot of each prefix, plus the total at the end.
    starts: Vec<u64>,
    digits: u32,
    space: u64,
    /// Digits the origin's labels stand for (the owner names drop them).
    origin_digits: usize,
    /// The origin without its trailing dot (for query names).
    origin_name: String,
    perm: Permutation,
    seed: u64,
    absent: u64,
}

impl Plan {
    fn new(o: &Options) -> Result<Plan, GenError> {
        let bad = |m: String| Err(GenError::Invalid(m));
        if o.prefixes.is_empty() {
            return bad("--prefix: at least one prefix".into());
        }
        let mut prefixes = Vec::new();
        for p in &o.prefixes {
            match p.strip_prefix('+') {
                Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
                    prefixes.push(d.as_bytes().to_vec())
                }
                _ => return bad(format!("--prefix: {p:?} must be '+' followed by digits")),
            }
        }
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                if a.starts_with(b) || b.starts_with(a) {
                    return bad("--prefix: prefixes must not overlap".into());
                }
            }
        }
        let total = o.numbers.checked_add(o.absent).filter(|t| *t < 1 << 62);
        let Some(total) = total else {
            return bad("--numbers/--absent: too many".into());
        };
        let count = prefixes.len() as u64;
        let per_prefix = total.div_ceil(count);
        let digits = match o.digits {
            Some(d) => d,
            None => (4..=15)
                .find(|d| 10u64.pow(*d) >= per_prefix.saturating_mul(4))
                .unwrap_or(15),
        };
        let longest = prefixes.iter().map(Vec::len).max().unwrap_or(0);
        if digits == 0 || longest + digits as usize > 15 {
            return bad(format!(
                "--digits: E.164 numbers have at most 15 digits (prefix {longest} + {digits})"
            ));
        }
        let space = 10u64.pow(digits);
        if per_prefix > space {
            return bad(format!(
                "--digits: {per_prefix} numbers per prefix do not fit in {digits} digits"
            ));
        }
        let (origin_digits, origin_name) = origin_parts(&o.origin)?;
        if let Some(p) = prefixes.iter().find(|p| !p.starts_with(&origin_digits)) {
            return bad(format!(
                "--origin: prefix +{} is not below {}",
                String::from_utf8_lossy(p),
                o.origin
            ));
        }
        let starts = (0..=count)
            .map(|i| (total as u128 * i as u128 / count as u128) as u64)
            .collect();
        Ok(Plan {
            prefixes,
            starts,
            digits,
            space,
            origin_digits: origin_digits.len(),
            origin_name,
            perm: Permutation::new(total, o.seed),
            seed: o.seed,
            absent: o.absent,
        })
    }

    fn total(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// Writes slot `g`'s number (`+` and digits) into `out`.
    fn number(&self, g: u64, out: &mut Vec<u8>) {
        let i = self.starts.partition_point(|s| *s <= g) - 1;
        let (local, slots) = (g - self.starts[i], self.starts[i + 1] - self.starts[i]);
        let lo = (local as u128 * self.space as u128 / slots as u128) as u64;
        let hi = ((local + 1) as u128 * self.space as u128 / slots as u128) as u64;
        let value = lo + Rng::new(self.seed, SALT_SLOT, g).below(hi - lo);
        out.clear();
        out.push(b'+');
        out.extend_from_slice(&self.prefixes[i]);
        let mut buf = itoa::Buffer::new();
        let text = buf.format(value);
        out.extend(std::iter::repeat_n(b'0', self.digits as usize - text.len()));
        out.extend_from_slice(text.as_bytes());
    }

    fn is_absent(&self, g: u64) -> bool {
        self.perm.apply(g) < self.absent
    }

    /// The owner name of `e164` relative to the origin: its remaining digits reversed.
    fn owner(&self, e164: &[u8], out: &mut Vec<u8>) {
        out.clear();
        for (k, d) in e164[1 + self.origin_digits..].iter().rev().enumerate() {
            if k > 0 {
                out.push(b'.');
            }
            out.push(*d);
        }
    }
}

/// The digits an origin's leading single-digit labels stand for, and the origin without
/// its trailing dot: `2.3.6.1.4.4.e164.arpa.` → ("441632", "2.3.6.1.4.4.e164.arpa").
fn origin_parts(origin: &str) -> Result<(Vec<u8>, String), GenError> {
    let Some(name) = origin.strip_suffix('.').filter(|n| !n.is_empty()) else {
        return Err(GenError::Invalid(format!(
            "--origin: {origin:?} must be a name with the trailing dot"
        )));
    };
    let mut digits: Vec<u8> = name
        .split('.')
        .take_while(|l| l.len() == 1 && l.as_bytes()[0].is_ascii_digit())
        .map(|l| l.as_bytes()[0])
        .collect();
    digits.reverse();
    Ok((digits, name.to_string()))
}

// ---------------------------------------------------------------------------------
// Records

/// The URI a record's regexp yields, in pieces so no line needs an allocation.
#[derive(Clone, Copy)]
struct Uri {
    /// `sip:`, `tel:` or a whole fixed URI.
    head: &'static str,
    /// The number follows the head (with `+`).
    number: bool,
    host: Option<&'static str>,
    /// `;transport=tcp`, `:5080` or nothing.
    tail: &'static str,
}

#[derive(Clone, Copy)]
enum Regexp {
    /// `!^.*$!URI!`
    Literal(Uri),
    /// `!^\+([0-9]+)$!sip:\1@HOST!`
    Backref(&'static str),
}

#[derive(Clone, Copy)]
struct Rec {
    order: u16,
    pref: u16,
    flags: &'static str,
    service: &'static str,
    regexp: Regexp,
}

const fn sip(host: &'static str, tail: &'static str) -> Regexp {
    Regexp::Literal(Uri {
        head: "sip:",
        number: true,
        host: Some(host),
        tail,
    })
}

const TEL: Regexp = Regexp::Literal(Uri {
    head: "tel:",
    number: true,
    host: None,
    tail: "",
});

const MAILTO: Regexp = Regexp::Literal(Uri {
    head: "mailto:voicemail@tenant.example.com",
    number: false,
    host: None,
    tail: "",
});

const fn rec(order: u16, pref: u16, service: &'static str, regexp: Regexp) -> Rec {
    Rec {
        order,
        pref,
        flags: "u",
        service,
        regexp,
    }
}

/// A number's category and records (at most three), from its own hash.
fn records(seed: u64, e164: &[u8], out: &mut Vec<Rec>) -> usize {
    let key = e164[1..]
        .iter()
        .fold(e164.len() as u64, |k, d| k * 10 + (d - b'0') as u64);
    let mut rng = Rng::new(seed, SALT_NUMBER, key);
    let mut roll = rng.below(100);
    let cat = CATEGORIES
        .iter()
        .position(|(_, _, w)| {
            let hit = roll < *w;
            roll = roll.saturating_sub(*w);
            hit
        })
        .unwrap_or(0);
    let h1 = rng.below(SBC_HOSTS.len() as u64) as usize;
    let h2 = PBX_HOSTS[rng.below(PBX_HOSTS.len() as u64) as usize];
    let sbc = SBC_HOSTS[h1];
    out.clear();
    match CATEGORIES[cat].0 {
        Category::Sip1 => out.push(rec(100, 10, "E2U+sip", sip(sbc, ""))),
        Category::Sip2Pref => out.extend([
            rec(100, 20, "E2U+sip", sip(h2, ";transport=tcp")),
            rec(100, 10, "E2U+sip", sip(sbc, "")),
        ]),
        Category::SipTel => out.extend([
            rec(100, 10, "E2U+sip", sip(sbc, "")),
            rec(100, 20, "E2U+pstn:tel", TEL),
        ]),
        Category::Order3 => out.extend([
            rec(200, 10, "E2U+sip", sip(h2, "")),
            rec(300, 10, "E2U+pstn:tel", TEL),
            rec(100, 50, "E2U+sip", sip(sbc, ":5080")),
        ]),
        Category::Backref => out.push(rec(100, 10, "E2U+sip", Regexp::Backref(h2))),
        Category::MixedCase => out.extend([
            Rec {
                flags: "U",
                ..rec(10, 10, "e2u+sip", sip(h2, ""))
            },
            rec(10, 20, "E2U+email:mailto", MAILTO),
        ]),
        Category::EqualPref => {
            // another SBC than h1
            let k = rng.below(SBC_HOSTS.len() as u64 - 1) as usize;
            let h3 = SBC_HOSTS[if k >= h1 { k + 1 } else { k }];
            out.extend([
                rec(100, 10, "E2U+sip", sip(sbc, "")),
                rec(100, 10, "E2U+sip", sip(h3, "")),
            ])
        }
    }
    cat
}

fn push_uri(out: &mut Vec<u8>, uri: &Uri, e164: &[u8]) {
    out.extend_from_slice(uri.head.as_bytes());
    if uri.number {
        out.extend_from_slice(e164);
    }
    if let Some(h) = uri.host {
        out.push(b'@');
        out.extend_from_slice(h.as_bytes());
    }
    out.extend_from_slice(uri.tail.as_bytes());
}

fn push_u(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// One master-file line: `OWNER NAPTR order pref "flags" "service" "regexp" .`
fn zone_line(out: &mut Vec<u8>, owner: &[u8], r: &Rec, e164: &[u8]) {
    out.extend_from_slice(owner);
    out.extend_from_slice(b" NAPTR ");
    push_u(out, r.order);
    out.push(b' ');
    push_u(out, r.pref);
    out.extend_from_slice(b" \"");
    out.extend_from_slice(r.flags.as_bytes());
    out.extend_from_slice(b"\" \"");
    out.extend_from_slice(r.service.as_bytes());
    out.extend_from_slice(b"\" \"");
    match &r.regexp {
        Regexp::Literal(u) => {
            out.extend_from_slice(b"!^.*$!");
            push_uri(out, u, e164);
            out.push(b'!');
        }
        Regexp::Backref(h) => {
            // the backslashes doubled for the master file
            out.extend_from_slice(b"!^\\\\+([0-9]+)$!sip:\\\\1@");
            out.extend_from_slice(h.as_bytes());
            out.push(b'!');
        }
    }
    out.extend_from_slice(b"\" .\n");
}

/// The admin API cannot carry every record as the zone has it; the imports hold the
/// nearest route that gives the same call routing:
/// - a back-reference regexp has no CSV form: the CSV gives the URI it yields
///   (`sip:DIGITS@HOST`); NDJSON keeps the regexp (raw route);
/// - flag `U` is refused by the API (only `u` or empty): the route is written with the
///   default flag `u` and service `E2U+sip` (routers compare both case-insensitively);
/// - the mailto record names its service (it is not routed, so the API keeps it only
///   when the service is given, with a warning).
fn api_service(r: &Rec) -> &'static str {
    if r.service == "E2U+email:mailto" {
        r.service
    } else {
        ""
    }
}

/// One CSV row: `number,uri,order,preference,ttl,service` (no field needs quoting).
fn csv_line(out: &mut Vec<u8>, r: &Rec, e164: &[u8], ttl: u32) {
    out.extend_from_slice(e164);
    out.push(b',');
    match &r.regexp {
        Regexp::Literal(u) => push_uri(out, u, e164),
        Regexp::Backref(h) => {
            out.extend_from_slice(b"sip:");
            out.extend_from_slice(&e164[1..]);
            out.push(b'@');
            out.extend_from_slice(h.as_bytes());
        }
    }
    out.push(b',');
    push_u(out, r.order);
    out.push(b',');
    push_u(out, r.pref);
    out.push(b',');
    push_u(out, ttl);
    out.push(b',');
    out.extend_from_slice(api_service(r).as_bytes());
    out.push(b'\n');
}

/// One NDJSON line: the number body (no string needs JSON escaping but the regexp's
/// backslashes).
fn ndjson_line(out: &mut Vec<u8>, recs: &[Rec], e164: &[u8], ttl: u32) {
    out.extend_from_slice(b"{\"number\":\"");
    out.extend_from_slice(e164);
    out.extend_from_slice(b"\",\"ttl\":");
    push_u(out, ttl);
    out.extend_from_slice(b",\"routes\":[");
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match &r.regexp {
            Regexp::Literal(u) => {
                out.extend_from_slice(b"{\"uri\":\"");
                push_uri(out, u, e164);
                out.push(b'"');
                let service = api_service(r);
                if !service.is_empty() {
                    out.extend_from_slice(b",\"service\":\"");
                    out.extend_from_slice(service.as_bytes());
                    out.push(b'"');
                }
            }
            Regexp::Backref(h) => {
                out.extend_from_slice(b"{\"regexp\":\"!^\\\\+([0-9]+)$!sip:\\\\1@");
                out.extend_from_slice(h.as_bytes());
                out.extend_from_slice(b"!\",\"service\":\"E2U+sip\"");
            }
        }
        out.extend_from_slice(b",\"order\":");
        push_u(out, r.order);
        out.extend_from_slice(b",\"preference\":");
        push_u(out, r.pref);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
}

// ---------------------------------------------------------------------------------
// Files

/// An output file written under a temporary name, renamed when complete, so a broken
/// run never leaves a file that looks whole.
struct Out {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<File>,
    bytes: u64,
}

impl Out {
    fn create(dir: &Path, name: &str) -> Result<Out, GenError> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| GenError::Io(tmp.clone(), e))?;
        Ok(Out {
            path,
            tmp,
            file: BufWriter::with_capacity(1 << 20, file),
            bytes: 0,
        })
    }

    fn maybe(on: bool, dir: &Path, name: &str) -> Result<Option<Out>, GenError> {
        on.then(|| Out::create(dir, name)).transpose()
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GenError> {
        self.bytes += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .map_err(|e| GenError::Io(self.tmp.clone(), e))
    }

    /// Flushes and renames; returns (file name, bytes).
    fn finish(self) -> Result<(String, u64), GenError> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| GenError::Io(self.tmp.clone(), e.into_error()))?;
        file.sync_all()
            .map_err(|e| GenError::Io(self.tmp.clone(), e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| GenError::Io(self.path.clone(), e))?;
        let name = self.path.file_name().unwrap_or_default();
        Ok((name.to_string_lossy().into_owned(), self.bytes))
    }
}

/// Writes the files `o.formats` asks for, and `manifest.txt`, into `o.out`.
pub fn generate(o: &Options) -> Result<Summary, GenError> {
    let plan = Plan::new(o)?;
    std::fs::create_dir_all(&o.out).map_err(|e| GenError::Io(o.out.clone(), e))?;
    let mut summary = Summary {
        numbers: o.numbers,
        absent: o.absent,
        digits: plan.digits,
        ..Summary::default()
    };
    if o.formats.zone || o.formats.csv || o.formats.ndjson {
        write_records(o, &plan, &mut summary)?;
    } else {
        // the counts of the manifest still hold
        count_records(o, &plan, &mut summary);
    }
    if o.formats.queries {
        let name = |e: &[u8], owner: &mut Vec<u8>, line: &mut Vec<u8>| {
            plan.owner(e, owner);
            line.extend_from_slice(owner);
            line.push(b'.');
            line.extend_from_slice(plan.origin_name.as_bytes());
            line.extend_from_slice(b" NAPTR\n");
        };
        write_shuffled(o, &plan, "dnsperf-present.txt", false, name, &mut summary)?;
        write_shuffled(o, &plan, "dnsperf-absent.txt", true, name, &mut summary)?;
    }
    if o.formats.lists {
        let e164 = |e: &[u8], _: &mut Vec<u8>, line: &mut Vec<u8>| {
            line.extend_from_slice(e);
            line.push(b'\n');
        };
        write_shuffled(o, &plan, "present.txt", false, e164, &mut summary)?;
        write_shuffled(o, &plan, "absent.txt", true, e164, &mut summary)?;
    }
    write_manifest(o, &summary)?;
    Ok(summary)
}

/// Bytes gathered before a write: one `write_all` per block, not per line.
const BLOCK: usize = 256 << 10;

/// The zone, CSV and NDJSON in one pass over the slots, in number order.
fn write_records(o: &Options, plan: &Plan, summary: &mut Summary) -> Result<(), GenError> {
    let mut zone = Out::maybe(o.formats.zone, &o.out, "numbers.zone")?;
    let mut csv = Out::maybe(o.formats.csv, &o.out, "numbers.csv")?;
    let mut ndjson = Out::maybe(o.formats.ndjson, &o.out, "numbers.ndjson")?;
    if let Some(z) = zone.as_mut() {
        z.write(zone_header(o, plan).as_bytes())?;
    }
    if let Some(c) = csv.as_mut() {
        c.write(b"number,uri,order,preference,ttl,service\n")?;
    }
    let (mut zbuf, mut cbuf, mut nbuf) = (Vec::new(), Vec::new(), Vec::new());
    let (mut e164, mut owner, mut recs) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..plan.total() {
        if plan.is_absent(g) {
            continue;
        }
        plan.number(g, &mut e164);
        let cat = records(o.seed, &e164, &mut recs);
        summary.categories[cat] += 1;
        summary.naptr_records += recs.len() as u64;
        if zone.is_some() {
            plan.owner(&e164, &mut owner);
            for r in &recs {
                zone_line(&mut zbuf, &owner, r, &e164);
            }
        }
        if csv.is_some() {
            for r in &recs {
                csv_line(&mut cbuf, r, &e164, o.ttl);
            }
        }
        if ndjson.is_some() {
            ndjson_line(&mut nbuf, &recs, &e164, o.ttl);
        }
        for (buf, out) in [
            (&mut zbuf, &mut zone),
            (&mut cbuf, &mut csv),
            (&mut nbuf, &mut ndjson),
        ] {
            if let Some(out) = out.as_mut().filter(|_| buf.len() >= BLOCK) {
                out.write(buf)?;
                buf.clear();
            }
        }
    }
    for (buf, out) in [(zbuf, zone), (cbuf, csv), (nbuf, ndjson)] {
        if let Some(mut out) = out {
            out.write(&buf)?;
            summary.files.push(out.finish()?);
        }
    }
    Ok(())
}

/// Calls `visit` for every slot of the plan in number order: the E.164 number (`+`
/// and digits) and its NAPTR rdatas in wire form, or `None` for a number deliberately
/// left out. For building a zone in memory without files (`examples/bench compact`,
/// which includes this file; `gen_numbers` itself does not call it).
#[allow(dead_code)]
pub fn for_each_number(
    o: &Options,
    mut visit: impl FnMut(&[u8], Option<&[Vec<u8>]>),
) -> Result<(), GenError> {
    let plan = Plan::new(o)?;
    let (mut e164, mut recs, mut wire) = (Vec::new(), Vec::new(), Vec::<Vec<u8>>::new());
    for g in 0..plan.total() {
        plan.number(g, &mut e164);
        if plan.is_absent(g) {
            visit(&e164, None);
            continue;
        }
        records(o.seed, &e164, &mut recs);
        wire.resize_with(recs.len(), Vec::new);
        for (r, out) in recs.iter().zip(wire.iter_mut()) {
            naptr_wire(out, r, &e164);
        }
        visit(&e164, Some(&wire));
    }
    Ok(())
}

/// One NAPTR rdata in wire form (RFC 3403 §4.1), replacement `.`.
#[allow(dead_code)]
fn naptr_wire(out: &mut Vec<u8>, r: &Rec, e164: &[u8]) {
    out.clear();
    out.extend_from_slice(&r.order.to_be_bytes());
    out.extend_from_slice(&r.pref.to_be_bytes());
    let mut regexp = Vec::new();
    match &r.regexp {
        Regexp::Literal(u) => {
            regexp.extend_from_slice(b"!^.*$!");
            push_uri(&mut regexp, u, e164);
            regexp.push(b'!');
        }
        Regexp::Backref(h) => {
            regexp.extend_from_slice(b"!^\\+([0-9]+)$!sip:\\1@");
            regexp.extend_from_slice(h.as_bytes());
            regexp.push(b'!');
        }
    }
    for cs in [r.flags.as_bytes(), r.service.as_bytes(), &regexp] {
        out.push(cs.len() as u8);
        out.extend_from_slice(cs);
    }
    out.push(0);
}

/// The counts of [`write_records`] without writing (a run for query files only).
fn count_records(o: &Options, plan: &Plan, summary: &mut Summary) {
    let (mut e164, mut recs) = (Vec::new(), Vec::new());
    for g in (0..plan.total()).filter(|g| !plan.is_absent(*g)) {
        plan.number(g, &mut e164);
        summary.categories[records(o.seed, &e164, &mut recs)] += 1;
        summary.naptr_records += recs.len() as u64;
    }
}

fn zone_header(o: &Options, plan: &Plan) -> String {
    let prefixes: Vec<_> = plan
        .prefixes
        .iter()
        .map(|p| format!("+{}", String::from_utf8_lossy(p)))
        .collect();
    let origin = &o.origin;
    format!(
        "; generated by gen_numbers numbers={} prefixes={} digits={} seed={}\n\
         $ORIGIN {origin}\n$TTL {}\n\
         @ SOA ns.{origin} hostmaster.{origin} 1 3600 900 604800 {}\n\
         @ NS ns.{origin}\nns A {}\n",
        o.numbers,
        prefixes.join(","),
        plan.digits,
        o.seed,
        o.ttl,
        o.neg_ttl,
        o.ns_addr
    )
}

/// A list of the present (or absent) numbers in the permutation's order: a shuffle
/// that needs no memory.
fn write_shuffled(
    o: &Options,
    plan: &Plan,
    name: &str,
    absent: bool,
    line: impl Fn(&[u8], &mut Vec<u8>, &mut Vec<u8>),
    summary: &mut Summary,
) -> Result<(), GenError> {
    let mut out = Out::create(&o.out, name)?;
    let range = if absent {
        0..plan.absent
    } else {
        plan.absent..plan.total()
    };
    let (mut e164, mut scratch, mut buf) = (Vec::new(), Vec::new(), Vec::new());
    for j in range {
        plan.number(plan.perm.invert(j), &mut e164);
        line(&e164, &mut scratch, &mut buf);
        if buf.len() >= BLOCK {
            out.write(&buf)?;
            buf.clear();
        }
    }
    out.write(&buf)?;
    summary.files.push(out.finish()?);
    Ok(())
}

fn write_manifest(o: &Options, s: &Summary) -> Result<(), GenError> {
    let mut text = format!(
        "numbers={}\nabsent={}\nprefixes={}\ndigits={}\nseed={}\norigin={}\nttl={}\nneg_ttl={}\nnaptr_records={}\n",
        s.numbers,
        s.absent,
        o.prefixes.join(","),
        s.digits,
        o.seed,
        o.origin,
        o.ttl,
        o.neg_ttl,
        s.naptr_records
    );
    for ((_, name, _), n) in CATEGORIES.iter().zip(s.categories) {
        text.push_str(&format!("category_{name}={n}\n"));
    }
    let mut out = Out::create(&o.out, "manifest.txt")?;
    out.write(text.as_bytes())?;
    out.finish().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_bijection_both_ways() {
        for n in [1u64, 2, 3, 7, 100, 1000, 4097] {
            let p = Permutation::new(n, 9);
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = p.apply(x);
                assert!(!seen[y as usize], "n={n}: {y} twice");
                seen[y as usize] = true;
                assert_eq!(p.invert(y), x);
            }
        }
    }
}
