//! The operator console at `/ui/` in headless Firefox (Debian's firefox-esr), driven over
//! WebDriver BiDi by `tests/console/firefox_smoke.py` (no geckodriver): sign in, the
//! numbers list, a trace, the status view, and no script errors. `scripts/test` installs
//! firefox-esr; the full walk in Chromium is `tests/console.rs`.

mod common;

use common::Enroute;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FIREFOX: &str = "/usr/bin/firefox-esr";

#[test]
fn an_operator_signs_in_and_traces_a_number_in_headless_firefox() {
    assert!(
        Path::new(FIREFOX).exists(),
        "{FIREFOX} is missing: run scripts/test, which installs firefox-esr"
    );
    let python = Path::new(ROOT).join("target/schemathesis/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs Selenium (and websocket-client) from PyPI",
        python.display()
    );
    let zone_text =
        std::fs::read_to_string(Path::new(ROOT).join("zones/2.3.6.1.4.4.e164.arpa.zone")).unwrap();
    let server = Enroute::start(&zone_text, "");
    let token = std::fs::read_to_string(server.dir.path().join("admin.token")).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .arg(Path::new(ROOT).join("tests/console/firefox_smoke.py"))
        .arg(format!("--base=http://127.0.0.1:{}", server.admin))
        .arg(format!("--token={}", token.trim()))
        .arg(format!("--profile={}", profile.path().display()))
        .arg(format!("--firefox={FIREFOX}"))
        .output()
        .expect("run the Firefox smoke test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Firefox smoke test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("firefox: every step passed"),
        "{stdout}\n{stderr}"
    );
}
