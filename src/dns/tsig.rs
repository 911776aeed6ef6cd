//! TSIG (RFC 8945): signing DNS messages held as bytes and verifying signed ones.
//!
//! Owns: finding the TSIG record at the end of a message ([`find`]), the MAC over a
//! message (RFC 8945 §4.3: request MAC, the message with its original ID and the
//! ARCOUNT it had before signing, the TSIG variables or, inside a multi-message answer,
//! the timers only), the checks a receiver makes in the RFC's order (key, MAC, time,
//! truncation) and the answer a refused request gets ([`error_answer`]).
//!
//! Both sides, as the rest of `dns` uses them:
//!
//! - serving: [`verify_request`] on a transfer request gives the key and request MAC
//!   (or a [`Refusal`] to answer with [`error_answer`]); a single answer is signed with
//!   [`sign_response`], an AXFR/IXFR stream message by message with [`StreamSigner`].
//!   Leave [`record_len`] bytes free in a message that is to be signed.
//! - asking (a secondary, NOTIFY out): [`sign_request`] returns the request MAC; a
//!   single answer is checked with [`verify_response`], a transfer with
//!   [`StreamVerifier`] (every message, then `finish`).
//!
//! Policy where the RFC leaves a choice: MACs are always full length; a truncated MAC
//! that verifies is refused with BADTRUNC (RFC 8945 §5.2.4), one shorter than the RFC's
//! minimum or longer than the hash is malformed (FORMERR, §5.2.2.1). Fudge is 300 s.
//! We sign every message of a stream; we accept up to 99 unsigned messages in a row
//! between signed ones, the first and last signed (§5.3.1).
//!
//! Must not touch: sockets, which requests need a key (the callers decide from the
//! config), or the key material's source (`config::tsig`).
//!
//! Why not hickory-proto's TSIG: it signs and verifies hickory `Message` values, while
//! the listener signs answers it has already written as bytes (AXFR/IXFR messages of up
//! to 64 KiB copied from the index), and decoding them into hickory records only to
//! encode them again is the cost the wire code exists to avoid. Here a MAC is computed
//! over slices of the message in place, and hostile input is read with bounds checks
//! only: no panic, nothing allocated beyond a name of at most 255 bytes and a MAC.

use crate::config::{TsigAlgorithm, TsigKey};
use crate::name::Name;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

/// The TSIG record type.
pub use super::wire::TYPE_TSIG;
/// The rcode of a TSIG error answer (RFC 8945 §5.2).
pub const RCODE_NOTAUTH: u8 = 9;
const RCODE_FORMERR: u8 = 1;
const CLASS_ANY: u16 = 255;
/// Seconds of clock difference we allow, and ask peers to allow (RFC 8945 §10: 300).
pub const FUDGE: u16 = 300;
/// Unsigned messages allowed in a row inside a signed stream (RFC 8945 §5.3.1).
const MAX_UNSIGNED_RUN: usize = 99;
const HEADER: usize = 12;

/// The TSIG errors of RFC 8945 §3 that a refused request is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum TsigError {
    BadSig = 16,
    BadKey = 17,
    BadTime = 18,
    BadTrunc = 22,
}

impl TsigError {
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// The name of a TSIG error code as peers report it, for messages and logs.
pub fn error_name(code: u16) -> &'static str {
    match code {
        0 => "NOERROR",
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => "unknown",
    }
}

/// The message's records cannot be walked, or its TSIG record is unreadable or not
/// the last record of the additional section: FORMERR (RFC 8945 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed message or TSIG record")]
pub struct Malformed;

/// The TSIG record at the end of a message, read in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigRecord<'a> {
    /// The key's name (owner of the record), case as sent.
    pub key_name: Name,
    /// The algorithm's name, uncompressed wire form as sent.
    pub algorithm: &'a [u8],
    /// Unix seconds (48 bits on the wire).
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: &'a [u8],
    /// The message ID when it was signed (a forwarder may have changed the header's).
    pub original_id: u16,
    /// A TSIG error code (0, or one of [`TsigError`] in an error answer).
    pub error: u16,
    /// Other Data: the server's time in a BADTIME answer, else empty.
    pub other: &'a [u8],
    /// Offset of the record in the message: the signed part is `msg[..start]`.
    pub start: usize,
}

/// Finds the TSIG record of `msg`: `None` when it has none. Walks every record (the
/// TSIG must be the last of the additional section), so it costs a pass over the
/// message, with no allocation but the key name.
pub fn find(msg: &[u8]) -> Result<Option<TsigRecord<'_>>, Malformed> {
    let count = |at: usize| u16_at(msg, at).map(usize::from).ok_or(Malformed);
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut pos = HEADER;
    for _ in 0..qd {
        pos = skip_name(msg, pos).ok_or(Malformed)? + 4;
    }
    let total = an + ns + ar;
    let mut tsig_at = None;
    for i in 0..total {
        let start = pos;
        let (rtype, next) = skip_record(msg, pos).ok_or(Malformed)?;
        if rtype == TYPE_TSIG {
            if i + 1 != total || i < an + ns {
                return Err(Malformed);
            }
            tsig_at = Some(start);
        }
        pos = next;
    }
    if pos > msg.len() {
        return Err(Malformed);
    }
    match tsig_at {
        None => Ok(None),
        // Bytes after the TSIG would be outside the MAC: refuse them.
        Some(_) if pos != msg.len() => Err(Malformed),
        Some(start) => read_record(msg, start).map(Some).ok_or(Malformed),
    }
}

/// The TSIG record at `start`, which the walk in [`find`] has already bounded.
fn read_record(msg: &[u8], start: usize) -> Option<TsigRecord<'_>> {
    let (key_name, after) = read_name(msg, start)?;
    if u16_at(msg, after + 2)? != CLASS_ANY {
        return None;
    }
    let rdlen = usize::from(u16_at(msg, after + 8)?);
    let rdata = msg.get(after + 10..after + 10 + rdlen)?;
    let alg_len = crate::name::wire_name_len(rdata)?;
    let mut r = Reader {
        buf: rdata,
        pos: alg_len,
    };
    let time_signed = r.u48()?;
    let fudge = r.u16()?;
    let mac_len = r.u16()?;
    let mac = r.take(mac_len.into())?;
    let original_id = r.u16()?;
    let error = r.u16()?;
    let other_len = r.u16()?;
    let other = r.take(other_len.into())?;
    (r.pos == rdata.len()).then_some(TsigRecord {
        key_name,
        algorithm: &rdata[..alg_len],
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
        start,
    })
}

/// A copy of `msg` without its TSIG record (ARCOUNT one less), for code that parses
/// messages with a library that does not know TSIG.
pub fn without_tsig(msg: &[u8], record: &TsigRecord<'_>) -> Vec<u8> {
    let mut out = msg[..record.start.min(msg.len())].to_vec();
    if let Some(ar) = u16_at(&out, 10) {
        out[10..12].copy_from_slice(&ar.saturating_sub(1).to_be_bytes());
    }
    out
}

/// Bytes a TSIG record signed with `key` adds to a message (the most: a BADTIME
/// answer's other data included). Keep that much room under a size limit.
pub fn record_len(key: &TsigKey) -> usize {
    key.name.wire_len() + 10 + key.algorithm.wire_name().len() + 16 + key.algorithm.mac_len() + 6
}

/// Unix seconds now, the clock TSIG times are in.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------
// Serving: checking requests, signing answers.

/// A signed request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Verified<'k> {
    pub key: &'k TsigKey,
    /// The request's MAC, which the answer's MAC covers.
    pub request_mac: Vec<u8>,
    pub time_signed: u64,
}

/// Why a signed request is refused, and so how it is answered ([`error_answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'k> {
    /// The TSIG record cannot be read: FORMERR, unsigned.
    Malformed,
    /// BADKEY or BADSIG: NOTAUTH with the error in a TSIG record with an empty MAC
    /// (the request is not authentic, so nothing can be signed for it, §5.3.2).
    Unsigned(TsigError),
    /// BADTIME or BADTRUNC: the request is authentic, so the NOTAUTH answer is signed
    /// with its key (a BADTIME answer carries our clock in Other Data, §5.2.3).
    Signed(TsigError, &'k TsigKey),
}

impl Refusal<'_> {
    pub fn rcode(&self) -> u8 {
        match self {
            Refusal::Malformed => RCODE_FORMERR,
            _ => RCODE_NOTAUTH,
        }
    }

    /// The TSIG error, `None` for a malformed record.
    pub fn error(&self) -> Option<TsigError> {
        match self {
            Refusal::Malformed => None,
            Refusal::Unsigned(e) | Refusal::Signed(e, _) => Some(*e),
        }
    }
}

/// Checks the TSIG of a request at time `now` (unix seconds) against `keys`, in the
/// order of RFC 8945 §5.2: key, MAC, time, truncation. `Ok(None)`: not signed (the
/// caller decides whether that is allowed).
pub fn verify_request<'k>(
    keys: &'k [TsigKey],
    msg: &[u8],
    now: u64,
) -> Result<Option<Verified<'k>>, Refusal<'k>> {
    let Some(rec) = find(msg).map_err(|_| Refusal::Malformed)? else {
        return Ok(None);
    };
    let key = keys
        .iter()
        .find(|k| key_matches(k, &rec))
        .ok_or(Refusal::Unsigned(TsigError::BadKey))?;
    check_mac_len(key, rec.mac).map_err(|_| Refusal::Malformed)?;
    let mut h = Hasher::new(key);
    h.message(msg, &rec);
    h.variables(key, rec.time_signed, rec.fudge, rec.error, rec.other);
    if !h.verify(rec.mac) {
        return Err(Refusal::Unsigned(TsigError::BadSig));
    }
    if !in_time(&rec, now) {
        return Err(Refusal::Signed(TsigError::BadTime, key));
    }
    if rec.mac.len() < key.algorithm.mac_len() {
        return Err(Refusal::Signed(TsigError::BadTrunc, key));
    }
    Ok(Some(Verified {
        key,
        request_mac: rec.mac.to_vec(),
        time_signed: rec.time_signed,
    }))
}

/// Writes into `out` the answer to `query` that `refusal` calls for: the query's ID,
/// opcode, RD and question, the rcode, and for a TSIG error the TSIG record (RFC 8945
/// §5.3.2). `out` is left empty when `query` has no header to answer.
pub fn error_answer(query: &[u8], refusal: &Refusal<'_>, now: u64, out: &mut Vec<u8>) {
    out.clear();
    let Some(head) = query.get(..HEADER) else {
        return;
    };
    out.extend_from_slice(&head[..2]);
    out.push(0x80 | (head[2] & 0x79)); // QR, the opcode and RD of the query
    out.push(refusal.rcode());
    let question = question_end(query).filter(|_| u16_at(query, 4) == Some(1));
    out.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
    if let Some(end) = question {
        out.extend_from_slice(&query[HEADER..end]);
    }
    let Ok(Some(rec)) = find(query) else {
        return;
    };
    match *refusal {
        Refusal::Malformed => {}
        Refusal::Unsigned(error) => {
            let fields = Fields {
                time: now,
                error: error.code(),
                other: &[],
            };
            append(
                out,
                &rec.key_name,
                rec.algorithm,
                &fields,
                &[],
                rec.original_id,
            );
        }
        Refusal::Signed(error, key) => {
            // BADTIME: the request's time signed, so that its sender can check the MAC
            // whatever its clock says, and ours in Other Data (as BIND and Knot do).
            let server_time = u48_bytes(now);
            let fields = match error {
                TsigError::BadTime => Fields {
                    time: rec.time_signed,
                    error: error.code(),
                    other: &server_time,
                },
                _ => Fields {
                    time: now,
                    error: error.code(),
                    other: &[],
                },
            };
            sign_full(out, key, Some(rec.mac), &fields);
        }
    }
}

/// Signs an answer to a request that [`verify_request`] accepted: appends the TSIG
/// record (ARCOUNT + 1), its MAC covering the request's MAC.
pub fn sign_response(msg: &mut Vec<u8>, key: &TsigKey, request_mac: &[u8], now: u64) {
    sign_full(msg, key, Some(request_mac), &Fields::ok(now));
}

/// Signs the messages of a multi-message answer (AXFR, IXFR over TCP) in order, each of
/// them (RFC 8945 §5.3.1): the first covers the request's MAC and the TSIG variables,
/// each later one the MAC before it and the timers only.
#[derive(Debug, Clone)]
pub struct StreamSigner {
    key: TsigKey,
    prior: Vec<u8>,
    first: bool,
}

impl StreamSigner {
    pub fn new(key: &TsigKey, request_mac: &[u8]) -> Self {
        StreamSigner {
            key: key.clone(),
            prior: request_mac.to_vec(),
            first: true,
        }
    }

    /// Signs the next message in place (appends the TSIG record, ARCOUNT + 1).
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64) {
        self.prior = if std::mem::take(&mut self.first) {
            sign_full(msg, &self.key, Some(&self.prior), &Fields::ok(now))
        } else {
            let Some(id) = header_id(msg) else { return };
            let mut h = Hasher::new(&self.key);
            h.prior(&self.prior);
            h.update(msg);
            h.timers(now, FUDGE);
            let mac = h.finish();
            let name = self.key.name.to_lowercase();
            append(
                msg,
                &name,
                self.key.algorithm.wire_name(),
                &Fields::ok(now),
                &mac,
                id,
            );
            mac
        };
    }
}

// ---------------------------------------------------------------------------------
// Asking: signing requests, checking answers.

/// Why a signed answer is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsigFailure {
    #[error("the answer is not signed")]
    Unsigned,
    #[error("the answer's TSIG record cannot be read")]
    Malformed,
    #[error("the answer is signed with another key or algorithm")]
    WrongKey,
    #[error("the answer's signature does not verify (BADSIG)")]
    BadSig,
    #[error("the answer was signed {0} s away from our clock, more than its fudge (BADTIME)")]
    BadTime(u64),
    #[error("the answer's MAC is truncated (BADTRUNC)")]
    BadTrunc,
    #[error("the peer refused our signature: TSIG error {name} ({0})", name = error_name(*.0))]
    Peer(u16),
    #[error("more than 99 messages of the transfer in a row are unsigned")]
    TooManyUnsigned,
    #[error("the last message of the transfer is not signed")]
    UnsignedEnd,
}

/// Signs a request in place (appends the TSIG record, ARCOUNT + 1) and returns its
/// MAC, which the answer's MAC must cover ([`verify_response`], [`StreamVerifier`]).
pub fn sign_request(msg: &mut Vec<u8>, key: &TsigKey, now: u64) -> Vec<u8> {
    sign_full(msg, key, None, &Fields::ok(now))
}

/// Checks the single answer to a request we signed (SOA query, NOTIFY).
pub fn verify_response(
    msg: &[u8],
    key: &TsigKey,
    request_mac: &[u8],
    now: u64,
) -> Result<(), TsigFailure> {
    let rec = signed_answer(msg, key)?;
    let mut h = Hasher::new(key);
    h.prior(request_mac);
    h.message(msg, &rec);
    h.variables(key, rec.time_signed, rec.fudge, rec.error, rec.other);
    accept(h, &rec, key, now)
}

/// Checks the messages of a transfer answering a request we signed, in order
/// (RFC 8945 §5.3.1): the first must be signed; unsigned ones may follow a signed one,
/// at most 99 in a row, each covered by the next signed one; the last must be signed
/// ([`StreamVerifier::finish`]). After a failure, abandon the transfer.
pub struct StreamVerifier {
    key: TsigKey,
    prior: Vec<u8>,
    /// The MAC of the next signed message so far: the prior MAC and the unsigned
    /// messages since; `None` until the first message.
    running: Option<Hasher>,
    unsigned_run: usize,
}

impl StreamVerifier {
    pub fn new(key: &TsigKey, request_mac: &[u8]) -> Self {
        StreamVerifier {
            key: key.clone(),
            prior: request_mac.to_vec(),
            running: None,
            unsigned_run: 0,
        }
    }

    /// Checks the next message of the transfer.
    pub fn next(&mut self, msg: &[u8], now: u64) -> Result<(), TsigFailure> {
        let rec = match signed_answer(msg, &self.key) {
            Err(TsigFailure::Unsigned) => return self.unsigned(msg),
            other => other?,
        };
        let h = match self.running.take() {
            None => {
                let mut h = Hasher::new(&self.key);
                h.prior(&self.prior);
                h.message(msg, &rec);
                h.variables(&self.key, rec.time_signed, rec.fudge, rec.error, rec.other);
                h
            }
            Some(mut h) => {
                h.message(msg, &rec);
                h.timers(rec.time_signed, rec.fudge);
                h
            }
        };
        accept(h, &rec, &self.key, now)?;
        self.prior = rec.mac.to_vec();
        let mut next = Hasher::new(&self.key);
        next.prior(&self.prior);
        self.running = Some(next);
        self.unsigned_run = 0;
        Ok(())
    }

    /// An unsigned message: only after a signed one, at most 99 in a row; the next
    /// signed message's MAC covers it as it is.
    fn unsigned(&mut self, msg: &[u8]) -> Result<(), TsigFailure> {
        let Some(h) = self.running.as_mut() else {
            return Err(TsigFailure::Unsigned);
        };
        self.unsigned_run += 1;
        if self.unsigned_run > MAX_UNSIGNED_RUN {
            return Err(TsigFailure::TooManyUnsigned);
        }
        h.update(msg);
        Ok(())
    }

    /// After the transfer's last message: was it signed?
    pub fn finish(&self) -> Result<(), TsigFailure> {
        match (&self.running, self.unsigned_run) {
            (None, _) => Err(TsigFailure::Unsigned),
            (Some(_), 0) => Ok(()),
            (Some(_), _) => Err(TsigFailure::UnsignedEnd),
        }
    }
}

/// The TSIG record of an answer, which must be signed with `key`; an error the peer
/// reports unsigned (BADKEY, BADSIG: it could not check our request) is returned here.
fn signed_answer<'m>(msg: &'m [u8], key: &TsigKey) -> Result<TsigRecord<'m>, TsigFailure> {
    let rec = find(msg)
        .map_err(|_| TsigFailure::Malformed)?
        .ok_or(TsigFailure::Unsigned)?;
    if !key_matches(key, &rec) {
        return Err(TsigFailure::WrongKey);
    }
    if rec.error != 0 && rec.mac.is_empty() {
        return Err(TsigFailure::Peer(rec.error));
    }
    check_mac_len(key, rec.mac)?;
    Ok(rec)
}

/// The checks after the MAC input is complete: MAC, the peer's error, time, truncation.
fn accept(h: Hasher, rec: &TsigRecord<'_>, key: &TsigKey, now: u64) -> Result<(), TsigFailure> {
    if !h.verify(rec.mac) {
        return Err(TsigFailure::BadSig);
    }
    if rec.error != 0 {
        return Err(TsigFailure::Peer(rec.error));
    }
    if !in_time(rec, now) {
        return Err(TsigFailure::BadTime(now.abs_diff(rec.time_signed)));
    }
    if rec.mac.len() < key.algorithm.mac_len() {
        return Err(TsigFailure::BadTrunc);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The MAC and the record.

/// The TSIG fields a signer chooses.
struct Fields<'a> {
    time: u64,
    error: u16,
    other: &'a [u8],
}

impl Fields<'_> {
    fn ok(time: u64) -> Fields<'static> {
        Fields {
            time,
            error: 0,
            other: &[],
        }
    }
}

/// Signs `msg` with the TSIG variables (and `prior`, the request's MAC, when
/// answering), appends the record, returns the MAC.
fn sign_full(msg: &mut Vec<u8>, key: &TsigKey, prior: Option<&[u8]>, f: &Fields<'_>) -> Vec<u8> {
    // Our own messages always have a header; without one there is nothing to sign.
    let Some(id) = header_id(msg) else {
        return Vec::new();
    };
    let mut h = Hasher::new(key);
    if let Some(p) = prior {
        h.prior(p);
    }
    h.update(msg);
    h.variables(key, f.time, FUDGE, f.error, f.other);
    let mac = h.finish();
    let name = key.name.to_lowercase();
    append(msg, &name, key.algorithm.wire_name(), f, &mac, id);
    mac
}

/// Appends a TSIG record and counts it in ARCOUNT.
fn append(msg: &mut Vec<u8>, name: &Name, algorithm: &[u8], f: &Fields<'_>, mac: &[u8], id: u16) {
    name.to_wire(msg);
    let rdlen = algorithm.len() + 16 + mac.len() + f.other.len();
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&[0; 4]);
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(algorithm);
    msg.extend_from_slice(&u48_bytes(f.time));
    msg.extend_from_slice(&FUDGE.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&f.error.to_be_bytes());
    msg.extend_from_slice(&(f.other.len() as u16).to_be_bytes());
    msg.extend_from_slice(f.other);
    let ar = u16_at(msg, 10).unwrap_or(0).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// HMAC over the pieces of RFC 8945 §4.3, fed in order.
#[derive(Clone)]
enum Hasher {
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl Hasher {
    fn new(key: &TsigKey) -> Self {
        // HMAC takes a key of any length (a long one is hashed first): these never fail.
        match key.algorithm {
            TsigAlgorithm::HmacSha256 => Hasher::Sha256(
                <Hmac<Sha256> as KeyInit>::new_from_slice(&key.secret)
                    .expect("HMAC accepts any key length"),
            ),
            TsigAlgorithm::HmacSha512 => Hasher::Sha512(
                <Hmac<Sha512> as KeyInit>::new_from_slice(&key.secret)
                    .expect("HMAC accepts any key length"),
            ),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// A MAC before this message (the request's, or the prior one in a stream),
    /// length first.
    fn prior(&mut self, mac: &[u8]) {
        self.update(&(mac.len() as u16).to_be_bytes());
        self.update(mac);
    }

    /// The signed part of a received message as it was before signing: the original
    /// ID, ARCOUNT without the TSIG record.
    fn message(&mut self, msg: &[u8], rec: &TsigRecord<'_>) {
        let ar = u16_at(msg, 10).unwrap_or(0).saturating_sub(1);
        self.update(&rec.original_id.to_be_bytes());
        self.update(&msg[2..10]);
        self.update(&ar.to_be_bytes());
        self.update(&msg[HEADER..rec.start]);
    }

    /// The TSIG variables (RFC 8945 §4.3.3), names in canonical (lower case) form.
    fn variables(&mut self, key: &TsigKey, time: u64, fudge: u16, error: u16, other: &[u8]) {
        let mut name = Vec::with_capacity(key.name.wire_len());
        key.name.to_lowercase().to_wire(&mut name);
        self.update(&name);
        self.update(&CLASS_ANY.to_be_bytes());
        self.update(&[0; 4]);
        self.update(key.algorithm.wire_name());
        self.timers(time, fudge);
        self.update(&error.to_be_bytes());
        self.update(&(other.len() as u16).to_be_bytes());
        self.update(other);
    }

    fn timers(&mut self, time: u64, fudge: u16) {
        self.update(&u48_bytes(time));
        self.update(&fudge.to_be_bytes());
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().into_bytes().to_vec(),
            Hasher::Sha512(h) => h.finalize().into_bytes().to_vec(),
        }
    }

    /// Compares in constant time; a truncated MAC (length already checked) against
    /// the leading bytes of ours.
    fn verify(self, mac: &[u8]) -> bool {
        match self {
            Hasher::Sha256(h) => h.verify_truncated_left(mac).is_ok(),
            Hasher::Sha512(h) => h.verify_truncated_left(mac).is_ok(),
        }
    }
}

/// Same key name (any case) and algorithm.
fn key_matches(key: &TsigKey, rec: &TsigRecord<'_>) -> bool {
    key.name.eq_ignore_case(&rec.key_name)
        && TsigAlgorithm::from_wire(rec.algorithm) == Some(key.algorithm)
}

/// RFC 8945 §5.2.2.1: a MAC longer than the hash, or shorter than both half of it and
/// 10 bytes, is malformed.
fn check_mac_len(key: &TsigKey, mac: &[u8]) -> Result<(), TsigFailure> {
    let full = key.algorithm.mac_len();
    if mac.len() > full || mac.len() < (full / 2).max(10) {
        return Err(TsigFailure::Malformed);
    }
    Ok(())
}

fn in_time(rec: &TsigRecord<'_>, now: u64) -> bool {
    now.abs_diff(rec.time_signed) <= u64::from(rec.fudge)
}

// ---------------------------------------------------------------------------------
// Reading bytes, bounds-checked.

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The ID of a message that has a whole header.
fn header_id(msg: &[u8]) -> Option<u16> {
    msg.get(..HEADER).and_then(|h| u16_at(h, 0))
}

fn u48_bytes(t: u64) -> [u8; 6] {
    let b = t.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A cursor over a record's rdata.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u48(&mut self) -> Option<u64> {
        self.take(6)
            .map(|b| b.iter().fold(0u64, |t, &x| (t << 8) | u64::from(x)))
    }
}

/// The offset after a (possibly compressed) name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*msg.get(pos)?);
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos += 1 + len,
            0xc0..=0xff => return (pos + 2 <= msg.len()).then_some(pos + 2),
            _ => return None,
        }
    }
}

/// The type of the record at `pos` and the offset after it.
fn skip_record(msg: &[u8], pos: usize) -> Option<(u16, usize)> {
    let at = skip_name(msg, pos)?;
    let rtype = u16_at(msg, at)?;
    let rdlen = usize::from(u16_at(msg, at + 8)?);
    let end = at + 10 + rdlen;
    (end <= msg.len()).then_some((rtype, end))
}

/// The end of the question section, when every question can be skipped.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut pos = HEADER;
    for _ in 0..u16_at(msg, 4)? {
        pos = skip_name(msg, pos)? + 4;
    }
    (pos <= msg.len()).then_some(pos)
}

/// A name at `pos`, following compression pointers (each must point backwards, so
/// the walk ends), and the offset after it in place.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(Name, usize)> {
    let mut wire = [0u8; 255];
    let mut len = 0;
    let mut end = None;
    loop {
        let b = usize::from(*msg.get(pos)?);
        match b {
            0 => {
                *wire.get_mut(len)? = 0;
                let (name, _) = Name::from_wire(&wire[..=len])?;
                return Some((name, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                let label = msg.get(pos..pos + 1 + b)?;
                wire.get_mut(len..len + 1 + b)?.copy_from_slice(label);
                len += 1 + b;
                pos += 1 + b;
            }
            0xc0..=0xff => {
                let target = (b & 0x3f) << 8 | usize::from(*msg.get(pos + 1)?);
                if target >= pos {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn key(name: &str, algorithm: TsigAlgorithm, secret: &[u8]) -> TsigKey {
        TsigKey {
            name: Name::from_text(name).unwrap(),
            algorithm,
            secret: secret.to_vec(),
        }
    }

    fn k256() -> TsigKey {
        key("Xfr-Key.", TsigAlgorithm::HmacSha256, b"0123456789abcdef")
    }

    /// A query for `example.` with the given type (header, one question).
    fn query(id: u16, qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(b"\x07example\x00");
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    /// An answer to `query` with `n` A records owned by the question name.
    fn answer(q: &[u8], n: u16) -> Vec<u8> {
        let mut m = q.to_vec();
        m[2] |= 0x84;
        m[6..8].copy_from_slice(&n.to_be_bytes());
        for i in 0..n {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2]);
            m.push(i as u8);
        }
        m
    }

    fn refusal(keys: &[TsigKey], msg: &[u8], now: u64) -> Refusal<'static> {
        match verify_request(keys, msg, now) {
            Err(Refusal::Malformed) => Refusal::Malformed,
            Err(Refusal::Unsigned(e)) => Refusal::Unsigned(e),
            Err(Refusal::Signed(e, _)) => Refusal::Unsigned(e), // the key is not needed here
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn a_signed_request_and_its_signed_answer_verify() {
        for k in [k256(), key("k.", TsigAlgorithm::HmacSha512, b"s")] {
            let keys = [key("other.", k.algorithm, b"x"), k.clone()];
            let mut q = query(0x1234, 252);
            let mac = sign_request(&mut q, &k, NOW);
            assert_eq!(mac.len(), k.algorithm.mac_len());
            let rec = find(&q).unwrap().unwrap();
            assert_eq!(rec.mac, &mac[..]);
            assert_eq!((rec.original_id, rec.fudge, rec.error), (0x1234, FUDGE, 0));
            assert_eq!(&q[10..12], &[0, 1], "ARCOUNT counts the TSIG");
            assert_eq!(q.len(), rec.start + record_len(&k) - 6);

            let v = verify_request(&keys, &q, NOW + 10).unwrap().unwrap();
            assert_eq!(v.key, &keys[1]);
            assert_eq!(v.request_mac, mac);
            assert_eq!(v.time_signed, NOW);

            let mut a = answer(&query(0x1234, 252), 3);
            sign_response(&mut a, v.key, &v.request_mac, NOW + 1);
            assert_eq!(verify_response(&a, &k, &mac, NOW + 2), Ok(()));
            // The answer is bound to this request's MAC.
            let mut other = mac.clone();
            other[0] ^= 1;
            assert_eq!(
                verify_response(&a, &k, &other, NOW),
                Err(TsigFailure::BadSig)
            );
            assert_eq!(
                without_tsig(&a, &find(&a).unwrap().unwrap()),
                answer(&query(0x1234, 252), 3)
            );
        }
    }

    #[test]
    fn unsigned_messages_are_none() {
        assert_eq!(find(&query(1, 6)), Ok(None));
        assert!(
            verify_request(&[k256()], &query(1, 6), NOW)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            verify_response(&answer(&query(1, 6), 1), &k256(), &[], NOW),
            Err(TsigFailure::Unsigned)
        );
    }

    #[test]
    fn any_changed_byte_is_badsig() {
        let k = k256();
        let mut q = query(7, 252);
        sign_request(&mut q, &k, NOW);
        let rec = find(&q).unwrap().unwrap();
        let mac_at = rec.start + 9 + 10 + 13 + 10; // name, fixed part, algorithm, time..size
        for at in [2, 3, 13, rec.start - 1, mac_at, q.len() - 7] {
            let mut bad = q.clone();
            bad[at] ^= 0x20;
            let r = verify_request(std::slice::from_ref(&k), &bad, NOW);
            assert!(
                matches!(r, Err(Refusal::Unsigned(TsigError::BadSig))),
                "byte {at}: {r:?}"
            );
        }
        // The key name's case is not signed as sent: it is canonical (lower case).
        let mut upper = q.clone();
        upper[rec.start + 1] = b'X';
        assert!(verify_request(std::slice::from_ref(&k), &upper, NOW).is_ok());
        // A changed ID is the job of Original ID: still valid.
        let mut moved = q.clone();
        moved[0] = 0xee;
        assert!(verify_request(std::slice::from_ref(&k), &moved, NOW).is_ok());
    }

    #[test]
    fn an_unknown_key_or_algorithm_is_badkey() {
        let mut q = query(7, 252);
        sign_request(&mut q, &k256(), NOW);
        for keys in [
            vec![key(
                "other.",
                TsigAlgorithm::HmacSha256,
                b"0123456789abcdef",
            )],
            vec![key(
                "xfr-key.",
                TsigAlgorithm::HmacSha512,
                b"0123456789abcdef",
            )],
            vec![],
        ] {
            assert_eq!(
                verify_request(&keys, &q, NOW).unwrap_err(),
                Refusal::Unsigned(TsigError::BadKey)
            );
        }
        let wrong_secret = [key(
            "xfr-key.",
            TsigAlgorithm::HmacSha256,
            b"another secret",
        )];
        assert_eq!(
            verify_request(&wrong_secret, &q, NOW).unwrap_err(),
            Refusal::Unsigned(TsigError::BadSig)
        );
    }

    #[test]
    fn a_time_outside_the_fudge_is_badtime() {
        let k = k256();
        let keys = std::slice::from_ref(&k);
        let mut q = query(7, 252);
        sign_request(&mut q, &k, NOW);
        for ok in [NOW - 300, NOW + 300] {
            assert!(verify_request(keys, &q, ok).is_ok());
        }
        for late in [NOW - 301, NOW + 301, 0] {
            assert_eq!(
                verify_request(keys, &q, late).unwrap_err(),
                Refusal::Signed(TsigError::BadTime, &k)
            );
        }
    }

    #[test]
    fn a_badtime_answer_is_signed_and_carries_our_clock() {
        let k = k256();
        let mut q = query(9, 252);
        let mac = sign_request(&mut q, &k, NOW);
        let refusal = verify_request(std::slice::from_ref(&k), &q, NOW + 1000).unwrap_err();
        let mut out = Vec::new();
        error_answer(&q, &refusal, NOW + 1000, &mut out);
        assert_eq!((out[0], out[1], out[3] & 0x0f), (0, 9, RCODE_NOTAUTH));
        assert_eq!(out[2] & 0x80, 0x80, "a response");
        let rec = find(&out).unwrap().unwrap();
        assert_eq!(rec.error, 18);
        assert_eq!(rec.time_signed, NOW, "the request's time");
        assert_eq!(rec.other, &u48_bytes(NOW + 1000), "our time");
        // Signed with the request's MAC: the client sees the peer's error, not BADSIG.
        assert_eq!(
            verify_response(&out, &k, &mac, NOW),
            Err(TsigFailure::Peer(18))
        );
        out[3] ^= 0x20;
        assert_eq!(
            verify_response(&out, &k, &mac, NOW),
            Err(TsigFailure::BadSig)
        );
    }

    #[test]
    fn badkey_and_badsig_answers_are_unsigned() {
        let mut q = query(9, 252);
        let mac = sign_request(&mut q, &k256(), NOW);
        let keys = [key("xfr-key.", TsigAlgorithm::HmacSha256, b"wrong")];
        for (keys, code) in [(&keys[..], 16), (&[][..], 17)] {
            let r = refusal(keys, &q, NOW);
            assert_eq!(r.rcode(), RCODE_NOTAUTH);
            let mut out = Vec::new();
            error_answer(&q, &r, NOW, &mut out);
            let rec = find(&out).unwrap().unwrap();
            assert_eq!((rec.error, rec.mac, rec.original_id), (code, &[][..], 9));
            assert_eq!(rec.key_name.to_string(), "xfr-key.");
            assert_eq!(out[13..22], q[13..22], "the question is echoed");
            assert_eq!(
                verify_response(&out, &k256(), &mac, NOW),
                Err(TsigFailure::Peer(code))
            );
        }
    }

    #[test]
    fn a_malformed_tsig_is_formerr_without_tsig() {
        let mut q = query(3, 252);
        sign_request(&mut q, &k256(), NOW);
        q.push(0); // a byte outside the MAC
        assert_eq!(find(&q), Err(Malformed));
        let keys = [k256()];
        let r = verify_request(&keys, &q, NOW).unwrap_err();
        assert_eq!(r, Refusal::Malformed);
        let mut out = Vec::new();
        error_answer(&q, &r, NOW, &mut out);
        assert_eq!(
            (out.len(), out[3], out[5], out[11]),
            (25, RCODE_FORMERR, 1, 0)
        );
        // A TSIG that is not the last record.
        let mut q = query(3, 252);
        sign_request(&mut q, &k256(), NOW);
        q.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        q[11] = 2;
        assert_eq!(find(&q), Err(Malformed));
        error_answer(&q[..5], &Refusal::Malformed, NOW, &mut out);
        assert!(out.is_empty(), "no header: nothing to answer");
    }

    /// `q` signed with a MAC cut to `len` bytes.
    fn signed_truncated(k: &TsigKey, len: usize) -> Vec<u8> {
        let mut q = query(5, 252);
        let mut h = Hasher::new(k);
        h.update(&q);
        h.variables(k, NOW, FUDGE, 0, &[]);
        let mac = h.finish();
        append(
            &mut q,
            &k.name,
            k.algorithm.wire_name(),
            &Fields::ok(NOW),
            &mac[..len],
            5,
        );
        q
    }

    #[test]
    fn truncated_macs_are_badtrunc_or_malformed() {
        let k = k256();
        let keys = std::slice::from_ref(&k);
        assert!(verify_request(keys, &signed_truncated(&k, 32), NOW).is_ok());
        assert_eq!(
            verify_request(keys, &signed_truncated(&k, 16), NOW).unwrap_err(),
            Refusal::Signed(TsigError::BadTrunc, &k)
        );
        let mut forged = signed_truncated(&k, 16);
        let n = forged.len();
        forged[n - 7] ^= 1; // the MAC's last byte
        assert_eq!(
            verify_request(keys, &forged, NOW).unwrap_err(),
            Refusal::Unsigned(TsigError::BadSig)
        );
        assert_eq!(
            verify_request(keys, &signed_truncated(&k, 15), NOW).unwrap_err(),
            Refusal::Malformed,
            "below half the hash"
        );
        assert_eq!(
            verify_response(&signed_truncated(&k, 16), &k, &[], NOW),
            Err(TsigFailure::BadSig),
            "a request is not an answer: no request MAC in it"
        );
    }

    /// Three messages of a transfer, signed by `StreamSigner`.
    fn stream(k: &TsigKey, request_mac: &[u8]) -> Vec<Vec<u8>> {
        let mut signer = StreamSigner::new(k, request_mac);
        (0..3)
            .map(|i| {
                let mut m = answer(&query(0x4242, 252), 2 + i);
                signer.sign(&mut m, NOW + u64::from(i));
                m
            })
            .collect()
    }

    #[test]
    fn a_stream_of_three_messages_verifies_in_order_only() {
        let k = k256();
        let mut q = query(0x4242, 252);
        let mac = sign_request(&mut q, &k, NOW);
        let msgs = stream(&k, &mac);
        let mut v = StreamVerifier::new(&k, &mac);
        for m in &msgs {
            assert_eq!(v.next(m, NOW + 5), Ok(()));
        }
        assert_eq!(v.finish(), Ok(()));
        // Later messages carry the timers only, and chain on the prior MAC.
        let mut v = StreamVerifier::new(&k, &mac);
        assert_eq!(v.next(&msgs[0], NOW), Ok(()));
        assert_eq!(v.next(&msgs[2], NOW), Err(TsigFailure::BadSig));
        let mut v = StreamVerifier::new(&k, &mac);
        assert_eq!(
            v.next(&msgs[1], NOW),
            Err(TsigFailure::BadSig),
            "not the first"
        );
        assert_eq!(
            StreamVerifier::new(&k, &mac).finish(),
            Err(TsigFailure::Unsigned)
        );
        let mut v = StreamVerifier::new(&k, &mac);
        assert_eq!(v.next(&msgs[0], NOW + 301), Err(TsigFailure::BadTime(301)));
        let mut v = StreamVerifier::new(&k256(), &mac);
        let mut hidden = msgs[0].clone();
        let n = hidden.len();
        hidden[n - 20] ^= 1;
        assert_eq!(v.next(&hidden, NOW), Err(TsigFailure::BadSig));
    }

    #[test]
    fn unsigned_messages_between_signed_ones_are_covered() {
        let k = k256();
        let first = stream(&k, b"request-mac").remove(0);
        let prior = find(&first).unwrap().unwrap().mac.to_vec();
        let middle: Vec<Vec<u8>> = (0..3).map(|i| answer(&query(0x4242, 252), i)).collect();
        // The last message signed over the prior MAC, the unsigned ones, itself.
        let mut last = answer(&query(0x4242, 252), 1);
        let mut h = Hasher::new(&k);
        h.prior(&prior);
        middle.iter().for_each(|m| h.update(m));
        h.update(&last);
        h.timers(NOW, FUDGE);
        let mac = h.finish();
        append(
            &mut last,
            &k.name,
            k.algorithm.wire_name(),
            &Fields::ok(NOW),
            &mac,
            0x4242,
        );

        let mut v = StreamVerifier::new(&k, b"request-mac");
        assert_eq!(v.next(&first, NOW), Ok(()));
        for m in &middle {
            assert_eq!(v.next(m, NOW), Ok(()));
        }
        assert_eq!(v.finish(), Err(TsigFailure::UnsignedEnd));
        assert_eq!(v.next(&last, NOW), Ok(()));
        assert_eq!(v.finish(), Ok(()));
        // Leaving an unsigned message out breaks the chain.
        let mut v = StreamVerifier::new(&k, b"request-mac");
        assert_eq!(v.next(&first, NOW), Ok(()));
        assert_eq!(v.next(&middle[0], NOW), Ok(()));
        assert_eq!(v.next(&last, NOW), Err(TsigFailure::BadSig));
        // An unsigned first message, and a hundred unsigned in a row, are refused.
        let mut v = StreamVerifier::new(&k, b"request-mac");
        assert_eq!(v.next(&middle[0], NOW), Err(TsigFailure::Unsigned));
        let mut v = StreamVerifier::new(&k, b"request-mac");
        assert_eq!(v.next(&first, NOW), Ok(()));
        for _ in 0..99 {
            assert_eq!(v.next(&middle[0], NOW), Ok(()));
        }
        assert_eq!(v.next(&middle[0], NOW), Err(TsigFailure::TooManyUnsigned));
    }

    #[test]
    fn an_answer_signed_with_another_key_is_refused() {
        let mut a = answer(&query(1, 6), 1);
        sign_response(
            &mut a,
            &key("other.", TsigAlgorithm::HmacSha256, b"x"),
            b"m",
            NOW,
        );
        assert_eq!(
            verify_response(&a, &k256(), b"m", NOW),
            Err(TsigFailure::WrongKey)
        );
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let k = k256();
        let keys = std::slice::from_ref(&k);
        let mut q = query(1, 252);
        let mac = sign_request(&mut q, &k, NOW);
        let mut out = Vec::new();
        let mut check = |m: &[u8]| {
            let _ = find(m);
            if let Err(r) = verify_request(keys, m, NOW) {
                error_answer(m, &r, NOW, &mut out);
            }
            let _ = verify_response(m, &k, &mac, NOW);
            let mut v = StreamVerifier::new(&k, &mac);
            let _ = v.next(m, NOW);
            let _ = v.next(m, NOW);
            let _ = v.finish();
        };
        for len in 0..=q.len() {
            check(&q[..len]);
        }
        for at in 0..q.len() {
            for x in [0x01, 0x3f, 0x80, 0xc0, 0xff] {
                let mut bad = q.clone();
                bad[at] ^= x;
                check(&bad);
                bad.truncate(at + 1);
                check(&bad);
            }
        }
        // A key name made of compression pointers that loop, and one pointing forwards.
        let mut looped = query(1, 252);
        looped[11] = 1;
        let at = looped.len() as u8;
        looped.extend_from_slice(&[0xc0, at, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]);
        check(&looped);
        assert_eq!(find(&looped), Err(Malformed));
        looped[usize::from(at) + 1] = at + 2;
        assert_eq!(find(&looped), Err(Malformed));
        // Counts far beyond the bytes.
        let mut counts = query(1, 252);
        counts[4..12].copy_from_slice(&[0xff; 8]);
        check(&counts);
        assert_eq!(find(&counts), Err(Malformed));
        // Signing what is not even a header does nothing.
        let mut short = vec![1, 2, 3];
        assert!(sign_request(&mut short, &k, NOW).is_empty());
        StreamSigner::new(&k, &mac).sign(&mut short, NOW);
        assert_eq!(short, [1, 2, 3]);
    }
}
