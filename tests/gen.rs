//! The test-set generator (`examples/gen_numbers`): one seed gives byte-identical files,
//! its zone loads with the record count and category mix it reports, and its CSV and
//! NDJSON, imported through the admin API, give the zone's NAPTR records (in the
//! nearest form the API takes where it refuses the zone's, as the generator documents).

mod common;

#[allow(dead_code)] // the generator's whole API; the test calls part of it
#[path = "../examples/gen_numbers/set.rs"]
mod set;

use common::{Enroute, dns_query};
use enroute::name::Name;
use enroute::zone::Zone;
use std::path::Path;

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";
const NUMBERS: u64 = 10_000;

fn options(out: &Path, seed: u64, formats: &str) -> set::Options {
    set::Options {
        numbers: NUMBERS,
        absent: 100,
        // two prefixes, 5050 slots each in 10^4 numbers: dense enough to test the slots
        prefixes: vec!["+4416329".into(), "+4416328".into()],
        digits: Some(4),
        seed,
        origin: ORIGIN.into(),
        ttl: 3600,
        neg_ttl: 300,
        ns_addr: "127.0.0.1".into(),
        formats: set::Formats::parse(formats).unwrap(),
        out: out.to_path_buf(),
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn one_seed_gives_byte_identical_files() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = set::generate(&options(a.path(), 7, "all")).unwrap();
    let second = set::generate(&options(b.path(), 7, "all")).unwrap();
    assert_eq!(first, second);
    let names = [
        "numbers.zone",
        "numbers.csv",
        "numbers.ndjson",
        "dnsperf-present.txt",
        "dnsperf-absent.txt",
        "present.txt",
        "absent.txt",
        "manifest.txt",
    ];
    for name in names {
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
            "{name} differs between two runs with one seed"
        );
    }
    set::generate(&options(c.path(), 8, "lists")).unwrap();
    assert_ne!(read(a.path(), "present.txt"), read(c.path(), "present.txt"));
    // no temporary file left behind
    let left: Vec<_> = std::fs::read_dir(a.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), names.len());
}

/// A NAPTR rdata's (order, preference, flags, service, regexp).
fn naptr(rdata: &[u8]) -> (u16, u16, String, String, String) {
    let mut at = 4;
    let mut text = || {
        let len = rdata[at] as usize;
        let s = String::from_utf8(rdata[at + 1..at + 1 + len].to_vec()).unwrap();
        at += 1 + len;
        s
    };
    let (flags, service, regexp) = (text(), text(), text());
    let be = |i: usize| u16::from_be_bytes([rdata[i], rdata[i + 1]]);
    (be(0), be(2), flags, service, regexp)
}

/// The category gen-zone.py's shapes give away, from a number's records.
fn category(recs: &[(u16, u16, String, String, String)]) -> &'static str {
    match recs {
        [r] if r.4.starts_with("!^\\+([0-9]+)$!") => "backref",
        [_] => "sip1",
        [_, _, _] => "order3",
        [a, _] if a.2 == "U" => "mixedcase",
        [_, b] if b.3 == "E2U+pstn:tel" => "sip_tel",
        [a, b] if a.1 != b.1 => "sip2pref",
        [_, _] => "equalpref",
        _ => panic!("unexpected shape {recs:?}"),
    }
}

/// The labels below the apex of `e164` (its digits after the origin's).
fn below_apex(e164: &str) -> Vec<Vec<u8>> {
    e164[7..].bytes().map(|d| vec![d]).collect()
}

#[test]
fn generated_zone_loads_with_the_reported_count_and_mix() {
    let dir = tempfile::tempdir().unwrap();
    let summary = set::generate(&options(dir.path(), 11, "zone,lists,queries")).unwrap();
    let origin = Name::from_text(ORIGIN).unwrap();
    let text = read(dir.path(), "numbers.zone");
    let (zone, warnings) = Zone::from_master(text.as_bytes(), "numbers.zone", &origin, None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(warnings.is_empty(), "{warnings:?}");

    let present: Vec<String> = read(dir.path(), "present.txt")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(present.len() as u64, NUMBERS);
    let mut records = 0;
    let mut mix = std::collections::HashMap::new();
    for n in &present {
        let (ttl, rdatas) = zone
            .naptr_at(&below_apex(n))
            .unwrap_or_else(|| panic!("{n} missing"));
        assert_eq!(ttl, 3600);
        let recs: Vec<_> = rdatas.iter().map(|r| naptr(r)).collect();
        records += recs.len() as u64;
        let cat = category(&recs);
        *mix.entry(cat).or_insert(0u64) += 1;
        // the records that carry the number carry this one
        for r in recs
            .iter()
            .filter(|r| r.4.starts_with("!^.*$!sip:") || r.4.starts_with("!^.*$!tel:"))
        {
            assert!(r.4.contains(&format!(":{n}")), "{n}: {r:?}");
        }
    }
    assert_eq!(records, summary.naptr_records);
    let manifest = read(dir.path(), "manifest.txt");
    assert!(
        manifest.contains(&format!("naptr_records={records}\n")),
        "{manifest}"
    );
    for ((_, name, weight), reported) in set::CATEGORIES.iter().zip(summary.categories) {
        let seen = mix.get(name).copied().unwrap_or(0);
        assert_eq!(seen, reported, "{name}");
        assert!(manifest.contains(&format!("category_{name}={seen}\n")));
        // within 4.5 standard deviations of the weight
        let p = *weight as f64 / 100.0;
        let sd = (NUMBERS as f64 * p * (1.0 - p)).sqrt();
        let want = NUMBERS as f64 * p;
        assert!(
            (seen as f64 - want).abs() < 4.5 * sd,
            "{name}: {seen}, want about {want}"
        );
    }
    for n in read(dir.path(), "absent.txt").lines() {
        assert!(
            zone.naptr_at(&below_apex(n)).is_none(),
            "absent {n} is in the zone"
        );
    }
    let dnsperf = read(dir.path(), "dnsperf-present.txt");
    assert!(dnsperf.ends_with(" NAPTR\n"));
    assert_eq!(dnsperf.lines().count() as u64, NUMBERS);
}

/// A number's NAPTR records as DNS answers them: (ttl, order, pref, flags, service,
/// regexp), sorted.
fn dns_naptrs(port: u16, e164: &str) -> Vec<(u32, u16, u16, String, String, String)> {
    let name: String = e164[1..]
        .chars()
        .rev()
        .flat_map(|d| [d, '.'])
        .collect::<String>()
        + "e164.arpa.";
    let m = dns_query(port, &name, 35).unwrap_or_else(|| panic!("no DNS answer for {name}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out: Vec<_> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::NAPTR(n) => Some((
                r.ttl,
                n.order,
                n.preference,
                text(&n.flags),
                text(&n.services),
                text(&n.regexp),
            )),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The record the admin API holds for a zone record it cannot take as it is: flag `U`
/// becomes `u` with service `E2U+sip`; in CSV a back-reference regexp becomes the URI
/// it yields for the number.
fn api_form(
    mut r: (u32, u16, u16, String, String, String),
    e164: &str,
    csv: bool,
) -> (u32, u16, u16, String, String, String) {
    if r.3 == "U" {
        (r.3, r.4) = ("u".into(), "E2U+sip".into());
    }
    if let Some(host) = r.5.strip_prefix("!^\\+([0-9]+)$!sip:\\1@").filter(|_| csv) {
        r.5 = format!("!^.*$!sip:{}@{host}", &e164[1..]);
    }
    r
}

fn import(server: &Enroute, ctype: &str, body: &[u8]) -> serde_json::Value {
    let r = server.api("POST", "/v1/numbers:import", ctype, body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn csv_and_ndjson_import_give_the_zone_records() {
    let dir = tempfile::tempdir().unwrap();
    let summary = set::generate(&options(dir.path(), 5, "zone,csv,ndjson,lists")).unwrap();
    let zone_text = read(dir.path(), "numbers.zone");
    // the same SOA and NS, no numbers
    let header: String = zone_text
        .lines()
        .take_while(|l| !l.contains(" NAPTR "))
        .map(|l| format!("{l}\n"))
        .collect();
    let from_file = Enroute::start(&zone_text, "");
    let imported = Enroute::start(&header, "");

    let answer = import(
        &imported,
        "text/csv",
        read(dir.path(), "numbers.csv").as_bytes(),
    );
    assert_eq!(answer["numbers"], NUMBERS, "{answer}");
    assert_eq!(answer["routes"], summary.naptr_records, "{answer}");
    let present = read(dir.path(), "present.txt");
    // present.txt is shuffled: its first numbers are a random sample
    let sample: Vec<&str> = present.lines().take(300).collect();
    let compare = |csv: bool| {
        let mut changed = 0;
        for n in &sample {
            let want: Vec<_> = dns_naptrs(from_file.dns, n);
            assert!(!want.is_empty(), "{n} not answered from the file");
            let mut want_api: Vec<_> = want.iter().cloned().map(|r| api_form(r, n, csv)).collect();
            want_api.sort();
            changed += usize::from(want_api != want);
            assert_eq!(dns_naptrs(imported.dns, n), want_api, "{n}");
        }
        changed
    };
    // some sampled numbers have records the CSV carries in another form, most not
    let changed = compare(true);
    assert!(changed > 0 && changed < sample.len() / 4, "{changed}");

    let answer = import(
        &imported,
        "application/x-ndjson",
        read(dir.path(), "numbers.ndjson").as_bytes(),
    );
    assert_eq!(answer["numbers"], NUMBERS, "{answer}");
    // NDJSON keeps the back-reference regexps byte for byte
    let changed = compare(false);
    assert!(changed < sample.len() / 10, "{changed}");
}
