//! Criterion bench: one INVITE through the SIP path as a UDP worker runs it — parse,
//! route (local zone, reused decision), build the 302 — without the socket.
//! `cargo bench --bench sip`. Target (issue 3): ≤ 1.5 µs per INVITE.
//!
//! `invite_to_registered` runs the same path with 100,000 registered AORs: an INVITE
//! for a registered name and for a registered number (302 from the bindings), and a
//! local-zone hit that misses the bindings first. Target (issue 20): within 10 % of
//! `invite_to_302/one_contact`.

use criterion::{Criterion, criterion_group, criterion_main};
use enroute::config::Config;
use enroute::name::Name;
use enroute::resolve::Router;
use enroute::sip::redirect::{Handler, Outcome, Settings};
use enroute::zone::{Zone, ZoneSet};
use std::hint::black_box;
use std::sync::Arc;

const ZONE: &str = include_str!("../zones/2.3.6.1.4.4.e164.arpa.zone");

fn invite(number: &str, branch: u32) -> Vec<u8> {
    format!(
        "INVITE sip:{number}@192.0.2.10:5060;user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Bench\" <sip:bench@192.0.2.1:5060>;tag=1928301774\r\n\
         To: <sip:{number}@192.0.2.10:5060;user=phone>\r\n\
         Call-ID: a84b4c76e66710@192.0.2.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:bench@192.0.2.1:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Checks that `msg` gets a 302 whose Contacts start with `contact`, then times it
/// through `handler` as case `name` of `group`.
fn bench_invite(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    handler: &mut Handler<'_>,
    name: &str,
    msg: &[u8],
    contact: &str,
) {
    let src: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let want = format!("Contact: <{contact}");
    match handler.handle(msg, src, false) {
        Some((
            Outcome::Reply {
                status: 302, bytes, ..
            },
            _,
        )) if String::from_utf8_lossy(bytes).contains(&want) => {}
        other => panic!("{name}: {other:?}"),
    }
    group.bench_function(name, |b| {
        b.iter(|| {
            let out = handler.handle(black_box(msg), src, false);
            black_box(out.map(|(o, n)| match o {
                Outcome::Reply { bytes, .. } => bytes.len() + n,
                _ => n,
            }))
        })
    });
}

fn bench(c: &mut Criterion) {
    let origin = Name::from_text("2.3.6.1.4.4.e164.arpa.").unwrap();
    let (zone, _) = Zone::from_master(ZONE.as_bytes(), "z", &origin, None).unwrap();
    let config = Config::parse(
        include_str!("../config/enroute.toml"),
        "c",
        std::path::Path::new("config"),
        None,
    )
    .unwrap();
    let router = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])));
    let settings = Settings {
        allow: vec!["0.0.0.0/0".parse().unwrap()],
        server: "enroute/bench".into(),
    };
    let key = enroute::sip::dialog::TagKey::default();
    // Counting as the server does (`metrics.enabled`); ENROUTE_METRICS=off measures
    // the same path without it.
    let stats = enroute::sip::stats::SipStats::default();
    if std::env::var("ENROUTE_METRICS").is_ok_and(|v| v == "off") {
        enroute::metrics::set_enabled(false);
    }
    let mut handler =
        Handler::new(&router, &settings, &key).counting(&stats, enroute::config::Transport::Udp);
    let mut group = c.benchmark_group("invite_to_302");
    for (name, number) in [
        ("one_contact", "+441632960001"),
        ("two_contacts", "+441632960002"),
        ("wildcard", "+441632971234"),
        ("gateway", "+441632969999"),
    ] {
        let msg = invite(number, 776);
        bench_invite(&mut group, &mut handler, name, &msg, "");
    }
    group.finish();

    // 100,000 AORs registered, one binding each (as the registrar's writer leaves them).
    let location = Arc::new(enroute::registrar::Location::default());
    let now = enroute::registrar::unix_now();
    for i in 0..100_000u32 {
        let binding = |contact: String| enroute::registrar::Binding {
            contact: contact.into(),
            q: 1000,
            expires_at: now + 86_400,
            call_id: format!("call-{i}").into(),
            cseq: 1,
            updated_ms: 0,
        };
        location.set(
            &format!("user{i:05}@example.net"),
            vec![binding(format!("sip:user{i:05}@192.0.2.77:5060"))],
        );
    }
    location.set(
        "+441632960003@example.net",
        vec![enroute::registrar::Binding {
            contact: "sip:desk@192.0.2.78:5060".into(),
            q: 1000,
            expires_at: now + 86_400,
            call_id: "desk".into(),
            cseq: 1,
            updated_ms: 0,
        }],
    );
    let (zone, _) = Zone::from_master(ZONE.as_bytes(), "z", &origin, None).unwrap();
    let registered = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])))
        .with_registrar(location, vec!["example.net".into()]);
    let mut handler = Handler::new(&registered, &settings, &key)
        .counting(&stats, enroute::config::Transport::Udp);
    let mut group = c.benchmark_group("invite_to_registered");
    for (name, uri, contact) in [
        (
            "name",
            "sip:user04242@example.net",
            "sip:user04242@192.0.2.77:5060",
        ),
        (
            "number",
            "sip:+441632960003@192.0.2.10:5060;user=phone",
            "sip:desk@192.0.2.78:5060",
        ),
        (
            "local_zone_miss_first",
            "sip:+441632960001@192.0.2.10:5060;user=phone",
            "sip:",
        ),
    ] {
        let msg = String::from_utf8(invite("X", 777))
            .unwrap()
            .replace("sip:X@192.0.2.10:5060;user=phone", uri)
            .into_bytes();
        bench_invite(&mut group, &mut handler, name, &msg, contact);
    }
    group.finish();

    // The parts, for finding where the time goes.
    let mut parts = c.benchmark_group("invite_parts");
    let msg = invite("+441632960002", 776);
    parts.bench_function("parse_only", |b| {
        b.iter(
            || match enroute::sip::message::parse(black_box(&msg), false) {
                Ok(enroute::sip::message::Status::Complete(r)) => black_box(r.len),
                _ => 0,
            },
        )
    });
    let mut decision = enroute::resolve::Decision::default();
    parts.bench_function("route_only", |b| {
        b.iter(|| {
            router.route_into(
                black_box("sip:+441632960002@192.0.2.10:5060;user=phone"),
                false,
                &mut decision,
            );
            black_box(decision.status)
        })
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
