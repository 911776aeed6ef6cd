//! Differences between two copies of a zone, as IXFR carries them (RFC 1995): the
//! journal's entries, what an incremental transfer sends, and what a secondary applies.
//!
//! Owns: [`Diff`] (the SOA before and after, the records removed and added), computing
//! one from two copies ([`Zone::diff`], proportional to what the copies do not share;
//! [`Zone::encoded_diff`] writes its byte form directly, for the journal),
//! applying one to a copy in place of the names it touches ([`Zone::apply`]), folding a
//! run of them into one ([`Diff::condense`], RFC 1995 §4's condensed form), and the
//! byte form the store and a secondary's on-disk log keep ([`Diff::encode`],
//! [`Diff::decode`], bounds-checked: the bytes may come from a damaged file).
//!
//! Must not touch: the store or sockets (`keeper` keeps the journal, `dns` sends and
//! receives transfers), or what the records mean.
//!
//! Records are compared as the zone serves them: owner (without case), type, TTL and
//! rdata. A TTL change is a removal and an addition, as in RFC 1995. The apex SOA is
//! never among the records: it is the difference's `from` and `to`.

use super::index::{NameData, NodeKind, Rdata, ZoneTree, pack_rrsets};
use super::{Soa, Zone, soa_with_serial};
use crate::name::{TYPE_CNAME, TYPE_DS, TYPE_NS, TYPE_SOA};
use std::collections::HashMap;

/// RFC 6672 DNAME: like CNAME and NS, it changes how names below it are answered.
const TYPE_DNAME: u16 = 39;

/// One record of a difference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiffRecord {
    /// The owner's labels below the apex, closest to the apex first, each
    /// `[len][bytes]`, in the case the zone serves them.
    pub owner: Box<[u8]>,
    pub rtype: u16,
    pub ttl: u32,
    /// Uncompressed wire form.
    pub rdata: Box<[u8]>,
}

impl DiffRecord {
    /// The owner's labels below the apex, closest to the apex first.
    pub fn labels(&self) -> Vec<&[u8]> {
        crate::name::key_labels(&self.owner).collect()
    }

    /// The same record with its owner in lower case: the key records are matched by.
    fn key(&self) -> DiffRecord {
        DiffRecord {
            owner: self.owner.to_ascii_lowercase().into(),
            ..self.clone()
        }
    }
}

/// The apex SOA at one end of a difference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoaRecord {
    pub ttl: u32,
    pub rdata: Box<[u8]>,
}

impl SoaRecord {
    /// Its serial (0 when the rdata is not a SOA's).
    pub fn serial(&self) -> u32 {
        Soa::from_rdata(self.ttl, &self.rdata).map_or(0, |s| s.serial)
    }
}

/// What changed between two serials of a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub from: SoaRecord,
    pub to: SoaRecord,
    pub removed: Vec<DiffRecord>,
    pub added: Vec<DiffRecord>,
}

/// Why a difference could not be applied: the copy is not the one it starts from, or
/// it changes what an in-place edit cannot (a delegation, a CNAME or DNAME below the
/// apex, a SOA among the records). The secondary transfers the whole zone instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("the difference starts at serial {from}, the copy has {have}")]
    Serial { from: u32, have: u32 },
    #[error("{owner}: type {rtype} to remove is not in the zone")]
    NotPresent { owner: String, rtype: u16 },
    #[error("{owner}: type {rtype} to add is already in the zone")]
    AlreadyPresent { owner: String, rtype: u16 },
    #[error("{owner}: a change of type {rtype} is applied by a whole transfer only")]
    Unsupported { owner: String, rtype: u16 },
    #[error("the new SOA does not parse")]
    BadSoa,
}

/// Why a run of differences does not chain.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the difference to serial {to} is followed by one from serial {next_from}")]
pub struct ChainError {
    pub to: u32,
    pub next_from: u32,
}

/// Bytes that are not an encoded [`Diff`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("damaged difference record at byte {at}")]
pub struct DecodeError {
    pub at: usize,
}

/// The version byte [`Diff::encode`] writes first.
const FORMAT: u8 = 1;

impl Diff {
    /// Serial the difference starts from.
    pub fn from_serial(&self) -> u32 {
        self.from.serial()
    }

    /// Serial the difference ends at.
    pub fn to_serial(&self) -> u32 {
        self.to.serial()
    }

    /// Records removed and added.
    pub fn len(&self) -> usize {
        self.removed.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds consecutive differences into one from the first's `from` to the last's
    /// `to`: a record added then removed (or removed then added back) cancels out.
    /// `None` for an empty run.
    pub fn condense(diffs: impl IntoIterator<Item = Diff>) -> Result<Option<Diff>, ChainError> {
        let mut diffs = diffs.into_iter();
        let Some(first) = diffs.next() else {
            return Ok(None);
        };
        let key_map = |v: Vec<DiffRecord>| -> HashMap<DiffRecord, DiffRecord> {
            v.into_iter().map(|r| (r.key(), r)).collect()
        };
        let (from, mut to) = (first.from, first.to);
        let mut removed = key_map(first.removed);
        let mut added = key_map(first.added);
        for d in diffs {
            if d.from_serial() != to.serial() {
                return Err(ChainError {
                    to: to.serial(),
                    next_from: d.from_serial(),
                });
            }
            for r in d.removed {
                let key = r.key();
                if added.remove(&key).is_none() {
                    removed.insert(key, r);
                }
            }
            for r in d.added {
                let key = r.key();
                if removed.remove(&key).is_none() {
                    added.insert(key, r);
                }
            }
            to = d.to;
        }
        let sorted = |m: HashMap<DiffRecord, DiffRecord>| {
            let mut v: Vec<(DiffRecord, DiffRecord)> = m.into_iter().collect();
            v.sort_by(|a, b| (&a.0.owner, a.0.rtype).cmp(&(&b.0.owner, b.0.rtype)));
            v.into_iter().map(|(_, r)| r).collect()
        };
        Ok(Some(Diff {
            from,
            to,
            removed: sorted(removed),
            added: sorted(added),
        }))
    }

    /// Appends the byte form: a format byte, the two SOAs, then the removed and the
    /// added records, each list counted.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, (&self.from, &self.to));
        for list in [&self.removed, &self.added] {
            out.extend_from_slice(&(list.len() as u32).to_be_bytes());
            for r in list {
                put_record(out, (&r.owner, r.rtype, r.ttl, &r.rdata));
            }
        }
    }

    /// Reads the byte form back.
    pub fn decode(bytes: &[u8]) -> Result<Diff, DecodeError> {
        let mut c = Cursor { bytes, at: 0 };
        if c.take(1)? != [FORMAT] {
            return Err(DecodeError { at: 0 });
        }
        let mut soa = || -> Result<SoaRecord, DecodeError> {
            let ttl = c.u32()?;
            let len = c.u16()?;
            Ok(SoaRecord {
                ttl,
                rdata: c.take(len.into())?.into(),
            })
        };
        let (from, to) = (soa()?, soa()?);
        let removed = c.records()?;
        let added = c.records()?;
        if c.at != bytes.len() {
            return Err(DecodeError { at: c.at });
        }
        Ok(Diff {
            from,
            to,
            removed,
            added,
        })
    }
}

/// [`Diff::encode`]'s start: the format byte and the two SOAs.
fn put_header(out: &mut Vec<u8>, (from, to): (&SoaRecord, &SoaRecord)) {
    out.push(FORMAT);
    for soa in [from, to] {
        out.extend_from_slice(&soa.ttl.to_be_bytes());
        put_bytes16(out, &soa.rdata);
    }
}

/// One record of [`Diff::encode`]'s lists: `(owner, type, ttl, rdata)`.
fn put_record(out: &mut Vec<u8>, (owner, rtype, ttl, rdata): (&[u8], u16, u32, &[u8])) {
    out.push(owner.len() as u8);
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    put_bytes16(out, rdata);
}

fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let out = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(DecodeError { at: self.at })?;
        self.at += n;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn records(&mut self) -> Result<Vec<DiffRecord>, DecodeError> {
        let count = self.u32()? as usize;
        // A record takes at least 9 bytes: a count cannot promise more than that.
        let mut out = Vec::with_capacity(count.min((self.bytes.len() - self.at) / 9));
        for _ in 0..count {
            let len = self.take(1)?[0];
            let owner = self.take(len.into())?.into();
            let rtype = self.u16()?;
            let ttl = self.u32()?;
            let rdlen = self.u16()?;
            let rdata = self.take(rdlen.into())?.into();
            out.push(DiffRecord {
                owner,
                rtype,
                ttl,
                rdata,
            });
        }
        Ok(out)
    }
}

/// A name's records as `(type, ttl, rdata)`, the apex SOA left out.
fn records_of(data: Option<NameData<'_>>, apex: bool) -> Vec<(u16, u32, Rdata<'_>)> {
    let Some(node) = data else {
        return Vec::new();
    };
    node.rrsets()
        .filter(|s| !(apex && s.rtype == TYPE_SOA))
        .flat_map(|s| s.rdatas().map(move |rd| (s.rtype, s.ttl, rd)))
        .collect()
}

/// Calls `record(added, (owner, type, ttl, rdata))` for every record that one of two
/// copies of a zone serves and the other does not: first those `old` serves (not
/// added), then those `new` serves (added), name by name in canonical order. `owner`
/// is the name's labels below the apex, each `[len][bytes]`.
fn changed_records(old: &Zone, new: &Zone, mut record: impl FnMut(bool, (&[u8], u16, u32, &[u8]))) {
    let mut owner = Vec::new();
    ZoneTree::changed_names(&old.tree, &new.tree, |path, a, b| {
        let apex = path.is_empty();
        let (ra, rb) = (records_of(a, apex), records_of(b, apex));
        owner.clear();
        for l in path {
            owner.push(l.len() as u8);
            owner.extend_from_slice(l);
        }
        for (rtype, ttl, rd) in ra.iter().filter(|r| !rb.contains(r)) {
            record(false, (&owner, *rtype, *ttl, rd));
        }
        for (rtype, ttl, rd) in rb.iter().filter(|r| !ra.contains(r)) {
            record(true, (&owner, *rtype, *ttl, rd));
        }
    });
}

/// The records a difference removes from one name and adds to it.
type Touched<'d> = (Vec<&'d DiffRecord>, Vec<&'d DiffRecord>);

impl Zone {
    /// The difference from `old` to `new` (two copies of one zone): every record one
    /// serves and the other does not, derived prefix copies included (a secondary serves
    /// them as records). `None` when either copy lacks its SOA.
    pub fn diff(old: &Zone, new: &Zone) -> Option<Diff> {
        let (from, to) = (old.soa_record()?, new.soa_record()?);
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        changed_records(old, new, |is_added, (owner, rtype, ttl, rdata)| {
            let record = DiffRecord {
                owner: owner.into(),
                rtype,
                ttl,
                rdata: rdata.into(),
            };
            match is_added {
                false => removed.push(record),
                true => added.push(record),
            }
        });
        Some(Diff {
            from,
            to,
            removed,
            added,
        })
    }

    /// [`Zone::diff`] in its byte form ([`Diff::encode`]'s, byte for byte), written as
    /// the names are compared: no record is held on its own (a 10^6-number import's
    /// difference is millions of them). `None` when either copy lacks its SOA or the
    /// bytes would pass `max` (nothing more is written once they do).
    pub fn encoded_diff(old: &Zone, new: &Zone, max: usize) -> Option<Vec<u8>> {
        let (from, to) = (old.soa_record()?, new.soa_record()?);
        let mut out = Vec::new();
        put_header(&mut out, (&from, &to));
        let count_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let mut added = Vec::new();
        let (mut removed_count, mut added_count) = (0u32, 0u32);
        let mut over = false;
        changed_records(old, new, |is_added, record| {
            if over {
                return;
            }
            let (list, count) = match is_added {
                false => (&mut out, &mut removed_count),
                true => (&mut added, &mut added_count),
            };
            put_record(list, record);
            *count += 1;
            over = out.len() + added.len() + 4 > max;
        });
        if over || out.len() + 4 + added.len() > max {
            return None;
        }
        out[count_at..count_at + 4].copy_from_slice(&removed_count.to_be_bytes());
        out.extend_from_slice(&added_count.to_be_bytes());
        out.extend_from_slice(&added);
        Some(out)
    }

    /// The apex SOA as a difference carries it.
    fn soa_record(&self) -> Option<SoaRecord> {
        Some(SoaRecord {
            ttl: self.soa.ttl,
            rdata: self.soa_rdata()?.into(),
        })
    }

    /// This copy with `diff` applied: each name it touches rebuilt from its records
    /// minus the removed plus the added, the rest shared, then the new SOA. The copy
    /// must hold plain records (a secondary's); the result's serial is checked against
    /// the difference's end.
    pub fn apply(&self, diff: &Diff) -> Result<Zone, ApplyError> {
        if diff.from_serial() != self.soa.serial {
            return Err(ApplyError::Serial {
                from: diff.from_serial(),
                have: self.soa.serial,
            });
        }
        let mut by_owner: HashMap<Box<[u8]>, Touched<'_>> = HashMap::new();
        for r in &diff.removed {
            by_owner.entry(r.key().owner).or_default().0.push(r);
        }
        for r in &diff.added {
            by_owner.entry(r.key().owner).or_default().1.push(r);
        }
        let mut owners: Vec<_> = by_owner.into_iter().collect();
        owners.sort_by(|a, b| a.0.cmp(&b.0));
        // Each name's new data from this copy's, then every name set in one batch.
        let mut edits = Vec::with_capacity(owners.len());
        for (_, (removed, added)) in &owners {
            let any = removed.first().or(added.first()).copied();
            let Some(any) = any else { continue };
            let labels = any.labels();
            let data = self.applied_at(&labels, removed, added)?;
            edits.push((labels, data, NodeKind::Plain));
        }
        let mut stats = self.stats;
        let tree = self.tree.with_data_many(&edits, &mut stats);
        let zone = Zone {
            tree,
            stats,
            ..self.clone()
        };
        zone.with_soa(&diff.to).ok_or(ApplyError::BadSoa)
    }

    /// The data of the name `labels` with `removed` taken out and `added` put in.
    fn applied_at(
        &self,
        labels: &[&[u8]],
        removed: &[&DiffRecord],
        added: &[&DiffRecord],
    ) -> Result<Option<std::sync::Arc<[u8]>>, ApplyError> {
        let owner = || {
            let mut s: Vec<String> = labels
                .iter()
                .rev()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            s.push(self.origin.to_string());
            s.join(".")
        };
        let restricted = |t: u16| {
            t == TYPE_SOA
                || (!labels.is_empty() && [TYPE_NS, TYPE_DS, TYPE_CNAME, TYPE_DNAME].contains(&t))
        };
        if let Some(r) = removed.iter().chain(added).find(|r| restricted(r.rtype)) {
            return Err(ApplyError::Unsupported {
                owner: owner(),
                rtype: r.rtype,
            });
        }
        let current: Vec<(u16, u32, Vec<Rdata<'_>>)> = self
            .tree
            .name_data(labels)
            .map(|n| {
                n.rrsets()
                    .map(|s| (s.rtype, s.ttl, s.rdatas().collect()))
                    .collect()
            })
            .unwrap_or_default();
        let mut sets: Vec<(u16, u32, Vec<&[u8]>)> = current
            .iter()
            .map(|(t, ttl, rds)| (*t, *ttl, rds.iter().map(|r| &r[..]).collect()))
            .collect();
        for r in removed {
            let at = sets.iter_mut().find(|s| s.0 == r.rtype).and_then(|s| {
                let i = s.2.iter().position(|rd| *rd == &r.rdata[..])?;
                s.2.remove(i);
                Some(())
            });
            if at.is_none() {
                return Err(ApplyError::NotPresent {
                    owner: owner(),
                    rtype: r.rtype,
                });
            }
        }
        for r in added {
            match sets.iter_mut().find(|s| s.0 == r.rtype) {
                Some(s) if s.2.contains(&&r.rdata[..]) => {
                    return Err(ApplyError::AlreadyPresent {
                        owner: owner(),
                        rtype: r.rtype,
                    });
                }
                Some(s) => {
                    s.1 = r.ttl;
                    s.2.push(&r.rdata);
                }
                None => sets.push((r.rtype, r.ttl, vec![&r.rdata])),
            }
        }
        Ok(pack_rrsets(&sets))
    }

    /// A copy whose apex SOA is `soa` (timers and all); `None` when it does not parse.
    fn with_soa(&self, soa: &SoaRecord) -> Option<Zone> {
        let facts = Soa::from_rdata(soa.ttl, &soa.rdata)?;
        let apex = self.tree.apex();
        let mut sets: Vec<(u16, u32, Vec<&[u8]>)> = apex
            .rrsets()
            .filter(|s| s.rtype != TYPE_SOA)
            .map(|s| (s.rtype, s.ttl, s.rdatas().filter_map(Rdata::wire).collect()))
            .collect();
        sets.push((TYPE_SOA, soa.ttl, vec![&soa.rdata]));
        let mut zone = self.with_data::<&[u8]>(&[], pack_rrsets(&sets), NodeKind::Plain);
        zone.soa = facts;
        Some(zone)
    }

    /// The apex SOA as a [`SoaRecord`] carrying `serial`.
    pub fn soa_record_with_serial(&self, serial: u32) -> Option<SoaRecord> {
        Some(SoaRecord {
            ttl: self.soa.ttl,
            rdata: soa_with_serial(self.soa_rdata()?, serial).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Name;

    fn zone(body: &str, serial: u32) -> Zone {
        let origin = Name::from_text("4.4.e164.arpa.").unwrap();
        let text = format!(
            "$TTL 300\n@ IN SOA ns.example.net. h.example.net. {serial} 3600 900 604800 300\n@ IN NS ns.example.net.\n{body}"
        );
        Zone::from_master(text.as_bytes(), "t", &origin, None)
            .unwrap()
            .0
    }

    const A: &str = "1.2 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x!\" .\n";
    const B: &str = "3.4 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:b@x!\" .\n";
    const B2: &str = "3.4 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:b2@x!\" .\n";
    const C: &str = "5.6.7 60 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:c@x!\" .\n";

    #[test]
    fn a_difference_applied_gives_the_new_copy() {
        let old = zone(&format!("{A}{B}"), 1);
        let new = zone(&format!("{B2}{C}"), 2);
        let d = Zone::diff(&old, &new).unwrap();
        assert_eq!((d.from_serial(), d.to_serial()), (1, 2));
        assert_eq!((d.removed.len(), d.added.len()), (2, 2));
        let applied = old.apply(&d).unwrap();
        assert_eq!(applied.to_master(), new.to_master());
        assert_eq!(applied.soa, new.soa);
        assert_eq!(applied.stats.records, new.stats.records);
        assert!(Zone::diff(&applied, &new).unwrap().is_empty());
    }

    #[test]
    fn an_edited_copy_differs_only_where_it_was_edited() {
        let old = zone(&format!("{A}{B}"), 1);
        let labels: Vec<&[u8]> = vec![b"9", b"9"];
        let new = old
            .with_naptrs(
                &labels,
                Some((60, &[b"\x00\x01\x00\x01\x01u\x00\x00".to_vec()])),
            )
            .with_serial(2);
        let d = Zone::diff(&old, &new).unwrap();
        assert!(d.removed.is_empty());
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].labels(), labels);
    }

    #[test]
    fn condensing_cancels_and_checks_the_chain() {
        let z1 = zone(A, 1);
        let z2 = zone(&format!("{A}{B}"), 2);
        let z3 = zone(B2, 3);
        let d12 = Zone::diff(&z1, &z2).unwrap();
        let d23 = Zone::diff(&z2, &z3).unwrap();
        let c = Diff::condense([d12.clone(), d23.clone()]).unwrap().unwrap();
        assert_eq!((c.from_serial(), c.to_serial()), (1, 3));
        // B was added then removed: only A out and B2 in remain.
        assert_eq!((c.removed.len(), c.added.len()), (1, 1));
        assert_eq!(z1.apply(&c).unwrap().to_master(), z3.to_master());
        assert_eq!(
            Diff::condense([d23, d12]).unwrap_err(),
            ChainError {
                to: 3,
                next_from: 1
            }
        );
    }

    #[test]
    fn what_does_not_apply_cleanly_is_refused() {
        let old = zone(A, 1);
        let other = zone(B, 1);
        let d = Zone::diff(&other, &zone(B2, 2)).unwrap();
        assert!(matches!(old.apply(&d), Err(ApplyError::NotPresent { .. })));
        let d = Zone::diff(&zone("", 1), &zone(A, 2)).unwrap();
        assert!(matches!(
            old.apply(&d),
            Err(ApplyError::AlreadyPresent { .. })
        ));
        let d = Zone::diff(&zone(A, 5), &zone(B, 6)).unwrap();
        assert_eq!(
            old.apply(&d).err(),
            Some(ApplyError::Serial { from: 5, have: 1 })
        );
        let cut = "sub IN NS ns.sub\n";
        let d = Zone::diff(&old, &zone(&format!("{A}{cut}"), 2)).unwrap();
        assert!(matches!(old.apply(&d), Err(ApplyError::Unsupported { .. })));
    }

    #[test]
    fn the_byte_form_round_trips_and_damage_is_an_error() {
        let d = Zone::diff(&zone(&format!("{A}{B}"), 1), &zone(C, 2)).unwrap();
        let mut bytes = Vec::new();
        d.encode(&mut bytes);
        assert_eq!(Diff::decode(&bytes).unwrap(), d);
        for cut in 0..bytes.len() {
            assert!(Diff::decode(&bytes[..cut]).is_err());
        }
        // Written as the names are compared, the bytes are the same; past `max`, none.
        assert_eq!(
            Zone::encoded_diff(&zone(&format!("{A}{B}"), 1), &zone(C, 2), usize::MAX),
            Some(bytes.clone())
        );
        let big = Zone::encoded_diff(&zone(&format!("{A}{B}"), 1), &zone(C, 2), bytes.len() - 1);
        assert_eq!(big, None);
        let mut huge = vec![FORMAT];
        huge.extend_from_slice(&[0; 12]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Diff::decode(&huge).is_err());
    }
}
