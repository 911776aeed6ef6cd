//! The admin HTTP API over real HTTP on loopback: every route's success and error
//! answers, changes visible to SIP and DNS as soon as the 2xx arrives, the store's
//! durability across SIGKILL, the file-vs-store serial rule, NAPTR regexps kept byte
//! for byte through the store, the master-file export and the DNS wire, routes whose
//! service `enum.services` does not route (refused, or kept with a warning), routes SIP
//! would skip for their flags or result URI (refused, the field named), paged
//! prefix lists, and one key order in every answer.

mod common;

use common::{Enroute, HttpResponse, Knot, dns_query, free_port, http, sip_contact};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";

fn zone(serial: u32) -> String {
    format!(
        "$ORIGIN {ORIGIN}\n$TTL 300\n\
         @ IN SOA ns1.example.net. hostmaster.example.net. {serial} 3600 900 604800 60\n\
         @ IN NS ns1.example.net.\n\
         0.0.0.0.6.9 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:alice@pbx.example.net!\" .\n\
         1.0.0.0.6.9 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:bob@pbx.example.net!\" .\n"
    )
}

fn problem(r: &HttpResponse, status: u16) -> serde_json::Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text()
    );
    let v = r.json();
    assert_eq!(v["status"], status);
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    v
}

fn soa_serial(port: u16) -> u32 {
    let m = dns_query(port, ORIGIN, 6).expect("SOA answer");
    match &m.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("not a SOA: {other:?}"),
    }
}

/// The NAPTR regexps DNS answers for a number's name (wire bytes, as strings).
fn dns_regexps(port: u16, name: &str) -> Vec<Vec<u8>> {
    let m = dns_query(port, name, 35).expect("DNS answer");
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::NAPTR(n) => Some(n.regexp.to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn auth_health_and_errors_as_problems() {
    let server = Enroute::start(&zone(1), "");
    // No token needed for health and readiness.
    let r = http(server.admin, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = http(server.admin, "GET", "/readyz", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // The generated token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.dir.path().join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(server.token().len(), 64);
    // Everything under /v1 needs it.
    let r = http(server.admin, "GET", "/v1/zones", &[], b"");
    problem(&r, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = http(
        server.admin,
        "GET",
        "/v1/zones",
        &[("Authorization", "Bearer wrong")],
        b"",
    );
    problem(&r, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let wrong_len = format!("Bearer {}x", server.token());
    let r = http(
        server.admin,
        "GET",
        "/v1/zones",
        &[("Authorization", &wrong_len)],
        b"",
    );
    problem(&r, 401);
    // Unknown routes and methods: problems too.
    problem(&server.api("GET", "/v1/nothing", "", b""), 404);
    let r = server.api(
        "POST",
        "/v1/numbers/+441632960000",
        "application/json",
        b"{}",
    );
    problem(&r, 405);
    // Bodies: type, syntax, fields.
    let r = server.api(
        "PUT",
        "/v1/numbers/+441632960000",
        "text/plain",
        b"{\"routes\":[]}",
    );
    problem(&r, 415);
    let v = problem(&server.put_number("+441632960000", "{\"routes\":"), 422);
    assert!(v["detail"].as_str().unwrap().contains("EOF"), "{v}");
    let v = problem(
        &server.put_number(
            "+441632960000",
            r#"{"routes":[{"uri":"sip:a@b"},{"uri":"sip:c@d","preference":70000}]}"#,
        ),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "routes[1].preference");
    let v = problem(
        &server.put_number("+441632960000", r#"{"routes":[{"uri":"foo:bar"}]}"#),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "routes[0].service");
    let v = problem(
        &server.put_number(
            "+441632960000",
            r#"{"routes":[{"regexp":"!^(.*)$!sip:\\2@x!","service":"E2U+sip"}]}"#,
        ),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "routes[0].regexp");
    let v = problem(
        &server.put_number(
            "+441632960000",
            r#"{"routes":[{"uri":"sip:a@b"}],"colour":1}"#,
        ),
        422,
    );
    assert!(v["detail"].as_str().unwrap().contains("colour"), "{v}");
    let v = problem(
        &server.put_number("+4916329600", r#"{"routes":[{"uri":"sip:a@b"}]}"#),
        422,
    );
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("not in any local zone")
    );
    let v = problem(
        &server.put_number("4416", r#"{"routes":[{"uri":"sip:a@b"}]}"#),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "e164");
    problem(
        &server.api("GET", "/v1/numbers/+441632969999", "", b""),
        404,
    );
    problem(
        &server.api("DELETE", "/v1/numbers/+441632969999", "", b""),
        404,
    );
    problem(&server.api("GET", "/v1/numbers?limit=0", "", b""), 422);
    // Nothing of this changed the zone.
    assert_eq!(soa_serial(server.dns), 1);
}

#[test]
fn body_limit_is_413() {
    let admin = free_port();
    let mut server = Enroute::start(
        &zone(1),
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken_file = \"admin.token\"\nmax_body_bytes = 1000\n"
        ),
    );
    server.admin = admin;
    let big = format!(
        "{{\"routes\":[{{\"uri\":\"sip:{}@x\"}}]}}",
        "a".repeat(2000)
    );
    let v = problem(&server.put_number("+441632960000", &big), 413);
    assert!(v["detail"].as_str().unwrap().contains("max_body_bytes"));
    let ok = server.put_number("+441632960000", r#"{"routes":[{"uri":"sip:a@x"}]}"#);
    assert_eq!(ok.status, 200, "{}", ok.text());
}

#[test]
fn numbers_prefixes_route_and_cache_over_http_sip_and_dns() {
    // NOTIFYs go to a socket of the test's.
    let watcher = UdpSocket::bind("127.0.0.1:0").unwrap();
    watcher
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let server = Enroute::start(
        &zone(1),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{p}\", \"tcp:127.0.0.1:{p}\"]\nnotify = [\"127.0.0.1:{n}\"]\n\
             [[gateway]]\nprefix = \"+\"\nuris = [\"sip:{{e164}}@gw.example.net\"]\n",
            p = free_port(),
            n = watcher.local_addr().unwrap().port()
        ),
    );
    let dns = server_dns_port(&server);
    // PUT: a 200 with the body as stored, then SIP, DNS and route all see it at once.
    let r = server.put_number(
        "+441632960777",
        r#"{"ttl":60,"routes":[{"uri":"sip:carol@pbx.example.net","order":10},{"pstn":true,"rn":"+441632000000","npdi":true,"order":20}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["zone"], ORIGIN);
    assert_eq!(v["ttl"], 60);
    assert_eq!(v["routes"][0]["uri"], "sip:carol@pbx.example.net");
    assert_eq!(v["routes"][1]["pstn"], true);
    assert_eq!(v["routes"][1]["rn"], "+441632000000");
    assert_eq!(
        v["naptr"][1],
        r#"20 10 "u" "E2U+pstn:tel" "!^(.*)$!tel:\\1;rn=+441632000000;npdi!" ."#
    );
    assert!(sip_contact(server.sip_udp, "+441632960777").contains("sip:carol@pbx.example.net"));
    assert_eq!(
        dns_regexps(dns, "7.7.7.0.6.9.2.3.6.1.4.4.e164.arpa."),
        vec![
            b"!^.*$!sip:carol@pbx.example.net!".to_vec(),
            b"!^(.*)$!tel:\\1;rn=+441632000000;npdi!".to_vec()
        ]
    );
    assert_eq!(soa_serial(dns), 2);
    assert_eq!(notified_zone(&watcher), ORIGIN, "a NOTIFY after the PUT");
    let r = server.api("GET", "/v1/route/+441632960777", "", b"");
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(
        (d["status"].as_u64(), d["source"].as_str()),
        (Some(302), Some("local"))
    );
    assert_eq!(d["contacts"][0]["uri"], "sip:carol@pbx.example.net");
    // GET gives what PUT stored; PUT of that body again changes nothing but the serial.
    let got = server
        .api("GET", "/v1/numbers/%2B441632960777", "", b"")
        .json();
    assert_eq!(got["routes"], v["routes"]);
    let again = server.put_number(
        "+441632960777",
        &got.to_string().replace("\"number\":\"+441632960777\",", ""),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["naptr"], v["naptr"]);
    assert_eq!(soa_serial(dns), 3);
    // A prefix route: numbers under it with no record of their own route by it, also
    // below empty non-terminals that numbers under the prefix create.
    let r = server.put_prefix(
        "+4416329",
        r#"{"routes":[{"uri":"sip:range@pbx.example.net"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["prefix"], "+4416329");
    for n in ["+441632961234", "+441632960778", "+441632960002"] {
        assert!(
            sip_contact(server.sip_udp, n).contains("sip:range@pbx.example.net"),
            "{n}: {}",
            sip_contact(server.sip_udp, n)
        );
    }
    // The copy is plain RFC 4592 over DNS too: 8.7.7.0.6.9 sits under the ENT 7.7.0.6.9.
    assert_eq!(
        dns_regexps(dns, "8.7.7.0.6.9.2.3.6.1.4.4.e164.arpa."),
        vec![b"!^.*$!sip:range@pbx.example.net!".to_vec()]
    );
    // Numbers of their own keep them.
    assert!(sip_contact(server.sip_udp, "+441632960000").contains("alice"));
    // A number added later under the prefix makes new ENTs: still covered.
    assert_eq!(
        server
            .put_number(
                "+441632955555",
                r#"{"routes":[{"uri":"sip:dave@x.example"}]}"#
            )
            .status,
        200
    );
    assert!(sip_contact(server.sip_udp, "+441632955556").contains("range"));
    // Deleting the prefix removes every copy: back to the gateway.
    assert_eq!(
        server
            .api("DELETE", "/v1/prefixes/+4416329", "", b"")
            .status,
        204
    );
    assert!(sip_contact(server.sip_udp, "+441632960778").contains("gw.example.net"));
    assert!(sip_contact(server.sip_udp, "+441632955556").contains("gw.example.net"));
    problem(&server.api("GET", "/v1/prefixes/+4416329", "", b""), 404);
    // DELETE a number: 204, gone from SIP and DNS.
    assert_eq!(
        server
            .api("DELETE", "/v1/numbers/+441632960777", "", b"")
            .status,
        204
    );
    assert!(sip_contact(server.sip_udp, "+441632960777").contains("gw.example.net"));
    let m = dns_query(dns, "7.7.7.0.6.9.2.3.6.1.4.4.e164.arpa.", 35).unwrap();
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
    // Lists: sorted, paged, '+' literal or %2B.
    let page = server
        .api("GET", "/v1/numbers?prefix=+4416329&limit=2", "", b"")
        .json();
    let numbers: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["+441632955555", "+441632960000"]);
    assert_eq!(page["next"], "+441632960000");
    let page2 = server
        .api(
            "GET",
            "/v1/numbers?prefix=%2B4416329&limit=2&after=%2B441632960000",
            "",
            b"",
        )
        .json();
    assert_eq!(page2["items"][0]["number"], "+441632960001");
    assert!(page2["next"].is_null());
    // Zones and cache.
    let zones = server.api("GET", "/v1/zones", "", b"").json();
    assert_eq!(zones["items"][0]["origin"], ORIGIN);
    assert_eq!(
        zones["items"][0]["serial"].as_u64(),
        Some(soa_serial(dns) as u64)
    );
    let export = server.api("GET", &format!("/v1/zones/{ORIGIN}"), "", b"");
    assert_eq!(export.header("content-type"), Some("text/dns"));
    assert!(export.text().contains("sip:dave@x.example"));
    assert_eq!(server.api("DELETE", "/v1/cache", "", b"").status, 204);
    assert_eq!(
        server
            .api("DELETE", "/v1/cache/+441632960001", "", b"")
            .status,
        204
    );
    let doc = server.api("GET", "/v1/openapi.json", "", b"").json();
    assert_eq!(doc["openapi"], "3.1.0");
}

/// The DNS port a test configured itself (`[dns]` in its extra config).
fn server_dns_port(server: &Enroute) -> u16 {
    let conf = std::fs::read_to_string(server.dir.path().join("e.toml")).unwrap();
    let dns = conf.find("[dns]").unwrap();
    let at = dns + conf[dns..].find("udp:127.0.0.1:").unwrap() + "udp:127.0.0.1:".len();
    conf[at..].split('"').next().unwrap().parse().unwrap()
}

/// The zone of the next NOTIFY the watcher gets (acknowledged, so it is sent once).
fn notified_zone(watcher: &UdpSocket) -> String {
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
    let mut buf = [0u8; 1500];
    let (n, from) = watcher.recv_from(&mut buf).expect("a NOTIFY");
    let m = Message::from_bytes(&buf[..n]).unwrap();
    assert_eq!(m.metadata.op_code, OpCode::Notify);
    let mut ack = m.clone();
    ack.metadata.message_type = MessageType::Response;
    watcher.send_to(&ack.to_bytes().unwrap(), from).unwrap();
    m.queries[0].name().to_string()
}

#[test]
fn regexp_backslashes_round_trip_through_store_export_and_wire() {
    let mut server = Enroute::start(&zone(1), "");
    // JSON "\\+44" is the two bytes '\' '+' in the regexp: an escaped plus in the ERE.
    let body = r#"{"routes":[{"regexp":"!^\\+44(.*)$!sip:\\1@pbx.example.net!","service":"E2U+sip","order":10,"preference":5},{"uri":"sip:back\\slash@pbx.example.net","order":20}]}"#;
    let r = server.put_number("+441632960500", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let wire = [
        br"!^\+44(.*)$!sip:\1@pbx.example.net!".to_vec(),
        br"!^.*$!sip:back\\slash@pbx.example.net!".to_vec(),
    ];
    let name = "0.0.5.0.6.9.2.3.6.1.4.4.e164.arpa.";
    assert_eq!(dns_regexps(server.dns, name), wire);
    let v = r.json();
    assert_eq!(
        v["routes"][0]["regexp"],
        r"!^\+44(.*)$!sip:\1@pbx.example.net!"
    );
    assert_eq!(v["routes"][1]["uri"], r"sip:back\slash@pbx.example.net");
    // The back-reference really routes: \1 is what follows +44.
    assert!(
        sip_contact(server.sip_udp, "+441632960500").contains("sip:1632960500@pbx.example.net")
    );
    // Export: presentation form doubles each backslash (RFC 1035 §5.1).
    let export = server
        .api("GET", &format!("/v1/zones/{ORIGIN}"), "", b"")
        .text();
    assert!(
        export.contains(r#""!^\\+44(.*)$!sip:\\1@pbx.example.net!""#),
        "{export}"
    );
    assert!(
        export.contains(r#""!^.*$!sip:back\\\\slash@pbx.example.net!""#),
        "{export}"
    );
    // Knot reads the export and answers the same bytes.
    let knot = Knot::start(&[(ORIGIN, &export)]);
    assert_eq!(dns_regexps(knot.port, name), wire);
    // The export put back through the API, and a restart from the store: same bytes.
    let r = server.put_zone(ORIGIN, &export);
    assert_eq!(r.status, 200, "{}", r.text());
    server.restart();
    assert_eq!(dns_regexps(server.dns, name), wire);
    let again = server
        .api("GET", "/v1/numbers/+441632960500", "", b"")
        .json();
    assert_eq!(again["routes"], v["routes"]);
}

#[test]
fn zone_replace_rules() {
    let server = Enroute::start(&zone(1), "");
    // A broken master file: 422 with the line, nothing changed.
    let broken = zone(50).replace(
        "1.0.0.0.6.9 IN NAPTR 100 10",
        "1.0.0.0.6.9 IN NAPTR 100 ten",
    );
    let v = problem(&server.put_zone(ORIGIN, &broken), 422);
    assert_eq!(v["errors"][0]["line"], 6, "{v}");
    assert_eq!(soa_serial(server.dns), 1);
    assert!(sip_contact(server.sip_udp, "+441632960001").contains("bob"));
    // A lower serial than served: the new serial is current + 1.
    let lower = zone(0).replace("bob@", "robert@");
    let r = server.put_zone(ORIGIN, &lower);
    assert_eq!((r.status, r.json()["serial"].as_u64()), (200, Some(2)));
    assert_eq!(soa_serial(server.dns), 2);
    assert!(sip_contact(server.sip_udp, "+441632960001").contains("robert"));
    // A higher one is kept.
    let r = server.put_zone(ORIGIN, &zone(90));
    assert_eq!(r.json()["serial"].as_u64(), Some(90));
    problem(
        &server.api(
            "PUT",
            "/v1/zones/9.9.e164.arpa.",
            "text/dns",
            zone(1).as_bytes(),
        ),
        422,
    );
    problem(
        &server.api(
            "PUT",
            &format!("/v1/zones/{ORIGIN}"),
            "application/json",
            b"{}",
        ),
        415,
    );
    problem(&server.api("GET", "/v1/zones/9.9.e164.arpa.", "", b""), 404);
}

#[test]
fn store_wins_until_the_file_is_newer() {
    let mut server = Enroute::start(&zone(10), "");
    assert_eq!(
        server
            .put_number(
                "+441632960002",
                r#"{"routes":[{"uri":"sip:api@x.example"}]}"#
            )
            .status,
        200
    );
    // The CLI reads the zone as served (from the store) while the server runs.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_enroute"))
            .args(args)
            .args(["--config", "e.toml"])
            .current_dir(server.dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["zone", "export", ORIGIN]).contains("sip:api@x.example"));
    assert!(cli(&["route", "+441632960002", "--json"]).contains("sip:api@x.example"));
    // Restart with the same file: the store (serial 11) wins.
    server.restart();
    assert_eq!(soa_serial(server.dns), 11);
    assert!(sip_contact(server.sip_udp, "+441632960002").contains("api@x.example"));
    // SIGHUP with a file of a serial not newer: still the store.
    std::fs::write(
        server.dir.path().join("z.zone"),
        zone(11).replace("alice", "file11"),
    )
    .unwrap();
    server.sighup();
    std::thread::sleep(Duration::from_millis(500));
    assert!(sip_contact(server.sip_udp, "+441632960000").contains("alice"));
    assert!(sip_contact(server.sip_udp, "+441632960002").contains("api@x.example"));
    // A newer file replaces the stored zone (API changes gone, with a warning).
    std::fs::write(
        server.dir.path().join("z.zone"),
        zone(12).replace("alice", "file12"),
    )
    .unwrap();
    server.sighup();
    server.wait_for("replaces the stored zone");
    let deadline = Instant::now() + Duration::from_secs(10);
    while soa_serial(server.dns) != 12 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sip_contact(server.sip_udp, "+441632960000").contains("file12"));
    assert!(!sip_contact(server.sip_udp, "+441632960002").contains("api@"));
    // And that is what a restart serves.
    server.restart();
    assert_eq!(soa_serial(server.dns), 12);
}

#[test]
fn acknowledged_puts_survive_sigkill() {
    let mut server = Enroute::start(&zone(1), "");
    let numbers: Vec<String> = (0..200).map(|i| format!("+44163297{i:04}")).collect();
    for (i, n) in numbers.iter().enumerate() {
        let r = server.put_number(
            n,
            &format!(r#"{{"routes":[{{"uri":"sip:u{i}@durable.example"}}]}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // SIGKILL: no chance to flush anything that was not already on disk.
    server.restart();
    assert_eq!(soa_serial(server.dns), 201);
    for (i, n) in numbers.iter().enumerate() {
        let want = format!("sip:u{i}@durable.example");
        assert!(
            sip_contact(server.sip_udp, n).contains(&want),
            "{n} over SIP"
        );
        let name: String = n[1..]
            .chars()
            .rev()
            .map(|c| format!("{c}."))
            .collect::<String>()
            + "e164.arpa.";
        assert_eq!(
            dns_regexps(server.dns, &name),
            vec![format!("!^.*$!{want}!").into_bytes()],
            "{n} over DNS"
        );
    }
}

#[test]
fn import_is_all_or_nothing_even_under_sigkill() {
    let mut server = Enroute::start(&zone(1), "");
    // Errors name their lines; nothing is imported.
    let bad = "number,uri,order\n+441632980001,sip:a@x,10\n+441632980002,nocolon,10\n+491632980003,sip:c@x,10\n";
    let v = problem(
        &server.api("POST", "/v1/numbers:import", "text/csv", bad.as_bytes()),
        422,
    );
    assert_eq!(v["errors"][0]["line"], 3, "{v}");
    let v = problem(
        &server.api(
            "POST",
            "/v1/numbers:import",
            "text/csv",
            bad.replace("nocolon", "sip:b@x").as_bytes(),
        ),
        422,
    );
    assert_eq!(v["errors"][0]["line"], 4, "{v}");
    problem(
        &server.api("POST", "/v1/numbers:import", "application/json", b"[]"),
        415,
    );
    assert_eq!(soa_serial(server.dns), 1);
    problem(
        &server.api("GET", "/v1/numbers/+441632980001", "", b""),
        404,
    );
    // NDJSON works too.
    let nd = "{\"number\":\"+441632980001\",\"routes\":[{\"uri\":\"sip:nd@x.example\"}]}\n";
    let r = server.api(
        "POST",
        "/v1/numbers:import",
        "application/x-ndjson",
        nd.as_bytes(),
    );
    assert_eq!((r.status, r.json()["numbers"].as_u64()), (200, Some(1)));
    assert!(sip_contact(server.sip_udp, "+441632980001").contains("nd@x.example"));
    // 100,000 lines, killed while the import runs: after a restart all or none of it.
    let mut csv = String::from("number,uri,order,preference,ttl\n");
    for i in 0..100_000 {
        csv.push_str(&format!(
            "+44163291{i:05},sip:bulk{i}@x.example,10,10,300\n"
        ));
    }
    let records_before = records(&server);
    let (admin, token) = (server.admin, server.token());
    let body = csv.clone();
    let sender = std::thread::spawn(move || {
        let auth = format!("Bearer {token}");
        let h = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "text/csv"),
        ];
        std::panic::catch_unwind(|| {
            http(admin, "POST", "/v1/numbers:import", &h, body.as_bytes()).status
        })
        .ok()
    });
    // Killed inside the store transaction: after the checks, before the commit.
    server.wait_for("import: checked; writing to the store");
    std::thread::sleep(Duration::from_millis(100));
    server.restart();
    let _ = sender.join();
    let after = records(&server);
    assert!(
        after == records_before || after == records_before + 100_000,
        "records before {records_before}, after {after}: a partial import"
    );
    // The whole import, when it completes, is served.
    let started = Instant::now();
    let r = server.api("POST", "/v1/numbers:import", "text/csv", csv.as_bytes());
    eprintln!("100,000-line import: {:?}", started.elapsed());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["numbers"].as_u64(), Some(100_000));
    assert_eq!(records(&server), records_before + 100_000);
    assert!(sip_contact(server.sip_udp, "+4416329112345").contains("bulk12345@x.example"));
}

fn records(server: &Enroute) -> u64 {
    server.api("GET", "/v1/zones", "", b"").json()["items"][0]["records"]
        .as_u64()
        .unwrap()
}

#[test]
fn openapi_document_matches_the_router() {
    let server = Enroute::start(&zone(1), "");
    let doc = server.api("GET", "/v1/openapi.json", "", b"").json();
    let paths = doc["paths"].as_object().unwrap();
    let methods = ["get", "put", "post", "delete", "patch"];
    for (path, item) in paths {
        let concrete = path
            .replace("{e164}", "+441632960000")
            .replace("{e164prefix}", "+4416329")
            .replace("{number}", "+441632960000")
            .replace("{origin}", ORIGIN);
        for m in methods {
            let r = server.api(&m.to_uppercase(), &concrete, "application/json", b"");
            let documented = item.get(m).is_some();
            let unrouted =
                r.status == 405 || (r.status == 404 && r.json()["detail"] == "no such route");
            assert_eq!(
                documented,
                !unrouted,
                "{} {path}: documented {documented}, answered {} {}",
                m.to_uppercase(),
                r.status,
                r.text()
            );
        }
    }
    // Routes the router has are all in the document (spot-check a neighbour path).
    assert!(paths.contains_key("/v1/numbers:import"));
    let r = server.api("GET", "/v1/numbers/+441632960000/extra", "", b"");
    assert_eq!(r.status, 404);
}

#[test]
fn not_ready_until_every_zone_is_loaded_and_secondaries_are_read_only() {
    // A secondary of a primary that does not answer: no copy yet.
    let dead = free_port();
    let server = Enroute::start(
        &zone(1),
        &format!(
            "[[zone]]\norigin = \"5.5.5.2.0.2.1.e164.arpa.\"\nprimary = \"127.0.0.1:{dead}\"\n"
        ),
    );
    let v = problem(&http(server.admin, "GET", "/readyz", &[], b""), 503);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("5.5.5.2.0.2.1.e164.arpa."),
        "{v}"
    );
    // Changes to it are refused as read-only, not as "outside every zone".
    let v = problem(
        &server.put_number("+12025550100", r#"{"routes":[{"uri":"sip:a@b"}]}"#),
        409,
    );
    assert!(v["detail"].as_str().unwrap().contains("secondary"), "{v}");
    problem(
        &server.api(
            "PUT",
            "/v1/zones/5.5.5.2.0.2.1.e164.arpa.",
            "text/dns",
            zone(1).as_bytes(),
        ),
        409,
    );
    // The primary zone is served meanwhile.
    assert!(sip_contact(server.sip_udp, "+441632960000").contains("alice"));
}

/// `[enum]` of a server that routes SIP only (and asks no upstream).
const SIP_ONLY: &str = "[enum]\nsuffixes = []\nservices = [\"E2U+sip\"]\n";

const KEPT: &str = "E2U+web:https is not in enum.services: kept in the zone for other ENUM clients, never used to route calls";

#[test]
fn routes_enum_services_never_use_are_refused_unless_their_service_is_named() {
    let server = Enroute::start(&zone(1), SIP_ONLY);
    // The service implied by the scheme, or by "pstn": 422 naming where it came from.
    let web = r#"{"routes":[{"uri":"sip:a@pbx.example.net"},{"uri":"https://example.net/"}]}"#;
    let v = problem(&server.put_number("+441632960100", web), 422);
    assert_eq!(v["errors"][0]["field"], "routes[1].uri", "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("routes[1].uri: E2U+web:https is not in enum.services"),
        "{detail}"
    );
    let v = problem(
        &server.put_number("+441632960100", r#"{"routes":[{"pstn":true}]}"#),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "routes[0].pstn", "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("E2U+pstn:tel"),
        "{v}"
    );
    let v = problem(
        &server.put_prefix("+4416321", r#"{"routes":[{"uri":"https://example.net/"}]}"#),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "routes[0].uri", "{v}");
    problem(
        &server.api("GET", "/v1/numbers/+441632960100", "", b""),
        404,
    );
    assert_eq!(soa_serial(server.dns), 1, "nothing was written");
    // Named explicitly: a record kept for other ENUM clients, with a warning.
    let named = r#"{"routes":[{"uri":"sip:a@pbx.example.net"},{"uri":"https://example.net/","service":"E2U+web:https"}]}"#;
    let r = server.put_number("+441632960100", named);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["warnings"],
        serde_json::json!([format!("routes[1].service: {KEPT}")])
    );
    let r = server.put_prefix(
        "+4416321",
        r#"{"routes":[{"uri":"https://example.net/","service":"E2U+web:https"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["warnings"],
        serde_json::json!([format!("routes[0].service: {KEPT}")])
    );
    // Served over DNS to other ENUM clients; calls use the SIP route only, or nothing.
    assert_eq!(
        dns_regexps(server.dns, "0.0.1.0.6.9.2.3.6.1.4.4.e164.arpa.").len(),
        2
    );
    let contact = sip_contact(server.sip_udp, "+441632960100");
    assert!(
        contact.contains("sip:a@pbx.example.net") && !contact.contains("https"),
        "{contact}"
    );
    assert!(sip_contact(server.sip_udp, "+441632160000").contains("404"));
    // Read back, the route names its service (so that PUT back it is kept, not
    // refused), and a GET carries no warnings.
    let got = server.api("GET", "/v1/numbers/+441632960100", "", b"");
    let g = got.json();
    assert_eq!(g["routes"][1]["service"], "E2U+web:https", "{g}");
    assert!(g.get("warnings").is_none(), "{g}");
    let again = server.put_number("+441632960100", &got.text());
    assert_eq!(again.status, 200, "{}", again.text());
}

#[test]
fn imports_refuse_unrouted_services_by_line_and_commit_nothing() {
    let server = Enroute::start(&zone(1), SIP_ONLY);
    let import =
        |ct: &str, body: &str| server.api("POST", "/v1/numbers:import", ct, body.as_bytes());
    assert_import_refused(
        &server,
        "number,uri\n+441632980001,sip:a@x.example\n+441632980002,https://x.example/\n",
        "line 3: uri: E2U+web:https is not in enum.services",
        "{\"number\":\"+441632980001\",\"routes\":[{\"uri\":\"sip:a@x.example\"}]}\n\
         {\"number\":\"+441632980002\",\"routes\":[{\"pstn\":true}]}\n",
        "routes[0].pstn",
    );
    // With the service named: imported, each kept route warned about with its line.
    let csv = "number,uri,service\n+441632980001,sip:a@x.example,\n+441632980002,https://x.example/,E2U+web:https\n";
    let r = import("text/csv", csv);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["numbers"], 2);
    assert_eq!(
        v["warnings"],
        serde_json::json!([format!("line 3: service: {KEPT}")]),
        "{v}"
    );
    assert_eq!(v["total_warnings"], 1);
    let nd = "{\"number\":\"+441632980003\",\"routes\":[{\"uri\":\"https://x.example/\",\"service\":\"E2U+web:https\"}]}\n";
    let v = import("application/x-ndjson", nd).json();
    assert_eq!(
        v["warnings"],
        serde_json::json!([format!("line 1: routes[0].service: {KEPT}")]),
        "{v}"
    );
    // An import with no such route says nothing of warnings.
    let v = import("text/csv", "number,uri\n+441632980004,sip:d@x.example\n").json();
    assert!(
        v.get("warnings").is_none() && v.get("total_warnings").is_none(),
        "{v}"
    );
}

/// `[enum]` of a server that routes SIP and PSTN (tel:) records, upstream asked never.
const SIP_AND_TEL: &str = "[enum]\nsuffixes = []\nservices = [\"E2U+sip\", \"E2U+pstn:tel\"]\n";

/// The 422 problem's first error as (field, detail).
fn first_error(r: &HttpResponse) -> (String, String) {
    let v = problem(r, 422);
    let e = &v["errors"][0];
    (
        e["field"].as_str().unwrap_or_default().to_string(),
        e["detail"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn routes_sip_would_skip_for_their_flags_or_result_are_refused_even_with_a_service() {
    let server = Enroute::start(&zone(1), SIP_AND_TEL);
    let put = |body: &str| server.put_number("+441632960100", body);
    // A result URI the (routed) service does not take: the router's trace says the
    // record "does not fit service …"; the API names the URI and the schemes it takes.
    let (field, detail) = first_error(&put(
        r#"{"routes":[{"uri":"https://example.net/","service":"E2U+sip"}]}"#,
    ));
    assert_eq!(field, "routes[0].uri");
    assert!(
        detail.starts_with("E2U+sip takes sip: or sips: URIs, not \"https://example.net/\""),
        "{detail}"
    );
    let (field, detail) = first_error(&put(
        r#"{"routes":[{"uri":"sip:a@pbx.example.net"},{"uri":"sip:a@b.example","service":"E2U+pstn:tel"}]}"#,
    ));
    assert_eq!(field, "routes[1].uri");
    assert!(
        detail.starts_with("E2U+pstn:tel takes tel: URIs"),
        "{detail}"
    );
    // Flags other than "u" or empty: the router skips such records, whatever the service.
    for flags in ["s", "p", "x"] {
        let body = format!(r#"{{"routes":[{{"uri":"sip:a@b.example","flags":"{flags}"}}]}}"#);
        let (field, detail) = first_error(&put(&body));
        assert_eq!(field, "routes[0].flags", "{flags}");
        assert!(detail.contains("neither \"u\""), "{detail}");
    }
    // A raw regexp with a literal result is judged like a URI; a prefix route too.
    let (field, _) = first_error(&put(
        r#"{"routes":[{"regexp":"!^.*$!https://example.net/!","service":"E2U+sip"}]}"#,
    ));
    assert_eq!(field, "routes[0].regexp");
    let (field, _) = first_error(&server.put_prefix(
        "+4416321",
        r#"{"routes":[{"pstn":true,"service":"E2U+sip"}]}"#,
    ));
    assert_eq!(field, "routes[0].pstn");
    problem(
        &server.api("GET", "/v1/numbers/+441632960100", "", b""),
        404,
    );
    assert_eq!(soa_serial(server.dns), 1, "nothing was written");
    // What fits is stored and routed.
    let r = put(
        r#"{"routes":[{"uri":"sip:a@pbx.example.net","flags":"U"},{"uri":"tel:+441632960999","order":200}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("warnings").is_none(), "{}", r.text());
    assert!(sip_contact(server.sip_udp, "+441632960100").contains("sip:a@pbx.example.net"));
}

#[test]
fn imports_refuse_a_route_sip_would_skip_by_line_and_commit_nothing() {
    let server = Enroute::start(&zone(1), SIP_AND_TEL);
    assert_import_refused(
        &server,
        "number,uri,service\n+441632980001,sip:a@x.example,\n+441632980002,sip:b@x.example,E2U+pstn:tel\n",
        "line 3: uri: E2U+pstn:tel takes tel: URIs",
        "{\"number\":\"+441632980001\",\"routes\":[{\"uri\":\"sip:a@x.example\"}]}\n\
         {\"number\":\"+441632980002\",\"routes\":[{\"uri\":\"sip:b@x.example\",\"flags\":\"s\"}]}\n",
        "routes[0].flags",
    );
}

#[test]
fn a_sighup_that_adds_the_service_lets_the_route_in() {
    let server = Enroute::start(&zone(1), SIP_ONLY);
    let body = r#"{"routes":[{"uri":"https://example.net/"}]}"#;
    problem(&server.put_number("+441632960100", body), 422);
    let conf = server.dir.path().join("e.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    let wider = text.replace(
        "services = [\"E2U+sip\"]",
        "services = [\"E2U+sip\", \"E2U+web:https\"]",
    );
    assert_ne!(text, wider);
    std::fs::write(&conf, wider).unwrap();
    server.sighup();
    // Refused answers change nothing, so asking until the reload is in is harmless.
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = server.put_number("+441632960100", body);
        if r.status != 422 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v.get("warnings").is_none(), "{v}");
    assert_eq!(
        v["routes"][0],
        serde_json::json!({"uri": "https://example.net/", "order": 100, "preference": 10})
    );
}

/// Asserts that the JSON object starting at `at` in `raw` has exactly `keys`, in this
/// order (values without nested objects with these keys).
fn assert_key_order(raw: &str, at: usize, keys: &[&str]) {
    let mut pos = at;
    assert_eq!(&raw[at..at + 1], "{", "{raw}");
    for k in keys {
        let needle = format!("\"{k}\":");
        let found = raw[pos..]
            .find(&needle)
            .unwrap_or_else(|| panic!("no {k} after {pos}: {raw}"));
        pos += found + needle.len();
    }
    for k in [
        "number", "prefix", "zone", "ttl", "routes", "naptr", "warnings",
    ] {
        if !keys.contains(&k) {
            let object_end = raw[at..].find("]}").map_or(raw.len(), |e| at + e);
            assert!(
                !raw[at..object_end].contains(&format!("\"{k}\":")),
                "{k} in {raw}"
            );
        }
    }
}

#[test]
fn prefix_routes_are_listed_in_pages_and_answers_keep_one_key_order() {
    // A wildcard from the zone file is a prefix route like those the API makes.
    let text =
        zone(1) + "*.5 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:file@pbx.example.net!\" .\n";
    let server = Enroute::start(&text, "");
    // Routes given with their keys in another order come back in the one order.
    let route = br#"{"routes":[{"preference":20,"order":10,"uri":"sip:p@pbx.example.net"}]}"#;
    let route_text = r#""routes":[{"uri":"sip:p@pbx.example.net","order":10,"preference":20}]"#;
    for p in ["+4416329", "+441632", "+44163296", "+4416320", "+441632961"] {
        let r = server.api(
            "PUT",
            &format!("/v1/prefixes/{p}"),
            "application/json",
            route,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_key_order(&r.text(), 0, &["prefix", "zone", "ttl", "routes", "naptr"]);
        assert!(r.text().contains(route_text), "{}", r.text());
    }
    // Numbers under the prefixes make empty non-terminals that carry copies of their
    // wildcards: copies are no prefix routes of their own.
    assert_eq!(
        server
            .put_number("+441632961234", std::str::from_utf8(route).unwrap())
            .status,
        200
    );
    let get = server.api("GET", "/v1/prefixes/+44163296", "", b"").text();
    assert_key_order(&get, 0, &["prefix", "zone", "ttl", "routes", "naptr"]);
    assert!(get.contains(route_text), "{get}");
    // Pages of two, following "next"; a literal '+' and %2B alike.
    let list = |q: &str| {
        let r = server.api("GET", &format!("/v1/prefixes?{q}"), "", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let items: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["prefix"].as_str().unwrap().to_string())
            .collect();
        (items, v["next"].as_str().map(str::to_string), r.text())
    };
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    let mut pages = 0;
    loop {
        let (items, next, raw) = list(&query);
        assert!(items.len() <= 2, "{raw}");
        let first = raw.find("{\"prefix\"").unwrap();
        assert_key_order(&raw, first, &["prefix", "zone", "ttl", "routes", "naptr"]);
        seen.extend(items);
        pages += 1;
        match next {
            Some(n) => {
                query = format!(
                    "limit=2&after={}",
                    n.replace('+', if pages % 2 == 0 { "+" } else { "%2B" })
                )
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "+441632",
            "+4416320",
            "+4416325",
            "+4416329",
            "+44163296",
            "+441632961"
        ]
    );
    assert_eq!(pages, 3);
    // The filter: prefixes starting with it, the prefix itself included.
    let (items, next, _) = list("prefix=+4416329&limit=2");
    assert_eq!(
        (items, next.as_deref()),
        (
            vec!["+4416329".to_string(), "+44163296".to_string()],
            Some("+44163296")
        )
    );
    let (items, next, _) = list("prefix=%2B4416329&limit=2&after=%2B44163296");
    assert_eq!((items, next), (vec!["+441632961".to_string()], None));
    let (items, _, _) = list("prefix=+4416325");
    assert_eq!(items, ["+4416325"]);
    let (items, _, _) = list("prefix=+4916");
    assert!(items.is_empty());
    // The same errors as the numbers' list.
    let v = problem(&server.api("GET", "/v1/prefixes?limit=0", "", b""), 422);
    assert_eq!(v["errors"][0]["field"], "limit");
    let v = problem(&server.api("GET", "/v1/prefixes?after=4416", "", b""), 422);
    assert_eq!(v["errors"][0]["field"], "after");
    // The prefix in a path is `e164prefix` in every error about it.
    let v = problem(&server.api("GET", "/v1/prefixes/4416", "", b""), 422);
    assert_eq!(v["errors"][0]["field"], "e164prefix");
    let v = problem(
        &server.api("PUT", "/v1/prefixes/+4916", "application/json", route),
        422,
    );
    assert_eq!(v["errors"][0]["field"], "e164prefix", "{v}");
    let v = problem(&server.api("GET", "/v1/prefixes/+4916", "", b""), 422);
    assert_eq!(v["errors"][0]["field"], "e164prefix", "{v}");
    // Number answers: GET, PUT (with warnings last) and list items in one order too.
    let put = server.put_number("+441632960300", r#"{"routes":[{"preference":20,"order":10,"uri":"sip:p@pbx.example.net"},{"service":"E2U+web:https","uri":"https://x.example/"}],"ttl":60}"#);
    assert_eq!(put.status, 200, "{}", put.text());
    assert_key_order(
        &put.text(),
        0,
        &["number", "zone", "ttl", "routes", "naptr", "warnings"],
    );
    let get = server
        .api("GET", "/v1/numbers/+441632960300", "", b"")
        .text();
    assert_key_order(&get, 0, &["number", "zone", "ttl", "routes", "naptr"]);
    assert!(
        get.contains(r#"{"uri":"sip:p@pbx.example.net","order":10,"preference":20}"#),
        "{get}"
    );
    let raw = server
        .api("GET", "/v1/numbers?prefix=+441632960300", "", b"")
        .text();
    let first = raw.find("{\"number\"").unwrap();
    assert_key_order(&raw, first, &["number", "zone", "ttl", "routes", "naptr"]);
    assert!(
        raw.contains(r#"{"uri":"sip:p@pbx.example.net","order":10,"preference":20}"#),
        "{raw}"
    );
}

#[test]
fn the_openapi_document_needs_no_token_and_the_root_points_at_the_console() {
    let server = Enroute::start(&zone(1), "");
    let r = http(server.admin, "GET", "/v1/openapi.json", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/prefixes"]["get"].is_object());
    assert_eq!(
        doc["paths"]["/v1/openapi.json"]["get"]["security"],
        serde_json::json!([])
    );
    // Data still needs it.
    problem(&http(server.admin, "GET", "/v1/numbers", &[], b""), 401);
    problem(&http(server.admin, "GET", "/v1/prefixes", &[], b""), 401);
    let r = http(server.admin, "GET", "/", &[], b"");
    assert!(matches!(r.status, 302 | 307), "{} {}", r.status, r.text());
    assert_eq!(r.header("location"), Some("/ui/"));
    // The metrics name the new routes by their templates.
    server.api("GET", "/v1/prefixes", "", b"");
    server.api("GET", "/v1/prefixes/+4416329", "", b"");
    let metrics = http(server.admin, "GET", "/metrics", &[], b"").text();
    for route in [
        "/",
        "/v1/openapi.json",
        "/v1/prefixes",
        "/v1/prefixes/{e164prefix}",
    ] {
        assert!(
            metrics.contains(&format!("route=\"{route}\"")),
            "{route}:\n{metrics}"
        );
    }
}

/// The first error of an import's problem names this line and field.
fn assert_first_error(v: &serde_json::Value, line: u64, field: &str) {
    let e = &v["errors"][0];
    assert_eq!(
        (e["line"].as_u64(), e["field"].as_str()),
        (Some(line), Some(field)),
        "{v}"
    );
}

/// The same import refused as CSV (its line 3 is the bad one: the field `uri`, the
/// detail starting `csv_detail`) and as NDJSON (its line 2, the field `ndjson_field`),
/// committing nothing either way.
fn assert_import_refused(
    server: &Enroute,
    csv: &str,
    csv_detail: &str,
    ndjson: &str,
    ndjson_field: &str,
) {
    let import =
        |ct: &str, body: &str| server.api("POST", "/v1/numbers:import", ct, body.as_bytes());
    let v = problem(&import("text/csv", csv), 422);
    assert_first_error(&v, 3, "uri");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.starts_with(csv_detail), "{v}");
    let v = problem(&import("application/x-ndjson", ndjson), 422);
    assert_first_error(&v, 2, ndjson_field);
    assert_nothing_committed(server);
}

/// A refused import committed nothing, not even its good lines: the first number is
/// not there and the zone's serial has not moved.
fn assert_nothing_committed(server: &Enroute) {
    problem(
        &server.api("GET", "/v1/numbers/+441632980001", "", b""),
        404,
    );
    assert_eq!(soa_serial(server.dns), 1);
}
