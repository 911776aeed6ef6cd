//! Whether calls can use a route: the admin API's question to the router about a
//! record's service field, asked with the enumservices in force now (`enum.services`
//! as of start or the last SIGHUP).
//!
//! Owns: the answer to "would the router's DDDS consider this record for calls, as far
//! as its service field goes". It does not decide that itself: it runs the router's own
//! DDDS ([`Ddds::evaluate`]) on a probe record with the route's flags and service field
//! and reads whether DDDS skipped it for its service, so the admin API and SIP never
//! disagree about matching (case, subtypes, compound `E2U+a+b` fields, legacy forms).
//! Answers are kept per (flags, service) for the life of one request, so a bulk import
//! asks DDDS once per distinct service, not once per line.
//!
//! Must not touch: the zones, the store, or the routing plan (it only reads a snapshot).

use crate::naptr::{self, NaptrRef};
use crate::resolve::ddds::{ContactFilter, Ddds, NaptrSource, SkipReason, SourceAnswer};
use crate::resolve::{Router, RoutingPlan};
use crate::zone::name::Name;
use std::collections::HashMap;
use std::sync::Arc;

/// The routing plan of one moment and what it said about each service field so far.
pub struct Routed {
    plan: Arc<RoutingPlan>,
    known: HashMap<Vec<u8>, bool>,
    /// Key being looked up: flags, a 0xff separator (never in a field), service.
    key: Vec<u8>,
}

/// A source of non-terminal targets that has none: the probe is judged before DDDS
/// would follow anything.
struct NoTargets;

impl<'a> NaptrSource<'a> for NoTargets {
    fn naptr(&mut self, _: &Name) -> SourceAnswer<'a> {
        SourceAnswer::Empty(0)
    }
}

impl Routed {
    /// With the services the router uses now.
    pub fn now(router: &Router) -> Routed {
        Routed {
            plan: Arc::clone(&router.plan()),
            known: HashMap::new(),
            key: Vec::new(),
        }
    }

    /// Whether the router would consider `rdata` (a NAPTR record in wire form) for calls
    /// as far as its service field goes. Records that do not parse are left to the
    /// validation that rejects them (true here).
    pub fn routes(&mut self, rdata: &[u8]) -> bool {
        let Some(n) = NaptrRef::parse(rdata) else {
            return true;
        };
        self.key.clear();
        self.key.extend_from_slice(n.flags);
        self.key.push(0xff);
        self.key.extend_from_slice(n.services);
        if let Some(known) = self.known.get(self.key.as_slice()) {
            return *known;
        }
        let answer = self.probe(n.flags, n.services);
        self.known.insert(self.key.clone(), answer);
        answer
    }

    /// Runs DDDS on a record with these flags and service field and no regexp or
    /// replacement: DDDS checks the service before it looks at either, so the probe is
    /// skipped for its service exactly when a real record would be.
    fn probe(&self, flags: &[u8], services: &[u8]) -> bool {
        let mut rdata = Vec::with_capacity(8 + flags.len() + services.len());
        naptr::encode(0, 0, flags, services, b"", &Name::root(), &mut rdata);
        let plan = &self.plan;
        let mut ddds = Ddds::new(
            "+0",
            &plan.services,
            &plan.gateways,
            ContactFilter::default(),
            false,
        );
        let mut contacts = Vec::new();
        ddds.evaluate(&Name::root(), &[&rdata], 0, &mut NoTargets, &mut contacts);
        ddds.skips[SkipReason::Service as usize] == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn routed(services: &[&str]) -> Routed {
        let mut c = Config::builtin();
        c.enum_.services = services.iter().map(|s| s.to_string()).collect();
        c.enum_.suffixes.clear();
        Routed {
            plan: Arc::new(RoutingPlan::from_config(&c)),
            known: HashMap::new(),
            key: Vec::new(),
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
        let mut r = routed(&["E2U+sip", "E2U+pstn:tel"]);
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
            // Asked again: the kept answer is the same.
            assert_eq!(r.routes(&record("u", service)), want, "{service} again");
        }
        // A non-terminal with an empty service field is followed by the router.
        assert!(r.routes(&record("", "")));
        assert!(!r.routes(&record("", "E2U+web:http")));
    }
}
