//! SIPp (Debian `sip-tester`) as the UAC against `enroute serve`: INVITE -> 302 -> ACK
//! with the Contacts checked by SIPp's own regexp actions, over UDP and TCP, and a
//! number without record or gateway getting 404. SIPp exits 0 only when every call
//! succeeded.

mod common;

use std::path::Path;
use std::process::Command;

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
            NAPTR 100 20 "u" "E2U+sip" "!^.*$!sip:alice@backup.example.net!" .
"#;

fn sipp() -> &'static str {
    for p in ["/usr/bin/sipp", "/usr/local/bin/sipp"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("sipp is not installed: run scripts/test, which installs sip-tester");
}

/// Runs one bounded SIPp client; returns its exit code and its error output.
fn run(
    scenario: &str,
    target_port: u16,
    transport: &str,
    number: &str,
    calls: u32,
) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let out = Command::new(sipp())
        .arg(format!("127.0.0.1:{target_port}"))
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-s", number])
        .args(["-i", "127.0.0.1", "-p", &common::free_port().to_string()])
        .args(["-t", transport])
        .args(["-m", &calls.to_string(), "-r", "20", "-l", "10"])
        .args(["-timeout", "30", "-timeout_error", "-nostdin", "-trace_err"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with("_errors.log") {
            err.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn sipp_invite_302_ack_udp_and_tcp() {
    let server = common::Enroute::start(ZONE, "");
    let (code, err) = run("uac-302.xml", server.sip_udp, "u1", "+441632960001", 20);
    assert_eq!(code, 0, "SIPp over UDP failed:\n{err}");
    let (code, err) = run("uac-302.xml", server.sip_tcp, "t1", "+441632960001", 20);
    assert_eq!(code, 0, "SIPp over TCP failed:\n{err}");
    // the check really checks: a number routed elsewhere fails the Contact regexp
    let (code, _) = run("uac-302.xml", server.sip_udp, "u1", "+441632969999", 1);
    assert_ne!(code, 0, "a 404 must fail the 302 scenario");
}

#[test]
fn sipp_no_record_no_gateway_gets_404() {
    let server = common::Enroute::start(ZONE, "");
    let (code, err) = run("uac-404.xml", server.sip_udp, "u1", "+441632969999", 10);
    assert_eq!(code, 0, "SIPp 404 scenario failed:\n{err}");
}
