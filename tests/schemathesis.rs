//! schemathesis (PyPI) against `/v1/openapi.json` of a running server: generated
//! requests for every operation, a bounded number of examples each, deterministic.
//! Checked: no 5xx, every status, content type, header and body as the document says,
//! authentication honoured, schema-invalid input rejected. Not checked: that every
//! schema-valid body is accepted (a master file or a route's URI has rules no JSON
//! schema states). `scripts/test` installs schemathesis into `target/schemathesis`.

mod common;

use common::Enroute;
use std::path::PathBuf;
use std::process::Command;

fn schemathesis() -> PathBuf {
    if let Ok(p) = std::env::var("SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/schemathesis");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test, which installs schemathesis from PyPI",
        p.display()
    );
    p
}

#[test]
fn generated_requests_get_answers_that_match_the_openapi_document() {
    let zone = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/zones/2.3.6.1.4.4.e164.arpa.zone"
    ))
    .unwrap();
    // The registrar on, so that its routes answer rather than 404.
    let server = Enroute::start(
        &zone,
        "[registrar]\nenabled = true\ndomains = [\"example.net\"]\n",
    );
    let out = Command::new(schemathesis())
        .arg("run")
        .arg(format!("http://127.0.0.1:{}/v1/openapi.json", server.admin))
        .args(["-H", &format!("Authorization: Bearer {}", server.token())])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-examples",
            "50",
            "--generation-deterministic",
            "--no-color",
        ])
        .args(["--request-timeout", "30"])
        .current_dir(server.dir.path())
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really exercised the API (not an empty run).
    assert!(text.contains("Tested: 24"), "{text}");
}
