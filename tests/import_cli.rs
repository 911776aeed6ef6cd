//! `enroute import FILE` as a user runs it: a CSV or NDJSON file against a live
//! `enroute serve` (numbers served at once, progress lines on stderr, the result on
//! stdout, `--json`), a refused file (its lines named, nothing committed), and the exit
//! codes (0 committed, 1 refused, 2 bad usage, 3 unreachable or cut off). A stand-in
//! server that only reads the body shows what goes on the wire (the query, the type,
//! the length), progress during a slow upload, a connection lost mid-upload, and that
//! a file far larger than the client's memory use streams.

mod common;

use common::{Enroute, code, dns_query, free_port, soa_serial, stderr, stdout};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ORIGIN: &str = "2.3.6.1.4.4.e164.arpa.";

const ZONE: &str = "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 300\n\
    @ IN SOA ns1.example.net. hostmaster.example.net. 1 3600 900 604800 60\n\
    @ IN NS ns1.example.net.\n\
    0.0.0.0.6.9 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:alice@pbx.example.net!\" .\n";

/// `enroute import ARGS` in `dir`, with the admin variables unset (the machine's
/// environment cannot leak in) and `stdin` fed when given.
fn import_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_enroute"));
    cmd.arg("import")
        .args(args)
        .current_dir(dir)
        .env_remove("ENROUTE_ADMIN_URL")
        .env_remove("ENROUTE_ADMIN_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// `enroute import ARGS --config e.toml` in the server's directory: the URL and the
/// token come from its configuration.
fn import(server: &Enroute, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--config", "e.toml"]);
    import_in(server.dir.path(), &all, None)
}

/// The URIs a number's NAPTR records carry over DNS, sorted.
fn dns_uris(server: &Enroute, digits_reversed: &str) -> Vec<String> {
    let name = format!("{digits_reversed}.{ORIGIN}");
    let m = dns_query(server.dns, &name, 35).expect("a DNS answer");
    let mut uris: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::NAPTR(n) => {
                let re = String::from_utf8_lossy(&n.regexp).into_owned();
                re.split('!').nth(2).map(str::to_string)
            }
            _ => None,
        })
        .collect();
    uris.sort();
    uris
}

fn status_of(server: &Enroute, number: &str) -> u16 {
    server
        .api("GET", &format!("/v1/numbers/{number}"), "", b"")
        .status
}

#[test]
fn a_csv_file_is_imported_served_and_its_progress_shown() {
    let server = Enroute::start(ZONE, "");
    let csv = "number,uri,order,preference\n\
               +441632960101,sip:a@pbx.example.net,100,10\n\
               +441632960101,sip:a@backup.example.net,100,20\n\
               +441632960102,sip:b@pbx.example.net,100,10\n";
    std::fs::write(server.dir.path().join("numbers.csv"), csv).unwrap();
    let out = import(&server, &["numbers.csv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "imported: 2 numbers, 3 routes, 0 deleted\n");
    // Not a terminal: plain progress lines, the last one when the upload is done.
    let err = stderr(&out);
    let size = csv.len();
    assert!(
        err.contains(&format!(
            "import: sending numbers.csv (text/csv, {size} B) to http://127.0.0.1:{}, mode merge\n",
            server.admin
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("import: sent {size} B, 4 lines in "))
            && err.contains(" s; waiting for the server to commit\n"),
        "{err}"
    );
    // Served at once, over DNS and through the API; the serial grew.
    assert_eq!(
        dns_uris(&server, "1.0.1.0.6.9"),
        ["sip:a@backup.example.net", "sip:a@pbx.example.net"]
    );
    assert_eq!(dns_uris(&server, "2.0.1.0.6.9"), ["sip:b@pbx.example.net"]);
    assert_eq!(status_of(&server, "+441632960102"), 200);
    assert!(soa_serial(server.dns, ORIGIN).unwrap() > 1);
    // The file's own numbers only: the zone's number is still there (merge).
    assert_eq!(status_of(&server, "+441632960000"), 200);
}

#[test]
fn ndjson_from_a_file_or_standard_input_and_json_output() {
    let server = Enroute::start(ZONE, "");
    let nd = "{\"number\":\"+441632960201\",\"routes\":[{\"uri\":\"sip:nd@pbx.example.net\"}]}\n\
              {\"number\":\"+441632960202\",\"ttl\":60,\"routes\":[{\"uri\":\"sip:x@a.example\"},{\"uri\":\"sip:y@a.example\"}]}\n";
    // From another directory, with the URL and the token file given as flags.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("numbers.jsonl"), nd).unwrap();
    let url = format!("http://127.0.0.1:{}", server.admin);
    let token_file = server.dir.path().join("admin.token");
    let token_file = token_file.to_str().unwrap();
    let args = ["--url", &url, "--token-file", token_file];
    let mut with_json = vec!["numbers.jsonl", "--json"];
    with_json.extend(args);
    let out = import_in(elsewhere.path(), &with_json, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    assert_eq!(
        (v["numbers"].as_u64(), v["routes"].as_u64()),
        (Some(2), Some(3))
    );
    assert!(
        stderr(&out).contains("(application/x-ndjson, "),
        "{}",
        stderr(&out)
    );
    assert_eq!(dns_uris(&server, "1.0.2.0.6.9"), ["sip:nd@pbx.example.net"]);

    // Standard input, its format told by its first byte.
    let again = nd.replace("nd@", "stdin@");
    let mut from_stdin = vec!["-"];
    from_stdin.extend(args);
    let out = import_in(elsewhere.path(), &from_stdin, Some(again.as_bytes()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "imported: 2 numbers, 3 routes, 0 deleted\n");
    assert!(
        stderr(&out).contains("import: sending standard input (application/x-ndjson)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        dns_uris(&server, "1.0.2.0.6.9"),
        ["sip:stdin@pbx.example.net"]
    );
}

#[test]
fn a_bad_line_is_named_and_nothing_is_committed() {
    let server = Enroute::start(ZONE, "");
    let csv = "number,uri\n+441632960301,sip:a@pbx.example.net\n+441632960302,nocolon\n";
    std::fs::write(server.dir.path().join("bad.csv"), csv).unwrap();
    let serial = soa_serial(server.dns, ORIGIN);
    let out = import(&server, &["bad.csv"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    eprintln!("{err}");
    assert!(
        err.contains("enroute: 422 Unprocessable Entity: line 3: "),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("enroute: line 3: uri: ")),
        "{err}"
    );
    assert_eq!(status_of(&server, "+441632960301"), 404, "a partial import");
    assert_eq!(soa_serial(server.dns, ORIGIN), serial);
}

#[test]
fn usage_and_unreachable_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("n.csv"),
        "number,uri\n+441632960401,sip:a@x\n",
    )
    .unwrap();
    // Nobody listens on a free port: 3, with the URL named.
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = import_in(
        dir.path(),
        &["n.csv", "--url", &url, "--token", "t", "-q"],
        None,
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    // A missing file, an empty one, a compressed one, a bad flag: 2, nothing sent.
    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    std::fs::write(dir.path().join("n.csv.gz"), b"\x1f\x8b").unwrap();
    for (args, says) in [
        (vec!["missing.csv"], "missing.csv: "),
        (vec!["empty.csv"], "empty.csv is empty"),
        (
            vec!["-", "--replace", "--zone", ORIGIN],
            "standard input is empty",
        ),
        (vec!["n.csv", "--replace"], "--zone <ORIGIN>"),
        (vec!["n.csv.gz"], "decompress it into standard input"),
        (vec!["n.csv", "--format", "xml"], "invalid value 'xml'"),
        (vec![dir.path().to_str().unwrap()], "is a directory"),
    ] {
        let mut all = args.clone();
        all.extend(["--url", &url, "--token", "t"]);
        let out = import_in(dir.path(), &all, None);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn replace_leaves_exactly_the_files_numbers() {
    let server = Enroute::start(ZONE, "");
    assert_eq!(
        server
            .put_number(
                "+441632960501",
                r#"{"routes":[{"uri":"sip:old@pbx.example.net"}]}"#
            )
            .status,
        200
    );
    let csv = "number,uri\n+441632960502,sip:new@pbx.example.net\n";
    std::fs::write(server.dir.path().join("all.csv"), csv).unwrap();
    let out = import(&server, &["all.csv", "--replace", "--zone", ORIGIN]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The zone file's number and the one put before are gone; the file's is there.
    assert_eq!(stdout(&out), "imported: 1 numbers, 1 routes, 2 deleted\n");
    assert_eq!(status_of(&server, "+441632960000"), 404);
    assert_eq!(status_of(&server, "+441632960501"), 404);
    assert_eq!(status_of(&server, "+441632960502"), 200);
    let list = server.api("GET", "/v1/numbers", "", b"").json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

// ---------------------------------------------------------------------------------
// A stand-in server: it reads one request's body and answers as told.

/// What the stand-in saw of the request.
struct Seen {
    head: String,
    body_bytes: u64,
}

/// How the stand-in reads the body.
#[derive(Clone, Copy)]
enum Reading {
    /// As fast as it comes; then waits for a word on the channel before answering.
    Whole,
    /// 64 kB every 30 ms (about 2 MB/s), then answers.
    Slowly,
    /// Up to this many bytes, then closes the connection without an answer.
    CutAfter(u64),
}

/// Listens on a free loopback port; the thread takes one request, sends what it saw
/// on `seen`, and (for [`Reading::Whole`]) answers once `go` says so.
fn stand_in(
    reading: Reading,
) -> (
    u16,
    mpsc::Receiver<Seen>,
    mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        serve_one(conn, reading, &seen_tx, &go_rx);
    });
    (port, seen_rx, go_tx, thread)
}

fn serve_one(
    conn: TcpStream,
    reading: Reading,
    seen: &mpsc::Sender<Seen>,
    go: &mpsc::Receiver<()>,
) {
    let mut reader = BufReader::with_capacity(1 << 16, conn.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a Content-Length for a regular file");
    let mut conn_w = conn;
    if head.to_ascii_lowercase().contains("expect: 100-continue") {
        conn_w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
    }
    let limit = match reading {
        Reading::CutAfter(n) => n.min(length),
        _ => length,
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    while got < limit {
        let want = (limit - got).min(buf.len() as u64) as usize;
        let n = reader.read(&mut buf[..want]).unwrap_or(0);
        if n == 0 {
            break;
        }
        got += n as u64;
        if matches!(reading, Reading::Slowly) {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    let _ = seen.send(Seen {
        head,
        body_bytes: got,
    });
    match reading {
        Reading::CutAfter(_) => {
            // Gone without an answer, unread bytes pending: the client's writes fail.
            let _ = conn_w.shutdown(std::net::Shutdown::Both);
            return;
        }
        Reading::Whole => {
            let _ = go.recv_timeout(Duration::from_secs(60));
        }
        Reading::Slowly => {}
    }
    let body =
        r#"{"numbers":7,"routes":8,"deleted":9,"warnings":["line 2: kept"],"total_warnings":3}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn_w.write_all(answer.as_bytes());
}

/// A CSV file of `lines` numbers with long URIs, written a buffer at a time.
fn big_csv(path: &Path, lines: u64) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "number,uri,order,preference").unwrap();
    for i in 0..lines {
        writeln!(
            f,
            "+4416329{i:07},sip:+4416329{i:07}@a-rather-long-host-name.pbx-cluster-{}.example.net;transport=tcp,100,10",
            i % 97
        )
        .unwrap();
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The peak resident memory of a running process, in kB (`VmHWM`).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn spawn_import(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_enroute"))
        .arg("import")
        .args(args)
        .current_dir(dir)
        .env_remove("ENROUTE_ADMIN_URL")
        .env_remove("ENROUTE_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_file_far_larger_than_the_clients_memory_streams() {
    let dir = tempfile::tempdir().unwrap();
    let size = big_csv(&dir.path().join("big.csv"), 600_000);
    assert!(size > 60_000_000, "{size}");
    let (port, seen, go, server) = stand_in(Reading::Whole);
    let url = format!("http://127.0.0.1:{port}");
    let child = spawn_import(
        dir.path(),
        &[
            "big.csv",
            "--url",
            &url,
            "--token",
            "t",
            "--zone",
            ORIGIN,
            "--replace",
        ],
    );
    // The whole body is in, the answer held back: the client is waiting for the
    // commit, its peak memory use is what the upload took.
    let seen = seen
        .recv_timeout(Duration::from_secs(120))
        .expect("the body");
    let peak = peak_rss_kb(child.id()).expect("the client's memory use");
    go.send(()).unwrap();
    let out = child.wait_with_output().unwrap();
    server.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(seen.body_bytes, size);
    eprintln!("client peak memory {peak} kB for a {size}-byte file");
    assert!(
        peak * 1000 < size / 2,
        "the client held {peak} kB for a {size}-byte file"
    );
    let head = seen.head.to_ascii_lowercase();
    assert!(
        head.starts_with(
            "post /v1/numbers:import?mode=replace&zone=2.3.6.1.4.4.e164.arpa. http/1.1"
        ),
        "{head}"
    );
    assert!(head.contains("content-type: text/csv\r\n"), "{head}");
    assert!(head.contains("authorization: bearer t\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {size}\r\n")),
        "{head}"
    );
    // The server's counts, warnings and their total.
    assert_eq!(stdout(&out), "imported: 7 numbers, 8 routes, 9 deleted\n");
    let err = stderr(&out);
    assert!(err.contains("enroute: warning: line 2: kept\n"), "{err}");
    assert!(err.contains("enroute: 1 of 3 warnings listed\n"), "{err}");
    assert!(err.contains(", 600001 lines in "), "{err}");
}

#[test]
fn a_slow_upload_reports_progress_and_a_lost_connection_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let size = big_csv(&dir.path().join("n.csv"), 200_000);
    // About 2 MB/s: a 20 MB file takes more than the 5 s between progress lines, even
    // with the socket buffers filled at once.
    let (port, seen, _go, server) = stand_in(Reading::Slowly);
    let url = format!("http://127.0.0.1:{port}");
    let out = spawn_import(dir.path(), &["n.csv", "--url", &url, "--token", "t"])
        .wait_with_output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(seen.recv().unwrap().body_bytes, size);
    let err = stderr(&out);
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("import: ") && l.contains(" lines/s"))
        .collect();
    assert!(!progress.is_empty(), "{err}");
    for line in &progress {
        assert!(line.contains(" MB of 2") && line.contains("%), "), "{line}");
    }

    // The server goes away after 1 MB: exit 3, nothing imported.
    let (port, _seen, _go, server) = stand_in(Reading::CutAfter(1 << 20));
    let url = format!("http://127.0.0.1:{port}");
    let out = spawn_import(dir.path(), &["n.csv", "--url", &url, "--token", "t"])
        .wait_with_output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was imported"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_help_lists_the_exit_codes_and_the_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["import", "--help"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let help = stdout(&out);
    for needle in [
        "Exit codes:\n  0  the import committed",
        "\n  1  the server refused it",
        "\n  2  bad arguments",
        "\n  3  the server is not reachable",
        "--zone <ORIGIN>",
        "--replace",
        "--token-file <F>",
        "--format <FORMAT>",
    ] {
        assert!(
            help.contains(needle),
            "import --help lacks {needle:?}:\n{help}"
        );
    }
    let top = Command::new(env!("CARGO_BIN_EXE_enroute"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(stdout(&top).contains("\n  import "), "{}", stdout(&top));
}
