//! The last zone transfer of each zone, in and out, since the process started: what
//! `GET /v1/zones` and the console's zones view show as "last transfer" (when, AXFR or
//! IXFR, with whom, whether it completed, at which serial).
//!
//! Owns: one [`TransferLog`], written by `dns` (a transfer answered to a secondary, a
//! transfer received for a secondary zone) and read by `admin`. Kept in memory only: it
//! says what this process saw. Only served zones are transferred, and the
//! [`Publisher`](super::Publisher) forgets a zone's entry when it withdraws the zone, so
//! it holds at most one entry per zone served.
//!
//! Must not touch: the transfers themselves, counters (`dns::xfr::XfrStats` counts them
//! for `/metrics`), or the zones.

use crate::name::Name;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

/// Which way a transfer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the zone's primary (a secondary zone here).
    In,
    /// Answered to a secondary (or any client `dns.allow_transfer` lets in).
    Out,
}

/// One transfer as it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// When it ended.
    pub at: SystemTime,
    /// The form that went over the wire: `"axfr"` (the whole zone) or `"ixfr"`.
    pub kind: &'static str,
    /// All of it sent (out) or received and served (in).
    pub ok: bool,
    /// The zone's serial it carried (out: the serial sent; in: the serial received, or
    /// the one asked for when it failed).
    pub serial: u32,
    /// The other end: the secondary that asked, or the primary asked.
    pub peer: Option<SocketAddr>,
}

/// The last transfer of one zone each way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastTransfers {
    pub inbound: Option<TransferRecord>,
    pub outbound: Option<TransferRecord>,
}

/// The last transfers of every zone, keyed by origin (lower case).
#[derive(Debug, Default)]
pub struct TransferLog {
    zones: Mutex<HashMap<String, LastTransfers>>,
}

impl TransferLog {
    /// Notes a transfer of `origin` that just ended.
    pub fn record(&self, origin: &Name, direction: Direction, record: TransferRecord) {
        let key = origin.to_string().to_ascii_lowercase();
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        let last = zones.entry(key).or_default();
        match direction {
            Direction::In => last.inbound = Some(record),
            Direction::Out => last.outbound = Some(record),
        }
    }

    /// Forgets `origin`'s transfers (the zone is no longer served).
    pub fn forget(&self, origin: &Name) {
        let key = origin.to_string().to_ascii_lowercase();
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones.remove(&key);
    }

    /// The last transfers of `origin` (any case), if it had any since start.
    pub fn last(&self, origin: &Name) -> LastTransfers {
        let key = origin.to_string().to_ascii_lowercase();
        let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones.get(&key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &'static str, serial: u32) -> TransferRecord {
        TransferRecord {
            at: SystemTime::UNIX_EPOCH,
            kind,
            ok: true,
            serial,
            peer: None,
        }
    }

    #[test]
    fn keeps_the_last_each_way_per_zone_whatever_the_case() {
        let log = TransferLog::default();
        let a = Name::from_text("Example.ORG.").unwrap();
        let b = Name::from_text("example.org.").unwrap();
        assert_eq!(log.last(&a), LastTransfers::default());
        log.record(&a, Direction::Out, record("axfr", 1));
        log.record(&b, Direction::Out, record("ixfr", 2));
        log.record(&b, Direction::In, record("axfr", 3));
        let last = log.last(&a);
        assert_eq!(last.outbound, Some(record("ixfr", 2)));
        assert_eq!(last.inbound, Some(record("axfr", 3)));
        let other = Name::from_text("example.net.").unwrap();
        assert_eq!(log.last(&other), LastTransfers::default());
        log.forget(&b);
        assert_eq!(log.last(&a), LastTransfers::default());
    }
}
