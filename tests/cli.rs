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
