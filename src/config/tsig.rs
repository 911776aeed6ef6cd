//! `[[tsig]]`: the shared secrets that sign zone transfers and NOTIFY (RFC 8945).
//!
//! Owns: the section as written, key names (each once), the algorithm names we accept,
//! the secret (base64 in the file, or in a `secret_file` beside it, read here so that a
//! missing or bad secret stops the start with a message naming the key), and the typed
//! key that `dns::tsig` signs and verifies with.
//!
//! Must not touch: signing or verifying (`dns::tsig`), or which requests need a key
//! (`[dns] transfer_key` and `[[zone]] key` are checked against these names by their
//! own sections).

use super::value::{ConfigError, invalid, resolve_path};
use crate::name::Name;
use base64::Engine;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTsig {
    name: String,
    #[serde(default = "default_algorithm")]
    algorithm: String,
    secret: Option<String>,
    secret_file: Option<String>,
}

fn default_algorithm() -> String {
    "hmac-sha256".into()
}

/// The MAC algorithms we sign with: the two every current server offers (RFC 8945 §6
/// makes HMAC-SHA256 mandatory; MD5 and SHA-1 are deprecated there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha512,
}

impl TsigAlgorithm {
    /// The algorithm's name as in the config file and in knot.conf / `kdig -y`.
    pub fn name(&self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm's domain name in uncompressed wire form, as the TSIG record
    /// carries it (lower case, which is also its canonical form for the MAC).
    pub fn wire_name(&self) -> &'static [u8] {
        match self {
            TsigAlgorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            TsigAlgorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm a TSIG record names (uncompressed wire form, any case).
    pub fn from_wire(wire: &[u8]) -> Option<Self> {
        [TsigAlgorithm::HmacSha256, TsigAlgorithm::HmacSha512]
            .into_iter()
            .find(|a| a.wire_name().eq_ignore_ascii_case(wire))
    }

    /// Length of a full MAC in bytes.
    pub fn mac_len(&self) -> usize {
        match self {
            TsigAlgorithm::HmacSha256 => 32,
            TsigAlgorithm::HmacSha512 => 64,
        }
    }

    fn from_config(text: &str) -> Option<Self> {
        let text = text.strip_suffix('.').unwrap_or(text);
        [TsigAlgorithm::HmacSha256, TsigAlgorithm::HmacSha512]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(text))
    }
}

/// One `[[tsig]]` key. Its `Debug` leaves the secret out, so that logging a config
/// never writes it.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

impl TsigKey {
    /// `[[tsig]]`: each key in order; its name (not configured twice), algorithm and
    /// secret. `base` is the config file's directory, for `secret_file`.
    pub(super) fn from_raw_list(raw: &[RawTsig], base: &Path) -> Result<Vec<TsigKey>, ConfigError> {
        let mut keys: Vec<TsigKey> = Vec::with_capacity(raw.len());
        for (i, t) in raw.iter().enumerate() {
            let name = Name::from_text(&t.name)
                .map_err(|e| invalid(format!("tsig[{i}].name"), format!("{:?}: {e}", t.name)))?;
            if keys.iter().any(|k| k.name.eq_ignore_case(&name)) {
                return Err(invalid(
                    format!("tsig[{i}].name"),
                    format!("{name} is configured twice"),
                ));
            }
            let algorithm = TsigAlgorithm::from_config(&t.algorithm).ok_or_else(|| {
                invalid(
                    format!("tsig[{i}].algorithm"),
                    format!(
                        "{:?}: expected \"hmac-sha256\" or \"hmac-sha512\"",
                        t.algorithm
                    ),
                )
            })?;
            let secret = secret(i, t, base)?;
            keys.push(TsigKey {
                name,
                algorithm,
                secret,
            });
        }
        Ok(keys)
    }
}

/// The decoded secret of `tsig[i]`, from `secret` or from the file `secret_file` names.
fn secret(i: usize, t: &RawTsig, base: &Path) -> Result<Vec<u8>, ConfigError> {
    let (key, text) = match (&t.secret, &t.secret_file) {
        (Some(s), None) => (format!("tsig[{i}].secret"), s.clone()),
        (None, Some(f)) => {
            let key = format!("tsig[{i}].secret_file");
            let path = resolve_path(base, f);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(&key, format!("cannot read {}: {e}", path.display())))?;
            (key, text)
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("tsig[{i}]"),
                "set either secret or secret_file, not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                format!("tsig[{i}]"),
                "needs secret (base64) or secret_file",
            ));
        }
    };
    // The message never repeats the text: it may be most of a secret.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| invalid(&key, "is not base64 (as from `keymgr -t` or `tsig-keygen`)"))?;
    if bytes.is_empty() {
        return Err(invalid(&key, "is empty"));
    }
    Ok(bytes)
}

/// The key named `name` (a `[[tsig]]` reference from another section), or an error
/// naming `key` (that reference).
pub(super) fn reference(keys: &[TsigKey], key: &str, name: &str) -> Result<Name, ConfigError> {
    let parsed = Name::from_text(name).map_err(|e| invalid(key, format!("{name:?}: {e}")))?;
    match keys.iter().find(|k| k.name.eq_ignore_case(&parsed)) {
        Some(k) => Ok(k.name.clone()),
        None => Err(invalid(key, format!("no [[tsig]] is named {parsed}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_wire_names_match_any_case() {
        let a = TsigAlgorithm::HmacSha512;
        assert_eq!(TsigAlgorithm::from_wire(a.wire_name()), Some(a));
        assert_eq!(
            TsigAlgorithm::from_wire(b"\x0bHMAC-SHA256\x00"),
            Some(TsigAlgorithm::HmacSha256)
        );
        assert_eq!(TsigAlgorithm::from_wire(b"\x0bhmac-sha256"), None);
        assert_eq!(
            TsigAlgorithm::from_wire(b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00"),
            None
        );
    }

    #[test]
    fn debug_keeps_the_secret_out() {
        let k = TsigKey {
            name: Name::from_text("k.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"top-secret".to_vec(),
        };
        let shown = format!("{k:?}");
        assert!(!shown.contains("116") && !shown.contains("top"), "{shown}");
        assert!(shown.contains("<10 bytes>"), "{shown}");
    }
}
