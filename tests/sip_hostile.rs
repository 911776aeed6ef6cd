//! Hostile SIP input against a running server (SPEC §4 "Wire input is hostile"): 58
//! hand-written messages in the spirit of RFC 4475 (torture tests) and RFC 5118 (IPv6),
//! must-accept and must-reject, each with the answer it must get (or none, and where it
//! matters the reason phrase), then 10,000 seeded random mutations of valid messages (a
//! 50 KB one among them). Afterwards the server still answers a normal INVITE and its
//! RSS stays bounded. Then the answer to a Via with white space in it (RFC 3581 rport,
//! where it goes) and a 50 KB INVITE of extension headers over UDP and TCP.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
"#;

const VIA: &str = "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK";

/// (name, message, expected status; 0 = no answer)
fn cases() -> Vec<(&'static str, String, u16)> {
    let base = |extra: &str, branch: &str| {
        format!(
            "INVITE sip:+441632960001@example.net SIP/2.0\r\n{VIA}{branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:a@example.org>;tag=1\r\nTo: <sip:+441632960001@example.net>\r\n\
             Call-ID: {branch}@example.org\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    let replace = |from: &str, to: &str, branch: &str| base("", branch).replace(from, to);
    vec![
        // must accept (RFC 4475 §3.1.1 spirit)
        ("plain", base("", "h01"), 302),
        (
            "compact forms",
            "INVITE sip:+441632960001@example.net SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKh02;rport\r\nf: <sip:a@example.org>;tag=1\r\nt: <sip:b@example.net>\r\ni: h02@x\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n".to_string(),
            302,
        ),
        (
            "lower-case names",
            base("", "h03")
                .replace("Call-ID", "call-id")
                .replace("CSeq", "cseq")
                .replace("From", "from"),
            302,
        ),
        (
            "upper-case names",
            base("", "h04")
                .replace("Call-ID", "CALL-ID")
                .replace("Max-Forwards", "MAX-FORWARDS"),
            302,
        ),
        (
            "folded header",
            base("Subject: a\r\n  folded\r\n\tsubject\r\n", "h05"),
            302,
        ),
        (
            "folded Via",
            replace(";rport\r\n", ";rport\r\n  ;received=1.2.3.4\r\n", "h06"),
            302,
        ),
        (
            "space before colon",
            replace("Call-ID:", "Call-ID   :", "h07"),
            302,
        ),
        (
            "no space after colon",
            replace("CSeq: 1", "CSeq:1", "h08"),
            302,
        ),
        (
            "multiple Via values",
            replace(
                ";rport\r\n",
                ";rport, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx\r\n",
                "h09",
            ),
            302,
        ),
        (
            "IPv6 sent-by (RFC 5118)",
            replace("127.0.0.1:5060", "[2001:db8::9:1]:5060", "h10"),
            302,
        ),
        (
            "IPv6 in R-URI host",
            replace(
                "sip:+441632960001@example.net SIP",
                "sip:+441632960001@[2001:db8::10] SIP",
                "h11",
            ),
            302,
        ),
        (
            "escaped user",
            replace(
                "sip:+441632960001@example.net SIP",
                "sip:%2B441632960001@example.net SIP",
                "h12",
            ),
            302,
        ),
        (
            "visual separators",
            replace(
                "sip:+441632960001@example.net SIP",
                "sip:+44-1632-960-001@example.net SIP",
                "h13",
            ),
            302,
        ),
        (
            "tel R-URI",
            replace(
                "sip:+441632960001@example.net SIP",
                "tel:+441632960001 SIP",
                "h14",
            ),
            302,
        ),
        (
            "quoted display name with comma",
            replace("From: <", "From: \"Smith, J \\\"x\\\"\" <", "h15"),
            302,
        ),
        (
            "unknown headers",
            base("X-Weird: ;;;,,,\"\r\nP-Foo: \x7e\r\n", "h16"),
            302,
        ),
        (
            "body with Content-Length",
            base("Content-Type: application/sdp\r\n", "h17").replace(
                "Content-Length: 0\r\n\r\n",
                "Content-Length: 5\r\n\r\nv=0\r\n",
            ),
            302,
        ),
        (
            "Max-Forwards 0",
            replace("Max-Forwards: 70", "Max-Forwards: 0", "h18"),
            302,
        ),
        (
            "no Max-Forwards",
            replace("Max-Forwards: 70\r\n", "", "h19"),
            302,
        ),
        (
            "To already tagged",
            replace(
                "To: <sip:+441632960001@example.net>",
                "To: <sip:+441632960001@example.net>;tag=abc",
                "h20",
            ),
            302,
        ),
        (
            "RFC 2543 branch",
            replace("branch=z9hG4bKh21", "branch=1", "h21"),
            302,
        ),
        ("LF line ends", base("", "h22").replace("\r\n", "\n"), 302),
        ("leading CRLF", format!("\r\n\r\n{}", base("", "h23")), 302),
        (
            "sips R-URI, sip-only routes",
            replace(
                "INVITE sip:+441632960001",
                "INVITE sips:+441632960001",
                "h24",
            ),
            404,
        ),
        (
            "OPTIONS",
            base("", "h25")
                .replace("INVITE sip:", "OPTIONS sip:")
                .replace("1 INVITE", "1 OPTIONS"),
            200,
        ),
        (
            "Require on CANCEL ignored",
            base("Require: 100rel\r\n", "h26")
                .replace("INVITE sip:", "CANCEL sip:")
                .replace("1 INVITE", "1 CANCEL"),
            481,
        ),
        (
            "white space in Via (RFC 3261 §25.1 LWS, SLASH, COLON)",
            replace(
                &format!("{VIA}h27;rport"),
                "Via : SIP / 2.0 / UDP 127.0.0.1 : 5060 ;branch = z9hG4bKh27 ; rport",
                "h27",
            ),
            302,
        ),
        ("wsinv (RFC 4475 §3.1.1.1)", wsinv(), 302),
        (
            "3,500 extension headers in 50 KB",
            base(&extension_headers(3500), "h28"),
            302,
        ),
        // must reject (RFC 4475 §3.1.2, §3.3 spirit)
        (
            "CSeq method mismatch",
            replace("CSeq: 1 INVITE", "CSeq: 1 ACK", "r01"),
            400,
        ),
        (
            "CSeq not a number",
            replace("CSeq: 1 INVITE", "CSeq: one INVITE", "r02"),
            400,
        ),
        (
            "CSeq too large",
            replace("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE", "r03"),
            400,
        ),
        (
            "missing From",
            replace("From: <sip:a@example.org>;tag=1\r\n", "", "r04"),
            400,
        ),
        (
            "missing To",
            replace("To: <sip:+441632960001@example.net>\r\n", "", "r05"),
            400,
        ),
        (
            "missing CSeq",
            replace("CSeq: 1 INVITE\r\n", "", "r06"),
            400,
        ),
        (
            "duplicate Call-ID",
            base("Call-ID: other@x\r\n", "r07"),
            400,
        ),
        (
            "duplicate Content-Length",
            base("Content-Length: 0\r\n", "r08"),
            400,
        ),
        (
            "negative Content-Length",
            replace("Content-Length: 0", "Content-Length: -5", "r09"),
            400,
        ),
        (
            "Content-Length longer than body",
            replace("Content-Length: 0", "Content-Length: 9999", "r10"),
            400,
        ),
        (
            "Max-Forwards above 255",
            replace("Max-Forwards: 70", "Max-Forwards: 300", "r11"),
            400,
        ),
        (
            "Max-Forwards not a number",
            replace("Max-Forwards: 70", "Max-Forwards: seventy", "r12"),
            400,
        ),
        (
            "space in Request-URI",
            replace(
                "sip:+441632960001@example.net SIP",
                "sip:+44163296 0001@example.net SIP",
                "r13",
            ),
            400,
        ),
        ("header without colon", base("NoColonHere\r\n", "r14"), 400),
        (
            "SIP/3.0",
            replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia", "r15"),
            505,
        ),
        (
            "unknown scheme",
            replace(
                "sip:+441632960001@example.net SIP",
                "http://example.net SIP",
                "r16",
            ),
            416,
        ),
        (
            "unknown Require",
            base("Require: nothing-known\r\n", "r17"),
            420,
        ),
        (
            "unknown method",
            base("", "r18")
                .replace("INVITE sip:", "NEWMETHOD sip:")
                .replace("1 INVITE", "1 NEWMETHOD"),
            501,
        ),
        (
            "Request-URI in <> (RFC 4475 §3.1.2.7)",
            replace(
                "INVITE sip:+441632960001@example.net SIP",
                "INVITE <sip:+441632960001@example.net> SIP",
                "r21",
            ),
            400,
        ),
        (
            "IPv6 R-URI host without brackets (RFC 5118 §4.2)",
            replace("@example.net SIP", "@2001:db8::10 SIP", "r22"),
            400,
        ),
        (
            "unterminated display name in From (RFC 4475 §3.1.2.6)",
            replace("From: <", "From: \"Mr. J. User <", "r23"),
            400,
        ),
        (
            "To with < and no >",
            replace(
                "To: <sip:+441632960001@example.net>",
                "To: <sip:+441632960001@example.net",
                "r24",
            ),
            400,
        ),
        (
            "NUL in a header value",
            base("Subject: a\u{0}b\r\n", "r25"),
            400,
        ),
        (
            "Via port not a number",
            replace("127.0.0.1:5060", "127.0.0.1:50x60", "r26"),
            400,
        ),
        (
            "Via port above 65535",
            replace("127.0.0.1:5060", "127.0.0.1:65536", "r27"),
            400,
        ),
        // dropped
        (
            "no Via",
            replace(&format!("{VIA}r19;rport\r\n"), "", "r19"),
            0,
        ),
        (
            "response",
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKz\r\n\r\n".into(),
            0,
        ),
        ("binary garbage", "\u{0}\u{1}\u{2}\u{3}".into(), 0),
        (
            "ACK",
            base("", "r20")
                .replace("INVITE sip:", "ACK sip:")
                .replace("1 INVITE", "1 ACK"),
            0,
        ),
    ]
}

/// The reason phrase a case's answer must carry, where it says what is wrong.
const REASONS: &[(&str, &str)] = &[
    (
        "Request-URI in <> (RFC 4475 §3.1.2.7)",
        "Request-URI in angle brackets",
    ),
    (
        "IPv6 R-URI host without brackets (RFC 5118 §4.2)",
        "IPv6 address in Request-URI without brackets",
    ),
    (
        "unterminated display name in From (RFC 4475 §3.1.2.6)",
        "Unterminated quoted string in From",
    ),
    ("To with < and no >", "Missing > in To"),
    ("NUL in a header value", "NUL byte in a header"),
    ("Via port not a number", "Via port is not a number"),
    ("Via port above 65535", "Via port above 65535"),
];

/// `n` short extension headers (RFC 3261 §7.3: any number of them).
fn extension_headers(n: usize) -> String {
    (0..n).map(|i| format!("X-H{i}: v{i}\r\n")).collect()
}

/// RFC 4475 §3.1.1.1 (wsinv): white space and folding wherever the grammar allows, sent
/// to a number this server routes, its top Via at this client with `rport` added.
fn wsinv() -> String {
    let body = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\n\
                c=IN IP4 192.0.2.4\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\n\
                m=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
    let head = r#"INVITE sip:+441632960001@example.net;unknownparam SIP/2.0
TO :
 sip:+441632960001@example.net ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : LEN
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    127.0.0.1;branch=390skdjuw ; rport
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

"#;
    assert_eq!(body.len(), 150);
    head.replace('\n', "\r\n")
        .replace("LEN", &body.len().to_string())
        + body
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_messages_get_their_answers_and_mutations_never_hurt() {
    let server = common::Enroute::start(ZONE, "");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let dest = ("127.0.0.1", server.sip_udp);
    let mut buf = vec![0u8; 65536];
    let cases = cases();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    // Final INVITE answers not ACKed here are retransmitted on Timer G, byte-identical:
    // a response seen before is such a retransmission, not an answer to the current case.
    let mut seen = std::collections::HashSet::new();
    for (name, msg, want) in &cases {
        sock.send_to(msg.as_bytes(), dest).unwrap();
        let answer = loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if seen.insert(text.clone()) {
                        break text;
                    }
                }
                Err(_) => break String::new(),
            }
        };
        let status_line = answer.lines().next().unwrap_or("");
        let got = match status_line.split(' ').nth(1) {
            None if answer.is_empty() => 0,
            code => code.and_then(|s| s.parse().ok()).unwrap_or(1),
        };
        if got != *want {
            failures.push(format!("{name}: want {want}, got {status_line:?}"));
        } else if let Some((_, reason)) = REASONS.iter().find(|(case, _)| case == name) {
            let got_reason = status_line.splitn(3, ' ').nth(2).unwrap_or("");
            if got_reason != *reason {
                failures.push(format!(
                    "{name}: want reason {reason:?}, got {got_reason:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // 10,000 seeded mutations of the valid messages; answers are drained, not checked.
    let valid: Vec<&String> = cases.iter().filter(|c| c.2 == 302).map(|c| &c.1).collect();
    let mut x: u64 = 0x5151_2026;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    sock.set_nonblocking(true).unwrap();
    let rss_before = rss_kb(server.pid());
    for i in 0..10_000 {
        let mut m = valid[i % valid.len()].as_bytes().to_vec();
        for _ in 0..1 + next() % 6 {
            let pos = (next() as usize) % (m.len() + 1);
            match next() % 5 {
                0 if pos < m.len() => {
                    m.remove(pos);
                }
                1 => m.insert(pos, next() as u8),
                2 if pos < m.len() => m[pos] = b"\r\n:;,<>\"\\ @%0"[(next() % 13) as usize],
                3 => {
                    let end = (pos + (next() as usize % 200)).min(m.len());
                    let chunk = m[pos..end].to_vec();
                    m.splice(pos..pos, chunk);
                }
                _ => m.truncate(pos),
            }
        }
        let _ = sock.send_to(&m, dest);
        if i % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
            while sock.recv(&mut buf).is_ok() {}
        }
    }
    sock.set_nonblocking(false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    while sock.recv(&mut buf).is_ok() {}

    // still alive and answering (skipping retransmissions of earlier answers)
    let ok = cases[0]
        .1
        .replace("z9hG4bKh01", "z9hG4bKafter")
        .replace("h01@example.org", "after@example.org");
    sock.send_to(ok.as_bytes(), dest).unwrap();
    let answer = answer_with(&sock, "after@example.org");
    assert!(answer.starts_with("SIP/2.0 302"), "{answer}");
    let rss_after = rss_kb(server.pid());
    assert!(
        rss_after < rss_before + 20_000,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
}

/// The first line of `answer` starting with `name:`.
fn header_line<'a>(answer: &'a str, name: &str) -> &'a str {
    answer
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .unwrap_or("")
}

#[test]
fn via_with_white_space_gets_rport_received_and_the_right_destination() {
    let server = common::Enroute::start(ZONE, "");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let invite = |via: &str, branch: &str| {
        format!(
            "INVITE sip:+441632960001@example.net SIP/2.0\r\nVia : {via}\r\n\
             From: <sip:a@example.org>;tag=1\r\nTo: <sip:+441632960001@example.net>\r\n\
             Call-ID: {branch}@example.org\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut buf = vec![0u8; 65536];
    let mut ask = |msg: &str| {
        sock.send_to(msg.as_bytes(), ("127.0.0.1", server.sip_udp))
            .unwrap();
        let n = sock.recv(&mut buf).expect("an answer at this socket");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // rport: filled with the source port, received added (RFC 3581 §4).
    let answer = ask(&invite(
        "SIP / 2.0 / UDP 127.0.0.1:5060 ;branch=z9hG4bKws1 ; rport",
        "ws1",
    ));
    assert!(answer.starts_with("SIP/2.0 302 "), "{answer}");
    assert_eq!(
        header_line(&answer, "Via"),
        format!(
            "Via: SIP / 2.0 / UDP 127.0.0.1:5060;branch=z9hG4bKws1;rport={port};received=127.0.0.1"
        )
    );
    // No rport: answered to the sent-by port, read across white space around its colon
    // (RFC 3261 §18.2.2); the host is the source, so no received.
    let via = format!("SIP / 2.0 / UDP 127.0.0.1 : {port} ;branch=z9hG4bKws2");
    let answer = ask(&invite(&via, "ws2"));
    assert!(answer.starts_with("SIP/2.0 302 "), "{answer}");
    assert_eq!(header_line(&answer, "Via"), format!("Via: {via}"));
}

#[test]
fn fifty_kilobytes_of_extension_headers_get_302_over_udp_and_tcp() {
    use std::io::{Read, Write};
    let server = common::Enroute::start(ZONE, "");
    let invite = |transport: &str, branch: &str| {
        format!(
            "INVITE sip:+441632960001@example.net SIP/2.0\r\n\
             Via: SIP/2.0/{transport} 127.0.0.1:5060;branch=z9hG4bK{branch};rport\r\n\
             From: <sip:a@example.org>;tag=1\r\nTo: <sip:+441632960001@example.net>\r\n\
             Call-ID: {branch}@example.org\r\nCSeq: 1 INVITE\r\n{}Content-Length: 0\r\n\r\n",
            extension_headers(3500)
        )
    };
    let contact = "Contact: <sip:alice@pbx.example.net>;q=1.0";

    let udp = invite("UDP", "big1");
    assert!((50_000..65_535).contains(&udp.len()), "{}", udp.len());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(udp.as_bytes(), ("127.0.0.1", server.sip_udp))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf).expect("an answer over UDP");
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("SIP/2.0 302 "), "{answer}");
    assert_eq!(header_line(&answer, "Contact"), contact);

    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", server.sip_tcp)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    tcp.write_all(invite("TCP", "big2").as_bytes()).unwrap();
    let mut answer = String::new();
    while !answer.contains("\r\n\r\n") {
        let n = tcp.read(&mut buf).expect("an answer over TCP");
        assert!(n > 0, "closed after {answer:?}");
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("SIP/2.0 302 "), "{answer}");
    assert_eq!(header_line(&answer, "Contact"), contact);
}

/// A REGISTER for alice@example.net from the test's socket, with `extra` header lines.
fn register(branch: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:example.net SIP/2.0\r\n{VIA}{branch};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@example.net>;tag=r1\r\nTo: <sip:alice@example.net>\r\n\
         Call-ID: hostile-{branch}@example.org\r\nCSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// A well-formed digest for alice whose response is wrong (any password but hers).
fn wrong_digest(nonce: &str) -> String {
    format!(
        "Authorization: Digest username=\"alice\", realm=\"example.net\", nonce=\"{nonce}\", \
         uri=\"sip:example.net\", response=\"{}\", algorithm=MD5, cnonce=\"c\", qop=auth, nc=00000001\r\n",
        "0".repeat(32)
    )
}

/// A good MD5 digest line for alice (password "secret") on `nonce` with count `nc`.
fn good_digest(nonce: &str, nc: u32) -> String {
    common::md5_authorization("alice", "example.net", "secret", nonce, nc, "c") + "\r\n"
}

/// The nonce of a 401's first challenge.
fn nonce_of(challenge: &str) -> String {
    challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("none")
        .to_string()
}

#[test]
fn hostile_registers_get_clear_answers_and_brute_force_is_throttled() {
    let server = common::Enroute::start(
        ZONE,
        "[registrar]\nenabled = true\ndomains = [\"example.net\"]\nmax_auth_failures = 5\n",
    );
    server.create_user("alice@example.net", "secret");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let dest = ("127.0.0.1", server.sip_udp);
    let mut buf = vec![0u8; 65536];
    let mut ask = |msg: &str| -> String {
        sock.send_to(msg.as_bytes(), dest).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(_) => String::new(),
        }
    };
    // Failures count per wall-clock minute: start well inside one.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 > 40 {
        std::thread::sleep(Duration::from_secs(61 - secs % 60));
    }
    let nonce = nonce_of(&ask(&register("r00", 1, "")));
    let thousands: String = (0..2000)
        .map(|i| format!("<sip:c{i}@192.0.2.1>"))
        .collect::<Vec<_>>()
        .join(", ");
    let unroutable = register("r14", 1, "").replace(
        "To: <sip:alice@example.net>",
        "To: <sip:alice@elsewhere.org>",
    );
    let no_user =
        register("r15", 1, "").replace("To: <sip:alice@example.net>", "To: <sip:example.net>");
    // (name, the request's own lines, whether it carries good credentials, answer)
    let cases: Vec<(&str, String, bool, &str)> = vec![
        (
            "empty digest",
            "Authorization: Digest\r\n".into(),
            false,
            "400 Malformed Authorization header",
        ),
        (
            "unterminated quote",
            "Authorization: Digest username=\"alice, realm=\"example.net\"\r\n".into(),
            false,
            "400 Malformed Authorization header",
        ),
        (
            "parameters without values",
            "Authorization: Digest username, realm, nonce\r\n".into(),
            false,
            "400 Malformed Authorization header",
        ),
        (
            "a 20 kB nonce",
            wrong_digest(&"n".repeat(20_000)),
            false,
            "401 Unauthorized",
        ),
        (
            "Basic instead of Digest",
            "Authorization: Basic YWxpY2U6c2VjcmV0\r\n".into(),
            false,
            "401 Unauthorized",
        ),
        // Contacts are read only once the credentials are good (RFC 3261 §10.3).
        (
            "thousands of contacts, unauthenticated",
            format!("Contact: {thousands}\r\n"),
            false,
            "401 Unauthorized",
        ),
        (
            "thousands of contacts",
            format!("Contact: {thousands}\r\n"),
            true,
            "403 Too many bindings",
        ),
        (
            "negative Expires",
            "Contact: <sip:a@192.0.2.1>\r\nExpires: -1\r\n".into(),
            true,
            "400 Malformed Expires",
        ),
        (
            "Expires in words",
            "Contact: <sip:a@192.0.2.1>\r\nExpires: soon\r\n".into(),
            true,
            "400 Malformed Expires",
        ),
        (
            "expires parameter overflowing (cut to the maximum)",
            "Contact: <sip:a@192.0.2.1>;expires=99999999999999999999999\r\n".into(),
            true,
            "200 OK",
        ),
        (
            "expires parameter in hex",
            "Contact: <sip:a@192.0.2.1>;expires=0x10\r\n".into(),
            true,
            "400 Malformed expires in Contact",
        ),
        (
            "q above 1",
            "Contact: <sip:a@192.0.2.1>;q=7\r\n".into(),
            true,
            "400 Malformed q in Contact",
        ),
        (
            "empty Contact URI",
            "Contact: <>\r\n".into(),
            true,
            "400 Malformed Contact",
        ),
        (
            "star with an expiry",
            "Contact: *\r\nExpires: 60\r\n".into(),
            true,
            "400 Contact * needs Expires: 0 and no other Contact",
        ),
        (
            "star beside a contact",
            "Contact: *, <sip:a@192.0.2.1>\r\nExpires: 0\r\n".into(),
            true,
            "400 Contact * needs Expires: 0 and no other Contact",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (name, lines, good, want)) in cases.iter().enumerate() {
        let auth = if *good {
            good_digest(&nonce, i as u32 + 1)
        } else {
            String::new()
        };
        let answer = ask(&register(
            &format!("r{i:02}x"),
            i as u32 + 2,
            &format!("{auth}{lines}"),
        ));
        let status_line = answer.lines().next().unwrap_or("");
        if status_line != format!("SIP/2.0 {want}") {
            failures.push(format!("{name}: want {want:?}, got {status_line:?}"));
        }
    }
    for (name, msg) in [
        ("a domain not served", &unroutable),
        ("To without a user", &no_user),
    ] {
        let status_line = ask(msg).lines().next().unwrap_or("").to_string();
        if status_line != "SIP/2.0 404 Not Found" {
            failures.push(format!("{name}: want 404, got {status_line:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // A brute-force loop: every wrong password gets 401 until the source has failed
    // max_auth_failures (5) times this minute, then 403 without looking at the
    // password. The 20 kB nonce's wrong digest above was the first failure.
    let mut answers = Vec::new();
    for i in 0..12 {
        let nonce = nonce_of(&ask(&register(&format!("bf{i}a"), 100, "")));
        let answer = ask(&register(&format!("bf{i}b"), 101, &wrong_digest(&nonce)));
        answers.push(answer.lines().next().unwrap_or("").to_string());
    }
    let first_403 = answers.iter().position(|a| a.starts_with("SIP/2.0 403"));
    assert_eq!(first_403, Some(4), "{answers:#?}");
    assert!(
        answers[4..].iter().all(|a| a == "SIP/2.0 403 Forbidden"),
        "{answers:#?}"
    );
    assert!(
        answers[..4].iter().all(|a| a == "SIP/2.0 401 Unauthorized"),
        "{answers:#?}"
    );
    let metrics = ureq::get(format!("http://127.0.0.1:{}/metrics", server.admin))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let count = |result: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "enroute_registrar_requests_total{{result=\"{result}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("throttled") >= 8, "{metrics}");
    assert_eq!(count("auth_failed"), 5, "{metrics}");
    // Another source address is not throttled.
    let fresh = UdpSocket::bind("127.0.0.2:0").unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    fresh
        .send_to(register("alive", 1, "").as_bytes(), dest)
        .unwrap();
    let n = fresh.recv(&mut buf).expect("a REGISTER is still answered");
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("SIP/2.0 401"), "{answer}");
    drop(server);

    // Random mutations of REGISTERs with credentials, against a server that does not
    // throttle (so that every one reaches the digest and contact readers), with one
    // binding held (so that INVITEs reach the registrar step too).
    let server = common::Enroute::start(
        ZONE,
        "[registrar]\nenabled = true\ndomains = [\"example.net\"]\nmax_auth_failures = 1000000\n",
    );
    server.create_user("alice@example.net", "secret");
    let dest = ("127.0.0.1", server.sip_udp);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(register("m0", 1, "").as_bytes(), dest)
        .unwrap();
    let n = sock.recv(&mut buf).unwrap();
    let nonce = nonce_of(&String::from_utf8_lossy(&buf[..n]));
    let seed = register(
        "mut",
        2,
        &format!(
            "{}Contact: <sip:alice@192.0.2.1>;q=0.5;expires=60\r\nExpires: 60\r\n",
            good_digest(&nonce, 1)
        ),
    );
    sock.send_to(seed.as_bytes(), dest).unwrap();
    let n = sock.recv(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A Request-URI user that is not ASCII, with a binding held: 404, no panic.
    sock.send_to(
        "INVITE sip:\u{e9}@example.net SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKutf;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:b@example.net>\r\n\
         Call-ID: utf@example.org\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            .as_bytes(),
        dest,
    )
    .unwrap();
    let n = sock.recv(&mut buf).expect("an answer to a non-ASCII user");
    assert!(
        buf[..n].starts_with(b"SIP/2.0 404"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let rss_before = rss_kb(server.pid());
    let mut x: u64 = 0x7e61_2026;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let invite = cases_invite_to_alice();
    let contacts = "Contact: \"A\" <sip:alice@192.0.2.1;transport=tcp>;q=0.5;expires=60, \
                    <sip:alice@192.0.2.2>\r\nExpires: 60\r\n";
    sock.set_nonblocking(true).unwrap();
    let mut nc = 1;
    let mut ok = 0;
    for i in 0..5_000 {
        // Every other message: the same Contact and Expires lines mutated behind good
        // credentials (a fresh nonce count each), so that they reach the contact reader;
        // else the whole REGISTER or an INVITE mutated.
        let (base, tail_only) = match i % 4 {
            0 => (&invite, false),
            1 => (&seed, false),
            _ => (&contacts.to_string(), true),
        };
        let mut m = base.as_bytes().to_vec();
        for _ in 0..1 + next() % 6 {
            let pos = (next() as usize) % (m.len() + 1);
            match next() % 4 {
                0 if pos < m.len() => {
                    m.remove(pos);
                }
                1 => m.insert(pos, next() as u8),
                2 if pos < m.len() => m[pos] = b"\r\n:;,<>\"\\ @*=0"[(next() % 14) as usize],
                _ => {
                    let end = (pos + (next() as usize % 300)).min(m.len());
                    let chunk = m[pos..end].to_vec();
                    m.splice(pos..pos, chunk);
                }
            }
        }
        if tail_only {
            nc += 1;
            let lines = format!("{}{}", good_digest(&nonce, nc), String::from_utf8_lossy(&m));
            m = register(&format!("t{i}"), 10 + i, &lines).into_bytes();
        }
        let _ = sock.send_to(&m, dest);
        if i % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
            while let Ok(n) = sock.recv(&mut buf) {
                ok += usize::from(buf[..n].starts_with(b"SIP/2.0 200"));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(n) = sock.recv(&mut buf) {
        ok += usize::from(buf[..n].starts_with(b"SIP/2.0 200"));
    }
    // Some mutated contact lists were still good ones: the reader was reached.
    assert!(ok > 0, "no mutated REGISTER got past authentication");
    let rss_after = rss_kb(server.pid());
    assert!(
        rss_after < rss_before + 20_000,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    // Still answering, and alice still reached.
    sock.set_nonblocking(false).unwrap();
    let check = invite
        .replace("z9hG4bKinvA", "z9hG4bKinvCheck")
        .replace("inv-a@", "inv-check@");
    sock.send_to(check.as_bytes(), dest).unwrap();
    let answer = answer_with(&sock, "inv-check@");
    assert!(answer.starts_with("SIP/2.0 302"), "{answer}");
}

/// The next answer on `sock` that holds `needle` (earlier answers' retransmissions are
/// passed over); panics when none comes.
fn answer_with(sock: &UdpSocket, needle: &str) -> String {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = sock
            .recv(&mut buf)
            .expect("the server answers after the mutations");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains(needle) {
            return text;
        }
    }
}

/// An INVITE for alice@example.net.
fn cases_invite_to_alice() -> String {
    "INVITE sip:alice@example.net SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKinvA;rport\r\n\
     Max-Forwards: 70\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:alice@example.net>\r\n\
     Call-ID: inv-a@example.org\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        .to_string()
}
