//! `enroute serve` as an operator runs it: starts on a config, reloads zone files on
//! SIGHUP all or nothing (a bad file or config keeps the old state), exits 0 on SIGTERM,
//! and its store is backed up and restored as the README says.

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

/// The metric `name` (no labels, or the first series) from `/metrics`.
fn metric(server: &common::Enroute, name: &str) -> f64 {
    let text = common::http(server.admin, "GET", "/metrics", &[], b"").text();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[test]
fn sighup_reload_is_all_or_nothing() {
    let other = "$ORIGIN 5.5.5.2.0.2.1.e164.arpa.\n$TTL 60\n@ SOA ns.example. h.example. 1 3600 900 604800 60\n\
                 1.0.0.0 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:us@x.example!\" .\n";
    let server = common::Enroute::start_with(
        &zone(1, ""),
        "[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{e164}@old-gw.example\"]\n\n\
         [[zone]]\norigin = \"5.5.5.2.0.2.1.e164.arpa.\"\nfile = \"other.zone\"\n",
        &[],
        |dir| std::fs::write(dir.join("other.zone"), other).unwrap(),
    );
    let dir = server.dir.path().to_path_buf();
    let config = std::fs::read_to_string(dir.join("e.toml")).unwrap();
    let gateway_of = |number: &str| common::sip_contact(server.sip_udp, number);
    assert!(gateway_of("+441632969999").contains("@old-gw.example"));

    // One good, newer zone file and one broken one, with a new gateway: nothing changes.
    std::fs::write(
        dir.join("z.zone"),
        zone(
            2,
            "2.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:b@x.example!\" .\n",
        ),
    )
    .unwrap();
    std::fs::write(dir.join("other.zone"), format!("{other}2.0.0.0 NAPTR 1\n")).unwrap();
    std::fs::write(dir.join("e.toml"), config.replace("old-gw", "new-gw")).unwrap();
    server.sighup();
    let rejected = server.wait_for("reload rejected");
    assert!(rejected.contains("other.zone:5:"), "{rejected}");
    server.wait_for("SIGHUP: reload rejected, nothing changed");
    assert!(gateway_of("+441632969999").contains("@old-gw.example"));
    assert!(gateway_of("+441632960002").contains("@old-gw.example"));
    let soa = common::dns_query(server.dns, "2.3.6.1.4.4.e164.arpa.", 6).unwrap();
    assert!(
        format!("{:?}", soa.answers).contains("serial: 1"),
        "{soa:?}"
    );
    assert_eq!(metric(&server, "enroute_reload_last_success"), 0.0);

    // A config error: named with its line, nothing changes either.
    std::fs::write(dir.join("other.zone"), other).unwrap();
    std::fs::write(
        dir.join("e.toml"),
        config.replace("prefix = \"+44\"", "prefix = \"44x\""),
    )
    .unwrap();
    server.sighup();
    let rejected = server.wait_for("reload rejected");
    assert!(rejected.contains("e.toml:"), "{rejected}");
    assert!(gateway_of("+441632960002").contains("@old-gw.example"));

    // Everything fixed: all of it applies at once.
    std::fs::write(dir.join("e.toml"), config.replace("old-gw", "new-gw")).unwrap();
    server.sighup();
    server.wait_for("SIGHUP: reload done");
    assert_eq!(
        gateway_of("+441632960002"),
        "Contact: <sip:b@x.example>;q=1.0"
    );
    assert!(gateway_of("+441632969999").contains("@new-gw.example"));
    assert_eq!(metric(&server, "enroute_reload_last_success"), 1.0);
}

/// README "Operations": an online backup with the sqlite3 shell while enroute runs and
/// takes writes; later changes; restore = stop, put the backup in place (no -wal/-shm),
/// start: the zone is served as it was at the backup.
#[test]
fn store_backup_while_running_and_restore_as_the_readme_says() {
    let mut server = common::Enroute::start(&zone(1, ""), "");
    let put = |server: &common::Enroute, number: &str, user: &str| {
        let r = server.put_number(
            number,
            &format!(r#"{{"routes":[{{"uri":"sip:{user}@x.example"}}]}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    put(&server, "+441632960011", "kept");
    let db = server.dir.path().join("data/enroute.db");
    let backup = server.dir.path().join("backup.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(format!(".backup '{}'", backup.display()))
        .output()
        .expect("sqlite3 (Debian package sqlite3; scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    put(&server, "+441632960012", "after-backup");
    assert!(common::sip_contact(server.sip_udp, "+441632960012").contains("after-backup"));

    signal(server.pid(), "-TERM");
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    std::fs::copy(&backup, &db).unwrap();
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    server.restart();
    assert_eq!(
        common::sip_contact(server.sip_udp, "+441632960011"),
        "Contact: <sip:kept@x.example>;q=1.0"
    );
    // The change after the backup is gone: the number goes to no record, no gateway.
    assert!(
        common::sip_contact(server.sip_udp, "+441632960012").contains("404"),
        "restored store still has the later change"
    );
}
