//! Whether calls can use a route: the admin API's question to the router about one
//! record, asked with the enumservices in force now (`enum.services` as of start or the
//! last SIGHUP), and what the API does with the answer ([`usable`]).
//!
//! Routes calls can never use, by the router's own rule, are refused naming the field
//! at fault: flags other than `u` or empty (`routes[0].flags`); a result URI its service
//! does not take (`routes[0].uri`, `.pstn`, or `.regexp` when its result is literal); a
//! service not in `enum.services` (the field the service came from), except that when
//! the body names the `service` itself the route is kept for other ENUM clients and the
//! answer warns.
//!
//! Owns: how the API answers for such a route (the field named, the error or warning
//! text), and nothing of the rule itself: [`crate::resolve::ddds::Services::judge`] is the
//! rule DDDS applies to each record (flags, service matching with its case, subtypes,
//! compound `E2U+a+b` fields and legacy forms, and the scheme of a terminal's result),
//! so the admin API and SIP never disagree.
//!
//! Must not touch: the zones, the store, or the routing plan (it only reads a snapshot).

use super::problem::{FieldError, field_at};
use crate::naptr::NaptrRef;
use crate::naptr::route::{Route, service_of};
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

/// Why the router would never use a NAPTR record (wire rdata) for calls, given the
/// terminal's result URI when it is known ([`Routed::judge`]).
pub type Judge<'a> = dyn FnMut(&[u8], Option<&str>) -> Result<(), Unusable> + 'a;

/// Whether calls can use `route`, encoded as `rdata`, by the router's own rule:
/// `Ok(None)` when they can. When its service is not routed here: a warning
/// (`Ok(Some)`) if the body named the service (a record kept for other ENUM clients),
/// else an error naming the field the service came from (`uri` or `pstn`). Any other
/// reason (flags, a result URI the service does not take) is an error naming its
/// field whatever the body named; `at` names the route (`routes[0]`, empty for a CSV
/// row).
pub fn usable(
    route: &Route,
    rdata: &[u8],
    at: &str,
    judge: &mut Judge<'_>,
) -> Result<Option<String>, FieldError> {
    let result = route.known_result();
    let why = match judge(rdata, result.as_deref()) {
        Ok(()) => return Ok(None),
        Err(why) => why,
    };
    let service = service_of(rdata).unwrap_or_default();
    let unrouted = matches!(why, Unusable::Unrouted | Unusable::NotEnumservice);
    if unrouted && route.service.is_some() {
        return Ok(Some(format!(
            "{}: {service} is not in enum.services: kept in the zone for other ENUM clients, never used to route calls",
            field_at(at, "service")
        )));
    }
    Err(refusal(route, why, at, &service, result.as_deref()))
}

/// The error for a route the router's rule refused (`why`), naming the field that
/// made it unusable; `result` as [`Route::known_result`] gave it.
fn refusal(
    route: &Route,
    why: Unusable,
    at: &str,
    service: &str,
    result: Option<&str>,
) -> FieldError {
    let from = route.form();
    let field = |name: &str| field_at(at, name);
    match why {
        Unusable::Unrouted | Unusable::NotEnumservice => FieldError::new(
            field(if from == "regexp" { "service" } else { from }),
            format!(
                "{service} is not in enum.services, so calls would never use this route; \
                 to keep it in the zone for other ENUM clients only, give \"service\": \"{service}\""
            ),
        ),
        Unusable::Flags => FieldError::new(
            field("flags"),
            format!(
                "{:?} is neither \"u\" (a URI) nor \"\" (a non-terminal), so calls would never use this route",
                route.flags.as_deref().unwrap_or_default()
            ),
        ),
        Unusable::Scheme(takes) => FieldError::new(
            field(from),
            format!(
                "{service} takes {takes} URIs, not {}, so calls would never use this route",
                result_shown(route, result)
            ),
        ),
        Unusable::NotUri => FieldError::new(
            field(from),
            format!("{} is not a URI calls can use", result_shown(route, result)),
        ),
        Unusable::RegexpAndReplacement | Unusable::NoRegexp | Unusable::NoTarget => {
            FieldError::new(
                field("regexp"),
                "calls would never use this route: a terminal (\"u\") route needs a regexp, a non-terminal one a regexp or replacement",
            )
        }
    }
}

/// The result as an error message shows it.
fn result_shown(route: &Route, result: Option<&str>) -> String {
    match (route.pstn.is_some(), result) {
        (true, _) => "the tel: URIs of a \"pstn\" route".into(),
        (false, Some(r)) => format!("{r:?}"),
        (false, None) => "its result".into(),
    }
}

/// Judges for tests: [`judges::all`] lets every route through, [`judges::sip_only`] is
/// the router's rule with `enum.services = ["E2U+sip"]`.
#[cfg(test)]
pub(super) mod judges {
    use super::*;

    /// Lets every route through.
    pub fn all(_: &[u8], _: Option<&str>) -> Result<(), Unusable> {
        Ok(())
    }

    /// The router's rule with `enum.services = ["E2U+sip"]`.
    pub fn sip_only(rd: &[u8], result: Option<&str>) -> Result<(), Unusable> {
        let services = crate::resolve::ddds::Services::new(&["E2U+sip".to_string()]);
        NaptrRef::parse(rd).map_or(Ok(()), |n| services.judge(&n, result).map(|_| ()))
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
