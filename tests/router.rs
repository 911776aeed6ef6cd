//! The one `Router` in process: counters by skip reason, request-dependent filtering,
//! `sip.max_contacts`, gateway fallback q-values, and zone swaps seen by the next
//! decision.

use enroute::config::Config;
use enroute::name::Name;
use enroute::resolve::ddds::SkipReason;
use enroute::resolve::{Router, Source};
use enroute::zone::{Zone, ZoneSet};
use std::path::Path;
use std::sync::Arc;

const CONFIG: &str = r#"
[sip]
max_contacts = 3
[[gateway]]
prefix = "+44"
uris = ["sip:{e164}@gw.example.net;user=phone", "sips:{digits}@tls-gw.example.net"]
"#;

fn zone(serial: u32, body: &str) -> Zone {
    let text = format!(
        "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 300\n@ SOA ns.example. h.example. {serial} 3600 900 604800 60\n{body}"
    );
    let origin = Name::from_text("2.3.6.1.4.4.e164.arpa.").unwrap();
    Zone::from_master(text.as_bytes(), "t.zone", &origin, None)
        .unwrap()
        .0
}

const BODY: &str = r#"
1.0.0.0.6.9 NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
            NAPTR 10 20 "u" "E2U+email:mailto" "!^.*$!mailto:alice@example.net!" .
            NAPTR 20 10 "u" "E2U+sip" "!^.*$!sip:fallback@pbx.example.net!" .
2.0.0.0.6.9 NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:a@x.example!" .
            NAPTR 10 20 "u" "E2U+sip" "!^.*$!sip:b@x.example!" .
            NAPTR 10 30 "u" "E2U+sip" "!^.*$!sip:c@x.example!" .
            NAPTR 10 40 "u" "E2U+sip" "!^.*$!sip:d@x.example!" .
3.0.0.0.6.9 NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:+441632960003@pbx.example.net!" .
            NAPTR 10 20 "u" "E2U+sips" "!^.*$!sips:secure@pbx.example.net!" .
            NAPTR 10 30 "u" "E2U+sip" "!^.*$!sips:secure@pbx.example.net!" .
"#;

fn router() -> Router {
    let config = Config::parse(CONFIG, "c.toml", Path::new("."), None).unwrap();
    Router::new(&config, Arc::new(ZoneSet::new(vec![zone(1, BODY)])))
}

fn uris(d: &enroute::resolve::Decision) -> Vec<String> {
    d.contacts
        .iter()
        .map(|c| format!("{};q={}", c.uri, c.q))
        .collect()
}

#[test]
fn skip_counters_accumulate_by_reason() {
    let r = router();
    for _ in 0..3 {
        let d = r.route("+441632960001", false);
        assert_eq!(uris(&d), ["sip:alice@pbx.example.net;q=1.0"]);
    }
    assert_eq!(r.stats().skips(SkipReason::Service), 3);
    assert_eq!(r.stats().skips(SkipReason::HigherOrder), 3);
    assert_eq!(r.stats().decisions(Source::Local), 3);
    r.route("+441632969999", false);
    assert_eq!(r.stats().decisions(Source::Gateway), 1);
}

#[test]
fn max_contacts_cuts_the_sorted_list() {
    let d = router().route("+441632960002", true);
    assert_eq!(
        uris(&d),
        [
            "sip:a@x.example;q=1.0",
            "sip:b@x.example;q=0.9",
            "sip:c@x.example;q=0.8"
        ]
    );
    assert!(d.trace.contains(&enroute::resolve::TraceStep::Truncated {
        kept: 3,
        dropped: 1
    }));
}

#[test]
fn request_uri_and_sips_filters() {
    let r = router();
    // the record equal to the Request-URI is left out
    let d = r.route("sip:+441632960003@pbx.example.net", false);
    assert_eq!(uris(&d), ["sips:secure@pbx.example.net;q=1.0"]);
    // a sips: request only gets sips: contacts, including from the gateway
    let d = r.route("sips:+441632969999@pbx.example.net", false);
    assert_eq!(d.source, Source::Gateway);
    assert_eq!(uris(&d), ["sips:441632969999@tls-gw.example.net;q=1.0"]);
    let d = r.route("sip:+441632969999@pbx.example.net", false);
    assert_eq!(d.contacts.len(), 2);
}

#[test]
fn gateway_fallback_contacts_fall_in_list_order() {
    let r = router();
    // no ENUM record: the gateway's URIs with q 1.0, 0.9 in the order configured
    let d = r.route("sip:+441632969999@pbx.example.net", false);
    assert_eq!(d.source, Source::Gateway);
    assert_eq!(
        uris(&d),
        [
            "sip:+441632969999@gw.example.net;user=phone;q=1.0",
            "sips:441632969999@tls-gw.example.net;q=0.9"
        ]
    );
    // the same from `enroute route` and over SIP: one routing function
    let d = r.route("+441632969999", true);
    assert_eq!(
        d.contacts
            .iter()
            .map(|c| c.q.to_string())
            .collect::<Vec<_>>(),
        ["1.0", "0.9"]
    );
}

#[test]
fn a_swapped_zone_is_used_by_the_next_decision() {
    let r = router();
    let before = r.zones().load();
    assert_eq!(r.route("+441632960004", false).source, Source::Gateway);
    r.zones().replace(zone(
        2,
        "4.0.0.0.6.9 NAPTR 10 10 \"u\" \"E2U+sip\" \"!^.*$!sip:new@x.example!\" .\n",
    ));
    let d = r.route("+441632960004", false);
    assert_eq!(uris(&d), ["sip:new@x.example;q=1.0"]);
    // a reader holding the old snapshot still sees the old zone, undisturbed
    let old = before.iter().next().unwrap();
    assert_eq!(old.soa.serial, 1);
    assert_eq!(r.zones().load().iter().next().unwrap().soa.serial, 2);
}

#[test]
fn a_reused_decision_equals_a_fresh_one() {
    let r = router();
    let inputs = [
        "+441632960001",
        "+441632960002",
        "sip:+441632960003@pbx.example.net",
        "sips:+441632969999@pbx.example.net",
        "+441632969999",
        "12",
        "sip:alice@example.net",
        "mailto:x@y",
        "+441632960002",
        "tel:960001;phone-context=+44-1632",
        "",
    ];
    let mut reused = enroute::resolve::Decision::default();
    for round in 0..3 {
        for (i, input) in inputs.iter().enumerate() {
            let trace = (i + round) % 2 == 0;
            r.route_into(input, trace, &mut reused);
            let fresh = r.route(input, trace);
            assert_eq!(reused, fresh, "{input} (trace {trace})");
        }
    }
}
