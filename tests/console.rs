//! The operator console at `/ui/` (SPEC §14).
//!
//! In a real browser: headless Chromium driven by Selenium (`tests/console/console_test.py`)
//! against `enroute serve` on free loopback ports, with axe-core checking every view;
//! SIPp sends the INVITE and the REGISTER; the script's steps are listed in its doc string. Screenshots of every step go to
//! `target/console-artifacts/`; with `ENROUTE_UPDATE_SCREENSHOTS=1` the README's two
//! (`docs/console-numbers.png`, `docs/console-tracer.png`) are written again.
//! `scripts/test` installs Chromium, ChromeDriver, Selenium (PyPI) and axe-core (npm).
//!
//! Over plain HTTP: the page needs no token, every answer under `/ui` carries the
//! headers that keep the page to its own origin, files are the ones under `ui/` with
//! their types, and unchanged files revalidate with 304.

mod common;

use common::{Enroute, Knot, http};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn zone_text() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("zones/2.3.6.1.4.4.e164.arpa.zone")).unwrap()
}

/// A tool `scripts/test` installs, or a panic that says so.
fn installed(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, which installs {what}",
        path.display()
    );
    path
}

#[test]
fn an_operator_works_through_every_view_in_headless_chromium() {
    let python = installed(
        Path::new(ROOT).join("target/schemathesis/bin/python"),
        "Selenium from PyPI into target/schemathesis",
    );
    let axe = installed(
        Path::new(ROOT).join("tests/console/node_modules/axe-core/axe.min.js"),
        "axe-core from npm (npm ci in tests/console)",
    );
    for browser in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        installed(
            PathBuf::from(browser),
            "Debian's chromium and chromium-driver",
        );
    }
    // Upstream ENUM: Knot serving +1 202 555 01xx (answers to cache), and refusing
    // every other name under e164.arpa. (upstream failures).
    let us = std::fs::read_to_string(Path::new(ROOT).join("zones/5.5.5.2.0.2.1.e164.arpa.zone"))
        .unwrap();
    let knot = Knot::start(&[("5.5.5.2.0.2.1.e164.arpa.", &us)]);
    let server = Enroute::start(
        &zone_text(),
        &format!(
            "[registrar]\nenabled = true\ndomains = [\"example.net\"]\nalgorithms = [\"MD5\"]\n\
             [enum]\nsuffixes = [\"e164.arpa.\"]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_ms = 1000\n",
            knot.port
        ),
    );
    let token = std::fs::read_to_string(server.dir.path().join("admin.token")).unwrap();
    let artifacts = Path::new(ROOT).join("target/console-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(ROOT).join("tests/console/console_test.py"))
        .arg(format!("--base=http://127.0.0.1:{}", server.admin))
        .arg(format!("--token={}", token.trim()))
        .arg(format!("--sip-port={}", server.sip_udp))
        .arg(format!("--dns-port={}", server.dns))
        .arg(format!("--server-pid={}", server.pid()))
        // To start it again after the test has killed it (the banner must go).
        .arg(format!("--server-binary={}", env!("CARGO_BIN_EXE_enroute")))
        .arg(format!("--server-dir={}", server.dir.path().display()))
        .arg(format!("--artifacts={}", artifacts.display()))
        .arg(format!("--profile={}", profile.path().display()))
        .arg(format!("--axe={}", axe.display()))
        .arg(format!("--sipp={}", common::sipp()))
        .arg(format!("--scenarios={ROOT}/tests/sipp"));
    if std::env::var("ENROUTE_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        cmd.arg(format!("--docs={}", Path::new(ROOT).join("docs").display()));
    }
    let out = cmd.output().expect("run the browser test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
    assert!(stdout.contains("console: every step passed"), "{stdout}");
    // This run took the README's two pictures (into the artifacts; over docs/ with
    // ENROUTE_UPDATE_SCREENSHOTS=1), and every picture the docs show is in the tree.
    for shot in ["console-numbers.png", "console-tracer.png"] {
        let taken = artifacts.join(format!("docs-{shot}"));
        let bytes = std::fs::read(&taken).unwrap_or_else(|e| panic!("{}: {e}", taken.display()));
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            taken.display()
        );
    }
    let pictures = regex::Regex::new(r"!\[[^\]]*\]\(([^)]+\.png)\)").unwrap();
    for (doc, dir) in [("README.md", ""), ("docs/console.md", "docs/")] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(doc)).unwrap();
        for m in pictures.captures_iter(&text) {
            let path = Path::new(ROOT).join(dir).join(&m[1]);
            assert!(path.is_file(), "{doc} shows {}, which is missing", &m[1]);
        }
    }
}

/// The headers every console answer carries, whatever the status.
fn assert_page_headers(r: &common::HttpResponse, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'));
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(
        r.header("cross-origin-opener-policy"),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(
        r.header("cross-origin-resource-policy"),
        Some("same-origin"),
        "{what}"
    );
}

#[test]
fn the_page_loads_without_a_token_from_this_origin_only() {
    let server = Enroute::start(&zone_text(), "");
    let port = server.admin;

    // A browser pointed at the listener lands on the console.
    let root = http(port, "GET", "/", &[], b"");
    assert_eq!(root.status, 307);
    assert_eq!(root.header("location"), Some("/ui/"));
    let bare = http(port, "GET", "/ui", &[], b"");
    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("/ui/"));

    let page = http(port, "GET", "/ui/", &[], b"");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_page_headers(&page, "/ui/");
    let html = page.text();
    assert_eq!(
        html,
        std::fs::read_to_string(Path::new(ROOT).join("ui/index.html")).unwrap()
    );
    // Nothing inline that the policy would have to allow, nothing from elsewhere.
    assert!(!html.contains("<script>") && !html.contains("style=") && !html.contains("onclick"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));

    for (path, content_type) in [
        ("/ui/js/main.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let r = http(port, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_page_headers(&r, path);
        let file = Path::new(ROOT).join("ui").join(&path["/ui/".len()..]);
        assert_eq!(r.body, std::fs::read(file).unwrap(), "{path}");
        // Unchanged: revalidated with a 304 and no body.
        let etag = r.header("etag").expect("an ETag").to_string();
        let again = http(port, "GET", path, &[("If-None-Match", &etag)], b"");
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        let stale = http(port, "GET", path, &[("If-None-Match", "\"other\"")], b"");
        assert_eq!(stale.status, 200, "{path}");
    }

    // No script anywhere names another host.
    let mut scripts = Vec::new();
    collect(&Path::new(ROOT).join("ui"), &mut scripts);
    for file in scripts {
        // The SVG namespace is a name, not an address.
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("https://") && !text.contains("http://"),
            "{} names another host",
            file.display()
        );
    }

    let missing = http(port, "GET", "/ui/js/nothing.js", &[], b"");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert_page_headers(&missing, "a missing file");
    // Answers the router itself gives carry the headers too: a method not allowed, a
    // path that is not UTF-8.
    let post = http(port, "POST", "/ui/", &[], b"");
    assert_eq!(post.status, 405);
    assert_page_headers(&post, "a POST");
    let bad = http(port, "GET", "/ui/%FF", &[], b"");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_page_headers(&bad, "a path that is not UTF-8");
    // The API's answers are not the page's: no page policy, but nosniff.
    let api = http(port, "GET", "/v1/zones", &[], b"");
    assert_eq!(api.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(api.header("content-security-policy"), None);

    // The data still needs the token.
    assert_eq!(http(port, "GET", "/v1/zones", &[], b"").status, 401);
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
