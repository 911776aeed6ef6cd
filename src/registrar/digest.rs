//! HTTP digest authentication as SIP uses it (RFC 3261 §22, RFC 7616 with
//! `qop="auth"`, RFC 8760 for SHA-256): HA1 values, the `Authorization` header's
//! parameters, the expected response, and nonces.
//!
//! Nonces carry their own proof: the time they were made, 8 random bytes and an
//! HMAC-SHA-256 of both under a per-process key, so a nonce cannot be forged, its age
//! is read without a table, and a restart makes every old nonce stale (clients answer
//! the new challenge). Which `nc` values a nonce has used is the one thing kept (see
//! `registrar::replay`).
//!
//! Written here rather than taken from a crate: the digest crates on crates.io are HTTP
//! clients' (they compute responses, not verify them against stored HA1s), while the
//! hashes and the HMAC come from `sha2`, `md-5` and `hmac`. Responses are compared in
//! constant time (`subtle`).
//!
//! Must not touch: SIP messages (the caller hands over the header's value and the
//! method), users or bindings.

use crate::config::DigestAlgorithm;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// Bytes of a nonce before encoding: seconds (8), random (8), MAC (16).
const NONCE_BYTES: usize = 32;
/// Its length in unpadded base64url.
pub const NONCE_LEN: usize = 43;

/// Lower-case hex of a digest output (32 bytes at most).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex {
    bytes: [u8; 64],
    len: u8,
}

impl Hex {
    fn of(digest: &[u8]) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 64];
        for (i, b) in digest.iter().take(32).enumerate() {
            bytes[2 * i] = DIGITS[(b >> 4) as usize];
            bytes[2 * i + 1] = DIGITS[(b & 15) as usize];
        }
        Hex {
            bytes,
            len: (digest.len().min(32) * 2) as u8,
        }
    }

    /// Parses lower- or upper-case hex of `alg`'s output length.
    pub fn parse(alg: DigestAlgorithm, text: &str) -> Option<Hex> {
        if text.len() != hex_len(alg) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 64];
        for (i, b) in text.bytes().enumerate() {
            bytes[i] = b.to_ascii_lowercase();
        }
        Some(Hex {
            bytes,
            len: text.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("hex digits")
    }
}

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hex(..)")
    }
}

/// The hex length of `alg`'s output.
pub fn hex_len(alg: DigestAlgorithm) -> usize {
    match alg {
        DigestAlgorithm::Sha256 => 64,
        DigestAlgorithm::Md5 => 32,
    }
}

/// `H(parts joined by ':')` in lower-case hex.
fn h(alg: DigestAlgorithm, parts: &[&[u8]]) -> Hex {
    fn run<D: Digest>(parts: &[&[u8]]) -> Hex {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p);
        }
        Hex::of(&d.finalize())
    }
    match alg {
        DigestAlgorithm::Sha256 => run::<sha2::Sha256>(parts),
        DigestAlgorithm::Md5 => run::<md5::Md5>(parts),
    }
}

/// HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2).
pub fn ha1(alg: DigestAlgorithm, username: &str, realm: &str, password: &str) -> Hex {
    h(
        alg,
        &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
    )
}

/// The parameters of one `Authorization: Digest …` value, borrowed from it (values
/// with backslash escapes are refused: no client sends them in these fields).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub uri: &'a str,
    pub response: &'a str,
    /// `None`: MD5 (RFC 2617's default).
    pub algorithm: Option<&'a str>,
    pub cnonce: &'a str,
    pub qop: &'a str,
    pub nc: &'a str,
}

/// Why an `Authorization` value could not be read (answered 400 with
/// [`CredentialsError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub enum CredentialsError {
    Malformed,
    NotDigest,
    Missing,
}

impl CredentialsError {
    /// The 400's reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            CredentialsError::Malformed => "Malformed Authorization header",
            CredentialsError::NotDigest => "Authorization header is not Digest",
            CredentialsError::Missing => "Authorization header lacks a required parameter",
        }
    }
}

/// Most parameters read from one value: a longer list is malformed.
const MAX_PARAMS: usize = 32;

impl<'a> Credentials<'a> {
    /// Reads `Digest k=v, k="v", …`.
    pub fn parse(value: &'a str) -> Result<Credentials<'a>, CredentialsError> {
        let value = value.trim_ascii();
        let (scheme, mut rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or(CredentialsError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(CredentialsError::NotDigest);
        }
        let mut c = Credentials::default();
        let mut seen = 0;
        loop {
            rest = rest.trim_ascii_start();
            if rest.is_empty() {
                break;
            }
            seen += 1;
            if seen > MAX_PARAMS {
                return Err(CredentialsError::Malformed);
            }
            let eq = rest.find('=').ok_or(CredentialsError::Malformed)?;
            let name = rest[..eq].trim_ascii();
            rest = rest[eq + 1..].trim_ascii_start();
            let v;
            if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"').ok_or(CredentialsError::Malformed)?;
                v = &quoted[..end];
                if v.contains('\\') {
                    return Err(CredentialsError::Malformed);
                }
                rest = &quoted[end + 1..];
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                v = rest[..end].trim_ascii();
                rest = &rest[end..];
            }
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(CredentialsError::Malformed);
            }
            rest = rest.trim_ascii_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.is_empty() {
                return Err(CredentialsError::Malformed);
            }
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => &mut c.username,
                "realm" => &mut c.realm,
                "nonce" => &mut c.nonce,
                "uri" => &mut c.uri,
                "response" => &mut c.response,
                "cnonce" => &mut c.cnonce,
                "qop" => &mut c.qop,
                "nc" => &mut c.nc,
                "algorithm" => {
                    c.algorithm = Some(v);
                    continue;
                }
                _ => continue,
            };
            *slot = v;
        }
        if c.username.is_empty() || c.nonce.is_empty() || c.uri.is_empty() || c.response.is_empty()
        {
            return Err(CredentialsError::Missing);
        }
        Ok(c)
    }

    /// The algorithm named (MD5 when none is); `None` for one not supported.
    pub fn algorithm(&self) -> Option<DigestAlgorithm> {
        match self.algorithm {
            None => Some(DigestAlgorithm::Md5),
            Some(a) => DigestAlgorithm::parse(a),
        }
    }

    /// The nonce count as a number (`qop=auth` only); `None` when missing or not 8 hex
    /// digits.
    pub fn nonce_count(&self) -> Option<u32> {
        if self.nc.len() != 8 {
            return None;
        }
        u32::from_str_radix(self.nc, 16).ok()
    }

    /// Whether `response` is the digest of this request under `ha1` (RFC 7616 §3.4.1,
    /// `qop=auth`), compared in constant time. `method` is the request's.
    pub fn response_matches(&self, alg: DigestAlgorithm, ha1: &Hex, method: &str) -> bool {
        let Some(given) = Hex::parse(alg, self.response) else {
            return false;
        };
        let ha2 = h(alg, &[method.as_bytes(), self.uri.as_bytes()]);
        let expected = h(
            alg,
            &[
                ha1.as_str().as_bytes(),
                self.nonce.as_bytes(),
                self.nc.as_bytes(),
                self.cnonce.as_bytes(),
                self.qop.as_bytes(),
                ha2.as_str().as_bytes(),
            ],
        );
        expected
            .as_str()
            .as_bytes()
            .ct_eq(given.as_str().as_bytes())
            .into()
    }
}

/// What a nonce says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Made by this process within the TTL; the id tells it apart for `nc` tracking.
    Fresh { id: u64, made: u64 },
    /// Made by this process, older than the TTL: answered with `stale=true`.
    Stale,
    /// Not one of ours (forged, mangled, or from before a restart).
    Foreign,
}

/// Makes and checks nonces under one random key.
pub struct Nonces {
    key: [u8; 32],
    ttl_s: u64,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl Nonces {
    /// A new random key; nonces older than `ttl_s` are stale.
    pub fn new(ttl_s: u32) -> Nonces {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the system's random source");
        Nonces {
            key,
            ttl_s: u64::from(ttl_s),
        }
    }

    fn mac(&self, head: &[u8]) -> [u8; 16] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("any key length");
        m.update(head);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A fresh nonce made at `now` (unix seconds), into `out` (cleared first).
    pub fn make(&self, now: u64, out: &mut String) {
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        getrandom::fill(&mut raw[8..16]).expect("the system's random source");
        let mac = self.mac(&raw[..16]);
        raw[16..].copy_from_slice(&mac);
        out.clear();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(raw, out);
    }

    /// What `nonce` is, at `now`.
    pub fn check(&self, nonce: &str, now: u64) -> NonceCheck {
        if nonce.len() != NONCE_LEN {
            return NonceCheck::Foreign;
        }
        let mut raw = [0u8; NONCE_BYTES + 2];
        let Ok(n) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw)
        else {
            return NonceCheck::Foreign;
        };
        if n != NONCE_BYTES {
            return NonceCheck::Foreign;
        }
        let mac = self.mac(&raw[..16]);
        if !bool::from(mac.ct_eq(&raw[16..32])) {
            return NonceCheck::Foreign;
        }
        let made = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        if made > now + 5 || now.saturating_sub(made) > self.ttl_s {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh {
            id: u64::from_be_bytes(raw[8..16].try_into().expect("8 bytes")),
            made,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1's example, with SIP's method and qop=auth.
    #[test]
    fn responses_match_the_rfc_7616_example() {
        let value = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = Credentials::parse(value).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.algorithm(), Some(DigestAlgorithm::Sha256));
        assert_eq!(c.nonce_count(), Some(1));
        let ha1 = ha1(
            DigestAlgorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(c.response_matches(DigestAlgorithm::Sha256, &ha1, "GET"));
        assert!(!c.response_matches(DigestAlgorithm::Sha256, &ha1, "POST"));
        let md5 = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec""#;
        let c = Credentials::parse(md5).unwrap();
        let ha1 = super::ha1(
            DigestAlgorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(c.response_matches(DigestAlgorithm::Md5, &ha1, "GET"));
    }

    #[test]
    fn broken_values_are_refused() {
        for bad in [
            "Digest",
            "Basic dXNlcjpwYXNz",
            r#"Digest username="a"#,
            r#"Digest username="a" realm="b""#,
            r#"Digest username="a\"b", nonce="n", uri="u", response="r""#,
            r#"Digest =x"#,
            r#"Digest realm="r""#,
        ] {
            assert!(Credentials::parse(bad).is_err(), "{bad}");
        }
        let many = format!("Digest {}", "a=b, ".repeat(40));
        assert!(Credentials::parse(&many).is_err());
    }

    #[test]
    fn nonces_are_ours_fresh_then_stale_and_cannot_be_forged() {
        let n = Nonces::new(300);
        let mut s = String::new();
        n.make(1000, &mut s);
        assert_eq!(s.len(), NONCE_LEN);
        assert!(matches!(
            n.check(&s, 1000),
            NonceCheck::Fresh { made: 1000, .. }
        ));
        assert!(matches!(n.check(&s, 1300), NonceCheck::Fresh { .. }));
        assert_eq!(n.check(&s, 1301), NonceCheck::Stale);
        // Another key (another process, or a forger) is not us.
        assert_eq!(Nonces::new(300).check(&s, 1000), NonceCheck::Foreign);
        let mut forged = s.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            n.check(std::str::from_utf8(&forged).unwrap(), 1000),
            NonceCheck::Foreign
        );
        assert_eq!(n.check("short", 1000), NonceCheck::Foreign);
        assert_eq!(n.check(&"x".repeat(10_000), 1000), NonceCheck::Foreign);
    }
}
