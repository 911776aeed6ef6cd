//! deploy/, scripts/sip-smoke and the user docs as an operator uses them: the
//! Prometheus scrape config and alert rules pass `promtool` (and the alerts' own unit
//! tests), every metric the alerts and the Grafana dashboard name is exported by a
//! running server, the systemd unit passes `systemd-analyze verify`, the
//! multi-instance example brings a primary and two secondaries up on loopback, routes
//! a number added on the primary through a secondary (taken by IXFR, found by DNS SRV,
//! asked by SIPp), has a zone created and deleted on the primary's API served and
//! withdrawn by both secondaries through the catalog, and stops everything it started, and without `ENROUTE_BIN` runs the binary
//! cargo built wherever `CARGO_TARGET_DIR` put it; the SIP smoke script prints a live
//! server's answer; and docs/ describes every metric family and admin route the
//! server has.

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
             [[gateway]]\nprefix = \"+\"\nuris = [\"sip:{{e164}}@gw.example\"]\n\n\
             [registrar]\nenabled = true\ndomains = [\"example.net\"]\n"
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

    // ...reaches both secondaries by NOTIFY + IXFR, signed (TSIG), the zones found
    // through the primary's catalog.
    let name = "7.7.7.0.6.9.2.3.6.1.4.4.e164.arpa.";
    let served = |secondary: &str, name: &str| {
        common::dns_query(port(secondary), name, 35).is_some_and(|m| !m.answers.is_empty())
    };
    let wait_until = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for secondary in ["SECONDARY_1_DNS", "SECONDARY_2_DNS"] {
        wait_until(&format!("{secondary} never served {name}"), &|| {
            served(secondary, name)
        });
    }
    // The secondary logs the IXFR just after it starts serving the new copy, so the
    // line may trail the answer by a moment.
    for n in ["secondary-1", "secondary-2"] {
        let log_path = multi.state.path().join(n).join("log");
        let took_ixfr = || {
            std::fs::read_to_string(&log_path).is_ok_and(|log| {
                log.lines().any(|l| {
                    l.contains("IXFR in: serving the new copy")
                        && l.contains("2.3.6.1.4.4.e164.arpa.")
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !took_ixfr() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(took_ixfr(), "{n} did not take the change by IXFR:\n{log}");
    }

    // A zone created on the primary's API is served by both secondaries, without a
    // restart; deleted, it is gone from both.
    let zone = "$TTL 60\n@ SOA ns1.example.net. hostmaster.example.net. 1 60 30 3600 60\n\
                @ NS ns1.example.net.\n\
                1.2.3 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:new@pbx.example.net!\" .\n";
    let zone_path = "/v1/zones/9.9.e164.arpa.";
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/dns"),
    ];
    let created = common::http(
        port("PRIMARY_ADMIN"),
        "PUT",
        zone_path,
        &headers,
        zone.as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let new_name = "1.2.3.9.9.e164.arpa.";
    for secondary in ["SECONDARY_1_DNS", "SECONDARY_2_DNS"] {
        wait_until(&format!("{secondary} never served the new zone"), &|| {
            served(secondary, new_name)
        });
    }
    let deleted = common::http(
        port("PRIMARY_ADMIN"),
        "DELETE",
        zone_path,
        &headers[..1],
        b"",
    );
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    for secondary in ["SECONDARY_1_DNS", "SECONDARY_2_DNS"] {
        wait_until(
            &format!("{secondary} still serves the deleted zone"),
            &|| !served(secondary, new_name),
        );
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

    // Registrations (deploy/scale-out.md "Registrations"): the users' domain is
    // published with the registrar instance alone; a user registers there and is
    // called there, while a secondary, which holds no bindings, does not know it.
    let srv = common::dns_query(port("SECONDARY_2_DNS"), "_sip._udp.users.enroute.test.", 33)
        .expect("SRV answer");
    let registrar: Vec<u16> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::SRV(s) => Some(s.port),
            _ => None,
        })
        .collect();
    assert_eq!(registrar, [port("PRIMARY_SIP")]);
    let user = common::http(
        port("PRIMARY_ADMIN"),
        "PUT",
        "/v1/users/alice@users.enroute.test",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"password":"multi-secret"}"#,
    );
    assert_eq!(user.status, 201, "{}", user.text());
    let ok = register_md5(registrar[0], "alice", "users.enroute.test", "multi-secret");
    assert_eq!(common::sip_status(&ok), 200, "{ok}");
    let call = |sip_port: u16| {
        let client = common::SipUdp::new(sip_port, Duration::from_secs(5));
        let invite = common::invite("alice", "reg1", client.port())
            .replace("sip:alice@127.0.0.1", "sip:alice@users.enroute.test");
        client.ask(&invite)
    };
    let on_registrar = call(registrar[0]);
    assert!(
        on_registrar.starts_with("SIP/2.0 302")
            && on_registrar.contains("<sip:alice@192.0.2.55:5060>"),
        "{on_registrar}"
    );
    let on_secondary = call(port("SECONDARY_1_SIP"));
    assert_eq!(common::sip_status(&on_secondary), 404, "{on_secondary}");

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

/// `deploy/multi/run` without `ENROUTE_BIN` builds with cargo and runs the binary cargo
/// names: here a stand-in `cargo` first on PATH reports one under `CARGO_TARGET_DIR`
/// (given relative to the caller's directory, as a user types it), and that binary
/// records how it was started before it exits.
#[test]
fn multi_run_runs_the_binary_cargo_built_in_cargo_target_dir() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    // As the script's shell sees its working directory (no symlinks).
    let dir = tmp.path().canonicalize().unwrap();
    let fake_bin = dir.join("fake-bin");
    std::fs::create_dir(&fake_bin).unwrap();
    let seen = dir.join("cargo-saw");
    let started = dir.join("enroute-started");
    // The stand-in cargo: what it was asked and with which target directory, then a
    // compiler-artifact message naming the binary it "built" there.
    let cargo = format!(
        r#"#!/bin/sh
echo "$CARGO_TARGET_DIR $*" >> '{seen}'
mkdir -p "$CARGO_TARGET_DIR/release"
printf '#!/bin/sh\necho "$*" >> %s\nexit 1\n' '{started}' > "$CARGO_TARGET_DIR/release/enroute"
chmod +x "$CARGO_TARGET_DIR/release/enroute"
echo '{{"reason":"compiler-artifact","target":{{"kind":["custom-build"],"name":"build-script-build"}},"executable":null}}'
echo '{{"reason":"compiler-artifact","target":{{"kind":["bin"],"name":"enroute"}},"executable":"'"$CARGO_TARGET_DIR"'/release/enroute"}}'
echo '{{"reason":"build-finished","success":true}}'
"#,
        seen = seen.display(),
        started = started.display()
    );
    let cargo_path = fake_bin.join("cargo");
    std::fs::write(&cargo_path, cargo).unwrap();
    std::fs::set_permissions(&cargo_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(deploy("multi/run"))
        .arg(dir.join("state"))
        .current_dir(&dir)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", "my-target")
        .env_remove("ENROUTE_BIN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The stand-in binary exits at once: the script says so and fails.
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("an instance exited"), "{stderr}");
    let target = dir.join("my-target");
    let asked = std::fs::read_to_string(&seen).expect("deploy/multi/run never ran cargo");
    assert!(
        asked.starts_with(&format!("{} build --release", target.display())),
        "cargo ran as: {asked}"
    );
    let runs = std::fs::read_to_string(&started)
        .unwrap_or_else(|_| panic!("the binary in {} never ran: {stderr}", target.display()));
    assert!(
        runs.lines().all(|l| l == "serve --config enroute.toml"),
        "{runs}"
    );
}

/// `scripts/sip-smoke` as a user runs it against a live server: the status line and
/// the Contacts, over UDP and TCP, and its exit status by answer; a number typed or
/// pasted with spaces and separators is sent as one user part.
#[test]
fn sip_smoke_prints_the_answer_and_exits_by_status() {
    let zone = "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n\
        @ SOA ns.example. h.example. 1 3600 900 604800 60\n@ NS ns.example.\n\
        1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:alice@pbx.example.net!\" .\n\
        1.0.0.0.6.9 NAPTR 100 20 \"u\" \"E2U+sip\" \"!^.*$!sip:alice@backup.example.net!\" .\n";
    let server = common::Enroute::start(zone, "");
    let smoke = |args: &[&str]| {
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sip-smoke"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let udp = format!("127.0.0.1:{}", server.sip_udp);
    let tcp = format!("127.0.0.1:{}", server.sip_tcp);
    let contacts = "SIP/2.0 302 Moved Temporarily\n\
        Contact: <sip:alice@pbx.example.net>;q=1.0\n\
        Contact: <sip:alice@backup.example.net>;q=0.9\n";
    let (code, out, err) = smoke(&["+441632960001", &udp]);
    assert_eq!((code, out.as_str()), (Some(0), contacts), "{err}");
    let (code, out, err) = smoke(&["+441632960001", &tcp, "--tcp"]);
    assert_eq!((code, out.as_str()), (Some(0), contacts), "{err}");
    // No record and no gateway: 404, exit 1.
    let (code, out, err) = smoke(&["sip:+441632960002@example.net", &udp]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "SIP/2.0 404 Not Found\n"),
        "{err}"
    );
    // A number as pasted, with spaces and visual separators: they are dropped before it
    // goes into the request line (not a 400 for a four-part line), and it routes.
    let (code, out, err) = smoke(&["+44 (1632) 960-001", &udp]);
    assert_eq!((code, out.as_str()), (Some(0), contacts), "{err}");
    // Not a number, but sent as one: the server's 404 for it, not a 400 for the line;
    // a character a user part cannot hold ('#') is %-escaped rather than sent raw.
    for text in ["bad number", "*21#"] {
        let (code, out, err) = smoke(&[text, &tcp, "--tcp"]);
        assert_eq!(
            (code, out.as_str()),
            (Some(1), "SIP/2.0 404 Not Found\n"),
            "{text}: {err}"
        );
    }
    // A URI is sent as given, so one with a space is refused before anything is sent.
    let (code, _, err) = smoke(&["sip:+44 1632 960001@example.net", &udp]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds a space"), "{err}");
    // Nothing listening: exit 3 once the timeout passes, saying so.
    let nobody = format!("127.0.0.1:{}", common::free_port());
    let (code, _, err) = smoke(&["+441632960001", &nobody, "--timeout", "1"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no final answer"), "{err}");
    // A bad argument: exit 2 with the usage.
    let (code, _, err) = smoke(&["+441632960001", "127.0.0.1:notaport"]);
    assert_eq!(code, Some(2), "{err}");
    // Each answer was acknowledged: no transaction is left waiting for its ACK.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = common::http(server.admin, "GET", "/metrics", &[], b"").text();
        if text.lines().any(|l| l == "enroute_transactions_active 0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "transactions still held:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The user documentation keeps up with the server: every metric family `/metrics`
/// exports is described in docs/metrics.md, and every route of the OpenAPI document in
/// docs/admin-api.md.
#[test]
fn docs_describe_every_metric_family_and_admin_route() {
    // Upstream ENUM at a port where nothing answers, so the per-suffix series exist.
    let nobody = common::free_port();
    let server = common::Enroute::start(
        "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n@ SOA ns.example. h.example. 1 3600 900 604800 60\n",
        &format!(
            "[enum]\nsuffixes = [\"e164.test.\"]\nnameservers = [\"127.0.0.1:{nobody}\"]\ntimeout_ms = 200\n"
        ),
    );
    let client = common::SipUdp::new(server.sip_udp, Duration::from_secs(5));
    client.send(&common::invite("+441632960099", "docs1", client.port()));
    let mut last = String::new();
    while common::sip_status(&last) < 200 {
        last = client.recv().expect("an answer");
    }
    let docs = |page: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs")
                .join(page),
        )
        .unwrap()
    };

    let metrics = common::http(server.admin, "GET", "/metrics", &[], b"").text();
    let page = docs("metrics.md");
    let families: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.len() >= 20, "{families:?}");
    let missing: Vec<_> = families
        .iter()
        .filter(|f| !page.contains(&format!("`{f}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");

    // Route templates compared without parameter names (`{e164}`, `{prefix}`).
    let template = regex::Regex::new(r"\{[^}]*\}").unwrap();
    let openapi = server.api("GET", "/v1/openapi.json", "", b"").json();
    let page = template
        .replace_all(&docs("admin-api.md"), "{}")
        .into_owned();
    let paths: Vec<String> = openapi["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|p| template.replace_all(p, "{}").into_owned())
        .collect();
    assert!(paths.len() >= 10, "{paths:?}");
    let missing: Vec<_> = paths
        .iter()
        .filter(|p| !page.contains(&format!(" {p}")))
        .collect();
    assert!(missing.is_empty(), "not in docs/admin-api.md: {missing:?}");
}

/// Registers `user@domain` at `sip_port` over UDP with MD5 digest (computed here), the
/// contact `sip:USER@192.0.2.55:5060`; returns the final answer.
fn register_md5(sip_port: u16, user: &str, domain: &str, password: &str) -> String {
    let client = common::SipUdp::new(sip_port, Duration::from_secs(5));
    let me = client.port();
    let message = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKmreg{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=m1\r\nTo: <sip:{user}@{domain}>\r\n\
             Call-ID: multi-reg@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@192.0.2.55:5060>;expires=600\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let challenge = client.ask(&message(1, ""));
    assert_eq!(common::sip_status(&challenge), 401, "{challenge}");
    let nonce = challenge
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate:") && l.contains("algorithm=MD5"))
        .and_then(|l| l.split("nonce=\"").nth(1)?.split('"').next())
        .unwrap_or_else(|| panic!("no MD5 challenge: {challenge}"))
        .to_string();
    let auth = common::md5_authorization(user, domain, password, &nonce, 1, "c0ffee") + "\r\n";
    client.ask(&message(2, &auth))
}
