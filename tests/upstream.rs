//! Upstream ENUM over DNS (SPEC §5) against a real Knot DNS on loopback serving two
//! test ENUM trees (`e164.test.`, `e164.example.`): the suffix chain, DDDS over the wire,
//! failure policies (a socket that never answers, Knot's SERVFAIL for a zone it could
//! not load), the decision cache (hits with Knot stopped, negative caching and its
//! expiry, short TTLs), one lookup for many concurrent INVITEs, and SIP's 100 Trying,
//! CANCEL/487 and retransmissions while a lookup runs.

mod common;
#[path = "common/ddds_cases.rs"]
mod ddds_cases;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

const SOA: &str = "@ SOA ns h 1 3600 900 604800 2\n@ NS ns\nns A 127.0.0.1\n";

fn test_tree() -> String {
    format!(
        "$ORIGIN e164.test.\n$TTL 60\n{SOA}\
         2.0.0.0.6.9.2.3.6.1.4.4 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:first@a.example!\" .\n\
         2.0.0.0.6.9.2.3.6.1.4.4 NAPTR 100 20 \"u\" \"E2U+sip\" \"!^.*$!sip:second@b.example!\" .\n\
         2.0.0.0.6.9.2.3.6.1.4.4 NAPTR 200 10 \"u\" \"E2U+sip\" \"!^.*$!sip:never@c.example!\" .\n\
         3.0.0.0.6.9.2.3.6.1.4.4 NAPTR 10 10 \"u\" \"E2U+sip\" \"!^\\\\+44(.*)$!sip:0\\\\1@pbx.example!\" .\n\
         4.0.0.0.6.9.2.3.6.1.4.4 NAPTR 10 10 \"\" \"E2U+sip\" \"\" pool.e164.example.\n\
         5.0.0.0.6.9.2.3.6.1.4.4 1 NAPTR 10 10 \"u\" \"E2U+sip\" \"!^.*$!sip:old@ttl.example!\" .\n"
    )
}

fn example_tree(extra: &str) -> String {
    format!(
        "$ORIGIN e164.example.\n$TTL 60\n{SOA}\
         1.0.0.0.6.9.2.3.6.1.4.4 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:second-suffix@example.net!\" .\n\
         pool NAPTR 100 10 \"u\" \"E2U+sip\" \"!^\\\\+(.*)$!sip:\\\\1@pool.example!\" .\n{extra}"
    )
}

fn knot() -> common::Knot {
    common::Knot::start_with(
        &[
            ("e164.test.", &test_tree()),
            ("e164.example.", &example_tree("")),
        ],
        &["e164.broken."],
    )
}

/// `enroute route --json` with `config` (TOML) in a temp dir.
fn route(config: &str, number: &str) -> (i32, serde_json::Value, Duration) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.toml"), config).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["route", "--json", "--config", "e.toml", number])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v, took)
}

use common::json_contacts as contacts;

fn upstream_results(v: &serde_json::Value) -> Vec<(String, String)> {
    v["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "lookup" && s["via"] == "upstream")
        .map(|s| {
            (
                s["suffix"].as_str().unwrap().to_string(),
                s["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn config(nameserver: u16, suffixes: &str, extra: &str) -> String {
    format!(
        "[enum]\nsuffixes = [{suffixes}]\nnameservers = [\"127.0.0.1:{nameserver}\"]\ntimeout_ms = 400\n{extra}"
    )
}

/// `e164.test.` through one server with a whole-lookup budget of `timeout_ms`.
fn one_server(port: u16, timeout_ms: u32) -> String {
    format!(
        "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = {timeout_ms}\n"
    )
}

const TWO: &str = "\"e164.test.\", \"e164.example.\"";
const GATEWAY: &str = "[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{e164}@gw.example.net\"]\n";

#[test]
fn suffix_chain_and_ddds_over_the_wire() {
    let knot = knot();
    let cfg = config(knot.port, TWO, "");

    // NXDOMAIN under the first suffix, answered by the second
    let (code, v, _) = route(&cfg, "+441632960001");
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        contacts(&v),
        [("sip:second-suffix@example.net".into(), 1.0)]
    );
    assert_eq!(
        (v["source"].as_str(), v["suffix"].as_str()),
        (Some("upstream"), Some("e164.example."))
    );
    assert_eq!(
        upstream_results(&v),
        [
            ("e164.test.".into(), "nxdomain".into()),
            ("e164.example.".into(), "answer".into())
        ]
    );
    assert_eq!(v["trace"][0]["step"], "cache");
    assert_eq!(v["trace"][0]["result"], "miss");

    // order cut-off and preference ranking, first suffix wins
    let (_, v, _) = route(&cfg, "+441632960002");
    assert_eq!(
        contacts(&v),
        [
            ("sip:first@a.example".into(), 1.0),
            ("sip:second@b.example".into(), 0.9)
        ]
    );
    assert_eq!(v["suffix"], "e164.test.");
    assert_eq!(v["ttl"], 60);

    // back-reference
    let (_, v, _) = route(&cfg, "+441632960003");
    assert_eq!(contacts(&v), [("sip:01632960003@pbx.example".into(), 1.0)]);

    // a non-terminal from one upstream tree into the other
    let (_, v, _) = route(&cfg, "+441632960004");
    assert_eq!(
        contacts(&v),
        [("sip:441632960004@pool.example".into(), 1.0)]
    );

    // absent from both trees, no gateway: 404 after two NXDOMAINs
    let (code, v, _) = route(&cfg, "+441632969999");
    assert_eq!((code, v["status"].as_u64()), (1, Some(404)));
    assert_eq!(
        upstream_results(&v),
        [
            ("e164.test.".into(), "nxdomain".into()),
            ("e164.example.".into(), "nxdomain".into())
        ]
    );
}

#[test]
fn failure_policies_for_timeout_and_servfail() {
    let knot = knot();
    let dead = common::CountingRelay::start(None);
    for (name, port, suffixes, result) in [
        ("timeout", dead.port, "\"e164.test.\"", "timeout"),
        ("servfail", knot.port, "\"e164.broken.\"", "servfail"),
    ] {
        // on_failure = gateway (the default): the gateway answers
        let cfg = config(port, suffixes, GATEWAY);
        let (code, v, took) = route(&cfg, "+441632960002");
        assert_eq!((code, v["status"].as_u64()), (0, Some(302)), "{name}: {v}");
        assert_eq!(v["source"], "gateway", "{name}");
        assert_eq!(upstream_results(&v)[0].1, result, "{name}: {v}");
        assert!(took < Duration::from_secs(3), "{name}: {took:?}");
        // on_failure = reject: 503
        let cfg = config(
            port,
            suffixes,
            &format!("on_failure = \"reject\"\n{GATEWAY}"),
        );
        let (code, v, _) = route(&cfg, "+441632960002");
        assert_eq!((code, v["status"].as_u64()), (1, Some(503)), "{name}: {v}");
        // NXDOMAIN is not a failure: with the same policy an absent number gets 404
    }
    assert!(dead.count() > 0, "the dead upstream was asked");

    // servers in order with a retry each, within one time budget: a dead first server
    // costs two tries, then the second answers
    let before = dead.count();
    let cfg = format!(
        "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\ntimeout_ms = 1200\n",
        dead.port, knot.port
    );
    let (code, v, took) = route(&cfg, "+441632960002");
    assert_eq!(
        (code, contacts(&v)[0].0.as_str()),
        (0, "sip:first@a.example"),
        "{v}"
    );
    assert_eq!(dead.count() - before, 2, "two tries at the first server");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let cfg = config(knot.port, TWO, "on_failure = \"reject\"\n");
    let (_, v, _) = route(&cfg, "+441632969999");
    assert_eq!(v["status"], 404, "{v}");
}

/// A slow but working server: a UDP relay that holds every query `delay` before
/// forwarding it to `target` (Knot), then relays the answer back at once. With `forge`
/// it first answers each query at once itself, with the query's ID but for another
/// name (an off-path spoof that guessed the ID). Counts the queries; stops with the
/// guard.
struct DelayRelay {
    port: u16,
    queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayRelay {
    fn start(target: u16, delay: Duration, forge: bool) -> DelayRelay {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let queries = std::sync::Arc::new(AtomicUsize::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (q, st) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], target));
            // (when to forward, the query); query ID -> client, for the answers
            let mut held: std::collections::VecDeque<(Instant, Vec<u8>)> = Default::default();
            let mut clients = std::collections::HashMap::new();
            let mut buf = vec![0u8; 65535];
            while !st.load(Ordering::Relaxed) {
                while held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
                    let (_, query) = held.pop_front().unwrap();
                    let _ = sock.send_to(&query, upstream);
                }
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                if from == upstream {
                    if let Some(client) = clients.remove(&id) {
                        let _ = sock.send_to(&buf[..n], client);
                    }
                } else {
                    q.fetch_add(1, Ordering::Relaxed);
                    clients.insert(id, from);
                    if forge {
                        // QR set, first digit label of the question changed.
                        let mut r = buf[..n].to_vec();
                        r[2] |= 0x80;
                        if let Some(p) = r[12..].iter().position(|b| b.is_ascii_digit()) {
                            r[12 + p] = if r[12 + p] == b'9' { b'8' } else { b'9' };
                        }
                        let _ = sock.send_to(&r, from);
                    }
                    held.push_back((Instant::now() + delay, buf[..n].to_vec()));
                }
            }
        });
        DelayRelay {
            port,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server that answers in 600 ms with `timeout_ms = 1000` is an answer, not a failure:
/// the first try's answer arrives after the retry went out (to the same server, or to
/// the next one) and is taken, as the answer to any outstanding try of the lookup is.
#[test]
fn slow_server_answers_after_the_retry_went_out() {
    let knot = knot();
    let slow = DelayRelay::start(knot.port, Duration::from_millis(600), false);
    let dead = common::CountingRelay::start(None);
    let reject = "on_failure = \"reject\"\n";
    for (what, servers, tries) in [
        ("one slow server", format!("\"127.0.0.1:{}\"", slow.port), 2),
        (
            "a slow server, then a dead one",
            format!("\"127.0.0.1:{}\", \"127.0.0.1:{}\"", slow.port, dead.port),
            2,
        ),
    ] {
        let before = slow.count();
        let cfg = format!(
            "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [{servers}]\ntimeout_ms = 1000\n{reject}"
        );
        let (code, v, took) = route(&cfg, "+441632960002");
        assert_eq!((code, v["status"].as_u64()), (0, Some(302)), "{what}: {v}");
        assert_eq!(v["source"], "upstream", "{what}: {v}");
        assert_eq!(contacts(&v)[0].0, "sip:first@a.example", "{what}: {v}");
        assert_eq!(
            upstream_results(&v),
            [("e164.test.".into(), "answer".into())],
            "{what}: {v}"
        );
        assert_eq!(
            slow.count() - before,
            tries,
            "{what}: tries at the slow server"
        );
        assert!(took < Duration::from_millis(1500), "{what}: {took:?}");
    }
    assert!(dead.count() > 0, "the next server was tried meanwhile");

    // A forged answer (the try's ID, another question) arriving first is dropped and
    // leaves the try outstanding: the real answer still wins.
    let forging = DelayRelay::start(knot.port, Duration::from_millis(100), true);
    let cfg = format!(
        "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_ms = 1000\n{reject}",
        forging.port
    );
    let (code, v, _) = route(&cfg, "+441632960002");
    assert_eq!(
        (code, v["status"].as_u64()),
        (0, Some(302)),
        "forged first: {v}"
    );
    assert_eq!(
        contacts(&v)[0].0,
        "sip:first@a.example",
        "forged first: {v}"
    );
    assert_eq!(
        forging.count(),
        1,
        "one try: the forged answer ended nothing"
    );
}

/// An answer too large for UDP (40 NAPTRs, over the 1232-byte EDNS size) comes back
/// truncated from Knot and is fetched again over TCP from the same server.
#[test]
fn truncated_upstream_answer_is_fetched_over_tcp() {
    let mut zone = format!("$ORIGIN e164.test.\n$TTL 60\n{SOA}");
    for i in 0..40 {
        zone.push_str(&format!(
            "2.0.0.0.6.9.2.3.6.1.4.4 NAPTR 100 {} \"u\" \"E2U+sip\" \"!^.*$!sip:r{i:02}@a-rather-long-host-name.example!\" .\n",
            10 + i
        ));
    }
    let knot = common::Knot::start(&[("e164.test.", &zone)]);
    let cfg = format!("{}on_failure = \"reject\"\n", one_server(knot.port, 1000));
    let (code, v, _) = route(&cfg, "+441632960002");
    assert_eq!((code, v["status"].as_u64()), (0, Some(302)), "{v}");
    assert_eq!(
        upstream_results(&v),
        [("e164.test.".into(), "answer".into())],
        "{v}"
    );
    let got = contacts(&v);
    assert_eq!(got.len(), 10, "sip.max_contacts of 40 records: {v}");
    assert_eq!(got[0].0, "sip:r00@a-rather-long-host-name.example", "{v}");
}

/// A SIP client on UDP that speaks in calls: INVITE, ACK, CANCEL for a number.
struct Sip {
    client: common::SipUdp,
}

impl Sip {
    fn new(server: u16) -> Sip {
        Sip {
            client: common::SipUdp::new(server, Duration::from_millis(3000)),
        }
    }
    fn send(&self, method: &str, number: &str, branch: &str) {
        let port = self.client.port();
        self.client.send(&format!(
            "{method} sip:{number}@example.net SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:caller@example.org>;tag=f{branch}\r\n\
             To: <sip:{number}@example.net>\r\n\
             Call-ID: {branch}@example.org\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        ));
    }
    fn recv(&self) -> Option<String> {
        self.client.recv()
    }
    /// Sends an INVITE; returns every answer up to the final one, and the time it took.
    fn invite(&self, number: &str, branch: &str) -> (Vec<String>, Duration) {
        let started = Instant::now();
        self.send("INVITE", number, branch);
        let mut got = Vec::new();
        while let Some(r) = self.recv() {
            let provisional = r.starts_with("SIP/2.0 1");
            got.push(r);
            if !provisional {
                // Acknowledged, so that Timer G retransmissions do not follow.
                self.send("ACK", number, branch);
                break;
            }
        }
        (got, started.elapsed())
    }
}

use common::sip_status as status;

fn statuses(rs: &[String]) -> Vec<u16> {
    rs.iter().map(|r| status(r)).collect()
}

const LOCAL_ZONE: &str = "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 300\n\
    @ SOA ns.example. h.example. 1 3600 900 604800 60\n\
    1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:local@pbx.example.net!\" .\n";

#[test]
fn sip_cache_hit_negative_caching_and_short_ttl() {
    let knot = knot();
    let server = common::Enroute::start(LOCAL_ZONE, &config(knot.port, TWO, ""));
    let c = Sip::new(server.sip_udp);

    // a miss: 100 Trying, then the 302 from upstream
    let (r, _) = c.invite("+441632960002", "m1");
    assert_eq!(statuses(&r), [100, 302], "{r:?}");
    assert!(
        r[1].contains("Contact: <sip:first@a.example>;q=1.0"),
        "{}",
        r[1]
    );

    // a negative answer (NXDOMAIN, SOA minimum 2 s) is cached: the record added in
    // Knot is not seen at once, and is seen once the negative TTL has passed
    let (r, _) = c.invite("+441632960009", "n1");
    assert_eq!(statuses(&r), [100, 404], "{r:?}");
    knot.replace_zone(
        1,
        "e164.example.",
        &example_tree(
            "9.0.0.0.6.9.2.3.6.1.4.4 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:late@example.net!\" .\n",
        )
        .replace("SOA ns h 1 ", "SOA ns h 2 "),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (r, _) = c.invite("+441632960009", "n2");
    assert_eq!(
        statuses(&r),
        [404],
        "cached negative answer, no lookup: {r:?}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (r, _) = c.invite("+441632960009", "n3");
    assert_eq!(statuses(&r), [100, 302], "negative TTL over: {r:?}");
    assert!(r[1].contains("sip:late@example.net"));

    // a short TTL (1 s): a change in Knot is seen after it
    let (r, _) = c.invite("+441632960005", "t1");
    assert!(r.last().unwrap().contains("sip:old@ttl.example"), "{r:?}");
    knot.replace_zone(
        0,
        "e164.test.",
        &test_tree()
            .replace("sip:old@ttl.example", "sip:new@ttl.example")
            .replace("SOA ns h 1 ", "SOA ns h 2 "),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (r, _) = c.invite("+441632960005", "t2");
    assert!(r.last().unwrap().contains("sip:new@ttl.example"), "{r:?}");

    // Knot stopped: the cached number still routes, at once and without 100 Trying
    drop(knot);
    let (r, took) = c.invite("+441632960002", "m2");
    assert_eq!(statuses(&r), [302], "{r:?}");
    assert!(r[0].contains("Contact: <sip:first@a.example>;q=1.0"));
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn one_lookup_for_100_concurrent_invites() {
    let knot = knot();
    let relay = common::CountingRelay::start(Some(knot.port));
    // A budget long enough that a loaded machine's slow answer is not tried again (a
    // second try is one more query, and not what this test is about).
    let cfg = config(relay.port, TWO, "").replace("timeout_ms = 400", "timeout_ms = 6000");
    let server = common::Enroute::start(LOCAL_ZONE, &cfg);
    let clients: Vec<Sip> = (0..100).map(|_| Sip::new(server.sip_udp)).collect();
    for (i, c) in clients.iter().enumerate() {
        c.send("INVITE", "+441632960003", &format!("c{i}"));
    }
    for (i, c) in clients.iter().enumerate() {
        let mut last = String::new();
        while let Some(r) = c.recv() {
            last = r;
            if !last.starts_with("SIP/2.0 1") {
                break;
            }
        }
        assert_eq!(status(&last), 302, "client {i}: {last}");
        assert!(last.contains("sip:01632960003@pbx.example"));
    }
    assert_eq!(
        relay.count(),
        1,
        "one NAPTR query for 100 INVITEs of one number"
    );
}

#[test]
fn dead_upstream_keeps_local_answers_fast_and_cancel_ends_the_invite() {
    let dead = common::CountingRelay::start(None);
    let server = common::Enroute::start(LOCAL_ZONE, &one_server(dead.port, 3000));
    let waiting = Sip::new(server.sip_udp);
    // an INVITE whose lookup hangs: 100 Trying at once
    waiting.send("INVITE", "+441632960002", "w1");
    let r = waiting.recv().expect("100 Trying");
    assert_eq!(status(&r), 100, "{r}");
    // its retransmission gets 100 again and starts no second lookup
    std::thread::sleep(Duration::from_millis(200));
    waiting.send("INVITE", "+441632960002", "w1");
    assert_eq!(status(&waiting.recv().unwrap()), 100);

    // meanwhile local numbers answer at once
    let local = Sip::new(server.sip_udp);
    for i in 0..20 {
        let (r, took) = local.invite("+441632960001", &format!("l{i}"));
        assert_eq!(statuses(&r), [302], "{r:?}");
        assert!(
            took < Duration::from_millis(100),
            "local answer took {took:?}"
        );
    }
    assert_eq!(
        dead.count(),
        1,
        "one query for the INVITE and its retransmission"
    );

    // CANCEL before the answer: 200 for the CANCEL, 487 for the INVITE
    waiting.send("CANCEL", "+441632960002", "w1");
    let mut got = vec![waiting.recv().unwrap(), waiting.recv().unwrap()];
    got.sort_by_key(|r| r.contains("CSeq: 1 CANCEL"));
    assert_eq!(status(&got[0]), 487, "{got:?}");
    assert!(got[0].contains("CSeq: 1 INVITE"));
    assert!(got[0].contains("To: <sip:+441632960002@example.net>;tag="));
    assert_eq!(status(&got[1]), 200, "{got:?}");
    // the lookup's end (timeout) sends nothing more for the cancelled INVITE
    waiting.send("ACK", "+441632960002", "w1");
    std::thread::sleep(Duration::from_millis(3200));
    waiting
        .client
        .sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        waiting.recv().is_none(),
        "no answer after the 487 was acknowledged"
    );
}

/// The DDDS tables of the routing-core tests, served by Knot: each case under its own
/// suffix (`rN.e164.test.`, `sN.e164.test.`) so that the application unique string is
/// the same `+441632960001` as in-process.
#[test]
fn ddds_tables_over_the_wire() {
    let esc = |t: &str| t.replace('\\', "\\\\").replace('"', "\\\"");
    let mut zone = format!("$ORIGIN e164.test.\n$TTL 60\n{SOA}");
    let mut cases: Vec<(String, Option<&str>, Option<&str>, String)> = Vec::new();
    for (i, (regexp, want, reason)) in ddds_cases::REGEXP_FORMS.iter().enumerate() {
        zone.push_str(&format!(
            "1.0.0.0.6.9.2.3.6.1.4.4.r{i} NAPTR 100 10 \"u\" \"E2U+sip\" \"{}\" .\n",
            esc(regexp)
        ));
        cases.push((format!("r{i}"), *want, *reason, format!("regexp {regexp}")));
    }
    for (i, (svc, regexp, want, reason)) in ddds_cases::SERVICE_MATCHING.iter().enumerate() {
        zone.push_str(&format!(
            "1.0.0.0.6.9.2.3.6.1.4.4.s{i} NAPTR 100 10 \"u\" \"{}\" \"{}\" .\n",
            esc(svc),
            esc(regexp)
        ));
        cases.push((format!("s{i}"), *want, *reason, format!("service {svc:?}")));
    }
    let knot = common::Knot::start(&[("e164.test.", &zone)]);
    let gateway = "[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{e164}@gw.example.net;user=phone\"]\n\
                   [enum]\nservices = [\"E2U+sip\", \"E2U+pstn:tel\", \"E2U+pstn:sip\"]\n";
    for (label, want, reason, what) in cases {
        let cfg = format!(
            "{gateway}suffixes = [\"{label}.e164.test.\"]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_ms = 1000\n",
            knot.port
        );
        let (_, v, _) = route(&cfg, "+441632960001");
        assert_eq!(
            upstream_results(&v),
            [(format!("{label}.e164.test."), "answer".to_string())],
            "{what}: {v}"
        );
        let got = contacts(&v);
        match want {
            Some(w) => assert_eq!(got[0].0, w, "{what}: {v}"),
            None => {
                // skipped, counted by reason; the number falls back to the gateway
                let outcomes: Vec<&str> = v["trace"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["step"] == "record")
                    .map(|s| s["outcome"].as_str().unwrap())
                    .collect();
                assert_eq!(outcomes, [reason.unwrap()], "{what}: {v}");
                assert_eq!(v["source"], "gateway", "{what}");
            }
        }
    }
}

/// Not-found answers and failures are counted apart (the metrics issue exports them).
#[test]
fn upstream_results_are_counted_apart() {
    let knot = knot();
    let dead = common::CountingRelay::start(None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (port, number, result) in [
        (knot.port, "+441632969999", "nxdomain"),
        (knot.port, "+441632960002", "answer"),
        (dead.port, "+441632960002", "timeout"),
    ] {
        let text = config(port, "\"e164.test.\"", "");
        let cfg = enroute::config::Config::parse(&text, "e.toml", std::path::Path::new("."), None)
            .unwrap();
        let router = enroute::resolve::Router::new(
            &cfg,
            std::sync::Arc::new(enroute::zone::ZoneSet::new(vec![])),
        );
        rt.block_on(router.route_full(number, false));
        let stats = router.stats();
        for r in enroute::resolve::UPSTREAM_RESULTS {
            let want = u64::from(r == result);
            assert_eq!(stats.upstream(r), want, "{number} via {port}: {r}");
        }
    }
}

/// SIGTERM while INVITEs wait on DNS: they get 503 with Retry-After, not silence.
#[test]
fn shutdown_answers_pending_invites_with_503() {
    let dead = common::CountingRelay::start(None);
    let mut server = common::Enroute::start(LOCAL_ZONE, &one_server(dead.port, 5000));
    let c = Sip::new(server.sip_udp);
    c.send("INVITE", "+441632960002", "s1");
    assert_eq!(status(&c.recv().expect("100 Trying")), 100);
    let pid = server.pid().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let r = c.recv().expect("an answer before the server exits");
    assert_eq!(status(&r), 503, "{r}");
    assert!(r.contains("Retry-After: 5\r\n"), "{r}");
    assert!(r.contains("CSeq: 1 INVITE"));
    assert!(server.child.wait().unwrap().success());
}

/// Upstream answers are hostile input too: garbage, wrong IDs, answers to other
/// questions, cut-off messages and truncated answers with no TCP behind them must end as
/// failures (the gateway policy answers), never a panic or a wrong route.
#[test]
fn hostile_upstream_answers_are_failures() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (m, st) = (mode.clone(), stop.clone());
    let server = std::thread::spawn(move || {
        use std::sync::atomic::Ordering;
        let mut buf = [0u8; 4096];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        while !st.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let q = &buf[..n];
            let mut reply: Vec<u8> = match m.load(Ordering::Relaxed) {
                // random bytes
                0 => (0..64)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect(),
                // the query echoed as a response, but with another ID
                1 => {
                    let mut r = q.to_vec();
                    r[0] ^= 0xff;
                    r[2] |= 0x80;
                    r
                }
                // the right ID, a response to another question
                2 => {
                    let mut r = q.to_vec();
                    r[2] |= 0x80;
                    if let Some(p) = r.iter().position(|b| *b == b'1') {
                        r[p] = b'7';
                    }
                    r
                }
                // the right ID and a header promising a question that is not there
                3 => {
                    let mut r = q[..12].to_vec();
                    r[2] |= 0x80;
                    r
                }
                // truncated (TC), and no TCP listener behind it
                _ => {
                    let mut r = q.to_vec();
                    r[2] |= 0x82;
                    r
                }
            };
            reply.truncate(512);
            let _ = sock.send_to(&reply, from);
        }
    });
    for variant in 0..5 {
        mode.store(variant, std::sync::atomic::Ordering::Relaxed);
        let cfg = config(port, "\"e164.test.\"", GATEWAY);
        let (code, v, took) = route(&cfg, "+441632960002");
        assert_eq!(
            (code, v["source"].as_str()),
            (0, Some("gateway")),
            "variant {variant}: {v}"
        );
        let results = upstream_results(&v);
        assert_eq!(results.len(), 1, "variant {variant}: {v}");
        assert_ne!(results[0].1, "answer", "variant {variant}: {v}");
        assert!(took < Duration::from_secs(3), "variant {variant}: {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
}
