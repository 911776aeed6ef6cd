//! Transfers in, for secondary zones: the SOA serial query a refresh starts with, and
//! the zone by IXFR (RFC 1995, from the serial we hold) or AXFR (RFC 5936).
//!
//! Owns: the request messages (written by hand, so that they are bytes a signature can
//! cover), reading the primary's answer stream (a run of TCP messages) record by record
//! into what it holds — the whole zone (AXFR, or IXFR answered in AXFR form), the
//! condensed changes, or nothing newer — with every RFC 1995 framing rule checked: the
//! first record is the new SOA, each difference runs from one SOA to the next, the chain
//! starts at our serial and ends at the announced one, the stream ends with that SOA. A
//! stream that breaks any of them is an error and changes nothing.
//!
//! Must not touch: applying what arrived or keeping it (see `dns::secondary`), or
//! transfers out (`dns::xfr`).
//!
//! Answers are decoded with hickory-proto's `Message`: it is off the hot path and must
//! accept whatever compression the primary uses.

use super::tsig;
use crate::config::TsigKey;
use crate::name::{Name, TYPE_SOA};
use crate::zone::diff::{Diff, DiffRecord, SoaRecord};
use crate::zone::{Records, Zone, serial_newer};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TYPE_IXFR: u16 = 251;
const TYPE_AXFR: u16 = 252;

/// Why a transfer in failed.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("primary answered {0}")]
    Rcode(String),
    #[error("bad message from the primary: {0}")]
    Bad(String),
    #[error("zone rejected: {0}")]
    Zone(String),
}

/// What a transfer in brought.
pub enum Fetched {
    /// The whole zone: AXFR, or IXFR answered in AXFR form.
    Whole(Zone),
    /// The changes from the serial we hold to the primary's, condensed.
    Changes(Diff),
    /// The primary has nothing newer than what we hold.
    UpToDate,
}

fn bad(msg: impl Into<String>) -> XfrError {
    XfrError::Bad(msg.into())
}

/// Asks `primary` for the zone's SOA serial over UDP (three tries of 1 s), signed with
/// `key` when given (then only an answer signed with it is taken).
pub async fn query_serial(
    primary: SocketAddr,
    origin: &Name,
    key: Option<&TsigKey>,
) -> Result<u32, XfrError> {
    use hickory_proto::rr::RData;
    let bind: SocketAddr = if primary.is_ipv6() {
        "[::]:0".parse().unwrap_or(primary)
    } else {
        "0.0.0.0:0".parse().unwrap_or(primary)
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(primary).await?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..3 {
        let (id, mut wire) = request(origin, TYPE_SOA, None);
        let mac = key.map(|k| tsig::sign_request(&mut wire, k, tsig::unix_now()));
        sock.send(&wire).await?;
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await
        else {
            continue;
        };
        if buf.get(..2) != Some(&id.to_be_bytes()[..]) {
            continue;
        }
        if let (Some(k), Some(mac)) = (key, &mac) {
            tsig::verify_response(&buf[..n], k, mac, tsig::unix_now())
                .map_err(|e| bad(format!("TSIG: {e}")))?;
        }
        let Ok(resp) = decode(&buf[..n]) else {
            continue;
        };
        if resp.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
            return Err(XfrError::Rcode(resp.metadata.response_code.to_string()));
        }
        for r in &resp.answers {
            if let RData::SOA(soa) = &r.data {
                return Ok(soa.serial);
            }
        }
        return Err(bad("no SOA in the answer"));
    }
    Err(XfrError::Timeout)
}

/// A message minus its TSIG record (checked before), for the decoder.
fn decode(msg: &[u8]) -> Result<hickory_proto::op::Message, XfrError> {
    let stripped;
    let msg = match tsig::find(msg) {
        Ok(Some(rec)) => {
            stripped = tsig::without_tsig(msg, &rec);
            &stripped[..]
        }
        _ => msg,
    };
    hickory_proto::op::Message::from_vec(msg).map_err(|e| bad(e.to_string()))
}

/// Where to transfer from and how: the primary, and the key requests are signed with.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub primary: SocketAddr,
    pub key: Option<&'a TsigKey>,
}

/// Transfers the zone from the primary over TCP within `limit`: IXFR from `have`'s
/// serial when we hold a copy, else AXFR. With a key, the request is signed and every
/// message of the answer must verify (RFC 8945 §5.3.1).
pub async fn fetch(
    from: Source<'_>,
    origin: &Name,
    have: Option<&Zone>,
    limit: Duration,
) -> Result<Fetched, XfrError> {
    let ours = have.and_then(|z| z.soa_record_with_serial(z.soa.serial));
    tokio::time::timeout(limit, fetch_inner(from, origin, ours))
        .await
        .map_err(|_| XfrError::Timeout)?
}

async fn fetch_inner(
    from: Source<'_>,
    origin: &Name,
    ours: Option<SoaRecord>,
) -> Result<Fetched, XfrError> {
    let primary = from.primary;
    let qtype = if ours.is_some() { TYPE_IXFR } else { TYPE_AXFR };
    let (id, mut wire) = request(origin, qtype, ours.as_ref());
    let mut verifier = from.key.map(|k| {
        let mac = tsig::sign_request(&mut wire, k, tsig::unix_now());
        tsig::StreamVerifier::new(k, &mac)
    });
    let mut stream = tokio::net::TcpStream::connect(primary).await?;
    stream.write_all(&(wire.len() as u16).to_be_bytes()).await?;
    stream.write_all(&wire).await?;
    let mut reader = Reader::new(origin, primary, ours.as_ref().map(SoaRecord::serial));
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        let len = stream.read_u16().await? as usize;
        buf.resize(len, 0);
        stream.read_exact(&mut buf).await?;
        if buf.get(..2) != Some(&id.to_be_bytes()[..]) {
            return Err(bad("answer to another query"));
        }
        if let Some(v) = verifier.as_mut() {
            v.next(&buf, tsig::unix_now())
                .map_err(|e| bad(format!("TSIG: {e}")))?;
        }
        let resp = decode(&buf)?;
        if resp.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
            return Err(XfrError::Rcode(resp.metadata.response_code.to_string()));
        }
        let mut complete = false;
        for r in &resp.answers {
            if complete {
                return Err(bad("records after the closing SOA"));
            }
            complete = reader.feed(r)?;
        }
        // A first message of one SOA no newer than ours: nothing newer (RFC 1995 §2).
        // Any other stream goes on to its closing SOA, however the primary splits it
        // into messages (one record each is allowed, RFC 5936 §2.2); a primary that
        // stops after a newer SOA alone ends the stream, an error.
        let up_to_date = first && resp.answers.len() == 1 && reader.up_to_date();
        if complete || up_to_date {
            if let Some(v) = &verifier {
                v.finish().map_err(|e| bad(format!("TSIG: {e}")))?;
            }
            return if complete {
                reader.finish()
            } else {
                Ok(Fetched::UpToDate)
            };
        }
        first = false;
    }
}

/// A query for `origin` of `qtype` with a random ID, and for IXFR our SOA in the
/// authority section (its owner a pointer to the question name).
fn request(origin: &Name, qtype: u16, ours: Option<&SoaRecord>) -> (u16, Vec<u8>) {
    let id = super::wire::random_id();
    let mut wire = Vec::with_capacity(128);
    wire.extend_from_slice(&id.to_be_bytes());
    wire.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, u8::from(ours.is_some()), 0, 0]);
    origin.to_wire(&mut wire);
    wire.extend_from_slice(&qtype.to_be_bytes());
    wire.extend_from_slice(&1u16.to_be_bytes());
    if let Some(soa) = ours {
        wire.extend_from_slice(&[0xc0, 12]);
        wire.extend_from_slice(&TYPE_SOA.to_be_bytes());
        wire.extend_from_slice(&1u16.to_be_bytes());
        wire.extend_from_slice(&soa.ttl.to_be_bytes());
        wire.extend_from_slice(&(soa.rdata.len() as u16).to_be_bytes());
        wire.extend_from_slice(&soa.rdata);
    }
    (id, wire)
}

/// Reads a transfer answer record by record (RFC 1995 §4 framing).
struct Reader<'a> {
    origin: &'a Name,
    primary: SocketAddr,
    /// The serial we asked IXFR from (`None`: AXFR).
    ours: Option<u32>,
    /// Records read so far (for messages: a record's ordinal in the transfer).
    count: u32,
    state: State,
    rdata: Vec<u8>,
}

enum State {
    /// Nothing read yet.
    First,
    /// The new SOA read; the second record tells the form.
    Second(SoaRecord),
    /// AXFR form: every record up to the closing SOA.
    Whole { records: Records, serial: u32 },
    /// Differences: `done` complete ones and `current`, in its removals (`adding`
    /// false) or additions.
    Changes {
        new: SoaRecord,
        done: Vec<Diff>,
        current: Diff,
        adding: bool,
    },
    /// Read to the end.
    Finished(Fetched),
}

impl<'a> Reader<'a> {
    fn new(origin: &'a Name, primary: SocketAddr, ours: Option<u32>) -> Self {
        Reader {
            origin,
            primary,
            ours,
            count: 0,
            state: State::First,
            rdata: Vec::new(),
        }
    }

    /// Takes one record; true once the stream is complete.
    fn feed(&mut self, r: &hickory_proto::rr::Record) -> Result<bool, XfrError> {
        use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
        self.count += 1;
        let owner = Name::from_text(&r.name.to_ascii())
            .map_err(|e| bad(format!("owner {}: {e:?}", r.name)))?;
        if !owner.is_at_or_below(self.origin) {
            return Err(bad(format!("{owner} is outside {}", self.origin)));
        }
        self.rdata.clear();
        let mut enc = BinEncoder::new(&mut self.rdata);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        r.data.emit(&mut enc).map_err(|e| bad(e.to_string()))?;
        let below: Vec<&[u8]> = owner.relative_root_side(self.origin).collect();
        let rtype = u16::from(r.record_type());
        let soa = (below.is_empty() && rtype == TYPE_SOA).then(|| SoaRecord {
            ttl: r.ttl,
            rdata: self.rdata.as_slice().into(),
        });
        let record = Rec {
            below: &below,
            rtype,
            ttl: r.ttl,
            rdata: &self.rdata,
            line: self.count,
        };
        let state = std::mem::replace(&mut self.state, State::First);
        let ctx = Ctx {
            origin: self.origin,
            primary: self.primary,
            ours: self.ours,
        };
        self.state = step(state, soa, record, &ctx)?;
        Ok(matches!(self.state, State::Finished(_)))
    }

    /// What the complete stream held.
    fn finish(self) -> Result<Fetched, XfrError> {
        match self.state {
            State::Finished(Fetched::Changes(d)) if Some(d.from_serial()) != self.ours => {
                Err(bad("the changes do not start at our serial"))
            }
            State::Finished(fetched) => Ok(fetched),
            _ => Err(bad("the transfer ended early")),
        }
    }

    /// The first message held one SOA and nothing else.
    /// Whether the stream so far is one SOA no newer than the serial we asked IXFR
    /// from.
    fn up_to_date(&self) -> bool {
        match (&self.state, self.ours) {
            (State::Second(soa), Some(ours)) => !serial_newer(soa.serial(), ours),
            _ => false,
        }
    }
}

/// One record of the stream.
struct Rec<'r> {
    below: &'r [&'r [u8]],
    rtype: u16,
    ttl: u32,
    rdata: &'r [u8],
    line: u32,
}

impl Rec<'_> {
    fn diff_record(&self) -> DiffRecord {
        DiffRecord {
            owner: crate::name::labels_key(self.below).into(),
            rtype: self.rtype,
            ttl: self.ttl,
            rdata: self.rdata.into(),
        }
    }
}

/// What a step needs to know of the transfer.
struct Ctx<'a> {
    origin: &'a Name,
    primary: SocketAddr,
    ours: Option<u32>,
}

/// The reader's next state after one record (`soa`: the record, when it is the apex
/// SOA).
fn step(
    state: State,
    soa: Option<SoaRecord>,
    r: Rec<'_>,
    ctx: &Ctx<'_>,
) -> Result<State, XfrError> {
    let (ours, primary) = (ctx.ours, ctx.primary);
    Ok(match (state, soa) {
        (State::First, Some(new)) => State::Second(new),
        (State::First, None) => return Err(bad("the transfer does not start with SOA")),
        (State::Second(new), Some(old)) if ours.is_some_and(|o| o == old.serial()) => {
            let current = Diff {
                from: old,
                to: new.clone(),
                removed: Vec::new(),
                added: Vec::new(),
            };
            State::Changes {
                new,
                done: Vec::new(),
                current,
                adding: false,
            }
        }
        (State::Second(new), soa) => {
            let serial = new.serial();
            let mut records = Records::new(format!("AXFR from {primary}"));
            records.add::<&[u8]>(&[], TYPE_SOA, new.ttl, &new.rdata, 1);
            let whole = State::Whole { records, serial };
            return step(whole, soa, r, ctx);
        }
        (State::Whole { records, serial }, Some(soa)) => {
            if soa.serial() != serial {
                return Err(bad("the closing SOA's serial differs from the opening one"));
            }
            let zone = records
                .build(ctx.origin)
                .map_err(|e| XfrError::Zone(e.to_string()))?;
            if zone.tree.apex().rrset(crate::name::TYPE_NS).is_none() {
                return Err(XfrError::Zone("no NS record at the apex".into()));
            }
            State::Finished(Fetched::Whole(zone))
        }
        (
            State::Whole {
                mut records,
                serial,
            },
            None,
        ) => {
            records.add(r.below, r.rtype, r.ttl, r.rdata, r.line);
            State::Whole { records, serial }
        }
        (
            State::Changes {
                new,
                mut done,
                mut current,
                adding,
            },
            soa,
        ) => match (soa, adding) {
            (None, false) => {
                current.removed.push(r.diff_record());
                State::Changes {
                    new,
                    done,
                    current,
                    adding,
                }
            }
            (None, true) => {
                current.added.push(r.diff_record());
                State::Changes {
                    new,
                    done,
                    current,
                    adding,
                }
            }
            (Some(to), false) => {
                current.to = to;
                State::Changes {
                    new,
                    done,
                    current,
                    adding: true,
                }
            }
            (Some(next), true) => {
                let end = next.serial() == new.serial();
                done.push(current);
                if end {
                    let diff = Diff::condense(done)
                        .map_err(|e| bad(e.to_string()))?
                        .ok_or_else(|| bad("no changes"))?;
                    if diff.to_serial() != new.serial() {
                        return Err(bad("the changes end at another serial than announced"));
                    }
                    State::Finished(Fetched::Changes(diff))
                } else {
                    let current = Diff {
                        from: next,
                        to: new.clone(),
                        removed: Vec::new(),
                        added: Vec::new(),
                    };
                    State::Changes {
                        new,
                        done,
                        current,
                        adding: false,
                    }
                }
            }
        },
        (State::Finished(_), _) => return Err(bad("records after the closing SOA")),
    })
}
