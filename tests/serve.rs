//! `enroute serve` as an operator runs it: starts on a config, reloads zone files on
//! SIGHUP (a bad file keeps the old copy), and exits 0 on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n@ SOA ns.example. h.example. {serial} 3600 900 604800 60\n\
         1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x.example!\" .\n{extra}"
    )
}

/// Kills the server if the test fails before it exits.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} within 20 s"),
        }
    }
}

#[test]
fn serve_reloads_on_sighup_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), zone(1, "")).unwrap();
    std::fs::write(
        dir.path().join("e.toml"),
        format!(
            "[sip]\nlisten = [\"udp:127.0.0.1:{}\"]\n[[zone]]\norigin = \"2.3.6.1.4.4.e164.arpa.\"\nfile = \"z.zone\"\n[log]\nlevel = \"info\"\n",
            common::free_port()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["serve", "--config", "e.toml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let pid = server.0.id();
    let stderr = server.0.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let loaded = wait_for(&lines, "zone loaded");
    assert!(loaded.contains("serial=1"), "{loaded}");
    wait_for(&lines, "ready");

    // a new serial and a new number: reloaded
    std::fs::write(
        dir.path().join("z.zone"),
        zone(
            2,
            "2.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:b@x.example!\" .\n",
        ),
    )
    .unwrap();
    signal(pid, "-HUP");
    let reloaded = wait_for(&lines, "zone reloaded");
    assert!(
        reloaded.contains("serial=2") && reloaded.contains("records=3"),
        "{reloaded}"
    );

    // a broken file: rejected with FILE:LINE, the old copy stays
    std::fs::write(dir.path().join("z.zone"), zone(3, "3 NAPTR 1 2\n")).unwrap();
    signal(pid, "-HUP");
    let rejected = wait_for(&lines, "reload rejected");
    assert!(rejected.contains("z.zone:5:"), "{rejected}");

    signal(pid, "-TERM");
    let status = server.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
