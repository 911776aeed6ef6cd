//! Differential test against a real peer: Knot DNS serving the same master files. For a
//! generated zone of 12,000 numbers with wildcards, empty non-terminals and several record
//! types (looked up through the digit index), and a second zone with a delegation (looked
//! up by the walk alone), every name class gets the same answer (rcode, AA, answer
//! records; for referrals the NS set) from the index as from Knot over the wire.

mod common;

use enroute::name::Name;
use enroute::name::TYPE_NAPTR;
use enroute::zone::index::Lookup;
use enroute::zone::{Zone, ZoneSet};
use hickory_proto::op::ResponseCode;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use std::collections::BTreeSet;

const ORIGIN: &str = "5.5.5.1.e164.arpa.";
/// A second zone: the same kind of numbers plus a delegation (ENUM tier-2 style).
const CUT_ORIGIN: &str = "6.6.6.1.e164.arpa.";
const CUT_ZONE: &str = "$ORIGIN 6.6.6.1.e164.arpa.\n$TTL 600\n\
@ SOA ns1.example.net. hostmaster.example.net. 5 3600 900 604800 120\n@ NS ns1.example.net.\n\
1.0.0.0 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x.example!\" .\n\
*.2 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:w@x.example!\" .\n\
3 NS ns.3.6.6.6.1.e164.arpa.\nns.3 A 192.0.2.53\n\
sub NS ns.sub.example.net.\n";

/// Deterministic generator (64-bit LCG) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn owner(digits: &str) -> String {
    digits
        .chars()
        .rev()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

struct Generated {
    text: String,
    numbers: Vec<String>,
    wild_prefixes: Vec<String>,
}

fn generate() -> Generated {
    let mut rng = Rng(4592);
    let mut text = format!(
        "$ORIGIN {ORIGIN}\n$TTL 3600\n@ SOA ns1.example.net. hostmaster.example.net. 2026112401 3600 900 604800 300\n\
         @ NS ns1.example.net.\n@ NS ns2.example.net.\n@ TXT \"apex text\"\n"
    );
    let mut numbers = BTreeSet::new();
    while numbers.len() < 12_000 {
        numbers.insert(format!("{:07}", rng.below(10_000_000)));
    }
    let numbers: Vec<String> = numbers.into_iter().collect();
    for (i, n) in numbers.iter().enumerate() {
        let o = owner(n);
        let ttl = [300, 600, 3600][i % 3];
        text.push_str(&format!("{o} {ttl} NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:+1555{n}@sbc{}.example.net!\" .\n", i % 8));
        if i % 4 == 0 {
            text.push_str(&format!(
                "{o} {ttl} NAPTR 100 20 \"u\" \"E2U+pstn:tel\" \"!^.*$!tel:+1555{n}!\" .\n"
            ));
        }
        if i % 50 == 0 {
            text.push_str(&format!("{o} TXT \"number {n}\"\n"));
        }
    }
    // Wildcards on 3-digit prefixes: most also have numbers below them, so their ENTs
    // hide the wildcard for part of the range (RFC 4592 §2.2.2).
    let mut wild_prefixes = BTreeSet::new();
    while wild_prefixes.len() < 40 {
        wild_prefixes.insert(format!("{:03}", rng.below(1000)));
    }
    for p in &wild_prefixes {
        text.push_str(&format!("*.{} NAPTR 100 10 \"u\" \"E2U+sip\" \"!^\\\\+(.*)$!sip:\\\\1@wild{p}.example.net!\" .\n", owner(p)));
    }
    // a wildcard whose owner is itself below a number-free branch, and one at a deep level
    text.push_str(
        "*.9.9.9.9 NAPTR 10 10 \"u\" \"E2U+sip\" \"!^.*$!sip:deep@wild.example.net!\" .\n",
    );
    Generated {
        text,
        numbers,
        wild_prefixes: wild_prefixes.into_iter().collect(),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Answer {
    rcode: String,
    aa: bool,
    /// (type, rdata) of answer records owned by the query name
    records: BTreeSet<(u16, Vec<u8>)>,
    /// NS rdatas in authority, for referrals
    referral_ns: BTreeSet<Vec<u8>>,
}

fn rdata_wire(r: &hickory_proto::rr::Record) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = BinEncoder::new(&mut out);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    r.data.emit(&mut enc).unwrap();
    out
}

fn knot_answer(port: u16, qname: &str, qtype: u16) -> Answer {
    let resp = common::dns_query(port, qname, qtype)
        .unwrap_or_else(|| panic!("knot did not answer {qname}"));
    let referral = !resp.metadata.authoritative;
    Answer {
        rcode: format!("{:?}", resp.metadata.response_code),
        aa: resp.metadata.authoritative,
        records: resp
            .answers
            .iter()
            .map(|r| (u16::from(r.record_type()), rdata_wire(r)))
            .collect(),
        referral_ns: if referral {
            resp.authorities
                .iter()
                .filter(|r| u16::from(r.record_type()) == 2)
                .map(rdata_wire)
                .collect()
        } else {
            BTreeSet::new()
        },
    }
}

fn our_answer(set: &ZoneSet, qname: &str, qtype: u16) -> Answer {
    let name = Name::from_text(qname).unwrap();
    let root_side: Vec<&[u8]> = name.labels().iter().rev().map(|l| &l[..]).collect();
    let zones = set.load();
    let Some(zone) = zones.find(&root_side) else {
        return Answer {
            rcode: format!("{:?}", ResponseCode::Refused),
            aa: false,
            records: BTreeSet::new(),
            referral_ns: BTreeSet::new(),
        };
    };
    let set_of = |rrset: enroute::zone::index::RrSet<'_>| {
        rrset.rdatas().map(|r| (rrset.rtype, r.to_vec())).collect()
    };
    let ok = format!("{:?}", ResponseCode::NoError);
    match zone.tree.lookup(&root_side[zone.origin_len()..], qtype) {
        Lookup::Answer { rrset, .. } | Lookup::Cname { rrset, .. } => Answer {
            rcode: ok,
            aa: true,
            records: set_of(rrset),
            referral_ns: BTreeSet::new(),
        },
        Lookup::NoData { .. } => Answer {
            rcode: ok,
            aa: true,
            records: BTreeSet::new(),
            referral_ns: BTreeSet::new(),
        },
        Lookup::NxDomain => Answer {
            rcode: format!("{:?}", ResponseCode::NXDomain),
            aa: true,
            records: BTreeSet::new(),
            referral_ns: BTreeSet::new(),
        },
        Lookup::Referral { ns, .. } => Answer {
            rcode: ok,
            aa: false,
            records: BTreeSet::new(),
            referral_ns: ns.rdatas().map(|r| r.to_vec()).collect(),
        },
    }
}

/// Every name class of both zones: (class, qname, qtype).
fn build_queries(g: &Generated) -> Vec<(&'static str, String, u16)> {
    let mut rng = Rng(8482);
    let fq = |digits: &str| format!("{}.{ORIGIN}", owner(digits));
    // (class, qname, qtype)
    let mut queries: Vec<(&'static str, String, u16)> = Vec::new();
    for n in &g.numbers {
        queries.push(("exact", fq(n), TYPE_NAPTR));
    }
    for n in g.numbers.iter().step_by(7) {
        queries.push(("other type at a number", fq(n), 1));
        queries.push(("TXT at a number", fq(n), 16));
        queries.push(("empty non-terminal", fq(&n[..5]), TYPE_NAPTR));
        queries.push(("below a number", fq(&format!("{n}1")), TYPE_NAPTR));
    }
    for _ in 0..3000 {
        queries.push((
            "random absent or covered",
            fq(&format!("{:07}", rng.below(10_000_000))),
            TYPE_NAPTR,
        ));
    }
    for p in &g.wild_prefixes {
        for _ in 0..20 {
            let n = format!("{p}{:04}", rng.below(10_000));
            queries.push(("wildcard range", fq(&n), TYPE_NAPTR));
            queries.push(("wildcard range, other type", fq(&n), 1));
        }
        queries.push(("wildcard owner's parent", fq(p), TYPE_NAPTR));
        queries.push(("the wildcard itself", format!("*.{}", fq(p)), TYPE_NAPTR));
    }
    queries.push(("deep wildcard", fq("999912345"), TYPE_NAPTR));
    for qtype in [6, 2, TYPE_NAPTR, 16, 1] {
        queries.push(("apex", ORIGIN.to_string(), qtype));
    }
    for (class, name, qtype) in [
        ("cut zone: number", "1.0.0.0", TYPE_NAPTR),
        ("cut zone: absent", "2.0.0.0", TYPE_NAPTR),
        ("cut zone: wildcard", "5.4.2", TYPE_NAPTR),
        ("cut zone: ENT", "0.0", TYPE_NAPTR),
        ("delegation", "3", TYPE_NAPTR),
        ("delegation", "9.9.3", TYPE_NAPTR),
        ("delegation", "sub", 1),
        ("delegation", "x.y.sub", 1),
    ] {
        queries.push((class, format!("{name}.{CUT_ORIGIN}"), qtype));
    }
    queries.push(("outside", "4.4.e164.arpa.".to_string(), TYPE_NAPTR));
    queries.push(("outside", "example.net.".to_string(), 1));
    queries.push((
        "parent of origin",
        "5.5.1.e164.arpa.".to_string(),
        TYPE_NAPTR,
    ));

    queries
}

#[test]
fn index_answers_match_knot() {
    let g = generate();
    let knot = common::Knot::start(&[(ORIGIN, &g.text), (CUT_ORIGIN, CUT_ZONE)]);
    let origin = Name::from_text(ORIGIN).unwrap();
    let (zone, warnings) = Zone::from_master(g.text.as_bytes(), "gen.zone", &origin, None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        zone.tree.numbers().is_some(),
        "the generated zone must exercise the compact form"
    );
    let cut_origin = Name::from_text(CUT_ORIGIN).unwrap();
    let (cut_zone, _) =
        Zone::from_master(CUT_ZONE.as_bytes(), "cut.zone", &cut_origin, None).unwrap();
    assert!(
        cut_zone.tree.numbers().is_none(),
        "a zone with a delegation keeps its numbers in the trie"
    );
    let set = ZoneSet::new(vec![zone, cut_zone]);

    let queries = build_queries(&g);

    let mut classes: std::collections::BTreeMap<&str, (usize, BTreeSet<String>)> =
        Default::default();
    let mut mismatches = Vec::new();
    for (class, qname, qtype) in &queries {
        let theirs = knot_answer(knot.port, qname, *qtype);
        let ours = our_answer(&set, qname, *qtype);
        let entry = classes.entry(class).or_default();
        entry.0 += 1;
        entry.1.insert(format!(
            "{}{}",
            theirs.rcode,
            if theirs.records.is_empty() {
                ""
            } else {
                "+data"
            }
        ));
        if theirs != ours {
            mismatches.push(format!(
                "{class}: {qname} type {qtype}\n  knot: {theirs:?}\n  ours: {ours:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} answers differ; first ones:\n{}",
        mismatches.len(),
        queries.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
    // The classes really exercised what they claim (so this test cannot pass vacuously).
    let seen =
        |class: &str, outcome: &str| classes.get(class).is_some_and(|c| c.1.contains(outcome));
    assert!(seen("exact", "NoError+data"));
    assert!(seen("empty non-terminal", "NoError"));
    assert!(seen("random absent or covered", "NXDomain"));
    assert!(seen("wildcard range", "NoError+data"));
    assert!(
        seen("wildcard range", "NXDomain"),
        "some wildcard ranges must be hidden by ENTs"
    );
    assert!(seen("wildcard range, other type", "NoError"));
    assert!(seen("outside", "Refused"));
    assert!(seen("delegation", "NoError"));
    assert!(seen("cut zone: number", "NoError+data"));
    assert!(seen("cut zone: wildcard", "NoError+data"));
    eprintln!("{} queries compared: {classes:?}", queries.len());
}

/// A whole DNS answer as a client sees it: header bits and every section's records
/// (owner in lower case, type, TTL, uncompressed rdata), OPT left out.
#[derive(Debug, PartialEq, Eq)]
struct Wire {
    rcode: String,
    aa: bool,
    tc: bool,
    answer: BTreeSet<(String, u16, u32, Vec<u8>)>,
    authority: BTreeSet<(String, u16, u32, Vec<u8>)>,
    additional: BTreeSet<(String, u16, u32, Vec<u8>)>,
}

fn wire_view(m: &hickory_proto::op::Message) -> Wire {
    let set = |rs: &[hickory_proto::rr::Record]| {
        rs.iter()
            .filter(|r| u16::from(r.record_type()) != 41)
            .map(|r| {
                (
                    r.name.to_ascii().to_ascii_lowercase(),
                    u16::from(r.record_type()),
                    r.ttl,
                    rdata_wire(r),
                )
            })
            .collect()
    };
    Wire {
        rcode: format!("{:?}", m.metadata.response_code),
        aa: m.metadata.authoritative,
        tc: m.metadata.truncation,
        answer: set(&m.answers),
        authority: set(&m.authorities),
        additional: set(&m.additionals),
    }
}

/// The DNS listener against Knot serving the same files, over UDP and TCP: for every
/// name class, the same rcode, AA and TC flags, and the same answer, authority (SOA for
/// negative answers, NS for referrals) and additional (glue) records.
#[test]
fn listener_answers_match_knot_over_udp_and_tcp() {
    let g = generate();
    let knot = common::Knot::start(&[(ORIGIN, &g.text), (CUT_ORIGIN, CUT_ZONE)]);
    let server = common::Enroute::start_with(
        "",
        &format!(
            "[[zone]]\norigin = \"{ORIGIN}\"\nfile = \"gen.zone\"\n\
             [[zone]]\norigin = \"{CUT_ORIGIN}\"\nfile = \"cut.zone\"\n"
        ),
        &[],
        |dir| {
            std::fs::write(dir.join("gen.zone"), &g.text).unwrap();
            std::fs::write(dir.join("cut.zone"), CUT_ZONE).unwrap();
        },
    );
    let queries = build_queries(&g);
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let mut rcodes = BTreeSet::new();
    // All go over UDP; every sixth and every rare class over TCP too.
    for (i, (class, qname, qtype)) in queries.iter().enumerate() {
        let theirs = common::dns_query(knot.port, qname, *qtype).expect("knot answers");
        let ours = common::dns_query(server.dns, qname, *qtype).expect("enroute answers");
        let (t, o) = (wire_view(&theirs), wire_view(&ours));
        rcodes.insert(t.rcode.clone());
        if t != o {
            mismatches.push(format!(
                "UDP {class}: {qname} type {qtype}\n  knot: {t:?}\n  ours: {o:?}"
            ));
        }
        compared += 1;
        if i % 6 == 0 || !class.starts_with("exact") && !class.starts_with("random") {
            let t = wire_view(&common::dns_query_tcp(knot.port, qname, *qtype));
            let o = wire_view(&common::dns_query_tcp(server.dns, qname, *qtype));
            if t != o {
                mismatches.push(format!(
                    "TCP {class}: {qname} type {qtype}\n  knot: {t:?}\n  ours: {o:?}"
                ));
            }
            compared += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {compared} answers differ; first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(6)].join("\n")
    );
    for rcode in ["NoError", "NXDomain", "Refused"] {
        assert!(rcodes.contains(rcode), "{rcode} never seen: {rcodes:?}");
    }
    eprintln!("{compared} wire answers compared with Knot");
}
