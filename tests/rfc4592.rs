//! RFC 4592 wildcard semantics and RFC 1034 §4.3.2 negative answers of the zone index,
//! on a zone loaded from master-file text.

use enroute::name::Name;
use enroute::name::{TYPE_A, TYPE_NAPTR, TYPE_NS, TYPE_SOA};
use enroute::zone::index::Lookup;
use enroute::zone::{Zone, ZoneSet};

const ZONE: &str = r#"
$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@        SOA ns.example. hostmaster.example. 1 3600 900 604800 60
@        NS  ns.example.
; wildcard for the +44 1632 97 range
*.7.9    NAPTR 100 10 "u" "E2U+sip" "!^\\+(.*)$!sip:\\1@trunk.example!" .
; a number below the wildcard's owner: 0.0.7.9 and 0.0.0.7.9 become empty
; non-terminals, and the ENT 0.0.7.9 hides the wildcard for 0.0.7.9's other children
1.0.0.0.7.9  NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:exact@x.example!" .
; a plain number
1.0.0.0.6.9  NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:plain@x.example!" .
; a wildcard at the apex: covers every name that nothing else covers
*            TXT "apex wildcard"
; a delegation with glue
sub          NS  ns.sub.2.3.6.1.4.4.e164.arpa.
ns.sub       A   192.0.2.53
"#;

fn zone() -> Zone {
    let origin = Name::from_text("2.3.6.1.4.4.e164.arpa.").unwrap();
    let (z, warnings) = Zone::from_master(ZONE.as_bytes(), "t.zone", &origin, None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    z
}

/// Labels below the apex for a number's remaining digits (`"960001"` -> 9,6,0,0,0,1).
fn below(digits: &str) -> Vec<String> {
    digits.chars().map(|c| c.to_string()).collect()
}

fn outcome(z: &Zone, labels: &[String], qtype: u16) -> String {
    match z.tree.lookup(labels, qtype) {
        Lookup::Answer {
            rrset, wildcard, ..
        } => {
            format!(
                "answer{} {}",
                if wildcard { " wildcard" } else { "" },
                rrset.count
            )
        }
        Lookup::Cname { .. } => "cname".into(),
        Lookup::NoData { wildcard, .. } => {
            format!("nodata{}", if wildcard { " wildcard" } else { "" })
        }
        Lookup::NxDomain => "nxdomain".into(),
        Lookup::Referral { depth, .. } => format!("referral {depth}"),
    }
}

#[test]
fn wildcard_match_and_non_match() {
    let z = zone();
    assert_eq!(
        outcome(&z, &below("971234"), TYPE_NAPTR),
        "answer wildcard 1"
    );
    // more labels below the wildcard's parent still match (RFC 4592 §2.1.1)
    assert_eq!(
        outcome(&z, &below("9712345678"), TYPE_NAPTR),
        "answer wildcard 1"
    );
    // the exact number under the wildcard's owner
    assert_eq!(outcome(&z, &below("970001"), TYPE_NAPTR), "answer 1");
    // the wildcard's parent itself is not covered by it
    assert_eq!(outcome(&z, &below("97"), TYPE_NAPTR), "nodata");
}

#[test]
fn empty_non_terminal_hides_wildcard() {
    let z = zone();
    // 9.7.0.0 is ENT (exists because of 1.0.0.0.7.9): its other children get NXDOMAIN,
    // not the *.7.9 wildcard (RFC 4592 §2.2.2 / §3.3.1)
    assert_eq!(outcome(&z, &below("970002"), TYPE_NAPTR), "nxdomain");
    assert_eq!(outcome(&z, &below("97009"), TYPE_NAPTR), "nxdomain");
    // the ENT itself: NODATA
    assert_eq!(outcome(&z, &below("9700"), TYPE_NAPTR), "nodata");
    assert_eq!(outcome(&z, &below("97000"), TYPE_NAPTR), "nodata");
    // ENT 9.6.0.0 (under 1.0.0.0.6.9) is below no wildcard but the apex one: the apex
    // wildcard does not reach through the ENT either
    assert_eq!(outcome(&z, &below("960002"), TYPE_NAPTR), "nxdomain");
}

#[test]
fn nodata_for_other_types() {
    let z = zone();
    // existing name, other type
    assert_eq!(outcome(&z, &below("960001"), TYPE_A), "nodata");
    // wildcard-covered name, other type: NODATA, not NXDOMAIN
    assert_eq!(outcome(&z, &below("971234"), TYPE_A), "nodata wildcard");
}

#[test]
fn apex_and_apex_wildcard() {
    let z = zone();
    let none: Vec<String> = Vec::new();
    assert_eq!(outcome(&z, &none, TYPE_SOA), "answer 1");
    assert_eq!(outcome(&z, &none, TYPE_NS), "answer 1");
    assert_eq!(outcome(&z, &none, TYPE_NAPTR), "nodata");
    // 8.x is covered only by the apex wildcard: TXT answers, NAPTR is NODATA
    assert_eq!(outcome(&z, &below("81"), 16), "answer wildcard 1");
    assert_eq!(outcome(&z, &below("81"), TYPE_NAPTR), "nodata wildcard");
}

#[test]
fn delegation_is_a_referral() {
    let z = zone();
    let name = vec!["sub".to_string(), "host".to_string()];
    assert_eq!(outcome(&z, &name, TYPE_A), "referral 1");
    assert_eq!(outcome(&z, &name[..1], TYPE_NAPTR), "referral 1");
}

#[test]
fn names_outside_every_zone() {
    let set = ZoneSet::new(vec![zone()]);
    let zones = set.load();
    let inside: Vec<&[u8]> = vec![b"arpa", b"e164", b"4", b"4", b"1", b"6", b"3", b"2", b"9"];
    assert!(zones.find(&inside).is_some());
    // a sibling of the origin, a parent of it, and another tree
    for outside in [
        vec![&b"arpa"[..], b"e164", b"4", b"4", b"1", b"6", b"3", b"3"],
        vec![&b"arpa"[..], b"e164", b"4", b"4"],
        vec![&b"net"[..], b"example"],
    ] {
        assert!(zones.find(&outside).is_none());
    }
    // origin matching ignores case
    let upper: Vec<&[u8]> = vec![b"ARPA", b"E164", b"4", b"4", b"1", b"6", b"3", b"2"];
    assert!(zones.find(&upper).is_some());
}
