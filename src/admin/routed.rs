//! Whether calls can use a route: the admin API's question to the router about a
//! record's service field, asked with the enumservices in force now (`enum.services`
//! as of start or the last SIGHUP).
//!
//! Owns: nothing of the rule itself: [`crate::resolve::ddds::Services::routes`] is the router's own service
//! rule, the one DDDS applies, so the admin API and SIP never disagree about matching
//! (case, subtypes, compound `E2U+a+b` fields, legacy forms).
//!
//! Must not touch: the zones, the store, or the routing plan (it only reads a snapshot).

use crate::naptr::NaptrRef;
use crate::resolve::{Router, RoutingPlan};
use std::sync::Arc;

/// The routing plan of one moment (one admin request asks one plan throughout).
pub struct Routed {
    plan: Arc<RoutingPlan>,
}

impl Routed {
    /// With the services the router uses now.
    pub fn now(router: &Router) -> Routed {
        Routed {
            plan: Arc::clone(&router.plan()),
        }
    }

    /// Whether the router would consider `rdata` (a NAPTR record in wire form) for calls
    /// as far as its service field goes. Records that do not parse are left to the
    /// validation that rejects them (true here).
    pub fn routes(&self, rdata: &[u8]) -> bool {
        let Some(n) = NaptrRef::parse(rdata) else {
            return true;
        };
        let terminal = n.flags.eq_ignore_ascii_case(b"u");
        self.plan.services.routes(terminal, n.services)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::naptr;
    use crate::zone::name::Name;

    fn routed(services: &[&str]) -> Routed {
        let mut c = Config::builtin();
        c.enum_.services = services.iter().map(|s| s.to_string()).collect();
        c.enum_.suffixes.clear();
        Routed {
            plan: Arc::new(RoutingPlan::from_config(&c)),
        }
    }

    fn record(flags: &str, service: &str) -> Vec<u8> {
        let mut rd = Vec::new();
        naptr::encode(
            100,
            10,
            flags.as_bytes(),
            service.as_bytes(),
            b"!^.*$!sip:a@b!",
            &Name::root(),
            &mut rd,
        );
        rd
    }

    #[test]
    fn matching_is_the_routers() {
        let r = routed(&["E2U+sip", "E2U+pstn:tel"]);
        for (service, want) in [
            ("E2U+sip", true),
            ("e2u+SIP", true),
            ("E2U+web:https+sip", true),
            ("E2U+pstn:tel", true),
            ("E2U+pstn:sip", false),
            ("E2U+web:https", false),
            ("E2U+pstn", false),
            ("sip+E2U", true),
        ] {
            assert_eq!(r.routes(&record("u", service)), want, "{service}");
        }
        // A non-terminal with an empty service field is followed by the router.
        assert!(r.routes(&record("", "")));
        assert!(!r.routes(&record("", "E2U+web:http")));
    }
}
