//! `enroute numbers`, `enroute prefixes` and `enroute route --url` as a user runs them
//! against a live `enroute serve`: changes that SIP, DNS and `route` see at once, paging,
//! problems with the failing field, exit codes (0 done, 1 refused, 2 usage, 3
//! unreachable), and where the URL and the token come from (flags, environment,
//! configuration).

mod common;

use common::{Enroute, code, dns_query, free_port, sip_contact, stderr, stdout};
use std::path::Path;
use std::process::{Command, Output};

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";

const ZONE: &str = "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 300\n\
    @ IN SOA ns1.example.net. hostmaster.example.net. 1 3600 900 604800 60\n\
    @ IN NS ns1.example.net.\n\
    0.0.0.0.6.9 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:alice@pbx.example.net!\" .\n";

/// Runs `enroute ARGS` in `dir` with `env` set and the admin variables otherwise unset
/// (so the machine's environment cannot leak in).
fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_enroute"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("ENROUTE_ADMIN_URL")
        .env_remove("ENROUTE_ADMIN_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `enroute ARGS --config e.toml` in the server's directory: the URL comes from
/// `admin.listen` and the token from `admin.token_file`.
fn run(server: &Enroute, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--config", "e.toml"]);
    run_env(server.dir.path(), &all, &[])
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

fn url(server: &Enroute) -> String {
    format!("http://127.0.0.1:{}", server.admin)
}

#[test]
fn put_get_route_and_delete_a_number() {
    let server = Enroute::start(ZONE, "");
    let n = "+441632960050";
    let out = run(
        &server,
        &[
            "numbers",
            "put",
            n,
            "--uri",
            "sip:bob@pbx.example.net",
            "--uri",
            "tel:+441632960051",
            "--ttl",
            "60",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "+441632960050  sip:bob@pbx.example.net  (order 100, pref 10)\n\
         \x20              tel:+441632960051  (order 100, pref 20)\n\
         ttl 60, zone 2.3.6.1.4.4.e164.arpa.\n"
    );

    // get shows it, in text and in the API's JSON
    let out = run(&server, &["numbers", "get", n]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("+441632960050  sip:bob@pbx.example.net  (order 100, pref 10)\n")
    );
    let v = json(&run(&server, &["numbers", "get", n, "--json"]));
    assert_eq!(v["number"], n);
    assert_eq!(v["ttl"], 60);
    assert_eq!(v["routes"][1]["uri"], "tel:+441632960051");
    assert_eq!(v["routes"][1]["preference"], 20);

    // SIP, DNS and the local `route` see it at once
    assert!(sip_contact(server.sip_udp, n).contains("sip:bob@pbx.example.net"));
    let m = dns_query(server.dns, &format!("0.5.0.0.6.9.{ORIGIN}"), 35).expect("DNS answer");
    assert_eq!(m.answers.len(), 2);
    let local = run_env(
        server.dir.path(),
        &["route", n, "--config", "e.toml", "--json"],
        &[],
    );
    assert_eq!(code(&local), 0, "{}", stderr(&local));
    assert_eq!(
        json(&local)["contacts"][0]["uri"],
        "sip:bob@pbx.example.net"
    );

    // the server's decision equals the local one, as JSON and as text
    let remote = run(&server, &["route", n, "--url", &url(&server), "--json"]);
    assert_eq!(code(&remote), 0, "{}", stderr(&remote));
    assert_eq!(json(&remote), json(&local));
    assert_eq!(
        stdout(&remote),
        stdout(&local),
        "same keys in the same order"
    );
    let text_local = run_env(server.dir.path(), &["route", n, "--config", "e.toml"], &[]);
    let text_remote = run(&server, &["route", n, "--url", &url(&server)]);
    assert_eq!(stdout(&text_remote), stdout(&text_local));
    // a decision other than 302 exits 1 both ways
    let absent = "+441632969999";
    let remote = run(
        &server,
        &["route", absent, "--url", &url(&server), "--json"],
    );
    assert_eq!(code(&remote), 1);
    assert_eq!(json(&remote)["status"], 404);
    // bad input exits 2 before anything is sent
    let remote = run(&server, &["route", "alice", "--url", &url(&server)]);
    assert_eq!(code(&remote), 2, "{}", stderr(&remote));

    // delete, then it is gone: 404, exit 1
    let out = run(&server, &["numbers", "delete", n]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&server, &["numbers", "get", n]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("enroute: 404 Not Found: no routes for +441632960050"),
        "{}",
        stderr(&out)
    );
    assert!(sip_contact(server.sip_udp, n).starts_with("SIP/2.0 404"));
    // deleting it again is refused the same way
    assert_eq!(code(&run(&server, &["numbers", "delete", n])), 1);
}

#[test]
fn list_pages_follow_next_and_all() {
    let server = Enroute::start(ZONE, "");
    let numbers: Vec<String> = (1..=5).map(|i| format!("+44163296070{i}")).collect();
    for n in &numbers {
        let r = server.put_number(n, r#"{"routes":[{"uri":"sip:x@example.net"}]}"#);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let prefix = ["--prefix", "+4416329607"];

    let out = run(
        &server,
        &[&["numbers", "list", "--limit", "2"][..], &prefix].concat(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "+441632960701  sip:x@example.net  (order 100, pref 10)\n\
         +441632960702  sip:x@example.net  (order 100, pref 10)\n"
    );
    assert!(
        stderr(&out).contains("--after +441632960702"),
        "{}",
        stderr(&out)
    );

    let page = json(&run(
        &server,
        &[&["numbers", "list", "--limit", "2", "--json"][..], &prefix].concat(),
    ));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "+441632960702");
    let page = json(&run(
        &server,
        &[
            &[
                "numbers",
                "list",
                "--limit",
                "2",
                "--json",
                "--after",
                "+441632960702",
            ][..],
            &prefix,
        ]
        .concat(),
    ));
    let got: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["+441632960703", "+441632960704"]);

    // --all follows `next` to the end, in pages of 2
    let all = json(&run(
        &server,
        &[
            &["numbers", "list", "--limit", "2", "--all", "--json"][..],
            &prefix,
        ]
        .concat(),
    ));
    let got: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(got, numbers.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all["next"], serde_json::Value::Null);
    let out = run(
        &server,
        &[&["numbers", "list", "--limit", "2", "--all"][..], &prefix].concat(),
    );
    assert_eq!(stdout(&out).lines().count(), 5, "{}", stdout(&out));
    assert!(!stderr(&out).contains("--after"), "{}", stderr(&out));

    // the zone file's own number is listed too (numbers from files live in the store)
    let out = run(
        &server,
        &["numbers", "list", "--all", "--prefix", "+441632960000"],
    );
    assert!(
        stdout(&out).starts_with("+441632960000  sip:alice@pbx.example.net"),
        "{}",
        stdout(&out)
    );

    // a bad page size is a usage error: nothing sent, exit 2
    let out = run(&server, &["numbers", "list", "--limit", "0"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn refusals_exit_1_and_name_the_field() {
    let server = Enroute::start(ZONE, "");
    // a route the server cannot take: 422 naming routes[0].uri
    let out = run(
        &server,
        &[
            "numbers",
            "put",
            "+441632960060",
            "--uri",
            "sip:ok@x",
            "--uri",
            "not a uri",
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("enroute: 422 Unprocessable Entity: routes[1]"),
        "{err}"
    );
    // a number outside every zone
    let out = run(
        &server,
        &["numbers", "put", "+15550100", "--uri", "sip:x@y"],
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("422"), "{}", stderr(&out));
    // a body from standard input, with a field the API does not know
    let mut child = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args([
            "numbers",
            "put",
            "+441632960061",
            "--body",
            "-",
            "--config",
            "e.toml",
        ])
        .current_dir(server.dir.path())
        .env_remove("ENROUTE_ADMIN_TOKEN")
        .env_remove("ENROUTE_ADMIN_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        br#"{"routes":[{"uri":"sip:x@y","colour":"blue"}]}"#,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
    // the same body from a file, corrected, is taken
    std::fs::write(
        server.dir.path().join("b.json"),
        r#"{"ttl":90,"routes":[{"pstn":true,"rn":"+441632000000"}]}"#,
    )
    .unwrap();
    let out = run(
        &server,
        &[
            "numbers",
            "put",
            "+441632960061",
            "--body",
            "b.json",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["routes"][0]["rn"], "+441632000000");
    // a wrong token: 401, exit 1, and where the token came from
    let out = run(
        &server,
        &["numbers", "get", "+441632960000", "--token", "wrong"],
    );
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("401 Unauthorized"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("came from --token"),
        "{}",
        stderr(&out)
    );
    // bad arguments never reach the server: exit 2
    for args in [
        &["numbers", "put", "+441632960062"][..],
        &[
            "numbers",
            "put",
            "+441632960062",
            "--uri",
            "sip:x@y",
            "--body",
            "b.json",
        ],
        &["numbers", "put", "+441632960062", "--body", "missing.json"],
        &["numbers", "get", " "],
        &["numbers", "get", "+441632960062", "--url", "ftp://x"],
    ] {
        let out = run(&server, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn no_server_listening_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    for args in [
        &[
            "numbers",
            "get",
            "+441632960001",
            "--url",
            &dead,
            "--token",
            "t",
        ][..],
        &["numbers", "list", "--url", &dead, "--token", "t"],
        &[
            "prefixes", "delete", "+4416", "--url", &dead, "--token", "t",
        ],
        &["route", "+441632960001", "--url", &dead, "--token", "t"],
    ] {
        let out = run_env(dir.path(), args, &[]);
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot reach the admin API at http://127.0.0.1:"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn url_and_token_from_flags_environment_and_config() {
    let server = Enroute::start(ZONE, "");
    let token = server.token();
    let n = "+441632960000";
    // an empty directory: no configuration to fall back on
    let empty = tempfile::tempdir().unwrap();
    let ok = |o: Output| {
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            stdout(&o).contains("sip:alice@pbx.example.net"),
            "{}",
            stdout(&o)
        );
    };
    // flags
    ok(run_env(
        empty.path(),
        &[
            "numbers",
            "get",
            n,
            "--url",
            &url(&server),
            "--token",
            &token,
        ],
        &[],
    ));
    // the token from ENROUTE_ADMIN_TOKEN
    ok(run_env(
        empty.path(),
        &["numbers", "get", n, "--url", &url(&server)],
        &[("ENROUTE_ADMIN_TOKEN", &token)],
    ));
    // both from the environment
    ok(run_env(
        empty.path(),
        &["numbers", "get", n],
        &[
            ("ENROUTE_ADMIN_URL", &url(&server)),
            ("ENROUTE_ADMIN_TOKEN", &token),
        ],
    ));
    // the URL from the environment, the token from the configuration's token file
    ok(run_env(
        empty.path(),
        &[
            "numbers",
            "get",
            n,
            "--config",
            server.dir.path().join("e.toml").to_str().unwrap(),
        ],
        &[("ENROUTE_ADMIN_URL", &url(&server))],
    ));
    // a flag wins over the environment
    let out = run_env(
        empty.path(),
        &[
            "numbers",
            "get",
            n,
            "--url",
            &url(&server),
            "--token",
            "wrong",
        ],
        &[("ENROUTE_ADMIN_TOKEN", &token)],
    );
    assert_eq!(code(&out), 1);
    // no token anywhere: the built-in token file does not exist; exit 2, nothing written
    let out = run_env(
        empty.path(),
        &["numbers", "get", n, "--url", &url(&server)],
        &[],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no admin token"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "the client writes nothing"
    );
    // a configuration that does not parse is a usage error too
    std::fs::write(
        empty.path().join("bad.toml"),
        "[admin]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = run_env(
        empty.path(),
        &["numbers", "get", n, "--config", "bad.toml"],
        &[],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("admin.listen"), "{}", stderr(&out));
}

#[test]
fn prefixes_put_get_route_and_delete() {
    let server = Enroute::start(ZONE, "");
    let out = run(
        &server,
        &[
            "prefixes",
            "put",
            "+4416329",
            "--uri",
            "sip:range@pbx.example.net",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("+4416329  sip:range@pbx.example.net  (order 100, pref 10)\n"),
        "{}",
        stdout(&out)
    );
    let v = json(&run(&server, &["prefixes", "get", "+4416329", "--json"]));
    assert_eq!(v["prefix"], "+4416329");
    // every number in the range routes there, over SIP and through the server's route
    assert!(sip_contact(server.sip_udp, "+441632987654").contains("sip:range@pbx.example.net"));
    let out = run(
        &server,
        &["route", "+44 1632 987654", "--url", &url(&server), "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        json(&out)["contacts"][0]["uri"],
        "sip:range@pbx.example.net"
    );
    let out = run(&server, &["prefixes", "delete", "+4416329"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&run(&server, &["prefixes", "get", "+4416329"])), 1);
}

/// `GET /v1/prefixes` comes with the admin API's list of prefixes.
#[test]
fn prefixes_list_pages_and_all() {
    let server = Enroute::start(ZONE, "");
    for p in ["+4416321", "+4416322", "+4416323"] {
        let out = run(
            &server,
            &["prefixes", "put", p, "--uri", "sip:r@example.net"],
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let page = json(&run(
        &server,
        &["prefixes", "list", "--limit", "2", "--json"],
    ));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["prefix"], "+4416321");
    assert_eq!(page["next"], "+4416322");
    let out = run(&server, &["prefixes", "list", "--limit", "2", "--all"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "+4416321  sip:r@example.net  (order 100, pref 10)\n\
         +4416322  sip:r@example.net  (order 100, pref 10)\n\
         +4416323  sip:r@example.net  (order 100, pref 10)\n"
    );
}
