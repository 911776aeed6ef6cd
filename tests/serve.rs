//! `enroute serve` as an operator runs it: starts on a config, reloads zone files on
//! SIGHUP (a bad file keeps the old copy), and exits 0 on SIGTERM.

mod common;

use std::process::Command;

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n@ SOA ns.example. h.example. {serial} 3600 900 604800 60\n\
         1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x.example!\" .\n{extra}"
    )
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn serve_reloads_on_sighup_and_exits_0_on_sigterm() {
    // `start` returns once the server logged "ready" (after "zone loaded").
    let mut server = common::Enroute::start(&zone(1, ""), "");
    let pid = server.pid();
    let file = server.dir.path().join("z.zone");

    // a new serial and a new number: reloaded
    std::fs::write(
        &file,
        zone(
            2,
            "2.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:b@x.example!\" .\n",
        ),
    )
    .unwrap();
    signal(pid, "-HUP");
    let reloaded = server.wait_for("zone reloaded");
    assert!(
        reloaded.contains("serial=2") && reloaded.contains("records=3"),
        "{reloaded}"
    );

    // a broken file: rejected with FILE:LINE, the old copy stays
    std::fs::write(&file, zone(3, "3 NAPTR 1 2\n")).unwrap();
    signal(pid, "-HUP");
    let rejected = server.wait_for("reload rejected");
    assert!(rejected.contains("z.zone:5:"), "{rejected}");

    signal(pid, "-TERM");
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
