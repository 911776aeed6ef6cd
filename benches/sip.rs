//! Criterion bench: one INVITE through the SIP path as a UDP worker runs it — parse,
//! route (local zone, reused decision), build the 302 — without the socket.
//! `cargo bench --bench sip`. Target (issue 3): ≤ 1.5 µs per INVITE.

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
    let src = "192.0.2.1:5060".parse().unwrap();
    let mut group = c.benchmark_group("invite_to_302");
    for (name, number) in [
        ("one_contact", "+441632960001"),
        ("two_contacts", "+441632960002"),
        ("wildcard", "+441632971234"),
        ("gateway", "+441632969999"),
    ] {
        let msg = invite(number, 776);
        match handler.handle(&msg, src, false) {
            Some((Outcome::Reply { status: 302, .. }, _)) => {}
            other => panic!("{name}: {other:?}"),
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = handler.handle(black_box(&msg), src, false);
                black_box(out.map(|(o, n)| match o {
                    Outcome::Reply { bytes, .. } => bytes.len() + n,
                    _ => n,
                }))
            })
        });
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
