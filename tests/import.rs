//! `POST /v1/numbers:import` as a stream (SPEC §13), over real HTTP on loopback: merge
//! and replace modes, delete lines in CSV and NDJSON and the `deleted` count, the
//! checks of `mode` and `zone`, and uploads that do not arrive whole (the client goes
//! away, the server is SIGKILLed mid-upload, a line without end, a bad line ten
//! million lines in): nothing committed, the zone served as before.

mod common;

use common::{Enroute, HttpResponse, dns_query, free_port, soa_serial};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";

/// A zone with two numbers from the file: +441632960000 (alice), +441632960001 (bob).
fn zone() -> String {
    format!(
        "$ORIGIN {ORIGIN}\n$TTL 300\n\
         @ IN SOA ns1.example.net. hostmaster.example.net. 1 3600 900 604800 60\n\
         @ IN NS ns1.example.net.\n\
         0.0.0.0.6.9 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:alice@pbx.example.net!\" .\n\
         1.0.0.0.6.9 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:bob@pbx.example.net!\" .\n"
    )
}

fn start() -> Enroute {
    let admin = free_port();
    let mut server = Enroute::start(
        &zone(),
        &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken_file = \"admin.token\"\n"),
    );
    server.admin = admin;
    server
}

fn import(server: &Enroute, query: &str, content_type: &str, body: &str) -> HttpResponse {
    let path = format!("/v1/numbers:import{query}");
    server.api("POST", &path, content_type, body.as_bytes())
}

fn ok(r: HttpResponse) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn refused(r: HttpResponse, status: u16) -> serde_json::Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

/// Every number the API lists, in order.
fn listed(server: &Enroute) -> Vec<String> {
    let v = ok(server.api("GET", "/v1/numbers?limit=1000", "", b""));
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_str().unwrap().to_string())
        .collect()
}

/// The NAPTR owner of a number of this zone.
fn owner(number: &str) -> String {
    let digits = &number["+441632".len()..];
    let mut labels: Vec<String> = digits.chars().rev().map(String::from).collect();
    labels.push(ORIGIN.to_string());
    labels.join(".")
}

/// Whether DNS answers NAPTR records for the number.
fn served(server: &Enroute, number: &str) -> bool {
    dns_query(server.dns, &owner(number), 35).is_some_and(|m| !m.answers.is_empty())
}

#[test]
fn replace_leaves_exactly_the_upload_and_keeps_prefix_routes() {
    let server = start();
    let csv = "number,uri\n+441632960010,sip:a@x.example\n+441632960011,sip:b@x.example\n";
    let v = ok(import(&server, "", "text/csv", csv));
    assert_eq!(
        (v["numbers"].as_u64(), v["deleted"].as_u64()),
        (Some(2), Some(0))
    );
    let prefix = server.put_prefix(
        "+4416329700",
        r#"{"routes":[{"uri":"sip:range@x.example"}]}"#,
    );
    assert_eq!(prefix.status, 200, "{}", prefix.text());
    let serial = soa_serial(server.dns, ORIGIN).unwrap();

    let upload =
        "number,uri\n+441632960000,sip:alice2@x.example\n+441632960020,sip:new@x.example\n";
    let v = ok(import(
        &server,
        &format!("?mode=replace&zone={ORIGIN}"),
        "text/csv",
        upload,
    ));
    assert_eq!(
        (
            v["numbers"].as_u64(),
            v["routes"].as_u64(),
            v["deleted"].as_u64()
        ),
        (Some(2), Some(2), Some(3)),
        "{v}"
    );
    assert_eq!(listed(&server), ["+441632960000", "+441632960020"]);
    assert_eq!(
        soa_serial(server.dns, ORIGIN),
        Some(serial + 1),
        "one change"
    );
    for gone in ["+441632960001", "+441632960010", "+441632960011"] {
        assert!(!served(&server, gone), "{gone} still answered");
    }
    assert!(served(&server, "+441632960020"));
    let alice = ok(server.api("GET", "/v1/numbers/+441632960000", "", b""));
    assert_eq!(alice["routes"][0]["uri"], "sip:alice2@x.example");
    // The prefix route is not a number: it stays, and routes numbers under it.
    ok(server.api("GET", "/v1/prefixes/+4416329700", "", b""));
    assert!(served(&server, "+441632970055"));

    // The same after a restart: the store holds what is served.
    let mut server = server;
    server.restart();
    assert_eq!(listed(&server), ["+441632960000", "+441632960020"]);
}

#[test]
fn merge_deletes_by_csv_and_ndjson_lines() {
    let server = start();
    let csv = "number,uri\n+441632960000,\n+441632960030,sip:c@x.example\n";
    let v = ok(import(&server, "?mode=merge", "text/csv", csv));
    assert_eq!(
        (v["numbers"].as_u64(), v["deleted"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert!(!served(&server, "+441632960000"));
    assert_eq!(listed(&server), ["+441632960001", "+441632960030"]);

    let nd = "{\"number\":\"+441632960001\",\"delete\":true}\n\
              {\"number\":\"+441632960099\",\"delete\":true}\n\
              {\"number\":\"+441632960031\",\"routes\":[{\"uri\":\"sip:d@x.example\"}]}\n";
    let v = ok(import(&server, "", "application/x-ndjson", nd));
    assert_eq!(
        (v["numbers"].as_u64(), v["deleted"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let warning = v["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("line 2: +441632960099 has no routes"),
        "{warning}"
    );
    assert_eq!(listed(&server), ["+441632960030", "+441632960031"]);

    // A number cannot be both deleted and routed in one upload.
    let both = "number,uri\n+441632960030,\n+441632960030,sip:e@x.example\n";
    let v = refused(import(&server, "", "text/csv", both), 422);
    assert_eq!(
        (
            v["errors"][0]["line"].as_u64(),
            v["errors"][0]["field"].as_str()
        ),
        (Some(3), Some("uri"))
    );
    // PUT bodies do not delete.
    let put = server.put_number("+441632960030", r#"{"delete":true}"#);
    assert_eq!(put.status, 422, "{}", put.text());
    assert_eq!(listed(&server), ["+441632960030", "+441632960031"]);
}

#[test]
fn replace_checks_its_zone_and_an_empty_replace_empties_it() {
    let server = start();
    let serial = soa_serial(server.dns, ORIGIN).unwrap();
    let at = |v: &serde_json::Value| {
        (
            v["errors"][0]["field"].as_str().map(str::to_string),
            v["errors"][0]["line"].as_u64(),
        )
    };
    let v = refused(
        import(&server, "?mode=sideways", "text/csv", "number,uri\n"),
        422,
    );
    assert_eq!(at(&v), (Some("mode".into()), None));
    // A merge import for a zone: every number must fall in it.
    let v = refused(
        import(
            &server,
            &format!("?zone={ORIGIN}"),
            "text/csv",
            "number,uri\n+4930123,sip:b@x.example\n",
        ),
        422,
    );
    assert_eq!(at(&v), (Some("number".into()), Some(2)), "{v}");
    let v = refused(
        import(&server, "?mode=replace", "text/csv", "number,uri\n"),
        422,
    );
    assert_eq!(
        at(&v),
        (Some("zone".into()), None),
        "an empty replace names no zone"
    );
    let v = refused(
        import(
            &server,
            "?mode=replace&zone=9.9.e164.arpa.",
            "text/csv",
            "number,uri\n",
        ),
        422,
    );
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no zone"),
        "{v}"
    );
    let outside = "number,uri\n+441632960000,sip:a@x.example\n+4930123,sip:b@x.example\n";
    let v = refused(
        import(
            &server,
            &format!("?mode=replace&zone={ORIGIN}"),
            "text/csv",
            outside,
        ),
        422,
    );
    assert_eq!(at(&v).1, Some(3), "{v}");
    let delete_line = "{\"number\":\"+441632960000\",\"delete\":true}\n";
    let v = refused(
        import(
            &server,
            &format!("?mode=replace&zone={ORIGIN}"),
            "application/x-ndjson",
            delete_line,
        ),
        422,
    );
    assert_eq!(at(&v).1, Some(1), "{v}");
    assert_eq!(
        soa_serial(server.dns, ORIGIN),
        Some(serial),
        "nothing changed"
    );
    assert_eq!(listed(&server), ["+441632960000", "+441632960001"]);

    // Named, an empty upload empties the zone's numbers (the zone itself stays).
    let v = ok(import(
        &server,
        "?mode=replace&zone=2.3.6.1.4.4.e164.arpa",
        "text/csv",
        "number,uri\n",
    ));
    assert_eq!(
        (v["numbers"].as_u64(), v["deleted"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );
    assert!(listed(&server).is_empty());
    assert_eq!(soa_serial(server.dns, ORIGIN), Some(serial + 1));
}

/// Sends the start of an import whose headers promise `promised` bytes, and the
/// `lines`, but not the rest of the body.
fn partial_upload(server: &Enroute, promised: usize, lines: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    let mut body = String::from("number,uri\n");
    for i in 0..lines {
        body.push_str(&format!("+4416329{i:05},sip:cut{i}@x.example\n"));
    }
    let head = format!(
        "POST /v1/numbers:import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\nContent-Length: {promised}\r\n\r\n",
        server.token()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    s.flush().unwrap();
    s
}

#[test]
fn an_upload_cut_off_by_the_client_or_a_sigkill_commits_nothing() {
    let mut server = start();
    let serial = soa_serial(server.dns, ORIGIN).unwrap();
    let conn = partial_upload(&server, 10_000_000, 5_000);
    std::thread::sleep(Duration::from_millis(300));
    drop(conn);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(soa_serial(server.dns, ORIGIN), Some(serial));
    assert_eq!(listed(&server), ["+441632960000", "+441632960001"]);
    // The next import is not held up by the one that went away.
    let v = ok(import(
        &server,
        "",
        "text/csv",
        "number,uri\n+441632960040,sip:f@x.example\n",
    ));
    assert_eq!(v["numbers"].as_u64(), Some(1));
    let serial = serial + 1;

    let _conn = partial_upload(&server, 10_000_000, 5_000);
    std::thread::sleep(Duration::from_millis(300));
    let _ = server.child.kill();
    let _ = server.child.wait();
    server.restart();
    assert_eq!(soa_serial(server.dns, ORIGIN), Some(serial));
    assert_eq!(
        listed(&server),
        ["+441632960000", "+441632960001", "+441632960040"]
    );
}

#[test]
fn a_misspelt_parameter_an_unknown_zone_and_an_open_quote_are_refused() {
    let server = start();
    let v = refused(import(&server, "?zoen=x", "text/csv", "number,uri\n"), 422);
    assert_eq!(v["errors"][0]["field"], "zoen", "{v}");
    let v = refused(
        import(&server, "?zone=9.9.e164.arpa.", "text/csv", "number,uri\n"),
        422,
    );
    assert!(v["detail"].as_str().unwrap().contains("no zone"), "{v}");
    // A quote left open would make the rest of the upload one field.
    let open = "number,uri\n+441632960060,sip:a@x.example\n+441632960061,\"sip:b@x.example\n+441632960062,sip:c@x.example\n";
    let v = refused(import(&server, "", "text/csv", open), 422);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 3: a quoted field"),
        "{v}"
    );
    assert!(!served(&server, "+441632960060"));
    // A byte-order mark before the header (spreadsheets write one) is not a column.
    let bom = "\u{feff}number,uri\n+441632960063,sip:d@x.example\n";
    let v = ok(import(&server, "", "text/csv", bom));
    assert_eq!(v["numbers"].as_u64(), Some(1), "{v}");
}

#[test]
fn a_refusal_before_the_end_of_a_large_upload_is_answered_after_it() {
    let server = start();
    // A bad header: the parser stops at once, the server reads the rest of the body
    // and answers, so a client that writes its whole body first gets the answer.
    let mut body = String::from("number,url\n");
    while body.len() < 8 << 20 {
        body.push_str("+441632960070,sip:e@x.example\n");
    }
    let v = refused(import(&server, "", "text/csv", &body), 422);
    assert_eq!(v["errors"][0]["field"], "url", "{v}");
}

#[test]
fn a_line_without_end_is_refused_naming_it() {
    let server = start();
    let mut body = String::from("number,uri\n+441632960050,sip:g@x.example\n");
    body.push_str(&"x".repeat(1_100_000));
    let v = refused(import(&server, "", "text/csv", &body), 413);
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.starts_with("line 3: longer than"), "{detail}");
    assert!(!served(&server, "+441632960050"));
}

/// Streams an import of `lines` CSV lines (chunked), with `bad` at line `bad_at`
/// (counting the header as line 1), and returns the answer.
fn stream_import(server: &Enroute, lines: usize, bad_at: usize, bad: &str) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    let head = format!(
        "POST /v1/numbers:import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.token()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut chunk = String::from("number,uri\n");
    let send = |chunk: &mut String, s: &mut TcpStream| {
        let _ = write!(s, "{:x}\r\n{chunk}\r\n", chunk.len());
        chunk.clear();
    };
    for line in 2..=lines {
        if line == bad_at {
            chunk.push_str(bad);
            chunk.push('\n');
        } else {
            chunk.push_str(&format!(
                "+441632{:08},sip:u@h.example\n",
                10_000_000 + line
            ));
        }
        if chunk.len() > 60_000 {
            send(&mut chunk, &mut s);
        }
    }
    send(&mut chunk, &mut s);
    let _ = s.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // The answer is small: its body is the last chunk's or the whole of it.
    let json = body
        .find('{')
        .map(|i| &body[i..body.rfind('}').unwrap() + 1])
        .unwrap_or("");
    HttpResponse {
        status,
        headers: Vec::new(),
        body: json.as_bytes().to_vec(),
    }
}

#[test]
fn a_bad_line_ten_million_lines_in_is_named_and_nothing_is_committed() {
    let server = start();
    let serial = soa_serial(server.dns, ORIGIN).unwrap();
    let r = stream_import(&server, 10_000_000, 9_999_999, "+44163x,sip:bad@h.example");
    let v = refused(r, 422);
    assert_eq!(v["errors"][0]["line"].as_u64(), Some(9_999_999), "{v}");
    assert_eq!(v["total_errors"].as_u64(), Some(1), "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 9999999: number:"),
        "{v}"
    );
    assert_eq!(soa_serial(server.dns, ORIGIN), Some(serial));
    assert_eq!(listed(&server), ["+441632960000", "+441632960001"]);
}
