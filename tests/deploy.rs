//! deploy/ as an operator uses it: the Prometheus scrape config and alert rules pass
//! `promtool` (and the alerts' own unit tests), every metric the alerts and the Grafana
//! dashboard name is exported by a running server, the systemd unit passes
//! `systemd-analyze verify`, and the multi-instance example brings a primary and two
//! secondaries up on loopback, routes a number added on the primary through a
//! secondary (found by DNS SRV, asked by SIPp), and stops everything it started.

mod common;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    let dir = deploy("prometheus");
    common::promtool(&["check", "config", "prometheus.yml"], &dir, "");
    common::promtool(&["check", "rules", "alerts.yml"], &dir, "");
    // The alerts fire on the series they are meant for, and only there.
    common::promtool(&["test", "rules", "alerts_test.yml"], &dir, "");
}

#[test]
fn systemd_unit_verifies() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze not available here: unit not verified");
        return;
    };
    assert!(version.status.success());
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(deploy("systemd/enroute.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/enroute serve"));
    let unit = unit.replace("/usr/local/bin/enroute", env!("CARGO_BIN_EXE_enroute"));
    let path = dir.path().join("enroute.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Unknown or misspelt keys are only warnings: any line about the unit fails too.
    assert!(
        out.status.success() && !err.contains("enroute.service"),
        "systemd-analyze verify: {err}"
    );
    // The hardening the unit promises.
    for key in [
        "DynamicUser=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "StateDirectory=enroute",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .any(|l| l == key),
            "{key}"
        );
    }
    // The store the unit's example config uses is in its StateDirectory.
    let config = std::fs::read_to_string(deploy("systemd/enroute.toml")).unwrap();
    assert!(config.contains("path = \"/var/lib/enroute/enroute.db\""));
}

/// Metric names (`enroute_…`, `process_…`) in a file of PromQL.
fn metric_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(?:enroute|process)_[a-z0-9_]+\b").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

#[test]
fn dashboard_and_alerts_name_only_exported_metrics() {
    // Upstream ENUM at a port where nothing answers, so the per-suffix series exist.
    let nobody = common::free_port();
    let server = common::Enroute::start(
        "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n@ SOA ns.example. h.example. 1 3600 900 604800 60\n",
        &format!(
            "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{nobody}\"]\ntimeout_ms = 200\n\n\
             [[gateway]]\nprefix = \"+\"\nuris = [\"sip:{{e164}}@gw.example\"]\n"
        ),
    );
    let client = common::SipUdp::new(server.sip_udp, Duration::from_secs(5));
    client.send(&common::invite("+441632960099", "d1", client.port()));
    let mut last = String::new();
    while common::sip_status(&last) < 200 {
        last = client.recv().expect("an answer");
    }
    // The second scrape also shows the first one in the admin API's counter.
    common::http(server.admin, "GET", "/metrics", &[], b"");
    let text = common::http(server.admin, "GET", "/metrics", &[], b"").text();
    let families = common::parse_exposition(&text);
    let exported: BTreeSet<String> = families
        .values()
        .flat_map(|(_, samples)| samples.iter().map(|s| s.name.clone()))
        .collect();
    let mut named = BTreeSet::new();
    for file in ["prometheus/alerts.yml", "grafana/enroute.json"] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        let names = metric_names(&text);
        assert!(names.len() >= 5, "{file}: {names:?}");
        named.extend(names);
    }
    let missing: Vec<_> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not in /metrics: {missing:?}\nexported: {exported:?}"
    );
    // The dashboard is Grafana JSON with a panel per family worth watching.
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/enroute.json")).unwrap())
            .unwrap();
    assert!(dash["panels"].as_array().unwrap().len() >= 10);
}

/// `deploy/multi/run` in the background; SIGTERM and a wait when dropped.
struct Multi {
    child: std::process::Child,
    state: tempfile::TempDir,
}

impl Drop for Multi {
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_some()) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn multi_instance_example_routes_through_a_secondary_and_stops_everything() {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(deploy("multi/run"))
        .arg(state.path())
        .env("ENROUTE_BIN", env!("CARGO_BIN_EXE_enroute"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut multi = Multi { child, state };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("deploy/multi/run did not print 'multi: ready' within 90 s");
        if line == "multi: ready" {
            break;
        }
    }
    let env = std::fs::read_to_string(multi.state.path().join("ports.env")).unwrap();
    let port = |key: &str| -> u16 {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in ports.env"))
            .parse()
            .unwrap()
    };
    let token = std::fs::read_to_string(multi.state.path().join("admin.token")).unwrap();

    // A number added on the primary...
    let auth = format!("Bearer {}", token.trim());
    let number = "+441632960777";
    let put = common::http(
        port("PRIMARY_ADMIN"),
        "PUT",
        &format!("/v1/numbers/{number}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"routes":[{"uri":"sip:multi@pbx.example.net"}]}"#,
    );
    assert_eq!(put.status, 200, "{}", put.text());

    // ...reaches both secondaries by NOTIFY + AXFR.
    let name = "7.7.7.0.6.9.2.3.6.1.4.4.e164.arpa.";
    for secondary in ["SECONDARY_1_DNS", "SECONDARY_2_DNS"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = common::dns_query(port(secondary), name, 35);
            if answer.is_some_and(|m| !m.answers.is_empty()) {
                break;
            }
            assert!(Instant::now() < deadline, "{secondary} never served {name}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // RFC 3263: the SIP instances are published as SRV; take secondary-1's.
    let srv =
        common::dns_query(port("PRIMARY_DNS"), "_sip._udp.enroute.test.", 33).expect("SRV answer");
    let targets: Vec<(String, u16)> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::SRV(s) => Some((s.target.to_string(), s.port)),
            _ => None,
        })
        .collect();
    assert_eq!(targets.len(), 3, "{targets:?}");
    let (_, sip_port) = targets
        .iter()
        .find(|(t, _)| t == "secondary-1.enroute.test.")
        .unwrap_or_else(|| panic!("{targets:?}"))
        .clone();
    assert_eq!(sip_port, port("SECONDARY_1_SIP"));

    // SIPp calls the number through the secondary: 302 with the primary's Contact.
    let (code, err, _) = common::sipp_run("uac-302-multi.xml", sip_port, "u1", number, 5);
    assert_eq!(code, 0, "SIPp through secondary-1 failed: {err}");

    // Stopping the script stops all three servers.
    let pids: Vec<u32> = std::fs::read_to_string(multi.state.path().join("pids"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    let _ = Command::new("kill")
        .args(["-TERM", &multi.child.id().to_string()])
        .status();
    let status = multi.child.wait().unwrap();
    assert!(status.success(), "deploy/multi/run exited with {status}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "enroute {pid} still runs after the script stopped"
        );
    }
}
