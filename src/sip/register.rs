//! REGISTER (RFC 3261 §10.3) as the registrar answers it, in the RFC's order: the AOR
//! from To (steps 1 and 5: a served domain, else 404; the domain is no secret), digest
//! authentication (steps 3–4: 401 with one challenge per algorithm, 403 once a source
//! is throttled), then the Contact and Expires values (steps 6–7: 400 when they cannot
//! be read, 403 for far more contacts than `registrar.max_bindings`, 423 for an interval
//! too brief) — so nothing of an unauthenticated request is parsed beyond its
//! credentials. Then a query is answered from memory, or the change goes to the
//! registrar's writer once the transport holds its transaction ([`Outcome::Register`]),
//! and its result becomes the 200 listing the bindings (step 8), or 500/403/503.
//!
//! Owns: reading Contact, Expires and Authorization from a REGISTER, and which answer
//! it gets. Must not touch: the answer's bytes (`sip::response`), sockets and
//! transactions (`sip::transport`, `sip::transaction`), what bindings and digests are
//! (`registrar`).

use super::dialog::Dialog;
use super::message::{self, Request};
use super::redirect::{Handler, Outcome};
use super::response;
use super::transaction::PendingRequest;
use crate::registrar::{
    self, Binding, ContactRequest, Contacts, Outcome as Counted, Refused, Registrar, Update,
    Verdict,
};
use crate::resolve::aor;
use std::net::SocketAddr;

/// The longest Contact URI taken.
const MAX_CONTACT_URI: usize = 2048;

/// What was wrong with a REGISTER's Contact or Expires values.
enum ContactError {
    /// 400 with this reason.
    Bad(&'static str),
    /// More contacts than `registrar.max_bindings`: 403.
    TooMany,
    /// A non-zero expiry below `registrar.min_expires_s`: 423.
    TooBrief,
}

impl<'r> Handler<'r> {
    /// The answer to a REGISTER that passed the common checks, with the registrar on:
    /// the AOR (404 for a domain not served), authentication, then the contacts.
    pub(super) fn register(
        &mut self,
        reg: &'r Registrar,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
    ) -> Outcome<'_> {
        let Some(aor) = self.aor_of(reg, d) else {
            return self.refuse(reg, req, d, source, 404, "Not Found", Counted::NotFound);
        };
        let now = registrar::unix_now();
        match self.authenticate(reg, req, &aor, source, now) {
            Verdict::Authorized => {}
            Verdict::Challenge { stale } => {
                reg.count(Counted::Challenged);
                return self.challenge(reg, req, d, source, stale, now);
            }
            Verdict::Failed => {
                reg.count(Counted::AuthFailed);
                return self.challenge(reg, req, d, source, false, now);
            }
            Verdict::Throttled => {
                return self.refuse(reg, req, d, source, 403, "Forbidden", Counted::Throttled);
            }
            Verdict::Malformed(why) => {
                return self.refuse(reg, req, d, source, 400, why, Counted::BadRequest);
            }
        }
        let contacts = match read_contacts(req, reg) {
            Ok(c) => c,
            Err(e) => return self.contact_error(reg, req, d, source, e),
        };
        if contacts == Contacts::Query {
            reg.count(Counted::Ok);
            let bindings = reg.location.get(&aor);
            return self.reply(req, d, source, 200, "OK", move |o, _| {
                response::write_bindings(o, &bindings, now)
            });
        }
        let cseq = d
            .cseq
            .and_then(|c| c.split_ascii_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let update = Update {
            aor,
            call_id: d.call_id.unwrap_or("").to_string(),
            cseq,
            contacts,
        };
        Outcome::Register {
            register: self.pending_request(req, d, source),
            update,
        }
    }

    /// The canonical AOR of the To URI, when it is in a served domain (RFC 3261 §10.3
    /// steps 1 and 5).
    fn aor_of(&self, reg: &Registrar, d: &Dialog<'_>) -> Option<String> {
        let to_uri = d.to.map(addr_uri)?;
        let (mut aor, mut scratch) = (String::new(), String::new());
        let plan = self.router.plan();
        let domains = &reg.config.domains;
        aor::of_registration(to_uri, &plan.dialplan, domains, &mut aor, &mut scratch).ok()?;
        Some(aor)
    }

    /// Steps 3 and 4: the request's credentials for `aor`.
    fn authenticate(
        &self,
        reg: &Registrar,
        req: &Request<'_>,
        aor: &str,
        source: SocketAddr,
        now: u64,
    ) -> Verdict {
        let authorizations: Vec<_> = req
            .all_headers()
            .filter(|h| h.raw_name.eq_ignore_ascii_case("Authorization"))
            .map(|h| h.value())
            .collect();
        let values = authorizations.iter().map(|v| &**v);
        reg.authenticate(source.ip(), aor, req.method, values, now)
    }

    /// The answer to contacts that cannot be taken (steps 6 and 7).
    fn contact_error(
        &mut self,
        reg: &Registrar,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        e: ContactError,
    ) -> Outcome<'_> {
        match e {
            ContactError::Bad(why) => {
                self.refuse(reg, req, d, source, 400, why, Counted::BadRequest)
            }
            ContactError::TooMany => self.refuse(
                reg,
                req,
                d,
                source,
                403,
                "Too many bindings",
                Counted::BadRequest,
            ),
            ContactError::TooBrief => {
                reg.count(Counted::TooBrief);
                let min = reg.config.min_expires_s;
                self.reply(req, d, source, 423, "Interval Too Brief", move |o, _| {
                    response::write_min_expires(o, min)
                })
            }
        }
    }

    /// A counted answer without state.
    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        reg: &Registrar,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        status: u16,
        reason: &str,
        counted: Counted,
    ) -> Outcome<'_> {
        reg.count(counted);
        self.reply(req, d, source, status, reason, |_, _| {})
    }

    /// 401 with one fresh challenge per configured algorithm.
    fn challenge(
        &mut self,
        reg: &Registrar,
        req: &Request<'_>,
        d: &Dialog<'_>,
        source: SocketAddr,
        stale: bool,
        now: u64,
    ) -> Outcome<'_> {
        let mut nonce = String::with_capacity(registrar::digest::NONCE_LEN);
        reg.nonces.make(now, &mut nonce);
        let (realm, algorithms) = (&reg.config.realm, &reg.config.algorithms);
        self.reply(req, d, source, 401, "Unauthorized", |o, _| {
            response::write_challenges(o, realm, &nonce, algorithms, stale)
        })
    }
}

/// The answer to a REGISTER once the registrar's writer has its result: 200 with the
/// bindings, or why nothing changed (`None`: no result in time, or the writer stopped:
/// 500, the change may or may not have been made). Counted in `reg`; returns the bytes
/// and status.
pub(super) fn committed_answer(
    register: &PendingRequest,
    result: Option<Result<Vec<Binding>, Refused>>,
    reg: &Registrar,
) -> (Vec<u8>, u16) {
    let now = registrar::unix_now();
    match result {
        Some(Ok(bindings)) => {
            reg.count(Counted::Ok);
            let bytes =
                register.respond(200, "OK", |o| response::write_bindings(o, &bindings, now));
            (bytes, 200)
        }
        Some(Err(Refused::TooMany)) => {
            reg.count(Counted::BadRequest);
            (register.respond(403, "Too many bindings", |_| {}), 403)
        }
        Some(Err(Refused::OutOfOrder)) => {
            reg.count(Counted::BadRequest);
            let reason = "Server Internal Error: CSeq out of order";
            (register.respond(500, reason, |_| {}), 500)
        }
        Some(Err(Refused::NoUser)) => {
            // Deleted between this REGISTER's authentication and its commit.
            reg.count(Counted::AuthFailed);
            (register.respond(403, "Forbidden", |_| {}), 403)
        }
        Some(Err(Refused::Busy)) => {
            reg.count(Counted::Error);
            (register.unavailable(), 503)
        }
        Some(Err(Refused::Store)) | None => {
            reg.count(Counted::Error);
            let reason = "Server Internal Error: registrar store";
            (register.respond(500, reason, |_| {}), 500)
        }
    }
}

/// The URI of a From/To/Contact value: inside `<…>` for a name-addr, else up to the
/// first `;` (RFC 3261 §20.10: parameters after an addr-spec are the header's).
fn addr_uri(value: &str) -> &str {
    let value = value.trim_ascii();
    if let Some(lt) = value.find('<') {
        let rest = &value[lt + 1..];
        return rest.find('>').map_or(rest, |gt| &rest[..gt]).trim_ascii();
    }
    message::before_params(value).trim_ascii()
}

/// The REGISTER's contacts (RFC 3261 §10.3 step 6 and 7's expiry rules): `Query`
/// without Contact; `RemoveAll` for `*` with `Expires: 0`; else each URI with its q and
/// expiry (its `expires` parameter, else the Expires header, else the default; cut to
/// the maximum; 0 removes).
fn read_contacts(req: &Request<'_>, reg: &Registrar) -> Result<Contacts, ContactError> {
    let cfg = &reg.config;
    let mut expires_header = None;
    let mut list = Vec::new();
    let mut star = false;
    let mut too_brief = false;
    for h in req.all_headers() {
        let name = h.raw_name;
        if name.eq_ignore_ascii_case("Expires") {
            expires_header =
                Some(parse_expires(&h.value()).ok_or(ContactError::Bad("Malformed Expires"))?);
            continue;
        }
        if !(name.eq_ignore_ascii_case("Contact") || name.eq_ignore_ascii_case("m")) {
            continue;
        }
        let value = h.value();
        for part in message::split_commas(&value) {
            if part == "*" {
                star = true;
                continue;
            }
            // Removals beside additions are fine; the list is only bounded here (the
            // registrar judges the bindings that result).
            if list.len() >= contacts_read_at_most(cfg.max_bindings) {
                return Err(ContactError::TooMany);
            }
            let (head, params) = message::head_and_params(part);
            let uri = addr_uri(head);
            if uri.is_empty() || uri.len() > MAX_CONTACT_URI || crate::uri::parse(uri).is_none() {
                return Err(ContactError::Bad("Malformed Contact"));
            }
            let (mut q, mut expires) = (1000, None);
            for (n, v) in params {
                if n.eq_ignore_ascii_case("q") {
                    q = parse_q(v).ok_or(ContactError::Bad("Malformed q in Contact"))?;
                } else if n.eq_ignore_ascii_case("expires") {
                    expires = Some(
                        parse_expires(v)
                            .ok_or(ContactError::Bad("Malformed expires in Contact"))?,
                    );
                }
            }
            list.push((uri.to_string(), q, expires));
        }
    }
    if star {
        // Step 6: `*` only alone and only with Expires: 0.
        if !list.is_empty() || expires_header != Some(0) {
            return Err(ContactError::Bad(
                "Contact * needs Expires: 0 and no other Contact",
            ));
        }
        return Ok(Contacts::RemoveAll);
    }
    if list.is_empty() {
        return Ok(Contacts::Query);
    }
    let mut contacts = Vec::with_capacity(list.len());
    for (uri, q, expires) in list {
        let asked = expires
            .or(expires_header)
            .unwrap_or(u64::from(cfg.default_expires_s));
        if asked != 0 && asked < u64::from(cfg.min_expires_s) {
            too_brief = true;
        }
        let expires = asked.min(u64::from(cfg.max_expires_s)) as u32;
        contacts.push(ContactRequest { uri, q, expires });
    }
    if too_brief {
        return Err(ContactError::TooBrief);
    }
    Ok(Contacts::Set(contacts))
}

/// How many Contact values one REGISTER may carry: every binding removed and as many
/// added, and some slack.
fn contacts_read_at_most(max_bindings: usize) -> usize {
    2 * max_bindings + 10
}

/// delta-seconds (RFC 3261 §20.19): digits; values past 2^32-1 are that.
fn parse_expires(v: &str) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .unwrap_or(u64::from(u32::MAX))
            .min(u64::from(u32::MAX)),
    )
}

/// A q-value (RFC 3261 §20.10: `0[.ddd]` or `1[.000]`) in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_and_expiries_read_as_the_rfc_writes_them() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.75"), Some(750));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "", ".5", "0.x", "-0"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
        assert_eq!(parse_expires("3600"), Some(3600));
        assert_eq!(
            parse_expires("99999999999999999999999"),
            Some(u64::from(u32::MAX))
        );
        for bad in ["", "-1", "1h", "0x10"] {
            assert_eq!(parse_expires(bad), None, "{bad}");
        }
        assert_eq!(
            addr_uri("\"A\" <sip:a@b;transport=tcp>;tag=1"),
            "sip:a@b;transport=tcp"
        );
        assert_eq!(addr_uri("sip:a@b;tag=1"), "sip:a@b");
    }
}
