//! What an operator sees from `enroute serve`: configuration errors that name
//! `FILE:LINE: KEY` (at start, and on SIGHUP for a zone file), nothing started after one;
//! the warning when a zone file is ignored because its serial was not raised (and
//! `keeper::file_drift`, which `zone check --config` reports from, agreeing while the
//! server runs); the start-up summary ending with the `ready` line, saying where the
//! admin token came from (an empty token file means a generated one); and a store-only
//! zone managed through the admin API across restarts.

mod common;

use common::{Enroute, dns_query, free_port, sip_contact};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";

/// The test zone with `serial`, routing +441632960001 to `user`.
fn zone(serial: u32, user: &str) -> String {
    format!(
        "$ORIGIN {ORIGIN}\n$TTL 60\n@ SOA ns.example. h.example. {serial} 3600 900 604800 60\n\
         @ NS ns.example.\n\
         1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:{user}@x.example!\" .\n"
    )
}

/// The 1-based line of `text` holding `needle` (the first one).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
        + 1
}

/// Ports a config written by [`write_config`] listens on.
struct Ports {
    udp: u16,
    tcp: u16,
    dns: u16,
    admin: u16,
}

/// Writes `dir/e.toml`: SIP, DNS and admin on free loopback ports, the token file and
/// store in `dir`, no upstream ENUM, then `extra`. Returns the ports and the text.
fn write_config(dir: &Path, extra: &str) -> (Ports, String) {
    let p = Ports {
        udp: free_port(),
        tcp: free_port(),
        dns: free_port(),
        admin: free_port(),
    };
    let text = format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:{}\", \"tcp:127.0.0.1:{}\"]\n\n\
         [dns]\nlisten = [\"udp:127.0.0.1:{dns}\", \"tcp:127.0.0.1:{dns}\"]\n\n\
         [admin]\nlisten = \"127.0.0.1:{}\"\ntoken_file = \"admin.token\"\n\n\
         [store]\npath = \"data/enroute.db\"\n\n[enum]\nsuffixes = []\n\n{extra}",
        p.udp,
        p.tcp,
        p.admin,
        dns = p.dns
    );
    std::fs::write(dir.join("e.toml"), &text).unwrap();
    (p, text)
}

/// `enroute serve --config e.toml` in `dir`, killed on drop; its stderr lines on `lines`.
struct Serve {
    child: Child,
    lines: Receiver<String>,
}

impl Serve {
    fn spawn(dir: &Path, env: &[(&str, &str)]) -> Serve {
        let (child, lines) = common::spawn_serve(dir, env);
        Serve { child, lines }
    }

    /// Every line up to and including the first with "ready"; `None` when the server
    /// ended first (the lines it wrote are in the panic message when it was not a
    /// port taken by someone else).
    fn until_ready(&self) -> Option<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let ready = l.contains("ready");
                    seen.push(l);
                    if ready {
                        return Some(seen);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                    if seen.iter().any(|l| l.contains("cannot bind")) =>
                {
                    return None;
                }
                Err(_) => panic!("no ready line within 20 s:\n{}", seen.join("\n")),
            }
        }
    }

    /// Stops the server with SIGTERM (a graceful stop) and returns every line it wrote
    /// after those already read, up to its exit.
    fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let _ = self.child.wait();
        // The reader thread ends with the pipe, which the exit closed.
        self.lines.iter().collect()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts again on the config as written (same ports), retrying while the sockets of
/// the run before linger; returns the server and its lines up to `ready`.
fn spawn_again(dir: &Path, env: &[(&str, &str)]) -> (Serve, Vec<String>) {
    for _ in 0..50 {
        let serve = Serve::spawn(dir, env);
        if let Some(lines) = serve.until_ready() {
            return (serve, lines);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("enroute did not start again on its ports");
}

/// Runs `enroute serve --config e.toml` in `dir` expecting it to exit on its own;
/// returns its exit code and stderr (killed, and the test failed, after 20 s).
fn serve_until_exit(dir: &Path) -> (i32, String) {
    let mut run = Serve::spawn(dir, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "enroute serve did not exit within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The reader thread ends with the pipe.
    let stderr: Vec<String> = run.lines.iter().collect();
    (code, stderr.join("\n"))
}

/// Nothing of the server came up: no listener line, no ready line.
fn assert_nothing_started(stderr: &str) {
    assert!(
        !stderr.contains("listening") && !stderr.contains("ready"),
        "the server started something:\n{stderr}"
    );
}

#[test]
fn an_invalid_log_level_is_a_config_error_and_starts_nothing() {
    for level in ["verbose", "inof", "enroute=loud"] {
        let dir = tempfile::tempdir().unwrap();
        let (ports, text) = write_config(dir.path(), &format!("[log]\nlevel = \"{level}\"\n"));
        let (code, stderr) = serve_until_exit(dir.path());
        assert_eq!(code, 2, "{stderr}");
        let line = line_of(&text, "level =");
        assert!(
            stderr.contains(&format!("e.toml:{line}: log.level: ")),
            "{stderr}"
        );
        assert!(
            stderr.contains("off, error, warn, info, debug or trace"),
            "the message says what a level is: {stderr}"
        );
        assert_nothing_started(&stderr);
        assert!(
            !dir.path().join("data").exists(),
            "a config error must not create the store"
        );
        assert!(std::net::TcpListener::bind(("127.0.0.1", ports.admin)).is_ok());
    }
}

#[test]
fn value_errors_name_file_line_and_key() {
    // (config text, expected start of the error line)
    let cases = [
        (
            "# listeners\n\n[sip]\nlisten = [\n  \"udp:127.0.0.1:5060\",\n  \"127.0.0.1:5060\",\n]\n",
            "e.toml:6: sip.listen[1]: unknown transport \"127.0.0.1\"",
        ),
        (
            "[dialplan]\nrules = [\n  { match = '^00([1-9][0-9]+)$', replace = '+$1' },\n  { match = '^(0', replace = '+44$1' },\n]\n",
            "e.toml:4: dialplan.rules[1].match: invalid regex",
        ),
        (
            "[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{e164}@gw.example\"]\n\n[[gateway]]\nprefix = \"+1\"\nuris = [\"sip:{nope}@gw.example\"]\n",
            "e.toml:7: gateway[1].uris[0]: unknown placeholder {nope}",
        ),
    ];
    for (text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("e.toml"), text).unwrap();
        let (code, stderr) = serve_until_exit(dir.path());
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("enroute: config error: {expected}")),
            "expected {expected:?} in:\n{stderr}"
        );
        assert_nothing_started(&stderr);
    }
}

#[test]
fn a_missing_zone_file_is_named_by_the_config_line_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = write_config(
        dir.path(),
        "[[zone]]\norigin = \"5.5.5.2.0.2.1.e164.arpa.\"\nfile = \"missing.zone\"\n",
    );
    let (code, stderr) = serve_until_exit(dir.path());
    assert_eq!(code, 2, "{stderr}");
    let line = line_of(&text, "missing.zone");
    assert!(
        stderr.contains(&format!("e.toml:{line}: zone[0].file: cannot read \""))
            && stderr.contains("missing.zone\": No such file or directory"),
        "{stderr}"
    );
    assert_nothing_started(&stderr);
}

#[test]
fn files_and_addresses_used_at_start_are_named_by_their_config_line() {
    // An unreadable TLS certificate.
    let dir = tempfile::tempdir().unwrap();
    let tls_port = free_port();
    let (_, text) = write_config(dir.path(), "");
    let text = text.replacen(
        "\"]\n",
        &format!(
            "\", \"tls:127.0.0.1:{tls_port}\"]\n[sip.tls]\ncert = \"nope.pem\"\nkey = \"nope.key\"\n"
        ),
        1,
    );
    std::fs::write(dir.path().join("e.toml"), &text).unwrap();
    let (code, stderr) = serve_until_exit(dir.path());
    assert_eq!(code, 1, "{stderr}");
    let line = line_of(&text, "nope.pem");
    assert!(
        stderr.contains(&format!(
            "e.toml:{line}: sip.tls.cert: cannot read \"nope.pem\""
        )),
        "{stderr}"
    );

    // An admin address someone else holds.
    let dir = tempfile::tempdir().unwrap();
    let (ports, text) = write_config(dir.path(), "");
    let _taken = std::net::TcpListener::bind(("127.0.0.1", ports.admin)).unwrap();
    let (code, stderr) = serve_until_exit(dir.path());
    assert_eq!(code, 1, "{stderr}");
    let line = line_of(&text, "listen = \"127.0.0.1:");
    assert!(
        stderr.contains(&format!(
            "e.toml:{line}: admin.listen: cannot bind 127.0.0.1:{}",
            ports.admin
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_zone_file_on_sighup_is_rejected_with_the_same_location() {
    let server = Enroute::start(&zone(1, "alice"), "");
    let config = server.dir.path().join("e.toml");
    let text = format!(
        "{}\n[[zone]]\norigin = \"5.5.5.2.0.2.1.e164.arpa.\"\nfile = \"missing.zone\"\n",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, &text).unwrap();
    server.sighup();
    let rejected = server.wait_for("reload rejected");
    let line = line_of(&text, "missing.zone");
    assert!(
        rejected.contains(&format!("e.toml:{line}: zone[1].file: cannot read \""))
            && rejected.contains("missing.zone\": No such file or directory"),
        "{rejected}"
    );
    server.wait_for("SIGHUP: reload rejected, nothing changed");
    assert_eq!(
        sip_contact(server.sip_udp, "+441632960001"),
        "Contact: <sip:alice@x.example>;q=1.0"
    );
}

/// The verdict `keeper::file_drift` gives the test zone now (read-only, beside the
/// running server), with the file's and the stored serial.
fn drift(dir: &Path) -> (String, Option<u32>, Option<u32>) {
    let config = enroute::config::Config::load(&dir.join("e.toml")).unwrap();
    let all = enroute::keeper::file_drift(&config).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let d = &all[0];
    assert_eq!(d.origin.to_string(), ORIGIN);
    assert!(d.file.ends_with("z.zone"), "{:?}", d.file);
    let verdict = format!("{:?}", d.verdict);
    (verdict, d.file_serial, d.served_serial)
}

#[test]
fn a_zone_file_edited_without_a_higher_serial_is_a_warning_naming_the_file() {
    let server = Enroute::start(&zone(1, "alice"), "");
    let dir = server.dir.path().to_path_buf();
    assert_eq!(drift(&dir), ("Same".into(), Some(1), Some(1)));

    // Edited, serial kept: ignored, with a warning that says what to do.
    std::fs::write(dir.join("z.zone"), zone(1, "bob")).unwrap();
    server.sighup();
    let warning = server.wait_for("differs from the zone being served");
    assert!(
        warning.contains("WARN")
            && warning.contains("z.zone")
            && warning.contains("raise its serial above 1")
            && warning.contains("admin API"),
        "{warning}"
    );
    let done = server.wait_for("SIGHUP: reload done");
    assert!(
        done.contains("WARN") && done.contains("ignored_files=1"),
        "{done}"
    );
    assert_eq!(
        sip_contact(server.sip_udp, "+441632960001"),
        "Contact: <sip:alice@x.example>;q=1.0",
        "the old answer is still served"
    );
    assert_eq!(drift(&dir), ("Ignored".into(), Some(1), Some(1)));

    // The file back as served: no warning.
    std::fs::write(dir.join("z.zone"), zone(1, "alice")).unwrap();
    server.sighup();
    let mut lines = Vec::new();
    loop {
        let l = server.wait_for("");
        let done = l.contains("SIGHUP: reload done");
        lines.push(l);
        if done {
            break;
        }
    }
    assert!(
        !lines.iter().any(|l| l.contains("differs")) && lines.last().unwrap().contains("INFO"),
        "{lines:?}"
    );

    // A higher serial: the file is newer and replaces the zone on SIGHUP.
    std::fs::write(dir.join("z.zone"), zone(2, "bob")).unwrap();
    assert_eq!(drift(&dir), ("FileNewer".into(), Some(2), Some(1)));
    server.sighup();
    server.wait_for("zone reloaded");
    assert_eq!(
        sip_contact(server.sip_udp, "+441632960001"),
        "Contact: <sip:bob@x.example>;q=1.0"
    );
    assert_eq!(drift(&dir), ("Same".into(), Some(2), Some(2)));
}

#[test]
fn an_ignored_zone_file_is_a_warning_at_start_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), zone(1, "alice")).unwrap();
    let zone_conf = format!("[[zone]]\norigin = \"{ORIGIN}\"\nfile = \"z.zone\"\n");
    for attempt in 0.. {
        write_config(dir.path(), &zone_conf);
        let serve = Serve::spawn(dir.path(), &[]);
        if let Some(lines) = serve.until_ready() {
            assert!(!lines.iter().any(|l| l.contains("differs")), "{lines:?}");
            serve.stop();
            break;
        }
        assert!(attempt < 5, "no free ports in 5 tries");
    }
    assert_eq!(drift(dir.path()), ("Same".into(), Some(1), Some(1)));
    std::fs::write(dir.path().join("z.zone"), zone(1, "bob")).unwrap();
    assert_eq!(drift(dir.path()), ("Ignored".into(), Some(1), Some(1)));
    let (_serve, lines) = spawn_again(dir.path(), &[]);
    let warning = lines
        .iter()
        .find(|l| l.contains("differs from the zone being served"))
        .unwrap_or_else(|| panic!("no warning at start: {lines:?}"));
    assert!(
        warning.contains("WARN") && warning.contains("z.zone"),
        "{warning}"
    );
}

#[test]
fn the_start_up_summary_names_everything_and_ready_comes_last() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), zone(7, "alice")).unwrap();
    let zone_conf = format!("[[zone]]\norigin = \"{ORIGIN}\"\nfile = \"z.zone\"\n");
    let mut tries = 0;
    let (ports, first, lines) = loop {
        let (ports, _) = write_config(dir.path(), &zone_conf);
        let serve = Serve::spawn(dir.path(), &[]);
        if let Some(lines) = serve.until_ready() {
            break (ports, serve, lines);
        }
        tries += 1;
        assert!(tries < 5, "no free ports in 5 tries");
    };
    let find =
        |needle: &str| -> Vec<&String> { lines.iter().filter(|l| l.contains(needle)).collect() };
    let one = |needle: &str| -> &String {
        let found = find(needle);
        assert_eq!(found.len(), 1, "{needle:?} once in:\n{}", lines.join("\n"));
        found[0]
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let udp = one("SIP listening on udp");
    assert!(
        udp.contains(&format!("addr=127.0.0.1:{}", ports.udp)),
        "{udp}"
    );
    if cores > 1 {
        assert!(udp.contains(&format!("sockets={cores}")), "{udp}");
    }
    assert!(one("SIP listening on tcp").contains(&format!("addr=127.0.0.1:{}", ports.tcp)));
    assert!(one("DNS listening on udp").contains(&format!("addr=127.0.0.1:{}", ports.dns)));
    assert!(one("DNS listening on tcp").contains(&format!("addr=127.0.0.1:{}", ports.dns)));
    let admin = one("admin API listening");
    assert!(
        admin.contains(&format!("http://127.0.0.1:{}", ports.admin))
            && admin.contains("/healthz")
            && admin.contains("/metrics"),
        "{admin}"
    );
    assert!(one("config file=").contains("e.toml"));
    assert!(one("store path=").contains("data/enroute.db"));
    let token_line = one("admin token");
    assert!(token_line.contains("file=admin.token"), "{token_line}");
    let zone_line = find(&format!("zone={ORIGIN}"))
        .into_iter()
        .find(|l| l.contains("source="))
        .unwrap_or_else(|| panic!("no summary line for the zone:\n{}", lines.join("\n")));
    assert!(
        zone_line.contains("serial=7") && zone_line.contains("records=3"),
        "{zone_line}"
    );
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    assert!(
        !lines.iter().any(|l| l.contains(token.trim())),
        "the token itself is never logged"
    );
    // The whole log, up to the exit a SIGTERM causes: the ready line ends the start-up
    // (the next line is the stop's), and no line before it says "ready".
    let all: Vec<String> = lines.iter().cloned().chain(first.terminate()).collect();
    let ready_line = format!("enroute {} ready", env!("CARGO_PKG_VERSION"));
    let ready = all
        .iter()
        .position(|l| l.contains(&ready_line))
        .unwrap_or_else(|| panic!("no {ready_line:?} line:\n{}", all.join("\n")));
    assert!(all[ready].contains("INFO"), "{}", all[ready]);
    let early: Vec<_> = all[..ready]
        .iter()
        .filter(|l| l.contains("ready"))
        .collect();
    assert!(
        early.is_empty(),
        "\"ready\" before the ready line: {early:?}"
    );
    assert!(
        all.get(ready + 1)
            .is_some_and(|l| l.contains("shutting down")),
        "start-up lines after the ready line:\n{}",
        all[ready..].join("\n")
    );

    // Every later start names the token file too; with the environment variable, that.
    let (later, lines) = spawn_again(dir.path(), &[]);
    later.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("admin token") && l.contains("file=admin.token")),
        "{lines:?}"
    );
    let (_from_env, lines) = spawn_again(dir.path(), &[("ENROUTE_ADMIN_TOKEN", "s3cret-token")]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("admin token: from ENROUTE_ADMIN_TOKEN")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("s3cret-token")));
}

#[test]
fn an_empty_token_file_is_reported_as_a_generated_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    let mut tries = 0;
    let (serve, lines) = loop {
        write_config(dir.path(), "");
        std::fs::write(&token_file, "  \n").unwrap();
        let serve = Serve::spawn(dir.path(), &[]);
        if let Some(lines) = serve.until_ready() {
            break (serve, lines);
        }
        tries += 1;
        assert!(tries < 5, "no free ports in 5 tries");
    };
    serve.stop();
    let token: Vec<_> = lines.iter().filter(|l| l.contains("admin token")).collect();
    assert!(
        token.len() == 1 && token[0].contains("admin token generated into its file"),
        "{token:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim().len(),
        64,
        "a new token was written"
    );
    // Started again, the token it wrote is read back, and the summary says so.
    let (again, lines) = spawn_again(dir.path(), &[]);
    again.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("admin token read from its file")),
        "{lines:?}"
    );
}

#[test]
fn a_store_only_zone_is_created_then_managed_through_the_api() {
    let origin = "9.9.9.4.4.e164.arpa.";
    let mut server = Enroute::start_with(
        "",
        &format!("[[zone]]\norigin = \"{origin}\"\n"),
        &[],
        |_| {},
    );
    let soa = |port: u16| -> u32 {
        let m = dns_query(port, origin, 6).expect("SOA answer");
        match &m.answers[0].data {
            hickory_proto::rr::RData::SOA(soa) => soa.serial,
            other => panic!("not a SOA: {other:?}"),
        }
    };
    let first = soa(server.dns);
    // A date serial, YYYYMMDD01.
    assert!(
        (2_020_010_101..2_100_010_101).contains(&first) && first % 100 == 1,
        "{first}"
    );
    assert!(sip_contact(server.sip_udp, "+4499912345").contains("404"));

    let r = server.put_number(
        "+4499912345",
        r#"{"routes":[{"uri":"sip:carol@pbx.example.net"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        sip_contact(server.sip_udp, "+4499912345"),
        "Contact: <sip:carol@pbx.example.net>;q=1.0"
    );
    assert!(soa(server.dns) > first);

    // SIGHUP leaves it alone; a restart serves the stored copy, not a new empty zone.
    server.sighup();
    server.wait_for("SIGHUP: reload done");
    assert_eq!(
        sip_contact(server.sip_udp, "+4499912345"),
        "Contact: <sip:carol@pbx.example.net>;q=1.0"
    );
    server.restart();
    assert_eq!(
        sip_contact(server.sip_udp, "+4499912345"),
        "Contact: <sip:carol@pbx.example.net>;q=1.0"
    );
    assert_eq!(soa(server.dns), first + 1);
}
