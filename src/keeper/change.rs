//! A zone change and the one path it takes: the served copy and what changes (an edit
//! list, or a whole new copy) → one store transaction ([`Keeper::commit`]: the edits,
//! the raised serial and its SOA; fsynced) → the copy to serve, handed to the
//! [`super::Publisher`] with the cached decisions it makes stale ([`Keeper::publish`]).
//! The admin API's changes (`edit`) and SIGHUP's (`reload`) both take it.
//!
//! Owns: [`Change`] and [`Edit`], what each writes to the store (through
//! [`super::stored`]'s mapping), which cached decisions it makes stale, and when a large
//! change rebuilds the zone from the store rather than editing it name by name, and the
//! journal entry each change writes in the same transaction (the difference between the
//! served copy and the new one, for IXFR; see [`stored::write_journal`]).
//!
//! Must not touch: SQL (`store`, through [`super::stored`]), the index (`zone`'s
//! editing helpers), or which change to make (the callers').

use super::publish::Stale;
use super::staged::{RouteShapes, StagedZone};
use super::stored::{self, ZoneStoreError};
use super::{Keeper, Routes};
use crate::store::{Store, Write};
use crate::zone::index::NumbersNow;
use crate::zone::index::shape::{Digits, number_key};
use crate::zone::{ContentDigest, Zone};
use std::borrow::Cow;
use std::sync::Arc;

/// Above this many edits to one zone (a bulk import), the copy to serve is rebuilt from
/// the store rather than edited in the index: always for a zone in the trie form (an
/// edit copies a path), for a compact zone when they are over a quarter of its numbers
/// (else its overlay takes them, one fold for all).
const REBUILD_ABOVE: usize = 2000;

/// Most staged numbers the overlay takes: a larger import into a huge zone is rebuilt
/// from the store instead. Each costs the overlay ~40 bytes (its entry, its sorted key,
/// and a copy of both at the next edit), and a number that holds other records beside
/// its NAPTRs is decoded to its records (~100 bytes) for the edit.
const OVERLAY_MAX: usize = 4_000_000;

/// Numbers read from the served copy at a time for the store's rows when the copy is
/// rebuilt (see [`write_staged`]).
const READ_PART: usize = if cfg!(test) { 7 } else { 1 << 16 };

/// One zone's change.
pub enum Change<'a> {
    /// Edits to the served copy `old`; the serial goes one up
    /// ([`Zone::next_serial`]).
    Edit {
        old: Arc<Zone>,
        edits: Vec<Edit<'a>>,
    },
    /// A bulk import's numbers for one zone, set or deleted, in key order
    /// ([`super::staged`]); the serial goes one up. `zone` is the copy served when the
    /// keeper's lock was taken.
    Staged {
        zone: Arc<Zone>,
        numbers: StagedZone,
        shapes: &'a RouteShapes,
    },
    /// The whole zone replaced by `new`, serial and all; `file_digest` is the digest of
    /// the zone file it came from (`None`: not from a file).
    Whole {
        /// Boxed: a zone is large beside an edit list.
        new: Box<Zone>,
        file_digest: Option<ContentDigest>,
    },
}

/// What one edit changes, by the digits of its name below the apex (one label each,
/// closest to the apex first).
pub enum Edit<'a> {
    /// A number's NAPTRs set (`Some`) or removed (`None`).
    Number {
        /// `+digits`: the store keeps it beside the records, and its cached decision
        /// goes stale.
        number: &'a str,
        digits: Vec<u8>,
        routes: Option<&'a Routes>,
    },
    /// A prefix route set or removed: the NAPTRs of the wildcard below the name
    /// `digits`, marked managed. Any cached decision may go stale.
    Prefix {
        digits: Vec<u8>,
        routes: Option<&'a Routes>,
    },
}

impl Edit<'_> {
    /// The labels of the edited name (of the prefix, for a prefix route).
    pub fn labels(&self) -> Vec<&[u8]> {
        let (Edit::Number { digits, .. } | Edit::Prefix { digits, .. }) = self;
        digits.chunks(1).collect()
    }

    /// The routes set, as the NAPTR RRset the zone and the store take.
    pub fn naptrs(&self) -> Option<(u32, &[Vec<u8>])> {
        let (Edit::Number { routes, .. } | Edit::Prefix { routes, .. }) = self;
        routes.map(Routes::set)
    }
}

impl Change<'_> {
    /// The serial the zone has once the change is served.
    pub fn serial(&self) -> u32 {
        match self {
            Change::Edit { old, .. } => old.next_serial(),
            Change::Staged { zone, .. } => zone.next_serial(),
            Change::Whole { new, .. } => new.soa.serial,
        }
    }
}

/// A committed change, ready to serve: the new copy and the cached decisions it makes
/// stale.
pub(super) struct Ready<'a> {
    new: Zone,
    /// `None`: every cached decision; else those of these numbers.
    numbers: Option<Vec<Cow<'a, str>>>,
}

impl Ready<'_> {
    /// The copy to serve.
    pub(super) fn zone(&self) -> &Zone {
        &self.new
    }
}

impl Keeper {
    /// Writes `changes` to the store in one transaction, durable (fsynced) when this
    /// returns: each zone's edits with its new serial and SOA, or its whole new copy,
    /// and the difference in the zone's journal (for IXFR). Returns the copies to serve.
    pub(super) fn commit<'a>(
        &self,
        store: &mut Store,
        changes: Vec<Change<'a>>,
    ) -> Result<Vec<Ready<'a>>, ZoneStoreError> {
        let mut w = store.write()?;
        let mut ready = Vec::with_capacity(changes.len());
        for change in changes {
            ready.push(self.write_change(&mut w, change)?);
        }
        w.commit()?;
        Ok(ready)
    }

    /// Serves committed changes, in order, through the publisher, with the cached
    /// decisions each makes stale.
    pub(super) fn publish(&self, ready: Vec<Ready<'_>>) {
        let mut rebuilt = false;
        for Ready { new, numbers } in ready {
            let texts: Option<Vec<&str>> =
                numbers.as_ref().map(|n| n.iter().map(|n| &**n).collect());
            let stale = match &texts {
                Some(numbers) => Stale::Numbers(numbers),
                None => Stale::All,
            };
            rebuilt |= numbers.as_ref().is_none_or(|n| n.len() > REBUILD_ABOVE);
            self.publisher.publish(new, stale);
        }
        if rebuilt {
            release_free_memory();
        }
    }

    /// Writes one [`Change`] into the transaction `w` — its edits and the raised serial
    /// with its SOA, or the whole new copy — builds the copy to serve (for a large edit
    /// list, from the transaction's rows rather than name by name) and journals the
    /// difference from the served copy.
    fn write_change<'a>(
        &self,
        w: &mut Write<'_>,
        change: Change<'a>,
    ) -> Result<Ready<'a>, ZoneStoreError> {
        let serial = change.serial();
        let started = std::time::Instant::now();
        let names = match &change {
            Change::Edit { edits, .. } => Some(edits.len()),
            Change::Staged { numbers, .. } => Some(numbers.len()),
            Change::Whole { .. } => None,
        };
        let (old, ready, id) = match change {
            Change::Edit { old, edits } => {
                let id = w.zone(&old.origin_text)?;
                let large = edits.len() > REBUILD_ABOVE;
                let mut naptrs = stored::NaptrWriter::new(w, id)?;
                for e in in_key_order(&edits) {
                    match e {
                        Edit::Number { number, .. } => {
                            naptrs.write(w, (&e.labels(), Some(number)), e.naptrs())?
                        }
                        Edit::Prefix { .. } => {
                            stored::write_prefix(w, id, &e.labels(), e.naptrs())?
                        }
                    }
                }
                stored::write_serial(w, id, &old, serial)?;
                if large {
                    let ms = started.elapsed().as_millis() as u64;
                    tracing::info!(zone = %old.origin, edits = edits.len(), ms, "change: rows written");
                }
                // A compact zone takes edits into its overlay, one fold for all: cheaper
                // than a rebuild unless they are a good part of the zone. A zone in the
                // trie form copies a path per edit.
                let numbers = old.tree.numbers().map_or(0, |n| n.len());
                let ready = if large && (numbers == 0 || edits.len() > numbers / 4) {
                    // A million edits need not wait in memory for the rebuild.
                    drop(edits);
                    let new = stored::load_in(w, &old.origin)?;
                    Ready { new, numbers: None }
                } else {
                    let (new, numbers, prefix) = edited(&old, &edits);
                    let numbers =
                        (!prefix).then(|| numbers.into_iter().map(Cow::Borrowed).collect());
                    Ready { new, numbers }
                };
                (Some(old), ready, id)
            }
            Change::Staged {
                zone,
                numbers,
                shapes,
            } => {
                let id = w.zone(&zone.origin_text)?;
                let ready = write_staged(w, (id, &zone), numbers, shapes, started)?;
                (Some(zone), ready, id)
            }
            Change::Whole { new, file_digest } => {
                let id = w.zone(&new.origin_text)?;
                stored::write_zone(w, id, &new, file_digest)?;
                let old = self.served(&new.origin);
                let new = *new;
                (old, Ready { new, numbers: None }, id)
            }
        };
        let built_ms = started.elapsed().as_millis() as u64;
        let (from, to) = (old.as_deref(), &ready.new);
        stored::write_journal(w, id, (from, to), self.journal_max, names)?;
        if ready
            .numbers
            .as_ref()
            .is_none_or(|n| n.len() > REBUILD_ABOVE)
        {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(zone = %ready.new.origin, built_ms, ms, "change: copy built and journaled");
        }
        Ok(ready)
    }
}

/// Writes a staged zone's numbers (in key order) and raised serial into `w`, and builds
/// the copy to serve: from the transaction's rows when they are many (as for a large
/// edit list), else by editing the served copy.
fn write_staged<'a>(
    w: &mut Write<'_>,
    (id, old): (i64, &Zone),
    numbers: StagedZone,
    shapes: &RouteShapes,
    started: std::time::Instant,
) -> Result<Ready<'a>, ZoneStoreError> {
    let mut naptrs = stored::NaptrWriter::new(w, id)?;
    let count = numbers.len();
    let in_zone = old.tree.numbers().map_or(0, |n| n.len());
    let rebuild = count > REBUILD_ABOVE && (in_zone == 0 || count > (in_zone / 4).min(OVERLAY_MAX));
    // What each number holds now (in a compact zone): read once for the rows and the
    // copy when the served copy is edited, else a part at a time for the rows alone (a
    // replace of 10^8 numbers would hold 1.6 GB of them).
    let part_len = if rebuild {
        READ_PART
    } else {
        numbers.keyed.len().max(1)
    };
    let mut now = None;
    for part in numbers.keyed.chunks(part_len) {
        let keys: Vec<u64> = part.iter().map(|k| k.key).collect();
        now = old.tree.numbers_now(&keys);
        for (i, k) in part.iter().enumerate() {
            let digits = Digits::of_key(k.key);
            let digits = digits.as_bytes();
            let plain = match &now {
                Some(now) => now.only_naptrs(i),
                None => old.only_naptrs_at(&digits.chunks(1).collect::<Vec<_>>()),
            };
            let staged = shapes.get(k.shape).map(|s| (k.shape, s));
            let set = || shapes.naptr_set(k.shape, digits);
            naptrs.write_staged(w, (k.key, digits, plain), staged, set)?;
        }
    }
    for n in &numbers.named {
        let digits = numbers.digits_of(n);
        let labels: Vec<&[u8]> = digits.chunks(1).collect();
        let set = shapes.naptr_set(n.shape, digits)?;
        let set = set.as_ref().map(|(ttl, rds)| (*ttl, &rds[..]));
        naptrs.write(w, (&labels, Some(&n.number)), set)?;
    }
    stored::write_serial(w, id, old, old.next_serial())?;
    if count > REBUILD_ABOVE {
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(zone = %old.origin, edits = count, ms, "change: rows written");
    }
    if rebuild {
        drop((numbers, now));
        let new = stored::load_in(w, &old.origin)?;
        return Ok(Ready { new, numbers: None });
    }
    let new = staged_copy(old, &numbers, shapes, now.as_ref())?;
    let numbers = (count <= REBUILD_ABOVE).then(|| {
        let keyed = numbers
            .keyed
            .iter()
            .map(|k| stored::number_text(&numbers.prefix, k.key as i64));
        let named = numbers.named.iter().map(|n| n.number.to_string());
        keyed.chain(named).map(Cow::Owned).collect()
    });
    Ok(Ready { new, numbers })
}

/// `old` with the staged `numbers` edited in (one batch) and the serial raised. In a
/// compact zone (`now`: what its numbers hold, read for the rows), the numbers with
/// keys that hold NAPTRs and nothing else take their shapes as they are; other
/// numbers' NAPTR RRsets are decoded from their shapes for the zone's editing helpers,
/// which keep their other records.
fn staged_copy(
    old: &Zone,
    numbers: &StagedZone,
    shapes: &RouteShapes,
    now: Option<&NumbersNow>,
) -> Result<Zone, ZoneStoreError> {
    let zone = match now {
        Some(now) => {
            let keyed = numbers.keyed.iter().enumerate();
            let by_shape: Vec<_> = keyed
                .map(|(i, k)| (i, k.key, shapes.get(k.shape)))
                .collect();
            old.with_number_shapes(now, &by_shape)?
        }
        None => old.clone(),
    };
    let keyed = numbers
        .keyed
        .iter()
        .enumerate()
        .filter(|(i, _)| now.is_none_or(|now| !now.only_naptrs(*i)))
        .map(|(_, k)| (Digits::of_key(k.key).as_bytes().to_vec(), k.shape));
    let named = numbers
        .named
        .iter()
        .map(|n| (numbers.digits_of(n).to_vec(), n.shape));
    let mut decoded = Vec::new();
    for (digits, shape) in keyed.chain(named) {
        let set = shapes.naptr_set(shape, &digits)?;
        decoded.push((digits, set));
    }
    let batch: Vec<crate::zone::NaptrEdit<'_>> = decoded
        .iter()
        .map(|(digits, set)| {
            let set = set.as_ref().map(|(ttl, rds)| (*ttl, &rds[..]));
            (digits.chunks(1).collect(), set)
        })
        .collect();
    let zone = if batch.is_empty() {
        zone
    } else {
        zone.with_naptrs_many(&batch)
    };
    Ok(zone.with_serial(old.next_serial()))
}

/// The edits in the order of their numbers' keys (stable: a number edited twice keeps
/// its order; names that are not numbers last). The store's rows are independent, so
/// the order is free: in key order a large delta walks the numbers table's B-tree from
/// one end to the other, each page read and dirtied once, where a random order reads
/// pages over and over (a 10^6 delta on 10^8 numbers touches most of its leaves).
fn in_key_order<'e, 'a>(edits: &'e [Edit<'a>]) -> impl Iterator<Item = &'e Edit<'a>> {
    let key = |e: &Edit<'_>| {
        let (Edit::Number { digits, .. } | Edit::Prefix { digits, .. }) = e;
        match e {
            Edit::Number { .. } => number_key(digits).unwrap_or(u64::MAX),
            Edit::Prefix { .. } => u64::MAX,
        }
    };
    let mut order: Vec<(u64, u32)> = (0..edits.len() as u32)
        .map(|i| (key(&edits[i as usize]), i))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| &edits[i as usize])
}

/// Hands the heap's free pages back to the system after a zone was built whole: the
/// builder's arenas and the old copy's blocks are freed by then, but glibc keeps small
/// freed chunks in its arenas, so a process that imported 10^6 numbers would otherwise
/// hold several times the memory it serves from (measured by `scripts/bench-scale`).
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `old` with `edits` made and the serial raised; the numbers edited, and whether a
/// prefix route was.
fn edited<'a>(old: &Zone, edits: &[Edit<'a>]) -> (Zone, Vec<&'a str>, bool) {
    let mut numbers = Vec::with_capacity(edits.len());
    let mut prefix = false;
    let mut new: Option<Zone> = None;
    // Number edits go in batches (one index copy each), cut at a prefix route (its
    // copies depend on the numbers before it) and at a number named twice.
    let mut batch: Vec<crate::zone::NaptrEdit<'_>> = Vec::new();
    let mut named = std::collections::HashSet::new();
    let flush =
        |batch: &mut Vec<_>, named: &mut std::collections::HashSet<_>, new: &mut Option<Zone>| {
            if !batch.is_empty() {
                *new = Some(new.as_ref().unwrap_or(old).with_naptrs_many(batch));
                batch.clear();
                named.clear();
            }
        };
    for e in edits {
        match e {
            Edit::Number { number, .. } => {
                numbers.push(*number);
                if !named.insert(*number) {
                    flush(&mut batch, &mut named, &mut new);
                    named.insert(*number);
                }
                batch.push((e.labels(), e.naptrs()));
            }
            Edit::Prefix { .. } => {
                flush(&mut batch, &mut named, &mut new);
                prefix = true;
                let base = new.as_ref().unwrap_or(old);
                new = Some(base.with_prefix_naptrs(&e.labels(), e.naptrs()));
            }
        }
    }
    flush(&mut batch, &mut named, &mut new);
    let new = new.as_ref().unwrap_or(old).with_serial(old.next_serial());
    (new, numbers, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keeper::staged::Repeats;
    use crate::keeper::{ImportCounts, ImportOptions, keeper_for_tests};
    use crate::name::Name;
    use crate::zone::ZoneSet;

    /// A NAPTR rdata in wire form: 100 10 "u" "E2U+sip" "!^.*$!sip:<user>@example.net!" .
    /// A route (TTL 60) for each of `users`, in order.
    fn routes(users: &[&str]) -> Routes {
        Routes {
            ttl: 60,
            naptrs: users.iter().map(|u| naptr(u)).collect(),
        }
    }

    fn naptr(user: &str) -> Vec<u8> {
        let mut rd = vec![0, 100, 0, 10];
        let regexp = format!("!^.*$!sip:{user}@example.net!");
        for s in ["u", "E2U+sip", regexp.as_str()] {
            rd.push(s.len() as u8);
            rd.extend_from_slice(s.as_bytes());
        }
        rd.push(0);
        rd
    }

    #[test]
    fn a_large_import_serves_what_editing_would_and_what_the_store_holds() {
        // A delegation keeps the zone in the trie form: rebuilt from the store.
        for delegation in ["", "sub IN NS ns.sub.example.\n"] {
            a_large_import_in(delegation);
        }
    }

    fn a_large_import_in(delegation: &str) {
        // A number with a TXT beside its routes keeps it through both imports.
        let more_text = format!("{delegation}1.1.0.0.0.1 IN TXT \"kept\"\n");
        let (keeper, zones, dir) = keeper_for_tests("9.9.9.4.4.e164.arpa.", &more_text);
        let path = dir.path().join("enroute.db");
        let zone = zones.load().iter().next().unwrap().clone();
        assert_eq!(zone.tree.numbers().is_none(), !delegation.is_empty());
        drop(zone);
        // Every other number's route carries the number itself: those share one shape.
        let items: Vec<(String, Routes)> = (0..REBUILD_ABOVE + 1)
            .map(|i| {
                let number = format!("+4499910{i:04}");
                let user = if i % 2 == 0 {
                    number.clone()
                } else {
                    format!("u{i}")
                };
                let naptrs = vec![naptr(&user)];
                (number, Routes { ttl: 60, naptrs })
            })
            .collect();
        let old = zones.load().iter().next().unwrap().clone();
        let edits: Vec<Edit<'_>> = items
            .iter()
            .map(|(number, routes)| Edit::Number {
                number,
                digits: old.number_labels(&number[1..]).unwrap(),
                routes: Some(routes),
            })
            .collect();
        let (in_memory, numbers, prefix) = edited(&old, &edits);
        assert_eq!((numbers.len(), prefix), (items.len(), false));
        drop(old);

        let counts = import(&keeper, items.iter().map(|(n, r)| (n.as_str(), Some(r))));
        assert_eq!((counts.numbers, counts.routes), (items.len(), items.len()));
        let served = zones.load().iter().next().unwrap().clone();
        assert_eq!(served.soa.serial, 8, "one serial step for the whole import");
        assert_eq!(served.soa.serial, in_memory.soa.serial);
        let delegations = usize::from(!delegation.is_empty());
        assert_eq!(served.stats.records, 3 + delegations + items.len());
        assert_eq!(served.content_digest(), in_memory.content_digest());
        assert_store_holds_what_is_served(&path, &served);
        let labels: Vec<&[u8]> = b"100042".chunks(1).collect();
        let (ttl, rdatas) = served.naptr_at(&labels).unwrap();
        let rdatas: Vec<Vec<u8>> = rdatas.iter().map(|r| r.to_vec()).collect();
        assert_eq!((ttl, rdatas), (60, vec![naptr("+44999100042")]));

        // A small merge edits the served copy: rows of one number far apart add up, a
        // delete, a number given the routes it has, a new one.
        let more = routes(&["more"]);
        let (kept, second) = (&items[7].1, &items[9].1);
        let rows = [
            ("+44999100007", Some(kept)),
            ("+44999100008", None),
            ("+44999100009", Some(second)),
            ("+44999130000", Some(&more)),
            ("+44999100007", Some(&more)),
            ("+44999100011", Some(&more)),
        ];
        let before = zones.load().iter().next().unwrap().clone();
        let counts = import(&keeper, rows.iter().copied());
        assert_eq!((counts.numbers, counts.deleted, counts.routes), (4, 1, 5));
        let served = zones.load().iter().next().unwrap().clone();
        assert_eq!(served.soa.serial, 9);
        // The same as editing the numbers one by one would serve, and journaled as the
        // difference between the two copies.
        let joined = routes(&["u7", "more"]);
        let wanted = [
            ("+44999100007", Some(&joined)),
            ("+44999100008", None),
            ("+44999100009", Some(second)),
            ("+44999130000", Some(&more)),
            ("+44999100011", Some(&more)),
        ];
        let edits: Vec<Edit<'_>> = wanted
            .iter()
            .map(|(number, routes)| Edit::Number {
                number,
                digits: before.number_labels(&number[1..]).unwrap(),
                routes: *routes,
            })
            .collect();
        let (one_by_one, _, _) = edited(&before, &edits);
        assert_eq!(served.content_digest(), one_by_one.content_digest());
        let counts_of = |z: &Zone| (z.stats.records, z.stats.naptr_records, z.stats.nodes);
        assert_eq!(counts_of(&served), counts_of(&one_by_one));
        let reader = Store::open_reader(&path).unwrap().unwrap();
        let journal = reader.journal_from(&served.origin.to_string(), 8).unwrap();
        let mut diff = Vec::new();
        Zone::diff(&before, &served).unwrap().encode(&mut diff);
        assert_eq!(
            journal.last().map(|j| (j.0, j.1, &j.2)),
            Some((8, 9, &diff))
        );
        // Out: 100008's route and 100011's old one. In: "more" at 100007 (beside its
        // route), 130000 and 100011. 100009 got the route it had.
        let decoded = crate::zone::diff::Diff::decode(&diff).unwrap();
        assert_eq!((decoded.removed.len(), decoded.added.len()), (2, 3));
        assert_eq!(served.stats.records, 3 + delegations + items.len() + 1);
        let txt_of = |digits: &[u8]| {
            let labels: Vec<&[u8]> = digits.chunks(1).collect();
            let data = served.tree.name_data(&labels);
            data.and_then(|d| d.rrset(16)).map(|set| set.count)
        };
        assert_eq!(
            txt_of(b"100011"),
            Some(1),
            "the TXT beside the routes stays"
        );
        let naptrs_of = |digits: &[u8]| {
            let labels: Vec<&[u8]> = digits.chunks(1).collect();
            served
                .naptr_at(&labels)
                .map(|(_, rds)| rds.iter().map(|r| r.to_vec()).collect::<Vec<_>>())
        };
        assert_eq!(naptrs_of(b"100007"), Some(vec![naptr("u7"), naptr("more")]));
        assert_eq!(naptrs_of(b"100008"), None);
        assert_eq!(naptrs_of(b"130000"), Some(vec![naptr("more")]));
        assert_eq!(naptrs_of(b"100011"), Some(vec![naptr("more")]));
        assert_store_holds_what_is_served(&path, &served);
    }

    /// Stages `rows` (`(number, routes)`, `None` deletes) as one merge import into
    /// `keeper` and commits it.
    fn import<'r>(
        keeper: &Keeper,
        rows: impl Iterator<Item = (&'r str, Option<&'r Routes>)>,
    ) -> ImportCounts {
        import_with(keeper, &ImportOptions::default(), rows, |_| {})
    }

    /// [`import`] with `options`, calling `before` with each row's place (from 0) before
    /// the row is staged.
    fn import_with<'r>(
        keeper: &Keeper,
        options: &ImportOptions,
        rows: impl Iterator<Item = (&'r str, Option<&'r Routes>)>,
        mut before: impl FnMut(usize),
    ) -> ImportCounts {
        let mut stager = keeper.stager(options, Repeats::Append, 64).unwrap();
        for (i, (number, routes)) in rows.enumerate() {
            before(i);
            let routes = routes.map(|r| (r.ttl, &r.naptrs[..]));
            stager.add(i + 1, number, routes).unwrap();
        }
        keeper.import(stager.finish(100).unwrap()).unwrap()
    }

    /// A keeper of the compact zone 9.9.9.4.4.e164.arpa. (serial 7).
    fn keeper_of_a_zone() -> (Keeper, Arc<ZoneSet>, tempfile::TempDir) {
        keeper_for_tests("9.9.9.4.4.e164.arpa.", "")
    }

    /// The numbers with NAPTRs the served zone holds, below its apex, sorted.
    fn served_numbers(zones: &ZoneSet) -> Vec<String> {
        let zone = zones.load().iter().next().unwrap().clone();
        let mut out = Vec::new();
        zone.for_each_name(|labels, mut sets| {
            if sets.any(|s| s.rtype == crate::name::TYPE_NAPTR) && !labels.is_empty() {
                out.push(labels.iter().map(|l| String::from_utf8_lossy(l)).collect());
            }
        });
        out.sort();
        out
    }

    #[test]
    fn an_import_goes_on_past_edits_published_during_its_upload() {
        let (keeper, zones, dir) = keeper_of_a_zone();
        let routes = routes(&["a"]);
        let numbers = ["+4499910001", "+4499910002", "+4499910003", "+4499910004"];
        let origin = Name::from_text("9.9.9.4.4.e164.arpa.").unwrap();
        for zone in [None, Some(origin)] {
            let options = ImportOptions {
                replace: false,
                zone,
            };
            let rows = numbers.iter().map(|n| (*n, Some(&routes)));
            // Before the first row and after the second, an API edit publishes a new
            // copy of the zone.
            let counts = import_with(&keeper, &options, rows, |at| {
                if at % 2 == 0 {
                    let number = format!("+449992000{at}");
                    keeper.set_number(&number, Some(&routes)).unwrap();
                }
            });
            assert_eq!(counts.numbers, 4, "{options:?}");
        }
        let served = zones.load().iter().next().unwrap().clone();
        assert_eq!(served.soa.serial, 13, "four edits and two imports after 7");
        assert_eq!(
            served_numbers(&zones),
            ["10001", "10002", "10003", "10004", "20000", "20002"]
        );
        assert_store_holds_what_is_served(&dir.path().join("enroute.db"), &served);
    }

    #[test]
    fn a_replace_leaves_exactly_the_upload_with_numbers_too_long_for_a_key() {
        let (keeper, zones, dir) = keeper_of_a_zone();
        let routes = routes(&["a"]);
        // 16 and 17 digits below the apex: kept by text.
        let (long, longer) = ("+449991234567890123456", "+4499912345678901234567");
        let first = ["+4499910001", "+4499910002", long];
        let counts = import(&keeper, first.iter().map(|n| (*n, Some(&routes))));
        assert_eq!(counts.numbers, 3);
        let origin = Name::from_text("9.9.9.4.4.e164.arpa.").unwrap();
        let replace = ImportOptions {
            replace: true,
            zone: Some(origin),
        };
        let second = ["+4499910002", "+4499910003", longer];
        let rows = second.iter().map(|n| (*n, Some(&routes)));
        let counts = import_with(&keeper, &replace, rows, |_| {});
        assert_eq!((counts.numbers, counts.deleted), (3, 2), "{counts:?}");
        assert_eq!(
            served_numbers(&zones),
            ["10002", "10003", "12345678901234567"]
        );
        let served = zones.load().iter().next().unwrap().clone();
        assert_store_holds_what_is_served(&dir.path().join("enroute.db"), &served);
    }

    fn assert_store_holds_what_is_served(path: &std::path::Path, served: &Zone) {
        let reader = Store::open_reader(path).unwrap().unwrap();
        let kept = stored::load(&reader, &served.origin).unwrap();
        assert_eq!(
            kept.content_digest(),
            served.content_digest(),
            "the store holds what is served"
        );
    }

    #[test]
    fn every_change_is_journaled_with_its_difference_and_the_journal_is_bounded() {
        let (mut keeper, zones, dir) = keeper_of_a_zone();
        let origin = Name::from_text("9.9.9.4.4.e164.arpa.").unwrap();
        let path = dir.path().join("enroute.db");
        keeper.journal_max = 3;
        let routes = routes(&["a"]);
        for i in 0..5 {
            keeper
                .set_number(&format!("+44999100{i}"), Some(&routes))
                .unwrap();
        }
        keeper.set_number("+449991000", None).unwrap();
        let reader = Store::open_reader(&path).unwrap().unwrap();
        let text = origin.to_string();
        // Six changes (serials 8..13), three kept: from 10 on.
        assert!(reader.journal_from(&text, 9).unwrap().is_empty());
        let kept = reader.journal_from(&text, 10).unwrap();
        let serials: Vec<(u32, u32)> = kept.iter().map(|(a, b, _)| (*a, *b)).collect();
        assert_eq!(serials, vec![(10, 11), (11, 12), (12, 13)]);
        let last = crate::zone::diff::Diff::decode(&kept[2].2).unwrap();
        assert_eq!((last.removed.len(), last.added.len()), (1, 0));
        assert_eq!(
            last.removed[0].labels(),
            b"1000".chunks(1).collect::<Vec<_>>()
        );
        let served = zones.load().iter().next().unwrap().clone();
        let first = zones_at(&reader, &origin, 10);
        let diffs = kept
            .iter()
            .map(|(_, _, d)| crate::zone::diff::Diff::decode(d).unwrap());
        let condensed = crate::zone::diff::Diff::condense(diffs).unwrap().unwrap();
        assert_eq!(
            first.apply(&condensed).unwrap().to_master(),
            served.to_master()
        );
    }

    /// The zone as it was at `serial`, rebuilt by taking the journal's later changes
    /// back out of the stored copy.
    fn zones_at(store: &Store, origin: &Name, serial: u32) -> Zone {
        let now = stored::load(store, origin).unwrap();
        let mut back = Vec::new();
        for (_, _, d) in store.journal_from(&origin.to_string(), serial).unwrap() {
            back.push(crate::zone::diff::Diff::decode(&d).unwrap());
        }
        let mut zone = now;
        for d in back.into_iter().rev() {
            let undo = crate::zone::diff::Diff {
                from: d.to,
                to: d.from,
                removed: d.added,
                added: d.removed,
            };
            zone = zone.apply(&undo).unwrap();
        }
        zone
    }
}
