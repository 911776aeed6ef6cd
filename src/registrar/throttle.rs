//! Sources that fail digest authentication too often (`registrar.max_auth_failures`
//! per minute): beyond the limit every REGISTER from them gets 403 until the minute
//! ends, so a password cannot be guessed at line rate.
//!
//! A source is an IPv4 address or an IPv6 /64 (one host's share of a network). Every
//! user behind one NAT or SBC shares its count: size `registrar.max_auth_failures` for
//! that.
//!
//! Bounded: minutes are fixed windows (unix seconds / 60), a shard forgets earlier
//! minutes when it grows, and a shard that still holds [`MAX_PER_SHARD`] sources of the
//! current minute (a flood of spoofed addresses) tracks no new ones until the minute
//! ends, never forgetting those it has (so a source cannot wipe its own count). Shards
//! are chosen by a hash keyed at random per process.
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
    hasher: foldhash::fast::RandomState,
}

/// The source an address counts as: itself for IPv4, its /64 for IPv6.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

impl Throttle {
    pub fn new(max_failures: u32) -> Throttle {
        Throttle {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_failures,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn shard_of(&self, ip: &IpAddr) -> usize {
        use std::hash::BuildHasher;
        (self.hasher.hash_one(ip) as usize) % SHARDS
    }

    /// Whether `ip` has used up its failures for the minute of `now`.
    pub fn throttled(&self, ip: IpAddr, now: u64) -> bool {
        let (ip, minute) = (source_of(ip), now / 60);
        let shard = self.shards[self.shard_of(&ip)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard
            .get(&ip)
            .is_some_and(|&(m, n)| m == minute && n >= self.max_failures)
    }

    /// Counts a failure of `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: u64) {
        let (ip, minute) = (source_of(ip), now / 60);
        let mut shard = self.shards[self.shard_of(&ip)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MAX_PER_SHARD && !shard.contains_key(&ip) {
            shard.retain(|_, (m, _)| *m == minute);
            if shard.len() >= MAX_PER_SHARD {
                return;
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
        // IPv6: one /64 is one source.
        let a: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for _ in 0..3 {
            t.failed(a, 300);
        }
        assert!(t.throttled(b, 301));
        assert!(!t.throttled("2001:db8:1:3::7".parse().unwrap(), 301));
    }
}
