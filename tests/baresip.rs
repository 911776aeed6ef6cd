//! baresip (a real SIP user agent, Debian's `baresip`) registers with `enroute serve`'s
//! registrar over UDP: it answers the digest challenge itself, and the test checks what
//! the server then holds and does: the admin API lists one binding at baresip's
//! address, an INVITE to the AOR gets a 302 to it (and that Contact reaches baresip,
//! which answers OPTIONS there), and baresip's own unregistering on exit removes it.
//!
//! baresip 1.0.0 on libre 1.1.0 (Debian bookworm) computes MD5 digests only, and gives
//! up on the whole 401 ("Register: Function not implemented") when any of its
//! WWW-Authenticate headers names another algorithm, so with the default
//! `algorithms = ["SHA-256", "MD5"]` (or MD5 first with SHA-256 after it) it cannot
//! register at all; libre learnt SHA-256 later. The server here offers MD5 alone.

mod common;

use common::{Enroute, SipUdp, free_port, sip_status};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AOR: &str = "alice@example.net";

/// The baresip binary.
fn baresip_program() -> PathBuf {
    for p in ["/usr/bin/baresip", "/usr/local/bin/baresip"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "baresip is not installed: run scripts/test, which installs it (apt-get install baresip)"
    );
}

/// A running baresip with its config in a temp dir, SIP on 127.0.0.1:`port`, its
/// output (with the SIP trace, `-s`) in `baresip.log` there; killed on drop.
struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Baresip {
    /// Starts baresip with one account, alice@example.net (password "secret"), sent
    /// through the server at 127.0.0.1:`registrar` (`outbound`), registering for 60 s.
    /// No audio or video device: only the G.711 codec module and the account loader.
    fn start(registrar: u16) -> Baresip {
        // A free port can be taken before baresip binds it: retry on fresh ports.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            std::fs::write(
                dir.path().join("config"),
                format!(
                    "poll_method\tepoll\n\
                     sip_listen\t127.0.0.1:{port}\n\
                     module_path\t/usr/lib/baresip/modules\n\
                     module\t\tg711.so\n\
                     module_tmp\taccount.so\n"
                ),
            )
            .unwrap();
            std::fs::write(
                dir.path().join("accounts"),
                format!(
                    "<sip:{AOR};transport=udp>;auth_pass=secret;\
                     outbound=\"sip:127.0.0.1:{registrar}\";regint=60\n"
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
            // -t: it quits by itself after 120 s should this process die without dropping it.
            let child = Command::new(baresip_program())
                .arg("-f")
                .arg(dir.path())
                .args(["-s", "-t", "120"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start baresip");
            let mut b = Baresip { child, dir, port };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if b.log().contains("baresip is ready.") {
                    return b;
                }
                if b.exited() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "baresip not ready within 20 s:\n{}",
                    b.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let log = b.log();
            assert!(
                log.contains("Address already in use"),
                "baresip exited:\n{log}"
            );
        }
        panic!("baresip could not bind a free loopback port in 5 tries");
    }

    /// Its output so far, colours stripped.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: up to the final letter
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits up to 20 s for baresip to report the account registered ("200 OK");
    /// panics with its output when it reports a failure or exits.
    fn wait_registered(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log
                .lines()
                .any(|l| l.starts_with(&format!("{AOR}: ")) && l.contains("200 OK"))
            {
                return;
            }
            if log.contains("reg: sip:") || self.exited() || Instant::now() > deadline {
                panic!("baresip did not register:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits up to 10 s for it to exit (it unregisters first).
    fn terminate(&mut self) {
        assert!(
            Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.exited() {
            assert!(
                Instant::now() < deadline,
                "baresip did not exit within 10 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AOR's bindings as the admin API lists them: (uri, seconds left).
fn bindings(server: &Enroute) -> Vec<(String, u64)> {
    let r = server.api("GET", &format!("/v1/registrations?aor={AOR}"), "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|item| {
            assert_eq!(item["aor"], AOR, "{v}");
            item["contacts"].as_array().unwrap().iter().map(|c| {
                (
                    c["uri"].as_str().unwrap().to_string(),
                    c["expires"].as_u64().unwrap(),
                )
            })
        })
        .collect()
}

#[test]
fn baresip_registers_and_calls_to_its_aor_are_redirected_to_it() {
    let server = Enroute::start(
        "",
        "[registrar]\nenabled = true\ndomains = [\"example.net\"]\nalgorithms = [\"MD5\"]\n\
         min_expires_s = 60\n",
    );
    server.create_user(AOR, "secret");

    let mut ua = Baresip::start(server.sip_udp);
    ua.wait_registered();
    let log = ua.log();
    // It was challenged and answered with qop=auth (no algorithm parameter: MD5).
    assert!(log.contains("SIP/2.0 401 Unauthorized"), "{log}");
    let authorization = log
        .lines()
        .find(|l| l.starts_with("Authorization: Digest "))
        .unwrap_or_else(|| panic!("baresip sent no Authorization:\n{log}"));
    assert!(
        authorization.contains("qop=auth") && authorization.contains("nc=00000001"),
        "{authorization}"
    );

    // One binding, at baresip's address, for the 60 s it asked.
    let b = bindings(&server);
    assert_eq!(b.len(), 1, "{b:?}\n{log}");
    let (contact, expires) = &b[0];
    let at = format!("@127.0.0.1:{}", ua.port);
    assert!(
        contact.starts_with("sip:alice") && contact.ends_with(&at),
        "the binding is not baresip's address 127.0.0.1:{}: {contact}",
        ua.port
    );
    assert!((1..=60).contains(expires), "{b:?}");

    // An INVITE to the AOR: 302 to that Contact, q=1.0.
    let client = SipUdp::new(server.sip_udp, Duration::from_secs(3));
    let port = client.port();
    let r = client.ask(&format!(
        "INVITE sip:{AOR} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKinv{port}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=c{port}\r\nTo: <sip:{AOR}>\r\n\
         Call-ID: inv{port}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ));
    assert_eq!(sip_status(&r), 302, "{r}");
    assert_eq!(
        common::sip_header(&r, "Contact"),
        Some(format!("<{contact}>;q=1.0").as_str()),
        "{r}"
    );
    assert_eq!(r.matches("\r\nContact:").count(), 1, "{r}");

    // The Contact reaches baresip: it answers OPTIONS sent there.
    let to_ua = SipUdp::new(ua.port, Duration::from_secs(3));
    let p = to_ua.port();
    let r = to_ua.ask(&format!(
        "OPTIONS {contact} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKopt{p};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=o{p}\r\nTo: <{contact}>\r\n\
         Call-ID: opt{p}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ));
    assert_eq!(sip_status(&r), 200, "baresip at {contact}:\n{r}");

    // On SIGTERM baresip unregisters (expires=0, authenticated again): no binding left.
    ua.terminate();
    let log = ua.log();
    assert!(
        log.contains(";expires=0"),
        "baresip did not unregister:\n{log}"
    );
    assert_eq!(bindings(&server), vec![], "{log}");
}
