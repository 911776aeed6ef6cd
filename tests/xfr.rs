//! IXFR with real peers (SPEC §12): Knot as an IXFR secondary of enroute through every
//! kind of change (a number set and removed, a prefix route, an import, a zone replace,
//! a newer file on SIGHUP), `kdig` asking IXFR directly (the changes, one SOA, the whole
//! zone when the journal does not reach, UDP), the serial wrapping past 2^32-1, the
//! journal surviving a restart, a bounded journal, the transfer ACL; and enroute as an
//! IXFR secondary of Knot, of enroute, killed mid-transfer, and of a hostile primary.

mod common;

use common::{Enroute, Knot, free_port, record_lines, soa_serial, wait_serial, zone_lines};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;
use std::net::TcpStream;
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
         3.0.0.0.6.9 TXT \"kept\"\n"
    )
}

/// `kdig @127.0.0.1 -p PORT ORIGIN ARGS…` (5 s a try, one retry): its whole output.
fn kdig(port: u16, args: &[&str]) -> String {
    common::kdig(port, &[&[ORIGIN], args, &["+time=5", "+retry=1"]].concat())
}

/// Knot as a secondary of the enroute DNS server at 127.0.0.1:`primary`, accepting its
/// NOTIFY, keeping IXFR changes in its journal, allowing AXFR to the test.
fn knot_secondary(primary: u16) -> Knot {
    Knot::start_conf(
        &[],
        &format!(
            "remote:\n  - id: enroute\n    address: 127.0.0.1@{primary}\n\
             acl:\n  - id: local\n    address: 127.0.0.1\n    action: [notify, transfer]\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    master: enroute\n    acl: local\n\
             \x20   file: \"{{dir}}/secondary.db\"\n"
        ),
        &[],
    )
}

/// An enroute primary serving `text` on DNS port `dns`, NOTIFYing 127.0.0.1:`notify`.
fn primary(text: &str, dns: u16, notify: u16) -> Enroute {
    Enroute::start(
        text,
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{dns}\", \"tcp:127.0.0.1:{dns}\"]\nnotify = [\"127.0.0.1:{notify}\"]\n"
        ),
    )
}

/// Knot has the zone (its first transfer, asked at once rather than at its refresh).
fn first_transfer(knot: &mut Knot) {
    knot.knotc(&["zone-refresh", ORIGIN]);
    assert!(
        knot.wait_soa(&[ORIGIN], Duration::from_secs(20)),
        "Knot did not transfer from enroute; log:\n{}",
        knot.log()
    );
}

/// Knot reaches our serial, has received it by IXFR (one more IXFR in its log, no
/// more AXFR), and its copy equals ours.
fn knot_follows_by_ixfr(knot: &Knot, ours: u16, what: &str, ixfrs_before: usize) {
    let want = soa_serial(ours, ORIGIN).unwrap();
    assert!(
        wait_serial(knot.port, ORIGIN, want, Duration::from_secs(15)),
        "{what}: Knot did not reach serial {want}; log:\n{}",
        knot.log()
    );
    // Knot may log the transfer just after it serves the new copy.
    let deadline = Instant::now() + Duration::from_secs(5);
    while count_ixfr_in(&knot.log()) <= ixfrs_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = knot.log();
    assert_eq!(
        count_ixfr_in(&log),
        ixfrs_before + 1,
        "{what}: Knot did not take it by IXFR; log:\n{log}"
    );
    assert_eq!(
        count_axfr_in(&log),
        1,
        "{what}: Knot fell back to AXFR; log:\n{log}"
    );
    assert_eq!(
        zone_lines(knot.port, ORIGIN),
        zone_lines(ours, ORIGIN),
        "{what}: copies differ"
    );
}

/// Incoming IXFRs Knot finished, by its log.
fn count_ixfr_in(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("IXFR, incoming") && l.contains("finished"))
        .count()
}

/// Incoming AXFRs Knot finished, by its log.
fn count_axfr_in(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("AXFR, incoming") && l.contains("finished"))
        .count()
}

/// `PUT /v1/zones/{ORIGIN}` with master-file text.
fn replace_zone(server: &Enroute, text: &str) {
    let r = server.put_zone(ORIGIN, text);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `GET /v1/zones/{ORIGIN}`: the zone as served, as a master file.
fn export(server: &Enroute) -> String {
    let r = server.api("GET", &format!("/v1/zones/{ORIGIN}"), "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// Master-file `text` with its SOA serial set to `serial` (the SOA on one line, as
/// [`zone`] and the export write it).
fn with_serial(text: &str, serial: u32) -> String {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.iter().position(|w| *w == "SOA") {
                Some(i) if f.len() == i + 8 => {
                    let mut f = f.clone();
                    let s = serial.to_string();
                    f[i + 3] = &s;
                    f.join(" ")
                }
                _ => l.to_string(),
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// An import (CSV) of `n` numbers from +4416329701 00 on.
fn import(server: &Enroute, n: usize, host: &str) {
    let mut csv = String::from("number,uri\n");
    for i in 0..n {
        csv.push_str(&format!("+4416329701{i:02},sip:n{i}@{host}\n"));
    }
    let r = server.api("POST", "/v1/numbers:import", "text/csv", csv.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn knot_follows_every_kind_of_change_by_ixfr() {
    let ours = free_port();
    let mut knot = knot_secondary(ours);
    let server = primary(&zone(7, "alice"), ours, knot.port);
    first_transfer(&mut knot);
    type Step<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let steps: Vec<Step> = vec![
        (
            "PUT a number",
            Box::new(|| {
                let r = server.put_number(
                    "+441632960005",
                    r#"{"routes":[{"uri":"sip:new@pbx.example.net"}]}"#,
                );
                assert_eq!(r.status, 200, "{}", r.text());
            }),
        ),
        (
            "DELETE a number",
            Box::new(|| {
                let r = server.api("DELETE", "/v1/numbers/+441632960001", "", b"");
                assert_eq!(r.status, 204, "{}", r.text());
            }),
        ),
        (
            "PUT a prefix route",
            Box::new(|| {
                let r = server.put_prefix(
                    "+4416329",
                    r#"{"routes":[{"uri":"sip:range@pbx.example.net"}]}"#,
                );
                assert_eq!(r.status, 200, "{}", r.text());
            }),
        ),
        (
            "import 50 numbers",
            Box::new(|| import(&server, 50, "pbx.example.net")),
        ),
        (
            "replace the zone with an edited export",
            Box::new(|| {
                let text = export(&server).replace("sip:n7@", "sip:seven@");
                replace_zone(&server, &text);
            }),
        ),
        (
            "SIGHUP with a newer zone file",
            Box::new(|| {
                let text = with_serial(&export(&server), 1000).replace("sip:n8@", "sip:eight@");
                std::fs::write(server.dir.path().join("z.zone"), text).unwrap();
                server.sighup();
                server.wait_for("zone reloaded");
            }),
        ),
    ];
    let mut last = soa_serial(ours, ORIGIN).unwrap();
    for (what, change) in steps {
        let before = count_ixfr_in(&knot.log());
        change();
        let now = soa_serial(ours, ORIGIN).unwrap();
        assert!(now > last, "{what}: serial {last} -> {now}");
        last = now;
        knot_follows_by_ixfr(&knot, ours, what, before);
    }
    assert_eq!(last, 1000);
    // The copies agree on what the changes did, not only with each other.
    let lines = zone_lines(knot.port, ORIGIN);
    for seen in [
        "sip:seven@",
        "sip:eight@",
        "sip:new@",
        "sip:n49@",
        "sip:range@",
    ] {
        assert!(lines.iter().any(|l| l.contains(seen)), "{seen}: {lines:#?}");
    }
    for gone in ["sip:n7@", "sip:n8@", "sip:alice@"] {
        assert!(
            !lines.iter().any(|l| l.contains(gone)),
            "{gone}: {lines:#?}"
        );
    }
}

/// The SOA record line of our zone at `serial`, as kdig prints it (spaces single).
fn soa_line(serial: u32) -> String {
    format!("{ORIGIN} 300 IN SOA ns1.example.net. hostmaster.example.net. {serial} 2 1 600 60")
}

/// The NAPTR record line of the number whose ENUM name starts with `digits` (reversed,
/// dotted, below the zone) routing to `sip:USER@pbx.example.net`.
fn naptr_line(digits: &str, user: &str) -> String {
    format!(
        "{digits}.{ORIGIN} 300 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:{user}@pbx.example.net!\" ."
    )
}

/// Whether kdig's output says the answer came over `transport` (UDP or TCP) in one
/// message.
fn one_message_over(out: &str, transport: &str) -> bool {
    out.contains(&format!("({transport})")) && out.contains("(1 messages")
}

#[test]
fn kdig_gets_the_changes_one_soa_or_the_whole_zone() {
    let mut server = Enroute::start(&zone(7, "alice"), "");
    let port = server.dns;
    let r = server.put_number(
        "+441632960005",
        r#"{"routes":[{"uri":"sip:new@pbx.example.net"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.api("DELETE", "/v1/numbers/+441632960001", "", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(soa_serial(port, ORIGIN), Some(9));

    // From 7 over TCP: exactly what changed, between the SOAs (RFC 1995 §4), condensed
    // into one difference.
    let out = kdig(port, &["IXFR=7"]);
    assert_eq!(
        record_lines(&out),
        [
            soa_line(9),
            soa_line(7),
            naptr_line("1.0.0.0.6.9", "alice"),
            soa_line(9),
            naptr_line("5.0.0.0.6.9", "new"),
            soa_line(9),
        ],
        "{out}"
    );
    assert!(one_message_over(&out, "TCP"), "{out}");
    server.wait_for("IXFR out sent: the changes");
    let ixfr_ok = "enroute_xfr_out_total{type=\"ixfr\",result=\"ok\"}";
    assert_eq!(server.metric(ixfr_ok), 1.0);
    let received: f64 = out
        .split(";; Received ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no size in {out}"));
    let sent = server.metric("enroute_xfr_out_bytes_total{type=\"ixfr\"}");
    assert!(
        sent >= received,
        "{sent} bytes counted, kdig received {received}"
    );

    // A client as new as we are: our SOA alone, over TCP and UDP.
    for transport in ["+tcp", "+notcp"] {
        let out = kdig(port, &["IXFR=9", transport]);
        assert_eq!(record_lines(&out), [soa_line(9)], "{transport}: {out}");
    }

    // A small change fits in one datagram (no EDNS: 512 bytes).
    let out = kdig(port, &["IXFR=8", "+notcp", "+ignore"]);
    assert_eq!(
        record_lines(&out),
        [
            soa_line(9),
            soa_line(8),
            naptr_line("1.0.0.0.6.9", "alice"),
            soa_line(9),
            soa_line(9),
        ],
        "{out}"
    );
    assert!(one_message_over(&out, "UDP"), "{out}");

    // A change too large for a datagram: one SOA over UDP (ask again over TCP), and
    // the changes over TCP.
    import(&server, 30, "pbx.example.net");
    let out = kdig(port, &["IXFR=9", "+notcp", "+ignore"]);
    assert_eq!(record_lines(&out), [soa_line(10)], "{out}");
    assert!(one_message_over(&out, "UDP"), "{out}");
    let lines = record_lines(&kdig(port, &["IXFR=9"]));
    assert_eq!(lines.len(), 4 + 30, "{lines:#?}");
    assert_eq!(
        [&lines[0], &lines[1], &lines[2], &lines[33]],
        [&soa_line(10), &soa_line(9), &soa_line(10), &soa_line(10)]
    );
    assert!(
        lines.contains(&naptr_line("9.2.1.0.7.9", "n29")),
        "{lines:#?}"
    );
    let journaled = format!("enroute_zone_journal_changes{{zone=\"{ORIGIN}\"}}");
    assert_eq!(server.metric(&journaled), 3.0);

    // A newer file at start replaces the store's copy, its difference journaled like
    // any change; but it holds more records than the zone now does, so a client at 9
    // gets the whole zone, the smaller answer.
    std::fs::write(server.dir.path().join("z.zone"), zone(50, "fifty")).unwrap();
    server.restart();
    assert_eq!(server.metric(&journaled), 4.0);
    let whole = |serial| {
        let out = kdig(port, &[&format!("IXFR={serial}")]);
        let mut lines = record_lines(&out);
        assert_eq!(lines.first(), Some(&soa_line(50)), "{out}");
        assert_eq!(lines.last(), Some(&soa_line(50)), "{out}");
        lines.pop();
        lines.sort();
        lines
    };
    let mut axfr = record_lines(&kdig(port, &["AXFR"]));
    axfr.pop();
    axfr.sort();
    assert_eq!(axfr.len(), 5, "{axfr:#?}");
    assert_eq!(whole(9), axfr);
    server.wait_for("IXFR out sent: the whole zone");
    // The whole zone counts as the form sent: axfr.
    let axfrs = server.metric("enroute_xfr_out_total{type=\"axfr\",result=\"ok\"}");
    assert_eq!(axfrs, 2.0);
    // An older serial we never had is no different; a client claiming a newer one
    // (RFC 1982) is told our SOA alone.
    assert_eq!(whole(3), axfr);
    let out = kdig(port, &["IXFR=123456"]);
    assert_eq!(record_lines(&out), [soa_line(50)], "{out}");
}

#[test]
fn the_serial_wraps_past_2_32_and_knot_follows() {
    let ours = free_port();
    let mut knot = knot_secondary(ours);
    let server = primary(&zone(u32::MAX, "alice"), ours, knot.port);
    first_transfer(&mut knot);
    assert_eq!(soa_serial(knot.port, ORIGIN), Some(u32::MAX));
    for (user, want) in [("zero", 0), ("one", 1)] {
        let before = count_ixfr_in(&knot.log());
        let r = server.put_number(
            "+441632960001",
            &format!(r#"{{"routes":[{{"uri":"sip:{user}@pbx.example.net"}}]}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        // RFC 1982: one past 2^32-1 is 0, and 0 is newer.
        assert_eq!(soa_serial(ours, ORIGIN), Some(want));
        knot_follows_by_ixfr(&knot, ours, &format!("serial {want}"), before);
    }
    let out = kdig(ours, &[&format!("IXFR={}", u32::MAX)]);
    let lines = record_lines(&out);
    assert_eq!(lines[..2], [soa_line(1), soa_line(u32::MAX)], "{out}");
}

#[test]
fn the_journal_survives_a_primary_restart() {
    let ours = free_port();
    let mut knot = knot_secondary(ours);
    let mut server = primary(&zone(7, "alice"), ours, knot.port);
    first_transfer(&mut knot);
    let put = |server: &Enroute, user: &str| {
        let r = server.put_number(
            "+441632960001",
            &format!(r#"{{"routes":[{{"uri":"sip:{user}@pbx.example.net"}}]}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let before = count_ixfr_in(&knot.log());
    put(&server, "eight");
    knot_follows_by_ixfr(&knot, ours, "serial 8", before);

    // Knot holds its refreshes while enroute changes (9), restarts, changes again (10):
    // it then asks from 8, which only the journal kept on disk can answer.
    let frozen = knot.knotc(&["-b", "zone-freeze", ORIGIN]);
    assert!(frozen.trim_end().ends_with("OK"), "{frozen}");
    put(&server, "nine");
    server.restart();
    let journaled = format!("enroute_zone_journal_changes{{zone=\"{ORIGIN}\"}}");
    assert_eq!(server.metric(&journaled), 2.0);
    put(&server, "ten");
    assert_eq!(soa_serial(ours, ORIGIN), Some(10));
    assert_eq!(soa_serial(knot.port, ORIGIN), Some(8));
    let before = count_ixfr_in(&knot.log());
    knot.knotc(&["-b", "zone-thaw", ORIGIN]);
    knot.knotc(&["zone-refresh", ORIGIN]);
    knot_follows_by_ixfr(&knot, ours, "serial 10 after the restart", before);
    server.wait_for("IXFR out sent: the changes zone=2.3.6.1.4.4.e164.arpa. from=8 serial=10");
}

#[test]
fn ixfr_from_outside_allow_transfer_is_refused_and_counted() {
    let port = free_port();
    let server = Enroute::start(
        &zone(7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\nallow_transfer = [\"10.0.0.0/8\"]\n"
        ),
    );
    let r = server.put_number(
        "+441632960005",
        r#"{"routes":[{"uri":"sip:new@pbx.example.net"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for transport in ["+tcp", "+notcp"] {
        let out = kdig(port, &["IXFR=7", transport]);
        assert!(
            out.contains("server replied with error 'REFUSED'"),
            "{transport}: {out}"
        );
        assert!(record_lines(&out).is_empty(), "{transport}: {out}");
    }
    let refused = "enroute_xfr_out_total{type=\"ixfr\",result=\"refused\"}";
    assert_eq!(server.metric(refused), 2.0);
    assert_eq!(
        server.metric("enroute_xfr_out_total{type=\"ixfr\",result=\"ok\"}"),
        0.0
    );
    // The zone itself is still served to that client.
    assert_eq!(soa_serial(port, ORIGIN), Some(8));
}

/// `server` (a secondary on DNS port `port`) logs that it serves a copy taken by IXFR,
/// and serves `serial` (lines for earlier transfers are passed over).
fn served_by_ixfr_in(server: &Enroute, port: u16, serial_wanted: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        server.wait_for_all(&["IXFR in: serving the new copy"]);
        if soa_serial(port, ORIGIN) == Some(serial_wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "serial {serial_wanted} not served by IXFR in 20 s"
        );
    }
}

/// An enroute secondary of `ORIGIN` from the primary at 127.0.0.1:`primary`, on DNS
/// port `dns`.
fn secondary(dns: u16, primary: u16) -> Enroute {
    Enroute::start(
        "",
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{dns}\", \"tcp:127.0.0.1:{dns}\"]\n\
             [store]\npath = \"data/enroute.db\"\n\
             [[zone]]\norigin = \"{ORIGIN}\"\nprimary = \"127.0.0.1:{primary}\"\n"
        ),
    )
}

/// An enroute primary serving `zone(7, "alice")` and an enroute secondary of it that
/// has made its first transfer: (primary, secondary, their DNS ports).
fn primary_and_secondary() -> (Enroute, Enroute, u16, u16) {
    let (p_dns, s_dns) = (free_port(), free_port());
    let primary = primary(&zone(7, "alice"), p_dns, s_dns);
    let second = secondary(s_dns, p_dns);
    assert!(
        wait_serial(s_dns, ORIGIN, 7, Duration::from_secs(10)),
        "no first transfer"
    );
    (primary, second, p_dns, s_dns)
}

/// The answer records (as strings) for `name`/`qtype` at 127.0.0.1:`port`.
fn answers(port: u16, name: &str, qtype: u16) -> Vec<String> {
    let r = common::dns_query(port, name, qtype).expect("an answer");
    r.answers.iter().map(|r| r.to_string()).collect()
}

#[test]
fn enroute_follows_knot_by_ixfr() {
    let ours = free_port();
    // Knot computes the difference between the old and new file on reload and keeps
    // it, so it answers IXFR.
    let knot = Knot::start_conf(
        &[("primary.db", &zone(7, "alice"))],
        &format!(
            "remote:\n  - id: enroute\n    address: 127.0.0.1@{ours}\n\
             acl:\n  - id: to_enroute\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    file: \"{{dir}}/primary.db\"\n    notify: enroute\n    acl: to_enroute\n\
             \x20   zonefile-load: difference\n    journal-content: changes\n"
        ),
        &[ORIGIN],
    );
    // Knot opens its journal on the first change, inside `database.storage`, which the
    // common configuration names but does not create.
    std::fs::create_dir_all(knot.dir.path().join("db")).unwrap();
    let server = secondary(ours, knot.port);
    assert!(
        wait_serial(ours, ORIGIN, 7, Duration::from_secs(10)),
        "no first transfer"
    );
    let alice = format!("1.0.0.0.6.9.{ORIGIN}");
    knot.replace_zone_file("primary.db", ORIGIN, &zone(9, "alice9"));
    // Knot does answer IXFR from 7 (the test's premise).
    let out = kdig(knot.port, &["IXFR=7"]);
    assert_eq!(record_lines(&out).get(1), Some(&soa_line(7)), "{out}");
    served_by_ixfr_in(&server, ours, 9);
    assert!(answers(ours, &alice, 35)[0].contains("sip:alice9@"));
    assert_eq!(zone_lines(ours, ORIGIN), zone_lines(knot.port, ORIGIN));
    let ok = "enroute_xfr_in_total{type=\"ixfr\",result=\"ok\"}";
    assert!(server.metric(ok) >= 1.0);
}

#[test]
fn enroute_follows_enroute_by_ixfr_and_keeps_the_copy_across_restarts() {
    let (primary, mut second, p_dns, s_dns) = primary_and_secondary();
    let put = |user: &str| {
        let r = primary.put_number(
            "+441632960001",
            &format!(r#"{{"routes":[{{"uri":"sip:{user}@pbx.example.net"}}]}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    put("eight");
    served_by_ixfr_in(&second, s_dns, 8);
    // Each side's zone list names the last transfer, its form and the other end.
    let last = |server: &Enroute, way: &str| {
        let zones = server.api("GET", "/v1/zones", "", b"").json();
        let zone = zones["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["origin"] == ORIGIN)
            .cloned()
            .unwrap();
        zone[format!("last_transfer_{way}")].clone()
    };
    let got = last(&second, "in");
    assert_eq!(
        (&got["type"], &got["result"], &got["serial"]),
        (&json!("ixfr"), &json!("ok"), &json!(8)),
        "{got}"
    );
    assert_eq!(got["peer"], json!(format!("127.0.0.1:{p_dns}")));
    assert!(got["at"].as_str().unwrap().ends_with('Z'), "{got}");
    assert_eq!(last(&second, "out"), serde_json::Value::Null);
    // The primary notes it once the last message is written, maybe after the secondary
    // has read it.
    common::eventually(Duration::from_secs(5), || !last(&primary, "out").is_null());
    let sent = last(&primary, "out");
    assert_eq!(
        (&sent["type"], &sent["serial"]),
        (&json!("ixfr"), &json!(8)),
        "{sent}"
    );
    assert!(sent["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(last(&primary, "in"), serde_json::Value::Null);

    assert_eq!(zone_lines(s_dns, ORIGIN), zone_lines(p_dns, ORIGIN));
    let ok = "enroute_xfr_in_total{type=\"ixfr\",result=\"ok\"}";
    assert!(second.metric(ok) >= 1.0);
    // Restarted, the secondary serves its kept copy at once and goes on by IXFR from it.
    second.restart();
    assert_eq!(soa_serial(s_dns, ORIGIN), Some(8));
    put("nine");
    served_by_ixfr_in(&second, s_dns, 9);
    let nine = zone_lines(p_dns, ORIGIN);
    assert_eq!(zone_lines(s_dns, ORIGIN), nine);

    // With the primary gone, the copy kept on disk (the last full copy plus the
    // differences applied since) is still the latest.
    drop(primary);
    second.restart();
    assert_eq!(soa_serial(s_dns, ORIGIN), Some(9));
    assert_eq!(zone_lines(s_dns, ORIGIN), nine);
}

#[test]
fn a_secondary_killed_during_transfers_ends_equal_to_its_primary() {
    let (primary, mut second, p_dns, s_dns) = primary_and_secondary();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (admin, auth) = (primary.admin, format!("Bearer {}", primary.token()));
    std::thread::scope(|s| {
        // 200 changes, each NOTIFYing the secondary, which transfers while more come.
        s.spawn(|| {
            let headers = [
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ];
            for i in 0..200 {
                let path = format!("/v1/numbers/+441632961{i:03}");
                let body = br#"{"routes":[{"uri":"sip:burst@pbx.example.net"}]}"#;
                let r = common::http(admin, "PUT", &path, &headers, body);
                assert_eq!(r.status, 200, "{}", r.text());
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // SIGKILL it in the middle of the burst, right after a change, and start it again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while soa_serial(p_dns, ORIGIN).is_none_or(|s| s < 7 + 100) {
            assert!(Instant::now() < deadline, "the burst stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        second.restart();
    });
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    let last = soa_serial(p_dns, ORIGIN).unwrap();
    assert_eq!(last, 7 + 200);
    assert!(
        wait_serial(s_dns, ORIGIN, last, Duration::from_secs(20)),
        "the secondary did not catch up: {:?} of {last}",
        soa_serial(s_dns, ORIGIN)
    );
    assert_eq!(zone_lines(s_dns, ORIGIN), zone_lines(p_dns, ORIGIN));
}

/// What a hostile primary answers to IXFR.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// The message's length prefix promises more than is sent before the close.
    Truncated,
    /// The difference's SOAs swapped: the removals start at the new serial.
    SoasOutOfOrder,
    /// Removes a record the secondary does not have.
    RemovesAbsent,
    /// Announces serial 8 and ends at 9.
    WrongEndSerial,
}

/// A fake primary on a free loopback port: SOA over UDP with the serial in `serial`, the
/// zone at 7 by AXFR while `serial` is 7 (refused after), and a `hostile` IXFR answer.
struct FakePrimary {
    port: u16,
    serial: std::sync::Arc<std::sync::atomic::AtomicU32>,
    ixfr_asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _dns: common::FakeDns,
}

fn hname(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn soa_record(serial: u32) -> Record {
    use hickory_proto::rr::rdata::SOA;
    let soa = SOA::new(
        hname("ns1.example.net."),
        hname("hostmaster.example.net."),
        serial,
        2,
        1,
        600,
        60,
    );
    Record::from_rdata(hname(ORIGIN), 300, RData::SOA(soa))
}

fn txt_record(label: &str, text: &str) -> Record {
    use hickory_proto::rr::rdata::TXT;
    let rdata = RData::TXT(TXT::new(vec![text.to_string()]));
    Record::from_rdata(hname(&format!("{label}.{ORIGIN}")), 300, rdata)
}

/// The fake's zone at serial 7, in AXFR order.
fn fake_zone() -> Vec<Record> {
    use hickory_proto::rr::rdata::NS;
    vec![
        soa_record(7),
        Record::from_rdata(hname(ORIGIN), 300, RData::NS(NS(hname("ns1.example.net.")))),
        txt_record("3.0.0.0.6.9", "kept"),
        soa_record(7),
    ]
}

impl Hostile {
    fn records(self) -> Vec<Record> {
        let (kept, new) = (
            txt_record("3.0.0.0.6.9", "kept"),
            txt_record("4.0.0.0.6.9", "new"),
        );
        match self {
            Hostile::Truncated | Hostile::RemovesAbsent => vec![
                soa_record(8),
                soa_record(7),
                txt_record("5.0.0.0.6.9", "absent"),
                soa_record(8),
                new,
                soa_record(8),
            ],
            Hostile::SoasOutOfOrder => vec![
                soa_record(8),
                soa_record(8),
                kept,
                soa_record(7),
                new,
                soa_record(8),
            ],
            Hostile::WrongEndSerial => vec![
                soa_record(8),
                soa_record(7),
                kept,
                soa_record(9),
                new,
                soa_record(9),
            ],
        }
    }
}

impl FakePrimary {
    fn start(hostile: Hostile) -> FakePrimary {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, AtomicUsize};
        let serial = Arc::new(AtomicU32::new(7));
        let ixfr_asked = Arc::new(AtomicUsize::new(0));
        let on_udp = serial.clone();
        let (on_tcp, asked) = (serial.clone(), ixfr_asked.clone());
        let dns = common::FakeDns::start(
            move |query| fake_udp(query, &on_udp),
            move |conn| fake_tcp(conn, hostile, &on_tcp, &asked),
        );
        FakePrimary {
            port: dns.port,
            serial,
            ixfr_asked,
            _dns: dns,
        }
    }
}

/// A response to `query` carrying `answers` (authoritative).
fn fake_answer(query: &Message, answers: Vec<Record>, rcode: ResponseCode) -> Message {
    let mut resp = Message::response(query.metadata.id, query.metadata.op_code);
    resp.metadata.authoritative = true;
    resp.metadata.response_code = rcode;
    resp.add_queries(query.queries.clone());
    resp.add_answers(answers);
    resp
}

/// The answer to a datagram: SOA queries get the current serial, anything else an
/// empty acknowledgement.
fn fake_udp(query: &[u8], serial: &std::sync::atomic::AtomicU32) -> Option<Vec<u8>> {
    use std::sync::atomic::Ordering;
    let query = Message::from_vec(query).ok()?;
    let soa = query.queries.first().map(|q| q.query_type()) == Some(RecordType::SOA);
    let answers = if soa {
        vec![soa_record(serial.load(Ordering::SeqCst))]
    } else {
        vec![]
    };
    fake_answer(&query, answers, ResponseCode::NoError)
        .to_vec()
        .ok()
}

/// Serves one transfer request per connection: AXFR of the zone at 7 while the serial
/// is 7 (REFUSED after), IXFR the hostile way.
fn fake_tcp(
    conn: &mut TcpStream,
    hostile: Hostile,
    serial: &std::sync::atomic::AtomicU32,
    ixfr_asked: &std::sync::atomic::AtomicUsize,
) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let Some(query) = common::read_raw(conn).and_then(|q| Message::from_vec(&q).ok()) else {
        return;
    };
    let qtype = query.queries.first().map(|q| q.query_type());
    let (answers, rcode) = match qtype {
        Some(RecordType::AXFR) if serial.load(Ordering::SeqCst) == 7 => {
            (fake_zone(), ResponseCode::NoError)
        }
        Some(RecordType::IXFR) => {
            ixfr_asked.fetch_add(1, Ordering::SeqCst);
            (hostile.records(), ResponseCode::NoError)
        }
        Some(RecordType::SOA) => (
            vec![soa_record(serial.load(Ordering::SeqCst))],
            ResponseCode::NoError,
        ),
        _ => (vec![], ResponseCode::Refused),
    };
    let wire = fake_answer(&query, answers, rcode).to_vec().unwrap();
    let _ = conn.write_all(&(wire.len() as u16).to_be_bytes());
    let sent = match (hostile, qtype) {
        // Half the message, then the connection closes.
        (Hostile::Truncated, Some(RecordType::IXFR)) => &wire[..wire.len() / 2],
        _ => &wire[..],
    };
    let _ = conn.write_all(sent);
}

#[test]
fn hostile_ixfr_leaves_the_secondary_serving_its_old_copy() {
    for hostile in [
        Hostile::Truncated,
        Hostile::SoasOutOfOrder,
        Hostile::RemovesAbsent,
        Hostile::WrongEndSerial,
    ] {
        let fake = FakePrimary::start(hostile);
        let dns = free_port();
        let mut server = secondary(dns, fake.port);
        assert!(
            wait_serial(dns, ORIGIN, 7, Duration::from_secs(10)),
            "{hostile:?}: no first copy"
        );
        let kept = format!("3.0.0.0.6.9.{ORIGIN}");
        let before = (zone_lines(dns, ORIGIN), answers(dns, &kept, 16));
        fake.serial.store(8, std::sync::atomic::Ordering::SeqCst);
        notify(dns);
        eprintln!("{hostile:?}: the primary announced serial 8");
        server.wait_for_all(&["WARN", ORIGIN]);
        assert!(
            fake.ixfr_asked.load(std::sync::atomic::Ordering::SeqCst) >= 1,
            "{hostile:?}: the secondary did not ask IXFR"
        );
        assert_eq!(soa_serial(dns, ORIGIN), Some(7), "{hostile:?}");
        assert_eq!(
            (zone_lines(dns, ORIGIN), answers(dns, &kept, 16)),
            before,
            "{hostile:?}"
        );
        assert!(
            answers(dns, &format!("4.0.0.0.6.9.{ORIGIN}"), 16).is_empty(),
            "{hostile:?}: part of the bad difference is served"
        );
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "{hostile:?}: the secondary exited"
        );
    }
}

/// A NOTIFY for `ORIGIN` to 127.0.0.1:`port` from 127.0.0.1 (the primary's address),
/// answered NOERROR.
fn notify(port: u16) {
    let answered = common::send_notify(port, ORIGIN);
    assert_eq!(answered, Some(ResponseCode::NoError), "NOTIFY answered");
}

#[test]
fn a_client_older_than_a_bounded_journal_gets_the_whole_zone() {
    let port = free_port();
    let server = Enroute::start(
        &zone(7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\njournal_max_changes = 2\n"
        ),
    );
    for user in ["u8", "u9", "u10", "u11"] {
        let r = server.put_number(
            "+441632960001",
            &format!(r#"{{"routes":[{{"uri":"sip:{user}@pbx.example.net"}}]}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(soa_serial(port, ORIGIN), Some(11));
    let journaled = format!("enroute_zone_journal_changes{{zone=\"{ORIGIN}\"}}");
    assert_eq!(server.metric(&journaled), 2.0);
    // The journal keeps 9→10 and 10→11: a client at 9 gets the changes…
    let out = kdig(port, &["IXFR=9"]);
    assert_eq!(
        record_lines(&out),
        [
            soa_line(11),
            soa_line(9),
            naptr_line("1.0.0.0.6.9", "u9"),
            soa_line(11),
            naptr_line("1.0.0.0.6.9", "u11"),
            soa_line(11),
        ],
        "{out}"
    );
    // …and one at 8 the whole zone (SOA, NS, two NAPTR, TXT, SOA).
    let out = kdig(port, &["IXFR=8"]);
    let lines = record_lines(&out);
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(
        [&lines[0], &lines[5]],
        [&soa_line(11), &soa_line(11)],
        "{out}"
    );
    assert!(lines.contains(&naptr_line("1.0.0.0.6.9", "u11")), "{out}");
    server.wait_for("IXFR out sent: the whole zone");
}

/// A primary that sends each record of a transfer in a message of its own (RFC 5936
/// §2.2 allows it; BIND does it with `transfer-format one-answer`): the AXFR and a
/// later IXFR both land.
#[test]
fn a_primary_sending_one_record_per_message_is_followed() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let serial = Arc::new(AtomicU32::new(7));
    let (on_udp, on_tcp) = (serial.clone(), serial.clone());
    let fake = common::FakeDns::start(
        move |query| fake_udp(query, &on_udp),
        move |conn| {
            let Some(query) = common::read_raw(conn).and_then(|q| Message::from_vec(&q).ok())
            else {
                return;
            };
            let records = match query.queries.first().map(|q| q.query_type()) {
                Some(RecordType::AXFR) if on_tcp.load(Ordering::SeqCst) == 7 => fake_zone(),
                // From 7 to 8: nothing removed, one TXT added.
                Some(RecordType::IXFR) => vec![
                    soa_record(8),
                    soa_record(7),
                    soa_record(8),
                    txt_record("4.0.0.0.6.9", "new"),
                    soa_record(8),
                ],
                _ => return,
            };
            for r in records {
                let wire = fake_answer(&query, vec![r], ResponseCode::NoError)
                    .to_vec()
                    .unwrap();
                let _ = conn.write_all(&(wire.len() as u16).to_be_bytes());
                let _ = conn.write_all(&wire);
            }
        },
    );
    let dns = free_port();
    let server = secondary(dns, fake.port);
    assert!(
        wait_serial(dns, ORIGIN, 7, Duration::from_secs(10)),
        "the AXFR in one-record messages did not land"
    );
    serial.store(8, Ordering::SeqCst);
    notify(dns);
    server.wait_for("IXFR in: serving the new copy");
    assert_eq!(serial_now(dns), Some(8));
    assert_eq!(answers(dns, &format!("4.0.0.0.6.9.{ORIGIN}"), 16).len(), 1);
    assert_eq!(answers(dns, &format!("3.0.0.0.6.9.{ORIGIN}"), 16).len(), 1);
}

fn serial_now(port: u16) -> Option<u32> {
    common::soa_serial(port, ORIGIN)
}
