//! Helpers shared by integration tests: free loopback ports, real peer processes (Knot
//! DNS, `enroute serve`) and scripted fake DNS peers that live in a temp dir or on a
//! thread and are stopped when the guard drops, even when the test fails; and the DNS,
//! HTTP and SIP exchanges the tests make with them (queries, AXFR, NOTIFY, kdig, the
//! admin API, metrics).
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port free for both UDP and TCP right now (never 53, 5060 or 8080: the
/// kernel hands out ephemeral ports only), and never handed out before in this test
/// process. The kernel may give a port again once the probe is closed, and the servers
/// bind their UDP listeners with SO_REUSEPORT, so two parallel tests given the same port
/// would both bind it and split each other's datagrams.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && GIVEN.lock().unwrap_or_else(|p| p.into_inner()).insert(port)
        {
            return port;
        }
    }
}

/// The installed program `name` (a test peer: knotd, knotc, kdig).
pub fn find_program(name: &str) -> PathBuf {
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
        Self::start_with(zones, &[])
    }

    /// As [`Knot::start`], plus zones configured without a file (`broken`): Knot answers
    /// SERVFAIL for names in them.
    pub fn start_with(zones: &[(&str, &str)], broken: &[&str]) -> Knot {
        let files: Vec<(String, &str)> = zones
            .iter()
            .enumerate()
            .map(|(i, (_, text))| (format!("zone{i}.db"), *text))
            .collect();
        let mut conf = String::from("zone:\n");
        for (i, (origin, _)) in zones.iter().enumerate() {
            conf.push_str(&format!(
                "  - domain: \"{origin}\"\n    file: \"{{dir}}/zone{i}.db\"\n"
            ));
        }
        for origin in broken {
            conf.push_str(&format!(
                "  - domain: \"{origin}\"\n    file: \"{{dir}}/missing-{origin}db\"\n"
            ));
        }
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let origins: Vec<&str> = zones.iter().map(|(o, _)| *o).collect();
        Self::start_conf(&files, &conf, &origins)
    }

    /// Starts knotd with `files` (name, text) written into its directory (`{dir}` in
    /// `conf` stands for it) and `conf` appended after the server/log/template sections
    /// (remotes, ACLs, `zone:`); `{port}` in `conf` is its own port. Waits until every
    /// origin in `wait` answers SOA.
    pub fn start_conf(files: &[(&str, &str)], conf: &str, wait: &[&str]) -> Knot {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let d = dir.path().display().to_string();
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            let full = format!(
                "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                 database:\n    storage: \"{d}/db\"\n\
                 control:\n    listen: \"{d}/knot.sock\"\n\
                 log:\n  - target: stderr\n    any: info\n\
                 template:\n  - id: default\n    storage: \"{d}\"\n    semantic-checks: off\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n{}",
                conf.replace("{dir}", &d)
                    .replace("{port}", &port.to_string())
            );
            std::fs::write(dir.path().join("knot.conf"), full).unwrap();
            let log = std::fs::File::create(dir.path().join("knotd.log")).unwrap();
            let child = Command::new(find_program("knotd"))
                .arg("-c")
                .arg(dir.path().join("knot.conf"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start knotd");
            let mut knot = Knot { child, port, dir };
            if knot.wait_soa(wait, Duration::from_secs(60)) {
                return knot;
            }
            if !matches!(knot.child.try_wait(), Ok(Some(_))) {
                panic!(
                    "knotd did not serve {wait:?} within 30 s; log:\n{}",
                    knot.log()
                );
            }
        }
        panic!("knotd could not bind a free loopback port in 5 tries");
    }

    /// Waits until every origin answers SOA; false if knotd exited.
    pub fn wait_soa(&mut self, origins: &[&str], limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        for origin in origins {
            loop {
                if let Some(resp) = dns_query(self.port, origin, 6)
                    && !resp.answers.is_empty()
                {
                    break;
                }
                if matches!(self.child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        true
    }

    /// knotd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default()
    }

    /// Runs knotc against this server.
    pub fn knotc(&self, args: &[&str]) -> String {
        let out = Command::new(find_program("knotc"))
            .arg("-s")
            .arg(self.dir.path().join("knot.sock"))
            .args(args)
            .output()
            .expect("run knotc");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Replaces zone `index`'s file (as given to `start`, origin `origin`) and has Knot
    /// reload it (give the new text a higher SOA serial).
    pub fn replace_zone(&self, index: usize, origin: &str, text: &str) {
        self.replace_zone_file(&format!("zone{index}.db"), origin, text);
    }

    /// Replaces the zone file `file` (in Knot's directory) and has Knot reload `origin`.
    pub fn replace_zone_file(&self, file: &str, origin: &str, text: &str) {
        std::fs::write(self.dir.path().join(file), text).unwrap();
        let out = Command::new(find_program("knotc"))
            .arg("-s")
            .arg(self.dir.path().join("knot.sock"))
            .args(["-b", "zone-reload", origin])
            .output()
            .expect("run knotc");
        assert!(
            out.status.success(),
            "knotc zone-reload: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A UDP relay on a free loopback port that counts the DNS queries it receives and
/// forwards them to `target` (or drops them when `target` is `None`: a dead upstream
/// that never answers). Stops with the guard.
pub struct CountingRelay {
    pub port: u16,
    pub queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CountingRelay {
    pub fn start(target: Option<u16>) -> CountingRelay {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, st) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // query id -> client address, for relaying answers back
            let mut clients = std::collections::HashMap::new();
            let mut buf = vec![0u8; 65535];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                let is_response = buf[2] & 0x80 != 0;
                match target {
                    Some(_) if is_response => {
                        if let Some(client) = clients.remove(&id) {
                            let _ = sock.send_to(&buf[..n], client);
                        }
                    }
                    Some(t) => {
                        q.fetch_add(1, Ordering::Relaxed);
                        clients.insert(id, from);
                        let _ = sock.send_to(&buf[..n], ("127.0.0.1", t));
                    }
                    None => {
                        q.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        CountingRelay {
            port,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A scripted DNS peer on a free loopback port, UDP and TCP, for a peer that must
/// misbehave in ways no real server does: `udp` answers each datagram (or not), `tcp`
/// is handed each accepted connection (blocking, reads time out after 2 s). Its
/// threads stop with the guard.
pub struct FakeDns {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl FakeDns {
    pub fn start(
        udp: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
        tcp: impl Fn(&mut std::net::TcpStream) + Send + 'static,
    ) -> FakeDns {
        use std::sync::atomic::{AtomicBool, Ordering};
        // The port is free when handed out, but a socket of a parallel test's server
        // (an ephemeral source port) may take it before it is bound here: take another.
        let (port, sock, listener) = (0..20)
            .find_map(|_| {
                let port = free_port();
                let sock = UdpSocket::bind(("127.0.0.1", port)).ok()?;
                let listener = TcpListener::bind(("127.0.0.1", port)).ok()?;
                Some((port, sock, listener))
            })
            .expect("a free loopback port for the fake DNS server in 20 tries");
        // Both loops wake up now and then to see the stop flag.
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let udp_thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !st.load(Ordering::SeqCst) {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && let Some(out) = udp(&buf[..n])
                {
                    let _ = sock.send_to(&out, from);
                }
            }
        });
        let st = stop.clone();
        let tcp_thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                if conn.set_nonblocking(false).is_ok()
                    && conn.set_read_timeout(Some(Duration::from_secs(2))).is_ok()
                {
                    tcp(&mut conn);
                }
            }
        });
        FakeDns {
            port,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
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

/// Writes one DNS message with the two-byte length of RFC 1035 §4.2.2.
pub fn write_framed(conn: &mut std::net::TcpStream, msg: &hickory_proto::op::Message) {
    write_framed_raw(conn, &msg.to_vec().unwrap()).unwrap();
}

/// Writes the message bytes `wire` with the two-byte length, in one write (an error
/// is the caller's to judge: a fake peer goes on when its client has gone).
pub fn write_framed_raw(conn: &mut std::net::TcpStream, wire: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    conn.write_all(&framed)
}

/// One length-framed message, raw; `None` when the peer closed or went quiet.
pub fn read_raw(conn: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    conn.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// A new TCP connection to 127.0.0.1:`port` (reads time out after 10 s) with `wire`
/// sent on it, framed.
pub fn tcp_send_raw(port: u16, wire: &[u8]) -> std::net::TcpStream {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write_framed_raw(&mut conn, wire).unwrap();
    conn
}

/// The rcode in a raw message's header (its low four bits).
pub fn rcode(raw: &[u8]) -> u8 {
    raw[3] & 0x0f
}

/// A raw message with its TSIG record (if any) taken off, parsed.
pub fn parse_unsigned(raw: &[u8]) -> hickory_proto::op::Message {
    use enroute::dns::tsig;
    let plain = match tsig::find(raw).unwrap() {
        Some(rec) => tsig::without_tsig(raw, &rec),
        None => raw.to_vec(),
    };
    hickory_proto::op::Message::from_vec(&plain).unwrap()
}

/// Sends `wire` to 127.0.0.1:`port` from a fresh UDP socket; the answer, `None` when
/// none comes within `limit`.
pub fn udp_ask(port: u16, wire: &[u8], limit: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(limit)).unwrap();
    sock.send_to(wire, ("127.0.0.1", port)).unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Reads one length-framed DNS message and checks it answers `id`.
pub fn read_framed(conn: &mut std::net::TcpStream, id: u16) -> hickory_proto::op::Message {
    let buf = read_raw(conn).expect("a length-framed answer");
    let resp = hickory_proto::op::Message::from_vec(&buf).unwrap();
    assert_eq!(resp.metadata.id, id);
    resp
}

/// One query over a new TCP connection to 127.0.0.1:`port` (RFC 1035 §4.2.2 framing).
pub fn dns_query_tcp(port: u16, name: &str, qtype: u16) -> hickory_proto::op::Message {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut msg = Message::query();
    msg.add_query(Query::query(
        Name::from_str(name).unwrap(),
        RecordType::from(qtype),
    ));
    write_framed(&mut conn, &msg);
    read_framed(&mut conn, msg.metadata.id)
}

/// The SOA serial 127.0.0.1:`port` answers for `origin`, when it answers one.
pub fn soa_serial(port: u16, origin: &str) -> Option<u32> {
    let resp = dns_query(port, origin, 6)?;
    resp.answers.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// Waits up to `limit` for `check` to hold, trying every 100 ms.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Waits up to `limit` for 127.0.0.1:`port` to answer serial `want` for `origin`.
pub fn wait_serial(port: u16, origin: &str, want: u32, limit: Duration) -> bool {
    eventually(limit, || soa_serial(port, origin) == Some(want))
}

/// AXFR of `origin` over TCP: the records in order, or the rcode of a refusal.
pub fn axfr(
    port: u16,
    origin: &str,
) -> Result<Vec<hickory_proto::rr::Record>, hickory_proto::op::ResponseCode> {
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;
    let mut msg = Message::query();
    msg.add_query(Query::query(
        Name::from_str(origin).unwrap(),
        RecordType::AXFR,
    ));
    let mut conn = tcp_send_raw(port, &msg.to_vec().unwrap());
    let mut records = Vec::new();
    let mut soas = 0;
    loop {
        let resp = read_framed(&mut conn, msg.metadata.id);
        if resp.metadata.response_code != ResponseCode::NoError {
            return Err(resp.metadata.response_code);
        }
        for r in resp.answers {
            if r.record_type() == RecordType::SOA {
                soas += 1;
            }
            records.push(r);
            if soas == 2 {
                return Ok(records);
            }
        }
    }
}

/// A transferred zone (closing SOA included) as sorted record strings, the closing SOA
/// left out: two servers' copies compare equal when they hold the same records.
pub fn sorted_lines(mut records: Vec<hickory_proto::rr::Record>) -> Vec<String> {
    records.pop();
    let mut lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    lines.sort();
    lines
}

/// `origin` at 127.0.0.1:`port` by AXFR, as [`sorted_lines`]; panics on a refusal.
pub fn zone_lines(port: u16, origin: &str) -> Vec<String> {
    let records = axfr(port, origin).unwrap_or_else(|rc| panic!("AXFR from {port} refused: {rc}"));
    sorted_lines(records)
}

/// A NOTIFY for `origin` (RFC 1996 §3.7: AA set, the SOA question), ID 4321, on the
/// wire.
pub fn notify_wire(origin: &str) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;
    let mut msg = Message::new(4321, MessageType::Query, OpCode::Notify);
    msg.metadata.authoritative = true;
    msg.add_query(Query::query(
        Name::from_str(origin).unwrap(),
        RecordType::SOA,
    ));
    msg.to_vec().unwrap()
}

/// Sends a NOTIFY for `origin` to 127.0.0.1:`port` from a fresh socket; the answer's
/// rcode, `None` when none comes within 2 s.
pub fn send_notify(port: u16, origin: &str) -> Option<hickory_proto::op::ResponseCode> {
    let raw = udp_ask(port, &notify_wire(origin), Duration::from_secs(2))?;
    let resp = hickory_proto::op::Message::from_vec(&raw).ok()?;
    Some(resp.metadata.response_code)
}

/// `kdig @127.0.0.1 -p PORT ARGS…` (knot-dnsutils): its whole output, errors (on
/// stderr) last.
pub fn kdig(port: u16, args: &[&str]) -> String {
    let out = Command::new(find_program("kdig"))
        .arg("@127.0.0.1")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run kdig");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The record lines of kdig's output, white space made single spaces.
pub fn record_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A running `enroute serve` in a temp dir, killed on drop. Its stderr lines arrive on
/// `log`.
pub struct Enroute {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub sip_udp: u16,
    pub sip_tcp: u16,
    /// DNS (UDP and TCP) port, unless the test configured `[dns]` itself.
    pub dns: u16,
    /// Admin HTTP port, unless the test configured `[admin]` itself.
    pub admin: u16,
    pub log: std::sync::mpsc::Receiver<String>,
}

impl Enroute {
    /// Starts the server with `extra` appended to a config that listens for SIP on free
    /// loopback ports and serves `zone_text` as `2.3.6.1.4.4.e164.arpa.`; waits until
    /// SIP listens.
    pub fn start(zone_text: &str, extra: &str) -> Enroute {
        Self::start_with(zone_text, extra, &[], |_| {})
    }

    /// As [`Enroute::start`], with more `sip.listen` entries and a hook that may write
    /// files (certificates) into the server's directory first.
    pub fn start_with(
        zone_text: &str,
        extra: &str,
        more_listen: &[String],
        prepare: impl Fn(&std::path::Path),
    ) -> Enroute {
        // A free port can be taken by a parallel test before the server binds it (the
        // server then exits): retry on fresh ports.
        for _ in 0..5 {
            if let Some(server) = Self::try_start(zone_text, extra, more_listen, &prepare) {
                return server;
            }
        }
        panic!("enroute could not bind free loopback ports in 5 tries");
    }

    fn try_start(
        zone_text: &str,
        extra: &str,
        more_listen: &[String],
        prepare: &impl Fn(&std::path::Path),
    ) -> Option<Enroute> {
        let dir = tempfile::tempdir().unwrap();
        let (udp, tcp, dns, admin) = (free_port(), free_port(), free_port(), free_port());
        std::fs::write(dir.path().join("z.zone"), zone_text).unwrap();
        prepare(dir.path());
        let mut listen = vec![
            format!("\"udp:127.0.0.1:{udp}\""),
            format!("\"tcp:127.0.0.1:{tcp}\""),
        ];
        listen.extend(more_listen.iter().map(|l| format!("\"{l}\"")));
        // Hermetic unless the test configures upstream ENUM itself: no system resolver.
        let no_upstream = if extra.contains("[enum]") {
            ""
        } else {
            "[enum]\nsuffixes = []\n"
        };
        // The DNS listener on free ports too, unless the test sets `[dns]`.
        let dns_listen = if extra.contains("[dns]") {
            String::new()
        } else {
            format!("[dns]\nlisten = [\"udp:127.0.0.1:{dns}\", \"tcp:127.0.0.1:{dns}\"]\n")
        };
        // The admin API on a free port with its token file, and the store, inside the
        // test's directory unless the test sets them.
        let admin_listen = if extra.contains("[admin]") {
            String::new()
        } else {
            format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken_file = \"admin.token\"\n")
        };
        let store = if extra.contains("[store]") {
            ""
        } else {
            "[store]\npath = \"data/enroute.db\"\n"
        };
        // An empty zone text means no file zone (a test that configures its own).
        let zone = if zone_text.is_empty() {
            ""
        } else {
            "[[zone]]\norigin = \"2.3.6.1.4.4.e164.arpa.\"\nfile = \"z.zone\"\n"
        };
        let config = format!(
            "[sip]\nlisten = [{}]\n{extra}\n{no_upstream}{dns_listen}{admin_listen}{store}{zone}",
            listen.join(", ")
        );
        std::fs::write(dir.path().join("e.toml"), config).unwrap();
        let (child, log) = spawn_ready(dir.path())?;
        Some(Enroute {
            child,
            dir,
            sip_udp: udp,
            sip_tcp: tcp,
            dns,
            admin,
            log,
        })
    }

    /// Kills the server and starts it again in the same directory on the same config
    /// (same ports); waits until it is ready.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..50 {
            if let Some((child, log)) = spawn_ready(self.dir.path()) {
                self.child = child;
                self.log = log;
                return;
            }
            // The old sockets may linger for a moment.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("enroute did not restart");
    }

    /// Waits up to 20 s for a log line containing `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_all(&[needle])
    }

    /// Waits up to 20 s for a log line holding every one of `needles`; the lines passed
    /// over go to stderr (shown when the test fails).
    pub fn wait_for_all(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) if needles.iter().all(|n| l.contains(n)) => return l,
                Ok(l) => eprintln!("  {l}"),
                Err(_) => panic!("no log line with {needles:?} within 20 s"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP (reload).
    pub fn sighup(&self) {
        assert!(
            Command::new("kill")
                .args(["-HUP", &self.pid().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
}

/// Starts `enroute serve --config e.toml` in `dir` with `env` added (and no inherited
/// `ENROUTE_ADMIN_TOKEN`); its stderr lines arrive on the receiver as they are written.
#[allow(dead_code)] // not every test binary that includes this module calls it directly
pub fn spawn_serve(dir: &Path, env: &[(&str, &str)]) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["serve", "--config", "e.toml"])
        .current_dir(dir)
        .env_remove("ENROUTE_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, log)
}

/// Starts `enroute serve --config e.toml` in `dir` and waits for "ready"; `None` when it
/// could not bind its ports.
fn spawn_ready(dir: &Path) -> Option<(Child, std::sync::mpsc::Receiver<String>)> {
    let (mut child, log) = spawn_serve(dir, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            // What the process logged before it was ready (a secondary's first refresh,
            // say) stays readable by `wait_for`, ahead of what follows.
            Ok(l) if l.contains("ready") => return Some((child, replay(seen, log))),
            Ok(l) => seen.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                if seen.iter().any(|l| l.contains("cannot bind")) =>
            {
                let _ = child.wait();
                return None;
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "enroute did not get ready within 20 s; log:\n{}",
                    seen.join("\n")
                )
            }
        }
    }
}

/// A log receiver that yields `first`, then what `rest` yields.
fn replay(
    first: Vec<String>,
    rest: std::sync::mpsc::Receiver<String>,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    for line in first {
        let _ = tx.send(line);
    }
    std::thread::spawn(move || {
        for line in rest {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Drop for Enroute {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SIP client on one UDP socket of its own, talking to 127.0.0.1:`server`.
pub struct SipUdp {
    pub sock: UdpSocket,
    pub server: u16,
}

impl SipUdp {
    /// Receives wait at most `wait` each.
    pub fn new(server: u16, wait: Duration) -> SipUdp {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(wait)).unwrap();
        SipUdp { sock, server }
    }
    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }
    pub fn send(&self, msg: &str) {
        self.sock
            .send_to(msg.as_bytes(), ("127.0.0.1", self.server))
            .unwrap();
    }
    pub fn recv(&self) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
    /// Sends `msg` and returns the first answer (panics without one).
    pub fn ask(&self, msg: &str) -> String {
        self.send(msg);
        self.recv()
            .unwrap_or_else(|| panic!("no answer to:\n{msg}"))
    }
}

/// The status code of a SIP response (0 when it does not read as one).
pub fn sip_status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The `contacts` of a JSON decision as (uri, q) pairs.
pub fn json_contacts(v: &serde_json::Value) -> Vec<(String, f64)> {
    v["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["uri"].as_str().unwrap().to_string(),
                c["q"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// An INVITE for `number` from a UAC at 127.0.0.1:`port`.
pub fn invite(number: &str, branch: &str, port: u16) -> String {
    format!(
        "INVITE sip:{number}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:{number}@127.0.0.1>\r\n\
         Call-ID: {branch}@t\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The Contact line of the SIP answer (over UDP) for `number`, or the status line when it
/// is not a 302.
pub fn sip_contact(server: u16, number: &str) -> String {
    let client = SipUdp::new(server, Duration::from_secs(3));
    let branch = format!("{number}{:?}", Instant::now()).replace(['+', ' ', '.'], "");
    let r = client.ask(&invite(number, &branch, client.port()));
    if sip_status(&r) != 302 {
        return r.lines().next().unwrap_or("").to_string();
    }
    r.lines()
        .find(|l| l.starts_with("Contact:"))
        .unwrap_or("")
        .to_string()
}

/// One HTTP/1.1 answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` (connection closed after it) and reads
/// the whole answer, chunked or not.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut wire = req.into_bytes();
    wire.extend_from_slice(body);
    // The server may answer (413) and close before reading the whole body.
    let _ = s.write_all(&wire);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

impl Enroute {
    /// The admin token the server generated in its directory.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Creates the registrar user `aor` with `password` (`PUT /v1/users/{aor}`, 201
    /// asserted).
    pub fn create_user(&self, aor: &str, password: &str) {
        let body = serde_json::json!({ "password": password }).to_string();
        let r = self.api(
            "PUT",
            &format!("/v1/users/{aor}"),
            "application/json",
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "PUT /v1/users/{aor}: {}", r.text());
    }

    /// An authenticated admin request; `content_type` only when there is a body.
    pub fn api(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
        let auth = format!("Bearer {}", self.token());
        let mut headers = vec![("Authorization", auth.as_str())];
        if !content_type.is_empty() {
            headers.push(("Content-Type", content_type));
        }
        http(self.admin, method, path, &headers, body)
    }

    /// `PUT /v1/zones/{origin}` with master-file text.
    pub fn put_zone(&self, origin: &str, text: &str) -> HttpResponse {
        let path = format!("/v1/zones/{origin}");
        self.api("PUT", &path, "text/dns", text.as_bytes())
    }

    /// The value of the sample `name{labels}` (labels as `/metrics` writes them) in
    /// `/metrics`, 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = http(self.admin, "GET", "/metrics", &[], b"").text();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// `PUT /v1/prefixes/{prefix}` with a JSON body.
    pub fn put_prefix(&self, prefix: &str, body: &str) -> HttpResponse {
        let path = format!("/v1/prefixes/{prefix}");
        self.api("PUT", &path, "application/json", body.as_bytes())
    }

    /// `PUT /v1/numbers/{number}` with a JSON body.
    pub fn put_number(&self, number: &str, body: &str) -> HttpResponse {
        self.api(
            "PUT",
            &format!("/v1/numbers/{number}"),
            "application/json",
            body.as_bytes(),
        )
    }
}

/// The SIPp binary (Debian `sip-tester`).
pub fn sipp() -> &'static str {
    for p in ["/usr/bin/sipp", "/usr/local/bin/sipp"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("sipp is not installed: run scripts/test, which installs sip-tester");
}

/// Runs one bounded SIPp client with `tests/sipp/SCENARIO` (`-s number`, 20 calls/s, at
/// most 10 at once, 30 s timeout); returns its exit code, its error output (and error
/// log) and its final screen (its per-message counters).
pub fn sipp_run(
    scenario: &str,
    target_port: u16,
    transport: &str,
    number: &str,
    calls: u32,
) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let out = Command::new(sipp())
        .arg(format!("127.0.0.1:{target_port}"))
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-s", number])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-t", transport])
        .args(["-m", &calls.to_string(), "-r", "20", "-l", "10"])
        .args(["-timeout", "30", "-timeout_error", "-nostdin", "-trace_err"])
        .arg("-trace_screen")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut screen = String::new();
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with("_errors.log") {
            err.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        } else if name.ends_with("_screen.log") {
            screen = std::fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    (out.status.code().unwrap_or(-1), err, screen)
}

/// One sample: metric name (with `_bucket`/`_count`… suffixes), labels, value.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// Families by name: (type, samples).
pub type Families = std::collections::BTreeMap<String, (String, Vec<Sample>)>;

/// The Python of the repo's venv (`scripts/test` installs prometheus_client there).
fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test, which installs prometheus_client from PyPI",
        p.display()
    );
    p
}

/// Parses exposition text with `prometheus_client.parser` (the reference parser).
pub fn parse_exposition(text: &str) -> Families {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut families = Families::new();
    for f in v.as_array().unwrap() {
        let samples = f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Sample {
                name: s["name"].as_str().unwrap().to_string(),
                labels: s["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                value: s["value"].as_f64().unwrap_or(f64::NAN),
            })
            .collect();
        families.insert(
            f["name"].as_str().unwrap().to_string(),
            (f["type"].as_str().unwrap().to_string(), samples),
        );
    }
    families
}

/// Runs `promtool ARGS` in `dir` with `input` on its standard input; panics with its
/// output unless it succeeds.
pub fn promtool(args: &[&str], dir: &Path, input: &str) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A finished command's standard output, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished command's standard error, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A finished command's exit code (-1 when a signal ended it).
pub fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The first value of header `name` (any case) in a SIP message.
pub fn sip_header<'m>(msg: &'m str, name: &str) -> Option<&'m str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim_ascii())
    })
}

/// A digest algorithm as a SIP client computes it (RFC 7616, RFC 8760), with the
/// md-5 and sha2 crates (not with enroute's own code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    Sha256,
    Md5,
}

impl DigestAlg {
    /// Its `algorithm=` token.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha256 => "SHA-256",
            DigestAlg::Md5 => "MD5",
        }
    }

    /// Lower-case hex of the hash of `text`.
    pub fn hash(self, text: &str) -> String {
        use sha2::Digest;
        let bytes: Vec<u8> = match self {
            DigestAlg::Sha256 => sha2::Sha256::digest(text.as_bytes()).to_vec(),
            DigestAlg::Md5 => md5::Md5::digest(text.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// H(user:realm:password).
    pub fn ha1(self, user: &str, realm: &str, password: &str) -> String {
        self.hash(&format!("{user}:{realm}:{password}"))
    }
}

/// An `Authorization: Digest …` line (no CRLF) answering `nonce` with `qop=auth` and
/// count `nc` for a REGISTER whose Request-URI is `uri`; `credentials` are the digest
/// username, realm and password.
pub fn digest_authorization(
    alg: DigestAlg,
    uri: &str,
    (user, realm, password): (&str, &str, &str),
    nonce: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let ha1 = alg.ha1(user, realm, password);
    let ha2 = alg.hash(&format!("REGISTER:{uri}"));
    let nc = format!("{nc:08x}");
    let response = alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm={}, cnonce=\"{cnonce}\", \
         qop=auth, nc={nc}",
        alg.name()
    )
}

/// [`digest_authorization`] in MD5 for a REGISTER to `sip:REALM`.
pub fn md5_authorization(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let uri = format!("sip:{realm}");
    digest_authorization(
        DigestAlg::Md5,
        &uri,
        (user, realm, password),
        nonce,
        nc,
        cnonce,
    )
}
