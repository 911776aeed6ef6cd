//! The routing inputs taken from the configuration: dial plan, enumservices, suffixes,
//! gateways, contact limit, the upstream resolver and the failure policy. Built once per
//! configuration load and swapped whole into the router on reload.
//!
//! Must not touch: zones or decisions.

use super::ddds::Services;
use super::gateway::Gateways;
use super::upstream;
use crate::config::{Config, DialplanConfig};
use crate::name::Name;
use std::sync::Arc;

/// The routing inputs taken from the configuration.
pub struct RoutingPlan {
    pub dialplan: DialplanConfig,
    pub services: Services,
    /// `enum.suffixes` with their presentation form.
    pub suffixes: Vec<(Name, Arc<str>)>,
    pub gateways: Gateways,
    pub max_contacts: usize,
    /// The upstream resolver, when there is a configured suffix to ask (built from
    /// `enum.nameservers` and `enum.timeout_ms`); `None` when none can be built.
    pub upstream: Option<Arc<upstream::Upstream>>,
    pub on_failure: crate::config::OnFailure,
}

impl RoutingPlan {
    pub fn from_config(c: &Config) -> Self {
        RoutingPlan {
            dialplan: c.dialplan.clone(),
            services: Services::new(&c.enum_.services),
            suffixes: c
                .enum_
                .suffixes
                .iter()
                .map(|n| (n.clone(), n.to_string().into()))
                .collect(),
            gateways: Gateways::new(&c.gateways),
            max_contacts: c.sip.max_contacts,
            upstream: if c.enum_.suffixes.is_empty() {
                None
            } else {
                match upstream::Upstream::new(
                    &c.enum_.nameservers,
                    std::time::Duration::from_millis(c.enum_.timeout_ms.max(1)),
                ) {
                    Ok(u) => Some(Arc::new(u)),
                    Err(e) => {
                        tracing::warn!("upstream ENUM disabled: {e}");
                        None
                    }
                }
            },
            on_failure: c.enum_.on_failure,
        }
    }
}
