//! SIP over TLS (rustls): a certificate generated for the test, the server's `[sip.tls]`,
//! and rustls' own client. A `sips:` Request-URI gets only `sips:` Contacts. A user
//! registers over TLS (SHA-256 digest) and is called by `sips:`.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
            NAPTR 100 20 "u" "E2U+sip" "!^.*$!sips:alice@secure.example.net!" .
2.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:bob@pbx.example.net!" .
"#;

fn invite(uri: &str, branch: &str) -> String {
    format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         From: <sips:caller@example.org>;tag=f{branch}\r\nTo: <{uri}>\r\nCall-ID: {branch}@example.org\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn sip_over_tls() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let port = common::free_port();
    let server = common::Enroute::start_with(
        ZONE,
        "[sip.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n\
         [registrar]\nenabled = true\ndomains = [\"example.net\"]\n",
        &[format!("tls:127.0.0.1:{port}")],
        |dir| {
            std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
            std::fs::write(dir.join("key.pem"), &key_pem).unwrap();
        },
    );
    let _ = &server;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);

    let mut ask = |msg: String| -> String {
        tls.write_all(msg.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    };
    let r = ask(invite("sip:+441632960001@example.net", "s1"));
    assert!(r.starts_with("SIP/2.0 302"), "{r}");
    assert!(
        r.contains("Contact: <sip:alice@pbx.example.net>;q=1.0\r\n"),
        "{r}"
    );
    // sips: only sips: Contacts, q ranked after filtering
    let r = ask(invite("sips:+441632960001@example.net", "s2"));
    assert!(r.starts_with("SIP/2.0 302"), "{r}");
    assert_eq!(r.matches("Contact:").count(), 1, "{r}");
    assert!(
        r.contains("Contact: <sips:alice@secure.example.net>;q=1.0\r\n"),
        "{r}"
    );
    // no sips: route at all: no record for this request
    let r = ask(invite("sips:+441632960002@example.net", "s3"));
    assert!(r.starts_with("SIP/2.0 404"), "{r}");

    // REGISTER over TLS: challenged, then a SHA-256 digest (computed here) is taken.
    server.create_user("alice@example.net", "tls-secret");
    let register = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sips:example.net SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKtr{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sips:alice@example.net>;tag=t1\r\nTo: <sips:alice@example.net>\r\n\
             Call-ID: tls-reg@example.org\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sips:alice@192.0.2.9:5061>, <sip:alice@192.0.2.9:5060>;q=0.5\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let r = ask(register(1, ""));
    assert!(r.starts_with("SIP/2.0 401"), "{r}");
    let nonce = r
        .lines()
        .find(|l| l.contains("algorithm=SHA-256"))
        .and_then(|l| l.split("nonce=\"").nth(1)?.split('"').next())
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let h = |s: String| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let ha1 = h("alice:example.net:tls-secret".into());
    let ha2 = h("REGISTER:sips:example.net".into());
    let response = h(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    let auth = format!(
        "Authorization: Digest username=\"alice\", realm=\"example.net\", nonce=\"{nonce}\", \
         uri=\"sips:example.net\", response=\"{response}\", algorithm=SHA-256, cnonce=\"abc\", \
         qop=auth, nc=00000001\r\n"
    );
    let r = ask(register(2, &auth));
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    assert!(
        r.contains("Contact: <sips:alice@192.0.2.9:5061>;expires="),
        "{r}"
    );
    assert!(
        r.contains("Contact: <sip:alice@192.0.2.9:5060>;expires="),
        "{r}"
    );
    // Called by sips:, only the sips: binding; by sip:, both, by q.
    let r = ask(invite("sips:alice@example.net", "s4"));
    assert!(r.starts_with("SIP/2.0 302"), "{r}");
    assert_eq!(r.matches("Contact:").count(), 1, "{r}");
    assert!(
        r.contains("Contact: <sips:alice@192.0.2.9:5061>;q=1.0\r\n"),
        "{r}"
    );
    let r = ask(invite("sip:alice@example.net", "s5"));
    let sips_at = r.find("Contact: <sips:alice@192.0.2.9:5061>;q=1.0");
    let sip_at = r.find("Contact: <sip:alice@192.0.2.9:5060>;q=0.5");
    assert!(
        sips_at.is_some() && sip_at.is_some() && sips_at < sip_at,
        "{r}"
    );
}

#[test]
fn bad_tls_files_stop_the_server_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    std::fs::write(
        dir.path().join("e.toml"),
        format!(
            "[sip]\nlisten = [\"tls:127.0.0.1:{}\"]\n[sip.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
            common::free_port()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["serve", "--config", "e.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sip.tls: cert") && err.contains("cert.pem"),
        "{err}"
    );
}
