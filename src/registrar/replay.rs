//! Which nonce counts each nonce has used (RFC 7616 §3.4: a server tracking `nc` can
//! refuse a replayed request), bounded in memory.
//!
//! A nonce enters the table on its first successful use, keyed by the nonce and the AOR
//! that used it (another user holding a sniffed nonce cannot use up a victim's counts).
//! The table holds at most [`MAX_ENTRIES`] (about 3,500 new nonces a second over the
//! default 300 s lifetime); when it is full, the older half of the nonce ages is
//! dropped and every nonce made before the new floor is answered as stale, so a nonce
//! that left the table can never be replayed: its client is asked to take a new one.
//!
//! Must not touch: digests, users, SIP.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 16;
/// Nonces tracked at most (about 40 bytes each).
pub const MAX_ENTRIES: usize = 1 << 20;

/// A nonce's use, as [`Replay::accept`] judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A count above every one this nonce used before.
    New,
    /// A count this nonce used already (or a lower one): refused.
    Replayed,
    /// The nonce is older than what the table still remembers: answer `stale=true`.
    Forgotten,
}

/// Nonce id → (highest `nc` used, when the nonce was made).
type Shard = HashMap<u64, (u32, u64)>;

/// The `nc` high-water mark of each live nonce.
pub struct Replay {
    shards: Box<[Mutex<Shard>]>,
    /// Nonces made before this (unix seconds) are no longer tracked.
    floor: AtomicU64,
    ttl_s: u64,
}

impl Replay {
    pub fn new(ttl_s: u32) -> Replay {
        Replay {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            floor: AtomicU64::new(0),
            ttl_s: u64::from(ttl_s),
        }
    }

    /// Records that nonce `id` (made at `made`) was used with count `nc` at `now`.
    pub fn accept(&self, id: u64, made: u64, nc: u32, now: u64) -> Use {
        if made < self.floor.load(Ordering::Relaxed) {
            return Use::Forgotten;
        }
        let per_shard = MAX_ENTRIES / SHARDS;
        let mut shard = self.shards[(id as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((last, _)) = shard.get_mut(&id) {
            if nc <= *last {
                return Use::Replayed;
            }
            *last = nc;
            return Use::New;
        }
        if shard.len() >= per_shard {
            // Expired nonces first; still full: raise the floor to the middle of the
            // ages held, forgetting the older half.
            let ttl = self.ttl_s;
            shard.retain(|_, (_, m)| now.saturating_sub(*m) <= ttl);
            if shard.len() >= per_shard {
                let mut ages: Vec<u64> = shard.values().map(|(_, m)| *m).collect();
                let mid = ages.len() / 2;
                let (_, &mut median, _) = ages.select_nth_unstable(mid);
                self.floor.fetch_max(median + 1, Ordering::Relaxed);
                let floor = self.floor.load(Ordering::Relaxed);
                shard.retain(|_, (_, m)| *m >= floor);
                if made < floor {
                    return Use::Forgotten;
                }
            }
        }
        shard.insert(id, (nc, made));
        Use::New
    }

    /// Nonces tracked (for tests).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_grow_and_a_full_table_forgets_its_oldest_half() {
        let r = Replay::new(300);
        assert_eq!(r.accept(1, 100, 1, 100), Use::New);
        assert_eq!(r.accept(1, 100, 1, 101), Use::Replayed);
        assert_eq!(r.accept(1, 100, 2, 101), Use::New);
        assert_eq!(r.accept(1, 100, 1, 101), Use::Replayed);
        // Fill one shard: ids ≡ 0 mod SHARDS, made at increasing times.
        let per_shard = MAX_ENTRIES / SHARDS;
        for i in 0..per_shard as u64 {
            r.accept(i * SHARDS as u64 + 16, 200 + i / 1000, 1, 300);
        }
        let oldest = 16;
        assert_eq!(r.accept(oldest, 200, 2, 300), Use::New, "still tracked");
        assert_eq!(r.accept(u64::MAX - 15, 260, 1, 300), Use::New);
        assert!(r.len() <= MAX_ENTRIES);
        // The table was full: the oldest nonces are stale now, never accepted again.
        assert_eq!(r.accept(oldest, 200, 3, 300), Use::Forgotten);
    }
}
