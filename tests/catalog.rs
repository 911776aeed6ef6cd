//! Zones created and deleted through the admin API, and the catalog zone (RFC 9432)
//! that lets secondaries follow them: a zone created on enroute appears on a Knot
//! consumer and on an enroute `[[catalog]]` secondary without a restart, and a deleted
//! one disappears.

mod common;

use common::{Enroute, HttpResponse, Knot, dns_query, eventually, free_port};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RData;
use std::time::Duration;

const CONFIGURED: &str = "2.3.6.1.4.4.e164.arpa.";
const CREATED: &str = "9.9.9.4.4.e164.arpa.";
const CATALOG: &str = "catalog.example.net.";

fn zone(origin: &str, serial: u32, user: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ SOA ns1.example.net. hostmaster.example.net. {serial} 2 1 600 60\n\
         @ NS ns1.example.net.\n\
         1.0.0.0 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:{user}@pbx.example.net!\" .\n"
    )
}

/// The SOA serial `port` answers for `origin`, or the rcode it answers instead.
fn soa(port: u16, origin: &str) -> Result<u32, ResponseCode> {
    let resp = dns_query(port, origin, 6).ok_or(ResponseCode::ServFail)?;
    resp.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .ok_or(resp.metadata.response_code)
}

fn delete_zone(server: &Enroute, origin: &str) -> HttpResponse {
    server.api("DELETE", &format!("/v1/zones/{origin}"), "", b"")
}

/// Asserts a problem+json answer with `status`; returns its detail.
fn problem(r: &HttpResponse, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    r.json()["detail"].as_str().unwrap_or_default().to_string()
}

/// The `type` `GET /v1/zones` gives `origin`, if listed.
fn listed(server: &Enroute, origin: &str) -> Option<String> {
    let zones = server.api("GET", "/v1/zones", "", b"").json();
    zones["items"]
        .as_array()?
        .iter()
        .find(|z| z["origin"] == origin)
        .map(|z| z["type"].as_str().unwrap_or_default().to_string())
}

/// The SIP contact `route` gives a number, or its status.
fn route(server: &Enroute, number: &str) -> String {
    let d = server
        .api("GET", &format!("/v1/route/{number}"), "", b"")
        .json();
    match d["contacts"][0]["uri"].as_str() {
        Some(uri) => uri.to_string(),
        None => format!("status {}", d["status"]),
    }
}

#[test]
fn a_zone_created_through_the_api_is_served_at_once_and_after_restarts_until_deleted() {
    let mut server = Enroute::start(&zone(CONFIGURED, 7, "alice"), "");
    assert_eq!(soa(server.dns, CREATED), Err(ResponseCode::Refused));

    let r = server.put_zone(CREATED, &zone(CREATED, 3, "bob"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), Some(&*format!("/v1/zones/{CREATED}")));
    assert_eq!(r.json()["serial"], 3);
    assert_eq!(r.json()["records"], 3);
    // Served at once: DNS, routing, the zone list.
    assert_eq!(soa(server.dns, CREATED), Ok(3));
    assert_eq!(route(&server, "+449990001"), "sip:bob@pbx.example.net");
    assert_eq!(listed(&server, CREATED).as_deref(), Some("primary"));
    // A zone like any other: numbers change through the API.
    let n = server.put_number(
        "+4499910001",
        r#"{"routes":[{"uri":"sip:carol@pbx.example.net"}]}"#,
    );
    assert_eq!(n.status, 200, "{}", n.text());
    // Putting it again replaces it (200), serial max(uploaded, current + 1).
    let r = server.put_zone(CREATED, &zone(CREATED, 3, "bob2"));
    assert_eq!((r.status, r.json()["serial"].as_u64()), (200, Some(5)));

    // No [[zone]] names it, yet it is served after a restart and a SIGHUP.
    server.restart();
    assert_eq!(soa(server.dns, CREATED), Ok(5));
    assert_eq!(route(&server, "+449990001"), "sip:bob2@pbx.example.net");
    server.sighup();
    server.wait_for("reload done");
    assert_eq!(soa(server.dns, CREATED), Ok(5));

    let r = delete_zone(&server, CREATED);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(soa(server.dns, CREATED), Err(ResponseCode::Refused));
    assert_eq!(listed(&server, CREATED), None);
    assert!(route(&server, "+449990001").starts_with("status 4"));
    problem(&delete_zone(&server, CREATED), 404);
    // Gone for good: not back after a restart; the configured zone untouched.
    server.restart();
    assert_eq!(soa(server.dns, CREATED), Err(ResponseCode::Refused));
    assert_eq!(soa(server.dns, CONFIGURED), Ok(7));
    // And it can be created anew, from nothing.
    let r = server.put_zone(CREATED, &zone(CREATED, 1, "dave"));
    assert_eq!((r.status, r.json()["serial"].as_u64()), (201, Some(1)));
}

#[test]
fn only_zones_created_through_the_api_can_be_deleted() {
    let server = Enroute::start(
        &zone(CONFIGURED, 7, "alice"),
        "[[zone]]\norigin = \"8.8.e164.arpa.\"\n\n\
         [[zone]]\norigin = \"7.7.e164.arpa.\"\nprimary = \"127.0.0.1:9\"\n",
    );
    // A zone with a file, a store-only zone: both configured, both 409, still served.
    let detail = problem(&delete_zone(&server, CONFIGURED), 409);
    assert!(detail.contains("[[zone]]"), "{detail}");
    problem(&delete_zone(&server, "8.8.e164.arpa."), 409);
    assert_eq!(soa(server.dns, CONFIGURED), Ok(7));
    assert!(soa(server.dns, "8.8.e164.arpa.").is_ok());
    // A secondary: neither created nor deleted through the API.
    problem(&delete_zone(&server, "7.7.e164.arpa."), 409);
    problem(
        &server.put_zone("7.7.e164.arpa.", &zone("7.7.e164.arpa.", 1, "x")),
        409,
    );
    // Unknown: 404. The root cannot be created.
    problem(&delete_zone(&server, "6.6.e164.arpa."), 404);
    let detail = problem(&server.put_zone(".", &zone(".", 1, "x")), 422);
    assert!(detail.contains("root"), "{detail}");
    // A zone that does not load is not created: 422 with the line, nothing served.
    let bad = format!("{}oops IN NAPTR nonsense\n", zone(CREATED, 1, "x"));
    let r = server.put_zone(CREATED, &bad);
    problem(&r, 422);
    assert_eq!(r.json()["errors"][0]["line"], 6, "{}", r.text());
    assert_eq!(soa(server.dns, CREATED), Err(ResponseCode::Refused));
    problem(&delete_zone(&server, CREATED), 404);
    // Records outside the origin are refused too.
    let outside = format!("{}foo.example.com. IN TXT \"x\"\n", zone(CREATED, 1, "x"));
    problem(&server.put_zone(CREATED, &outside), 422);
    assert_eq!(listed(&server, CREATED), None);
}

#[test]
fn a_zone_removed_from_the_configuration_is_not_served_but_one_created_through_the_api_is() {
    let mut server = Enroute::start(
        &zone(CONFIGURED, 7, "alice"),
        "[[zone]]\norigin = \"8.8.e164.arpa.\"\n",
    );
    assert_eq!(
        server.put_zone(CREATED, &zone(CREATED, 3, "bob")).status,
        201
    );
    let conf = server.dir.path().join("e.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace("[[zone]]\norigin = \"8.8.e164.arpa.\"\n", ""),
    )
    .unwrap();
    server.restart();
    assert_eq!(
        soa(server.dns, "8.8.e164.arpa."),
        Err(ResponseCode::Refused)
    );
    assert_eq!(soa(server.dns, CREATED), Ok(3));
    // Its rows are still in the store: created anew through the API, its serial
    // follows the stored one, so a secondary that kept the old copy sees a newer one.
    let stored = server.put_zone("8.8.e164.arpa.", &zone("8.8.e164.arpa.", 1, "x"));
    assert_eq!(stored.status, 201, "{}", stored.text());
    assert!(
        stored.json()["serial"].as_u64().unwrap() > 1,
        "{}",
        stored.text()
    );
}

/// Knot configuration: a catalog zone `catalog` interpreted with member zones
/// transferred from enroute at `enroute_dns`, which may NOTIFY it. The catalog
/// database goes in Knot's own directory: Knot 3.2 crashes at start when the default
/// one's directory does not exist yet.
fn knot_consumer(enroute_dns: u16, catalog_source: &str) -> String {
    format!(
        "database:\n    catalog-db: \"{{dir}}\"\n\
         remote:\n  - id: enroute\n    address: 127.0.0.1@{enroute_dns}\n\
         acl:\n  - id: from_enroute\n    address: 127.0.0.1\n    action: notify\n\
         template:\n  - id: member\n    storage: \"{{dir}}\"\n    master: enroute\n    acl: from_enroute\n\
             \x20   zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n    semantic-checks: off\n\
         zone:\n  - domain: \"{CATALOG}\"\n    catalog-role: interpret\n    catalog-template: member\n{catalog_source}"
    )
}

/// Knot reads the catalog enroute builds: each member it lists becomes a zone Knot
/// transfers from enroute; one dropped from the catalog is dropped.
#[test]
fn knot_interprets_the_catalog_enroute_builds() {
    use enroute::name::Name;
    use enroute::zone::catalog::build;
    let server = Enroute::start(&zone(CONFIGURED, 7, "alice"), "");
    let catalog = |serial: u32, members: &[&str]| {
        let members: Vec<Name> = members
            .iter()
            .map(|m| Name::from_text(m).unwrap())
            .collect();
        build(&Name::from_text(CATALOG).unwrap(), serial, &members)
            .unwrap()
            .to_master()
    };
    let file = "    file: \"{dir}/catalog.db\"\n";
    let knot = Knot::start_conf(
        &[("catalog.db", &catalog(1, &[CONFIGURED]))],
        &knot_consumer(server.dns, file),
        // Knot answers no queries for a catalog zone: the member shows it was read.
        &[],
    );
    assert!(
        eventually(Duration::from_secs(20), || soa(knot.port, CONFIGURED)
            == Ok(7)),
        "Knot did not take the member from the catalog; log:\n{}",
        knot.log()
    );
    knot.replace_zone_file("catalog.db", CATALOG, &catalog(2, &[]));
    assert!(
        eventually(Duration::from_secs(20), || soa(knot.port, CONFIGURED)
            .is_err()),
        "Knot still serves the member dropped from the catalog; log:\n{}",
        knot.log()
    );
}

/// The whole loop: enroute serves its catalog; Knot follows it as a secondary and
/// serves each zone created on enroute, without a restart, until it is deleted.
#[test]
fn knot_follows_zones_created_and_deleted_on_enroute_through_the_catalog() {
    let ours = free_port();
    let primary = "    master: enroute\n    acl: from_enroute\n    file: \"{dir}/catalog.db\"\n";
    let knot = Knot::start_conf(&[], &knot_consumer(ours, primary), &[]);
    let server = Enroute::start(
        &zone(CONFIGURED, 7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{ours}\", \"tcp:127.0.0.1:{ours}\"]\n\
             notify = [\"127.0.0.1:{}\"]\ncatalog_zone = \"{CATALOG}\"\n",
            knot.port
        ),
    );
    assert_eq!(listed(&server, CATALOG).as_deref(), Some("catalog"));
    knot.knotc(&["zone-refresh", CATALOG]);
    assert!(
        eventually(Duration::from_secs(30), || soa(knot.port, CONFIGURED)
            == Ok(7)),
        "Knot did not follow enroute's catalog; log:\n{}",
        knot.log()
    );
    assert_eq!(
        server.put_zone(CREATED, &zone(CREATED, 3, "bob")).status,
        201
    );
    assert!(
        eventually(Duration::from_secs(30), || soa(knot.port, CREATED) == Ok(3)),
        "Knot did not pick up the zone created on enroute; log:\n{}",
        knot.log()
    );
    assert_eq!(delete_zone(&server, CREATED).status, 204);
    assert!(
        eventually(Duration::from_secs(30), || soa(knot.port, CREATED).is_err()),
        "Knot still serves the zone deleted on enroute; log:\n{}",
        knot.log()
    );
    assert_eq!(soa(knot.port, CONFIGURED), Ok(7));
}

/// An enroute secondary with `[[catalog]]` follows an enroute primary's catalog: a zone
/// created on the primary is served without a restart (read-only there), a deleted one
/// is withdrawn, and after a restart with the primary gone the members are served from
/// their kept copies.
#[test]
fn an_enroute_secondary_follows_the_catalog_of_an_enroute_primary() {
    let (pri_dns, sec_dns) = (free_port(), free_port());
    let primary = Enroute::start(
        &zone(CONFIGURED, 7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{pri_dns}\", \"tcp:127.0.0.1:{pri_dns}\"]\n\
             notify = [\"127.0.0.1:{sec_dns}\"]\ncatalog_zone = \"{CATALOG}\"\n"
        ),
    );
    let mut secondary = Enroute::start(
        "",
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{sec_dns}\", \"tcp:127.0.0.1:{sec_dns}\"]\n\
             [store]\npath = \"data/enroute.db\"\n\
             [[catalog]]\norigin = \"{CATALOG}\"\nprimary = \"127.0.0.1:{pri_dns}\"\n"
        ),
    );
    let follows = |origin: &str, serial: u32| {
        eventually(Duration::from_secs(20), || {
            soa(sec_dns, origin) == Ok(serial)
        })
    };
    assert!(follows(CONFIGURED, 7), "the configured zone never arrived");
    secondary.wait_for("catalog: member zone added");

    assert_eq!(
        primary.put_zone(CREATED, &zone(CREATED, 3, "bob")).status,
        201
    );
    assert!(follows(CREATED, 3), "the created zone never arrived");
    // A member zone is a secondary zone: read-only through the secondary's API.
    let put = secondary.put_number("+449990000", r#"{"routes":[{"uri":"sip:x@example.net"}]}"#);
    assert_eq!(put.status, 409, "{}", put.text());

    assert_eq!(delete_zone(&primary, CREATED).status, 204);
    assert!(
        eventually(Duration::from_secs(20), || soa(sec_dns, CREATED).is_err()),
        "the deleted zone is still served"
    );
    secondary.wait_for("catalog: member zone removed");
    assert_eq!(
        primary.put_zone(CREATED, &zone(CREATED, 5, "carol")).status,
        201
    );
    assert!(follows(CREATED, 5), "the re-created zone never arrived");

    // The primary goes away; the restarted secondary serves its kept copies at once.
    drop(primary);
    secondary.restart();
    assert_eq!(soa(sec_dns, CREATED), Ok(5));
    assert_eq!(soa(sec_dns, CONFIGURED), Ok(7));
    // Serial 1, then one per change of the list: created, deleted, created.
    assert_eq!(soa(sec_dns, CATALOG), Ok(4));
}

/// An instance that follows another's catalog and has a catalog of its own: a member
/// whose origin is one of its own zones is left as its own (never taken over, never
/// withdrawn), and its own catalog lists its own zones only — at start too, when the
/// members are served from their kept copies before they are followed.
#[test]
fn a_followed_catalog_never_takes_over_a_zone_of_this_server() {
    const OWN_CATALOG: &str = "own.catalog.example.net.";
    let (pri_dns, sec_dns) = (free_port(), free_port());
    let primary = Enroute::start(
        &zone(CONFIGURED, 7, "alice"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{pri_dns}\", \"tcp:127.0.0.1:{pri_dns}\"]\n\
             notify = [\"127.0.0.1:{sec_dns}\"]\ncatalog_zone = \"{CATALOG}\"\n"
        ),
    );
    assert_eq!(
        primary.put_zone(CREATED, &zone(CREATED, 3, "bob")).status,
        201
    );
    // The other server has its own copy of CONFIGURED (serial 20, another user).
    let mut other = Enroute::start(
        &zone(CONFIGURED, 20, "own"),
        &format!(
            "[dns]\nlisten = [\"udp:127.0.0.1:{sec_dns}\", \"tcp:127.0.0.1:{sec_dns}\"]\n\
             catalog_zone = \"{OWN_CATALOG}\"\n\
             [[catalog]]\norigin = \"{CATALOG}\"\nprimary = \"127.0.0.1:{pri_dns}\"\n"
        ),
    );
    other.wait_for("catalog lists a zone this server is primary for");
    assert!(
        eventually(Duration::from_secs(20), || soa(sec_dns, CREATED) == Ok(3)),
        "the other member was not followed"
    );
    let own_members = |port: u16| -> Vec<String> {
        common::axfr(port, OWN_CATALOG)
            .unwrap()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_string()),
                _ => None,
            })
            .collect()
    };
    let check = |other: &Enroute| {
        assert_eq!(
            soa(sec_dns, CONFIGURED),
            Ok(20),
            "its own zone was taken over"
        );
        assert!(route(other, "+4416320001").contains("sip:own@"));
        assert_eq!(own_members(sec_dns), vec![CONFIGURED.to_string()]);
        assert_eq!(soa(sec_dns, OWN_CATALOG), Ok(1), "its own catalog changed");
    };
    check(&other);
    // After a restart, the followed member starts from its kept copy: still not listed
    // in this server's own catalog, and its own zone is still its own.
    other.restart();
    assert_eq!(soa(sec_dns, CREATED), Ok(3));
    check(&other);
}
