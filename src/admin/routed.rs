//! Whether calls can use a route: the admin API's question to the router about one
//! record, asked with the enumservices in force now (`enum.services` as of start or the
//! last SIGHUP).
//!
//! Owns: nothing of the rule itself: [`crate::resolve::ddds::Services::judge`] is the
//! rule DDDS applies to each record (flags, service matching with its case, subtypes,
//! compound `E2U+a+b` fields and legacy forms, and the scheme of a terminal's result),
//! so the admin API and SIP never disagree.
//!
//! Must not touch: the zones, the store, or the routing plan (it only reads a snapshot).

use crate::naptr::NaptrRef;
use crate::resolve::ddds::Unusable;
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

    /// Why the router would never use `rdata` (a NAPTR record in wire form) for calls,
    /// if it would not; `result` is the terminal's result URI when the route makes it
    /// known (it is not judged otherwise). Records that do not parse are left to the
    /// validation that rejects them (`Ok` here).
    pub fn judge(&self, rdata: &[u8], result: Option<&str>) -> Result<(), Unusable> {
        let Some(n) = NaptrRef::parse(rdata) else {
            return Ok(());
        };
        self.plan.services.judge(&n, result).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::name::Name;
    use crate::naptr;

    fn routed(services: &[&str]) -> Routed {
        let mut c = Config::builtin();
        c.enum_.services = services
            .iter()
            .map(|s| crate::naptr::enumservice::Enumservice::parse(s).unwrap())
            .collect();
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
            let got = r.judge(&record("u", service), None);
            assert_eq!(got.is_ok(), want, "{service}: {got:?}");
        }
        // A non-terminal with an empty service field is followed by the router.
        assert_eq!(r.judge(&record("", ""), None), Ok(()));
        assert_eq!(
            r.judge(&record("", "E2U+web:http"), None),
            Err(Unusable::Unrouted)
        );
    }

    #[test]
    fn flags_and_result_schemes_are_the_routers() {
        let r = routed(&["E2U+sip", "E2U+pstn:tel"]);
        for flags in ["s", "p", "x", "uu"] {
            assert_eq!(
                r.judge(&record(flags, "E2U+sip"), None),
                Err(Unusable::Flags),
                "{flags}"
            );
        }
        assert_eq!(r.judge(&record("U", "E2U+sip"), Some("sip:a@b")), Ok(()));
        let sip = r.judge(&record("u", "E2U+sip"), Some("https://example.net/"));
        let Err(Unusable::Scheme(takes)) = sip else {
            panic!("{sip:?}");
        };
        assert_eq!(takes.to_string(), "sip: or sips:");
        let tel = r.judge(&record("u", "E2U+pstn:tel"), Some("sip:a@b.example"));
        let Err(Unusable::Scheme(takes)) = tel else {
            panic!("{tel:?}");
        };
        assert_eq!(takes.to_string(), "tel:");
        // A compound field fits when any service it matched takes the scheme.
        let both = record("u", "E2U+sip+pstn:tel");
        assert_eq!(r.judge(&both, Some("tel:+441632960001")), Ok(()));
        assert_eq!(r.judge(&both, Some("sip:a@b")), Ok(()));
        assert_eq!(r.judge(&both, Some("no uri")), Err(Unusable::NotUri));
        // A non-terminal's result is a domain name, not judged as a URI.
        assert_eq!(r.judge(&record("", "E2U+sip"), Some("https://x/")), Ok(()));
    }
}
