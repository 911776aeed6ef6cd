//! Catalog zones (RFC 9432, version 2): the zone a primary serves to list its member
//! zones, built here ([`build`]), and read back on the consumer side ([`read`],
//! [`members`]).
//!
//! A catalog is an ordinary zone: SOA, NS `invalid.` (RFC 9432 §4.1: the catalog is
//! never queried as a delegation), `version TXT "2"`, and one `PTR` per member at
//! `<id>.zones.<catalog>`. The member id is [`member_id`]: the FNV-1a 64 hash of the
//! member's lower-cased origin in wire form, as 16 hex digits. It depends on the origin
//! alone, so a member keeps its label across restarts, releases and rebuilds of the
//! catalog, without any table of ids to keep (FNV-1a is fixed by its definition and fed
//! explicit bytes, so no Rust release or CPU changes it; 64 bits make a clash between
//! two members of one catalog a one in 10^10 event even for 100 000 zones).
//!
//! Owns: the catalog's layout, its SOA timers and the member id. Must not touch: which
//! zones are members or when the catalog changes (`keeper::catalog`), transfers
//! (`dns`).

use super::{Records, Zone, ZoneLoadError};
use crate::name::{Name, TYPE_NS, TYPE_SOA, write_label};
use std::hash::Hasher;

const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;

/// TTL of every catalog record. Consumers read the catalog by transfer, not by query;
/// 0 keeps a resolver that does ask from holding a stale member list.
pub const TTL: u32 = 0;
/// SOA refresh: consumers re-check the serial hourly (NOTIFY is the fast path).
pub const REFRESH: u32 = 3600;
/// SOA retry after a failed refresh.
pub const RETRY: u32 = 600;
/// SOA expire, 4 weeks: longer than a member's (a week), because a consumer whose
/// catalog expires may drop every member zone at once.
pub const EXPIRE: u32 = 2_419_200;
/// SOA minimum (negative caching, RFC 2308).
pub const MINIMUM: u32 = 0;

/// Why a zone is not a catalog this release can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog zone {0}: no version TXT record (RFC 9432 §4.2.1)")]
    NoVersion(String),
    #[error("catalog zone {zone}: version {found} is not supported (only \"2\", RFC 9432 §4.2.1)")]
    UnsupportedVersion { zone: String, found: String },
    #[error("catalog zone {0}: does not build: {1}")]
    Build(String, String),
}

/// The stable member label of `member`: FNV-1a 64 of its lower-cased wire form, as 16
/// lower-case hex digits (see the module comment for why).
pub fn member_id(member: &Name) -> String {
    let mut wire = Vec::with_capacity(member.wire_len());
    member.to_lowercase().to_wire(&mut wire);
    let mut h = fnv::FnvHasher::default();
    h.write(&wire);
    format!("{:016x}", h.finish())
}

/// The catalog zone `origin` at `serial` listing `members` (in any order; a member
/// listed twice, in any case, is listed once). Fails only when a member's owner name
/// would be too long (an origin near 255 bytes).
pub fn build(origin: &Name, serial: u32, members: &[Name]) -> Result<Zone, CatalogError> {
    let invalid = Name::from_text("invalid.").map_err(|e| build_error(origin, e.to_string()))?;
    let mut records = Records::new(format!("catalog {origin}"));
    records.add::<&[u8]>(&[], TYPE_SOA, TTL, &soa_rdata(&invalid, serial), 1);
    records.add::<&[u8]>(&[], TYPE_NS, TTL, &wire(&invalid), 2);
    records.add(&[b"version"], TYPE_TXT, TTL, b"\x012", 3);
    let mut seen = std::collections::BTreeSet::new();
    for (i, m) in members.iter().enumerate() {
        let id = member_id(m);
        if seen.insert(id.clone()) {
            let line = 4 + i as u32;
            records.add(
                &[&b"zones"[..], id.as_bytes()],
                TYPE_PTR,
                TTL,
                &wire(m),
                line,
            );
        }
    }
    let zone = records
        .build(origin)
        .map_err(|e: ZoneLoadError| build_error(origin, e.to_string()))?;
    check_owner_lengths(origin, &seen)?;
    Ok(zone)
}

fn build_error(origin: &Name, message: String) -> CatalogError {
    CatalogError::Build(origin.to_string(), message)
}

/// A member's owner name is `<16 hex>.zones.<origin>`: it must fit in 255 bytes.
fn check_owner_lengths(
    origin: &Name,
    ids: &std::collections::BTreeSet<String>,
) -> Result<(), CatalogError> {
    let longest = 1 + 16 + 1 + 5 + origin.wire_len();
    if !ids.is_empty() && longest > 255 {
        return Err(build_error(
            origin,
            format!("member names would be {longest} bytes long (at most 255)"),
        ));
    }
    Ok(())
}

fn wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.wire_len());
    name.to_wire(&mut out);
    out
}

/// SOA `invalid. invalid. SERIAL REFRESH RETRY EXPIRE MINIMUM`: the catalog has no
/// name server or mailbox of its own (RFC 9432 §4.1).
fn soa_rdata(invalid: &Name, serial: u32) -> Vec<u8> {
    let mut rd = wire(invalid);
    rd.extend(wire(invalid));
    for v in [serial, REFRESH, RETRY, EXPIRE, MINIMUM] {
        rd.extend(v.to_be_bytes());
    }
    rd
}

/// What a consumer reads from a catalog: its members, and the member entries it
/// skipped with the reason (each is an error in the catalog that RFC 9432 tells the
/// consumer to ignore, not to fail on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// (member id, member origin), in id order.
    pub members: Vec<(String, Name)>,
    /// (member id, why it was skipped).
    pub skipped: Vec<(String, String)>,
}

/// Reads a catalog zone (consumer side): refuses one without `version TXT "2"`;
/// ignores unknown properties (any name other than `version` and `<id>.zones`, and
/// names below a member such as `group.<id>.zones`); skips, with a reason, a member
/// whose PTR set is not exactly one record (RFC 9432 §4.1), whose PTR does not hold a
/// name, that names the catalog itself, or that repeats an earlier member (the first,
/// in id order, is kept).
pub fn read(zone: &Zone) -> Result<Catalog, CatalogError> {
    check_version(zone)?;
    let mut out = Catalog::default();
    let Some(zones) = zone.tree.node_at(&[b"zones"]) else {
        return Ok(out);
    };
    // In id order (bytewise, case-blind), so that which of two entries for one member
    // is kept does not depend on the index's sibling order.
    let mut nodes: Vec<_> = zones.children().iter().collect();
    nodes.sort_by_key(|n| n.label().as_bytes().to_ascii_lowercase());
    let mut seen = std::collections::HashSet::new();
    for node in nodes {
        let mut id = String::new();
        let _ = write_label(&mut id, node.label().as_bytes());
        match member_of(node) {
            Err(reason) => out.skipped.push((id, reason)),
            Ok(m) if m.eq_ignore_case(&zone.origin) => out
                .skipped
                .push((id, "names the catalog zone itself".into())),
            Ok(m) if !seen.insert(wire(&m.to_lowercase())) => {
                out.skipped
                    .push((id, format!("{m} is already a member under another id")));
            }
            Ok(m) => out.members.push((id, m)),
        }
    }
    Ok(out)
}

/// [`read`], for a consumer that only wants the members: each skipped entry is logged
/// as a warning naming the catalog, the id and the reason.
pub fn members(zone: &Zone) -> Result<Vec<(String, Name)>, CatalogError> {
    let catalog = read(zone)?;
    for (id, reason) in &catalog.skipped {
        tracing::warn!(catalog = %zone.origin, id, "catalog member skipped: {reason}");
    }
    Ok(catalog.members)
}

/// `version.<catalog>` must hold exactly one TXT record, the one string "2".
fn check_version(zone: &Zone) -> Result<(), CatalogError> {
    let origin = zone.origin.to_string();
    let set = zone
        .tree
        .node_at(&[b"version"])
        .and_then(|n| n.rrset(TYPE_TXT))
        .ok_or_else(|| CatalogError::NoVersion(origin.clone()))?;
    let texts: Vec<String> = set.rdatas().map(|rd| txt_text(&rd)).collect();
    match texts.as_slice() {
        [v] if v == "2" => Ok(()),
        _ => Err(CatalogError::UnsupportedVersion {
            zone: origin,
            found: texts.join(" "),
        }),
    }
}

/// A TXT rdata's strings, each quoted (`"2"` reads as `2`; two strings `"2" "x"`).
fn txt_text(rdata: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let take = (len as usize).min(tail.len());
        parts.push(String::from_utf8_lossy(&tail[..take]).into_owned());
        rest = &tail[take..];
    }
    match parts.as_slice() {
        [one] => one.clone(),
        _ => parts
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The member a `<id>.zones` node names: its single PTR's target.
fn member_of(node: &super::index::Node) -> Result<Name, String> {
    let Some(set) = node.rrset(TYPE_PTR) else {
        return Err("no PTR record (RFC 9432 §4.1)".into());
    };
    let rdatas: Vec<_> = set.rdatas().collect();
    let [rd] = rdatas.as_slice() else {
        return Err(format!(
            "{} PTR records where RFC 9432 §4.1 allows exactly one",
            rdatas.len()
        ));
    };
    match Name::from_wire(rd) {
        Some((name, used)) if used == rd.len() => Ok(name),
        _ => Err("PTR record does not hold a domain name".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_text(s).unwrap()
    }

    fn catalog_text(body: &str) -> Zone {
        let text = format!(
            "$ORIGIN cat.example.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2419200 0\n@ NS invalid.\n{body}"
        );
        Zone::from_master(text.as_bytes(), "t", &name("cat.example."), None)
            .unwrap()
            .0
    }

    #[test]
    fn member_ids_are_stable_case_blind_and_distinct() {
        let a = member_id(&name("2.3.6.1.4.4.e164.arpa."));
        assert_eq!(a, member_id(&name("2.3.6.1.4.4.E164.ARPA.")));
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, member_id(&name("3.3.6.1.4.4.e164.arpa.")));
        // Pinned: the label a consumer has seen must never change with a release.
        // FNV-1a 64 of the empty name (one zero byte).
        assert_eq!(member_id(&Name::root()), "af63bd4c8601b7df");
    }

    #[test]
    fn a_built_catalog_reads_back_as_its_members() {
        let members = [name("b.example."), name("A.example."), name("b.EXAMPLE.")];
        let zone = build(&name("cat.example."), 7, &members).unwrap();
        assert_eq!(zone.soa.serial, 7);
        assert_eq!(zone.soa.expire, EXPIRE);
        let read = read(&zone).unwrap();
        assert!(read.skipped.is_empty(), "{:?}", read.skipped);
        let mut got: Vec<String> = read.members.iter().map(|(_, n)| n.to_string()).collect();
        got.sort();
        // The duplicate (in another case) is listed once.
        assert_eq!(got, ["A.example.", "b.example."]);
        for (id, m) in &read.members {
            assert_eq!(id, &member_id(m));
        }
        let text = zone.to_master();
        assert!(text.contains("version"), "{text}");
        assert!(text.contains("TXT\t2") || text.contains("\"2\""), "{text}");
        assert!(
            text.contains("NS\tinvalid.") || text.contains("NS invalid."),
            "{text}"
        );
    }

    #[test]
    fn an_empty_catalog_is_valid() {
        let zone = build(&name("cat.example."), 1, &[]).unwrap();
        assert_eq!(read(&zone).unwrap(), Catalog::default());
    }

    #[test]
    fn a_catalog_without_version_2_is_refused() {
        let none = catalog_text("");
        assert_eq!(
            read(&none),
            Err(CatalogError::NoVersion("cat.example.".into()))
        );
        let v1 = catalog_text("version TXT \"1\"\n");
        assert!(matches!(
            read(&v1),
            Err(CatalogError::UnsupportedVersion { found, .. }) if found == "1"
        ));
        let two = catalog_text("version TXT \"2\"\nversion TXT \"3\"\n");
        assert!(read(&two).is_err());
    }

    #[test]
    fn bad_members_are_skipped_with_a_reason_and_unknown_properties_ignored() {
        let zone = catalog_text(
            "version TXT \"2\"\n\
             good.zones PTR a.example.\n\
             group.good.zones TXT \"ours\"\n\
             two.zones PTR b.example.\n\
             two.zones PTR c.example.\n\
             zzz.zones PTR A.EXAMPLE.\n\
             self.zones PTR cat.example.\n\
             bare.zones TXT \"no ptr\"\n\
             ext.unknown-property TXT \"x\"\n",
        );
        let read = read(&zone).unwrap();
        assert_eq!(
            read.members,
            vec![("good".to_string(), name("a.example."))],
            "skipped: {:?}",
            read.skipped
        );
        let reason = |id: &str| {
            read.skipped
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, r)| r.clone())
                .unwrap_or_default()
        };
        assert!(reason("two").contains("2 PTR records"), "{read:?}");
        assert!(reason("zzz").contains("already a member"), "{read:?}");
        assert!(reason("self").contains("catalog zone itself"), "{read:?}");
        assert!(reason("bare").contains("no PTR"), "{read:?}");
    }

    #[test]
    fn a_catalog_origin_too_long_for_member_names_does_not_build() {
        let long = format!(
            "{}example.",
            "a23456789012345678901234567890123456789.".repeat(6)
        );
        let origin = name(&long);
        assert!(build(&origin, 1, &[]).is_ok());
        assert!(matches!(
            build(&origin, 1, &[name("x.example.")]),
            Err(CatalogError::Build(..))
        ));
    }
}
