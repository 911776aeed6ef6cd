//! `[sip]`, `[dns]` and `[admin]`: where enroute listens and whom it lets in.
//!
//! Owns: each section as written (with its defaults), the listener syntax
//! (`udp:IP:PORT`, `tcp:…`, `tls:…`), addresses and CIDRs, the TLS file paths, the
//! replication keys of `[dns]` (journal length, catalog zone name, transfer key), and
//! each section's checks.
//!
//! Must not touch: sockets (`net`, `sip::transport`, `dns` bind them) or TLS files (read
//! by `server` when it starts).

use super::tsig::{TsigKey, reference};
use super::value::{ConfigError, addrs, invalid, resolve_path};
use crate::name::Name;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------
// The sections as written (every key optional, defaults per SPEC §3).

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSip {
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
pub(super) struct RawTls {
    cert: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDns {
    listen: Vec<String>,
    allow_transfer: Vec<String>,
    notify: Vec<String>,
    journal_max_changes: usize,
    catalog_zone: String,
    transfer_key: String,
}

impl Default for RawDns {
    fn default() -> Self {
        RawDns {
            listen: vec!["udp:127.0.0.1:5353".into(), "tcp:127.0.0.1:5353".into()],
            allow_transfer: vec!["127.0.0.0/8".into(), "::1/128".into()],
            notify: Vec::new(),
            journal_max_changes: 10_000,
            catalog_zone: String::new(),
            transfer_key: String::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAdmin {
    listen: String,
    pub(super) token_file: String,
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

// ---------------------------------------------------------------------------------
// The validated sections.

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

#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub listen: Vec<Listen>,
    pub allow_transfer: Vec<IpNet>,
    pub notify: Vec<SocketAddr>,
    /// Serial changes kept per zone for IXFR; 0 keeps none (every IXFR is answered in
    /// AXFR form).
    pub journal_max_changes: usize,
    /// The catalog zone (RFC 9432) served, listing every zone we are primary for.
    pub catalog_zone: Option<Name>,
    /// The `[[tsig]]` that AXFR/IXFR requests must be signed with; answers and NOTIFY
    /// out are signed with it too.
    pub transfer_key: Option<Name>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    pub max_body_bytes: u64,
}

impl SipConfig {
    /// `[sip]`: limits first, then the listeners, the TLS files they need, the allow list.
    pub(super) fn from_raw(s: RawSip, base: &Path) -> Result<SipConfig, ConfigError> {
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
        Ok(SipConfig {
            allow: nets("sip.allow", &s.allow)?,
            listen: sip_listen,
            max_contacts: s.max_contacts as usize,
            tls: s.tls.map(|t| TlsConfig {
                cert: resolve_path(base, &t.cert),
                key: resolve_path(base, &t.key),
            }),
            max_message_bytes: s.max_message_bytes as usize,
            tcp_idle_s: s.tcp_idle_s,
            max_transactions: s.max_transactions as usize,
        })
    }
}

impl DnsConfig {
    /// `[dns]`: listeners (udp: and tcp: only), transfer allow list, NOTIFY targets,
    /// then replication: the catalog zone's name and the transfer key (one of `keys`).
    pub(super) fn from_raw(d: RawDns, keys: &[TsigKey]) -> Result<DnsConfig, ConfigError> {
        let dns = DnsConfig {
            listen: listens("dns.listen", &d.listen)?,
            allow_transfer: nets("dns.allow_transfer", &d.allow_transfer)?,
            notify: addrs("dns.notify", &d.notify)?,
            journal_max_changes: d.journal_max_changes,
            catalog_zone: catalog_zone(&d.catalog_zone)?,
            transfer_key: match d.transfer_key.as_str() {
                "" => None,
                name => Some(reference(keys, "dns.transfer_key", name)?),
            },
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
        Ok(dns)
    }
}

impl AdminConfig {
    /// `[admin]`: the API's address, its token file and body limit.
    pub(super) fn from_raw(a: RawAdmin, base: &Path) -> Result<AdminConfig, ConfigError> {
        let admin = AdminConfig {
            listen: a
                .listen
                .parse()
                .map_err(|_| invalid("admin.listen", format!("{:?} is not IP:PORT", a.listen)))?,
            token_file: resolve_path(base, &a.token_file),
            max_body_bytes: a.max_body_bytes,
        };
        if admin.max_body_bytes == 0 {
            return Err(invalid("admin.max_body_bytes", "must be at least 1"));
        }
        Ok(admin)
    }
}

/// `dns.catalog_zone`: "" for none, else a name below the root.
fn catalog_zone(text: &str) -> Result<Option<Name>, ConfigError> {
    if text.is_empty() {
        return Ok(None);
    }
    let name =
        Name::from_text(text).map_err(|e| invalid("dns.catalog_zone", format!("{text:?}: {e}")))?;
    if name.label_count() == 0 {
        return Err(invalid(
            "dns.catalog_zone",
            "the root cannot be a catalog zone (e.g. \"catalog.example.net.\")",
        ));
    }
    Ok(Some(name))
}

/// `KEY[i]` entries as listeners.
fn listens(key: &str, v: &[String]) -> Result<Vec<Listen>, ConfigError> {
    v.iter()
        .enumerate()
        .map(|(i, s)| s.parse().map_err(|m| invalid(format!("{key}[{i}]"), m)))
        .collect()
}

/// `KEY[i]` entries as addresses or CIDRs.
pub(super) fn nets(key: &str, v: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    v.iter()
        .enumerate()
        .map(|(i, s)| parse_net(s).map_err(|m| invalid(format!("{key}[{i}]"), m)))
        .collect()
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an address or CIDR (\"10.0.0.0/8\")"))
}
