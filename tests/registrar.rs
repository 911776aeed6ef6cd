//! The registrar (SPEC §11) as a user sees it, over real loopback sockets against a
//! running `enroute serve`: REGISTER over UDP and TCP with digest authentication
//! (SHA-256 and MD5, computed here with `sha2` and `md-5`, not with enroute's code),
//! RFC 3261 §10.3's checks and answers (401, 423, 400, 403, 404, 500, 200 listing the
//! bindings), nonce staleness and replay, the per-source failure throttle, transaction
//! retransmissions, INVITEs redirected to the bindings (q order, numbers by any form),
//! durability across SIGKILL, expiry, the admin API's users and registrations,
//! `/v1/route` and `enroute route`, metrics, and the registrar switched off.

mod common;

use common::{DigestAlg as Alg, Enroute, HttpResponse, http, sip_status as status};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// +441632960001 routes to alice@pbx.example.net by the zone (the chain after the
/// registrar).
const ZONE: &str = r#"$ORIGIN 2.3.6.1.4.4.e164.arpa.
$TTL 300
@ SOA ns.example. h.example. 1 3600 900 604800 60
1.0.0.0.6.9 NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@pbx.example.net!" .
"#;

/// The Request-URI (and digest `uri`) of every REGISTER.
const RURI: &str = "sip:example.net";
/// The realm: the first of the served domains.
const REALM: &str = "example.net";
const DIALPLAN: &str = "[dialplan]\nrules = [{ match = '^0([1-9][0-9]+)$', replace = '+44$1' }]\n";

/// A server with the registrar on for example.net and example.org; `keys` are more
/// `[registrar]` settings, `more` whole sections after it.
fn start(keys: &str, more: &str) -> Enroute {
    Enroute::start(ZONE, &registrar_config(keys, more))
}

fn registrar_config(keys: &str, more: &str) -> String {
    format!(
        "[registrar]\nenabled = true\ndomains = [\"example.net\", \"example.org\"]\n{keys}{more}"
    )
}

/// A token no other message of this test process uses (branches, Call-IDs, tags).
fn fresh() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------
// Transports

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    Udp,
    Tcp,
}

const BOTH: [T; 2] = [T::Udp, T::Tcp];

/// One SIP client connection: a UDP socket of its own, or one TCP connection.
enum Sip {
    Udp(UdpSocket, u16),
    Tcp(TcpStream, Vec<u8>),
}

impl Sip {
    fn open(t: T, server: &Enroute) -> Sip {
        match t {
            T::Udp => Sip::udp_from(server, "127.0.0.1"),
            T::Tcp => {
                let s = TcpStream::connect(("127.0.0.1", server.sip_tcp)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                Sip::Tcp(s, Vec::new())
            }
        }
    }

    /// A UDP client bound to `ip` (another loopback address is another source).
    fn udp_from(server: &Enroute, ip: &str) -> Sip {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Sip::Udp(s, server.sip_udp)
    }

    fn transport(&self) -> &'static str {
        match self {
            Sip::Udp(..) => "UDP",
            Sip::Tcp(..) => "TCP",
        }
    }

    fn local(&self) -> SocketAddr {
        match self {
            Sip::Udp(s, _) => s.local_addr().unwrap(),
            Sip::Tcp(s, _) => s.local_addr().unwrap(),
        }
    }

    fn send(&mut self, msg: &str) {
        match self {
            Sip::Udp(s, port) => {
                s.send_to(msg.as_bytes(), ("127.0.0.1", *port)).unwrap();
            }
            Sip::Tcp(s, _) => s.write_all(msg.as_bytes()).unwrap(),
        }
    }

    /// The next message, `None` after 5 s of silence (or a closed stream).
    fn recv(&mut self) -> Option<String> {
        match self {
            Sip::Udp(s, _) => {
                let mut buf = vec![0u8; 65536];
                let n = s.recv(&mut buf).ok()?;
                Some(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            Sip::Tcp(s, buf) => loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let len = head
                        .split("\r\n")
                        .filter_map(|l| l.split_once(':'))
                        .find(|(n, _)| {
                            n.trim().eq_ignore_ascii_case("content-length")
                                || n.trim().eq_ignore_ascii_case("l")
                        })
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                        return Some(String::from_utf8_lossy(&msg).into_owned());
                    }
                }
                let mut chunk = [0u8; 8192];
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            },
        }
    }

    /// Sends `msg` and returns the answer carrying its Via branch.
    fn ask(&mut self, msg: &str) -> String {
        let branch = msg
            .split("branch=")
            .nth(1)
            .and_then(|r| r.split([';', '\r']).next())
            .expect("a Via branch")
            .to_string();
        self.send(msg);
        loop {
            let r = self
                .recv()
                .unwrap_or_else(|| panic!("no answer over {} to:\n{msg}", self.transport()));
            if r.contains(&format!("branch={branch};")) || r.contains(&format!("branch={branch}\r"))
            {
                return r;
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Answers

/// The values of header `name` (long form, any case), in order.
fn headers(resp: &str, name: &str) -> Vec<String> {
    resp.split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// The reason phrase of a response.
fn reason(resp: &str) -> &str {
    let line = resp.lines().next().unwrap_or("");
    line.splitn(3, ' ').nth(2).unwrap_or("")
}

/// Asserts the status and the reason phrase.
#[track_caller]
fn assert_answer(resp: &str, code: u16, why: &str) {
    assert_eq!(
        (status(resp), reason(resp)),
        (code, why),
        "whole answer:\n{resp}"
    );
}

/// One binding as a 200 to a REGISTER lists it: URI, expires, q (when written).
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    uri: String,
    expires: u64,
    q: Option<String>,
}

/// The Contact values of a 200 to a REGISTER, read strictly as
/// `<uri>;expires=N[;q=Q]`.
fn listed(resp: &str) -> Vec<Listed> {
    headers(resp, "Contact")
        .iter()
        .map(|v| {
            let rest = v
                .strip_prefix('<')
                .unwrap_or_else(|| panic!("Contact not <uri>: {v}"));
            let (uri, params) = rest
                .split_once('>')
                .unwrap_or_else(|| panic!("Contact not <uri>: {v}"));
            let mut expires = None;
            let mut q = None;
            for p in params.split(';').filter(|p| !p.is_empty()) {
                match p.split_once('=') {
                    Some(("expires", e)) => expires = Some(e.parse().unwrap()),
                    Some(("q", x)) => q = Some(x.to_string()),
                    _ => panic!("unexpected Contact parameter {p:?} in {v}"),
                }
            }
            Listed {
                uri: uri.to_string(),
                expires: expires.unwrap_or_else(|| panic!("no expires in Contact: {v}")),
                q,
            }
        })
        .collect()
}

/// The listed URIs, in order.
fn uris(resp: &str) -> Vec<String> {
    listed(resp).into_iter().map(|l| l.uri).collect()
}

/// Asserts a 200 to a REGISTER listing exactly `want` (uri, lowest acceptable expires,
/// highest, q) in any order, with a Date header near now.
#[track_caller]
fn assert_listing(resp: &str, want: &[(&str, u64, u64, Option<&str>)]) {
    assert_answer(resp, 200, "OK");
    let mut got = listed(resp);
    got.sort_by(|a, b| a.uri.cmp(&b.uri));
    let mut want = want.to_vec();
    want.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(got.len(), want.len(), "listing:\n{resp}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.uri, w.0, "listing:\n{resp}");
        assert!(
            (w.1..=w.2).contains(&g.expires),
            "expires {} of {} not in {}..={}:\n{resp}",
            g.expires,
            g.uri,
            w.1,
            w.2
        );
        assert_eq!(g.q.as_deref(), w.3, "q of {}:\n{resp}", g.uri);
    }
    let date = headers(resp, "Date");
    assert_eq!(date.len(), 1, "one Date header:\n{resp}");
    let when =
        httpdate::parse_http_date(&date[0]).unwrap_or_else(|e| panic!("Date {:?}: {e}", date[0]));
    let skew = when
        .duration_since(SystemTime::now() - Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("Date {} long ago", date[0]));
    assert!(skew < Duration::from_secs(10), "Date {} far ahead", date[0]);
}

/// The parameters of each `WWW-Authenticate: Digest …` of a 401, in order.
fn challenges(resp: &str) -> Vec<BTreeMap<String, String>> {
    headers(resp, "WWW-Authenticate")
        .iter()
        .map(|v| {
            let params = v
                .strip_prefix("Digest ")
                .unwrap_or_else(|| panic!("not a Digest challenge: {v}"));
            params
                .split(',')
                .map(|p| {
                    let (k, v) = p
                        .trim()
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad challenge parameter {p:?}"));
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect()
        })
        .collect()
}

/// Asserts a 401 carrying one challenge per algorithm in `algs`' order, for `realm`,
/// sharing one nonce, `stale=true` on each exactly when `stale`; returns the nonce.
#[track_caller]
fn assert_challenge(resp: &str, realm: &str, algs: &[Alg], stale: bool) -> String {
    assert_answer(resp, 401, "Unauthorized");
    let lines = headers(resp, "WWW-Authenticate");
    let ch = challenges(resp);
    assert_eq!(ch.len(), algs.len(), "challenges:\n{resp}");
    let nonce = ch[0]["nonce"].clone();
    assert!(
        nonce.len() >= 16 && !nonce.contains(['"', ' ']),
        "nonce {nonce:?}"
    );
    for ((c, line), alg) in ch.iter().zip(&lines).zip(algs) {
        let mut want = format!(
            "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
            alg.name()
        );
        if stale {
            want.push_str(", stale=true");
        }
        assert_eq!(line, &want, "challenge of {}:\n{resp}", alg.name());
        assert_eq!(c["nonce"], nonce, "one nonce for all challenges");
    }
    nonce
}

// ---------------------------------------------------------------------------------
// Digest, computed by the test client (common::DigestAlg), not by enroute

/// The default `registrar.algorithms`, in order.
const DEFAULT_ALGS: [Alg; 2] = [Alg::Sha256, Alg::Md5];

/// The digest credentials a client computes (RFC 7616 §3.4.1, qop=auth) for a
/// REGISTER to [`RURI`], as a whole `Authorization:` line.
fn authorization(alg: Alg, credentials: (&str, &str, &str), nonce: &str, nc: u32) -> String {
    common::digest_authorization(alg, RURI, credentials, nonce, nc, "0a4f113b") + "\r\n"
}

/// A registering user agent: an AOR (To and From), digest username and password, the
/// nonce it holds and its nonce count, its Call-ID and CSeq.
struct Ua {
    sip: Sip,
    aor: String,
    user: String,
    password: String,
    alg: Alg,
    realm: String,
    nonce: Option<String>,
    nc: u32,
    call_id: String,
    cseq: u32,
    tag: String,
}

impl Ua {
    fn new(sip: Sip, aor: &str, user: &str, password: &str) -> Ua {
        Ua {
            sip,
            aor: aor.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            alg: Alg::Sha256,
            realm: REALM.to_string(),
            nonce: None,
            nc: 0,
            call_id: format!("{}@ua", fresh()),
            cseq: 0,
            tag: fresh(),
        }
    }

    /// The user `name` (AOR `sip:name@example.net`) over `t`.
    fn of(t: T, server: &Enroute, name: &str, password: &str) -> Ua {
        Ua::new(
            Sip::open(t, server),
            &format!("sip:{name}@example.net"),
            name,
            password,
        )
    }

    fn with_alg(mut self, alg: Alg) -> Ua {
        self.alg = alg;
        self
    }

    /// A REGISTER with `extra` header lines (each ending in CRLF) and a new branch.
    fn message(&self, call_id: &str, cseq: u32, extra: &str) -> String {
        format!(
            "REGISTER {RURI} SIP/2.0\r\n\
             Via: SIP/2.0/{} {};branch=z9hG4bK{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{aor}>;tag={}\r\n\
             To: <{aor}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             {extra}Content-Length: 0\r\n\r\n",
            self.sip.transport(),
            self.sip.local(),
            fresh(),
            self.tag,
            aor = self.aor,
        )
    }

    /// A REGISTER without credentials (next CSeq); the answer.
    fn plain(&mut self, extra: &str) -> String {
        self.cseq += 1;
        let msg = self.message(&self.call_id, self.cseq, extra);
        self.sip.ask(&msg)
    }

    /// Takes the nonce of a 401's challenge for this UA's algorithm.
    fn take_nonce(&mut self, resp: &str) {
        let ch = challenges(resp);
        let c = ch
            .iter()
            .find(|c| c.get("algorithm").map(String::as_str) == Some(self.alg.name()))
            .unwrap_or_else(|| panic!("no {} challenge in:\n{resp}", self.alg.name()));
        self.nonce = Some(c["nonce"].clone());
        self.nc = 0;
    }

    /// An unauthenticated REGISTER answered 401, whose nonce is kept.
    fn challenge(&mut self) -> String {
        let r = self.plain("");
        assert_eq!(status(&r), 401, "{r}");
        self.take_nonce(&r);
        r
    }

    /// The `Authorization:` line for the next nonce count.
    fn next_authorization(&mut self) -> String {
        if self.nonce.is_none() {
            self.challenge();
        }
        self.nc += 1;
        let credentials = (&*self.user, &*self.realm, &*self.password);
        authorization(
            self.alg,
            credentials,
            self.nonce.as_deref().unwrap(),
            self.nc,
        )
    }

    /// An authenticated REGISTER (challenged first when it holds no nonce), next CSeq.
    fn register(&mut self, extra: &str) -> String {
        let auth = self.next_authorization();
        self.cseq += 1;
        let msg = self.message(&self.call_id, self.cseq, &format!("{auth}{extra}"));
        self.sip.ask(&msg)
    }

    /// An authenticated REGISTER with this Call-ID and CSeq.
    fn register_as(&mut self, call_id: &str, cseq: u32, extra: &str) -> String {
        let auth = self.next_authorization();
        let msg = self.message(call_id, cseq, &format!("{auth}{extra}"));
        self.sip.ask(&msg)
    }
}

// ---------------------------------------------------------------------------------
// INVITE, admin API, metrics

/// The status and Contact values of the answer to an INVITE for `ruri` (over UDP, from
/// a socket of its own).
fn invite(server: &Enroute, ruri: &str) -> (u16, Vec<String>) {
    let mut sip = Sip::udp_from(server, "127.0.0.1");
    let b = fresh();
    let msg = format!(
        "INVITE {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {};branch=z9hG4bK{b};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@example.com>;tag=f{b}\r\nTo: <{ruri}>\r\n\
         Call-ID: {b}@caller\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        sip.local()
    );
    let r = sip.ask(&msg);
    (status(&r), headers(&r, "Contact"))
}

/// Asserts an INVITE for `ruri` is redirected to exactly `contacts` (`<uri>;q=…`).
#[track_caller]
fn assert_redirect(server: &Enroute, ruri: &str, contacts: &[&str]) {
    let (code, got) = invite(server, ruri);
    assert_eq!(
        (code, got.iter().map(String::as_str).collect::<Vec<_>>()),
        (302, contacts.to_vec()),
        "INVITE {ruri}"
    );
}

fn put_user(server: &Enroute, aor: &str, password: &str) -> HttpResponse {
    let body = serde_json::json!({ "password": password }).to_string();
    server.api(
        "PUT",
        &format!("/v1/users/{aor}"),
        "application/json",
        body.as_bytes(),
    )
}

/// `GET /v1/registrations{query}`'s JSON (200 asserted).
fn registrations(server: &Enroute, query: &str) -> serde_json::Value {
    let r = server.api("GET", &format!("/v1/registrations{query}"), "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The AORs a registrations listing names.
fn aors(v: &serde_json::Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|i| i["aor"].as_str().unwrap().to_string())
        .collect()
}

/// The problem's first error field of a 422.
#[track_caller]
fn field_422(r: &HttpResponse) -> String {
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text()
    );
    r.json()["errors"][0]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[0].field: {}", r.text()))
        .to_string()
}

/// `enroute_registrar_requests_total{result="…"}`.
fn counted(server: &Enroute, result: &str) -> f64 {
    server.metric(&format!(
        "enroute_registrar_requests_total{{result=\"{result}\"}}"
    ))
}

/// `enroute_sip_responses_total{code="…"}`.
fn responses(server: &Enroute, code: u16) -> f64 {
    server.metric(&format!("enroute_sip_responses_total{{code=\"{code}\"}}"))
}

/// Seconds since the epoch, fractional.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------
// Tests

#[test]
fn register_is_challenged_then_accepted_with_sha256_and_md5_over_udp_and_tcp() {
    let server = start("", "");
    for t in BOTH {
        for alg in DEFAULT_ALGS {
            let name = format!("{t:?}{alg:?}").to_lowercase();
            server.create_user(&format!("{name}@example.net"), "s3cret");
            let mut ua = Ua::of(t, &server, &name, "s3cret").with_alg(alg);
            let contact = format!("sip:{name}@192.0.2.7:5062");
            let extra = format!("Contact: <{contact}>\r\nExpires: 600\r\n");
            // No credentials: one challenge per algorithm, SHA-256 first, one nonce.
            let r = ua.plain(&extra);
            assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
            ua.take_nonce(&r);
            // The digest computed here is accepted: 200 listing the binding.
            let r = ua.register(&extra);
            assert_listing(&r, &[(&contact, 598, 600, None)]);
            // An INVITE for the AOR goes to it.
            assert_redirect(
                &server,
                &format!("sip:{name}@example.net"),
                &[&format!("<{contact}>;q=1.0")],
            );
        }
    }
}

#[test]
fn realm_and_algorithms_settings_shape_the_challenges() {
    // Order as configured, realm as configured.
    let server = start(
        "realm = \"voip.example.com\"\nalgorithms = [\"MD5\", \"SHA-256\"]\n",
        "",
    );
    let r = put_user(&server, "alice@example.net", "pw");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["realm"], "voip.example.com");
    for alg in DEFAULT_ALGS {
        let mut ua = Ua::of(T::Udp, &server, "alice", "pw").with_alg(alg);
        ua.realm = "voip.example.com".into();
        let r = ua.challenge();
        assert_challenge(&r, "voip.example.com", &[Alg::Md5, Alg::Sha256], false);
        let r = ua.register("Contact: <sip:alice@192.0.2.1>\r\n");
        assert_eq!(status(&r), 200, "{alg:?} in realm voip.example.com:\n{r}");
    }
    drop(server);

    // One algorithm only: one challenge; credentials in the other are not taken.
    let server = start("algorithms = [\"SHA-256\"]\n", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(T::Udp, &server, "alice", "pw").with_alg(Alg::Sha256);
    let r = ua.challenge();
    let nonce = assert_challenge(&r, REALM, &[Alg::Sha256], false);
    let mut md5 = Ua::of(T::Udp, &server, "alice", "pw").with_alg(Alg::Md5);
    md5.nonce = Some(nonce);
    let r = md5.register("Contact: <sip:alice@192.0.2.1>\r\n");
    assert_challenge(&r, REALM, &[Alg::Sha256], false);
    let r = ua.register("Contact: <sip:alice@192.0.2.1>\r\n");
    assert_eq!(status(&r), 200, "{r}");
}

#[test]
fn refresh_and_removal_with_expires_zero_over_udp_and_tcp() {
    let server = start("max_expires_s = 7200\ndefault_expires_s = 1800\n", "");
    for t in BOTH {
        let name = format!("{t:?}").to_lowercase();
        server.create_user(&format!("{name}@example.net"), "pw");
        let mut ua = Ua::of(t, &server, &name, "pw");
        let a = format!("sip:{name}@192.0.2.1:5060");
        let b = format!("sip:{name}@192.0.2.2:5060");
        let r = ua.register(&format!("Contact: <{a}>;expires=600\r\n"));
        assert_listing(&r, &[(&a, 598, 600, None)]);
        // Refresh (same Call-ID, higher CSeq), the Expires header this time: one
        // binding with the new expiry, not two.
        let r = ua.register(&format!("Contact: <{a}>\r\nExpires: 300\r\n"));
        assert_listing(&r, &[(&a, 298, 300, None)]);
        // A second contact without any expiry: the default; past the maximum: cut.
        let r = ua.register(&format!("Contact: <{b}>\r\n"));
        assert_listing(&r, &[(&a, 297, 300, None), (&b, 1798, 1800, None)]);
        let r = ua.register(&format!("Contact: <{b}>;expires=99999\r\n"));
        assert_listing(&r, &[(&a, 297, 300, None), (&b, 7198, 7200, None)]);
        assert_redirect(
            &server,
            &format!("sip:{name}@example.net"),
            &[&format!("<{b}>;q=1.0"), &format!("<{a}>;q=1.0")],
        );
        // expires=0 removes that binding only.
        let r = ua.register(&format!("Contact: <{a}>;expires=0\r\n"));
        assert_listing(&r, &[(&b, 7197, 7200, None)]);
        assert_redirect(
            &server,
            &format!("sip:{name}@example.net"),
            &[&format!("<{b}>;q=1.0")],
        );
        // Expires: 0 for the last one: nothing left, INVITE gets the usual 404.
        let r = ua.register(&format!("Contact: <{b}>\r\nExpires: 0\r\n"));
        assert_listing(&r, &[]);
        let (code, _) = invite(&server, &format!("sip:{name}@example.net"));
        assert_eq!(code, 404, "INVITE after every binding was removed ({t:?})");
        // A Contact's own expires wins over the Expires header, which applies to the
        // others.
        let r = ua.register(&format!(
            "Contact: <{a}>;expires=120, <{b}>\r\nExpires: 900\r\n"
        ));
        assert_listing(&r, &[(&a, 118, 120, None), (&b, 898, 900, None)]);
    }
}

#[test]
fn contact_star_removes_all_and_only_alone_with_expires_zero() {
    let server = start("", "");
    for t in BOTH {
        let name = format!("star{t:?}").to_lowercase();
        server.create_user(&format!("{name}@example.net"), "pw");
        let mut ua = Ua::of(t, &server, &name, "pw");
        let r = ua.register(&format!(
            "Contact: <sip:{name}@192.0.2.1>, <sip:{name}@192.0.2.2>;q=0.5\r\n"
        ));
        assert_eq!(listed(&r).len(), 2, "{r}");
        let why = "Contact * needs Expires: 0 and no other Contact";
        // * with another contact
        let r = ua.register(&format!(
            "Contact: *\r\nContact: <sip:{name}@192.0.2.3>\r\nExpires: 0\r\n"
        ));
        assert_answer(&r, 400, why);
        // * without Expires, and with a non-zero Expires
        let r = ua.register("Contact: *\r\n");
        assert_answer(&r, 400, why);
        let r = ua.register("Contact: *\r\nExpires: 60\r\n");
        assert_answer(&r, 400, why);
        // nothing of that changed the bindings
        let r = ua.register("");
        assert_eq!(listed(&r).len(), 2, "{r}");
        // * with Expires: 0 alone removes all
        let r = ua.register("Contact: *\r\nExpires: 0\r\n");
        assert_listing(&r, &[]);
        let v = registrations(&server, &format!("?aor={name}@example.net"));
        assert_eq!(v["items"], serde_json::json!([]), "{v}");
        let (code, _) = invite(&server, &format!("sip:{name}@example.net"));
        assert_eq!(code, 404);
    }
}

#[test]
fn malformed_contact_and_expires_values_get_400_with_their_reason_over_udp_and_tcp() {
    for t in BOTH {
        malformed_case(t);
    }
}

fn malformed_case(t: T) {
    let server = start("", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(t, &server, "alice", "pw");
    let before = counted(&server, "bad_request");
    let cases = [
        ("Contact: <not a uri>\r\n", "Malformed Contact"),
        (
            "Contact: <sip:alice@192.0.2.1>\r\nExpires: soon\r\n",
            "Malformed Expires",
        ),
        (
            "Contact: <sip:alice@192.0.2.1>;expires=1h\r\n",
            "Malformed expires in Contact",
        ),
        (
            "Contact: <sip:alice@192.0.2.1>;q=2\r\n",
            "Malformed q in Contact",
        ),
        (
            "Contact: <sip:alice@192.0.2.1>;q=0.1234\r\n",
            "Malformed q in Contact",
        ),
    ];
    for (extra, why) in cases {
        // Read after authentication (RFC 3261 §10.3: steps 3-4 before 6-7): without
        // credentials the challenge comes first.
        let r = ua.plain(extra);
        assert_eq!(status(&r), 401, "{r}");
        let r = ua.register(extra);
        assert_answer(&r, 400, why);
    }
    assert_eq!(counted(&server, "bad_request") - before, cases.len() as f64);
    let v = registrations(&server, "");
    assert_eq!(v["items"], serde_json::json!([]), "{v}");
}

#[test]
fn an_interval_too_brief_gets_423_with_min_expires_after_authentication_over_udp_and_tcp() {
    for t in BOTH {
        too_brief_case(t);
    }
}

fn too_brief_case(t: T) {
    let server = start("", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(t, &server, "alice", "pw");
    let before = counted(&server, "too_brief");
    // Without credentials the challenge comes first.
    let r = ua.plain("Contact: <sip:alice@192.0.2.1>;expires=30\r\n");
    assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    ua.take_nonce(&r);
    for extra in [
        "Contact: <sip:alice@192.0.2.1>;expires=30\r\n",
        "Contact: <sip:alice@192.0.2.1>\r\nExpires: 59\r\n",
        "Contact: <sip:alice@192.0.2.1>;expires=1\r\n",
        // one brief among good ones refuses the whole request
        "Contact: <sip:alice@192.0.2.2>;expires=600, <sip:alice@192.0.2.1>;expires=5\r\n",
    ] {
        let r = ua.register(extra);
        assert_answer(&r, 423, "Interval Too Brief");
        assert_eq!(headers(&r, "Min-Expires"), ["60"], "{r}");
    }
    assert_eq!(counted(&server, "too_brief") - before, 4.0);
    assert_eq!(responses(&server, 423), 4.0);
    // Nothing was bound; the minimum itself and 0 (removal) are fine.
    let r = ua.register("");
    assert_listing(&r, &[]);
    let r = ua.register("Contact: <sip:alice@192.0.2.1>;expires=60\r\n");
    assert_listing(&r, &[("sip:alice@192.0.2.1", 58, 60, None)]);
    let r = ua.register("Contact: <sip:alice@192.0.2.1>;expires=0\r\n");
    assert_listing(&r, &[]);
}

#[test]
fn max_bindings_refuses_more_with_403_and_adds_nothing_over_udp_and_tcp() {
    for t in BOTH {
        max_bindings_case(t);
    }
}

fn max_bindings_case(t: T) {
    let server = start("max_bindings = 2\n", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(t, &server, "alice", "pw");
    let three = "Contact: <sip:a@192.0.2.1>, <sip:a@192.0.2.2>\r\nContact: <sip:a@192.0.2.3>\r\n";
    // More contacts in one request than allowed: challenged first, then refused.
    let r = ua.plain(three);
    assert_eq!(status(&r), 401, "{r}");
    let r = ua.register(three);
    assert_answer(&r, 403, "Too many bindings");
    let r = ua.register("Contact: <sip:a@192.0.2.1>, <sip:a@192.0.2.2>\r\n");
    assert_eq!(uris(&r).len(), 2, "{r}");
    // A third binding: 403, the two stay as they were.
    let r = ua.register("Contact: <sip:a@192.0.2.3>\r\n");
    assert_answer(&r, 403, "Too many bindings");
    let r = ua.register("");
    let mut got = uris(&r);
    got.sort();
    assert_eq!(got, ["sip:a@192.0.2.1", "sip:a@192.0.2.2"], "{r}");
    let v = registrations(&server, "?aor=alice@example.net");
    assert_eq!(
        v["items"][0]["contacts"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    // What counts is the result: one in, one out is fine.
    let r = ua.register("Contact: <sip:a@192.0.2.3>, <sip:a@192.0.2.1>;expires=0\r\n");
    let mut got = uris(&r);
    got.sort();
    assert_eq!(got, ["sip:a@192.0.2.2", "sip:a@192.0.2.3"], "{r}");
}

#[test]
fn cseq_out_of_order_on_one_call_id_gets_500_and_changes_nothing_over_udp_and_tcp() {
    for t in BOTH {
        cseq_case(t);
    }
}

fn cseq_case(t: T) {
    let server = start("", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(t, &server, "alice", "pw");
    let c = "Contact: <sip:alice@192.0.2.1>;expires=600\r\n";
    let r = ua.register_as("first@ua", 10, c);
    assert_listing(&r, &[("sip:alice@192.0.2.1", 598, 600, None)]);
    let why = "Server Internal Error: CSeq out of order";
    // Same Call-ID, CSeq not higher (equal, lower): 500, nothing changes.
    for cseq in [10, 9] {
        let r = ua.register_as(
            "first@ua",
            cseq,
            "Contact: <sip:alice@192.0.2.1>;expires=3000\r\n",
        );
        assert_answer(&r, 500, why);
    }
    let r = ua.register_as(
        "first@ua",
        10,
        "Contact: <sip:alice@192.0.2.1>;expires=0\r\n",
    );
    assert_answer(&r, 500, why);
    let r = ua.register_as("first@ua", 3, "Contact: *\r\nExpires: 0\r\n");
    assert_answer(&r, 500, why);
    let v = registrations(&server, "?aor=alice@example.net");
    let b = &v["items"][0]["contacts"][0];
    assert_eq!(
        (b["uri"].as_str(), b["call_id"].as_str(), b["cseq"].as_u64()),
        (Some("sip:alice@192.0.2.1"), Some("first@ua"), Some(10)),
        "{v}"
    );
    assert!(b["expires"].as_u64().unwrap() <= 600, "{v}");
    // A higher CSeq is taken.
    let r = ua.register_as(
        "first@ua",
        11,
        "Contact: <sip:alice@192.0.2.1>;expires=900\r\n",
    );
    assert_listing(&r, &[("sip:alice@192.0.2.1", 898, 900, None)]);
    // Another Call-ID (another device) may refresh it with any CSeq.
    let r = ua.register_as(
        "second@ua",
        1,
        "Contact: <sip:alice@192.0.2.1>;expires=1200\r\n",
    );
    assert_listing(&r, &[("sip:alice@192.0.2.1", 1198, 1200, None)]);
    let v = registrations(&server, "?aor=alice@example.net");
    let b = &v["items"][0]["contacts"][0];
    assert_eq!(
        (b["call_id"].as_str(), b["cseq"].as_u64()),
        (Some("second@ua"), Some(1)),
        "{v}"
    );
}

#[test]
fn register_without_contact_lists_the_bindings_over_udp_and_tcp() {
    let server = start("", "");
    for t in BOTH {
        let name = format!("q{t:?}").to_lowercase();
        server.create_user(&format!("{name}@example.net"), "pw");
        let mut ua = Ua::of(t, &server, &name, "pw");
        // A query needs credentials too.
        let r = ua.plain("");
        assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
        ua.take_nonce(&r);
        // Nothing registered yet: 200 without Contact.
        assert_listing(&ua.register(""), &[]);
        let a = format!("sip:{name}@192.0.2.1");
        let b = format!("sip:{name}@192.0.2.2;transport=tcp");
        ua.register(&format!(
            "Contact: <{a}>;expires=600\r\nContact: <{b}>;q=0.5;expires=900\r\n"
        ));
        let r = ua.register("");
        assert_listing(&r, &[(&a, 597, 600, None), (&b, 897, 900, Some("0.5"))]);
        // The domain is matched without case: the same AOR.
        let mut upper = Ua::new(
            Sip::open(t, &server),
            &format!("sip:{name}@EXAMPLE.NET"),
            &name,
            "pw",
        );
        let r = upper.register("");
        assert_listing(&r, &[(&a, 595, 600, None), (&b, 895, 900, Some("0.5"))]);
    }
}

#[test]
fn invite_redirects_to_bindings_by_q_then_most_recent_cut_to_max_contacts() {
    let server = Enroute::start(
        ZONE,
        &format!("max_contacts = 3\n{}", registrar_config("", "")),
    );
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
    for c in [
        "<sip:a@192.0.2.1>;q=0.5",
        "<sip:b@192.0.2.2>;q=1.0",
        "<sip:c@192.0.2.3>;q=0.5",
        "<sip:d@192.0.2.4>;q=0.2",
    ] {
        let r = ua.register(&format!("Contact: {c}\r\n"));
        assert_eq!(status(&r), 200, "{r}");
        std::thread::sleep(Duration::from_millis(30));
    }
    // The 200 lists all four.
    assert_eq!(listed(&ua.register("")).len(), 4);
    // q descending, then the most recently registered first; three at most.
    assert_redirect(
        &server,
        "sip:alice@example.net",
        &[
            "<sip:b@192.0.2.2>;q=1.0",
            "<sip:c@192.0.2.3>;q=0.5",
            "<sip:a@192.0.2.1>;q=0.5",
        ],
    );
    // Re-registering a refreshes it: now it is the most recent of the q=0.5 ones.
    ua.register("Contact: <sip:a@192.0.2.1>;q=0.5\r\n");
    assert_redirect(
        &server,
        "sip:alice@example.net",
        &[
            "<sip:b@192.0.2.2>;q=1.0",
            "<sip:a@192.0.2.1>;q=0.5",
            "<sip:c@192.0.2.3>;q=0.5",
        ],
    );
}

#[test]
fn a_number_aor_is_one_aor_by_tel_sip_and_dial_plan_forms() {
    let server = start("", DIALPLAN);
    // Without a binding the zone routes the number.
    assert_redirect(
        &server,
        "sip:+441632960001@127.0.0.1",
        &["<sip:alice@pbx.example.net>;q=1.0"],
    );
    let r = put_user(&server, "tel:+441632960001", "pw");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["aor"], "+441632960001@example.net");
    // Registered through tel: (digest username: the number).
    let mut ua = Ua::new(
        Sip::open(T::Udp, &server),
        "tel:+441632960001",
        "+441632960001",
        "pw",
    );
    let r = ua.register("Contact: <sip:desk@192.0.2.50:5060>\r\n");
    assert_listing(&r, &[("sip:desk@192.0.2.50:5060", 3598, 3600, None)]);
    let want = ["<sip:desk@192.0.2.50:5060>;q=1.0"];
    for ruri in [
        "sip:+441632960001@127.0.0.1",
        "sip:+441632960001@example.net",
        "sip:01632960001@pbx.elsewhere.example",
        "tel:+441632960001",
    ] {
        assert_redirect(&server, ruri, &want);
    }
    // The same AOR by a dial-plan form in another served domain: the query lists it.
    let mut ua2 = Ua::new(
        Sip::open(T::Tcp, &server),
        "sip:01632960001@example.org",
        "+441632960001",
        "pw",
    );
    let r = ua2.register("");
    assert_listing(&r, &[("sip:desk@192.0.2.50:5060", 3590, 3600, None)]);
    // The digest username must be the canonical user part, not the dialled form.
    let mut dialled = Ua::new(
        Sip::open(T::Udp, &server),
        "sip:01632960001@example.net",
        "01632960001",
        "pw",
    );
    let r = dialled.register("Contact: <sip:other@192.0.2.51>\r\n");
    assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    // The admin API names it canonically whichever form is asked.
    for q in [
        "?aor=tel:%2B441632960001",
        "?aor=%2B441632960001@example.net",
    ] {
        assert_eq!(
            aors(&registrations(&server, q)),
            ["+441632960001@example.net"],
            "{q}"
        );
    }
    // Removed: the zone's route again.
    let r = ua2.register("Contact: <sip:desk@192.0.2.50:5060>;expires=0\r\n");
    assert_listing(&r, &[]);
    assert_redirect(
        &server,
        "sip:01632960001@127.0.0.1",
        &["<sip:alice@pbx.example.net>;q=1.0"],
    );
}

#[test]
fn an_extension_that_is_no_e164_number_registers_and_is_called() {
    // No dial-plan rule makes 1001 a number: it is a name, 1001@example.net.
    let server = start("", "");
    server.create_user("1001@example.net", "pw");
    let mut ua = Ua::of(T::Udp, &server, "1001", "pw");
    let r = ua.register("Contact: <sip:desk1001@192.0.2.31>\r\n");
    assert_eq!(status(&r), 200, "{r}");
    assert_redirect(
        &server,
        "sip:1001@example.net",
        &["<sip:desk1001@192.0.2.31>;q=1.0"],
    );
    // Without a binding it is what it was: 484 (digits no rule turns into E.164).
    let (code, _) = invite(&server, "sip:1002@example.net");
    assert_eq!(code, 484);
}

#[test]
fn a_domain_not_served_gets_404() {
    let server = start("", "");
    server.create_user("alice@example.net", "pw");
    let before = counted(&server, "not_found");
    for aor in [
        "sip:alice@elsewhere.example",
        "sip:alice@example.net.evil.example",
        "sip:+441632960001@elsewhere.example",
    ] {
        let mut ua = Ua::new(Sip::open(T::Udp, &server), aor, "alice", "pw");
        let r = ua.plain("Contact: <sip:alice@192.0.2.1>\r\n");
        assert_answer(&r, 404, "Not Found");
        assert!(headers(&r, "WWW-Authenticate").is_empty(), "{r}");
    }
    assert_eq!(counted(&server, "not_found") - before, 3.0);
    assert_eq!(registrations(&server, "")["items"], serde_json::json!([]));
}

/// A 401 with what varies by design made constant: the nonce, the To tag, the branch
/// and the user named.
fn shape(resp: &str, user: &str) -> String {
    let r = regex::Regex::new(r#"nonce="[^"]*""#)
        .unwrap()
        .replace_all(resp, "nonce=\"N\"");
    let r = regex::Regex::new(r"tag=[^;\r>]*")
        .unwrap()
        .replace_all(&r, "tag=T");
    let r = regex::Regex::new(r"branch=[^;\r]*")
        .unwrap()
        .replace_all(&r, "branch=B");
    r.replace(user, "USER")
}

#[test]
fn wrong_password_unknown_user_and_foreign_username_get_the_same_401() {
    let server = start("", "");
    server.create_user("alice@example.net", "right");
    server.create_user("bob@example.net", "bobs");
    let mut ua = Ua::of(T::Udp, &server, "alice", "right");
    ua.call_id = "same@ua".into();
    let first = ua.challenge();
    let used = ua.nonce.clone().unwrap();
    let (failed0, challenged0) = (
        counted(&server, "auth_failed"),
        counted(&server, "challenged"),
    );
    let r401 = responses(&server, 401);
    let mut answers = Vec::new();
    // wrong password
    ua.password = "wrong".into();
    answers.push((ua.register("Contact: <sip:x@192.0.2.1>\r\n"), "alice"));
    // unknown user (right shape of everything else)
    ua.aor = "sip:nobody@example.net".into();
    ua.user = "nobody".into();
    answers.push((ua.register("Contact: <sip:x@192.0.2.1>\r\n"), "nobody"));
    // bob's own good credentials for alice's AOR
    ua.aor = "sip:alice@example.net".into();
    ua.user = "bob".into();
    ua.password = "bobs".into();
    answers.push((ua.register("Contact: <sip:x@192.0.2.1>\r\n"), "alice"));
    let want = shape(&first, "alice");
    for (r, user) in &answers {
        let nonce = assert_challenge(r, REALM, &DEFAULT_ALGS, false);
        assert_ne!(nonce, used, "a fresh challenge");
        // CSeq differs by one per request: made equal too.
        let cseq = headers(r, "CSeq")[0].clone();
        let same = shape(r, user).replace(&cseq, &headers(&first, "CSeq")[0]);
        assert_eq!(same, want, "answers must not tell the cases apart");
    }
    assert_eq!(counted(&server, "auth_failed") - failed0, 3.0);
    assert_eq!(counted(&server, "challenged") - challenged0, 0.0);
    assert_eq!(responses(&server, 401) - r401, 3.0);
    assert_eq!(registrations(&server, "")["items"], serde_json::json!([]));
    // The right password still works afterwards.
    let mut ok = Ua::of(T::Udp, &server, "alice", "right");
    assert_eq!(status(&ok.register("Contact: <sip:x@192.0.2.1>\r\n")), 200);
}

#[test]
fn malformed_or_incomplete_authorization_gets_400_and_other_realms_a_challenge() {
    let server = start("", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
    ua.challenge();
    let nonce = ua.nonce.clone().unwrap();
    let good = authorization(Alg::Sha256, ("alice", REALM, "pw"), &nonce, 1);
    let no_qop = good.replace(", qop=auth", "");
    let no_cnonce = good.replace(", cnonce=\"0a4f113b\"", "");
    let c = "Contact: <sip:alice@192.0.2.1>\r\n";
    for auth in [no_qop, no_cnonce] {
        let r = ua.plain(&format!("{auth}{c}"));
        assert_answer(&r, 400, "Digest needs qop=auth with a cnonce");
    }
    let r = ua.plain(&format!(
        "Authorization: Digest username=\"alice, realm=\"{REALM}\r\n{c}"
    ));
    assert_answer(&r, 400, "Malformed Authorization header");
    // Credentials for another realm, or not digest at all: as if none were sent.
    for auth in [
        good.replace("realm=\"example.net\"", "realm=\"other.example\""),
        "Authorization: Basic YWxpY2U6cHc=\r\n".to_string(),
    ] {
        let r = ua.plain(&format!("{auth}{c}"));
        assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    }
    // None of it bound anything; the good one still works.
    let r = ua.plain(&format!("{good}{c}"));
    assert_eq!(status(&r), 200, "{r}");
}

#[test]
fn a_source_failing_too_often_gets_403_until_the_minute_ends() {
    let server = start("max_auth_failures = 3\n", "");
    server.create_user("alice@example.net", "right");
    // All of it within one wall-clock minute (unix seconds / 60).
    let into = unix_now() % 60.0;
    if into > 45.0 {
        std::thread::sleep(Duration::from_secs_f64(60.2 - into));
    }
    let minute = (unix_now() / 60.0) as u64;
    let mut bad = Ua::of(T::Udp, &server, "alice", "wrong");
    for i in 0..3 {
        let r = bad.register("Contact: <sip:x@192.0.2.1>\r\n");
        assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
        bad.take_nonce(&r);
        assert_eq!(counted(&server, "auth_failed"), f64::from(i + 1));
    }
    // The 4th attempt from that source, even with the right password, or without any
    // credentials: 403.
    bad.password = "right".into();
    let r = bad.register("Contact: <sip:x@192.0.2.1>\r\n");
    assert_answer(&r, 403, "Forbidden");
    let r = bad.plain("Contact: <sip:x@192.0.2.1>\r\n");
    assert_answer(&r, 403, "Forbidden");
    let mut tcp = Ua::of(T::Tcp, &server, "alice", "right");
    let r = tcp.plain("");
    assert_answer(&r, 403, "Forbidden");
    assert_eq!(counted(&server, "throttled"), 3.0);
    // Another source is not throttled.
    let mut other = Ua::new(
        Sip::udp_from(&server, "127.0.0.2"),
        "sip:alice@example.net",
        "alice",
        "right",
    );
    let r = other.register("Contact: <sip:x@192.0.2.2>\r\n");
    assert_eq!(status(&r), 200, "from 127.0.0.2:\n{r}");
    assert_eq!(
        (unix_now() / 60.0) as u64,
        minute,
        "the test ran past its minute"
    );
}

#[test]
fn an_expired_nonce_gets_a_stale_challenge() {
    let server = start("nonce_ttl_s = 1\n", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
    ua.challenge();
    let old = ua.nonce.clone().unwrap();
    std::thread::sleep(Duration::from_millis(2200));
    let failed = counted(&server, "auth_failed");
    // Right credentials on an old nonce: 401 with stale=true on every challenge.
    let r = ua.register("Contact: <sip:alice@192.0.2.1>\r\n");
    let nonce = assert_challenge(&r, REALM, &DEFAULT_ALGS, true);
    assert_ne!(nonce, old);
    // Answering the new one at once is accepted.
    ua.take_nonce(&r);
    let r = ua.register("Contact: <sip:alice@192.0.2.1>\r\n");
    assert_eq!(status(&r), 200, "{r}");
    // A wrong password on an old nonce is no stale case.
    std::thread::sleep(Duration::from_millis(2200));
    ua.password = "wrong".into();
    let r = ua.register("Contact: <sip:alice@192.0.2.1>\r\n");
    assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    assert_eq!(counted(&server, "auth_failed") - failed, 1.0);
}

#[test]
fn a_replayed_nonce_count_is_refused() {
    let server = start("", "");
    server.create_user("alice@example.net", "pw");
    let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
    let c = "Contact: <sip:alice@192.0.2.1>\r\n";
    let r = ua.register(c); // nc=1
    assert_eq!(status(&r), 200, "{r}");
    let failed = counted(&server, "auth_failed");
    // nc=1 again (a new request: new branch, higher CSeq): refused.
    ua.nc = 0;
    let r = ua.register(c);
    assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    // nc=2, 3, 5 go; 4 (lower than 5) is refused.
    for nc in [2, 3, 5] {
        ua.nc = nc - 1;
        let r = ua.register(c);
        assert_eq!(status(&r), 200, "nc={nc}:\n{r}");
    }
    ua.nc = 3;
    let r = ua.register(c);
    assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    assert_eq!(counted(&server, "auth_failed") - failed, 2.0);
}

/// Over UDP and TCP: a REGISTER answered `code` (401: no credentials; 200: good ones;
/// 423: good ones, too brief), sent again a second later (a new Date, fewer seconds
/// left, an older nonce), must get the bytes first sent, not a new decision (a new
/// nonce, 401 for the nc already used, 500 for the CSeq already used). Returns what
/// went wrong, per transport.
fn retransmission_mismatches(code: u16) -> Vec<String> {
    let server = start("", "");
    let mut wrong = Vec::new();
    for t in BOTH {
        let name = format!("rt{t:?}").to_lowercase();
        server.create_user(&format!("{name}@example.net"), "pw");
        let mut ua = Ua::of(t, &server, &name, "pw");
        let expires = if code == 423 { 5 } else { 600 };
        let contact = format!("Contact: <sip:{name}@192.0.2.1>;expires={expires}\r\n");
        let auth = if code == 401 {
            String::new()
        } else {
            ua.next_authorization()
        };
        ua.cseq += 1;
        let msg = ua.message(&ua.call_id, ua.cseq, &format!("{auth}{contact}"));
        let first = ua.sip.ask(&msg);
        assert_eq!(status(&first), code, "{first}");
        std::thread::sleep(Duration::from_millis(1100));
        let again = ua.sip.ask(&msg);
        if t == T::Tcp {
            // RFC 3261 §17.2.2: Timer J is 0 over a reliable transport, so the same
            // bytes again are a new request: a fresh challenge, or (its nc used) a
            // refusal.
            let fresh = status(&again) == 401 && again != first;
            if !fresh {
                wrong.push(format!(
                    "{t:?}: REGISTER answered {code}, sent again: {:?} (want a fresh 401)",
                    again.lines().next().unwrap_or("")
                ));
            }
        } else if again != first {
            wrong.push(format!(
                "{t:?}: REGISTER answered {code}, sent again: {:?}, changed lines {:?}",
                again.lines().next().unwrap_or(""),
                changed_lines(&first, &again)
            ));
        }
    }
    wrong
}

/// The lines of `b` that `a` lacks (what changed in an answer sent again).
fn changed_lines(a: &str, b: &str) -> Vec<String> {
    b.split("\r\n")
        .filter(|l| !a.split("\r\n").any(|m| m == *l))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_retransmitted_register_gets_the_same_200_over_udp_and_a_new_answer_over_tcp() {
    let wrong = retransmission_mismatches(200);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_retransmitted_register_gets_the_same_401_over_udp_and_a_new_answer_over_tcp() {
    let wrong = retransmission_mismatches(401);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_retransmitted_register_gets_the_same_423_over_udp_and_a_new_answer_over_tcp() {
    let wrong = retransmission_mismatches(423);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn bindings_survive_sigkill_and_restart() {
    let mut server = start("", "");
    server.create_user("alice@example.net", "pw");
    server.create_user("tel:+441632960001", "npw");
    let mut alice = Ua::of(T::Udp, &server, "alice", "pw");
    let r = alice.register(
        "Contact: <sip:alice@192.0.2.1>;q=0.5\r\nContact: <sip:alice@192.0.2.2>\r\nExpires: 900\r\n",
    );
    assert_eq!(listed(&r).len(), 2, "{r}");
    let mut number = Ua::new(
        Sip::open(T::Tcp, &server),
        "tel:+441632960001",
        "+441632960001",
        "npw",
    );
    assert_eq!(
        status(&number.register("Contact: <sip:desk@192.0.2.9>\r\n")),
        200
    );
    let before = registrations(&server, "?aor=alice@example.net");

    let db = server.dir.path().join("data/enroute-registrar.db");
    assert!(db.is_file(), "{} missing", db.display());
    server.restart();
    let alice_contacts = ["<sip:alice@192.0.2.2>;q=1.0", "<sip:alice@192.0.2.1>;q=0.5"];
    assert_redirect(&server, "sip:alice@example.net", &alice_contacts);
    assert_redirect(
        &server,
        "sip:+441632960001@127.0.0.1",
        &["<sip:desk@192.0.2.9>;q=1.0"],
    );
    let mut all = aors(&registrations(&server, ""));
    all.sort();
    assert_eq!(all, ["+441632960001@example.net", "alice@example.net"]);
    let after = registrations(&server, "?aor=alice@example.net");
    let by_uri = |v: &serde_json::Value| {
        let mut c = v["items"][0]["contacts"].as_array().unwrap().clone();
        c.sort_by_key(|b| b["uri"].as_str().unwrap().to_string());
        c
    };
    let (was, now) = (by_uri(&before), by_uri(&after));
    assert_eq!(now.len(), 2, "{after}");
    for (b, a) in was.iter().zip(&now) {
        assert_eq!(
            (&b["uri"], &b["q"], &b["call_id"], &b["cseq"]),
            (&a["uri"], &a["q"], &a["call_id"], &a["cseq"]),
            "before {before}\nafter {after}"
        );
        assert!(a["expires"].as_u64() <= b["expires"].as_u64(), "{after}");
        assert!(a["expires"].as_u64() >= Some(880), "{after}");
    }
    // The user is kept too: a new client registers (the old nonce may be refused).
    let mut alice = Ua::of(T::Udp, &server, "alice", "pw");
    let r = alice.register("Contact: <sip:alice@192.0.2.1>;expires=0\r\n");
    assert_listing(&r, &[("sip:alice@192.0.2.2", 880, 900, None)]);

    // A removal is as durable.
    server.restart();
    assert_redirect(
        &server,
        "sip:alice@example.net",
        &["<sip:alice@192.0.2.2>;q=1.0"],
    );
}

#[test]
fn expired_bindings_are_not_used_and_are_swept() {
    let server = start("min_expires_s = 1\n", "");
    server.create_user("alice@example.net", "pw");
    server.create_user("bob@example.net", "pw");
    let mut bob = Ua::of(T::Udp, &server, "bob", "pw");
    assert_eq!(
        status(&bob.register("Contact: <sip:bob@192.0.2.8>;expires=600\r\n")),
        200
    );
    let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
    let r = ua.register("Contact: <sip:alice@192.0.2.1>;expires=2\r\n");
    let registered = Instant::now();
    assert_listing(&r, &[("sip:alice@192.0.2.1", 1, 2, None)]);
    assert_redirect(
        &server,
        "sip:alice@example.net",
        &["<sip:alice@192.0.2.1>;q=1.0"],
    );
    std::thread::sleep(Duration::from_secs(3).saturating_sub(registered.elapsed()));
    let (code, contacts) = invite(&server, "sip:alice@example.net");
    assert_eq!((code, contacts), (404, vec![]), "INVITE after expiry");
    assert_listing(&ua.register(""), &[]);
    // Swept: gone from the list and the gauges.
    let swept = common::eventually(Duration::from_secs(8), || {
        aors(&registrations(&server, "")) == ["bob@example.net"]
            && server.metric("enroute_registrar_bindings") == 1.0
            && server.metric("enroute_registrar_aors") == 1.0
    });
    assert!(
        swept,
        "not swept within 8 s: {} bindings={} aors={}",
        registrations(&server, ""),
        server.metric("enroute_registrar_bindings"),
        server.metric("enroute_registrar_aors")
    );
}

#[test]
fn with_the_registrar_disabled_register_gets_405_and_its_routes_404() {
    for extra in [
        "",
        "[registrar]\nenabled = false\ndomains = [\"example.net\"]\n",
    ] {
        let server = Enroute::start(ZONE, extra);
        let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
        let r = ua.plain("Contact: <sip:alice@192.0.2.1>\r\n");
        assert_answer(&r, 405, "Method Not Allowed");
        let allow = headers(&r, "Allow");
        assert_eq!(allow.len(), 1, "{r}");
        assert!(allow[0].contains("INVITE"), "{r}");
        assert!(!allow[0].contains("REGISTER"), "{r}");
        let mut tcp = Ua::of(T::Tcp, &server, "alice", "pw");
        assert_eq!(status(&tcp.plain("")), 405);
        for (method, path, body) in [
            ("GET", "/v1/users", ""),
            ("GET", "/v1/users/alice@example.net", ""),
            ("PUT", "/v1/users/alice@example.net", r#"{"password":"pw"}"#),
            ("DELETE", "/v1/users/alice@example.net", ""),
            ("GET", "/v1/registrations", ""),
            ("GET", "/v1/registrations?aor=alice@example.net", ""),
            ("DELETE", "/v1/registrations/alice@example.net", ""),
        ] {
            let ct = if body.is_empty() {
                ""
            } else {
                "application/json"
            };
            let r = server.api(method, path, ct, body.as_bytes());
            assert_eq!(r.status, 404, "{method} {path} ({extra:?}): {}", r.text());
        }
    }
}

#[test]
fn admin_users_are_created_replaced_read_without_secrets_and_deleted() {
    let server = start("", "");
    // Needs the token like the rest of /v1.
    let r = http(server.admin, "GET", "/v1/users", &[], b"");
    assert_eq!(r.status, 401);
    let r = put_user(&server, "alice@example.net", "first-pw");
    assert_eq!(r.status, 201, "{}", r.text());
    let view = serde_json::json!({
        "aor": "alice@example.net", "realm": "example.net", "algorithms": ["SHA-256", "MD5"]
    });
    assert_eq!(r.json(), view);
    let r = put_user(&server, "sip:alice@example.net", "second-pw");
    assert_eq!((r.status, r.json()), (200, view.clone()), "replaced");
    for path in ["alice@example.net", "sip:alice@example.net"] {
        let r = server.api("GET", &format!("/v1/users/{path}"), "", b"");
        assert_eq!((r.status, r.json()), (200, view.clone()), "GET {path}");
        for secret in [
            "first-pw".to_string(),
            "second-pw".to_string(),
            Alg::Sha256.ha1("alice", REALM, "second-pw"),
            Alg::Md5.ha1("alice", REALM, "second-pw"),
        ] {
            assert!(!r.text().contains(&secret), "{}", r.text());
        }
    }
    // The replacement counts: the old password no longer registers, the new one does.
    let mut old = Ua::of(T::Udp, &server, "alice", "first-pw");
    assert_eq!(status(&old.register("Contact: <sip:a@192.0.2.1>\r\n")), 401);
    let mut ua = Ua::of(T::Udp, &server, "alice", "second-pw");
    assert_eq!(status(&ua.register("Contact: <sip:a@192.0.2.1>\r\n")), 200);
    // Canonical AORs: domain lower-case, numbers under the first domain.
    let r = put_user(&server, "sip:Bob@EXAMPLE.ORG", "pw");
    assert_eq!(r.json()["aor"], "Bob@example.org", "{}", r.text());
    let r = put_user(&server, "tel:+441632960123", "pw");
    assert_eq!(r.json()["aor"], "+441632960123@example.net", "{}", r.text());
    let r = server.api("GET", "/v1/users/+441632960123@example.net", "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // HA1s given instead of a password, computed here; each algorithm works.
    let ha1 = serde_json::json!({ "ha1": {
        "SHA-256": Alg::Sha256.ha1("carol", REALM, "cpw"),
        "MD5": Alg::Md5.ha1("carol", REALM, "cpw"),
    }});
    let r = server.api(
        "PUT",
        "/v1/users/carol@example.net",
        "application/json",
        ha1.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["algorithms"],
        serde_json::json!(["SHA-256", "MD5"])
    );
    for alg in DEFAULT_ALGS {
        let mut c = Ua::of(T::Tcp, &server, "carol", "cpw").with_alg(alg);
        let r = c.register("Contact: <sip:carol@192.0.2.3>\r\n");
        assert_eq!(status(&r), 200, "carol with {alg:?}:\n{r}");
    }
    // Only an MD5 HA1: only MD5 credentials can match.
    let md5_only = serde_json::json!({ "ha1": { "MD5": Alg::Md5.ha1("dave", REALM, "dpw") } });
    let r = server.api(
        "PUT",
        "/v1/users/dave@example.net",
        "application/json",
        md5_only.to_string().as_bytes(),
    );
    assert_eq!(
        r.json()["algorithms"],
        serde_json::json!(["MD5"]),
        "{}",
        r.text()
    );
    let mut d = Ua::of(T::Udp, &server, "dave", "dpw").with_alg(Alg::Sha256);
    assert_eq!(status(&d.register("Contact: <sip:d@192.0.2.4>\r\n")), 401);
    let mut d = Ua::of(T::Udp, &server, "dave", "dpw").with_alg(Alg::Md5);
    assert_eq!(status(&d.register("Contact: <sip:d@192.0.2.4>\r\n")), 200);
    // Bad fields: 422 naming them.
    let bad = |path: &str, body: serde_json::Value| {
        server.api(
            "PUT",
            &format!("/v1/users/{path}"),
            "application/json",
            body.to_string().as_bytes(),
        )
    };
    let pw = serde_json::json!({"password": "x"});
    assert_eq!(
        field_422(&bad("alice@elsewhere.example", pw.clone())),
        "aor"
    );
    assert_eq!(field_422(&bad("sip:alice@elsewhere.example", pw)), "aor");
    assert_eq!(
        field_422(&bad("eve@example.net", serde_json::json!({"password": ""}))),
        "password"
    );
    assert_eq!(
        field_422(&bad(
            "eve@example.net",
            serde_json::json!({"ha1": {"SHA-256": "abc"}})
        )),
        "ha1.SHA-256"
    );
    assert_eq!(
        field_422(&bad(
            "eve@example.net",
            serde_json::json!({"ha1": {"MD5": "z".repeat(32)}})
        )),
        "ha1.MD5"
    );
    assert_eq!(
        server
            .api("GET", "/v1/users/eve@example.net", "", b"")
            .status,
        404
    );
    // Paged listing by AOR.
    let all = [
        "+441632960123@example.net",
        "Bob@example.org",
        "alice@example.net",
        "carol@example.net",
        "dave@example.net",
    ];
    let mut seen = Vec::new();
    let mut path = "/v1/users?limit=2".to_string();
    loop {
        let r = server.api("GET", &path, "", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{v}");
        for i in items {
            let mut keys: Vec<&String> = i.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["algorithms", "aor", "realm"], "{v}");
            seen.push(i["aor"].as_str().unwrap().to_string());
        }
        match v["next"].as_str() {
            Some(next) => path = format!("/v1/users?limit=2&after={next}"),
            None => break,
        }
    }
    seen.sort();
    let mut want: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(server.metric("enroute_registrar_users"), 5.0);
    // DELETE: 204, the bindings go with the user, its credentials no longer register.
    assert_redirect(
        &server,
        "sip:alice@example.net",
        &["<sip:a@192.0.2.1>;q=1.0"],
    );
    let r = server.api("DELETE", "/v1/users/sip:alice@example.net", "", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let (code, _) = invite(&server, "sip:alice@example.net");
    assert_eq!(code, 404, "INVITE after the user was deleted");
    assert_eq!(
        registrations(&server, "?aor=alice@example.net")["items"],
        serde_json::json!([])
    );
    let mut ua = Ua::of(T::Udp, &server, "alice", "second-pw");
    let r = ua.register("Contact: <sip:a@192.0.2.1>\r\n");
    assert_challenge(&r, REALM, &DEFAULT_ALGS, false);
    assert_eq!(
        server
            .api("GET", "/v1/users/alice@example.net", "", b"")
            .status,
        404
    );
    assert_eq!(
        server
            .api("DELETE", "/v1/users/alice@example.net", "", b"")
            .status,
        404
    );
    assert_eq!(server.metric("enroute_registrar_users"), 4.0);
}

#[test]
fn admin_registrations_list_filter_and_delete() {
    let mut server = start("", "");
    server.create_user("alice@example.net", "pw");
    server.create_user("bob@example.net", "pw");
    server.create_user("tel:+441632960123", "pw");
    let mut alice = Ua::of(T::Udp, &server, "alice", "pw");
    alice.call_id = "alice-call".into();
    let r = alice.register(
        "Contact: <sip:alice@192.0.2.1>;expires=600, <sip:alice@192.0.2.2>;q=0.5;expires=900\r\n",
    );
    assert_eq!(status(&r), 200, "{r}");
    let alice_cseq = alice.cseq;
    let mut bob = Ua::of(T::Tcp, &server, "bob", "pw");
    assert_eq!(
        status(&bob.register("Contact: <sip:bob@192.0.2.3>\r\n")),
        200
    );
    let mut num = Ua::new(
        Sip::open(T::Udp, &server),
        "sip:+441632960123@example.net",
        "+441632960123",
        "pw",
    );
    assert_eq!(status(&num.register("Contact: <sip:n@192.0.2.4>\r\n")), 200);

    let v = registrations(&server, "");
    let mut names = aors(&v);
    names.sort();
    assert_eq!(
        names,
        [
            "+441632960123@example.net",
            "alice@example.net",
            "bob@example.net"
        ]
    );
    assert_eq!(v["next"], serde_json::Value::Null, "{v}");
    // One AOR, by any of its forms.
    for q in [
        "alice@example.net",
        "sip:alice@example.net",
        "sip:alice@EXAMPLE.NET",
    ] {
        let v = registrations(&server, &format!("?aor={q}"));
        assert_eq!(aors(&v), ["alice@example.net"], "{q}: {v}");
        assert_eq!(v["next"], serde_json::Value::Null, "{v}");
        let mut contacts = v["items"][0]["contacts"].as_array().unwrap().clone();
        contacts.sort_by_key(|c| c["uri"].as_str().unwrap().to_string());
        assert_eq!(contacts.len(), 2, "{v}");
        let (a, b) = (&contacts[0], &contacts[1]);
        assert_eq!(
            (
                a["uri"].as_str(),
                a["q"].as_f64(),
                a["call_id"].as_str(),
                a["cseq"].as_u64()
            ),
            (
                Some("sip:alice@192.0.2.1"),
                Some(1.0),
                Some("alice-call"),
                Some(u64::from(alice_cseq))
            ),
            "{v}"
        );
        assert!((590..=600).contains(&a["expires"].as_u64().unwrap()), "{v}");
        assert_eq!(
            (b["uri"].as_str(), b["q"].as_f64()),
            (Some("sip:alice@192.0.2.2"), Some(0.5)),
            "{v}"
        );
        assert!((890..=900).contains(&b["expires"].as_u64().unwrap()), "{v}");
    }
    assert_eq!(
        aors(&registrations(&server, "?aor=tel:%2B441632960123")),
        ["+441632960123@example.net"]
    );
    assert_eq!(
        registrations(&server, "?aor=carol@example.net")["items"],
        serde_json::json!([])
    );
    // Paged.
    let first = registrations(&server, "?limit=2");
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let next = first["next"].as_str().unwrap_or_else(|| panic!("{first}"));
    let rest = registrations(&server, &format!("?limit=2&after={next}"));
    let mut paged = aors(&first);
    paged.extend(aors(&rest));
    paged.sort();
    assert_eq!(paged, names, "{first} {rest}");
    // DELETE: 204, then INVITE is no longer redirected to them; again: 404.
    assert_redirect(
        &server,
        "sip:alice@example.net",
        &["<sip:alice@192.0.2.1>;q=1.0", "<sip:alice@192.0.2.2>;q=0.5"],
    );
    let r = server.api("DELETE", "/v1/registrations/alice@example.net", "", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let (code, _) = invite(&server, "sip:alice@example.net");
    assert_eq!(code, 404);
    assert_eq!(
        server
            .api("DELETE", "/v1/registrations/sip:alice@example.net", "", b"")
            .status,
        404
    );
    let r = server.api("DELETE", "/v1/registrations/tel:+441632960123", "", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(aors(&registrations(&server, "")), ["bob@example.net"]);
    assert_redirect(
        &server,
        "sip:bob@example.net",
        &["<sip:bob@192.0.2.3>;q=1.0"],
    );
    // The user is kept: alice registers again.
    let r = alice.register("");
    assert_listing(&r, &[]);
    // What the API removed stays removed after a SIGKILL and restart.
    server.restart();
    assert_eq!(aors(&registrations(&server, "")), ["bob@example.net"]);
    let (code, _) = invite(&server, "sip:alice@example.net");
    assert_eq!(code, 404, "INVITE alice after restart");
}

#[test]
fn route_api_and_cli_show_the_registrar_as_source() {
    let server = start("", DIALPLAN);
    server.create_user("alice@example.net", "pw");
    server.create_user("tel:+441632960001", "pw");
    let mut alice = Ua::of(T::Udp, &server, "alice", "pw");
    alice.register("Contact: <sip:alice@192.0.2.1>;q=0.5, <sip:alice@192.0.2.2>\r\n");
    let mut num = Ua::new(
        Sip::open(T::Udp, &server),
        "tel:+441632960001",
        "+441632960001",
        "pw",
    );
    assert_eq!(
        status(&num.register("Contact: <sip:desk@192.0.2.9>\r\n")),
        200
    );

    for (path, aor, want) in [
        (
            "sip:alice@example.net",
            "alice@example.net",
            vec![
                ("sip:alice@192.0.2.2".to_string(), 1.0),
                ("sip:alice@192.0.2.1".to_string(), 0.5),
            ],
        ),
        (
            "+441632960001",
            "+441632960001@example.net",
            vec![("sip:desk@192.0.2.9".to_string(), 1.0)],
        ),
        (
            "01632960001",
            "+441632960001@example.net",
            vec![("sip:desk@192.0.2.9".to_string(), 1.0)],
        ),
    ] {
        let r = server.api("GET", &format!("/v1/route/{path}"), "", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let d = r.json();
        assert_eq!(d["source"], "registrar", "{path}: {d}");
        assert_eq!(d["status"], 302, "{d}");
        assert_eq!(common::json_contacts(&d), want, "{d}");
        let steps = d["trace"].as_array().unwrap();
        let step = steps
            .iter()
            .find(|s| s["step"] == "registrar")
            .unwrap_or_else(|| panic!("no registrar step: {d}"));
        assert_eq!(
            step,
            &serde_json::json!({"step": "registrar", "aor": aor, "contacts": want.len()}),
            "{d}"
        );
    }
    // A number without a binding gets the usual chain: no zone route, no gateway here.
    let d = server.api("GET", "/v1/route/+441632960002", "", b"").json();
    assert_eq!(
        (&d["status"], &d["source"]),
        (&serde_json::json!(404), &serde_json::json!("none")),
        "{d}"
    );

    // The CLI reads the committed bindings.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_enroute"))
        .args(["route", "+441632960001", "--config", "e.toml"])
        .current_dir(server.dir.path())
        .env_remove("ENROUTE_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = common::stdout(&out);
    assert_eq!(common::code(&out), 0, "{text}{}", common::stderr(&out));
    assert!(
        text.lines().any(|l| l == "source: registrar"),
        "{text}{}",
        common::stderr(&out)
    );
    assert!(text.contains("sip:desk@192.0.2.9"), "{text}");
}

#[test]
fn registrar_metrics_count_results_and_hold_gauges() {
    let server = start("", "");
    for g in [
        "enroute_registrar_users",
        "enroute_registrar_bindings",
        "enroute_registrar_aors",
    ] {
        assert_eq!(server.metric(g), 0.0, "{g}");
    }
    assert_eq!(counted(&server, "ok"), 0.0);
    assert_eq!(counted(&server, "challenged"), 0.0);
    server.create_user("alice@example.net", "pw");
    server.create_user("bob@example.net", "pw");
    assert_eq!(server.metric("enroute_registrar_users"), 2.0);

    let mut ua = Ua::of(T::Udp, &server, "alice", "pw");
    ua.challenge();
    assert_eq!(counted(&server, "challenged"), 1.0);
    assert_eq!(responses(&server, 401), 1.0);
    ua.register("Contact: <sip:a@192.0.2.1>, <sip:a@192.0.2.2>\r\n");
    let mut bob = Ua::of(T::Udp, &server, "bob", "pw");
    bob.register("Contact: <sip:b@192.0.2.3>\r\n");
    assert_eq!(counted(&server, "ok"), 2.0);
    assert_eq!(counted(&server, "challenged"), 2.0);
    assert_eq!(responses(&server, 200), 2.0);
    assert_eq!(server.metric("enroute_registrar_bindings"), 3.0);
    assert_eq!(server.metric("enroute_registrar_aors"), 2.0);

    bob.password = "wrong".into();
    bob.register("Contact: <sip:b@192.0.2.3>\r\n");
    assert_eq!(counted(&server, "auth_failed"), 1.0);
    ua.register("Contact: <sip:a@192.0.2.1>;expires=10\r\n");
    assert_eq!(counted(&server, "too_brief"), 1.0);
    ua.register("Contact: <sip:a@192.0.2.1>;q=7\r\n");
    assert_eq!(counted(&server, "bad_request"), 1.0);
    assert_eq!(responses(&server, 400), 1.0);
    let mut stranger = Ua::new(
        Sip::open(T::Tcp, &server),
        "sip:x@elsewhere.example",
        "x",
        "pw",
    );
    stranger.plain("");
    assert_eq!(counted(&server, "not_found"), 1.0);
    assert_eq!(counted(&server, "throttled"), 0.0);
    assert_eq!(responses(&server, 401), 3.0);

    ua.register("Contact: *\r\nExpires: 0\r\n");
    assert_eq!(counted(&server, "ok"), 3.0);
    assert_eq!(server.metric("enroute_registrar_bindings"), 1.0);
    assert_eq!(server.metric("enroute_registrar_aors"), 1.0);
}
