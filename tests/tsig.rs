//! TSIG (RFC 8945) of `enroute::dns::tsig` against real peers, both ways: `kdig -y`
//! asking a tiny responder that verifies with our code and signs its answers (kdig must
//! find the answers' TSIG valid, with hmac-sha256 and hmac-sha512; a wrong secret is
//! BADSIG on our side), and requests signed by us to `knotd` (a SOA query whose signed
//! answer we verify, an AXFR of several messages checked by `StreamVerifier`, an ACL
//! that requires the key, a wrong secret reported back as BADSIG).

mod common;

use common::{Knot, parse_unsigned, rcode, read_raw, tcp_send_raw, udp_ask};
use enroute::config::{TsigAlgorithm, TsigKey};
use enroute::dns::tsig::{self, Refusal, StreamSigner, StreamVerifier, TsigError, TsigFailure};
use enroute::name::Name;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET_256: &str = "Wm9vbSBab29tIFRTSUcgdGVzdCBrZXkgZm9yIHNoYTI1Ng==";
const SECRET_512: &str =
    "c2hhNTEyIGtleSBmb3IgdGhlIGVucm91dGUgVFNJRyB0ZXN0cyAtIHNvbWUgbW9yZSBieXRlcw==";

fn key(name: &str, algorithm: TsigAlgorithm, secret_b64: &str) -> TsigKey {
    use base64::Engine;
    TsigKey {
        name: Name::from_text(name).unwrap(),
        algorithm,
        secret: base64::engine::general_purpose::STANDARD
            .decode(secret_b64)
            .unwrap(),
    }
}

fn k256() -> TsigKey {
    key("xfr-key.", TsigAlgorithm::HmacSha256, SECRET_256)
}

fn k512() -> TsigKey {
    key("big-key.", TsigAlgorithm::HmacSha512, SECRET_512)
}

// ---------------------------------------------------------------------------------
// A responder with our TSIG code, asked by kdig.

/// What the responder made of each request.
type Outcomes = Arc<Mutex<Vec<String>>>;

/// Answers SOA queries over UDP and TCP on free loopback ports: verifies each request
/// with `keys`, answers with a SOA signed with the request's key (or, as a negative
/// control, with `forge` instead), or with `tsig::error_answer`. Stops on drop.
struct Responder {
    udp: u16,
    tcp: u16,
    outcomes: Outcomes,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(keys: Vec<TsigKey>, forge: Option<TsigKey>) -> Responder {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (udp_port, tcp_port) = (
            udp.local_addr().unwrap().port(),
            tcp.local_addr().unwrap().port(),
        );
        let outcomes: Outcomes = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(Serve {
            keys,
            forge,
            outcomes: outcomes.clone(),
        });
        let (s1, st1) = (serve.clone(), stop.clone());
        let t1 = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !st1.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let out = s1.answer(&buf[..n]).swap_remove(0);
                    let _ = udp.send_to(&out, from);
                }
            }
        });
        let (s2, st2) = (serve, stop.clone());
        let t2 = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match tcp.accept() {
                    Ok((conn, _)) => s2.serve_tcp(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Responder {
            udp: udp_port,
            tcp: tcp_port,
            outcomes,
            stop,
            threads: vec![t1, t2],
        }
    }

    fn outcomes(&self) -> Vec<String> {
        self.outcomes.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Serve {
    keys: Vec<TsigKey>,
    forge: Option<TsigKey>,
    outcomes: Outcomes,
}

impl Serve {
    fn serve_tcp(&self, mut conn: TcpStream) {
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut len = [0u8; 2];
        while conn.read_exact(&mut len).is_ok() {
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if conn.read_exact(&mut msg).is_err() {
                return;
            }
            for out in self.answer(&msg) {
                let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                if conn.write_all(&framed).is_err() {
                    return;
                }
            }
        }
    }

    /// The answer's messages: one, or three for an AXFR (each signed in turn).
    fn answer(&self, query: &[u8]) -> Vec<Vec<u8>> {
        let now = tsig::unix_now();
        let (outcome, out) = match tsig::verify_request(&self.keys, query, now) {
            Ok(Some(v)) => {
                let key = self.forge.as_ref().unwrap_or(v.key);
                let mut out = answers(query);
                if let [one] = &mut out[..] {
                    tsig::sign_response(one, key, &v.request_mac, now);
                } else {
                    let mut signer = StreamSigner::new(key, &v.request_mac);
                    out.iter_mut().for_each(|m| signer.sign(m, now));
                }
                (format!("signed with {}", v.key.name), out)
            }
            Ok(None) => ("unsigned".to_string(), answers(query)),
            Err(refusal) => {
                let mut out = Vec::new();
                tsig::error_answer(query, &refusal, now, &mut out);
                (format!("refused {refusal:?}"), vec![out])
            }
        };
        self.outcomes.lock().unwrap().push(outcome);
        out
    }
}

/// An authoritative answer to a SOA query (the question and one SOA at its name), or
/// to an AXFR: three messages, SOA and 40 A records in each, SOA at the end.
fn answers(query: &[u8]) -> Vec<Vec<u8>> {
    let mut end = 12;
    while query[end] != 0 {
        end += 1 + usize::from(query[end]);
    }
    end += 5;
    let qtype = u16::from_be_bytes([query[end - 4], query[end - 3]]);
    let message = |records: &[Vec<u8>]| {
        let mut out = query[..2].to_vec();
        out.extend_from_slice(&[0x84 | (query[2] & 0x01), 0, 0, 1, 0, records.len() as u8]);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&query[12..end]);
        records.iter().for_each(|r| out.extend_from_slice(r));
        out
    };
    if qtype != 252 {
        return vec![message(&[soa_record()])];
    }
    let a = |i: usize| {
        vec![
            0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, i as u8,
        ]
    };
    let mut first: Vec<Vec<u8>> = vec![soa_record()];
    first.extend((0..40).map(a));
    let middle: Vec<Vec<u8>> = (40..80).map(a).collect();
    let mut last: Vec<Vec<u8>> = (80..120).map(a).collect();
    last.push(soa_record());
    vec![message(&first), message(&middle), message(&last)]
}

/// The SOA record at the question name (a compression pointer to it).
fn soa_record() -> Vec<u8> {
    let mut out = Vec::new();
    let mut rdata = Vec::new();
    Name::from_text("ns.example.").unwrap().to_wire(&mut rdata);
    Name::from_text("hostmaster.example.")
        .unwrap()
        .to_wire(&mut rdata);
    for v in [2024010101u32, 3600, 600, 86400, 300] {
        rdata.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0x0e, 0x10]);
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// kdig's output for a query of `qtype` with `-y ALG:NAME:SECRET` to `port`.
fn kdig(port: u16, tcp: bool, alg_name_secret: &str, qtype: &str) -> String {
    let transport = if tcp { "+tcp" } else { "+notcp" };
    let args = ["-y", alg_name_secret, transport, "+retry=0", "+time=3"];
    common::kdig(port, &[&args[..], &["example.", qtype]].concat())
}

/// kdig accepted the answer: NOERROR, the SOA, a TSIG section, no warning.
fn assert_kdig_verified(out: &str) {
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(
        out.contains("ns.example. hostmaster.example. 2024010101"),
        "{out}"
    );
    assert!(out.contains("TSIG PSEUDOSECTION"), "{out}");
    assert!(!out.contains("WARNING"), "kdig found the TSIG bad:\n{out}");
}

#[test]
fn kdig_verifies_our_signed_answers_over_udp_and_tcp() {
    let r = Responder::start(vec![k256(), k512()], None);
    for (spec, name) in [
        (format!("hmac-sha256:xfr-key.:{SECRET_256}"), "xfr-key."),
        (format!("hmac-sha512:big-key:{SECRET_512}"), "big-key."),
    ] {
        for tcp in [false, true] {
            let port = if tcp { r.tcp } else { r.udp };
            assert_kdig_verified(&kdig(port, tcp, &spec, "SOA"));
            assert_eq!(r.outcomes().last().unwrap(), &format!("signed with {name}"));
        }
    }
}

#[test]
fn kdig_verifies_every_message_of_our_signed_axfr() {
    let r = Responder::start(vec![k256(), k512()], None);
    for spec in [
        format!("hmac-sha256:xfr-key.:{SECRET_256}"),
        format!("hmac-sha512:big-key.:{SECRET_512}"),
    ] {
        let out = kdig(r.tcp, true, &spec, "AXFR");
        assert!(!out.contains("WARNING") && !out.contains("failed"), "{out}");
        assert!(out.contains("(3 messages, 122 records)"), "{out}");
        assert!(
            out.contains("example.") && out.contains("192.0.2.119"),
            "{out}"
        );
    }
    // A stream signed with another secret: kdig notices.
    let forged = key("xfr-key.", TsigAlgorithm::HmacSha256, SECRET_512);
    let r = Responder::start(vec![k256()], Some(forged));
    let out = kdig(
        r.tcp,
        true,
        &format!("hmac-sha256:xfr-key.:{SECRET_256}"),
        "AXFR",
    );
    assert!(out.contains("failed to verify TSIG"), "{out}");
}

#[test]
fn kdig_sees_a_forged_answer_as_bad_so_the_check_above_means_something() {
    let forged = key("xfr-key.", TsigAlgorithm::HmacSha256, SECRET_512);
    let r = Responder::start(vec![k256()], Some(forged));
    let out = kdig(
        r.udp,
        false,
        &format!("hmac-sha256:xfr-key.:{SECRET_256}"),
        "SOA",
    );
    assert!(out.contains("(failed to verify TSIG)"), "{out}");
    assert_eq!(r.outcomes(), ["signed with xfr-key."]);
}

#[test]
fn kdig_with_a_wrong_secret_or_key_is_refused() {
    let r = Responder::start(vec![k256()], None);
    let out = kdig(
        r.udp,
        false,
        &format!("hmac-sha256:xfr-key.:{SECRET_512}"),
        "SOA",
    );
    assert!(out.contains("status: BADSIG"), "{out}");
    assert_eq!(
        r.outcomes(),
        [format!(
            "refused {:?}",
            Refusal::Unsigned(TsigError::BadSig)
        )]
    );
    let out = kdig(
        r.tcp,
        true,
        &format!("hmac-sha256:unknown.:{SECRET_256}"),
        "SOA",
    );
    assert!(out.contains("status: BADKEY"), "{out}");
    assert_eq!(
        r.outcomes().last().unwrap(),
        &format!("refused {:?}", Refusal::Unsigned(TsigError::BadKey))
    );
}

// ---------------------------------------------------------------------------------
// Requests signed by us, answered by Knot.

const ORIGIN: &str = "tsig.test.";

/// A zone big enough for an AXFR of several messages.
fn big_zone(records: usize) -> String {
    let mut z = format!(
        "$ORIGIN {ORIGIN}\n$TTL 300\n@ SOA ns.tsig.test. hostmaster.tsig.test. 7 60 60 600 60\n@ NS ns\nns A 192.0.2.1\n"
    );
    for i in 0..records {
        z.push_str(&format!(
            "r{i} TXT \"record number {i} of a zone transferred with TSIG\"\n"
        ));
    }
    z
}

/// knotd serving `big_zone(records)` and knowing both keys; transfers need one of them.
fn knot(records: usize) -> Knot {
    Knot::start_conf(
        &[("tsig.db", &big_zone(records))],
        &format!(
            "key:\n  - id: xfr-key.\n    algorithm: hmac-sha256\n    secret: {SECRET_256}\n\
             \x20 - id: big-key.\n    algorithm: hmac-sha512\n    secret: {SECRET_512}\n\
             acl:\n  - id: signed\n    address: 127.0.0.1\n    key: [xfr-key., big-key.]\n    action: transfer\n\
             zone:\n  - domain: \"{ORIGIN}\"\n    file: \"{{dir}}/tsig.db\"\n    acl: signed\n"
        ),
        &[ORIGIN],
    )
}

/// A query for `ORIGIN` of type `qtype`, ID `id`.
fn query(id: u16, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    Name::from_text(ORIGIN).unwrap().to_wire(&mut m);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

fn udp_exchange(port: u16, msg: &[u8]) -> Vec<u8> {
    udp_ask(port, msg, Duration::from_secs(3)).expect("an answer from knotd")
}

#[test]
fn knot_answers_our_signed_soa_query_with_an_answer_we_verify() {
    let knot = knot(10);
    for k in [k256(), k512()] {
        let mut q = query(0x5150, 6);
        let mac = tsig::sign_request(&mut q, &k, tsig::unix_now());
        let a = udp_exchange(knot.port, &q);
        assert_eq!(rcode(&a), 0, "NOERROR; knotd log:\n{}", knot.log());
        assert_eq!(&a[6..8], &[0, 1], "one answer, the SOA");
        assert_eq!(
            tsig::verify_response(&a, &k, &mac, tsig::unix_now()),
            Ok(())
        );
        assert_eq!(
            tsig::verify_response(&a, &k, &mac[1..], tsig::unix_now()),
            Err(TsigFailure::BadSig),
            "bound to our request's MAC"
        );
    }
    // A wrong secret: Knot answers NOTAUTH with BADSIG, unsigned.
    let wrong = key("xfr-key.", TsigAlgorithm::HmacSha256, SECRET_512);
    let mut q = query(0x5151, 6);
    let mac = tsig::sign_request(&mut q, &wrong, tsig::unix_now());
    let a = udp_exchange(knot.port, &q);
    assert_eq!(rcode(&a), tsig::RCODE_NOTAUTH);
    assert_eq!(
        tsig::verify_response(&a, &wrong, &mac, tsig::unix_now()),
        Err(TsigFailure::Peer(16))
    );
}

/// Sends `msg` over TCP and reads the AXFR answer's messages until the closing SOA.
fn axfr(port: u16, msg: &[u8]) -> Vec<Vec<u8>> {
    let mut conn = tcp_send_raw(port, msg);
    let mut messages = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let m = read_raw(&mut conn).expect("the rest of the AXFR");
        if rcode(&m) != 0 {
            messages.push(m);
            break;
        }
        soas += parse_unsigned(&m)
            .answers
            .iter()
            .filter(|r| r.record_type() == hickory_proto::rr::RecordType::SOA)
            .count();
        messages.push(m);
    }
    messages
}

#[test]
fn knot_streams_a_signed_axfr_that_our_stream_verifier_accepts() {
    let knot = knot(3000);
    // The ACL requires a key: an unsigned AXFR is refused.
    let refused = axfr(knot.port, &query(1, 252));
    assert_eq!(refused.len(), 1);
    assert_ne!(rcode(&refused[0]), 0, "knotd let an unsigned AXFR through");

    for k in [k256(), k512()] {
        let mut q = query(0x7a7a, 252);
        let mac = tsig::sign_request(&mut q, &k, tsig::unix_now());
        let messages = axfr(knot.port, &q);
        assert!(
            messages.len() >= 3,
            "{} messages; make the zone bigger",
            messages.len()
        );
        assert_eq!(rcode(&messages[0]), 0, "knotd log:\n{}", knot.log());
        let mut v = StreamVerifier::new(&k, &mac);
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(v.next(m, tsig::unix_now()), Ok(()), "message {i}");
        }
        assert_eq!(v.finish(), Ok(()));

        // The same stream with a message left out or a byte changed is refused.
        let mut v = StreamVerifier::new(&k, &mac);
        assert_eq!(v.next(&messages[0], tsig::unix_now()), Ok(()));
        assert_eq!(
            v.next(&messages[2], tsig::unix_now()),
            Err(TsigFailure::BadSig)
        );
        let mut changed = messages[1].clone();
        changed[40] ^= 1;
        let mut v = StreamVerifier::new(&k, &mac);
        assert_eq!(v.next(&messages[0], tsig::unix_now()), Ok(()));
        assert!(v.next(&changed, tsig::unix_now()).is_err());
    }
}
