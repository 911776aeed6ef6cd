//! Reading the IXFR journal back (SPEC §12): the changes a secondary at some serial
//! lacks, condensed into one difference, and how many changes each zone keeps.
//!
//! Owns: [`Journal`], which opens its own read connection per use (WAL lets it read
//! beside the keeper's writer without waiting for its lock), the rule that a journal
//! answer must lead exactly to the served serial, and the
//! `enroute_zone_journal_changes` metric.
//!
//! Must not touch: writing the journal (each change writes its entry in its own
//! transaction: `change` and `stored::write_journal`), sockets or the DNS wire form
//! (`dns` streams what this returns).

use crate::store::{Store, StoreError};
use crate::zone::Zone;
use crate::zone::diff::{DecodeError, Diff};
use std::path::PathBuf;

/// Why the journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("journal of {origin}: {source}")]
    Damaged {
        origin: String,
        #[source]
        source: DecodeError,
    },
}

/// The store's journal, read-only.
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn new(path: PathBuf) -> Self {
        Journal { path }
    }

    /// The condensed difference from `serial` to `zone`'s (served) serial; `None` when
    /// the journal does not lead from one to the other (the secondary is older than the
    /// journal's first change, or a change broke its history), or when the difference
    /// holds more records than the zone itself (the whole zone is then smaller). Entries
    /// past the served serial (committed, not yet swapped in) are left for next time.
    /// Changes are read one at a time and reading stops at the first one past those
    /// bounds, so memory stays within about the zone's own size. Blocks on SQLite: call
    /// it off the runtime's workers.
    pub fn since(&self, zone: &Zone, serial: u32) -> Result<Option<Diff>, JournalError> {
        let Some(store) = Store::open_reader(&self.path)? else {
            return Ok(None);
        };
        let origin = zone.origin_text.to_string();
        let target = zone.soa.serial;
        let mut diffs = Vec::new();
        let mut records = 0usize;
        let mut damaged = None;
        let mut reached = false;
        // What an AXFR would send, counted only when a difference comes near it (the
        // derived prefix copies of a compact zone take a walk to count).
        let mut served: Option<usize> = None;
        // One change read at a time; the first that breaks a rule ends the reading.
        store.journal_each(&origin, serial, |from, to, bytes| {
            let diff = match Diff::decode(bytes) {
                Ok(d) => d,
                Err(e) => {
                    damaged = Some(e);
                    return false;
                }
            };
            records += diff.len();
            let larger_than_zone = records > zone.stats.records
                && records > *served.get_or_insert_with(|| zone.served_records());
            if from != diff.from_serial() || to != diff.to_serial() || larger_than_zone {
                return false;
            }
            diffs.push(diff);
            reached = to == target;
            !reached
        })?;
        if let Some(source) = damaged {
            return Err(JournalError::Damaged { origin, source });
        }
        if !reached {
            return Ok(None);
        }
        Ok(Diff::condense(diffs).ok().flatten())
    }
}

impl crate::metrics::Source for Journal {
    fn families(&self, out: &mut Vec<crate::metrics::Family>) {
        let mut family = crate::metrics::Family::gauge(
            "enroute_zone_journal_changes",
            "Serial changes kept in the IXFR journal, per zone.",
            &["zone"],
        );
        let counts = Store::open_reader(&self.path).and_then(|s| match s {
            Some(s) => s.journal_counts(),
            None => Ok(Vec::new()),
        });
        match counts {
            Ok(counts) => {
                for (zone, n) in counts {
                    family.value(&[&zone], n as f64);
                }
            }
            Err(e) => tracing::warn!("metrics: journal not readable: {e}"),
        }
        out.push(family);
    }
}
