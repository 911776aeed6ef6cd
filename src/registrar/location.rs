//! The location service in memory: each AOR's bindings, read by the redirect server on
//! every INVITE and changed only by the registrar's writer (`registrar::writer`) once
//! the change is on disk.
//!
//! Owns: [`Binding`], the sharded map from canonical AOR to its bindings, how RFC 3261
//! §10.3 steps 6–8 change one AOR's list ([`apply`]: add, refresh, remove, `*`,
//! Call-ID/CSeq ordering, the bound on bindings), and which bindings are live at a time.
//!
//! Must not touch: SQLite (the writer persists), SIP messages (the caller hands over
//! the contacts it read), authentication.
//!
//! Reads take one shard's read lock for a hash lookup, never across an await; a server
//! with no binding at all answers from one atomic load.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shards of the map: writers (one thread) and INVITE readers rarely meet on one.
const SHARDS: usize = 64;

/// One contact an AOR is reachable at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI as registered.
    pub contact: Box<str>,
    /// q in thousandths (1000 when the Contact had none).
    pub q: u16,
    /// When it expires (unix seconds).
    pub expires_at: u64,
    /// The REGISTER's Call-ID and CSeq that last set it (RFC 3261 §10.3 step 7).
    pub call_id: Box<str>,
    pub cseq: u32,
    /// When it was last set (unix milliseconds): the more recent ranks first among equal q.
    pub updated_ms: u64,
}

impl Binding {
    /// Seconds left at `now` (0 once expired).
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// One contact of a REGISTER, as the SIP side read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    pub uri: String,
    /// In thousandths.
    pub q: u16,
    /// Seconds, already cut to `max_expires_s` (0: remove).
    pub expires: u32,
}

/// What a REGISTER asks of an AOR's bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact: list the bindings.
    Query,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    /// One or more contacts to add, refresh or remove.
    Set(Vec<ContactRequest>),
}

/// A REGISTER's change, authenticated and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The canonical AOR.
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    pub contacts: Contacts,
}

/// Why an update was refused (RFC 3261 §10.3): nothing of it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A binding's Call-ID matches and the request's CSeq is not higher (500).
    #[error("CSeq not higher than the binding's")]
    OutOfOrder,
    /// More bindings than `registrar.max_bindings` (403).
    #[error("Too many bindings")]
    TooMany,
    /// The store could not be written (500); nothing changed.
    #[error("Registrar store failed")]
    Store,
    /// The writer's queue is full (503): nothing was queued.
    #[error("Registrar busy")]
    Busy,
    /// The AOR has no user any more (deleted since the REGISTER was authenticated).
    #[error("No such user")]
    NoUser,
}

/// Applies `u` at `now` (seconds; `now_ms` for ordering) to `current` (an AOR's
/// bindings), returning the new list with expired bindings dropped, or why nothing
/// changes (RFC 3261 §10.3 steps 6 and 7; SPEC: max bindings per AOR).
pub fn apply(
    current: &[Binding],
    u: &Update,
    now: u64,
    now_ms: u64,
    max_bindings: usize,
) -> Result<Vec<Binding>, Refused> {
    let live = current.iter().filter(|b| b.expires_at > now);
    let mut next: Vec<Binding> = live.cloned().collect();
    match &u.contacts {
        Contacts::Query => {}
        Contacts::RemoveAll => {
            // Step 6: a binding of the same Call-ID goes only for a higher CSeq.
            if next
                .iter()
                .any(|b| *b.call_id == *u.call_id && u.cseq <= b.cseq)
            {
                return Err(Refused::OutOfOrder);
            }
            next.clear();
        }
        Contacts::Set(contacts) => {
            // Step 7's ordering is judged against the bindings as they were before this
            // request (a contact listed twice is not out of order with itself).
            let stale = contacts.iter().any(|c| {
                next.iter().any(|b| {
                    same_contact(&b.contact, &c.uri) && *b.call_id == *u.call_id && u.cseq <= b.cseq
                })
            });
            if stale {
                return Err(Refused::OutOfOrder);
            }
            for c in contacts {
                let found = next.iter().position(|b| same_contact(&b.contact, &c.uri));
                if c.expires == 0 {
                    if let Some(i) = found {
                        next.remove(i);
                    }
                    continue;
                }
                let binding = Binding {
                    contact: c.uri.as_str().into(),
                    q: c.q,
                    expires_at: now + u64::from(c.expires),
                    call_id: u.call_id.as_str().into(),
                    cseq: u.cseq,
                    updated_ms: now_ms,
                };
                match found {
                    Some(i) => next[i] = binding,
                    None => next.push(binding),
                }
            }
            if next.len() > max_bindings {
                return Err(Refused::TooMany);
            }
        }
    }
    Ok(next)
}

/// Whether two Contact URIs name one binding: equal as sent, or equivalent by RFC 3261
/// §19.1.4 (scheme and host without case, parameters as that section says).
fn same_contact(a: &str, b: &str) -> bool {
    a == b || crate::uri::equivalent(a, b)
}

/// One shard: canonical AOR → its bindings, best first.
type Shard = HashMap<Box<str>, Vec<Binding>>;

/// The bindings of every AOR, sharded; see the module doc.
pub struct Location {
    shards: Box<[RwLock<Shard>]>,
    /// Bindings held (live or not yet swept).
    bindings: AtomicUsize,
    /// AORs with at least one binding held.
    aors: AtomicUsize,
}

impl Default for Location {
    fn default() -> Self {
        Location {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            bindings: AtomicUsize::new(0),
            aors: AtomicUsize::new(0),
        }
    }
}

fn shard_of(aor: &str) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(0x5eed).hash_one(aor) as usize) % SHARDS
}

impl Location {
    /// Bindings held (`enroute_registrar_bindings`).
    pub fn bindings(&self) -> usize {
        self.bindings.load(Ordering::Relaxed)
    }

    /// AORs with bindings (`enroute_registrar_aors`).
    pub fn aors(&self) -> usize {
        self.aors.load(Ordering::Relaxed)
    }

    /// Whether no binding is held at all (the INVITE path then skips the lookup).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bindings.load(Ordering::Relaxed) == 0
    }

    /// Calls `f` with the live bindings of `aor` at `now`, best first (q, then most
    /// recent), when it has any; returns what `f` returned.
    pub fn with_live<R>(
        &self,
        aor: &str,
        now: u64,
        f: impl FnOnce(&mut dyn Iterator<Item = &Binding>) -> R,
    ) -> Option<R> {
        let shard = self.shards[shard_of(aor)]
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let list = shard.get(aor)?;
        let mut live = list.iter().filter(|b| b.expires_at > now).peekable();
        live.peek()?;
        Some(f(&mut live))
    }

    /// A copy of `aor`'s bindings (live or not).
    pub fn get(&self, aor: &str) -> Vec<Binding> {
        let shard = self.shards[shard_of(aor)]
            .read()
            .unwrap_or_else(|e| e.into_inner());
        shard.get(aor).cloned().unwrap_or_default()
    }

    /// Replaces `aor`'s bindings (kept sorted best first); an empty list removes it.
    /// Only the writer calls this, after the change is durable.
    pub fn set(&self, aor: &str, mut list: Vec<Binding>) {
        list.sort_by(|a, b| b.q.cmp(&a.q).then(b.updated_ms.cmp(&a.updated_ms)));
        let mut shard = self.shards[shard_of(aor)]
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let added = list.len();
        let removed = if list.is_empty() {
            shard.remove(aor).map(|old| old.len())
        } else {
            shard.insert(aor.into(), list).map(|old| old.len())
        };
        drop(shard);
        let removed_n = removed.unwrap_or(0);
        match (removed.is_some(), added > 0) {
            (false, true) => {
                self.aors.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.aors.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.bindings.fetch_add(added, Ordering::Relaxed);
        self.bindings.fetch_sub(removed_n, Ordering::Relaxed);
    }

    /// Whether any binding has expired by `now` (the sweep's cue; stops at the first).
    pub fn any_expired(&self, now: u64) -> bool {
        self.shards.iter().any(|shard| {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            shard
                .values()
                .any(|l| l.iter().any(|b| b.expires_at <= now))
        })
    }

    /// Every AOR with a binding that has expired by `now`, for the sweep.
    pub fn expired_aors(&self, now: u64) -> Vec<String> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            out.extend(
                shard
                    .iter()
                    .filter(|(_, l)| l.iter().any(|b| b.expires_at <= now))
                    .map(|(k, _)| k.to_string()),
            );
        }
        out
    }

    /// Every AOR held, in order, from after `after`, at most `limit` (admin listing).
    pub fn aors_page(&self, after: Option<&str>, limit: usize) -> Vec<String> {
        // Each shard's first `limit`, then the first `limit` of those.
        let mut firsts: Vec<String> = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            let keys = shard.keys().map(|k| (&**k, ()));
            firsts.extend(
                super::page::first_after(keys, after, limit)
                    .into_iter()
                    .map(|(k, ())| k.to_string()),
            );
        }
        firsts.sort_unstable();
        firsts.truncate(limit);
        firsts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(cseq: u32, contacts: Contacts) -> Update {
        Update {
            aor: "alice@example.net".into(),
            call_id: "c1".into(),
            cseq,
            contacts,
        }
    }

    fn set(list: &[(&str, u32)]) -> Contacts {
        Contacts::Set(
            list.iter()
                .map(|&(uri, expires)| ContactRequest {
                    uri: uri.into(),
                    q: 1000,
                    expires,
                })
                .collect(),
        )
    }

    #[test]
    fn add_refresh_remove_and_order_by_cseq() {
        let a = apply(&[], &update(1, set(&[("sip:a@h1", 60)])), 100, 1, 10).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].expires_at, 160);
        // The same CSeq again on the same Call-ID: refused; higher: refreshed.
        assert_eq!(
            apply(&a, &update(1, set(&[("sip:a@h1", 90)])), 110, 2, 10),
            Err(Refused::OutOfOrder)
        );
        let b = apply(&a, &update(2, set(&[("sip:a@H1", 90)])), 110, 2, 10).unwrap();
        assert_eq!((b.len(), b[0].expires_at), (1, 200));
        // Another Call-ID may refresh with any CSeq.
        let mut other = update(1, set(&[("sip:b@h2", 60)]));
        other.call_id = "c2".into();
        let c = apply(&b, &other, 120, 3, 10).unwrap();
        assert_eq!(c.len(), 2);
        // expires=0 removes that one only.
        let d = apply(&c, &update(3, set(&[("sip:a@h1", 0)])), 130, 4, 10).unwrap();
        assert_eq!(
            d.iter().map(|b| &*b.contact).collect::<Vec<_>>(),
            ["sip:b@h2"]
        );
        // Expired bindings are gone from the next list.
        assert!(
            apply(&d, &update(4, Contacts::Query), 181, 5, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn star_removes_all_unless_out_of_order_and_max_bindings_binds() {
        let a = apply(
            &[],
            &update(5, set(&[("sip:a@h", 60), ("sip:b@h", 60)])),
            0,
            0,
            2,
        )
        .unwrap();
        assert_eq!(
            apply(&a, &update(5, Contacts::RemoveAll), 1, 1, 2),
            Err(Refused::OutOfOrder)
        );
        assert!(
            apply(&a, &update(6, Contacts::RemoveAll), 1, 1, 2)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            apply(&a, &update(6, set(&[("sip:c@h", 60)])), 1, 1, 2),
            Err(Refused::TooMany)
        );
        // A removal and an addition in one request: within the bound.
        let swap = set(&[("sip:a@h", 0), ("sip:c@h", 60)]);
        let b = apply(&a, &update(6, swap), 1, 1, 2).unwrap();
        assert_eq!(b.len(), 2);
        // The same contact twice in one request: the last one wins, no 500.
        let twice = set(&[("sip:d@h", 60), ("sip:d@h", 90)]);
        let c = apply(&[], &update(1, twice), 0, 0, 2).unwrap();
        assert_eq!((c.len(), c[0].expires_at), (1, 90));
    }

    #[test]
    fn the_map_counts_and_orders_by_q_then_recency() {
        let loc = Location::default();
        assert!(loc.is_empty());
        let b = |c: &str, q, ms| Binding {
            contact: c.into(),
            q,
            expires_at: 100,
            call_id: "x".into(),
            cseq: 1,
            updated_ms: ms,
        };
        loc.set(
            "a@x",
            vec![
                b("sip:1@h", 500, 1),
                b("sip:2@h", 1000, 1),
                b("sip:3@h", 500, 2),
            ],
        );
        assert_eq!((loc.aors(), loc.bindings()), (1, 3));
        let order = loc.with_live("a@x", 50, |it| {
            it.map(|b| b.contact.to_string()).collect::<Vec<_>>()
        });
        assert_eq!(order.unwrap(), ["sip:2@h", "sip:3@h", "sip:1@h"]);
        assert!(
            loc.with_live("a@x", 100, |_| ()).is_none(),
            "expired bindings are never used"
        );
        assert_eq!(loc.expired_aors(100), ["a@x"]);
        loc.set("a@x", vec![]);
        assert_eq!((loc.aors(), loc.bindings()), (0, 0));
    }
}
