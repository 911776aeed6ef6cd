//! Configuration: the whole TOML schema of SPEC §3 (with §10's limits), parsed and
//! validated in one place.
//!
//! Owns: defaults, unknown-key rejection, turning text into typed values (addresses,
//! CIDRs, regexes, domain names, the `log.level` filter, paths relative to the config
//! file), and error messages that read `FILE:LINE: KEY: message`. The [`KeyLocator`]
//! kept in [`Config`] lets a problem found later with a value (a zone file that cannot
//! be read, an address that cannot be bound) name its file, line and key the same way.
//!
//! Must not touch: anything that acts on the values. Listeners, zones and the router
//! take the validated [`Config`] and never re-parse text.

use crate::name::Name;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration problem: one line naming the file, line and key, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{location}{key}: {message}")]
    Invalid {
        location: String,
        key: String,
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        location: String::new(),
        key: key.into(),
        message: message.into(),
    }
}

/// Where each key of a configuration file is written, so that every message about a
/// value reads `FILE:LINE: KEY: message` (README "Configuration"), whether the problem
/// shows while validating or later, when the value is used (a zone file that cannot be
/// read at start or on SIGHUP, a TLS file, an address that cannot be bound).
///
/// Keys are paths as messages write them: `sip.listen[0]`, `dialplan.rules[1].match`,
/// `zone[2].file`, `sip.tls`. A key the file does not write (a default) is located at
/// the nearest enclosing key it does write (`[sip]`'s header line for `sip.listen[0]`),
/// else at line 1. The built-in defaults (no file) locate nothing: messages then read
/// `KEY: message`.
#[derive(Debug, Clone, Default)]
pub struct KeyLocator {
    /// The file as messages name it; empty for the built-in defaults.
    file: String,
    /// Key path → 1-based line of its value (for a table: its header).
    lines: HashMap<String, usize>,
}

impl KeyLocator {
    /// Locates the keys of TOML `text` (named `file` in messages). Text that does not
    /// parse locates nothing beyond line 1 (its syntax error has its own line).
    pub fn new(file: &str, text: &str) -> KeyLocator {
        match toml::de::DeTable::parse(text) {
            Ok(table) => Self::from_table(file, text, &table),
            Err(_) => KeyLocator {
                file: file.to_string(),
                lines: HashMap::new(),
            },
        }
    }

    fn from_table(file: &str, text: &str, table: &toml::Spanned<toml::de::DeTable<'_>>) -> Self {
        // Offsets of the line ends, so that each key's line is a binary search.
        let ends: Vec<usize> = memchr::memchr_iter(b'\n', text.as_bytes()).collect();
        let mut lines = HashMap::new();
        for (k, v) in table.get_ref().iter() {
            record_keys(&ends, k.get_ref(), v, &mut lines);
        }
        KeyLocator {
            file: file.to_string(),
            lines,
        }
    }

    /// The line `key` is written on; for a key not written, that of the nearest
    /// enclosing key that is, else 1.
    pub fn line(&self, key: &str) -> usize {
        let mut k = key;
        loop {
            if let Some(&line) = self.lines.get(k) {
                return line;
            }
            match parent_key(k) {
                Some(p) => k = p,
                None => return 1,
            }
        }
    }

    /// `FILE:LINE: ` for `key`; empty for the built-in defaults.
    pub fn location(&self, key: &str) -> String {
        if self.file.is_empty() {
            String::new()
        } else {
            format!("{}:{}: ", self.file, self.line(key))
        }
    }

    /// The error `FILE:LINE: KEY: message`.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.location(key),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Records the line of `path` and of every key and array element below it; `ends` are
/// the offsets of the text's line ends.
fn record_keys(
    ends: &[usize],
    path: &str,
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    lines: &mut HashMap<String, usize>,
) {
    use toml::de::DeValue;
    let start = value.span().start;
    lines.insert(path.to_string(), ends.partition_point(|&e| e < start) + 1);
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                record_keys(ends, &format!("{path}.{}", k.get_ref()), v, lines);
            }
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                record_keys(ends, &format!("{path}[{i}]"), v, lines);
            }
        }
        _ => {}
    }
}

/// `sip.listen` for `sip.listen[0]`, `zone[1]` for `zone[1].file`, `None` at the top.
fn parent_key(key: &str) -> Option<&str> {
    if key.ends_with(']') {
        return key.rfind('[').map(|i| &key[..i]).filter(|p| !p.is_empty());
    }
    key.rfind('.').map(|i| &key[..i])
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// `log.level`: comma-separated directives, each a level (`off`, `error`, `warn`,
/// `info`, `debug`, `trace`, any case) or `TARGET[SPAN{FIELD}]=LEVEL`. Checked here
/// because the filter parser takes any bare word as a target: `"verbose"` would be a
/// valid filter that shows nothing at all, and the operator would think the server hung.
/// Returns the filter with the spaces around directives removed (the filter parser
/// would take them as part of a target).
pub fn check_log_level(filter: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |w: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w.trim()));
    let hint = "use off, error, warn, info, debug or trace, or TARGET=LEVEL directives \
                separated by commas (\"info,enroute::sip=debug\")";
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!("is empty: {hint}"));
    }
    for &d in &directives {
        match d.rsplit_once('=') {
            None if is_level(d) => {}
            None => return Err(format!("{d:?} is not a level: {hint}")),
            Some((target, level)) if target.trim().is_empty() || !is_level(level) => {
                return Err(format!(
                    "{d:?}: {level:?} after '=' is not a level (or the target is missing): {hint}"
                ));
            }
            Some(_) => {}
        }
    }
    // The directives' own syntax (spans, fields) is the filter parser's to judge.
    let filter = directives.join(",");
    match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(_) => Ok(filter),
        Err(e) => Err(format!("{filter:?}: {e}")),
    }
}

// ---------------------------------------------------------------------------------
// The file as written (every key optional, defaults per SPEC §3).

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    sip: RawSip,
    dialplan: RawDialplan,
    #[serde(rename = "enum")]
    enum_: RawEnum,
    cache: CacheConfig,
    gateway: Vec<RawGateway>,
    dns: RawDns,
    zone: Vec<RawZone>,
    admin: RawAdmin,
    store: RawStore,
    log: RawLog,
    metrics: RawMetrics,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSip {
    listen: Vec<String>,
    allow: Vec<String>,
    max_contacts: u32,
    tls: Option<RawTls>,
    max_message_bytes: u32,
    tcp_idle_s: u64,
    max_transactions: u32,
}

impl Default for RawSip {
    fn default() -> Self {
        RawSip {
            listen: vec!["udp:127.0.0.1:5060".into(), "tcp:127.0.0.1:5060".into()],
            allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
            max_contacts: 10,
            tls: None,
            max_message_bytes: 65535,
            tcp_idle_s: 300,
            max_transactions: 100_000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDialplan {
    rules: Vec<RawRule>,
    min_digits: u32,
    max_digits: u32,
}

impl Default for RawDialplan {
    fn default() -> Self {
        RawDialplan {
            rules: Vec::new(),
            min_digits: 3,
            max_digits: 15,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    pattern: String,
    replace: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEnum {
    suffixes: Vec<String>,
    services: Vec<String>,
    nameservers: Vec<String>,
    timeout_ms: u64,
    on_failure: OnFailure,
}

impl Default for RawEnum {
    fn default() -> Self {
        RawEnum {
            suffixes: vec!["e164.arpa.".into()],
            services: vec![
                "E2U+sip".into(),
                "E2U+pstn:tel".into(),
                "E2U+pstn:sip".into(),
            ],
            nameservers: Vec::new(),
            timeout_ms: 2000,
            on_failure: OnFailure::Gateway,
        }
    }
}

/// What to answer when every DNS lookup for a number failed.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Route to the gateway as if there were no record.
    Gateway,
    /// Answer 503 with Retry-After.
    Reject,
}

/// `[cache]`: used as written.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub capacity: u64,
    pub max_ttl_s: u32,
    pub negative_ttl_s: u32,
    pub failure_ttl_s: u32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: 1_000_000,
            max_ttl_s: 3600,
            negative_ttl_s: 300,
            failure_ttl_s: 5,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    prefix: String,
    uris: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDns {
    listen: Vec<String>,
    allow_transfer: Vec<String>,
    notify: Vec<String>,
}

impl Default for RawDns {
    fn default() -> Self {
        RawDns {
            listen: vec!["udp:127.0.0.1:5353".into(), "tcp:127.0.0.1:5353".into()],
            allow_transfer: vec!["127.0.0.0/8".into(), "::1/128".into()],
            notify: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    origin: String,
    file: Option<String>,
    primary: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdmin {
    listen: String,
    token_file: String,
    max_body_bytes: u64,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: "127.0.0.1:8080".into(),
            token_file: "../data/admin.token".into(),
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    path: String,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: "../data/enroute.db".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: LogFormat,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[metrics]`: not in SPEC §3; added so that counting can be measured on vs off and
/// turned off where nobody scrapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    enabled: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { enabled: true }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

// ---------------------------------------------------------------------------------
// The validated configuration.

/// Transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// One `listen` entry: `udp:IP:PORT`, `tcp:…`, `tls:…` (IPv6 in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (proto, addr) = s.split_once(':').ok_or_else(|| {
            format!("expected \"udp:IP:PORT\", \"tcp:IP:PORT\" or \"tls:IP:PORT\", got {s:?}")
        })?;
        let transport = match proto {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => {
                return Err(format!(
                    "unknown transport {other:?} in {s:?} (udp, tcp or tls)"
                ));
            }
        };
        let addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not IP:PORT (IPv6 goes in brackets: [::1]:5060)"))?;
        Ok(Listen { transport, addr })
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    pub listen: Vec<Listen>,
    pub allow: Vec<IpNet>,
    pub max_contacts: usize,
    pub tls: Option<TlsConfig>,
    pub max_message_bytes: usize,
    pub tcp_idle_s: u64,
    pub max_transactions: usize,
}

/// One dial-plan rule: a regex over the cleaned user part and its `$1`-style replacement.
#[derive(Debug, Clone)]
pub struct DialRule {
    pub pattern: regex::Regex,
    pub replace: String,
}

#[derive(Debug, Clone)]
pub struct DialplanConfig {
    pub rules: Vec<DialRule>,
    pub min_digits: usize,
    pub max_digits: usize,
}

#[derive(Debug, Clone)]
pub struct EnumConfig {
    pub suffixes: Vec<Name>,
    /// As configured (`E2U+pstn:tel`), for display.
    pub services: Vec<String>,
    pub nameservers: Vec<SocketAddr>,
    pub timeout_ms: u64,
    pub on_failure: OnFailure,
}

/// A PSTN gateway: longest `prefix` wins; `uris` are templates with `{e164}`/`{digits}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub prefix: String,
    pub uris: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub listen: Vec<Listen>,
    pub allow_transfer: Vec<IpNet>,
    pub notify: Vec<SocketAddr>,
}

/// Where a `[[zone]]`'s data of record comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSource {
    /// `file = "..."`: a master file, loaded into the store when newer (SPEC §6).
    File(PathBuf),
    /// `primary = "IP:PORT"`: a secondary zone, transferred from its primary.
    Primary(SocketAddr),
    /// Neither: a store-only zone, created empty (SOA and a placeholder NS) on first
    /// start and changed through the admin API only.
    Store,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub origin: Name,
    pub source: ZoneSource,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    pub max_body_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    pub sip: SipConfig,
    pub dialplan: DialplanConfig,
    pub enum_: EnumConfig,
    pub cache: CacheConfig,
    pub gateways: Vec<GatewayConfig>,
    pub dns: DnsConfig,
    pub zones: Vec<ZoneConfig>,
    pub admin: AdminConfig,
    pub store: PathBuf,
    pub log: LogConfig,
    /// `metrics.enabled`: count and serve `/metrics` (default true).
    pub metrics_enabled: bool,
    /// Where each key was written in [`Config::file`], for messages about its values.
    pub keys: KeyLocator,
}

/// Most digits a number may have: its ENUM domain must stay within 255 bytes.
pub const MAX_DIGITS_LIMIT: usize = 100;

impl Config {
    /// The configuration with no file at all (SPEC §10.2 and §10.23): no zones, no
    /// gateways, no dial-plan rules, paths relative to the working directory.
    pub fn builtin() -> Config {
        // The file defaults (`../data/…`) are relative to `config/`; with no file they
        // are `data/…` under the working directory (joining `config/..` would create an
        // empty `config/` directory there).
        let mut raw = RawConfig::default();
        raw.admin.token_file = "data/admin.token".into();
        raw.store.path = "data/enroute.db".into();
        Self::from_raw(raw, Path::new(""), None).expect("built-in defaults are valid")
    }

    /// A problem with one of this configuration's values found after it loaded (a file
    /// it names cannot be read, an address cannot be bound), as `FILE:LINE: KEY: message`.
    pub fn value_error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.keys.error(key, message)
    }

    /// Reads and validates a file. Relative paths inside are relative to its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: path.display().to_string(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base, Some(path))
    }

    /// Parses TOML text; `display` names it in messages; paths resolve against `base`.
    pub fn parse(
        text: &str,
        display: &str,
        base: &Path,
        file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let line_of = |offset: usize| line_at(text, offset);
        let table = toml::de::DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            file: display.to_string(),
            line: e.span().map_or(1, |s| line_of(s.start)),
            message: one_line(e.message()),
        })?;
        let keys = KeyLocator::from_table(display, text, &table);
        let de = toml::Deserializer::from(table);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let location = match inner.span() {
                Some(s) => format!("{display}:{}: ", line_of(s.start)),
                None => keys.location(&path),
            };
            let msg = one_line(inner.message());
            let (key, message) = match unknown_field(&msg) {
                Some(field) => (
                    if path == "." || path.is_empty() {
                        field.to_string()
                    } else if path == field || path.ends_with(&format!(".{field}")) {
                        path.clone()
                    } else {
                        format!("{path}.{field}")
                    },
                    format!(
                        "unknown key{}",
                        msg.split_once(", expected")
                            .map_or(String::new(), |(_, rest)| format!(" (expected{rest})"))
                    ),
                ),
                None => (path, msg),
            };
            ConfigError::Invalid {
                location,
                key,
                message,
            }
        })?;
        let mut config = Self::from_raw(raw, base, file).map_err(|e| match e {
            ConfigError::Invalid { key, message, .. } => keys.error(&key, message),
            other => other,
        })?;
        config.keys = keys;
        Ok(config)
    }

    fn from_raw(raw: RawConfig, base: &Path, file: Option<&Path>) -> Result<Config, ConfigError> {
        let path = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let listens = |key: &str, v: &[String]| -> Result<Vec<Listen>, ConfigError> {
            v.iter()
                .enumerate()
                .map(|(i, s)| s.parse().map_err(|m| invalid(format!("{key}[{i}]"), m)))
                .collect()
        };
        let nets = |key: &str, v: &[String]| -> Result<Vec<IpNet>, ConfigError> {
            v.iter()
                .enumerate()
                .map(|(i, s)| parse_net(s).map_err(|m| invalid(format!("{key}[{i}]"), m)))
                .collect()
        };
        let addrs = |key: &str, v: &[String]| -> Result<Vec<SocketAddr>, ConfigError> {
            v.iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse().map_err(|_| {
                        invalid(format!("{key}[{i}]"), format!("{s:?} is not IP:PORT"))
                    })
                })
                .collect()
        };

        // [sip]
        let s = raw.sip;
        if s.max_contacts == 0 {
            return Err(invalid("sip.max_contacts", "must be at least 1"));
        }
        if !(512..=1 << 20).contains(&s.max_message_bytes) {
            return Err(invalid(
                "sip.max_message_bytes",
                "must be between 512 and 1048576",
            ));
        }
        if s.tcp_idle_s == 0 {
            return Err(invalid("sip.tcp_idle_s", "must be at least 1"));
        }
        if s.max_transactions == 0 {
            return Err(invalid("sip.max_transactions", "must be at least 1"));
        }
        let sip_listen = listens("sip.listen", &s.listen)?;
        if s.tls.is_none() && sip_listen.iter().any(|l| l.transport == Transport::Tls) {
            return Err(invalid(
                "sip.tls",
                "a tls: listener needs [sip.tls] cert and key",
            ));
        }
        let sip = SipConfig {
            allow: nets("sip.allow", &s.allow)?,
            listen: sip_listen,
            max_contacts: s.max_contacts as usize,
            tls: s.tls.map(|t| TlsConfig {
                cert: path(&t.cert),
                key: path(&t.key),
            }),
            max_message_bytes: s.max_message_bytes as usize,
            tcp_idle_s: s.tcp_idle_s,
            max_transactions: s.max_transactions as usize,
        };

        // [dialplan]
        let d = raw.dialplan;
        let mut rules = Vec::new();
        for (i, r) in d.rules.iter().enumerate() {
            let pattern = regex::RegexBuilder::new(&r.pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    invalid(
                        format!("dialplan.rules[{i}].match"),
                        format!("invalid regex: {}", one_line(&e.to_string())),
                    )
                })?;
            if let Some(n) = max_group_ref(&r.replace)
                && n >= pattern.captures_len()
            {
                return Err(invalid(
                    format!("dialplan.rules[{i}].replace"),
                    format!(
                        "refers to group ${n} but the match has {} groups",
                        pattern.captures_len() - 1
                    ),
                ));
            }
            rules.push(DialRule {
                pattern,
                replace: r.replace.clone(),
            });
        }
        if d.min_digits == 0 {
            return Err(invalid("dialplan.min_digits", "must be at least 1"));
        }
        if d.max_digits < d.min_digits {
            return Err(invalid(
                "dialplan.max_digits",
                "must not be below dialplan.min_digits",
            ));
        }
        if d.max_digits as usize > MAX_DIGITS_LIMIT {
            return Err(invalid(
                "dialplan.max_digits",
                format!("must be at most {MAX_DIGITS_LIMIT} (an ENUM domain is at most 255 bytes)"),
            ));
        }
        let dialplan = DialplanConfig {
            rules,
            min_digits: d.min_digits as usize,
            max_digits: d.max_digits as usize,
        };

        // [enum]
        let e = raw.enum_;
        let mut suffixes = Vec::new();
        for (i, sfx) in e.suffixes.iter().enumerate() {
            let n = Name::from_text(sfx)
                .map_err(|err| invalid(format!("enum.suffixes[{i}]"), format!("{sfx:?}: {err}")))?;
            suffixes.push(n);
        }
        for (i, svc) in e.services.iter().enumerate() {
            if !is_enumservice(svc) {
                return Err(invalid(
                    format!("enum.services[{i}]"),
                    format!("{svc:?} is not an enumservice like \"E2U+sip\" or \"E2U+pstn:tel\""),
                ));
            }
        }
        if e.timeout_ms == 0 {
            return Err(invalid("enum.timeout_ms", "must be at least 1"));
        }
        let enum_ = EnumConfig {
            suffixes,
            services: e.services.clone(),
            nameservers: addrs("enum.nameservers", &e.nameservers)?,
            timeout_ms: e.timeout_ms,
            on_failure: e.on_failure,
        };

        // [cache]
        if raw.cache.capacity == 0 {
            return Err(invalid("cache.capacity", "must be at least 1"));
        }

        // [[gateway]]
        let mut gateways = Vec::new();
        for (i, g) in raw.gateway.iter().enumerate() {
            if !g.prefix.starts_with('+') || !g.prefix[1..].bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    format!("gateway[{i}].prefix"),
                    format!("{:?} must be \"+\" followed by digits", g.prefix),
                ));
            }
            if g.uris.is_empty() {
                return Err(invalid(
                    format!("gateway[{i}].uris"),
                    "needs at least one URI",
                ));
            }
            for (j, u) in g.uris.iter().enumerate() {
                check_gateway_uri(u).map_err(|m| invalid(format!("gateway[{i}].uris[{j}]"), m))?;
            }
            if gateways
                .iter()
                .any(|x: &GatewayConfig| x.prefix == g.prefix)
            {
                return Err(invalid(
                    format!("gateway[{i}].prefix"),
                    format!("{:?} is used by an earlier gateway", g.prefix),
                ));
            }
            gateways.push(GatewayConfig {
                prefix: g.prefix.clone(),
                uris: g.uris.clone(),
            });
        }

        // [dns]
        let dns = DnsConfig {
            listen: listens("dns.listen", &raw.dns.listen)?,
            allow_transfer: nets("dns.allow_transfer", &raw.dns.allow_transfer)?,
            notify: addrs("dns.notify", &raw.dns.notify)?,
        };
        if let Some(i) = dns
            .listen
            .iter()
            .position(|l| l.transport == Transport::Tls)
        {
            return Err(invalid(
                format!("dns.listen[{i}]"),
                "DNS listens on udp: or tcp: only",
            ));
        }

        // [[zone]]
        let mut zones: Vec<ZoneConfig> = Vec::new();
        for (i, z) in raw.zone.iter().enumerate() {
            let origin = Name::from_text(&z.origin).map_err(|err| {
                invalid(
                    format!("zone[{i}].origin"),
                    format!("{:?}: {err}", z.origin),
                )
            })?;
            if zones.iter().any(|x| x.origin.eq_ignore_case(&origin)) {
                return Err(invalid(
                    format!("zone[{i}].origin"),
                    format!("{origin} is configured twice"),
                ));
            }
            let source = match (&z.file, &z.primary) {
                (Some(f), None) => ZoneSource::File(path(f)),
                (None, Some(p)) => ZoneSource::Primary(p.parse().map_err(|_| {
                    invalid(
                        format!("zone[{i}].primary"),
                        format!("{p:?} is not IP:PORT"),
                    )
                })?),
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("zone[{i}]"),
                        "set either file or primary, not both",
                    ));
                }
                (None, None) => ZoneSource::Store,
            };
            zones.push(ZoneConfig { origin, source });
        }

        // [admin], [store], [log]
        let admin = AdminConfig {
            listen: raw.admin.listen.parse().map_err(|_| {
                invalid(
                    "admin.listen",
                    format!("{:?} is not IP:PORT", raw.admin.listen),
                )
            })?,
            token_file: path(&raw.admin.token_file),
            max_body_bytes: raw.admin.max_body_bytes,
        };
        if admin.max_body_bytes == 0 {
            return Err(invalid("admin.max_body_bytes", "must be at least 1"));
        }
        let level = check_log_level(&raw.log.level).map_err(|m| invalid("log.level", m))?;
        Ok(Config {
            file: file.map(Path::to_path_buf),
            sip,
            dialplan,
            enum_,
            cache: raw.cache,
            gateways,
            dns,
            zones,
            admin,
            store: path(&raw.store.path),
            metrics_enabled: raw.metrics.enabled,
            keys: KeyLocator::default(),
            log: LogConfig {
                format: raw.log.format,
                level,
            },
        })
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an address or CIDR (\"10.0.0.0/8\")"))
}

/// `E2U` then one or more `+type[:subtype]` (RFC 6116 §3.4.3).
pub fn is_enumservice(s: &str) -> bool {
    let Some(rest) = s
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("E2U"))
        .map(|_| &s[3..])
    else {
        return false;
    };
    let mut parts = rest.split('+');
    if parts.next() != Some("") {
        return false;
    }
    let mut any = false;
    for p in parts {
        any = true;
        let ok = !p.is_empty()
            && p.split(':').all(|t| {
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return false;
        }
    }
    any
}

fn max_group_ref(replace: &str) -> Option<usize> {
    let b = replace.as_bytes();
    let mut max = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (start, end_brace) = if b.get(i + 1) == Some(&b'{') {
                (i + 2, true)
            } else {
                (i + 1, false)
            };
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > start
                && (!end_brace || b.get(j) == Some(&b'}'))
                && let Ok(n) = replace[start..j].parse::<usize>()
            {
                max = Some(max.map_or(n, |m: usize| m.max(n)));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    max
}

fn check_gateway_uri(u: &str) -> Result<(), String> {
    let mut rest = u;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("{u:?} has an unclosed '{{'"))?;
        let ph = &rest[open + 1..open + close];
        if ph != "e164" && ph != "digits" {
            return Err(format!(
                "unknown placeholder {{{ph}}} in {u:?} (use {{e164}} or {{digits}})"
            ));
        }
        rest = &rest[open + close + 1..];
    }
    let sample = u
        .replace("{e164}", "+15550100")
        .replace("{digits}", "15550100");
    if crate::uri::parse(&sample).is_none_or(|p| !p.is_sip()) {
        return Err(format!("{u:?} is not a sip: or sips: URI"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml", Path::new("/etc/enroute"), None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "t.toml", Path::new("/etc/enroute"), None).unwrap();
        assert_eq!(c.sip.max_contacts, 10);
        assert_eq!(c.enum_.suffixes[0].to_string(), "e164.arpa.");
        assert_eq!(c.store, Path::new("/etc/enroute/../data/enroute.db"));
        assert_eq!(c.sip.max_message_bytes, 65535);
        assert_eq!(c.enum_.on_failure, OnFailure::Gateway);
    }

    #[test]
    fn no_file_puts_data_under_the_working_directory() {
        let c = Config::builtin();
        assert_eq!(c.store, Path::new("data/enroute.db"));
        assert_eq!(c.admin.token_file, Path::new("data/admin.token"));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            err("[sip]\nlisten = [\"udp:127.0.0.1:5060\", \"bogus\"]\n"),
            "t.toml:2: sip.listen[1]: expected \"udp:IP:PORT\", \"tcp:IP:PORT\" or \"tls:IP:PORT\", got \"bogus\""
        );
        let e = err("[sip]\nlisten_on = []\n");
        assert!(e.starts_with("t.toml:2: sip.listen_on: unknown key"), "{e}");
        let e = err("[enum]\non_failure = \"retry\"\n");
        assert!(e.contains("enum.on_failure"), "{e}");
        let e = err("[[gateway]]\nprefix = \"44\"\nuris = [\"sip:x@y\"]\n");
        assert!(e.contains("gateway[0].prefix"), "{e}");
        let e = err("[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{nope}@y\"]\n");
        assert!(
            e.contains("gateway[0].uris[0]") && e.contains("{nope}"),
            "{e}"
        );
        let e = err("[dialplan]\nrules = [{ match = '^(0', replace = '+$1' }]\n");
        assert!(e.contains("dialplan.rules[0].match"), "{e}");
        let e = err("[dialplan]\nmin_digits = 5\nmax_digits = 4\n");
        assert!(e.contains("dialplan.max_digits"), "{e}");
        let e = err("[sip]\n\n[[zone]]\nfile = \"a\"\n");
        assert!(
            e.starts_with("t.toml:3: zone[0]") && e.contains("origin"),
            "{e}"
        );
        let e = err("[sip]\nmax_contacts = -1\n");
        assert!(e.starts_with("t.toml:2: sip.max_contacts: "), "{e}");
        let e = err("[sip]\n[sip.tls]\ncert = \"c\"\n");
        assert!(
            e.starts_with("t.toml:2: sip.tls") && e.contains("key"),
            "{e}"
        );
        let e = err("[[zone]]\norigin = \"e164.arpa.\"\nfile = \"a\"\nprimary = \"x\"\n");
        assert!(e.starts_with("t.toml:1: zone[0]: set either"), "{e}");
        let e = err("[sip]\nmax_contacts = \"ten\"\n");
        assert!(e.contains("sip.max_contacts"), "{e}");
        let e = err("[sip\n");
        assert!(e.starts_with("t.toml:1:"), "{e}");
        let e = err("bogus = 1\n");
        assert!(e.contains("bogus: unknown key"), "{e}");
        let e = err("[enum]\nservices = [\"sip\"]\n");
        assert!(e.contains("enum.services[0]"), "{e}");
    }

    #[test]
    fn value_errors_carry_the_line_of_their_key() {
        let text = "# enroute\n\n[sip]\nlisten = [\n  \"udp:127.0.0.1:5060\",\n  \"udp:127.0.0.1\",\n]\n\n\
                    [dialplan]\nrules = [\n  { match = '^0', replace = '+44' },\n  { match = '^(0', replace = '+$1' },\n]\n";
        let e = err(text);
        assert!(e.starts_with("t.toml:6: sip.listen[1]: "), "{e}");
        let e = err(&text.replace("\"udp:127.0.0.1\"", "\"udp:127.0.0.1:5061\""));
        assert!(
            e.starts_with("t.toml:12: dialplan.rules[1].match: invalid regex"),
            "{e}"
        );
        // A key the file does not write: the line of its table, else line 1.
        let e = err(
            "[sip]\nmax_contacts = 1\n\n[[zone]]\norigin = \"x\"\nfile = \"a\"\n\n[[zone]]\norigin = \"x\"\nfile = \"b\"\n",
        );
        assert!(e.starts_with("t.toml:9: zone[1].origin: "), "{e}");
        let e = err("\n[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\n");
        assert!(e.starts_with("t.toml:2: sip.tls: "), "{e}");
        let e = err("\n[dialplan]\nmin_digits = 0\n");
        assert!(e.starts_with("t.toml:3: dialplan.min_digits: "), "{e}");
    }

    #[test]
    fn the_locator_finds_keys_elements_and_tables() {
        let text = "[sip]\nlisten = [\n  \"a\",\n  \"b\",\n]\n[sip.tls]\ncert = \"c\"\n\n[[zone]]\norigin = \"o\"\n\n[[zone]]\norigin = \"p\"\nfile = \"f\"\n";
        let keys = KeyLocator::new("e.toml", text);
        assert_eq!(keys.line("sip"), 1);
        assert_eq!(keys.line("sip.listen"), 2);
        assert_eq!(keys.line("sip.listen[1]"), 4);
        assert_eq!(keys.line("sip.tls.cert"), 7);
        assert_eq!(keys.line("sip.tls.key"), 6, "absent: its table's header");
        assert_eq!(keys.line("sip.allow[0]"), 1, "absent: the enclosing table");
        assert_eq!(keys.line("zone[1]"), 12);
        assert_eq!(keys.line("zone[1].file"), 14);
        assert_eq!(keys.line("dns.listen[0]"), 1, "nothing written: line 1");
        assert_eq!(keys.location("zone[0].file"), "e.toml:9: ");
        assert_eq!(
            keys.error("zone[1].file", "cannot read").to_string(),
            "e.toml:14: zone[1].file: cannot read"
        );
        // The built-in defaults have no file to point into.
        let builtin = Config::builtin();
        assert_eq!(
            builtin
                .value_error("admin.listen", "cannot bind")
                .to_string(),
            "admin.listen: cannot bind"
        );
        // A loaded file keeps its locator for later messages.
        let c = Config::parse(
            text.replace("tls", "x").as_str(),
            "e.toml",
            Path::new("/e"),
            None,
        );
        assert!(c.is_err(), "sip.x is not a key");
        let c = Config::parse(
            "\n\n[[zone]]\norigin = \"o.\"\nfile = \"z\"\n",
            "e.toml",
            Path::new("/e"),
            None,
        )
        .unwrap();
        assert_eq!(
            c.value_error("zone[0].file", "cannot read").to_string(),
            "e.toml:5: zone[0].file: cannot read"
        );
        assert_eq!(c.zones[0].source, ZoneSource::File(PathBuf::from("/e/z")));
    }

    #[test]
    fn log_level_is_levels_or_target_directives() {
        for ok in [
            "info",
            "DEBUG",
            "off",
            "warn,enroute::sip=trace",
            "enroute=debug",
            "info, hickory_proto=error",
            "enroute[zone]=debug",
        ] {
            assert!(
                check_log_level(ok).is_ok(),
                "{ok}: {:?}",
                check_log_level(ok)
            );
        }
        for bad in [
            "verbose",
            "inof",
            "",
            " , ",
            "enroute",
            "enroute=loud",
            "=debug",
            "info,sip",
        ] {
            let e = check_log_level(bad).expect_err(bad);
            assert!(
                e.contains("off, error, warn, info, debug or trace"),
                "{bad}: {e}"
            );
        }
        let e = err("[log]\nlevel = \"verbose\"\n");
        assert!(
            e.starts_with("t.toml:2: log.level: \"verbose\" is not a level"),
            "{e}"
        );
    }

    #[test]
    fn a_zone_with_neither_file_nor_primary_is_store_only() {
        let c = Config::parse(
            "[[zone]]\norigin = \"9.9.9.4.4.e164.arpa.\"\n",
            "t.toml",
            Path::new("/e"),
            None,
        )
        .unwrap();
        assert_eq!(c.zones[0].source, ZoneSource::Store);
    }

    #[test]
    fn enumservice_syntax() {
        assert!(is_enumservice("E2U+sip"));
        assert!(is_enumservice("e2u+pstn:tel"));
        assert!(is_enumservice("E2U+sip+h323"));
        assert!(!is_enumservice("E2U"));
        assert!(!is_enumservice("E2U+"));
        assert!(!is_enumservice("sip+E2U"));
    }
}
