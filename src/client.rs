//! A blocking client for the admin HTTP API, behind `enroute numbers`, `enroute
//! prefixes`, `enroute import` and `enroute route --url`.
//!
//! Owns: where the API is and which token to send (a flag, else `ENROUTE_ADMIN_URL` /
//! `ENROUTE_ADMIN_TOKEN`, else the configuration's `admin.listen` / `admin.token_file`,
//! which is only read, never written), the requests (timeouts, a bounded answer, no
//! redirects followed; an import's body streamed from a reader, never held whole), the
//! request bodies it builds ([`routes_body`]), and RFC 9457
//! problems turned into [`ClientError`]s with the class of failure each is (refused,
//! unreachable, bad usage) and its exit code.
//!
//! Must not touch: the store, the zones or routing (it only speaks HTTP to a running
//! server), nor anything of `sip`, `dns` or `admin`: it knows the API by its JSON
//! alone, so the client and the server can be different builds. It reads `config` for
//! two keys only. How answers read on the terminal is the binary's (`src/cli/output.rs`),
//! not this file's: it returns what the server sent.

use crate::config::Config;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

/// The largest answer read (a page of 1000 numbers with many routes each fits).
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take in all (a routing decision waits on upstream DNS).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// An import has no overall limit (10^8 numbers take a while to send): it fails only
/// when one write waits this long for the server to take more of the body.
pub const IMPORT_STALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the server may take to answer an import once the whole body is sent: it
/// commits only then, and a commit of a national portability file is not quick.
pub const IMPORT_COMMIT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Why a command against the API failed; each class has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad arguments or configuration: nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// The server answered 4xx: it refused, or the thing does not exist.
    #[error("{0}")]
    Refused(Problem),
    /// The server is not reachable, timed out, answered 5xx or something that is not
    /// the API.
    #[error("{0}")]
    Unreachable(String),
}

impl ClientError {
    /// 2 bad usage, 1 refused, 3 unreachable (as `enroute numbers --help` lists them).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            ClientError::Refused(_) => 1,
            ClientError::Unreachable(_) => 3,
        }
    }
}

/// An RFC 9457 problem as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: String,
    /// Each failing field (`routes[0].uri`), with the line for imports.
    pub errors: Vec<FieldProblem>,
    /// How many errors there were in all, when the server listed only the first ones
    /// (`total_errors`, imports).
    pub total_errors: Option<u64>,
}

/// One entry of a problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub line: Option<u64>,
    pub field: String,
    pub detail: String,
}

impl Problem {
    /// Reads a problem body; an answer that is not one (a proxy's HTML page) keeps its
    /// first line as the detail.
    pub fn from_answer(status: u16, body: &[u8]) -> Problem {
        let reason = ureq::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let detail = text("detail").unwrap_or_else(|| first_line(body));
        let errors = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| errs.iter().map(FieldProblem::from_json).collect())
            .unwrap_or_default();
        Problem {
            status,
            title: text("title").unwrap_or_else(|| reason.to_string()),
            detail,
            errors,
            total_errors: v.get("total_errors").and_then(Value::as_u64),
        }
    }
}

impl FieldProblem {
    fn from_json(v: &Value) -> FieldProblem {
        let text = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        FieldProblem {
            line: v.get("line").and_then(Value::as_u64),
            field: text("field"),
            detail: text("detail"),
        }
    }
}

/// `422 Unprocessable Entity: routes[0].uri: …`, one line per failing field.
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = format!("{} {}", self.status, self.title);
        if self.errors.is_empty() {
            return write!(f, "{head}: {}", self.detail);
        }
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{head}: ")?;
            if let Some(line) = e.line {
                write!(f, "line {line}: ")?;
            }
            if !e.field.is_empty() {
                write!(f, "{}: ", e.field)?;
            }
            write!(f, "{}", e.detail)?;
        }
        Ok(())
    }
}

fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim().chars().take(200).collect()
}

/// Where the API is, the token to send, and where each came from (for messages).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://host:port` or `https://…`, with any path prefix, no trailing slash.
    pub base: String,
    pub token: String,
    /// `--url`, `ENROUTE_ADMIN_URL` or `admin.listen in FILE`.
    pub url_from: String,
    /// `--token`, `ENROUTE_ADMIN_TOKEN` or the token file's path.
    pub token_from: String,
}

/// The environment variable naming the API's URL.
pub const URL_ENV: &str = "ENROUTE_ADMIN_URL";
/// The environment variable holding the bearer token (the server reads it too).
pub const TOKEN_ENV: &str = "ENROUTE_ADMIN_TOKEN";

impl Endpoint {
    /// Each of the URL and the token from its flag, else its environment variable,
    /// else the configuration, which `config` loads only when it is needed.
    pub fn resolve(
        url: Option<&str>,
        token: Option<&str>,
        config: impl FnOnce() -> Result<Config, String>,
    ) -> Result<Endpoint, ClientError> {
        let url = given(url, "--url").or_else(|| from_env(URL_ENV));
        let token = given(token, "--token").or_else(|| from_env(TOKEN_ENV));
        let ((url, url_from), (token, token_from)) = match (url, token) {
            (Some(u), Some(t)) => (u, t),
            (url, token) => {
                let c = config().map_err(ClientError::Usage)?;
                let url =
                    url.unwrap_or_else(|| (listen_url(c.admin.listen), admin_listen_source(&c)));
                let token = match token {
                    Some(t) => t,
                    None => token_from_file(&c.admin.token_file, "admin.token_file")?,
                };
                (url, token)
            }
        };
        Ok(Endpoint {
            base: check_url(&url, &url_from)?,
            token,
            url_from,
            token_from,
        })
    }

    /// As [`Endpoint::resolve`], with the token read from `token_file` (a
    /// `--token-file` flag), which wins over `ENROUTE_ADMIN_TOKEN` and the
    /// configuration.
    pub fn resolve_with_token_file(
        url: Option<&str>,
        token_file: &std::path::Path,
        config: impl FnOnce() -> Result<Config, String>,
    ) -> Result<Endpoint, ClientError> {
        let (token, from) = token_from_file(token_file, "--token-file")?;
        let mut endpoint = Endpoint::resolve(url, Some(&token), config)?;
        endpoint.token_from = from;
        Ok(endpoint)
    }
}

fn given(value: Option<&str>, from: &str) -> Option<(String, String)> {
    value.map(|v| (v.trim().to_string(), from.to_string()))
}

/// An environment variable, when set and not blank (as the server reads the token).
fn from_env(name: &str) -> Option<(String, String)> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(|v| (v, name.to_string()))
}

fn admin_listen_source(c: &Config) -> String {
    match &c.file {
        Some(f) => format!("admin.listen in {}", f.display()),
        None => "admin.listen (built-in default)".into(),
    }
}

/// `http://` and the address `admin.listen` binds, with a wildcard address replaced by
/// loopback (the server is then reachable there too).
fn listen_url(addr: std::net::SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// The token file's content, trimmed; the file is only read (the server writes it).
/// `key` names where the path came from in messages (`admin.token_file`,
/// `--token-file`).
fn token_from_file(path: &std::path::Path, key: &str) -> Result<(String, String), ClientError> {
    let shown = path.display().to_string();
    let hint = format!("give --token or set {TOKEN_ENV}");
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok((t.trim().to_string(), shown)),
        Ok(_) => Err(ClientError::Usage(format!(
            "no admin token: {key} {shown} is empty; {hint}"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClientError::Usage(format!(
            "no admin token: {key} {shown} does not exist (the server writes it on \
             its first start); {hint}, or give --config for the server's configuration"
        ))),
        Err(e) => Err(ClientError::Usage(format!(
            "no admin token: {key} {shown}: {e}; {hint}"
        ))),
    }
}

/// An `http://` or `https://` URL with a host, without a trailing slash; a bare
/// `HOST:PORT` is taken as `http://HOST:PORT`.
fn check_url(url: &str, from: &str) -> Result<String, ClientError> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let bad = |why: &str| ClientError::Usage(format!("{from}: {url:?} {why}"));
    let uri: ureq::http::Uri = full
        .parse()
        .map_err(|_| bad("is not a URL like http://127.0.0.1:8080"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    Ok(full.trim_end_matches('/').to_string())
}

/// One answer of the API: its status and body as sent.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; a success that is not JSON is not the API answering.
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::Unreachable(format!(
                "the answer ({} {}) is not the admin API's JSON ({e}): is the URL right?",
                self.status,
                first_line(&self.body)
            ))
        })
    }
}

/// The API's collections that hold routes: numbers and prefixes share one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Numbers,
    Prefixes,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Numbers => "/v1/numbers",
            Kind::Prefixes => "/v1/prefixes",
        }
    }

    /// The key naming an entry in answers: `number` or `prefix`.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Numbers => "number",
            Kind::Prefixes => "prefix",
        }
    }
}

/// The query of a list call.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: Option<String>,
    pub limit: Option<u16>,
    pub after: Option<String>,
}

/// The two bulk formats `POST /v1/numbers:import` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// A header line naming the columns, then one route a row.
    Csv,
    /// One number body with its `number` a line.
    Ndjson,
}

impl ImportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ImportFormat::Csv => "text/csv",
            ImportFormat::Ndjson => "application/x-ndjson",
        }
    }
}

/// What an import does to the numbers already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// The upload's numbers are set (or deleted); the others stay.
    #[default]
    Merge,
    /// The zone's numbers become exactly those of the upload.
    Replace,
}

impl ImportMode {
    /// The value of the `mode` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Merge => "merge",
            ImportMode::Replace => "replace",
        }
    }
}

/// How one import is sent.
#[derive(Debug, Clone)]
pub struct ImportQuery {
    pub format: ImportFormat,
    pub mode: ImportMode,
    /// The zone (an origin) the import is for: the server refuses numbers outside it;
    /// when absent, it finds each number's zone.
    pub zone: Option<String>,
    /// The body's length when known in advance (a regular file): sent as
    /// `Content-Length` (with `Expect: 100-continue`, a refusal that needs no body
    /// comes before the upload); otherwise the body goes chunked.
    pub length: Option<u64>,
}

impl ImportQuery {
    /// `/v1/numbers:import?mode=…[&zone=…]`.
    fn path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("mode", self.mode.as_str());
        if let Some(zone) = &self.zone {
            query.append_pair("zone", zone);
        }
        format!("/v1/numbers:import?{}", query.finish())
    }
}

/// A blocking HTTP client bound to one [`Endpoint`].
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        let agent = ureq::Agent::config_builder()
            // 4xx and 5xx are answers to read (problems), not transport errors.
            .http_status_as_error(false)
            // A redirect would drop the token; say where it points instead.
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            .user_agent(format!("enroute/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent, endpoint }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GET /v1/numbers/{e164}` (or prefixes).
    pub fn get(&self, kind: Kind, e164: &str) -> Result<Answer, ClientError> {
        self.call("GET", &entry_path(kind, e164), None)
    }

    /// `PUT /v1/numbers/{e164}` with a JSON body (or prefixes).
    pub fn put(&self, kind: Kind, e164: &str, body: &[u8]) -> Result<Answer, ClientError> {
        self.call("PUT", &entry_path(kind, e164), Some(body))
    }

    /// `DELETE /v1/numbers/{e164}` (or prefixes).
    pub fn delete(&self, kind: Kind, e164: &str) -> Result<Answer, ClientError> {
        self.call("DELETE", &entry_path(kind, e164), None)
    }

    /// One page: `GET /v1/numbers?prefix=&limit=&after=` (or prefixes).
    pub fn list(&self, kind: Kind, q: &ListQuery) -> Result<Answer, ClientError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("prefix", &q.prefix), ("after", &q.after)] {
            if let Some(v) = value {
                query.append_pair(key, v);
            }
        }
        if let Some(limit) = q.limit {
            query.append_pair("limit", &limit.to_string());
        }
        let query = query.finish();
        let path = if query.is_empty() {
            kind.path().to_string()
        } else {
            format!("{}?{query}", kind.path())
        };
        self.call("GET", &path, None)
    }

    /// Every page from `q.after` on, following `next` until it is null; the answer is
    /// one page's shape, `{"items": [...], "next": null}`.
    pub fn list_all(&self, kind: Kind, q: &ListQuery) -> Result<Value, ClientError> {
        let mut q = q.clone();
        let mut items = Vec::new();
        loop {
            let mut page = self.list(kind, &q)?.json()?;
            if let Some(Value::Array(more)) = page.get_mut("items").map(Value::take) {
                items.extend(more);
            }
            match page.get("next").and_then(Value::as_str) {
                // A server that hands back the cursor it was given would loop forever.
                Some(next) if q.after.as_deref() == Some(next) => {
                    return Err(ClientError::Unreachable(format!(
                        "the server gave the same cursor {next} twice; stopped listing"
                    )));
                }
                Some(next) => q.after = Some(next.to_string()),
                None => break,
            }
        }
        Ok(serde_json::json!({"items": items, "next": null}))
    }

    /// `GET /v1/route/{input}`: the server's routing decision.
    pub fn route(&self, input: &str) -> Result<Answer, ClientError> {
        self.call("GET", &format!("/v1/route/{}", encode_segment(input)), None)
    }

    /// `POST /v1/numbers:import`, the body streamed from `body` as the server takes
    /// it (the reader is read to its end, a buffer at a time, never whole). There is
    /// no overall timeout: only opening the connection, a stalled write
    /// ([`IMPORT_STALL_TIMEOUT`]) and the wait for the commit ([`IMPORT_COMMIT_TIMEOUT`])
    /// are bounded. An error of `body` ends the upload, and the server, seeing the body
    /// cut short, imports nothing.
    pub fn import(
        &self,
        q: &ImportQuery,
        body: &mut dyn std::io::Read,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.endpoint.base, q.path());
        let mut request = self
            .agent
            .post(&url)
            .config()
            .timeout_global(None)
            .timeout_per_write(Some(IMPORT_STALL_TIMEOUT))
            .timeout_recv_response(Some(IMPORT_COMMIT_TIMEOUT))
            .timeout_recv_body(Some(CALL_TIMEOUT))
            .build()
            .header("Authorization", format!("Bearer {}", self.endpoint.token))
            .header("Content-Type", q.format.content_type())
            // A refusal that needs no body (401, 415, an unknown zone) then comes back
            // before the upload instead of as a connection reset in its middle.
            .header("Expect", "100-continue");
        if let Some(length) = q.length {
            request = request.header("Content-Length", length.to_string());
        }
        let sent = request.send(ureq::SendBody::from_reader(body));
        self.answer(sent)
    }

    /// Sends one request; 2xx comes back, 4xx is [`ClientError::Refused`], anything
    /// else [`ClientError::Unreachable`].
    fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.endpoint.base);
        let auth = format!("Bearer {}", self.endpoint.token);
        let sent = match (method, body) {
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        self.answer(sent)
    }

    /// Reads the answer to a request sent (bounded), and sorts it as [`classify`] does.
    fn answer(
        &self,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ClientError> {
        let mut resp = sent.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        classify(Answer { status, body }, location, &self.endpoint.base)
    }

    fn transport_error(&self, e: ureq::Error) -> ClientError {
        let why = match e {
            ureq::Error::BadUri(u) => {
                return ClientError::Usage(format!(
                    "{}: {u} is not a usable URL",
                    self.endpoint.url_from
                ));
            }
            ureq::Error::Io(io) => io.to_string(),
            ureq::Error::Timeout(t) => format!("timed out ({t})"),
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::BodyExceedsLimit(n) => format!("the answer is larger than {n} bytes"),
            other => other.to_string(),
        };
        ClientError::Unreachable(format!(
            "cannot reach the admin API at {} ({}): {why}",
            self.endpoint.base, self.endpoint.url_from
        ))
    }
}

/// Sorts an answer into success, refusal (4xx) or a server that is not answering as
/// the API does (3xx, 5xx, anything else).
fn classify(answer: Answer, location: Option<String>, base: &str) -> Result<Answer, ClientError> {
    match answer.status {
        200..=299 => Ok(answer),
        400..=499 => Err(ClientError::Refused(Problem::from_answer(
            answer.status,
            &answer.body,
        ))),
        300..=399 => Err(ClientError::Unreachable(format!(
            "the server at {base} redirects ({}) to {}: give that URL with --url",
            answer.status,
            location.as_deref().unwrap_or("(no Location)")
        ))),
        status => Err(ClientError::Unreachable(format!(
            "the admin API at {base} failed: {}",
            Problem::from_answer(status, &answer.body)
        ))),
    }
}

fn entry_path(kind: Kind, e164: &str) -> String {
    format!("{}/{}", kind.path(), encode_segment(e164))
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters,
/// so `+`, `@`, `;`, `/`, `?`, `%` and spaces reach the server as typed.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A number body with one route per URI: order 100, preference 10, 20, 30… in the
/// order given.
pub fn routes_body(uris: &[String], ttl: Option<u32>) -> Value {
    let routes: Vec<Value> = uris
        .iter()
        .zip(1u32..)
        .map(|(uri, i)| serde_json::json!({"uri": uri, "order": 100, "preference": i * 10}))
        .collect();
    let mut body = serde_json::json!({ "routes": routes });
    if let Some(ttl) = ttl {
        body["ttl"] = ttl.into();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problems_read_as_one_line_per_field() {
        let body = br#"{"type":"about:blank","title":"Unprocessable Entity","status":422,
            "detail":"routes[0].uri: bad","errors":[{"field":"routes[0].uri","detail":"bad"},
            {"line":3,"field":"number","detail":"worse"}]}"#;
        let p = Problem::from_answer(422, body);
        assert_eq!(
            p.to_string(),
            "422 Unprocessable Entity: routes[0].uri: bad\n\
             422 Unprocessable Entity: line 3: number: worse"
        );
        let p = Problem::from_answer(404, b"<html>\n<h1>Not here</h1>");
        assert_eq!(p.to_string(), "404 Not Found: <html>");
    }

    #[test]
    fn urls_and_segments() {
        assert_eq!(
            check_url("127.0.0.1:8080", "--url").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_url("https://admin.example.net/enroute/", "--url").unwrap(),
            "https://admin.example.net/enroute"
        );
        for bad in ["ftp://x", "http://", "http://x/?a=b", "not a url"] {
            let e = check_url(bad, "--url").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert_eq!(
            listen_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            listen_url("[::]:8080".parse().unwrap()),
            "http://[::1]:8080"
        );
        assert_eq!(
            encode_segment("sip:+44 1@x;user=phone/%"),
            "sip%3A%2B44%201%40x%3Buser%3Dphone%2F%25"
        );
    }

    #[test]
    fn uris_become_routes_in_order() {
        let body = routes_body(&["sip:a@x".into(), "sip:b@y".into()], Some(60));
        assert_eq!(
            body,
            json!({"ttl": 60, "routes": [
                {"uri": "sip:a@x", "order": 100, "preference": 10},
                {"uri": "sip:b@y", "order": 100, "preference": 20}]})
        );
    }
}
