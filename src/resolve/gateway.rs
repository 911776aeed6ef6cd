//! PSTN gateways: the longest-prefix choice among the configured ones (SPEC §3
//! `[[gateway]]`, §10.5, §10.24). Their URI templates are parsed and filled in by
//! [`Template`](crate::config::gateway::Template).
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::gateway::Template;

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
