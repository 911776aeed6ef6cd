//! A zone change and the one path it takes: the served copy and what changes (an edit
//! list, or a whole new copy) → one store transaction ([`Keeper::commit`]: the edits,
//! the raised serial and its SOA; fsynced) → the copy to serve, handed to the
//! [`super::Publisher`] with the cached decisions it makes stale ([`Keeper::publish`]).
//! The admin API's changes (`edit`) and SIGHUP's (`reload`) both take it.
//!
//! Owns: [`Change`] and [`Edit`], what each writes to the store (through
//! [`super::stored`]'s mapping), which cached decisions it makes stale, and when a large
//! change rebuilds the zone from the store rather than editing it name by name. An IXFR
//! journal belongs in [`Keeper::commit`]'s transaction: each change there has the old
//! copy and its edits (or the whole new copy).
//!
//! Must not touch: SQL (`store`, through [`super::stored`]), the index (`zone`'s
//! editing helpers), or which change to make (the callers').

use super::publish::Stale;
use super::stored::{self, ZoneStoreError};
use super::{Keeper, Routes};
use crate::store::{Store, StoreError, Write};
use crate::zone::{ContentDigest, Zone};
use std::sync::Arc;

/// Above this many edits to one zone (a bulk import), the copy to serve is rebuilt from
/// the store rather than edited in the index name by name.
const REBUILD_ABOVE: usize = 2000;

/// One zone's change.
pub enum Change<'a> {
    /// Edits to the served copy `old`; the serial goes one up
    /// ([`Zone::next_serial`]).
    Edit {
        old: Arc<Zone>,
        edits: Vec<Edit<'a>>,
    },
    /// The whole zone replaced by `new`, serial and all; `file_digest` is the digest of
    /// the zone file it came from (`None`: not from a file).
    Whole {
        new: Zone,
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
    /// The zone changed: the served copy the edits start from, or the whole new copy.
    pub fn zone(&self) -> &Zone {
        match self {
            Change::Edit { old, .. } => old,
            Change::Whole { new, .. } => new,
        }
    }

    /// The serial the zone has once the change is served.
    pub fn serial(&self) -> u32 {
        match self {
            Change::Edit { old, .. } => old.next_serial(),
            Change::Whole { new, .. } => new.soa.serial,
        }
    }
}

impl Keeper {
    /// Writes `changes` to the store in one transaction, durable (fsynced) when this
    /// returns: each zone's edits with its new serial and SOA, or its whole new copy.
    pub(super) fn commit(
        &self,
        store: &mut Store,
        changes: &[Change<'_>],
    ) -> Result<(), StoreError> {
        let mut w = store.write()?;
        for change in changes {
            write_change(&mut w, change)?;
        }
        w.commit()
    }

    /// Serves committed `changes`, in order: each edited copy (or, for a large edit list,
    /// the zone rebuilt from `store`) through the publisher, with the cached decisions it
    /// makes stale.
    pub(super) fn publish(
        &self,
        store: &Store,
        changes: Vec<Change<'_>>,
    ) -> Result<(), ZoneStoreError> {
        for change in changes {
            match change {
                Change::Whole { new, .. } => self.publisher.publish(new, Stale::All),
                Change::Edit { old, edits } if edits.len() > REBUILD_ABOVE => {
                    // The store holds every edit now; a million of them need not wait
                    // in memory for the rebuild.
                    drop(edits);
                    let new = stored::load(store, &old.origin)?;
                    // The served copy may be freed only once nothing here holds it.
                    drop(old);
                    self.publisher.publish(new, Stale::All);
                }
                Change::Edit { old, edits } => {
                    let (new, numbers, prefix) = edited(&old, &edits);
                    drop(old);
                    let stale = if prefix {
                        Stale::All
                    } else {
                        Stale::Numbers(&numbers)
                    };
                    self.publisher.publish(new, stale);
                }
            }
        }
        Ok(())
    }
}

/// Writes one [`Change`] into the transaction `w`: its edits and the raised serial with
/// its SOA, or the whole new copy.
fn write_change(w: &mut Write<'_>, change: &Change<'_>) -> Result<(), StoreError> {
    match change {
        Change::Edit { old, edits } => {
            let id = w.zone(&old.origin_text)?;
            for e in edits {
                match e {
                    Edit::Number { number, .. } => {
                        stored::write_naptrs(w, id, &e.labels(), Some(number), e.naptrs())?
                    }
                    Edit::Prefix { .. } => stored::write_prefix(w, id, &e.labels(), e.naptrs())?,
                }
            }
            stored::write_serial(w, id, old, change.serial())
        }
        Change::Whole { new, file_digest } => {
            let id = w.zone(&new.origin_text)?;
            stored::write_zone(w, id, new, *file_digest)
        }
    }
}

/// `old` with `edits` made and the serial raised; the numbers edited, and whether a
/// prefix route was.
fn edited<'a>(old: &Zone, edits: &[Edit<'a>]) -> (Zone, Vec<&'a str>, bool) {
    let mut numbers = Vec::with_capacity(edits.len());
    let mut prefix = false;
    let mut new: Option<Zone> = None;
    for e in edits {
        let base = new.as_ref().unwrap_or(old);
        new = Some(match e {
            Edit::Number { number, .. } => {
                numbers.push(*number);
                base.with_naptrs(&e.labels(), e.naptrs())
            }
            Edit::Prefix { .. } => {
                prefix = true;
                base.with_prefix_naptrs(&e.labels(), e.naptrs())
            }
        });
    }
    let new = new.as_ref().unwrap_or(old).with_serial(old.next_serial());
    (new, numbers, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::keeper::{Hooks, ImportItem, Publisher};
    use crate::name::Name;
    use crate::zone::ZoneSet;

    /// A NAPTR rdata in wire form: 100 10 "u" "E2U+sip" "!^.*$!sip:<user>@example.net!" .
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
    fn a_large_import_rebuilt_from_the_store_serves_what_editing_would() {
        let origin = Name::from_text("9.9.9.4.4.e164.arpa.").unwrap();
        let text = "$TTL 300\n@ IN SOA ns.example.net. hostmaster.example.net. 7 3600 900 604800 300\n@ IN NS ns.example.net.\n";
        let (zone, _) = Zone::from_master(text.as_bytes(), "test", &origin, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        stored::save(&mut store, &zone, None).unwrap();
        let zones = Arc::new(ZoneSet::new(vec![zone]));
        let publisher = Arc::new(Publisher::new(zones.clone(), Hooks::default()));
        let keeper = Keeper::new(store, publisher, &Config::builtin());
        let items: Vec<ImportItem> = (0..REBUILD_ABOVE + 1)
            .map(|i| ImportItem {
                line: i + 1,
                number: format!("+4499910{i:04}"),
                routes: Routes {
                    ttl: 60,
                    naptrs: vec![naptr(&format!("u{i}"))],
                },
            })
            .collect();
        let old = zones.load().iter().next().unwrap().clone();
        let edits: Vec<Edit<'_>> = items
            .iter()
            .map(|item| Edit::Number {
                number: &item.number,
                digits: old.number_labels(&item.number[1..]).unwrap(),
                routes: Some(&item.routes),
            })
            .collect();
        let (in_memory, numbers, prefix) = edited(&old, &edits);
        assert_eq!((numbers.len(), prefix), (items.len(), false));
        drop(old);

        assert_eq!(keeper.import(&items).unwrap(), (items.len(), items.len()));
        let served = zones.load().iter().next().unwrap().clone();
        assert_eq!(served.soa.serial, 8, "one serial step for the whole import");
        assert_eq!(served.soa.serial, in_memory.soa.serial);
        assert_eq!(served.stats.records, 2 + items.len());
        assert_eq!(served.content_digest(), in_memory.content_digest());
        let labels: Vec<&[u8]> = b"100042".chunks(1).collect();
        let (ttl, rdatas) = served.naptr_at(&labels).unwrap();
        assert_eq!((ttl, rdatas), (60, vec![&naptr("u42")[..]]));
    }
}
