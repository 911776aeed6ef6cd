//! Table-driven DDDS tests (RFC 3402/3403/6116) on hand-written NAPTR sets.
//!
//! Records are given as presentation-like tuples and encoded to wire form, then run
//! through `Ddds` with an in-memory source for non-terminal targets: the same code path
//! local zones and upstream answers take. Records that a zone load would reject (bad
//! regexps, regexp plus replacement) are allowed here, as upstream DNS can send them.

#[path = "common/ddds_cases.rs"]
mod ddds_cases;

use enroute::config::GatewayConfig;
use enroute::config::gateway::Template;
use enroute::name::Name;
use enroute::resolve::ddds::{
    ContactFilter, Ddds, NaptrSource, Services, SkipReason, SourceAnswer,
};
use enroute::resolve::gateway::Gateways;
use enroute::resolve::rank_contacts;
use enroute::zone::index::Rdata;
use std::collections::HashMap;

const AUS: &str = "+441632960001";
const START: &str = "1.0.0.0.6.9.2.3.6.1.4.4.e164.arpa.";

type Rec = (
    u16,
    u16,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

fn wire(r: &Rec) -> Vec<u8> {
    let mut out = Vec::new();
    let repl = if r.5 == "." {
        Name::root()
    } else {
        Name::from_text(r.5).unwrap()
    };
    enroute::naptr::encode(
        r.0,
        r.1,
        r.2.as_bytes(),
        r.3.as_bytes(),
        r.4.as_bytes(),
        &repl,
        &mut out,
    );
    out
}

struct Src<'a> {
    map: &'a HashMap<String, Vec<Vec<u8>>>,
}

impl<'a> NaptrSource<'a> for Src<'a> {
    fn naptr(&mut self, name: &Name) -> SourceAnswer<'a> {
        match self.map.get(&name.to_string().to_ascii_lowercase()) {
            Some(v) => SourceAnswer::Records(v.iter().map(|r| Rdata::Wire(r)).collect(), 60),
            None => SourceAnswer::Empty(30),
        }
    }
}

struct Outcome {
    /// (uri, q as "1.0")
    contacts: Vec<(String, String)>,
    skips: Vec<(&'static str, u32)>,
}

fn run_with(
    records: &[Rec],
    extra: &[(&str, &[Rec])],
    filter: ContactFilter<'_>,
    max: usize,
) -> Outcome {
    let services = Services::new(&["E2U+sip", "E2U+pstn:tel", "E2U+pstn:sip"]);
    let gateways = Gateways::new(&[GatewayConfig {
        prefix: "+44".into(),
        uris: vec![
            Template::parse("sip:{e164}@gw.example.net;user=phone").unwrap(),
            Template::parse("sips:{digits}@gw2.example.net").unwrap(),
        ],
    }]);
    let mut map = HashMap::new();
    for (name, recs) in extra {
        map.insert(
            name.to_ascii_lowercase(),
            recs.iter().map(wire).collect::<Vec<_>>(),
        );
    }
    let start: Vec<Vec<u8>> = records.iter().map(wire).collect();
    let start_refs: Vec<&[u8]> = start.iter().map(Vec::as_slice).collect();
    let mut ddds = Ddds::new(AUS, &services, &gateways, filter, true);
    let mut out = Vec::new();
    let mut src = Src { map: &map };
    ddds.evaluate(
        &Name::from_text(START).unwrap(),
        &start_refs,
        300,
        &mut src,
        &mut out,
    );
    let contacts = rank_contacts(max, out)
        .into_iter()
        .map(|c| (c.uri, c.q.to_string()))
        .collect();
    let skips = SkipReason::ALL
        .iter()
        .zip(ddds.skips)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.as_str(), n))
        .collect();
    Outcome { contacts, skips }
}

fn run(records: &[Rec]) -> Outcome {
    run_with(records, &[], ContactFilter::default(), 10)
}

fn uris(o: &Outcome) -> Vec<&str> {
    o.contacts.iter().map(|(u, _)| u.as_str()).collect()
}

#[test]
fn regexp_forms() {
    // (regexp, expected contact or None when the record must be skipped, skip reason)
    let table = ddds_cases::REGEXP_FORMS;
    for (regexp, want, reason) in table {
        let o = run(&[(100, 10, "u", "E2U+sip", regexp, ".")]);
        match want {
            Some(w) => assert_eq!(uris(&o), vec![*w], "regexp {regexp}"),
            None => {
                assert!(
                    o.contacts.is_empty(),
                    "regexp {regexp} gave {:?}",
                    o.contacts
                );
                assert_eq!(o.skips, vec![(reason.unwrap(), 1)], "regexp {regexp}");
            }
        }
    }
}

#[test]
fn service_matching() {
    let table = ddds_cases::SERVICE_MATCHING;
    for (svc, regexp, want, reason) in table {
        let o = run(&[(100, 10, "u", svc, regexp, ".")]);
        match want {
            Some(w) => assert_eq!(uris(&o)[0], *w, "service {svc}"),
            None => {
                assert!(o.contacts.is_empty(), "service {svc} gave {:?}", o.contacts);
                assert_eq!(o.skips, vec![(reason.unwrap(), 1)], "service {svc}");
            }
        }
    }
}

#[test]
fn flags() {
    let ok = run(&[(100, 10, "U", "E2U+sip", "!^.*$!sip:upper@x.example!", ".")]);
    assert_eq!(uris(&ok), ["sip:upper@x.example"]);
    for flags in ["s", "a", "p", "us", "x"] {
        let o = run(&[(100, 10, flags, "E2U+sip", "!^.*$!sip:a@x.example!", ".")]);
        assert!(o.contacts.is_empty(), "flags {flags}");
        assert_eq!(o.skips, vec![("flags", 1)], "flags {flags}");
    }
}

#[test]
fn invalid_records_skipped_valid_siblings_used() {
    let o = run(&[
        (100, 10, "z", "E2U+sip", "!^.*$!sip:badflag@x.example!", "."),
        (100, 11, "u", "E2U+sip", "!^(.*$!sip:badre@x.example!", "."),
        (
            100,
            12,
            "u",
            "E2U+sip",
            "!^.*$!sip:both@x.example!",
            "replacement.example.",
        ),
        (100, 13, "u", "E2U+foo", "!^.*$!sip:badsvc@x.example!", "."),
        (
            100,
            14,
            "u",
            "E2U+sip",
            "!^\\+1!sip:nomatch@x.example!",
            ".",
        ),
        (100, 20, "u", "E2U+sip", "!^.*$!sip:good@x.example!", "."),
    ]);
    assert_eq!(uris(&o), ["sip:good@x.example"]);
    assert_eq!(o.contacts[0].1, "1.0");
    assert_eq!(
        o.skips,
        vec![
            ("service", 1),
            ("flags", 1),
            ("regexp", 1),
            ("no_match", 1),
            ("regexp_and_replacement", 1)
        ]
    );
}

#[test]
fn order_cutoff_and_preference_ranking() {
    // Only the lowest order with a usable record contributes (RFC 3403 §4.1); listed
    // out of order on purpose.
    let o = run(&[
        (
            200,
            10,
            "u",
            "E2U+sip",
            "!^.*$!sip:order200@x.example!",
            ".",
        ),
        (100, 30, "u", "E2U+sip", "!^.*$!sip:p30@x.example!", "."),
        (100, 10, "u", "E2U+sip", "!^.*$!sip:p10@x.example!", "."),
        (100, 20, "u", "E2U+sip", "!^.*$!sip:p20a@x.example!", "."),
        (100, 20, "u", "E2U+sip", "!^.*$!sip:p20b@x.example!", "."),
    ]);
    let got: Vec<(&str, &str)> = o
        .contacts
        .iter()
        .map(|(u, q)| (u.as_str(), q.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("sip:p10@x.example", "1.0"),
            ("sip:p20a@x.example", "0.9"),
            ("sip:p20b@x.example", "0.9"),
            ("sip:p30@x.example", "0.8"),
        ]
    );
    assert_eq!(o.skips, vec![("higher_order", 1)]);

    // A lowest order with nothing usable gives way to the next.
    let o = run(&[
        (
            10,
            10,
            "u",
            "E2U+email:mailto",
            "!^.*$!mailto:a@x.example!",
            ".",
        ),
        (20, 10, "u", "E2U+sip", "!^.*$!sip:second@x.example!", "."),
    ]);
    assert_eq!(uris(&o), ["sip:second@x.example"]);
}

#[test]
fn max_contacts_and_q_floor() {
    let recs: Vec<Rec> = (0..12u16)
        .map(|i| {
            let uri: &'static str =
                Box::leak(format!("!^.*$!sip:r{i}@x.example!").into_boxed_str());
            (100, 10 + i, "u", "E2U+sip", uri, ".")
        })
        .collect();
    let o = run_with(&recs, &[], ContactFilter::default(), 11);
    assert_eq!(o.contacts.len(), 11);
    assert_eq!(o.contacts[0].1, "1.0");
    assert_eq!(o.contacts[9].1, "0.1");
    assert_eq!(o.contacts[10].1, "0.1", "q never drops below 0.1");
}

#[test]
fn preference_outranks_chain_depth() {
    // Same order: the non-terminal (preference 10) beats the terminal (preference 20),
    // however deep the chain behind it is (RFC 3403 §2.4.1: preference first).
    let o = run_with(
        &[
            (
                100,
                20,
                "u",
                "E2U+sip",
                "!^.*$!sip:direct@example.net!",
                ".",
            ),
            (100, 10, "", "E2U+sip", "", "a.chain.example."),
        ],
        &[(
            "a.chain.example.",
            &[(
                100,
                50,
                "u",
                "E2U+sip",
                "!^.*$!sip:chained@example.net!",
                ".",
            )],
        )],
        ContactFilter::default(),
        10,
    );
    assert_eq!(
        o.contacts,
        [
            ("sip:chained@example.net".to_string(), "1.0".to_string()),
            ("sip:direct@example.net".to_string(), "0.9".to_string()),
        ]
    );
}

#[test]
fn non_terminal_chains() {
    // start -> a -> b (terminal)
    let o = run_with(
        &[(100, 10, "", "E2U+sip", "", "a.chain.example.")],
        &[
            (
                "a.chain.example.",
                &[(100, 10, "", "", "", "b.chain.example.")],
            ),
            (
                "b.chain.example.",
                &[(
                    100,
                    10,
                    "u",
                    "E2U+sip",
                    "!^\\+(.*)$!sip:\\1@end.example!",
                    ".",
                )],
            ),
        ],
        ContactFilter::default(),
        10,
    );
    assert_eq!(uris(&o), ["sip:441632960001@end.example"]);

    // a regexp-produced non-terminal target
    let o = run_with(
        &[(
            100,
            10,
            "",
            "E2U+sip",
            "!^\\+44(.*)$!\\1.uk.chain.example.!",
            ".",
        )],
        &[(
            "1632960001.uk.chain.example.",
            &[(100, 10, "u", "E2U+sip", "!^.*$!sip:viare@end.example!", ".")],
        )],
        ContactFilter::default(),
        10,
    );
    assert_eq!(uris(&o), ["sip:viare@end.example"]);

    // loop: start -> a -> start
    let o = run_with(
        &[(100, 10, "", "E2U+sip", "", "a.loop.example.")],
        &[("a.loop.example.", &[(100, 10, "", "", "", START)])],
        ContactFilter::default(),
        10,
    );
    assert!(o.contacts.is_empty());
    assert!(o.skips.contains(&("loop", 1)), "{:?}", o.skips);

    // six hops: deeper than the five allowed
    let hop =
        |i: usize| -> &'static str { Box::leak(format!("h{i}.deep.example.").into_boxed_str()) };
    let mut extra: Vec<(&str, Vec<Rec>)> = (1..=6)
        .map(|i| (hop(i), vec![(100, 10, "", "", "", hop(i + 1))]))
        .collect();
    extra.push((
        hop(7),
        vec![(100, 10, "u", "E2U+sip", "!^.*$!sip:toodeep@x.example!", ".")],
    ));
    let extra_refs: Vec<(&str, &[Rec])> = extra.iter().map(|(n, r)| (*n, r.as_slice())).collect();
    let o = run_with(
        &[(100, 10, "", "E2U+sip", "", hop(1))],
        &extra_refs,
        ContactFilter::default(),
        10,
    );
    assert!(o.contacts.is_empty());
    assert!(o.skips.contains(&("depth", 1)), "{:?}", o.skips);

    // five hops are fine
    let o = run_with(
        &[(100, 10, "", "E2U+sip", "", hop(3))],
        &extra_refs,
        ContactFilter::default(),
        10,
    );
    assert_eq!(uris(&o), ["sip:toodeep@x.example"]);

    // a non-terminal whose target has nothing usable leaves room for its siblings
    let o = run_with(
        &[
            (100, 10, "", "E2U+sip", "", "empty.example."),
            (100, 20, "u", "E2U+sip", "!^.*$!sip:sibling@x.example!", "."),
        ],
        &[],
        ContactFilter::default(),
        10,
    );
    assert_eq!(uris(&o), ["sip:sibling@x.example"]);
    assert!(o.skips.contains(&("empty_chain", 1)));
}

#[test]
fn pstn_results_expand_into_gateways() {
    let o = run(&[
        (100, 10, "u", "E2U+sip", "!^.*$!sip:first@x.example!", "."),
        (
            100,
            20,
            "u",
            "E2U+pstn:tel",
            "!^.*$!tel:+44-1632-960999;npdi;rn=+441632000000!",
            ".",
        ),
    ]);
    let got: Vec<(&str, &str)> = o
        .contacts
        .iter()
        .map(|(u, q)| (u.as_str(), q.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("sip:first@x.example", "1.0"),
            (
                "sip:+441632960999;npdi;rn=+441632000000@gw.example.net;user=phone",
                "0.9"
            ),
            (
                "sips:441632960999;npdi;rn=+441632000000@gw2.example.net",
                "0.9"
            ),
        ]
    );
    // no gateway for the translated number
    let o = run(&[(100, 10, "u", "E2U+pstn:tel", "!^.*$!tel:+15550100!", ".")]);
    assert!(o.contacts.is_empty());
    assert_eq!(o.skips, vec![("no_gateway", 1)]);
}

#[test]
fn request_filters() {
    let recs: &[Rec] = &[
        (100, 10, "u", "E2U+sip", "!^.*$!sip:self@pbx.example!", "."),
        (
            100,
            20,
            "u",
            "E2U+sip",
            "!^.*$!sips:secure@pbx.example!",
            ".",
        ),
        (
            100,
            30,
            "u",
            "E2U+pstn:tel",
            "!^.*$!tel:+441632960001!",
            ".",
        ),
    ];
    // sips: request: only sips contacts, q ranked after filtering
    let o = run_with(recs, &[], ContactFilter::new(true, None), 10);
    let got: Vec<(&str, &str)> = o
        .contacts
        .iter()
        .map(|(u, q)| (u.as_str(), q.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("sips:secure@pbx.example", "1.0"),
            ("sips:441632960001@gw2.example.net", "0.9")
        ]
    );
    // a contact equal to the Request-URI (RFC 3261 comparison) is never returned
    let o = run_with(
        recs,
        &[],
        ContactFilter::new(false, Some("SIP:self@PBX.example")),
        10,
    );
    assert_eq!(uris(&o)[0], "sips:secure@pbx.example");
    assert!(o.skips.contains(&("filtered", 1)));
}
