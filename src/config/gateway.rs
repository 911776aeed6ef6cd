//! `[[gateway]]`: where PSTN numbers go (SPEC §3, §10.5, §10.24).
//!
//! Owns: the section as written, prefixes (`+` and digits, each once), and the URI
//! template ([`Template`]: parsing and checking it, a sip: or sips: URI once filled in,
//! and filling in `{e164}`/`{digits}` for a number, which DDDS and the router's gateway
//! fallback call).
//!
//! Must not touch: which gateway a number uses (`resolve::gateway` chooses) or when a
//! gateway is used (DDDS and the router decide that).

use super::value::{ConfigError, invalid};
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
    pub uris: Vec<Template>,
}

/// A gateway URI template: `{e164}` and `{digits}` placeholders in what is a sip: or
/// sips: URI once they are filled in. Made only by [`Template::parse`]; kept as written,
/// and filled in by [`Template::expand`] with one pass over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// Checks a template: only `{e164}` and `{digits}` placeholders, each closed, and a
    /// sip: or sips: URI once filled in with a sample number.
    pub fn parse(u: &str) -> Result<Template, String> {
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
        Ok(Template(u.to_string()))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Fills the template in: `{e164}` is the number with `+`, `{digits}` without; the
    /// tel result's number-portability parameters (`;npdi;rn=…`, RFC 4694) follow the
    /// placeholder's value in the user part.
    #[inline]
    pub fn expand(&self, e164: &str, np_params: &str) -> String {
        let template = self.0.as_str();
        let mut out = String::with_capacity(template.len() + e164.len() + np_params.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            if let Some(tail) = after.strip_prefix("{e164}") {
                out.push_str(e164);
                out.push_str(np_params);
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("{digits}") {
                out.push_str(e164.strip_prefix('+').unwrap_or(e164));
                out.push_str(np_params);
                rest = tail;
            } else {
                out.push('{');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        out
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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
            let mut uris = Vec::with_capacity(g.uris.len());
            for (j, u) in g.uris.iter().enumerate() {
                uris.push(
                    Template::parse(u)
                        .map_err(|m| invalid(format!("gateway[{i}].uris[{j}]"), m))?,
                );
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
                uris,
            });
        }
        Ok(gateways)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_the_number() {
        let t = |u: &str| Template::parse(u).unwrap();
        assert_eq!(
            t("sip:{e164}@gw;user=phone").expand("+441632960999", ";npdi;rn=+441632000000"),
            "sip:+441632960999;npdi;rn=+441632000000@gw;user=phone"
        );
        assert_eq!(t("sip:{digits}@gw").expand("+4416", ""), "sip:4416@gw");
    }
}
