//! Helpers shared by integration tests: free loopback ports and real peer processes
//! (Knot DNS) that live in a temp dir and are stopped when the guard drops, even when
//! the test fails.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port free for both UDP and TCP right now (never 53, 5060 or 8080: the
/// kernel hands out ephemeral ports only).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn find_program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: run scripts/test, which installs the test peers (apt-get install knot knot-dnsutils)"
    );
}

/// A running knotd serving zone files, stopped on drop.
pub struct Knot {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd on 127.0.0.1:`port` serving `(origin, master file text)` pairs and
    /// waits until every zone answers SOA.
    pub fn start(zones: &[(&str, &str)]) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
             database:\n    storage: \"{d}/db\"\n\
             control:\n    listen: \"{d}/knot.sock\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    semantic-checks: off\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n\
             zone:\n"
        );
        for (i, (origin, text)) in zones.iter().enumerate() {
            let file = format!("zone{i}.db");
            std::fs::write(dir.path().join(&file), text).unwrap();
            conf.push_str(&format!(
                "  - domain: \"{origin}\"\n    file: \"{d}/{file}\"\n"
            ));
        }
        std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("knotd.log")).unwrap();
        let child = Command::new(find_program("knotd"))
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        let knot = Knot { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        for (origin, _) in zones {
            loop {
                if let Some(resp) = dns_query(port, origin, 6)
                    && !resp.answers.is_empty()
                {
                    break;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(knot.dir.path().join("knotd.log"))
                        .unwrap_or_default();
                    panic!("knotd did not serve {origin} within 60 s; log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        knot
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One UDP query to 127.0.0.1:`port`; `None` on timeout or garbage.
pub fn dns_query(port: u16, name: &str, qtype: u16) -> Option<hickory_proto::op::Message> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let mut msg = Message::query();
    msg.add_query(Query::query(
        Name::from_str(name).ok()?,
        RecordType::from(qtype),
    ));
    let wire = msg.to_vec().ok()?;
    for _ in 0..3 {
        sock.send_to(&wire, ("127.0.0.1", port)).ok()?;
        let mut buf = vec![0u8; 65535];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let resp = Message::from_vec(&buf[..n]).ok()?;
            if resp.metadata.id == msg.metadata.id {
                return Some(resp);
            }
        }
    }
    None
}
