//! Which transfer requests and NOTIFYs TSIG lets through (RFC 8945, SPEC §12).
//!
//! Owns: the policy — a transfer request (AXFR, IXFR) must be signed with
//! `dns.transfer_key` when one is set, a NOTIFY for a secondary zone with its zone's
//! `key`; any request signed with a configured key (a secondary's SOA query, too) is
//! checked and its answer signed even where no key is required — and the verdict,
//! [`Gate`], that `answer` acts on.
//!
//! Must not touch: the MAC arithmetic (`dns::tsig`), answers (`dns::answer`) or who may
//! transfer by address (`dns.allow_transfer`, in `answer`). An unsigned ordinary query
//! costs two comparisons here.

use super::tsig::{self, Refusal, TsigError, Verified};
use super::wire::{OPCODE_NOTIFY, Query, TYPE_AXFR, TYPE_IXFR};
use crate::config::TsigKey;
use crate::name::Name;

/// What TSIG says about one request.
pub enum Gate<'k> {
    /// Not a request TSIG applies to, or unsigned where no key is required.
    Open,
    /// Signed, and the signature checked out: the answer is signed with the same key.
    Signed(Verified<'k>),
    /// Unsigned where a key is required: REFUSED.
    Unsigned,
    /// Refused by TSIG: answered with [`tsig::error_answer`] (NOTAUTH and the error).
    Refused(Refusal<'k>),
}

impl Gate<'_> {
    /// The key and request MAC an answer is signed with.
    pub fn signer(&self) -> Option<(&TsigKey, &[u8])> {
        match self {
            Gate::Signed(v) => Some((v.key, &v.request_mac)),
            _ => None,
        }
    }
}

/// The keys and who needs which.
#[derive(Default)]
pub struct Keys {
    /// Every `[[tsig]]` key.
    pub all: Vec<TsigKey>,
    /// `dns.transfer_key`: the key transfers out must be signed with.
    pub transfer: Option<Name>,
}

impl Keys {
    /// The verdict on `q`. `notify_key` names the key a NOTIFY for this zone must carry
    /// (its secondary zone's `key`), when it is a NOTIFY.
    pub fn gate<'k>(&'k self, q: &Query<'_>, notify_key: Option<&Name>, now: u64) -> Gate<'k> {
        let transfer = q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR;
        let required = match (q.opcode, transfer) {
            (OPCODE_NOTIFY, _) => notify_key,
            (_, true) => self.transfer.as_ref(),
            // Any other signed query (a secondary's SOA check) is checked and its answer
            // signed; an unsigned one costs nothing more.
            _ if q.signed => None,
            _ => return Gate::Open,
        };
        match tsig::verify_request(&self.all, q.packet, now) {
            Err(refusal) => Gate::Refused(refusal),
            Ok(None) if required.is_some() => Gate::Unsigned,
            Ok(None) => Gate::Open,
            Ok(Some(v)) if required.is_some_and(|k| !k.eq_ignore_case(&v.key.name)) => {
                // Authentic, but with a key this request may not use.
                Gate::Refused(Refusal::Unsigned(TsigError::BadKey))
            }
            Ok(Some(v)) => Gate::Signed(v),
        }
    }
}
