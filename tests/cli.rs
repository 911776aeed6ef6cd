//! The `enroute` binary as a user runs it: `route`, `zone check`, `zone export`, config
//! errors and exit codes (SPEC §2, §10.8, §10.22). Each test works in its own temp dir.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@   SOA ns.example. hostmaster.example. 7 3600 900 604800 60
@   NS  ns.example.
1.0.0.0.6.9  NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
             NAPTR 100 20 "u" "E2U+pstn:tel" "!^.*$!tel:+441632960001!" .
3.0.0.0.6.9  NAPTR 100 10 "u" "E2U+pstn:tel" "!^.*$!tel:+441632960003;npdi;rn=+441632000000!" .
*.7.9        NAPTR 100 10 "u" "E2U+sip" "!^\\+(.*)$!sip:\\1@trunk.example.net!" .
"#;

/// A second zone under another ENUM suffix, to exercise the suffix chain.
const TEST_ZONE: &str = r#"$ORIGIN 4.4.e164.test.
$TTL 120
@   SOA ns.example. hostmaster.example. 1 3600 900 604800 30
2.0.0.0.6.9.2.3.6.1  NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:second-suffix@example.net!" .
"#;

fn config(gateway: bool) -> String {
    let gw = if gateway {
        "[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{e164}@gw.example.net;user=phone\"]\n"
    } else {
        ""
    };
    format!(
        r#"[dialplan]
rules = [
  {{ match = '^00([1-9][0-9]+)$', replace = '+$1' }},
  {{ match = '^0([1-9][0-9]+)$',  replace = '+44$1' }},
]
[enum]
suffixes = ["e164.arpa."]
{gw}
[store]
path = "data/enroute.db"
[[zone]]
origin = "2.3.6.1.4.4.e164.arpa."
file = "zones/uk.zone"
[[zone]]
origin = "4.4.e164.test."
file = "zones/test.zone"
"#
    )
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(gateway: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("zones")).unwrap();
        std::fs::write(dir.path().join("zones/uk.zone"), ZONE).unwrap();
        std::fs::write(dir.path().join("zones/test.zone"), TEST_ZONE).unwrap();
        std::fs::write(dir.path().join("enroute.toml"), config(gateway)).unwrap();
        Env { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_enroute"))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }
    fn route_json(&self, number: &str) -> (i32, serde_json::Value) {
        let cfg = self.path("enroute.toml");
        let out = self.run(&["route", number, "--config", cfg.to_str().unwrap(), "--json"]);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code().unwrap(), v)
    }
}

use common::json_contacts as contacts;
use common::{stderr, stdout};

#[test]
fn route_json_shape_and_exit_codes() {
    let env = Env::new(true);
    let (code, v) = env.route_json("+441632960001");
    assert_eq!(code, 0);
    for key in [
        "input", "number", "status", "reason", "contacts", "source", "zone", "suffix", "ttl",
        "trace",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["status"], 302);
    assert_eq!(v["source"], "local");
    assert_eq!(v["zone"], "2.3.6.1.4.4.e164.arpa.");
    assert_eq!(v["suffix"], "e164.arpa.");
    assert_eq!(v["ttl"], 300);
    assert_eq!(
        contacts(&v),
        [
            ("sip:alice@pbx.example.net".to_string(), 1.0),
            (
                "sip:+441632960001@gw.example.net;user=phone".to_string(),
                0.9
            )
        ]
    );
    assert!(
        v["trace"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "lookup")
    );

    // no record, no gateway: 404, exit 1
    let env = Env::new(false);
    let (code, v) = env.route_json("+441632969999");
    assert_eq!((code, v["status"].as_i64()), (1, Some(404)));
    assert_eq!(v["source"], "none");
    assert_eq!(
        v["ttl"], 30,
        "negative TTL: the lowest SOA minimum of the zones consulted"
    );
    let (code, v) = env.route_json("12");
    assert_eq!((code, v["status"].as_i64()), (1, Some(484)));
}

#[test]
fn dial_plan_rules_and_number_forms() {
    let env = Env::new(true);
    for (input, number) in [
        ("01632960001", "+441632960001"),
        ("00441632960001", "+441632960001"),
        ("sip:+44-1632-960-001@x.example;user=phone", "+441632960001"),
        ("tel:960001;phone-context=+44-1632", "+441632960001"),
        ("%2B441632960001", "+441632960001"),
    ] {
        let (code, v) = env.route_json(input);
        assert_eq!(code, 0, "{input}");
        assert_eq!(v["number"], number, "{input}");
        assert_eq!(contacts(&v)[0].0, "sip:alice@pbx.example.net", "{input}");
    }
}

#[test]
fn pstn_wildcard_gateway_and_suffix_chain() {
    let env = Env::new(true);
    let (_, v) = env.route_json("+441632960003");
    assert_eq!(
        contacts(&v),
        [(
            "sip:+441632960003;npdi;rn=+441632000000@gw.example.net;user=phone".to_string(),
            1.0
        )]
    );
    assert_eq!(v["source"], "local");

    let (_, v) = env.route_json("+441632975555");
    assert_eq!(
        contacts(&v),
        [("sip:441632975555@trunk.example.net".to_string(), 1.0)]
    );

    let (_, v) = env.route_json("+441632969999");
    assert_eq!(v["source"], "gateway");
    assert_eq!(
        contacts(&v),
        [(
            "sip:+441632969999@gw.example.net;user=phone".to_string(),
            1.0
        )]
    );

    // e164.test. is only a local zone's suffix: it is tried first (SPEC §10.1); the
    // number is absent there and answered under e164.arpa.
    let (_, v) = env.route_json("+441632960001");
    assert_eq!(v["suffix"], "e164.arpa.");
    let lookups: Vec<&str> = v["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "lookup")
        .map(|s| s["suffix"].as_str().unwrap())
        .collect();
    assert_eq!(lookups, ["e164.test.", "e164.arpa."]);
    // a number present only under e164.test.
    let (_, v) = env.route_json("+441632960002");
    assert_eq!(v["suffix"], "e164.test.");
    assert_eq!(contacts(&v)[0].0, "sip:second-suffix@example.net");

    // a number outside every local zone: only the configured suffix is asked upstream
    // (whatever the system resolver answers); the local-only suffix is not
    let (_, v) = env.route_json("+15550100");
    let upstream: Vec<&str> = v["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "lookup" && s["via"] == "upstream")
        .map(|s| s["suffix"].as_str().unwrap())
        .collect();
    assert_eq!(upstream, ["e164.arpa."], "{}", v["trace"]);
}

#[test]
fn text_output() {
    let env = Env::new(true);
    let cfg = env.path("enroute.toml");
    let out = env.run(&["route", "+441632960001", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("302 Moved Temporarily\nContact: <sip:alice@pbx.example.net>;q=1.0\n"),
        "{text}"
    );
    assert!(text.contains("source: local"));
}

#[test]
fn bad_config_exits_2_with_one_line_naming_the_key() {
    let env = Env::new(true);
    let cases = [
        ("[sip]\nmax_contacts = 0\n", "sip.max_contacts"),
        ("[sip]\nlisten = [\"udp:nowhere\"]\n", "sip.listen[0]"),
        ("[enum]\nbogus = 1\n", "enum.bogus"),
        (
            "[[zone]]\norigin = \"x.\"\nfile = \"missing.zone\"\nprimary = \"127.0.0.1:53\"\n",
            "zone[0]",
        ),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        (
            "[dns]\nallow_transfer = [\"10.0.0.0/33\"]\n",
            "dns.allow_transfer[0]",
        ),
        ("[admin]\nlisten = \"localhost\"\n", "admin.listen"),
        ("x = [\n", "bad.toml:"),
    ];
    for (text, key) in cases {
        std::fs::write(env.path("bad.toml"), text).unwrap();
        let out = env.run(&["route", "+441632960001", "--config", "bad.toml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
    }
    // a missing explicit config file is an error too
    let out = env.run(&["route", "+441632960001", "--config", "nope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    // a broken zone file: exit 2 with FILE:LINE
    std::fs::write(
        env.path("zones/uk.zone"),
        "$TTL 60\n@ SOA ns. h. 1 2 3 4 5\nx NAPTR 1 2\n",
    )
    .unwrap();
    let out = env.run(&["route", "+441632960001", "--config", "enroute.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("zones/uk.zone:3:"));
}

#[test]
fn no_config_file_uses_builtin_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["route", "+441632960001", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    // no zones, no gateways: 404
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 404);
}

fn zone_check(dir: &Path, file: &str, origin: Option<&str>) -> Output {
    let mut args = vec!["zone", "check", file];
    if let Some(o) = origin {
        args.extend(["--origin", o]);
    }
    Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn zone_check_reports_every_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. hostmaster.example. 1 3600 900 604800 60
1 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^(.*$!sip:a@b!\" .
2 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" next.example.
3 NAPTR 70000 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" .
4 NAPTR 100 10 \"u!\" \"E2U+sip\" \"!^.*$!sip:a@b!\" .
5.example.com. NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" .
@ SOA ns.example. hostmaster.example. 2 3600 900 604800 60
6 NAPTR 100 10 \"u\" \"E2U+sip\"
7 NAPTR 100 10 \"u\" \"E2U+sip\" \"unterminated
8 FOO bar
9 IN CH TXT x
10 NAPTR 100 10 u E2U+sip \"!^.*$!sip:\\\\0@b!\" .
";
    std::fs::write(dir.path().join("bad.zone"), text).unwrap();
    let out = zone_check(dir.path(), "bad.zone", None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let at: Vec<u32> = lines
        .iter()
        .map(|l| l.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(at, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], "{stdout}");
    for l in &lines {
        assert!(l.starts_with("bad.zone:"), "{l}");
    }
    let expect = [
        (4, "regexp"),
        (5, "both a regexp and a replacement"),
        (6, "0 to 65535"),
        (7, "flags"),
        (8, "outside the zone"),
        (9, "duplicate SOA"),
        (10, "needs 6 data fields"),
        (11, "quoted string"),
        (12, "unknown record type"),
        (13, "class"),
        (14, "\\0"),
    ];
    for (line, (n, needle)) in lines.iter().zip(expect) {
        assert!(line.contains(needle), "line {n}: {line}");
    }

    // missing SOA
    std::fs::write(
        dir.path().join("nosoa.zone"),
        "$TTL 60\n1 NAPTR 1 1 u E2U+sip \"!^.*$!sip:a@b!\" .\n",
    )
    .unwrap();
    let out = zone_check(dir.path(), "nosoa.zone", Some("e164.arpa."));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no SOA"));

    // garbage never panics: a message and exit 1
    std::fs::write(
        dir.path().join("junk.zone"),
        b"\x00\xff((\"\\\n)))\n$INCLUDE\n@ SOA\n\t\t;\n*** \x7f\n",
    )
    .unwrap();
    let out = zone_check(dir.path(), "junk.zone", Some("example."));
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn zone_check_passes_a_generated_100k_zone_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "$ORIGIN 5.5.5.1.e164.arpa.\n$TTL 3600\n@ SOA ns.example. h.example. 1 3600 900 604800 300\n@ NS ns.example.\n",
    );
    for i in 0..100_000u32 {
        let digits = format!("{:07}", i * 97 % 10_000_000);
        let owner: String = digits
            .chars()
            .rev()
            .flat_map(|c| [c, '.'])
            .collect::<String>();
        let owner = owner.trim_end_matches('.');
        text.push_str(&format!("{owner} NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:+1555{digits}@sbc.example.net!\" .\n"));
        if i % 3 == 0 {
            text.push_str(&format!(
                "{owner} NAPTR 100 20 \"u\" \"E2U+pstn:tel\" \"!^.*$!tel:+1555{digits}!\" .\n"
            ));
        }
    }
    text.push_str(
        "*.9.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^\\\\+(.*)$!sip:\\\\1@wild.example.net!\" .\n",
    );
    std::fs::write(dir.path().join("5.5.5.1.e164.arpa.zone"), &text).unwrap();
    // origin from the file's $ORIGIN
    let out = zone_check(dir.path(), "5.5.5.1.e164.arpa.zone", None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("133337 records (133335 NAPTR)"), "{stdout}");

    // export gives a file that checks clean and has the same records
    std::fs::write(
        dir.path().join("c.toml"),
        "[[zone]]\norigin = \"5.5.5.1.e164.arpa.\"\nfile = \"5.5.5.1.e164.arpa.zone\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["zone", "export", "5.5.5.1.e164.arpa.", "--config", "c.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(dir.path().join("export.zone"), &out.stdout).unwrap();
    let out = zone_check(dir.path(), "export.zone", Some("5.5.5.1.e164.arpa."));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("133337 records (133335 NAPTR)"));
}

/// Every file and directory under `dir`, for "wrote nothing" checks.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            }
            all.push(e.path());
        }
    }
    all.sort();
    all
}

#[test]
fn zone_init_writes_a_zone_that_checks_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "2.3.6.1.4.4.e164.arpa.";
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_enroute"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // standard output by default, a date serial, the NS set
    let out = run(&[
        "zone",
        "init",
        origin,
        "--ns",
        "ns1.example.net",
        "--ns",
        "ns2.example.net.",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let soa = text.lines().find(|l| l.contains(" SOA ")).unwrap();
    let serial: u32 = soa.split_whitespace().nth(6).unwrap().parse().unwrap();
    assert!(
        (2024000001..2100000000).contains(&serial) && serial % 100 == 1,
        "{soa}"
    );
    assert!(
        text.contains("@ IN NS ns1.example.net.\n@ IN NS ns2.example.net.\n"),
        "{text}"
    );

    // --output writes the file, which `zone check` passes; it is never overwritten
    let out = run(&[
        "zone", "init", origin, "--serial", "7", "--output", "new.zone",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(dir.path().join("new.zone")).unwrap();
    let out = zone_check(dir.path(), "new.zone", None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("zone 2.3.6.1.4.4.e164.arpa. OK: serial 7, 2 records"),
        "{}",
        stdout(&out)
    );
    let out = run(&[
        "zone", "init", origin, "--serial", "8", "--output", "new.zone",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("never overwrites"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.zone")).unwrap(),
        written
    );
    // bad names are bad arguments
    assert_eq!(run(&["zone", "init", "a..b"]).status.code(), Some(2));
    assert_eq!(
        run(&["zone", "init", origin, "--ns", "x..y"]).status.code(),
        Some(2)
    );

    // `serve` loads it: SOA over DNS, and the API takes a number into it at once
    let server = common::Enroute::start(&written, "");
    let soa = common::dns_query(server.dns, origin, 6).expect("SOA answer");
    match &soa.answers[0].data {
        hickory_proto::rr::RData::SOA(s) => assert_eq!(s.serial, 7),
        other => panic!("not a SOA: {other:?}"),
    }
    let r = server.put_number(
        "+441632960077",
        r#"{"routes":[{"uri":"sip:new@example.net"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(common::sip_contact(server.sip_udp, "+441632960077").contains("sip:new@example.net"));
}

#[test]
fn config_check_validates_config_and_zone_files_and_writes_nothing() {
    let env = Env::new(true);
    let before = tree(env.dir.path());
    let out = env.run(&["config", "check", "--config", "enroute.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        "enroute.toml: OK\n\
         zones/uk.zone: zone 2.3.6.1.4.4.e164.arpa. OK: serial 7, 6 records (4 NAPTR), 4 names\n\
         zones/test.zone: zone 4.4.e164.test. OK: serial 1, 2 records (1 NAPTR), 2 names\n"
    );
    // the default file, from the working directory
    std::fs::create_dir(env.path("config")).unwrap();
    std::fs::write(env.path("config/enroute.toml"), "").unwrap();
    let out = env.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), "config/enroute.toml: OK\n");
    std::fs::remove_dir_all(env.path("config")).unwrap();
    assert_eq!(
        tree(env.dir.path()),
        before,
        "no store, no token file, nothing"
    );
    // no configuration file at all
    assert_eq!(env.run(&["config", "check"]).status.code(), Some(2));

    // an invalid configuration: its one line, exit 2
    std::fs::write(env.path("bad.toml"), "[sip]\nmax_contacts = 0\n").unwrap();
    let out = env.run(&["config", "check", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("bad.toml") && stdout(&out).contains("sip.max_contacts"),
        "{}",
        stdout(&out)
    );

    // a zone file with errors: each as FILE:LINE: message, exit 1, the other zone still
    // summarised; a secondary zone is named, not checked
    std::fs::write(
        env.path("zones/uk.zone"),
        "$TTL 60\n@ SOA ns. h. 1 2 3 4 5\nx NAPTR 1 2\n",
    )
    .unwrap();
    std::fs::write(
        env.path("enroute.toml"),
        format!(
            "{}[[zone]]\norigin = \"5.5.e164.arpa.\"\nprimary = \"127.0.0.1:53\"\n",
            config(true)
        ),
    )
    .unwrap();
    let out = env.run(&["config", "check", "--config", "enroute.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(!text.contains(": OK\n"), "{text}");
    assert!(text.contains("zones/uk.zone:3: "), "{text}");
    assert!(
        text.contains("zones/test.zone: zone 4.4.e164.test. OK"),
        "{text}"
    );
    assert!(
        text.contains("zone 5.5.e164.arpa.: secondary, transferred from 127.0.0.1:53"),
        "{text}"
    );
    assert_eq!(
        tree(env.dir.path()).len(),
        before.len() + 1,
        "only bad.toml was added"
    );

    // a TLS certificate that is not there: found now, not when serve starts
    std::fs::write(
        env.path("tls.toml"),
        "[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\n[sip.tls]\ncert = \"nope.pem\"\nkey = \"nope.key\"\n",
    )
    .unwrap();
    let out = env.run(&["config", "check", "--config", "tls.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("tls.toml:4: sip.tls.cert: cannot read"),
        "{}",
        stdout(&out)
    );

    // a zone file that is not there: named by the configuration's file, line and key
    std::fs::remove_file(env.path("zones/test.zone")).unwrap();
    let out = env.run(&["config", "check", "--config", "enroute.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let line = config(true)
        .lines()
        .position(|l| l == "file = \"zones/test.zone\"")
        .unwrap()
        + 1;
    assert!(
        stdout(&out).contains(&format!(
            "enroute.toml:{line}: zone[1].file: cannot read \"zones/test.zone\": No such file"
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn zone_check_with_config_checks_every_file_zone() {
    let env = Env::new(true);
    let out = env.run(&["zone", "check", "--config", "enroute.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "zones/uk.zone: zone 2.3.6.1.4.4.e164.arpa. OK: serial 7, 6 records (4 NAPTR), 4 names\n\
         zones/test.zone: zone 4.4.e164.test. OK: serial 1, 2 records (1 NAPTR), 2 names\n\
         zones/uk.zone: zone 2.3.6.1.4.4.e164.arpa.: not in the store yet: loaded on the next start or SIGHUP\n\
         zones/test.zone: zone 4.4.e164.test.: not in the store yet: loaded on the next start or SIGHUP\n"
    );
    std::fs::write(
        env.path("zones/test.zone"),
        "$TTL 60\n@ SOA ns. h. 1 2 3 4 5\n@ FOO x\n",
    )
    .unwrap();
    let out = env.run(&["zone", "check", "--config", "enroute.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("zones/test.zone:3: unknown record type"),
        "{}",
        stdout(&out)
    );
    // a FILE and --config together, or neither, are bad arguments
    assert_eq!(
        env.run(&["zone", "check", "x.zone", "--config", "enroute.toml"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(env.run(&["zone", "check"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["zone", "check", "--config", "nope.toml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn spaces_are_separators_and_bad_route_input_exits_2() {
    let env = Env::new(true);
    let (code, mut spaced) = env.route_json("+44 1632 960002");
    let (plain_code, mut plain) = env.route_json("+441632960002");
    assert_eq!((code, plain_code), (0, 0));
    assert_eq!(spaced["input"], "+44 1632 960002");
    spaced["input"] = plain["input"].take();
    plain["input"] = spaced["input"].clone();
    assert_eq!(spaced, plain);
    let (code, v) = env.route_json("01632 960 001");
    assert_eq!((code, v["number"].as_str()), (0, Some("+441632960001")));

    for bad in ["", "   ", "alice", "+44abc", "1:2", "+44\n1632"] {
        let out = env.run(&["route", bad, "--config", "enroute.toml"]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stdout(&out));
        assert!(stdout(&out).is_empty(), "{bad:?}");
        assert!(
            stderr(&out).starts_with("enroute: "),
            "{bad:?}: {}",
            stderr(&out)
        );
    }
    // a URI or a number gets its decision, whatever it is: exit 1
    for (input, status) in [
        ("sip:alice@example.com", 404),
        ("mailto:a@b", 416),
        ("12", 484),
        ("*98", 404),
    ] {
        let (code, v) = env.route_json(input);
        assert_eq!((code, v["status"].as_i64()), (1, Some(status)), "{input}");
    }
}

#[test]
fn commands_other_than_serve_print_no_info_lines() {
    let env = Env::new(true);
    // log.level = "info" and a secondary zone, whose start-up line is INFO
    std::fs::write(
        env.path("enroute.toml"),
        format!(
            "{}[[zone]]\norigin = \"5.5.e164.arpa.\"\nprimary = \"127.0.0.1:53\"\n[log]\nlevel = \"info\"\n",
            config(true)
        ),
    )
    .unwrap();
    for args in [
        &["route", "+441632960001", "--config", "enroute.toml"][..],
        &[
            "zone",
            "export",
            "2.3.6.1.4.4.e164.arpa.",
            "--config",
            "enroute.toml",
        ],
        &["config", "check", "--config", "enroute.toml"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn every_command_help_lists_its_exit_codes() {
    let commands: &[&[&str]] = &[
        &["serve"],
        &["route"],
        &["config", "check"],
        &["zone", "check"],
        &["zone", "export"],
        &["zone", "init"],
        &["numbers", "list"],
        &["numbers", "get"],
        &["numbers", "put"],
        &["numbers", "delete"],
        &["prefixes", "list"],
        &["prefixes", "get"],
        &["prefixes", "put"],
        &["prefixes", "delete"],
    ];
    let dir = tempfile::tempdir().unwrap();
    for cmd in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_enroute"))
            .args(*cmd)
            .arg("--help")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        let help = stdout(&out);
        assert!(help.contains("Exit codes:\n  0  "), "{cmd:?}:\n{help}");
        // every command has 0 and 2 (bad arguments); zone init has no 1
        assert!(
            help.contains("\n  2  "),
            "{cmd:?} lacks exit code 2:\n{help}"
        );
    }
    let serve = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = stdout(&serve);
    for needle in [
        "SIGHUP",
        "zone files",
        "[dialplan]",
        "[enum]",
        "[[gateway]]",
        "sip.max_contacts",
        "ENROUTE_ADMIN_TOKEN",
        "Read at start only",
    ] {
        assert!(
            help.contains(needle),
            "serve --help lacks {needle}:\n{help}"
        );
    }
    let numbers = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["numbers", "get", "--help"])
        .output()
        .unwrap();
    assert!(stdout(&numbers).contains("  3  the server is not reachable"));
}

/// `zone check --config` beside a running server: a file edited without a higher serial
/// is what `serve` ignores, and the check says so (exit 1); the same file, or a newer
/// serial, is fine.
#[test]
fn zone_check_with_config_says_when_a_file_is_not_what_is_served() {
    let server = common::Enroute::start(ZONE, "");
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_enroute"))
            .args(["zone", "check", "--config", "e.toml"])
            .current_dir(server.dir.path())
            .output()
            .unwrap();
        (out.status.code(), stdout(&out))
    };
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("z.zone: zone 2.3.6.1.4.4.e164.arpa.: the file is what was last loaded (serving serial 7;"),
        "{out}"
    );
    // A change through the admin API is the store's, not an edit of the file: still
    // fine (the file is what was loaded), and no warning at start or on SIGHUP.
    let token = std::fs::read_to_string(server.dir.path().join("admin.token")).unwrap();
    let put = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args([
            "numbers",
            "put",
            "+441632960077",
            "--uri",
            "sip:api@x.example",
        ])
        .args(["--url", &format!("http://127.0.0.1:{}", server.admin)])
        .args(["--token", token.trim()])
        .output()
        .unwrap();
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("serving serial 8; changes made through the API"),
        "{out}"
    );
    server.sighup();
    let done = server.wait_for("SIGHUP: reload done");
    assert!(done.contains("INFO") && !done.contains("ignored"), "{done}");
    // An operator edits a number but forgets the serial: serve keeps the store's copy.
    let edited = ZONE.replace("sip:alice@", "sip:alicia@");
    std::fs::write(server.dir.path().join("z.zone"), &edited).unwrap();
    let (code, out) = check();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("differs from the zone being served, but serial 7 is not higher than 8: ignored. Raise the serial above 8"),
        "{out}"
    );
    // Raising the serial above the store's makes the file the one that will be served.
    std::fs::write(
        server.dir.path().join("z.zone"),
        edited.replace(" 7 3600", " 9 3600"),
    )
    .unwrap();
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("serial 9 is newer than served 8"), "{out}");
}

/// A file that is not there is named as such, not as a missing origin; a file whose
/// origin cannot be told is a usage error (exit 2), with no made-up line number.
#[test]
fn zone_check_of_a_missing_file_or_an_unknown_origin() {
    let dir = tempfile::tempdir().unwrap();
    let out = zone_check(dir.path(), "nothere.txt", None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("nothere.txt: cannot read zone file: No such file"),
        "{}",
        stdout(&out)
    );
    std::fs::write(dir.path().join("plain.txt"), "@ SOA ns. h. 1 2 3 4 5\n").unwrap();
    let out = zone_check(dir.path(), "plain.txt", None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("plain.txt: no --origin given"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(":0:"), "{}", stderr(&out));
}
