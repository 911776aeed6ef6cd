//! The DNS side of `enroute serve` with real peers (SPEC §6, issue 5): AXFR allowed and
//! refused, NOTIFY out after a change (captured by a test socket), Knot as a secondary
//! of enroute, enroute as a secondary of Knot (SIP routes by the transferred copy, the
//! copy survives a restart, NOTIFY from others is refused), two enroute instances as
//! primary and secondary, and hostile packets.

mod common;

use common::{Enroute, Knot, axfr, free_port, send_notify, sip_contact, soa_serial, wait_serial};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::UdpSocket;
use std::str::FromStr;
use std::time::{Duration, Instant};

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";

fn zone(serial: u32, alice: &str) -> String {
    format!(
        "$ORIGIN {ORIGIN}\n$TTL 300\n\
         @ SOA ns1.example.net. hostmaster.example.net. {serial} 2 1 600 60\n\
         @ NS ns1.example.net.\n\
         1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:{alice}@pbx.example.net!\" .\n\
         2.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^\\\\+44(.*)$!sip:0\\\\1@pbx.example.net!\" .\n\
         *.7.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:wild@pbx.example.net!\" .\n\
         3.0.0.0.6.9 TXT \"a \\\"quoted\\\" text\"\n"
    )
}

#[test]
fn axfr_to_allowed_sources_and_refused_to_others() {
    let open = Enroute::start(&zone(7, "alice"), "");
    let records = axfr(open.dns, ORIGIN).expect("transfer allowed from 127.0.0.1");
    assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    // SOA, NS, 3 NAPTR, TXT, SOA
    assert_eq!(records.len(), 7, "{records:?}");
    let txt = records
        .iter()
        .find(|r| r.record_type() == RecordType::TXT)
        .unwrap();
    assert_eq!(txt.data.to_string(), "a \"quoted\" text");
    let backref = records
        .iter()
        .find(|r| r.name.to_ascii().starts_with("2.0.0.0"))
        .unwrap();
    match &backref.data {
        RData::NAPTR(n) => assert_eq!(&n.regexp[..], b"!^\\+44(.*)$!sip:0\\1@pbx.example.net!"),
        other => panic!("{other:?}"),
    }

    let port = free_port();
    let _closed = Enroute::start(
        &zone(7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\nallow_transfer = [\"192.0.2.0/24\"]\n"
        ),
    );
    assert_eq!(axfr(port, ORIGIN).unwrap_err(), ResponseCode::Refused);
    // The zone itself is still served to that client.
    assert_eq!(soa_serial(port, ORIGIN), Some(7));
}

#[test]
fn notify_goes_out_after_a_serial_change_and_is_retried_until_acknowledged() {
    let catcher = UdpSocket::bind("127.0.0.1:0").unwrap();
    catcher
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let target = catcher.local_addr().unwrap().port();
    let server = Enroute::start(
        &zone(7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{p}\", \"tcp:127.0.0.1:{p}\"]\nnotify = [\"127.0.0.1:{target}\"]\n",
            p = free_port()
        ),
    );
    // No change, no NOTIFY.
    catcher
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    assert!(
        catcher.recv_from(&mut buf).is_err(),
        "NOTIFY without a change"
    );

    std::fs::write(server.dir.path().join("z.zone"), zone(8, "alice2")).unwrap();
    server.sighup();
    catcher
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (n, from) = catcher
        .recv_from(&mut buf)
        .expect("NOTIFY after the reload");
    let first = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(first.metadata.op_code, OpCode::Notify);
    assert_eq!(first.metadata.message_type, MessageType::Query);
    assert!(first.metadata.authoritative);
    assert_eq!(first.queries[0].name().to_ascii(), ORIGIN);
    assert_eq!(first.queries[0].query_type(), RecordType::SOA);
    // Not acknowledged: it comes again (after about 1 s).
    let (n, _) = catcher.recv_from(&mut buf).expect("NOTIFY retried");
    let again = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(again.metadata.op_code, OpCode::Notify);
    // Acknowledge: no more.
    let ack = Message::response(again.metadata.id, OpCode::Notify);
    catcher.send_to(&ack.to_vec().unwrap(), from).unwrap();
    catcher
        .set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut more = 0;
    while let Ok((n, _)) = catcher.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.id != again.metadata.id {
            more += 1;
        }
    }
    assert_eq!(more, 0, "NOTIFY went on after the acknowledgement");
}

#[test]
fn knot_as_a_secondary_of_enroute() {
    let ours = free_port();
    let mut knot = Knot::start_conf(
        &[],
        &format!(
            "remote:\n  - id: enroute\n    address: 127.0.0.1@{ours}\n\
             acl:\n  - id: from_enroute\n    address: 127.0.0.1\n    action: notify\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    master: enroute\n    acl: from_enroute\n    file: \"{{dir}}/secondary.db\"\n"
        ),
        &[],
    );
    let server = Enroute::start(
        &zone(7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{ours}\", \"tcp:127.0.0.1:{ours}\"]\nnotify = [\"127.0.0.1:{}\"]\n",
            knot.port
        ),
    );
    knot.knotc(&["zone-refresh", ORIGIN]);
    assert!(
        knot.wait_soa(&[ORIGIN], Duration::from_secs(20)),
        "Knot did not transfer from enroute; log:\n{}",
        knot.log()
    );
    // Knot answers from its copy exactly as enroute does.
    for (name, qtype) in [
        (format!("1.0.0.0.6.9.{ORIGIN}"), 35),
        (format!("2.0.0.0.6.9.{ORIGIN}"), 35),
        (format!("5.4.7.9.{ORIGIN}"), 35),
        (format!("9.9.9.9.6.9.{ORIGIN}"), 35),
        (format!("3.0.0.0.6.9.{ORIGIN}"), 16),
        (ORIGIN.to_string(), 2),
    ] {
        let k = common::dns_query(knot.port, &name, qtype).unwrap();
        let o = common::dns_query(ours, &name, qtype).unwrap();
        assert_eq!(k.metadata.response_code, o.metadata.response_code, "{name}");
        assert_eq!(
            k.answers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            o.answers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "{name}"
        );
    }
    // A change on enroute reaches Knot by NOTIFY + transfer.
    std::fs::write(server.dir.path().join("z.zone"), zone(8, "alice2")).unwrap();
    server.sighup();
    assert!(
        wait_serial(knot.port, ORIGIN, 8, Duration::from_secs(15)),
        "Knot did not follow serial 8; log:\n{}",
        knot.log()
    );
    let k = common::dns_query(knot.port, &format!("1.0.0.0.6.9.{ORIGIN}"), 35).unwrap();
    assert!(
        k.answers[0].to_string().contains("sip:alice2@"),
        "{:?}",
        k.answers
    );
}

#[test]
fn enroute_as_a_secondary_of_knot_routes_sip_and_keeps_its_copy() {
    let ours = free_port();
    let knot = Knot::start_conf(
        &[("primary.db", &zone(7, "alice"))],
        &format!(
            "remote:\n  - id: enroute\n    address: 127.0.0.1@{ours}\n\
             acl:\n  - id: to_enroute\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    file: \"{{dir}}/primary.db\"\n    notify: enroute\n    acl: to_enroute\n"
        ),
        &[ORIGIN],
    );
    let mut server = Enroute::start(
        "",
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{ours}\", \"tcp:127.0.0.1:{ours}\"]\n\
             [store]\npath = \"data/enroute.db\"\n\
             [[zone]]\norigin = \"{ORIGIN}\"\nprimary = \"127.0.0.1:{}\"\n",
            knot.port
        ),
    );
    assert!(
        wait_serial(ours, ORIGIN, 7, Duration::from_secs(10)),
        "no first transfer"
    );
    assert!(sip_contact(server.sip_udp, "+441632960001").contains("sip:alice@pbx.example.net"));
    assert!(sip_contact(server.sip_udp, "+441632960002").contains("sip:01632960002@pbx"));
    assert!(sip_contact(server.sip_udp, "+441632971234").contains("sip:wild@pbx"));

    // Knot's zone changes: reload + NOTIFY; enroute serves the new serial and routes by it.
    knot.replace_zone_file("primary.db", ORIGIN, &zone(9, "alice9"));
    assert!(
        wait_serial(ours, ORIGIN, 9, Duration::from_secs(10)),
        "serial 9 not followed; knot log:\n{}",
        knot.log()
    );
    assert!(sip_contact(server.sip_udp, "+441632960001").contains("sip:alice9@pbx.example.net"));

    // NOTIFY from anyone but the primary is refused (SPEC §10.25): it comes from
    // 127.0.0.1 but Knot's address is 127.0.0.1 too, so use another loopback address.
    let sock = UdpSocket::bind("127.0.0.2:0");
    if let Ok(sock) = sock {
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut msg = Message::new(99, MessageType::Query, OpCode::Notify);
        msg.add_query(Query::query(
            Name::from_str(ORIGIN).unwrap(),
            RecordType::SOA,
        ));
        sock.send_to(&msg.to_vec().unwrap(), ("127.0.0.1", ours))
            .unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer to the NOTIFY");
        assert_eq!(
            Message::from_vec(&buf[..n]).unwrap().metadata.response_code,
            ResponseCode::Refused
        );
    }
    // From the primary's address it is accepted.
    assert_eq!(send_notify(ours, ORIGIN), Some(ResponseCode::NoError));
    // NOTIFY for a zone we are primary of (or do not have) is refused.
    assert_eq!(
        send_notify(ours, "example.net."),
        Some(ResponseCode::Refused)
    );

    // The copy survives a restart while the primary is gone.
    drop(knot);
    server.restart();
    assert_eq!(
        soa_serial(ours, ORIGIN),
        Some(9),
        "kept copy not served after restart"
    );
    assert!(sip_contact(server.sip_udp, "+441632960001").contains("sip:alice9@pbx.example.net"));
}

/// The final SIP answer for `number` (its Contact line for a 302, else its status
/// line), and whether a 100 Trying came first (the decision needed upstream DNS and was
/// not in the cache).
fn final_contact(server: u16, number: &str) -> (String, bool) {
    let client = common::SipUdp::new(server, Duration::from_secs(3));
    let branch = format!("{number}{:?}", Instant::now()).replace(['+', ' ', '.'], "");
    client.send(&common::invite(number, &branch, client.port()));
    let mut trying = false;
    loop {
        let r = client.recv().expect("a SIP answer");
        if r.starts_with("SIP/2.0 1") {
            trying = true;
            continue;
        }
        let line = if common::sip_status(&r) == 302 {
            r.lines().find(|l| l.starts_with("Contact:"))
        } else {
            r.lines().next()
        };
        return (line.unwrap_or("").to_string(), trying);
    }
}

/// A transferred copy is published like any other zone change: decisions cached while
/// the secondary zone lacked a number are dropped, so the record the primary adds routes
/// at once, and `/metrics` reports the transferred serial.
#[test]
fn transfer_drops_cached_decisions_and_updates_metrics() {
    let ours = free_port();
    // Knot is both the primary of the secondary zone and the upstream ENUM tree that is
    // asked first (`e164.test.`, where the number is absent: NXDOMAIN).
    let upstream = "$ORIGIN e164.test.\n$TTL 600\n\
                    @ SOA ns h 1 3600 900 604800 600\n@ NS ns\nns A 127.0.0.1\n";
    let knot = Knot::start_conf(
        &[("primary.db", &zone(7, "alice")), ("upstream.db", upstream)],
        &format!(
            "remote:\n  - id: enroute\n    address: 127.0.0.1@{ours}\n\
             acl:\n  - id: to_enroute\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    file: \"{{dir}}/primary.db\"\n    notify: enroute\n    acl: to_enroute\n\
             \x20 - domain: \"e164.test.\"\n    file: \"{{dir}}/upstream.db\"\n"
        ),
        &[ORIGIN, "e164.test."],
    );
    let server = Enroute::start(
        "",
        &format!(
            "[enum]\nsuffixes = [\"e164.test.\", \"e164.arpa.\"]\nnameservers = [\"127.0.0.1:{0}\"]\ntimeout_ms = 1000\n\
             [dns]\nlisten = [\"udp:127.0.0.1:{ours}\", \"tcp:127.0.0.1:{ours}\"]\n\
             [store]\npath = \"data/enroute.db\"\n\
             [[zone]]\norigin = \"{ORIGIN}\"\nprimary = \"127.0.0.1:{0}\"\n",
            knot.port
        ),
    );
    assert!(
        wait_serial(ours, ORIGIN, 7, Duration::from_secs(10)),
        "no first transfer"
    );
    let metric_serial = || {
        let text = common::http(server.admin, "GET", "/metrics", &[], b"").text();
        let want = format!("enroute_zone_serial{{zone=\"{ORIGIN}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(want.as_str()).map(str::to_string))
            .unwrap_or_else(|| panic!("no {want} in:\n{text}"))
    };
    assert_eq!(metric_serial(), "7");

    // Not in either tree: NXDOMAIN upstream, then NXDOMAIN in the secondary zone. The
    // decision needed upstream DNS, so it is cached (negative, 60 s).
    let (absent, looked_up) = final_contact(server.sip_udp, "+441632960009");
    assert!(
        absent.contains(" 404 ") && looked_up,
        "absent number: {absent}"
    );
    let (absent, looked_up) = final_contact(server.sip_udp, "+441632960009");
    assert!(absent.contains(" 404 ") && !looked_up, "cached: {absent}");

    // The primary adds it: NOTIFY, transfer, and the next INVITE routes by the record.
    let added = format!(
        "{}9.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:added@pbx.example.net!\" .\n",
        zone(9, "alice")
    );
    knot.replace_zone_file("primary.db", ORIGIN, &added);
    assert!(
        wait_serial(ours, ORIGIN, 9, Duration::from_secs(10)),
        "serial 9 not followed; knot log:\n{}",
        knot.log()
    );
    let (got, _) = final_contact(server.sip_udp, "+441632960009");
    assert!(
        got.contains("sip:added@pbx.example.net"),
        "the transfer left a stale cached decision: {got}"
    );
    assert_eq!(metric_serial(), "9");
}

#[test]
fn secondary_enroute_follows_a_primary_enroute() {
    let (primary_dns, secondary_dns) = (free_port(), free_port());
    let primary = Enroute::start(
        &zone(7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{primary_dns}\", \"tcp:127.0.0.1:{primary_dns}\"]\nnotify = [\"127.0.0.1:{secondary_dns}\"]\n"
        ),
    );
    let secondary = Enroute::start(
        "",
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{secondary_dns}\", \"tcp:127.0.0.1:{secondary_dns}\"]\n\
             [store]\npath = \"data/enroute.db\"\n\
             [[zone]]\norigin = \"{ORIGIN}\"\nprimary = \"127.0.0.1:{primary_dns}\"\n"
        ),
    );
    assert!(wait_serial(
        secondary_dns,
        ORIGIN,
        7,
        Duration::from_secs(10)
    ));
    assert!(sip_contact(secondary.sip_udp, "+441632960001").contains("sip:alice@pbx"));
    let changed = Instant::now();
    std::fs::write(primary.dir.path().join("z.zone"), zone(8, "bob")).unwrap();
    primary.sighup();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if sip_contact(secondary.sip_udp, "+441632960001").contains("sip:bob@pbx") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the secondary did not route the change within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "change routed on the secondary after {:?}",
        changed.elapsed()
    );
    assert_eq!(soa_serial(secondary_dns, ORIGIN), Some(8));
}

#[test]
fn hostile_packets_get_formerr_or_nothing_and_the_server_keeps_answering() {
    let server = Enroute::start(&zone(7, "alice"), "");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut msg = Message::query();
    msg.add_query(Query::query(
        Name::from_str(&format!("1.0.0.0.6.9.{ORIGIN}")).unwrap(),
        RecordType::NAPTR,
    ));
    let valid = msg.to_vec().unwrap();
    let mut seed = 0x5eed_u64;
    let mut rand = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut buf = [0u8; 65535];
    let mut answered = 0;
    let mut sent_ids = std::collections::HashSet::new();
    for i in 0..3000 {
        let mut p = if i % 3 == 0 {
            (0..rand() % 600).map(|_| rand() as u8).collect::<Vec<u8>>()
        } else {
            let mut p = valid.clone();
            for _ in 0..1 + rand() % 4 {
                let at = rand() % p.len();
                p[at] = rand() as u8;
            }
            p
        };
        if i % 7 == 0 {
            p.truncate(rand() % (p.len() + 1));
        }
        sock.send_to(&p, ("127.0.0.1", server.dns)).unwrap();
        if p.len() >= 2 {
            sent_ids.insert([p[0], p[1]]);
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            answered += 1;
            // Whatever comes back is a well-formed response with the ID of a packet
            // sent: this one's, or an earlier one's that outlasted the short timeout
            // on a busy machine.
            assert!(
                n >= 12 && buf[2] & 0x80 != 0,
                "not a response: {:?}",
                &buf[..n]
            );
            assert!(
                sent_ids.contains(&[buf[0], buf[1]]),
                "an answer with an ID never sent: {:?}",
                &buf[..n]
            );
        }
    }
    assert!(
        answered > 100,
        "most mangled queries still get an answer: {answered}"
    );
    // Still answering properly over UDP and TCP.
    let r = common::dns_query(server.dns, &format!("1.0.0.0.6.9.{ORIGIN}"), 35).unwrap();
    assert_eq!(r.answers.len(), 1);
    assert_eq!(axfr(server.dns, ORIGIN).unwrap().len(), 7);
}

#[test]
fn zone_swaps_neither_drop_nor_stall_queries() {
    let server = Enroute::start(&zone(7, "alice"), "");
    let port = server.dns;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut msg = Message::query();
            msg.add_query(Query::query(
                Name::from_str(&format!("1.0.0.0.6.9.{ORIGIN}")).unwrap(),
                RecordType::NAPTR,
            ));
            let (mut asked, mut lost, mut slowest) = (0, 0, Duration::ZERO);
            let mut seen = std::collections::BTreeSet::new();
            let mut buf = [0u8; 1500];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                msg.metadata.id = msg.metadata.id.wrapping_add(1);
                let t = Instant::now();
                sock.send_to(&msg.to_vec().unwrap(), ("127.0.0.1", port))
                    .unwrap();
                asked += 1;
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        slowest = slowest.max(t.elapsed());
                        let r = Message::from_vec(&buf[..n]).unwrap();
                        assert_eq!(r.metadata.id, msg.metadata.id);
                        assert_eq!(r.answers.len(), 1, "every answer is a whole copy");
                        seen.insert(r.answers[0].data.to_string());
                    }
                    Err(_) => lost += 1,
                }
            }
            (asked, lost, slowest, seen)
        })
    };
    for serial in 8..14 {
        std::fs::write(
            server.dir.path().join("z.zone"),
            zone(serial, &format!("alice{serial}")),
        )
        .unwrap();
        server.sighup();
        server.wait_for("SIGHUP: reload done");
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (asked, lost, slowest, seen) = asker.join().unwrap();
    assert_eq!(
        lost, 0,
        "{lost} of {asked} queries went unanswered during reloads"
    );
    assert!(
        seen.len() >= 2,
        "the reloads were seen by the queries: {seen:?}"
    );
    assert!(
        slowest < Duration::from_millis(250),
        "a query stalled {slowest:?} during a swap"
    );
    eprintln!(
        "{asked} queries across 6 swaps, slowest {slowest:?}, {} copies seen",
        seen.len()
    );
}

#[test]
fn large_answers_are_truncated_over_udp_and_whole_over_tcp_and_any_is_minimal() {
    let mut text = zone(7, "alice");
    for i in 0..20 {
        text.push_str(&format!(
            "8.0.0.0.6.9 NAPTR 100 {i} \"u\" \"E2U+sip\" \"!^.*$!sip:user{i}@a-long-host-name-for-padding.example.net!\" .\n"
        ));
    }
    let server = Enroute::start(&text, "");
    let name = format!("8.0.0.0.6.9.{ORIGIN}");
    // No EDNS: 512 bytes at most, so TC and no partial RRset.
    let udp = common::dns_query(server.dns, &name, 35).unwrap();
    assert!(udp.metadata.truncation, "{udp:?}");
    assert!(udp.answers.is_empty());
    // The client's retry over TCP gets all 20.
    let tcp = common::dns_query_tcp(server.dns, &name, 35);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 20);
    // ANY: one RRset (RFC 8482), here the NAPTR set of a number.
    let any = common::dns_query(server.dns, &format!("1.0.0.0.6.9.{ORIGIN}"), 255).unwrap();
    assert_eq!(any.metadata.response_code, ResponseCode::NoError);
    assert!(any.metadata.authoritative);
    assert_eq!(any.answers.len(), 1);
    assert_eq!(any.answers[0].record_type(), RecordType::NAPTR);
}
