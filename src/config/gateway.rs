//! `[[gateway]]`: where PSTN numbers go (SPEC §3, §10.5, §10.24).
//!
//! Owns: the section as written, prefixes (`+` and digits, each once), and the URI
//! templates (`{e164}`, `{digits}`; a sip: or sips: URI once filled in).
//!
//! Must not touch: which gateway a number uses (`resolve::gateway` chooses).

use super::{ConfigError, invalid};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    prefix: String,
    uris: Vec<String>,
}

/// A PSTN gateway: longest `prefix` wins; `uris` are templates with `{e164}`/`{digits}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub prefix: String,
    pub uris: Vec<String>,
}

impl GatewayConfig {
    /// `[[gateway]]`: each gateway in order, its prefix, URIs, and that no earlier one
    /// has the same prefix.
    pub(super) fn from_raw_list(raw: &[RawGateway]) -> Result<Vec<GatewayConfig>, ConfigError> {
        let mut gateways = Vec::new();
        for (i, g) in raw.iter().enumerate() {
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
        Ok(gateways)
    }
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
