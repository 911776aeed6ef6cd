//! SIPp (Debian `sip-tester`) as a registering UA against `enroute serve`'s registrar,
//! with SIPp's own digest (`[authentication]`, `-au`/`-ap`): REGISTER 401 -> 200, a
//! refresh on the same nonce, an INVITE from a second SIPp run to the AOR getting a 302
//! to the registered Contact, unregistering (`expires=0` and `Expires: 0`), a wrong
//! password, an expired nonce (`stale=true`), and a replayed Authorization. The
//! scenarios in tests/sipp/reg-*.xml check the answers with regexp actions; SIPp exits
//! 0 only when every check passed.
//!
//! SIPp 3.6.1 computes MD5 digests only (SHA-256 came in SIPp 3.7.3) and reads the
//! challenge from all WWW-Authenticate headers joined with ", ", so it takes the first
//! `algorithm=` and aborts ("authentication must use MD5 or AKAv1-MD5") when that is
//! SHA-256, as with the default `algorithms = ["SHA-256", "MD5"]`. These servers run
//! with `algorithms = ["MD5"]` (one with MD5 listed first).
//!
//! SIPp cannot resend an Authorization it sent (its `[last_*]` keywords read the last
//! message received, and `[authentication]` makes a new cnonce and nc each time), so the
//! replay test takes SIPp's Authorization headers from its `-trace_msg` log and replays
//! them in a raw UDP REGISTER.

mod common;

use common::{Enroute, SipUdp, free_port, sip_status};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const AOR: &str = "alice@example.net";

/// The registrar on, serving example.net, with `more` (TOML keys) added to its table.
fn registrar(more: &str) -> Enroute {
    let server = Enroute::start(
        "",
        &format!("[registrar]\nenabled = true\ndomains = [\"example.net\"]\n{more}\n"),
    );
    server.create_user(AOR, "secret");
    server
}

/// What one SIPp run left: its exit code, its errors (stderr and error log) and its
/// message trace (every message sent and received).
struct Run {
    code: i32,
    err: String,
    messages: String,
}

impl Run {
    fn assert_ok(&self, what: &str) {
        assert_eq!(
            self.code, 0,
            "SIPp {what} failed:\n{}\nmessages:\n{}",
            self.err, self.messages
        );
    }
}

/// Runs the scenario `tests/sipp/SCENARIO` once (`-m 1`, 30 s timeout, over UDP) from
/// 127.0.0.1:`local_port` to the server's UDP port as `alice` (`-s`, `-au`; digest URI
/// `sip:example.net`), with `args` added (`-ap`, `-key contact URI`).
fn sipp(scenario: &str, server: &Enroute, local_port: u16, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let out = Command::new(common::sipp())
        .arg(format!("127.0.0.1:{}", server.sip_udp))
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-s", "alice", "-au", "alice", "-auth_uri", "example.net"])
        .args(["-i", "127.0.0.1", "-p", &local_port.to_string(), "-t", "u1"])
        .args(["-m", "1", "-timeout", "30", "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-trace_msg"])
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut messages = String::new();
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if name.ends_with("_errors.log") {
            err.push_str(&text);
        } else if name.ends_with("_messages.log") {
            messages = text;
        }
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        err,
        messages,
    }
}

/// The AOR's bindings as the admin API lists them: (uri, seconds left).
fn bindings(server: &Enroute) -> Vec<(String, u64)> {
    let r = server.api("GET", &format!("/v1/registrations?aor={AOR}"), "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let items = v["items"].as_array().unwrap();
    match items.as_slice() {
        [] => vec![],
        [one] => {
            assert_eq!(one["aor"], AOR, "{v}");
            one["contacts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["uri"].as_str().unwrap().to_string(),
                        c["expires"].as_u64().unwrap(),
                    )
                })
                .collect()
        }
        _ => panic!("more than one item for one AOR: {v}"),
    }
}

/// The URIs of the AOR's bindings, sorted.
fn uris(server: &Enroute) -> Vec<String> {
    let mut u: Vec<String> = bindings(server).into_iter().map(|(u, _)| u).collect();
    u.sort();
    u
}

/// An INVITE to the AOR (raw UDP); the answer.
fn invite_aor(server: &Enroute) -> String {
    let client = SipUdp::new(server.sip_udp, Duration::from_secs(3));
    let port = client.port();
    client.ask(&format!(
        "INVITE sip:{AOR} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKinv{port}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=c{port}\r\nTo: <sip:{AOR}>\r\n\
         Call-ID: inv{port}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ))
}

#[test]
fn sipp_registers_refreshes_is_found_by_invite_and_unregisters() {
    let server = registrar("algorithms = [\"MD5\"]");
    let port = free_port();
    // 401 -> 200 with expires=3600 and Date, refresh (nc=2) -> 200 with expires=1800
    sipp("reg-register.xml", &server, port, &["-ap", "secret"]).assert_ok("register");
    let contact = format!("sip:alice@127.0.0.1:{port}");
    let b = bindings(&server);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].0, contact);
    assert!(
        (1790..=1800).contains(&b[0].1),
        "the refresh set 1800 s: {b:?}"
    );

    // A second SIPp run calls the AOR: 302 to the binding, q=1.0, one Contact.
    let key = ["-key", "contact", contact.as_str()];
    sipp("reg-invite-302.xml", &server, free_port(), &key).assert_ok("INVITE 302");
    // the check really checks: another contact fails the scenario
    let run = sipp(
        "reg-invite-302.xml",
        &server,
        free_port(),
        &["-key", "contact", "sip:alice@127.0.0.1:1"],
    );
    assert_ne!(run.code, 0, "a wrong Contact must fail the 302 scenario");

    // From a new Call-ID: the binding goes with expires=0; SIPp's own, added and then
    // removed with Expires: 0.
    let mut args = vec!["-ap", "secret"];
    args.extend(key);
    sipp("reg-unregister.xml", &server, free_port(), &args).assert_ok("unregister");
    assert_eq!(bindings(&server), vec![]);
    let r = invite_aor(&server);
    assert!(
        (400..500).contains(&sip_status(&r)),
        "no binding left, so no redirect:\n{r}"
    );
}

#[test]
fn sipp_takes_md5_listed_first_of_two_challenges() {
    // Two WWW-Authenticate (MD5 then SHA-256, one nonce): SIPp joins them and uses the
    // first algorithm, MD5.
    let server = registrar("algorithms = [\"MD5\", \"SHA-256\"]");
    let port = free_port();
    let run = sipp("reg-register.xml", &server, port, &["-ap", "secret"]);
    run.assert_ok("register with MD5 and SHA-256 challenges");
    assert_eq!(
        run.messages.matches("WWW-Authenticate: Digest").count(),
        2,
        "{}",
        run.messages
    );
    assert!(run.messages.contains("algorithm=SHA-256"));
    assert_eq!(bindings(&server).len(), 1);
}

#[test]
fn sipp_wrong_password_gets_a_fresh_challenge() {
    let server = registrar("algorithms = [\"MD5\"]");
    let run = sipp(
        "reg-wrong-password.xml",
        &server,
        free_port(),
        &["-ap", "wrong"],
    );
    run.assert_ok("wrong password");
    assert_eq!(bindings(&server), vec![]);
}

#[test]
fn sipp_expired_nonce_gets_stale_then_registers() {
    let server = registrar("algorithms = [\"MD5\"]\nnonce_ttl_s = 1");
    let port = free_port();
    sipp("reg-stale.xml", &server, port, &["-ap", "secret"]).assert_ok("stale nonce");
    let b = bindings(&server);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].0, format!("sip:alice@127.0.0.1:{port}"));
}

/// A REGISTER for the AOR from `client` with Contact `contact` and the header line
/// `authorization` (none when empty).
fn register(
    client: &SipUdp,
    branch: &str,
    cseq: u32,
    contact: &str,
    authorization: &str,
) -> String {
    let port = client.port();
    let auth = if authorization.is_empty() {
        String::new()
    } else {
        format!("{authorization}\r\n")
    };
    format!(
        "REGISTER sip:example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{AOR}>;tag=replay{port}\r\nTo: <sip:{AOR}>\r\n\
         Call-ID: replay{port}@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <{contact}>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

/// A quoted or bare digest parameter from a challenge or credentials.
fn param<'v>(value: &'v str, name: &str) -> &'v str {
    let at = value
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {value}"));
    let rest = &value[at + name.len() + 1..];
    match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"').unwrap()],
        None => rest.split([',', ' ']).next().unwrap(),
    }
}

#[test]
fn a_replayed_authorization_is_refused() {
    let server = registrar("algorithms = [\"MD5\"]");
    let port = free_port();
    let run = sipp("reg-register.xml", &server, port, &["-ap", "secret"]);
    run.assert_ok("register");
    // What SIPp sent: nc=00000001 (answered 200) and nc=00000002 (the refresh, 200).
    let sent: Vec<&str> = run
        .messages
        .lines()
        .filter(|l| l.starts_with("Authorization: Digest "))
        .map(str::trim_ascii_end)
        .collect();
    assert_eq!(sent.len(), 2, "{}", run.messages);
    assert!(sent[0].contains("nc=00000001") && sent[1].contains("nc=00000002"));
    let sipps = format!("sip:alice@127.0.0.1:{port}");

    // Another party replays each, in a new request (branch, Call-ID, CSeq and Contact
    // are not digest inputs): 401.
    let client = SipUdp::new(server.sip_udp, Duration::from_secs(3));
    let mallory = format!("sip:mallory@127.0.0.1:{}", client.port());
    for (i, authorization) in sent.iter().enumerate() {
        let r = client.ask(&register(
            &client,
            &format!("r{i}"),
            1 + i as u32,
            &mallory,
            authorization,
        ));
        assert_eq!(
            sip_status(&r),
            401,
            "a replay of {authorization} was taken:\n{r}"
        );
    }
    assert_eq!(
        uris(&server),
        vec![sipps.clone()],
        "a replay added a binding"
    );

    // The same request with fresh credentials (MD5, qop=auth, computed here) is taken,
    // so what refused the replays was the nonce count.
    let r = client.ask(&register(&client, "fresh1", 10, &mallory, ""));
    assert_eq!(sip_status(&r), 401, "{r}");
    let challenge = common::sip_header(&r, "WWW-Authenticate").unwrap();
    let nonce = param(challenge, "nonce");
    let authorization =
        common::md5_authorization("alice", "example.net", "secret", nonce, 1, "0a4f113b");
    let r = client.ask(&register(&client, "fresh2", 11, &mallory, &authorization));
    assert_eq!(sip_status(&r), 200, "fresh credentials refused:\n{r}");
    let mut want = vec![sipps, mallory];
    want.sort();
    assert_eq!(uris(&server), want);
}
