//! The SIP redirect server over real loopback sockets (UDP and TCP): SPEC §4's rows,
//! RFC 3261 §8.2.6 response construction, RFC 3581 rport/received, framing over TCP.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
            NAPTR 100 20 "u" "E2U+sip" "!^.*$!sip:alice@backup.example.net!" .
3.0.0.0.6.9 NAPTR 100 10 "u" "E2U+pstn:tel" "!^.*$!tel:+441632960003;npdi;rn=+441632000000!" .
"#;

const GATEWAY: &str = "[[gateway]]\nprefix = \"+4416329601\"\nuris = [\"sip:{e164}@gw.example.net;user=phone\"]\n\
                       [[gateway]]\nprefix = \"+441632960003\"\nuris = [\"sip:{e164}@gw.example.net;user=phone\"]\n";

fn request(method: &str, uri: &str, port: u16, branch: &str, extra: &str) -> String {
    let cseq_method = if method == "ACK" { "ACK" } else { method };
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@example.org>;tag=from{branch}\r\n\
         To: <{uri}>\r\n\
         Call-ID: call-{branch}@example.org\r\n\
         CSeq: 1 {cseq_method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// A SIP client whose answers must come within 1.5 s.
fn client(server: u16) -> common::SipUdp {
    common::SipUdp::new(server, Duration::from_millis(1500))
}

use common::sip_status as status;

fn header<'a>(resp: &'a str, name: &str) -> Vec<&'a str> {
    resp.split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn udp_rows_of_spec_table() {
    let server = common::Enroute::start(ZONE, GATEWAY);
    let c = client(server.sip_udp);
    let p = c.port();

    // 302 with one Contact per route, best first
    let r = c.ask(&request(
        "INVITE",
        "sip:+441632960001@example.net;user=phone",
        p,
        "a1",
        "",
    ));
    assert_eq!(status(&r), 302, "{r}");
    assert_eq!(
        header(&r, "Contact"),
        [
            "<sip:alice@pbx.example.net>;q=1.0",
            "<sip:alice@backup.example.net>;q=0.9"
        ]
    );
    // §8.2.6: Via copied with rport filled and received added; To gets a tag; CL 0
    assert_eq!(
        header(&r, "Via"),
        [format!(
            "SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKa1;rport={p};received=127.0.0.1"
        )]
    );
    let to = header(&r, "To")[0];
    assert!(
        to.starts_with("<sip:+441632960001@example.net;user=phone>;tag="),
        "{to}"
    );
    assert_eq!(header(&r, "Call-ID"), ["call-a1@example.org"]);
    assert_eq!(header(&r, "CSeq"), ["1 INVITE"]);
    assert_eq!(header(&r, "Content-Length"), ["0"]);
    assert!(header(&r, "Server")[0].starts_with("enroute/"));
    // a retransmission gets a byte-identical answer (same To-tag)
    let again = c.ask(&request(
        "INVITE",
        "sip:+441632960001@example.net;user=phone",
        p,
        "a1",
        "",
    ));
    assert_eq!(r, again);

    // PSTN via gateway with rn/npdi
    let r = c.ask(&request("INVITE", "tel:+441632960003", p, "a2", ""));
    assert_eq!(
        header(&r, "Contact"),
        ["<sip:+441632960003;npdi;rn=+441632000000@gw.example.net;user=phone>;q=1.0"]
    );
    // no record, gateway matches
    let r = c.ask(&request(
        "INVITE",
        "sip:+441632960123@example.net",
        p,
        "a3",
        "",
    ));
    assert_eq!(
        header(&r, "Contact"),
        ["<sip:+441632960123@gw.example.net;user=phone>;q=1.0"]
    );
    // no record, no gateway
    assert_eq!(
        status(&c.ask(&request(
            "INVITE",
            "sip:+441632969999@example.net",
            p,
            "a4",
            ""
        ))),
        404
    );
    // not a number / too short / unsupported scheme
    assert_eq!(
        status(&c.ask(&request("INVITE", "sip:alice@example.net", p, "a5", ""))),
        404
    );
    assert_eq!(
        status(&c.ask(&request("INVITE", "sip:12@example.net", p, "a6", ""))),
        484
    );
    let r = c.ask(&request("INVITE", "mailto:alice@example.net", p, "a7", ""));
    assert_eq!(status(&r), 416, "{r}");
    // Max-Forwards: 0 is answered normally
    let r = c.ask(
        &request("INVITE", "sip:+441632960001@example.net", p, "a8", "")
            .replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(status(&r), 302);
    // version
    let r = c.ask(
        &request("INVITE", "sip:+441632960001@example.net", p, "a9", "")
            .replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"),
    );
    assert_eq!(status(&r), 505, "{r}");
    // Require with an unknown option tag
    let r = c.ask(&request(
        "INVITE",
        "sip:+441632960001@example.net",
        p,
        "b1",
        "Require: foo, bar\r\n",
    ));
    assert_eq!(status(&r), 420);
    assert_eq!(header(&r, "Unsupported"), ["foo, bar"]);
    // ... but a method we do not handle is answered for its method first (RFC 3261
    // §8.2.1 comes before §8.2.2.3): 405 / 501, not 420
    let r = c.ask(&request(
        "REGISTER",
        "sip:example.net",
        p,
        "b1r",
        "Require: foo\r\n",
    ));
    assert_eq!(status(&r), 405, "{r}");
    let r = c.ask(&request(
        "FROB",
        "sip:example.net",
        p,
        "b1f",
        "Require: foo\r\n",
    ));
    assert_eq!(status(&r), 501, "{r}");
    // OPTIONS
    let r = c.ask(&request("OPTIONS", "sip:enroute@127.0.0.1", p, "b2", ""));
    assert_eq!(status(&r), 200);
    assert!(header(&r, "Allow")[0].contains("INVITE"));
    assert_eq!(header(&r, "Accept").len(), 1);
    assert_eq!(
        header(&r, "Supported").len() + r.matches("Supported:").count(),
        2
    );
    // ACK: no answer
    c.send(&request(
        "ACK",
        "sip:+441632960001@example.net",
        p,
        "a1",
        "",
    ));
    // CANCEL of an answered INVITE whose ACK has not come: 200, the INVITE keeps its
    // 302 (RFC 3261 §9.2); after the ACK the transaction is gone: 481
    let uri = "sip:+441632960001@example.net";
    assert_eq!(status(&c.ask(&request("INVITE", uri, p, "c1", ""))), 302);
    let r = c.ask(&request("CANCEL", uri, p, "c1", ""));
    assert_eq!(
        (status(&r), header(&r, "CSeq")[0]),
        (200, "1 CANCEL"),
        "{r}"
    );
    c.send(&request("ACK", uri, p, "c1", ""));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(status(&c.ask(&request("CANCEL", uri, p, "c1", ""))), 481);
    // CANCEL and BYE without a transaction: 481
    assert_eq!(
        status(&c.ask(&request(
            "CANCEL",
            "sip:+441632960001@example.net",
            p,
            "b3",
            ""
        ))),
        481
    );
    assert_eq!(
        status(&c.ask(&request(
            "BYE",
            "sip:+441632960001@example.net",
            p,
            "b4",
            ""
        ))),
        481
    );
    // other known methods: 405 with Allow; unknown: 501 with Allow
    let r = c.ask(&request("REGISTER", "sip:example.net", p, "b5", ""));
    assert_eq!((status(&r), header(&r, "Allow").len()), (405, 1));
    let r = c.ask(&request("FOO", "sip:example.net", p, "b6", ""));
    assert_eq!((status(&r), header(&r, "Allow").len()), (501, 1));
    // malformed but answerable: 400 saying what is wrong
    let r = c.ask(
        &request("INVITE", "sip:+441632960001@example.net", p, "b7", "")
            .replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
    );
    assert_eq!(status(&r), 400);
    assert!(
        r.starts_with("SIP/2.0 400 CSeq method does not match"),
        "{r}"
    );
    let r = c.ask(
        &request("INVITE", "sip:+441632960001@example.net", p, "b8", "")
            .replace("Call-ID: call-b8@example.org\r\n", ""),
    );
    assert!(r.starts_with("SIP/2.0 400 Missing Call-ID header"), "{r}");
    let r = c.ask(&request(
        "INVITE",
        "sip:+441632960001@example.net",
        p,
        "b9",
        "Content-Length: 5\r\n",
    ));
    assert!(r.starts_with("SIP/2.0 400 duplicate Content-Length"), "{r}");
    let r = c.ask(
        &request("INVITE", "sip:+441632960001@example.net", p, "c1", "")
            .replace("Max-Forwards: 70", "Max-Forwards: 256"),
    );
    assert_eq!(status(&r), 400);
    // garbage and stray responses: dropped, and the server still answers afterwards
    c.send("\x00\x01\x02 not sip at all");
    c.send("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n");
    // the ACK above and these drops produced nothing: the next datagram is the 302
    let r = c.ask(&request(
        "INVITE",
        "sip:+441632960001@example.net",
        p,
        "c2",
        "",
    ));
    assert_eq!(status(&r), 302);
}

#[test]
fn udp_without_rport_answers_the_sent_by_port() {
    let server = common::Enroute::start(ZONE, GATEWAY);
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lp = listener.local_addr().unwrap().port();
    let msg =
        request("INVITE", "sip:+441632960001@example.net", lp, "d1", "").replace(";rport", "");
    sender
        .send_to(msg.as_bytes(), ("127.0.0.1", server.sip_udp))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = listener
        .recv(&mut buf)
        .expect("answer goes to the sent-by port");
    let r = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(status(&r), 302);
    assert!(
        !header(&r, "Via")[0].contains("received"),
        "sent-by is the source address"
    );
}

#[test]
fn sources_outside_sip_allow_get_403() {
    let server = common::Enroute::start(ZONE, "allow = [\"127.0.0.2/32\"]\n");
    let c = client(server.sip_udp);
    let r = c.ask(&request(
        "INVITE",
        "sip:+441632960001@example.net",
        c.port(),
        "e1",
        "",
    ));
    assert_eq!(status(&r), 403);
    // a denied ACK is dropped
    c.send(&request(
        "ACK",
        "sip:+441632960001@example.net",
        c.port(),
        "e1",
        "",
    ));
    assert!(c.recv().is_none());
}

fn tcp_read(s: &mut TcpStream, answers: usize) -> Vec<String> {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 8192];
    while got.matches("\r\n\r\n").count() < answers {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got.split_inclusive("\r\n\r\n")
        .map(str::to_string)
        .collect()
}

#[test]
fn tcp_framing_and_answers() {
    let server = common::Enroute::start(ZONE, GATEWAY);
    let mut s = TcpStream::connect(("127.0.0.1", server.sip_tcp)).unwrap();
    let a = request("INVITE", "sip:+441632960001@example.net", 5060, "t1", "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let b = request("INVITE", "sip:+441632969999@example.net", 5060, "t2", "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    // two messages in one write
    s.write_all(format!("{a}{b}").as_bytes()).unwrap();
    let got = tcp_read(&mut s, 2);
    assert_eq!(
        got.iter().map(|r| status(r)).collect::<Vec<_>>(),
        [302, 404]
    );
    // a message split across writes, with a body
    let c = request("OPTIONS", "sip:enroute@127.0.0.1", 5060, "t3", "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\no=x\r\n",
        );
    let (x, y) = c.as_bytes().split_at(c.len() / 2);
    s.write_all(x).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(y).unwrap();
    let got = tcp_read(&mut s, 1);
    assert_eq!(status(&got[0]), 200);
    // the connection still works after an ACK (no answer)
    s.write_all(
        request("ACK", "sip:+441632960001@example.net", 5060, "t1", "")
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
            .as_bytes(),
    )
    .unwrap();
    s.write_all(a.as_bytes()).unwrap();
    let got = tcp_read(&mut s, 1);
    assert_eq!(status(&got[0]), 302);
    // over TCP the answer carries no rport/received change unless asked: rport was asked
    assert!(header(&got[0], "Via")[0].contains("received=127.0.0.1"));
}

#[test]
fn tcp_oversized_message_gets_513_and_close() {
    let server = common::Enroute::start(ZONE, "max_message_bytes = 2048\n");
    let mut s = TcpStream::connect(("127.0.0.1", server.sip_tcp)).unwrap();
    let big = request(
        "INVITE",
        "sip:+441632960001@example.net",
        5060,
        "o1",
        &format!("X-Pad: {}\r\n", "a".repeat(4000)),
    );
    let _ = s.write_all(big.as_bytes());
    let got = tcp_read(&mut s, 1);
    assert!(got[0].starts_with("SIP/2.0 513"), "{got:?}");
    // closed afterwards
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    // the server still answers
    let c = client(server.sip_udp);
    assert_eq!(
        status(&c.ask(&request(
            "INVITE",
            "sip:+441632960001@example.net",
            c.port(),
            "o2",
            ""
        ))),
        302
    );
}

#[test]
fn udp_final_answer_retransmitted_until_ack() {
    let server = common::Enroute::start(ZONE, GATEWAY);
    let c = client(server.sip_udp);
    let p = c.port();
    let invite = request("INVITE", "sip:+441632960001@example.net", p, "g1", "");
    let first = c.ask(&invite);
    assert_eq!(status(&first), 302);
    // Timer G: the same bytes again after T1 (500 ms), then after 2·T1
    let t0 = std::time::Instant::now();
    let again = c.recv().expect("retransmitted on Timer G");
    assert_eq!(again, first, "retransmissions are byte-identical");
    let dt = t0.elapsed();
    assert!(
        dt >= Duration::from_millis(300) && dt <= Duration::from_millis(900),
        "{dt:?}"
    );
    let third = c.recv().expect("second retransmission");
    assert_eq!(third, first);
    // the ACK (same branch, RFC 3261 §17.1.1.3) stops them
    c.send(&request(
        "ACK",
        "sip:+441632960001@example.net",
        p,
        "g1",
        "",
    ));
    let sock = &c.sock;
    sock.set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    // one retransmission may already be in flight when the ACK arrives
    let mut late = 0;
    while sock.recv(&mut buf).is_ok() {
        late += 1;
        assert!(late <= 1, "retransmissions continued after the ACK");
    }

    // RFC 2543 branch: matched on Call-ID, From tag and CSeq
    let old = request("INVITE", "sip:+441632960001@example.net", p, "g2", "")
        .replace("branch=z9hG4bKg2", "branch=2543x");
    assert_eq!(status(&c.ask(&old)), 302);
    let ack = request("ACK", "sip:+441632960001@example.net", p, "g2", "")
        .replace("branch=z9hG4bKg2", "branch=2543y");
    c.send(&ack);
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut late = 0;
    while sock.recv(&mut buf).is_ok() {
        late += 1;
        assert!(late <= 1, "RFC 2543 ACK did not stop retransmissions");
    }
}

#[test]
fn overload_answers_503_with_retry_after() {
    let server = common::Enroute::start(ZONE, "max_transactions = 2\n");
    let c = client(server.sip_udp);
    let p = c.port();
    let mut statuses = Vec::new();
    for b in ["l1", "l2", "l3"] {
        let r = c.ask(&request(
            "INVITE",
            "sip:+441632960001@example.net",
            p,
            b,
            "",
        ));
        if status(&r) == 503 {
            assert_eq!(header(&r, "Retry-After"), ["5"]);
        }
        statuses.push(status(&r));
    }
    assert_eq!(statuses, [302, 302, 503]);
}

/// IPv6 listeners (RFC 5118): UDP and TCP on [::1], `received` written without brackets,
/// sent-by compared as an address (RFC 5954: `[0:0:0:0:0:0:0:1]` is `[::1]`).
#[test]
fn ipv6_udp_and_tcp_listeners() {
    if UdpSocket::bind("[::1]:0").is_err() {
        // Some CI containers have no IPv6 loopback; say so rather than pass silently.
        eprintln!("SKIPPED ipv6_udp_and_tcp_listeners: no IPv6 loopback on this host");
        return;
    }
    let (u6, t6) = (common::free_port(), common::free_port());
    let _server = common::Enroute::start_with(
        ZONE,
        GATEWAY,
        &[format!("udp:[::1]:{u6}"), format!("tcp:[::1]:{t6}")],
        |_| {},
    );
    let v6_request = |transport: &str, sent_by: &str, branch: &str, rport: &str| {
        request("INVITE", "sip:+441632960001@example.net", 0, branch, "").replace(
            &format!("SIP/2.0/UDP 127.0.0.1:0;branch=z9hG4bK{branch};rport"),
            &format!("SIP/2.0/{transport} {sent_by};branch=z9hG4bK{branch}{rport}"),
        )
    };

    // UDP with rport: answered to the source, rport filled, received = the bare address
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let p = sock.local_addr().unwrap().port();
    let msg = v6_request("UDP", &format!("[::1]:{p}"), "v6a", ";rport");
    sock.send_to(msg.as_bytes(), ("::1", u6)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer over IPv6 UDP");
    let r = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(status(&r), 302, "{r}");
    assert_eq!(
        header(&r, "Via"),
        [format!(
            "SIP/2.0/UDP [::1]:{p};branch=z9hG4bKv6a;rport={p};received=::1"
        )]
    );
    assert_eq!(
        header(&r, "Contact")[0],
        "<sip:alice@pbx.example.net>;q=1.0"
    );

    // UDP without rport: to the sent-by port; the long form of ::1 is the source, so no
    // received parameter
    let listener = UdpSocket::bind("[::1]:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let lp = listener.local_addr().unwrap().port();
    let msg = v6_request("UDP", &format!("[0:0:0:0:0:0:0:1]:{lp}"), "v6b", "");
    sock.send_to(msg.as_bytes(), ("::1", u6)).unwrap();
    let n = listener
        .recv(&mut buf)
        .expect("answer goes to the sent-by port");
    let r = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(status(&r), 302, "{r}");
    assert_eq!(
        header(&r, "Via"),
        [format!(
            "SIP/2.0/UDP [0:0:0:0:0:0:0:1]:{lp};branch=z9hG4bKv6b"
        )]
    );

    // TCP over IPv6
    let mut s = TcpStream::connect(("::1", t6)).unwrap();
    let msg = v6_request("TCP", "[::1]:5999", "v6c", "");
    s.write_all(msg.as_bytes()).unwrap();
    let answers = tcp_read(&mut s, 1);
    assert_eq!(answers.len(), 1);
    assert_eq!(status(&answers[0]), 302, "{}", answers[0]);
    assert_eq!(
        header(&answers[0], "Contact")[0],
        "<sip:alice@pbx.example.net>;q=1.0"
    );
}
