//! PSTN gateways: the longest-prefix choice among the configured ones (SPEC §3
//! `[[gateway]]`, §10.5, §10.24). Their URI templates are parsed and filled in by
//! [`Template`] (`config::gateway`).
//!
//! Must not touch: when a gateway is used (DDDS and the router decide that).

use crate::config::GatewayConfig;
use crate::config::gateway::Template;

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

    /// [`Template::expand`], under the name the router's gateway fallback calls.
    #[inline]
    pub fn expand(template: &Template, e164: &str, np_params: &str) -> String {
        template.expand(e164, np_params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix() {
        let t = |u: &str| Template::parse(u).unwrap();
        let g = Gateways::new(&[
            GatewayConfig {
                prefix: "+".into(),
                uris: vec![t("sip:{e164}@any.example;user=phone")],
            },
            GatewayConfig {
                prefix: "+44".into(),
                uris: vec![t("sip:{digits}@uk.example")],
            },
        ]);
        assert_eq!(g.find("+441632960001").unwrap().prefix, "+44");
        assert_eq!(g.find("+15550100").unwrap().prefix, "+");
    }
}
