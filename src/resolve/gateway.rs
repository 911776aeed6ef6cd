//! PSTN gateways: longest-prefix choice and URI templates (SPEC §3 `[[gateway]]`,
//! §10.5, §10.24).
//!
//! Must not touch: when a gateway is used (DDDS and the router decide that).

use crate::config::GatewayConfig;

/// Configured gateways, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct Gateways {
    list: Vec<GatewayConfig>,
}

impl Gateways {
    pub fn new(configured: &[GatewayConfig]) -> Self {
        let mut list = configured.to_vec();
        // Stable: equal lengths cannot happen (config rejects duplicate prefixes).
        list.sort_by_key(|g| std::cmp::Reverse(g.prefix.len()));
        Gateways { list }
    }

    /// The gateway whose prefix is the longest prefix of `e164` (`+` and digits).
    pub fn find(&self, e164: &str) -> Option<&GatewayConfig> {
        self.list
            .iter()
            .find(|g| e164.starts_with(g.prefix.as_str()))
    }

    /// Fills a URI template: `{e164}` is the number with `+`, `{digits}` without; the
    /// tel result's number-portability parameters (`;npdi;rn=…`, RFC 4694) follow the
    /// placeholder's value in the user part.
    pub fn expand(template: &str, e164: &str, np_params: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_and_templates() {
        let g = Gateways::new(&[
            GatewayConfig {
                prefix: "+".into(),
                uris: vec!["sip:{e164}@any.example;user=phone".into()],
            },
            GatewayConfig {
                prefix: "+44".into(),
                uris: vec!["sip:{digits}@uk.example".into()],
            },
        ]);
        assert_eq!(g.find("+441632960001").unwrap().prefix, "+44");
        assert_eq!(g.find("+15550100").unwrap().prefix, "+");
        assert_eq!(
            Gateways::expand(
                "sip:{e164}@gw;user=phone",
                "+441632960999",
                ";npdi;rn=+441632000000"
            ),
            "sip:+441632960999;npdi;rn=+441632000000@gw;user=phone"
        );
        assert_eq!(
            Gateways::expand("sip:{digits}@gw", "+4416", ""),
            "sip:4416@gw"
        );
    }
}
