//! The decision cache keeps what upstream DNS said, not one request's answer: a real
//! Knot DNS serves the upstream ENUM tree, enroute routes INVITEs over UDP, and what one
//! request filtered out (a `sips:` Request-URI, a contact equal to the Request-URI)
//! never changes the answer the next request for the same number gets.

mod common;

use std::time::Duration;

const SOA: &str = "@ SOA ns h 1 3600 900 604800 60\n@ NS ns\nns A 127.0.0.1\n";

/// `e164.test.`: +12025550101 routes to `sip:+12025550101@pbx.example.net`;
/// +12025550100 is not there (NXDOMAIN).
fn upstream_tree() -> String {
    format!(
        "$ORIGIN e164.test.\n$TTL 300\n{SOA}\
         1.0.1.0.5.5.5.2.0.2.1 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:+12025550101@pbx.example.net!\" .\n"
    )
}

fn config(knot: u16) -> String {
    format!(
        "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{knot}\"]\ntimeout_ms = 1000\n\
         [[gateway]]\nprefix = \"+1\"\nuris = [\"sip:{{e164}}@gw.example.net\"]\n"
    )
}

/// Sends an INVITE for `request_uri` and returns its final answer (after any 100),
/// acknowledged so that Timer G does not repeat it into the next call's answers.
fn final_answer(client: &common::SipUdp, request_uri: &str, branch: &str) -> String {
    let port = client.port();
    let request = |method: &str| {
        format!(
            "{method} {request_uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@example.org>;tag=f{branch}\r\n\
             To: <{request_uri}>\r\nCall-ID: {branch}@example.org\r\nCSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    client.send(&request("INVITE"));
    let call_id = format!("Call-ID: {branch}@example.org\r\n");
    loop {
        let r = client
            .recv()
            .unwrap_or_else(|| panic!("no answer to the INVITE for {request_uri}"));
        if r.contains(&call_id) && common::sip_status(&r) >= 200 {
            client.send(&request("ACK"));
            return r;
        }
    }
}

fn contacts(answer: &str) -> Vec<&str> {
    answer
        .lines()
        .filter(|l| l.starts_with("Contact:"))
        .collect()
}

#[test]
fn a_sips_request_does_not_poison_the_next_sip_request() {
    let knot = common::Knot::start(&[("e164.test.", &upstream_tree())]);
    let server = common::Enroute::start("", &config(knot.port));
    let client = common::SipUdp::new(server.sip_udp, Duration::from_secs(3));

    // sips: the upstream answer is NXDOMAIN and the only gateway URI is sip: → 404
    let r = final_answer(&client, "sips:+12025550100@example.net", "s1");
    assert_eq!(common::sip_status(&r), 404, "{r}");
    // sip: for the same number (its NXDOMAIN now cached) → the gateway
    let r = final_answer(&client, "sip:+12025550100@example.net", "s2");
    assert_eq!(common::sip_status(&r), 302, "{r}");
    assert_eq!(
        contacts(&r),
        ["Contact: <sip:+12025550100@gw.example.net>;q=1.0"]
    );
    // and sips: again still gets its own answer
    let r = final_answer(&client, "sips:+12025550100@example.net", "s3");
    assert_eq!(common::sip_status(&r), 404, "{r}");
}

#[test]
fn a_contact_equal_to_one_request_uri_is_kept_for_another() {
    let knot = common::Knot::start(&[("e164.test.", &upstream_tree())]);
    let server = common::Enroute::start("", &config(knot.port));
    let client = common::SipUdp::new(server.sip_udp, Duration::from_secs(3));

    // the record's contact is this Request-URI: left out, so the gateway
    let r = final_answer(&client, "sip:+12025550101@pbx.example.net", "e1");
    assert_eq!(
        contacts(&r),
        ["Contact: <sip:+12025550101@gw.example.net>;q=1.0"],
        "{r}"
    );
    // another Request-URI for the same number gets the record (from the cache)
    let r = final_answer(&client, "sip:+12025550101@sbc.example.org", "e2");
    assert_eq!(
        contacts(&r),
        ["Contact: <sip:+12025550101@pbx.example.net>;q=1.0"],
        "{r}"
    );
    // Knot stopped: both still come from the cache, each with its own filter
    drop(knot);
    let r = final_answer(&client, "sip:+12025550101@pbx.example.net", "e3");
    assert_eq!(
        contacts(&r),
        ["Contact: <sip:+12025550101@gw.example.net>;q=1.0"],
        "{r}"
    );
    let r = final_answer(&client, "sip:+12025550101@sbc.example.org", "e4");
    assert_eq!(
        contacts(&r),
        ["Contact: <sip:+12025550101@pbx.example.net>;q=1.0"],
        "{r}"
    );
}
