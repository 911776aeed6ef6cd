//! SIPp (Debian `sip-tester`) as the UAC against `enroute serve`: INVITE -> 302 -> ACK
//! with the Contacts checked by SIPp's own regexp actions, over UDP and TCP, a number
//! without record or gateway getting 404, and calls whose 302s SIPp drops half of the
//! time (recovered only by the server's retransmissions and identical re-answers). SIPp exits 0 only when every call
//! succeeded.

mod common;

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
            NAPTR 100 20 "u" "E2U+sip" "!^.*$!sip:alice@backup.example.net!" .
"#;

/// Runs one bounded SIPp client; returns its exit code and its error output.
fn run(
    scenario: &str,
    target_port: u16,
    transport: &str,
    number: &str,
    calls: u32,
) -> (i32, String) {
    let (code, err, _) = common::sipp_run(scenario, target_port, transport, number, calls);
    (code, err)
}

/// The counters SIPp's screen shows on the line of a scenario message, e.g.
/// `302 <----  10  0  0  0  7` (messages, retransmissions, timeouts, unexpected, lost).
fn screen_counts(screen: &str, line_start: &str) -> Vec<u64> {
    screen
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with(line_start))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sipp_invite_302_ack_udp_and_tcp() {
    let server = common::Enroute::start(ZONE, "");
    let (code, err) = run("uac-302.xml", server.sip_udp, "u1", "+441632960001", 20);
    assert_eq!(code, 0, "SIPp over UDP failed:\n{err}");
    let (code, err) = run("uac-302.xml", server.sip_tcp, "t1", "+441632960001", 20);
    assert_eq!(code, 0, "SIPp over TCP failed:\n{err}");
    // the check really checks: a number routed elsewhere fails the Contact regexp
    let (code, _) = run("uac-302.xml", server.sip_udp, "u1", "+441632969999", 1);
    assert_ne!(code, 0, "a 404 must fail the 302 scenario");
}

#[test]
fn sipp_no_record_no_gateway_gets_404() {
    let server = common::Enroute::start(ZONE, "");
    let (code, err) = run("uac-404.xml", server.sip_udp, "u1", "+441632969999", 10);
    assert_eq!(code, 0, "SIPp 404 scenario failed:\n{err}");
}

#[test]
fn sipp_lost_302s_are_recovered_by_retransmission() {
    let server = common::Enroute::start(ZONE, "");
    let (code, err, screen) = common::sipp_run(
        "uac-302-lost.xml",
        server.sip_udp,
        "u1",
        "+441632960001",
        20,
    );
    assert_eq!(
        code, 0,
        "a call did not recover from lost 302s:\n{err}\n{screen}"
    );
    // `302` is both the name and the first number: [302, messages, retrans, timeout,
    // unexpected, lost]
    let counts = screen_counts(&screen, "302 <");
    assert_eq!(counts.len(), 6, "302 line not found in:\n{screen}");
    assert_eq!(counts[1], 20, "every call got its 302:\n{screen}");
    assert!(
        counts[5] > 0,
        "SIPp lost no 302, so nothing was retransmitted (P < 1e-6):\n{screen}"
    );
}
