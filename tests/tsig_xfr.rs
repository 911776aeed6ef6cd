//! TSIG on `enroute serve` end to end (SPEC §12, RFC 8945), with real Knot peers: Knot
//! as a keyed secondary of enroute (signed AXFR then IXFR, signed NOTIFY accepted by
//! Knot's key ACL, hmac-sha256 and hmac-sha512), enroute as a keyed secondary of Knot
//! (signed transfers, Knot's signed NOTIFY followed by IXFR), transfer requests the
//! primary refuses (unsigned, unknown key, wrong secret, old time, another configured
//! key) with their answers and counters, NOTIFYs a keyed secondary refuses, a primary
//! whose secret differs (Knot) or whose answers are badly signed (a fake primary), and
//! configurations naming keys that do not exist.

mod common;

use common::{
    Enroute, Knot, free_port, parse_unsigned, rcode, read_raw, record_lines, soa_serial, udp_ask,
    wait_serial,
};
use enroute::config::{TsigAlgorithm, TsigKey};
use enroute::dns::tsig::{self, StreamVerifier, TsigFailure};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::TcpStream;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";
const KEY: &str = "xfr-key.";
const SECRET_256: &str = "Wm9vbSBab29tIFRTSUcgdGVzdCBrZXkgZm9yIHNoYTI1Ng==";
const SECRET_512: &str =
    "c2hhNTEyIGtleSBmb3IgdGhlIGVucm91dGUgVFNJRyB0ZXN0cyAtIHNvbWUgbW9yZSBieXRlcw==";
/// A secret neither side was configured with.
const WRONG_SECRET: &str = "bm90IHRoZSBzZWNyZXQgYW55b25lIHdhcyBnaXZlbiAhIQ==";

const RCODE_NOERROR: u8 = 0;
const RCODE_REFUSED: u8 = 5;
const RCODE_NOTAUTH: u8 = 9;
const BADSIG: u16 = 16;
const BADKEY: u16 = 17;
const BADTIME: u16 = 18;

/// One algorithm and the secret the tests give it.
#[derive(Clone, Copy, Debug)]
struct Alg {
    name: &'static str,
    algorithm: TsigAlgorithm,
    secret: &'static str,
}

const SHA256: Alg = Alg {
    name: "hmac-sha256",
    algorithm: TsigAlgorithm::HmacSha256,
    secret: SECRET_256,
};
const SHA512: Alg = Alg {
    name: "hmac-sha512",
    algorithm: TsigAlgorithm::HmacSha512,
    secret: SECRET_512,
};

fn key(name: &str, alg: Alg, secret_b64: &str) -> TsigKey {
    use base64::Engine;
    TsigKey {
        name: enroute::name::Name::from_text(name).unwrap(),
        algorithm: alg.algorithm,
        secret: base64::engine::general_purpose::STANDARD
            .decode(secret_b64)
            .unwrap(),
    }
}

/// The key both sides share.
fn shared(alg: Alg) -> TsigKey {
    key(KEY, alg, alg.secret)
}

/// A `[[tsig]]` entry.
fn tsig_toml(name: &str, alg: Alg, secret: &str) -> String {
    format!(
        "[[tsig]]\nname = \"{name}\"\nalgorithm = \"{}\"\nsecret = \"{secret}\"\n",
        alg.name
    )
}

/// Knot's `key:` section for the shared key (with `secret` as its secret).
fn knot_key(alg: Alg, secret: &str) -> String {
    format!(
        "key:\n  - id: {KEY}\n    algorithm: {}\n    secret: {secret}\n",
        alg.name
    )
}

/// The zone at `serial`. Refresh and retry are an hour: a secondary that follows a
/// change within seconds did so on NOTIFY, not on its timer.
fn zone(serial: u32, alice: &str) -> String {
    format!(
        "$ORIGIN {ORIGIN}\n$TTL 300\n\
         @ SOA ns1.example.net. hostmaster.example.net. {serial} 3600 3600 1209600 60\n\
         @ NS ns1.example.net.\n\
         1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:{alice}@pbx.example.net!\" .\n\
         3.0.0.0.6.9 TXT \"kept\"\n"
    )
}

fn hname(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

// ---------------------------------------------------------------------------------
// Transfer requests made by the test, signed or not, read message by message.

/// An AXFR request, or an IXFR from `ixfr_from`, on the wire; signed with `sign`
/// (key, time) when given. Returns the wire and the request MAC.
fn transfer_request(ixfr_from: Option<u32>, sign: Option<(&TsigKey, u64)>) -> (Vec<u8>, Vec<u8>) {
    let qtype = if ixfr_from.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let mut msg = Message::query();
    msg.add_query(Query::query(hname(ORIGIN), qtype));
    if let Some(from) = ixfr_from {
        msg.add_authority(soa_record(from));
    }
    let mut wire = msg.to_vec().unwrap();
    let mac = sign.map_or_else(Vec::new, |(k, now)| tsig::sign_request(&mut wire, k, now));
    (wire, mac)
}

fn soa_record(serial: u32) -> Record {
    use hickory_proto::rr::rdata::SOA;
    let soa = SOA::new(
        hname("ns1.example.net."),
        hname("hostmaster.example.net."),
        serial,
        3600,
        3600,
        1209600,
        60,
    );
    Record::from_rdata(hname(ORIGIN), 300, RData::SOA(soa))
}

/// The TSIG error code of a message's TSIG record, `None` when it has none.
fn tsig_error(raw: &[u8]) -> Option<u16> {
    tsig::find(raw).unwrap().map(|r| r.error)
}

/// Sends `wire` over a new TCP connection to 127.0.0.1:`port`; returns the connection,
/// with the first answer message.
fn send_tcp(port: u16, wire: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut conn = common::tcp_send_raw(port, wire);
    let first = read_raw(&mut conn).expect("an answer to the transfer request");
    (conn, first)
}

/// AXFR of the zone from 127.0.0.1:`port`, signed with `key` when given: the records
/// in order (TSIG records taken off). With a key, every message must carry a TSIG
/// that verifies, as RFC 8945 §5.3.1 checks a stream; panics on a refusal.
fn axfr(port: u16, key: Option<&TsigKey>) -> Vec<Record> {
    let now = tsig::unix_now();
    let (wire, mac) = transfer_request(None, key.map(|k| (k, now)));
    let (mut conn, mut raw) = send_tcp(port, &wire);
    let mut verifier = key.map(|k| StreamVerifier::new(k, &mac));
    let mut records = Vec::new();
    let mut soas = 0;
    loop {
        assert_eq!(rcode(&raw), RCODE_NOERROR, "AXFR from {port} refused");
        if let Some(v) = verifier.as_mut() {
            v.next(&raw, tsig::unix_now())
                .unwrap_or_else(|e| panic!("AXFR message from {port}: {e}"));
        }
        for r in parse_unsigned(&raw).answers {
            soas += usize::from(r.record_type() == RecordType::SOA);
            records.push(r);
        }
        if soas >= 2 {
            break;
        }
        raw = read_raw(&mut conn).expect("the rest of the AXFR");
    }
    if let Some(v) = verifier {
        v.finish().expect("the AXFR ends signed");
    }
    records
}

/// The zone at `port` as sorted record strings, the closing SOA left out.
fn zone_lines(port: u16, key: Option<&TsigKey>) -> Vec<String> {
    common::sorted_lines(axfr(port, key))
}

// ---------------------------------------------------------------------------------
// Peers.

/// `kdig @127.0.0.1 -p PORT ORIGIN ARGS…` (5 s, no retry): its whole output.
fn kdig(port: u16, args: &[&str]) -> String {
    common::kdig(port, &[&[ORIGIN], args, &["+time=5", "+retry=0"]].concat())
}

/// kdig's `-y` argument for `name` with `alg` and `secret`.
fn kdig_key(alg: Alg, name: &str, secret: &str) -> String {
    format!("-y{}:{name}:{secret}", alg.name)
}

fn xfr_out(server: &Enroute, kind: &str, result: &str) -> f64 {
    server.metric(&format!(
        "enroute_xfr_out_total{{type=\"{kind}\",result=\"{result}\"}}"
    ))
}

/// [`xfr_out`] once it reads `want`, or after 5 s: the server counts a transfer out
/// when its last message is flushed, which may be a moment after the client has read
/// it.
fn xfr_out_settled(server: &Enroute, kind: &str, result: &str, want: f64) -> f64 {
    common::eventually(Duration::from_secs(5), || {
        xfr_out(server, kind, result) == want
    });
    xfr_out(server, kind, result)
}

/// Waits up to 15 s for Knot's log to hold a line with every one of `needles`.
fn wait_knot_log(knot: &Knot, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = knot.log();
        if let Some(l) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "Knot's log has no line with {needles:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Incoming transfers of `kind` (AXFR, IXFR) Knot finished, by its log.
fn knot_transfers_in(knot: &Knot, kind: &str) -> usize {
    knot.log()
        .lines()
        .filter(|l| l.contains(&format!("{kind}, incoming")) && l.contains("finished"))
        .count()
}

/// An enroute primary of the zone at `text` on DNS port `dns` that requires `alg`'s
/// shared key for transfers and signs its NOTIFYs to 127.0.0.1:`notify` with it.
fn keyed_primary(text: &str, dns: u16, notify: u16, alg: Alg, more: &str) -> Enroute {
    Enroute::start(
        text,
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{dns}\", \"tcp:127.0.0.1:{dns}\"]\n\
             notify = [\"127.0.0.1:{notify}\"]\ntransfer_key = \"{KEY}\"\n{}{more}",
            tsig_toml(KEY, alg, alg.secret)
        ),
    )
}

/// An enroute secondary of the zone from 127.0.0.1:`primary` on DNS port `dns`, its
/// requests signed with the shared key of `alg` set to `secret`.
fn keyed_secondary(dns: u16, primary: u16, alg: Alg, secret: &str) -> Enroute {
    Enroute::start("", &secondary_toml(dns, primary, alg, secret))
}

fn secondary_toml(dns: u16, primary: u16, alg: Alg, secret: &str) -> String {
    format!(
        "[dns]\nlisten = [\"udp:127.0.0.1:{dns}\", \"tcp:127.0.0.1:{dns}\"]\n\
         {}\
         [[zone]]\norigin = \"{ORIGIN}\"\nprimary = \"127.0.0.1:{primary}\"\nkey = \"{KEY}\"\n",
        tsig_toml(KEY, alg, secret)
    )
}

/// Knot as a secondary of the enroute primary at 127.0.0.1:`primary`: it transfers
/// with the shared key and takes NOTIFY only when signed with it; the test may AXFR
/// from it unsigned.
fn knot_keyed_secondary(primary: u16, alg: Alg) -> Knot {
    Knot::start_conf(
        &[],
        &format!(
            "{}remote:\n  - id: enroute\n    address: 127.0.0.1@{primary}\n    key: {KEY}\n\
             acl:\n  - id: signed_notify\n    address: 127.0.0.1\n    key: {KEY}\n    action: notify\n\
             \x20 - id: test_axfr\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    master: enroute\n    acl: [signed_notify, test_axfr]\n\
             \x20   file: \"{{dir}}/secondary.db\"\n",
            knot_key(alg, alg.secret)
        ),
        &[],
    )
}

/// Knot as the primary of the zone at `text`, transferring only to requests signed
/// with the shared key of `alg`, keeping changes for IXFR, and (with `notify`)
/// NOTIFYing 127.0.0.1:`secondary` signed with the key.
fn knot_keyed_primary(text: &str, secondary: u16, alg: Alg, notify: bool) -> Knot {
    let notify = if notify { "    notify: enroute\n" } else { "" };
    let knot = Knot::start_conf(
        &[("primary.db", text)],
        &format!(
            "{}remote:\n  - id: enroute\n    address: 127.0.0.1@{secondary}\n    key: {KEY}\n\
             acl:\n  - id: signed_transfer\n    address: 127.0.0.1\n    key: {KEY}\n    action: transfer\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    file: \"{{dir}}/primary.db\"\n{notify}\
             \x20   acl: signed_transfer\n    zonefile-load: difference\n    journal-content: changes\n",
            knot_key(alg, alg.secret)
        ),
        &[ORIGIN],
    );
    // Knot opens its journal on the first change, inside `database.storage`, which the
    // common configuration names but does not create.
    std::fs::create_dir_all(knot.dir.path().join("db")).unwrap();
    knot
}

/// `PUT` a route for +441632960001 to `user`.
fn put_alice(server: &Enroute, user: &str) {
    let r = server.put_number(
        "+441632960001",
        &format!(r#"{{"routes":[{{"uri":"sip:{user}@pbx.example.net"}}]}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---------------------------------------------------------------------------------
// 1. Knot follows a keyed enroute primary.

fn knot_follows_a_keyed_primary(alg: Alg) {
    let ours = free_port();
    let mut knot = knot_keyed_secondary(ours, alg);
    let server = keyed_primary(&zone(7, "alice"), ours, knot.port, alg, "");
    let k = shared(alg);

    // The first transfer: Knot's signed AXFR.
    knot.knotc(&["zone-refresh", ORIGIN]);
    assert!(
        knot.wait_soa(&[ORIGIN], Duration::from_secs(20)),
        "{alg:?}: Knot did not transfer from enroute; log:\n{}",
        knot.log()
    );
    wait_knot_log(&knot, &["AXFR, incoming", "finished"]);
    assert_eq!(xfr_out_settled(&server, "axfr", "ok", 1.0), 1.0, "{alg:?}");
    assert_eq!(zone_lines(knot.port, None), zone_lines(ours, Some(&k)));

    // The premise: Knot's ACL turns an unsigned NOTIFY away (NOTAUTH, as Knot
    // answers what its ACL denies).
    let (raw, _) = notify(knot.port, None);
    assert_eq!(
        rcode(&raw),
        RCODE_NOTAUTH,
        "{alg:?}: Knot took an unsigned NOTIFY"
    );
    let notifies = knot.log().matches("notify, incoming").count();

    // A change: enroute's signed NOTIFY passes Knot's key ACL, and Knot takes the
    // change by IXFR at once (its SOA timers are an hour).
    let ixfrs = knot_transfers_in(&knot, "IXFR");
    put_alice(&server, "bob");
    assert!(
        wait_serial(knot.port, ORIGIN, 8, Duration::from_secs(15)),
        "{alg:?}: Knot did not reach serial 8 after the NOTIFY; log:\n{}",
        knot.log()
    );
    // Knot logs the NOTIFY it let through its key ACL (enroute's carries no SOA, so
    // "serial none"), then the refresh it made of it.
    wait_knot_log(&knot, &["notify, incoming", "remote 127.0.0.1"]);
    wait_knot_log(&knot, &["remote serial 8, zone is outdated"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while knot_transfers_in(&knot, "IXFR") == ixfrs && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = knot.log();
    assert_eq!(
        knot_transfers_in(&knot, "IXFR"),
        ixfrs + 1,
        "{alg:?}: {log}"
    );
    assert_eq!(knot_transfers_in(&knot, "AXFR"), 1, "{alg:?}: {log}");
    assert_eq!(
        log.matches("notify, incoming").count(),
        notifies + 1,
        "{alg:?}: {log}"
    );
    assert!(!log.contains("TSIG"), "{alg:?}: a TSIG complaint: {log}");
    // Knot's signed acknowledgement verified on our side.
    server.wait_for_all(&["NOTIFY acknowledged", "serial=8"]);
    assert_eq!(zone_lines(knot.port, None), zone_lines(ours, Some(&k)));
    assert!(
        zone_lines(knot.port, None)
            .iter()
            .any(|l| l.contains("sip:bob@")),
        "{alg:?}"
    );
    assert_eq!(xfr_out_settled(&server, "ixfr", "ok", 1.0), 1.0, "{alg:?}");
    assert_eq!(xfr_out(&server, "axfr", "refused"), 0.0, "{alg:?}");
    assert_eq!(xfr_out(&server, "ixfr", "refused"), 0.0, "{alg:?}");
}

#[test]
fn knot_follows_a_keyed_primary_hmac_sha256() {
    knot_follows_a_keyed_primary(SHA256);
}

#[test]
fn knot_follows_a_keyed_primary_hmac_sha512() {
    knot_follows_a_keyed_primary(SHA512);
}

// ---------------------------------------------------------------------------------
// 2. enroute follows a keyed Knot primary.

#[test]
fn enroute_follows_a_keyed_knot_primary_by_ixfr_on_its_signed_notify() {
    let ours = free_port();
    let knot = knot_keyed_primary(&zone(7, "alice"), ours, SHA256, true);
    let k = shared(SHA256);
    // The premise: Knot transfers only to signed requests.
    let out = kdig(knot.port, &["AXFR"]);
    assert!(
        record_lines(&out).is_empty(),
        "Knot transferred unsigned: {out}"
    );
    let server = keyed_secondary(ours, knot.port, SHA256, SHA256.secret);
    assert!(
        wait_serial(ours, ORIGIN, 7, Duration::from_secs(15)),
        "no first transfer"
    );
    assert_eq!(zone_lines(ours, None), zone_lines(knot.port, Some(&k)));

    knot.replace_zone_file("primary.db", ORIGIN, &zone(9, "alice9"));
    server.wait_for_all(&["NOTIFY from the primary: refreshing"]);
    server.wait_for_all(&["IXFR in: serving the new copy", "serial=9"]);
    assert_eq!(soa_serial(ours, ORIGIN), Some(9));
    let lines = zone_lines(ours, None);
    assert_eq!(lines, zone_lines(knot.port, Some(&k)));
    assert!(
        lines.iter().any(|l| l.contains("sip:alice9@")),
        "{lines:#?}"
    );
    wait_knot_log(&knot, &["IXFR, outgoing", "finished"]);
    let ok = "enroute_xfr_in_total{type=\"ixfr\",result=\"ok\"}";
    assert_eq!(server.metric(ok), 1.0);
}

// ---------------------------------------------------------------------------------
// 3. Transfer requests the keyed primary refuses.

/// The first answer message to a transfer request signed with `sign`.
fn first_answer(port: u16, ixfr_from: Option<u32>, sign: Option<(&TsigKey, u64)>) -> Vec<u8> {
    let (wire, _) = transfer_request(ixfr_from, sign);
    send_tcp(port, &wire).1
}

#[test]
fn transfers_not_signed_with_the_transfer_key_are_refused_and_counted() {
    let dns = free_port();
    let other = key("other-key.", SHA256, SECRET_512);
    let server = keyed_primary(
        &zone(7, "alice"),
        dns,
        free_port(),
        SHA256,
        &tsig_toml("other-key.", SHA256, SECRET_512),
    );
    put_alice(&server, "bob");
    let now = tsig::unix_now();
    let right = shared(SHA256);
    let unknown = key("nobody.", SHA256, SHA256.secret);
    let wrong_secret = key(KEY, SHA256, WRONG_SECRET);

    for ixfr in [None, Some(7)] {
        let what = if ixfr.is_some() { "IXFR" } else { "AXFR" };
        // Each answered with that rcode and TSIG error, and no records.
        let refusals: [(&str, Option<&TsigKey>, u8, Option<u16>); 4] = [
            // Unsigned: REFUSED, no TSIG.
            ("unsigned", None, RCODE_REFUSED, None),
            // A key we do not know: NOTAUTH, BADKEY in an unsigned TSIG record.
            ("unknown key", Some(&unknown), RCODE_NOTAUTH, Some(BADKEY)),
            // The right name, another secret: BADSIG.
            (
                "wrong secret",
                Some(&wrong_secret),
                RCODE_NOTAUTH,
                Some(BADSIG),
            ),
            // Another configured key, valid but not the transfer key: BADKEY.
            ("other key", Some(&other), RCODE_NOTAUTH, Some(BADKEY)),
        ];
        for (case, signer, want_rcode, want_error) in refusals {
            let raw = first_answer(dns, ixfr, signer.map(|k| (k, now)));
            assert_eq!(rcode(&raw), want_rcode, "{what} {case}");
            assert_eq!(tsig_error(&raw), want_error, "{what} {case}");
            assert!(parse_unsigned(&raw).answers.is_empty(), "{what} {case}");
        }
        // Signed 1000 s ago: BADTIME, in an answer signed with the key (its MAC
        // checks out at the request's time, RFC 8945 §5.2.3).
        let (wire, mac) = transfer_request(ixfr, Some((&right, now - 1000)));
        let raw = send_tcp(dns, &wire).1;
        assert_eq!(rcode(&raw), RCODE_NOTAUTH, "{what} old");
        assert_eq!(tsig_error(&raw), Some(BADTIME), "{what} old");
        assert!(parse_unsigned(&raw).answers.is_empty(), "{what} old");
        assert_eq!(
            tsig::verify_response(&raw, &right, &mac, now - 1000),
            Err(TsigFailure::Peer(BADTIME)),
            "{what}: the BADTIME answer is not signed with the key"
        );
    }
    for kind in ["axfr", "ixfr"] {
        assert_eq!(xfr_out(&server, kind, "refused"), 5.0, "{kind}");
        assert_eq!(xfr_out(&server, kind, "ok"), 0.0, "{kind}");
        let bytes = format!("enroute_xfr_out_bytes_total{{type=\"{kind}\"}}");
        assert_eq!(server.metric(&bytes), 0.0, "{kind}");
    }
    server.wait_for_all(&["TSIG: request refused"]);

    // kdig sees the same: REFUSED unsigned, NOTAUTH with a wrong secret, and the
    // changes with the key (kdig checks every message's TSIG).
    let out = kdig(dns, &["IXFR=7"]);
    assert!(out.contains("REFUSED"), "{out}");
    assert!(record_lines(&out).is_empty(), "{out}");
    let out = kdig(dns, &["AXFR", &kdig_key(SHA256, KEY, WRONG_SECRET)]);
    assert!(out.contains("error 'BADSIG'"), "{out}");
    assert!(record_lines(&out).is_empty(), "{out}");
    let out = kdig(dns, &["IXFR=7", &kdig_key(SHA256, KEY, SHA256.secret)]);
    let lines = record_lines(&out);
    assert_eq!(lines.len(), 7, "{out}");
    assert!(lines[4].contains("sip:bob@"), "{out}");
    assert!(
        lines[6].starts_with(&format!("{KEY} 0 ANY TSIG hmac-sha256."))
            && lines[6].contains("NOERROR"),
        "{out}"
    );
    assert!(!out.contains("WARNING") && !out.contains("ERROR:"), "{out}");
    assert_eq!(xfr_out_settled(&server, "ixfr", "ok", 1.0), 1.0);
}

// ---------------------------------------------------------------------------------
// 4. What a keyed secondary refuses.

/// A NOTIFY for the zone from 127.0.0.1 (the primary's address) to `port`, signed with
/// `sign` when given: the raw answer.
fn notify(port: u16, sign: Option<(&TsigKey, u64)>) -> (Vec<u8>, Vec<u8>) {
    let mut wire = common::notify_wire(ORIGIN);
    let mac = sign.map_or_else(Vec::new, |(k, now)| tsig::sign_request(&mut wire, k, now));
    let answer = udp_ask(port, &wire, Duration::from_secs(2)).expect("NOTIFY answered");
    (answer, mac)
}

#[test]
fn a_keyed_secondary_refuses_notify_not_signed_with_its_key() {
    let ours = free_port();
    // Knot does not NOTIFY here: the test does, from Knot's address.
    let knot = knot_keyed_primary(&zone(7, "alice"), ours, SHA256, false);
    let k = shared(SHA256);
    let server = keyed_secondary(ours, knot.port, SHA256, SHA256.secret);
    assert!(
        wait_serial(ours, ORIGIN, 7, Duration::from_secs(15)),
        "no first transfer"
    );
    knot.replace_zone_file("primary.db", ORIGIN, &zone(8, "alice8"));
    assert_eq!(soa_serial(knot.port, ORIGIN), Some(8));

    let (raw, _) = notify(ours, None);
    assert_eq!(rcode(&raw), RCODE_REFUSED, "unsigned NOTIFY");
    server.wait_for_all(&["NOTIFY not signed with the zone's key: refused"]);
    // One refusal line a second at most: the next is logged after that.
    std::thread::sleep(Duration::from_millis(1100));
    let (raw, _) = notify(
        ours,
        Some((&key(KEY, SHA256, WRONG_SECRET), tsig::unix_now())),
    );
    assert_eq!(rcode(&raw), RCODE_NOTAUTH, "NOTIFY with a wrong secret");
    assert_eq!(tsig_error(&raw), Some(BADSIG));
    server.wait_for_all(&["TSIG: request refused", "error=\"BADSIG\""]);
    // No refresh came of either.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(soa_serial(ours, ORIGIN), Some(7));

    // The control: the same NOTIFY signed with the key refreshes, and its answer is
    // signed.
    let now = tsig::unix_now();
    let (raw, mac) = notify(ours, Some((&k, now)));
    assert_eq!(rcode(&raw), RCODE_NOERROR);
    tsig::verify_response(&raw, &k, &mac, tsig::unix_now()).expect("a signed NOTIFY answer");
    assert!(
        wait_serial(ours, ORIGIN, 8, Duration::from_secs(15)),
        "the signed NOTIFY did not refresh"
    );
    assert_eq!(zone_lines(ours, None), zone_lines(knot.port, Some(&k)));
}

#[test]
fn a_secondary_whose_secret_differs_from_the_primarys_keeps_its_old_copy() {
    let ours = free_port();
    let knot = knot_keyed_primary(&zone(7, "alice"), ours, SHA256, true);
    let mut server = keyed_secondary(ours, knot.port, SHA256, SHA256.secret);
    assert!(
        wait_serial(ours, ORIGIN, 7, Duration::from_secs(15)),
        "no first transfer"
    );
    let copy = zone_lines(ours, None);

    // Stopped, then restarted with another secret under the same key name, while the
    // primary moved on.
    let _ = server.child.kill();
    let _ = server.child.wait();
    std::fs::write(
        server.dir.path().join("e.toml"),
        std::fs::read_to_string(server.dir.path().join("e.toml"))
            .unwrap()
            .replace(SHA256.secret, WRONG_SECRET),
    )
    .unwrap();
    knot.replace_zone_file("primary.db", ORIGIN, &zone(8, "alice8"));
    server.restart();
    let line = server.wait_for_all(&["WARN", "refresh failed", ORIGIN]);
    assert!(line.contains("BADSIG"), "{line}");
    // Knot's NOTIFY for 8, signed with the real secret, does not verify here.
    knot.knotc(&["zone-notify", ORIGIN]);
    let line = server.wait_for_all(&["TSIG: request refused"]);
    assert!(line.contains("BADSIG"), "{line}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(soa_serial(ours, ORIGIN), Some(7));
    assert_eq!(zone_lines(ours, None), copy);
    let in_ok = "enroute_xfr_in_total{type=\"ixfr\",result=\"ok\"}";
    assert_eq!(server.metric(in_ok), 0.0);

    // A fresh secondary with the wrong secret serves nothing at all.
    let fresh = free_port();
    let other = Enroute::start("", &secondary_toml(fresh, knot.port, SHA256, WRONG_SECRET));
    let line = other.wait_for_all(&["WARN", "refresh failed", ORIGIN]);
    assert!(line.contains("BADSIG"), "{line}");
    assert_eq!(soa_serial(fresh, ORIGIN), None);
}

/// How a fake primary (which knows the shared key) signs what it sends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Forge {
    /// Everything signed with the shared key (the control).
    Honest,
    /// Its SOA answer is signed with another secret under the key's name.
    SoaWrongSecret,
    /// SOA signed right; the AXFR not signed at all.
    AxfrUnsigned,
    /// SOA signed right; the AXFR's messages signed with another secret.
    AxfrWrongSecret,
    /// SOA signed right; the AXFR's first message signed right, its last unsigned.
    AxfrLastUnsigned,
}

/// A primary on a free loopback port serving the zone at 7 (SOA over UDP, AXFR over
/// TCP in two messages) with its answers signed the `forge` way. Stops on drop.
struct FakePrimary {
    port: u16,
    axfr_asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _dns: common::FakeDns,
}

impl FakePrimary {
    fn start(forge: Forge) -> FakePrimary {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let axfr_asked = Arc::new(AtomicUsize::new(0));
        let asked = axfr_asked.clone();
        let dns = common::FakeDns::start(
            move |query| fake_answers(query, forge).pop(),
            move |conn| {
                let Some(query) = read_raw(conn) else {
                    return;
                };
                let answers = fake_answers(&query, forge);
                if answers.len() > 1 {
                    asked.fetch_add(1, Ordering::SeqCst);
                }
                for out in answers {
                    let _ = common::write_framed_raw(conn, &out);
                }
            },
        );
        FakePrimary {
            port: dns.port,
            axfr_asked,
            _dns: dns,
        }
    }
}

/// The fake's answer messages to `query` (a SOA query: one; an AXFR: two), signed the
/// `forge` way; none to what it cannot read or verify.
fn fake_answers(query: &[u8], forge: Forge) -> Vec<Vec<u8>> {
    use hickory_proto::rr::rdata::NS;
    let right = shared(SHA256);
    let wrong = key(KEY, SHA256, WRONG_SECRET);
    let now = tsig::unix_now();
    let Ok(Some(verified)) = tsig::verify_request(std::slice::from_ref(&right), query, now) else {
        return vec![];
    };
    let request = parse_unsigned(query);
    let response = |answers: Vec<Record>| {
        let mut m = Message::response(request.metadata.id, request.metadata.op_code);
        m.metadata.authoritative = true;
        m.add_queries(request.queries.clone());
        m.add_answers(answers);
        m.to_vec().unwrap()
    };
    let mac = &verified.request_mac;
    if request.queries.first().map(|q| q.query_type()) != Some(RecordType::AXFR) {
        let mut out = response(vec![soa_record(7)]);
        let k = if forge == Forge::SoaWrongSecret {
            &wrong
        } else {
            &right
        };
        tsig::sign_response(&mut out, k, mac, now);
        return vec![out];
    }
    let ns = Record::from_rdata(hname(ORIGIN), 300, RData::NS(NS(hname("ns1.example.net."))));
    let mut out = vec![
        response(vec![soa_record(7), ns]),
        response(vec![soa_record(7)]),
    ];
    match forge {
        Forge::Honest | Forge::SoaWrongSecret => {
            let mut signer = tsig::StreamSigner::new(&right, mac);
            out.iter_mut().for_each(|m| signer.sign(m, now));
        }
        Forge::AxfrUnsigned => {}
        Forge::AxfrWrongSecret => {
            let mut signer = tsig::StreamSigner::new(&wrong, mac);
            out.iter_mut().for_each(|m| signer.sign(m, now));
        }
        Forge::AxfrLastUnsigned => tsig::StreamSigner::new(&right, mac).sign(&mut out[0], now),
    }
    out
}

#[test]
fn a_keyed_secondary_refuses_answers_not_signed_with_its_key() {
    // The control: the fake signing right is followed.
    let fake = FakePrimary::start(Forge::Honest);
    let dns = free_port();
    let server = keyed_secondary(dns, fake.port, SHA256, SHA256.secret);
    server.wait_for_all(&["AXFR in: serving the new copy", "serial=7"]);
    assert_eq!(soa_serial(dns, ORIGIN), Some(7));
    drop(server);

    for (forge, said) in [
        (Forge::SoaWrongSecret, "BADSIG"),
        (Forge::AxfrUnsigned, "not signed"),
        (Forge::AxfrWrongSecret, "BADSIG"),
        (
            Forge::AxfrLastUnsigned,
            "last message of the transfer is not signed",
        ),
    ] {
        let fake = FakePrimary::start(forge);
        let dns = free_port();
        let server = keyed_secondary(dns, fake.port, SHA256, SHA256.secret);
        let line = server.wait_for_all(&["WARN", "refresh failed", ORIGIN]);
        assert!(line.contains(said), "{forge:?}: {line}");
        let asked = fake.axfr_asked.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            asked,
            usize::from(forge != Forge::SoaWrongSecret),
            "{forge:?}"
        );
        // Nothing of the zone is served.
        assert_eq!(soa_serial(dns, ORIGIN), None, "{forge:?}");
        let failed = "enroute_xfr_in_total{type=\"axfr\",result=\"failed\"}";
        assert_eq!(server.metric(failed), asked as f64, "{forge:?}");
        let ok = "enroute_xfr_in_total{type=\"axfr\",result=\"ok\"}";
        assert_eq!(server.metric(ok), 0.0, "{forge:?}");
    }
}

// ---------------------------------------------------------------------------------
// 5. Keys the configuration names but does not define.

/// `enroute ARGS` in `dir`: exit code and output (standard output, then error). Killed (and reported as
/// having no exit code) when it runs for more than 20 s: a server that started.
fn run(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(args)
        .current_dir(dir)
        .env_remove("ENROUTE_ADMIN_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_key_name_without_its_tsig_entry_stops_the_start_naming_the_key() {
    let cases = [
        (
            format!(
                "[dns]\ntransfer_key = \"nokey.\"\n{}",
                tsig_toml(KEY, SHA256, SECRET_256)
            ),
            "dns.transfer_key",
        ),
        (
            format!(
                "{}[[zone]]\norigin = \"{ORIGIN}\"\nprimary = \"127.0.0.1:53\"\nkey = \"nokey.\"\n",
                tsig_toml(KEY, SHA256, SECRET_256)
            ),
            "zone[0].key",
        ),
    ];
    for (config, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (dns, admin) = (free_port(), free_port());
        let text = format!(
            "[sip]\nlisten = [\"udp:127.0.0.1:{}\"]\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             token_file = \"admin.token\"\n[store]\npath = \"data/enroute.db\"\n{config}",
            free_port()
        );
        let text = text.replace(
            "[dns]\n",
            &format!("[dns]\nlisten = [\"udp:127.0.0.1:{dns}\"]\n"),
        );
        std::fs::write(dir.path().join("e.toml"), &text).unwrap();
        let (code, err) = run(dir.path(), &["config", "check", "--config", "e.toml"]);
        assert_eq!(code, Some(2), "config check: {err}\n{text}");
        assert!(err.contains(named), "{named}: {err}");
        assert!(err.contains("nokey."), "{named}: {err}");
        let (code, err) = run(dir.path(), &["serve", "--config", "e.toml"]);
        assert_eq!(code, Some(2), "serve: {err}\n{text}");
        assert!(err.contains(named), "{named}: {err}");
    }
}
