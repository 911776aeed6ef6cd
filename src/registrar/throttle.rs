//! Sources that fail digest authentication too often (`registrar.max_auth_failures`
//! per minute): beyond the limit every REGISTER from them gets 403 until the minute
//! ends, so a password cannot be guessed at line rate.
//!
//! Bounded: minutes are fixed windows (unix seconds / 60), a shard forgets earlier
//! minutes when it grows, and a shard that still holds [`MAX_PER_SHARD`] sources of the
//! current minute (a flood of spoofed addresses) is emptied.
//!
//! Must not touch: digests, SIP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const SHARDS: usize = 16;
const MAX_PER_SHARD: usize = 65_536;

/// Source → (its minute, failures in it).
type Shard = HashMap<IpAddr, (u64, u32)>;

/// Failures per source in the current minute.
pub struct Throttle {
    shards: Box<[Mutex<Shard>]>,
    max_failures: u32,
}

fn shard_of(ip: &IpAddr) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(7).hash_one(ip) as usize) % SHARDS
}

impl Throttle {
    pub fn new(max_failures: u32) -> Throttle {
        Throttle {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_failures,
        }
    }

    /// Whether `ip` has used up its failures for the minute of `now`.
    pub fn throttled(&self, ip: IpAddr, now: u64) -> bool {
        let minute = now / 60;
        let shard = self.shards[shard_of(&ip)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard
            .get(&ip)
            .is_some_and(|&(m, n)| m == minute && n >= self.max_failures)
    }

    /// Counts a failure of `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: u64) {
        let minute = now / 60;
        let mut shard = self.shards[shard_of(&ip)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MAX_PER_SHARD && !shard.contains_key(&ip) {
            shard.retain(|_, (m, _)| *m == minute);
            if shard.len() >= MAX_PER_SHARD {
                shard.clear();
            }
        }
        let e = shard.entry(ip).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_throttled_after_its_failures_until_the_minute_ends() {
        let t = Throttle::new(3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert!(!t.throttled(ip, 120));
            t.failed(ip, 121);
        }
        assert!(t.throttled(ip, 179));
        assert!(!t.throttled(other, 150));
        assert!(!t.throttled(ip, 180), "a new minute");
    }
}
