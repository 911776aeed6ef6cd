//! `[registrar]`: the registrar and location service (REGISTER with digest
//! authentication, bindings the redirect server routes to first).
//!
//! Owns: the section as written (with its defaults), the digest algorithms' names, and
//! the checks that tie the expiry bounds together.
//!
//! Must not touch: REGISTER handling (`sip::register`), digests and bindings
//! (`registrar`).

use super::value::{ConfigError, invalid};
use ipnet::IpNet;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRegistrar {
    enabled: bool,
    domains: Vec<String>,
    realm: String,
    allow: Vec<String>,
    algorithms: Vec<String>,
    min_expires_s: u32,
    max_expires_s: u32,
    default_expires_s: u32,
    max_bindings: usize,
    nonce_ttl_s: u32,
    max_auth_failures: u32,
}

impl Default for RawRegistrar {
    fn default() -> Self {
        RawRegistrar {
            enabled: false,
            domains: Vec::new(),
            realm: String::new(),
            allow: Vec::new(),
            algorithms: vec!["SHA-256".into(), "MD5".into()],
            min_expires_s: 60,
            max_expires_s: 3600,
            default_expires_s: 3600,
            max_bindings: 10,
            nonce_ttl_s: 300,
            max_auth_failures: 10,
        }
    }
}

/// A digest algorithm (RFC 7616 §3.3, RFC 8760): the hash of HA1, HA2 and the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Md5,
}

impl DigestAlgorithm {
    /// Every algorithm, in the order HA1s are kept.
    pub const ALL: [DigestAlgorithm; 2] = [DigestAlgorithm::Sha256, DigestAlgorithm::Md5];

    /// The name on the wire and in the admin API (`SHA-256`, `MD5`).
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Md5 => "MD5",
        }
    }

    /// The algorithm a name gives (any case); `None` for one not supported.
    pub fn parse(name: &str) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }
}

/// `[registrar]`, validated.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// `registrar.enabled`: false, and REGISTER gets 405 as before.
    pub enabled: bool,
    /// AOR domains served, lower case, without a trailing dot.
    pub domains: Vec<String>,
    /// The digest realm (the first domain when not set).
    pub realm: String,
    /// REGISTER sources; `None`: the same as `sip.allow`.
    pub allow: Option<Vec<IpNet>>,
    /// One challenge per algorithm, in this order.
    pub algorithms: Vec<DigestAlgorithm>,
    pub min_expires_s: u32,
    pub max_expires_s: u32,
    pub default_expires_s: u32,
    pub max_bindings: usize,
    pub nonce_ttl_s: u32,
    pub max_auth_failures: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig::from_raw(RawRegistrar::default()).expect("defaults are valid")
    }
}

impl RegistrarConfig {
    pub(super) fn from_raw(r: RawRegistrar) -> Result<RegistrarConfig, ConfigError> {
        let mut domains = Vec::with_capacity(r.domains.len());
        for (i, d) in r.domains.iter().enumerate() {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                return Err(invalid(
                    format!("registrar.domains[{i}]"),
                    format!(
                        "{:?} is not a domain name (letters, digits, '-' and dots)",
                        r.domains[i]
                    ),
                ));
            }
            domains.push(d);
        }
        if r.enabled && domains.is_empty() {
            return Err(invalid(
                "registrar.domains",
                "is empty: an enabled registrar needs at least one AOR domain",
            ));
        }
        let realm = if r.realm.is_empty() {
            domains.first().cloned().unwrap_or_default()
        } else if r.realm.contains(['"', '\\']) || r.realm.chars().any(char::is_control) {
            return Err(invalid(
                "registrar.realm",
                "may not hold quotes, backslashes or control characters",
            ));
        } else {
            r.realm
        };
        let mut algorithms = Vec::new();
        for (i, a) in r.algorithms.iter().enumerate() {
            let key = format!("registrar.algorithms[{i}]");
            let Some(alg) = DigestAlgorithm::parse(a) else {
                return Err(invalid(key, format!("{a:?}: use \"SHA-256\" or \"MD5\"")));
            };
            if algorithms.contains(&alg) {
                return Err(invalid(key, format!("{a:?} is listed twice")));
            }
            algorithms.push(alg);
        }
        if algorithms.is_empty() {
            return Err(invalid(
                "registrar.algorithms",
                "is empty: list \"SHA-256\", \"MD5\" or both",
            ));
        }
        let allow = if r.allow.is_empty() {
            None
        } else {
            Some(super::listen::nets("registrar.allow", &r.allow)?)
        };
        if r.min_expires_s == 0 {
            return Err(invalid("registrar.min_expires_s", "must be at least 1"));
        }
        if r.max_expires_s < r.min_expires_s {
            return Err(invalid(
                "registrar.max_expires_s",
                format!("is below registrar.min_expires_s ({})", r.min_expires_s),
            ));
        }
        if !(r.min_expires_s..=r.max_expires_s).contains(&r.default_expires_s) {
            return Err(invalid(
                "registrar.default_expires_s",
                format!(
                    "must lie between registrar.min_expires_s ({}) and registrar.max_expires_s ({})",
                    r.min_expires_s, r.max_expires_s
                ),
            ));
        }
        if r.max_bindings == 0 || r.max_bindings > 1000 {
            return Err(invalid("registrar.max_bindings", "must be 1 to 1000"));
        }
        if r.nonce_ttl_s == 0 {
            return Err(invalid("registrar.nonce_ttl_s", "must be at least 1"));
        }
        if r.max_auth_failures == 0 {
            return Err(invalid("registrar.max_auth_failures", "must be at least 1"));
        }
        Ok(RegistrarConfig {
            enabled: r.enabled,
            domains,
            realm,
            allow,
            algorithms,
            min_expires_s: r.min_expires_s,
            max_expires_s: r.max_expires_s,
            default_expires_s: r.default_expires_s,
            max_bindings: r.max_bindings,
            nonce_ttl_s: r.nonce_ttl_s,
            max_auth_failures: r.max_auth_failures,
        })
    }
}
