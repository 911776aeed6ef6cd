//! The starting contents of a new zone: an SOA with sane timers and NS records, as a
//! master file. `enroute zone init` prints it, and a store-only `[[zone]]` (neither
//! `file` nor `primary`) is created from it on first start, so both begin alike.
//!
//! Owns: the default SOA timers, the date-shaped first serial, the default name
//! servers. Must not touch: the store, the config, the index (callers load the text
//! through [`crate::zone::Zone::from_master`] like any other master file).

use crate::name::Name;
use std::fmt::Write;

/// SOA refresh: how often secondaries check the serial (1 hour; NOTIFY is the fast path).
pub const REFRESH: u32 = 3600;
/// SOA retry after a failed refresh (15 minutes).
pub const RETRY: u32 = 900;
/// SOA expire: secondaries stop answering after a week without their primary.
pub const EXPIRE: u32 = 604_800;
/// SOA minimum: negative answers are cached this long (RFC 2308; 5 minutes).
pub const MINIMUM: u32 = 300;
/// The zone's default TTL (`$TTL`).
pub const TTL: u32 = 300;

/// What a starting zone needs.
#[derive(Debug, Clone)]
pub struct Starter {
    /// The zone's origin (absolute).
    pub origin: Name,
    /// Name servers for the apex NS set, in order; the first is the SOA MNAME. Empty:
    /// `localhost.` stands in (valid, and plainly a placeholder to replace).
    pub name_servers: Vec<Name>,
    /// The first serial (see [`date_serial`]).
    pub serial: u32,
}

impl Starter {
    /// The zone as master-file text: `$ORIGIN`, `$TTL`, SOA, NS; no numbers.
    pub fn to_master(&self) -> String {
        let placeholder = [Name::from_text("localhost.").expect("valid name")];
        let ns: &[Name] = if self.name_servers.is_empty() {
            &placeholder
        } else {
            &self.name_servers
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "; Zone {} (written by enroute zone init).",
            self.origin
        );
        let _ = writeln!(
            out,
            "; Raise the serial when you edit this file, or change numbers through the admin API."
        );
        let _ = writeln!(out, "$ORIGIN {}", self.origin);
        let _ = writeln!(out, "$TTL {TTL}");
        let _ = writeln!(
            out,
            "@ IN SOA {} hostmaster.{} ( {} {REFRESH} {RETRY} {EXPIRE} {MINIMUM} )",
            ns[0], self.origin, self.serial
        );
        for n in ns {
            let _ = writeln!(out, "@ IN NS {n}");
        }
        out
    }
}

/// Today's date as a serial, `YYYYMMDD01` (RFC 1912 §2.2's convention), in UTC.
pub fn date_serial(unix_seconds: u64) -> u32 {
    let (y, m, d) = civil_from_days((unix_seconds / 86_400) as i64);
    (y as u32) * 1_000_000 + m * 10_000 + d * 100 + 1
}

/// The serial for now (see [`date_serial`]).
pub fn date_serial_now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    date_serial(secs)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`; a date crate for the serial here and the admin
/// API's RFC 3339 times is not worth it).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Zone;

    #[test]
    fn serial_is_the_date() {
        assert_eq!(date_serial(0), 1970010101);
        // 2026-12-03 10:00 UTC
        assert_eq!(date_serial(1_796_292_000), 2026120301);
        // a leap day
        assert_eq!(date_serial(951_782_400), 2000022901);
    }

    #[test]
    fn starter_text_loads_as_a_zone() {
        let origin = Name::from_text("9.9.9.4.4.e164.arpa.").unwrap();
        let s = Starter {
            origin: origin.clone(),
            name_servers: vec![
                Name::from_text("ns1.example.net.").unwrap(),
                Name::from_text("ns2.example.net.").unwrap(),
            ],
            serial: 2026120301,
        };
        let text = s.to_master();
        let (zone, warnings) = Zone::from_master(text.as_bytes(), "init", &origin, None).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(zone.soa.serial, 2026120301);
        assert_eq!(zone.soa.minimum, MINIMUM);
        assert_eq!(zone.stats.records, 3, "SOA and two NS");
        let bare = Starter {
            name_servers: vec![],
            ..s
        };
        let (zone, _) =
            Zone::from_master(bare.to_master().as_bytes(), "init", &origin, None).unwrap();
        assert_eq!(zone.stats.records, 2, "SOA and the placeholder NS");
    }
}
