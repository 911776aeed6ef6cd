//! SIP server transactions over real loopback sockets (RFC 3261 §17.2.1): a
//! retransmitted INVITE gets the answer its transaction holds, not a new decision
//! (over UDP and TCP, also after a zone change); held state stays within
//! `sip.max_transactions` under a flood of INVITEs that are never acknowledged, and
//! `enroute_transactions_active` says how much is held; the 513 for an oversized TCP
//! message carries `received`/`rport` like every other answer.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
"#;

/// An INVITE for +441632960001 from 127.0.0.1:`port` over `transport`.
fn invite(transport: &str, port: u16, branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:+441632960001@example.net SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@example.org>;tag=f{branch}\r\n\
         To: <sip:+441632960001@example.net>\r\nCall-ID: {branch}@example.org\r\n\
         CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// The sum of every series of the counter or gauge `name` at `/metrics` (`name` may
/// end in the start of a label set, `…{transport="udp",method="INVITE"`, to sum only those series).
fn metric(server: &common::Enroute, name: &str) -> f64 {
    let text = common::http(server.admin, "GET", "/metrics", &[], b"").text();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{', ',', '}']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The next answer whose Call-ID is `branch@example.org` (Timer G may repeat earlier
/// answers on the same socket meanwhile).
fn answer_to(c: &common::SipUdp, branch: &str) -> String {
    let call_id = format!("Call-ID: {branch}@example.org\r\n");
    loop {
        let r = c
            .recv()
            .unwrap_or_else(|| panic!("no answer to the INVITE {branch}"));
        if r.contains(&call_id) {
            return r;
        }
    }
}

/// Waits until the server has read `n` INVITEs in all (so that what it did with the
/// last one shows in the other counters).
fn wait_for_invites(server: &common::Enroute, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(
        server,
        "enroute_sip_requests_total{transport=\"udp\",method=\"INVITE\"",
    ) < n
    {
        assert!(
            Instant::now() < deadline,
            "the server did not read {n} INVITEs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Changes the number's route through the admin API (committed and served on 200).
fn change_route(server: &common::Enroute, uri: &str) {
    let r = server.put_number(
        "+441632960001",
        &format!(r#"{{"routes":[{{"uri":"{uri}"}}]}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Reads SIP messages (Content-Length 0) from a stream until `n` have arrived.
fn tcp_read(s: &mut TcpStream, n: usize) -> Vec<String> {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.len() < n {
        let k = s.read(&mut chunk).expect("an answer on the stream");
        assert!(k > 0, "stream closed after {got:?}");
        buf.extend_from_slice(&chunk[..k]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            got.push(String::from_utf8_lossy(&buf[..end + 4]).into_owned());
            buf.drain(..end + 4);
        }
    }
    got
}

#[test]
fn a_retransmitted_invite_gets_the_held_answer_over_udp() {
    let server = common::Enroute::start(ZONE, "");
    let c = common::SipUdp::new(server.sip_udp, Duration::from_secs(3));
    let msg = invite("UDP", c.port(), "rt1", "");
    let before = metric(&server, "enroute_route_decisions_total");
    c.send(&msg);
    let first = answer_to(&c, "rt1");
    assert!(
        first.contains("Contact: <sip:alice@pbx.example.net>"),
        "{first}"
    );

    // the zone changes between the INVITE and its retransmission
    change_route(&server, "sip:bob@pbx.example.net");
    c.send(&msg);
    wait_for_invites(&server, 2.0);
    // Whatever arrives for rt1 now (the answer to the retransmission, or Timer G's
    // copies) is the answer already sent, byte for byte.
    let deadline = Instant::now() + Duration::from_millis(700);
    while Instant::now() < deadline {
        let again = answer_to(&c, "rt1");
        assert_eq!(
            again, first,
            "the retransmission gets the answer already sent"
        );
    }
    assert_eq!(
        metric(&server, "enroute_route_decisions_total") - before,
        1.0,
        "one INVITE sent twice is routed once"
    );
    assert!(metric(&server, "enroute_sip_retransmissions_total") >= 1.0);

    // a new transaction sees the change
    c.send(&invite("UDP", c.port(), "rt2", ""));
    let fresh = answer_to(&c, "rt2");
    assert!(
        fresh.contains("Contact: <sip:bob@pbx.example.net>"),
        "{fresh}"
    );
}

#[test]
fn a_retransmitted_invite_gets_the_held_answer_over_tcp() {
    let server = common::Enroute::start(ZONE, "");
    let mut s = TcpStream::connect(("127.0.0.1", server.sip_tcp)).unwrap();
    let port = s.local_addr().unwrap().port();
    let msg = invite("TCP", port, "rt3", "");
    let before = metric(&server, "enroute_route_decisions_total");
    s.write_all(msg.as_bytes()).unwrap();
    let first = tcp_read(&mut s, 1).remove(0);
    assert!(
        first.contains("Contact: <sip:alice@pbx.example.net>"),
        "{first}"
    );

    change_route(&server, "sip:carol@pbx.example.net");
    // e.g. forwarded again by a stateless proxy in front
    s.write_all(msg.as_bytes()).unwrap();
    let again = tcp_read(&mut s, 1).remove(0);
    assert_eq!(again, first);
    assert_eq!(
        metric(&server, "enroute_route_decisions_total") - before,
        1.0
    );

    // once acknowledged, the transaction is gone and its slot given back
    assert_eq!(metric(&server, "enroute_transactions_active"), 1.0);
    let ack = msg
        .replace("INVITE sip:", "ACK sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    s.write_all(ack.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while metric(&server, "enroute_transactions_active") != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the ACK did not end the transaction"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let fresh = invite("TCP", port, "rt4", "");
    s.write_all(fresh.as_bytes()).unwrap();
    let r = tcp_read(&mut s, 1).remove(0);
    assert!(r.contains("Contact: <sip:carol@pbx.example.net>"), "{r}");
}

#[test]
fn held_state_stays_within_max_transactions_under_a_flood() {
    let server = common::Enroute::start(ZONE, "max_transactions = 300\n");
    let c = common::SipUdp::new(server.sip_udp, Duration::from_millis(500));
    let port = c.port();
    // final status by Call-ID (Timer G repeats some 302s: counted once)
    let mut answers: HashMap<String, u16> = HashMap::new();
    for batch in 0..30 {
        for i in 0..100 {
            c.send(&invite("UDP", port, &format!("flood{batch}x{i}"), ""));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while answers.len() < (batch + 1) * 100 && Instant::now() < deadline {
            let Some(r) = c.recv() else { continue };
            let call_id = r
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: "))
                .unwrap_or("")
                .to_string();
            let status = common::sip_status(&r);
            if status == 503 {
                assert!(r.contains("Retry-After: 5\r\n"), "{r}");
            }
            answers.insert(call_id, status);
        }
    }
    assert_eq!(answers.len(), 3000, "every INVITE got a final answer");
    let redirected = answers.values().filter(|s| **s == 302).count();
    let refused = answers.values().filter(|s| **s == 503).count();
    assert_eq!(redirected + refused, 3000, "{answers:?}");
    assert!(
        (1..=300).contains(&redirected),
        "{redirected} INVITEs got 302 with max_transactions = 300"
    );
    let held = metric(&server, "enroute_transactions_active");
    assert!(
        held <= 300.0,
        "enroute_transactions_active = {held} with max_transactions = 300"
    );
    assert_eq!(
        held, redirected as f64,
        "each 302 is held until ACK or Timer H"
    );
}

#[test]
fn the_513_for_an_oversized_tcp_message_carries_received_and_rport() {
    let server = common::Enroute::start(ZONE, "max_message_bytes = 2048\n");
    let mut s = TcpStream::connect(("127.0.0.1", server.sip_tcp)).unwrap();
    let port = s.local_addr().unwrap().port();
    // sent-by names another host, so `received` is due on two counts
    let big = invite(
        "TCP",
        port,
        "big1",
        &format!("X-Pad: {}\r\n", "a".repeat(4000)),
    )
    .replace(&format!("127.0.0.1:{port};"), "client.example.org:5070;");
    let _ = s.write_all(big.as_bytes());
    let got = tcp_read(&mut s, 1).remove(0);
    assert!(
        got.starts_with("SIP/2.0 513 Message Too Large\r\n"),
        "{got}"
    );
    let via = got
        .lines()
        .find(|l| l.starts_with("Via: "))
        .unwrap_or_else(|| panic!("no Via in {got}"));
    assert_eq!(
        via,
        format!(
            "Via: SIP/2.0/TCP client.example.org:5070;branch=z9hG4bKbig1;rport={port};received=127.0.0.1"
        )
    );
    for header in [
        "From: ",
        "To: ",
        "Call-ID: big1@example.org",
        "CSeq: 1 INVITE",
    ] {
        assert!(got.contains(header), "{header} missing in {got}");
    }
    // then the connection is closed
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
}
