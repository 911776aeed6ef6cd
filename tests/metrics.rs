//! `/metrics` as Prometheus reads it (SPEC §8): after SIP (UDP and TCP), DNS, upstream
//! ENUM (a real Knot DNS) and admin traffic, the exposition is read by the Prometheus
//! project's own Python parser (`prometheus_client`, installed by `scripts/test`) and
//! linted by `promtool check metrics`; names, types, label values and counts must be
//! what a dashboard would show. Also: `metrics.enabled = false`, logs (JSON lines,
//! per-request lines at debug only, repeated errors rate-limited).

mod common;

use common::{Families, parse_exposition};

use std::io::{Read, Write};
use std::time::Duration;

const ZONE: &str = "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n\
    @ SOA ns.example. h.example. 1 3600 900 604800 60\n@ NS ns.example.\n\
    1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x.example!\" .\n\
    1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+h323\" \"!^.*$!h323:a@x.example!\" .\n";

/// The value of the sample `name` whose labels include `labels` (summed over the rest).
fn value(families: &Families, family: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (_, samples) = families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
        .sum()
}

fn scrape(server: &common::Enroute) -> String {
    let r = common::http(server.admin, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    r.text()
}

fn sip_over_tcp(port: u16, msg: &str) -> String {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(msg.as_bytes()).unwrap();
    let mut buf = vec![0u8; 8192];
    let n = conn.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn metrics_follow_sip_dns_upstream_and_admin_traffic() {
    let upstream_zone = "$ORIGIN e164.test.\n$TTL 60\n@ SOA ns h 1 3600 900 604800 2\n@ NS ns\nns A 127.0.0.1\n\
        2.0.0.0.6.9.2.3.6.1.4.4 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:far@b.example!\" .\n";
    let knot = common::Knot::start(&[("e164.test.", upstream_zone)]);
    let server = common::Enroute::start(
        ZONE,
        &format!(
            "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_ms = 2000\n\n\
             [[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{{e164}}@gw.example\"]\n",
            knot.port
        ),
    );
    let zone = "2.3.6.1.4.4.e164.arpa.";

    // Before any traffic: every SPEC §8 family is there, with its type.
    let before = parse_exposition(&scrape(&server));
    for (name, kind) in [
        ("enroute_sip_requests", "counter"),
        ("enroute_sip_responses", "counter"),
        ("enroute_sip_retransmissions", "counter"),
        ("enroute_sip_dropped", "counter"),
        ("enroute_route_decisions", "counter"),
        ("enroute_route_duration_seconds", "histogram"),
        ("enroute_ddds_skipped", "counter"),
        ("enroute_cache_hits", "counter"),
        ("enroute_cache_misses", "counter"),
        ("enroute_cache_entries", "gauge"),
        ("enroute_transactions_active", "gauge"),
        ("enroute_zone_records", "gauge"),
        ("enroute_zone_serial", "gauge"),
        ("enroute_dns_queries", "counter"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
    ] {
        // prometheus_client names a counter family without its `_total`.
        let got = before.get(name).map(|(t, _)| t.as_str());
        assert_eq!(got, Some(kind), "{name}: {:?}", before.keys());
    }
    assert_eq!(
        value(
            &before,
            "enroute_zone_records",
            "enroute_zone_records",
            &[("zone", zone)]
        ),
        4.0
    );
    assert_eq!(
        value(
            &before,
            "enroute_zone_serial",
            "enroute_zone_serial",
            &[("zone", zone)]
        ),
        1.0
    );

    // SIP: a local number over UDP twice (the second a retransmission), TCP once, a
    // gateway number, an upstream number twice (a cache miss, then a hit), OPTIONS,
    // and a datagram of garbage.
    let client = common::SipUdp::new(server.sip_udp, Duration::from_secs(5));
    let local = common::invite("+441632960001", "m1", client.port());
    assert_eq!(common::sip_status(&client.ask(&local)), 302);
    assert_eq!(common::sip_status(&client.ask(&local)), 302);
    let tcp = common::invite("+441632960001", "m2", 5060).replace("/UDP", "/TCP");
    assert_eq!(common::sip_status(&sip_over_tcp(server.sip_tcp, &tcp)), 302);
    // Not in the local zone: asked upstream (100 Trying first), then final answers.
    let final_answer = |number: &str, branch: &str| {
        client.send(&common::invite(number, branch, client.port()));
        let mut last = String::new();
        while common::sip_status(&last) < 200 {
            last = client.recv().expect("a final answer");
        }
        last
    };
    let gw = final_answer("+441632969999", "m3");
    assert_eq!(common::sip_status(&gw), 302, "{gw}");
    assert!(gw.contains("@gw.example"), "{gw}");
    for branch in ["m4", "m5"] {
        let far = final_answer("+441632960002", branch);
        assert_eq!(common::sip_status(&far), 302, "{far}");
        assert!(far.contains("sip:far@b.example"), "{far}");
    }
    let options = common::invite("+441632960001", "m6", client.port()).replace("INVITE", "OPTIONS");
    assert_eq!(common::sip_status(&client.ask(&options)), 200);
    client.send("\u{1}\u{2} garbage");

    // DNS: NAPTR and SOA over UDP, a name outside every zone (REFUSED).
    common::dns_query(server.dns, "1.0.0.0.6.9.2.3.6.1.4.4.e164.arpa.", 35).unwrap();
    common::dns_query(server.dns, zone, 6).unwrap();
    common::dns_query(server.dns, "example.org.", 1).unwrap();

    // Admin: a PUT (serial 2), a GET, a request without the token.
    let put = server.put_number(
        "+441632960007",
        r#"{"routes":[{"uri":"sip:new@x.example"}]}"#,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        server
            .api("GET", "/v1/numbers/+441632960007", "", b"")
            .status,
        200
    );
    assert_eq!(
        common::http(server.admin, "GET", "/v1/zones", &[], b"").status,
        401
    );
    assert_eq!(
        common::http(server.admin, "GET", "/nowhere", &[], b"").status,
        404
    );

    // The garbage datagram is counted once the server has read it: wait for that.
    let mut after = parse_exposition(&scrape(&server));
    for _ in 0..50 {
        if value(
            &after,
            "enroute_sip_dropped",
            "enroute_sip_dropped_total",
            &[("reason", "garbage")],
        ) >= 1.0
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        after = parse_exposition(&scrape(&server));
    }
    let v = |family: &str, name: &str, labels: &[(&str, &str)]| value(&after, family, name, labels);

    let invites = |t| {
        v(
            "enroute_sip_requests",
            "enroute_sip_requests_total",
            &[("method", "INVITE"), ("transport", t)],
        )
    };
    assert_eq!(invites("udp"), 5.0);
    assert_eq!(invites("tcp"), 1.0);
    assert_eq!(
        v(
            "enroute_sip_requests",
            "enroute_sip_requests_total",
            &[("method", "OPTIONS")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "enroute_sip_responses",
            "enroute_sip_responses_total",
            &[("code", "302")]
        ),
        5.0,
        "the retransmitted INVITE's answer counts as a retransmission, not a new 302"
    );
    assert_eq!(
        v(
            "enroute_sip_responses",
            "enroute_sip_responses_total",
            &[("code", "200")]
        ),
        1.0
    );
    // The retransmitted INVITE got the first answer again.
    assert_eq!(
        v(
            "enroute_sip_retransmissions",
            "enroute_sip_retransmissions_total",
            &[]
        ),
        1.0
    );
    assert_eq!(
        v(
            "enroute_sip_dropped",
            "enroute_sip_dropped_total",
            &[("reason", "garbage")]
        ),
        1.0
    );
    // Routing: local decisions (the retransmission is answered from the transaction,
    // not routed again), the gateway, one upstream decision and one from the cache.
    let decisions = |outcome, source| {
        v(
            "enroute_route_decisions",
            "enroute_route_decisions_total",
            &[("outcome", outcome), ("source", source)],
        )
    };
    assert_eq!(decisions("redirect", "local"), 2.0);
    assert_eq!(decisions("redirect", "gateway"), 1.0); // +441632969999, NXDOMAIN upstream
    assert_eq!(decisions("redirect", "upstream"), 1.0);
    assert_eq!(decisions("redirect", "cache"), 1.0);
    let durations = v(
        "enroute_route_duration_seconds",
        "enroute_route_duration_seconds_count",
        &[],
    );
    assert!(durations >= 5.0, "{durations}");
    let inf = v(
        "enroute_route_duration_seconds",
        "enroute_route_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(inf, durations);
    // The h323 record of the local number is skipped for its service, once per
    // decision (UDP and TCP).
    assert!(
        v(
            "enroute_ddds_skipped",
            "enroute_ddds_skipped_total",
            &[("reason", "service")]
        ) >= 2.0
    );
    assert_eq!(
        v(
            "enroute_enum_lookups",
            "enroute_enum_lookups_total",
            &[("suffix", "e164.test."), ("result", "answer")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "enroute_enum_lookup_duration_seconds",
            "enroute_enum_lookup_duration_seconds_count",
            &[("suffix", "e164.test.")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "enroute_enum_lookups",
            "enroute_enum_lookups_total",
            &[("suffix", "e164.test."), ("result", "nxdomain")]
        ),
        1.0
    );
    // Two numbers asked upstream (both cached: one positive, one negative), one asked
    // again from the cache.
    assert_eq!(
        v("enroute_cache_hits", "enroute_cache_hits_total", &[]),
        1.0
    );
    assert_eq!(
        v("enroute_cache_misses", "enroute_cache_misses_total", &[]),
        2.0
    );
    assert_eq!(
        v("enroute_cache_entries", "enroute_cache_entries", &[]),
        2.0
    );
    assert_eq!(
        v(
            "enroute_sip_responses",
            "enroute_sip_responses_total",
            &[("code", "100")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "enroute_transactions_active",
            "enroute_transactions_active",
            &[]
        ),
        // Final answers over UDP wait for their ACK (none was sent): m1, m3, m4, m5.
        4.0
    );
    assert_eq!(
        v(
            "enroute_zone_serial",
            "enroute_zone_serial",
            &[("zone", zone)]
        ),
        2.0
    );
    assert_eq!(
        v(
            "enroute_zone_records",
            "enroute_zone_records",
            &[("zone", zone)]
        ),
        5.0
    );
    let dns = |qtype, rcode| {
        v(
            "enroute_dns_queries",
            "enroute_dns_queries_total",
            &[("qtype", qtype), ("rcode", rcode)],
        )
    };
    assert_eq!(dns("NAPTR", "NOERROR"), 1.0);
    assert_eq!(dns("SOA", "NOERROR"), 1.0);
    assert_eq!(dns("A", "REFUSED"), 1.0);
    let admin = |route, status| {
        v(
            "enroute_admin_requests",
            "enroute_admin_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(admin("/v1/numbers/{e164}", "200"), 2.0);
    assert_eq!(admin("/v1/zones", "401"), 1.0);
    assert_eq!(admin("unmatched", "404"), 1.0);
    // Earlier scrapes are counted under the template too, never a raw path.
    assert!(admin("/metrics", "200") >= 1.0);
    let (_, admin_samples) = &after["enroute_admin_requests"];
    assert!(
        admin_samples
            .iter()
            .all(|s| !s.labels["route"].contains("+44")),
        "raw paths in route labels"
    );
    // (The prometheus crate reports CPU time in whole seconds: present, maybe 0 yet.)
    assert!(v("process_cpu_seconds", "process_cpu_seconds_total", &[]) >= 0.0);
    assert!(
        v(
            "process_start_time_seconds",
            "process_start_time_seconds",
            &[]
        ) > 1.7e9
    );
    assert!(
        v(
            "process_resident_memory_bytes",
            "process_resident_memory_bytes",
            &[]
        ) > 1e6
    );

    // promtool's linter (Prometheus's own Go parser) accepts the exposition.
    common::promtool(
        &["check", "metrics"],
        std::path::Path::new("."),
        &scrape(&server),
    );
}

#[test]
fn metrics_off_hides_the_endpoint_and_still_routes() {
    let server = common::Enroute::start(ZONE, "[metrics]\nenabled = false\n");
    assert_eq!(
        common::sip_contact(server.sip_udp, "+441632960001"),
        "Contact: <sip:a@x.example>;q=1.0"
    );
    let r = common::http(server.admin, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        common::http(server.admin, "GET", "/healthz", &[], b"").status,
        200
    );
}

#[test]
fn json_logs_with_per_request_lines_only_at_debug() {
    let server = common::Enroute::start(ZONE, "[log]\nformat = \"json\"\nlevel = \"debug\"\n");
    common::sip_contact(server.sip_udp, "+441632960001");
    let answer = server.wait_for("SIP answer");
    let answer: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not a JSON line ({e}): {answer}"));
    assert_eq!(answer["level"], "DEBUG");
    assert_eq!(answer["message"], "SIP answer");
    assert_eq!(answer["status"], 302);
    assert_eq!(answer["method"], "INVITE");

    // At info, a request writes nothing.
    let quiet = common::Enroute::start(ZONE, "[log]\nlevel = \"info\"\n");
    common::sip_contact(quiet.sip_udp, "+441632960001");
    common::dns_query(quiet.dns, "1.0.0.0.6.9.2.3.6.1.4.4.e164.arpa.", 35).unwrap();
    // A marker after the requests: a SIGHUP's log line.
    quiet.sighup();
    let mut lines = Vec::new();
    loop {
        let l = quiet
            .log
            .recv_timeout(Duration::from_secs(20))
            .expect("reload line");
        if l.contains("SIGHUP: reload done") {
            break;
        }
        lines.push(l);
    }
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("SIP answer") && !l.contains("DNS answer")),
        "{lines:?}"
    );
}

#[test]
fn repeated_refused_notifies_log_one_line_per_second() {
    // A secondary zone whose primary is elsewhere: NOTIFY from us is refused.
    let primary = common::free_port();
    let server = common::Enroute::start(
        "",
        &format!("[[zone]]\norigin = \"9.9.e164.arpa.\"\nprimary = \"192.0.2.1:{primary}\"\n"),
    );
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for id in 0..200u16 {
        let mut msg = hickory_proto::op::Message::new(
            id,
            hickory_proto::op::MessageType::Query,
            hickory_proto::op::OpCode::Notify,
        );
        msg.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("9.9.e164.arpa.").unwrap(),
            hickory_proto::rr::RecordType::SOA,
        ));
        sock.send_to(&msg.to_vec().unwrap(), ("127.0.0.1", server.dns))
            .unwrap();
    }
    // Every NOTIFY is answered (REFUSED) and counted...
    let mut families = parse_exposition(&scrape(&server));
    for _ in 0..50 {
        if value(
            &families,
            "enroute_dns_notify_received",
            "enroute_dns_notify_received_total",
            &[],
        ) >= 200.0
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        families = parse_exposition(&scrape(&server));
    }
    assert_eq!(
        value(
            &families,
            "enroute_dns_notify_received",
            "enroute_dns_notify_received_total",
            &[]
        ),
        200.0
    );
    // ...but logged at most once or twice (the burst may straddle a second boundary).
    server.sighup();
    let mut warnings = 0;
    loop {
        let l = server
            .log
            .recv_timeout(Duration::from_secs(20))
            .expect("reload line");
        if l.contains("SIGHUP: reload done") {
            break;
        }
        if l.contains("NOTIFY not from the zone's primary") {
            warnings += 1;
        }
    }
    assert!(
        (1..=3).contains(&warnings),
        "{warnings} warning lines for 200 NOTIFYs"
    );
}
