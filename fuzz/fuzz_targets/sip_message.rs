//! Fuzz target: any bytes through the SIP parser and the redirect handler (both UDP and
//! stream framing), against a router with a small local zone and the registrar on (one
//! user, its file in a temporary directory). Must never panic.
#![no_main]

use enroute::config::Config;
use enroute::resolve::Router;
use enroute::sip::redirect::{Handler, Settings};
use enroute::name::Name;
use enroute::zone::{Zone, ZoneSet};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct World {
    router: Router,
    settings: Settings,
    key: enroute::sip::dialog::TagKey,
    registrar: Arc<enroute::registrar::Registrar>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let zone = "$ORIGIN 2.3.6.1.4.4.e164.arpa.\n$TTL 60\n@ SOA ns. h. 1 2 3 4 5\n\
                    1.0.0.0.6.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b.example!\" .\n\
                    *.7.9 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^\\\\+(.*)$!sip:\\\\1@c.example!\" .\n";
        let origin = Name::from_text("2.3.6.1.4.4.e164.arpa.").unwrap();
        let (zone, _) = Zone::from_master(zone.as_bytes(), "f.zone", &origin, None).unwrap();
        let config = Config::builtin();
        let mut reg_config = enroute::config::RegistrarConfig::default();
        reg_config.enabled = true;
        reg_config.domains = vec!["example.net".into()];
        reg_config.realm = "example.net".into();
        let dir = std::env::temp_dir().join(format!("enroute-fuzz-{}", std::process::id()));
        let registrar = enroute::registrar::Registrar::open(reg_config, &dir.join("r.db"))
            .expect("the registrar's file in a temporary directory");
        let user = enroute::registrar::User::from_password("alice", "example.net", "secret");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(registrar.put_user("alice@example.net", user)).unwrap();
        // One binding held, so that INVITEs reach the registrar step of routing.
        registrar.location.set(
            "alice@example.net",
            vec![enroute::registrar::Binding {
                contact: "sip:alice@192.0.2.1".into(),
                q: 1000,
                expires_at: u64::MAX / 2,
                call_id: "fuzz".into(),
                cseq: 1,
                updated_ms: 0,
            }],
        );
        let router = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])))
            .with_registrar(registrar.location.clone(), vec!["example.net".into()]);
        World {
            router,
            registrar,
            settings: Settings {
                allow: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
                server: "fuzz".into(),
            },
            key: Default::default(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut h = Handler::new(&w.router, &w.settings, &w.key).with_registrar(Some(&w.registrar));
    let src = "127.0.0.1:5060".parse().unwrap();
    let _ = h.handle(data, src, false);
    // stream framing: consume messages until the buffer is used up or incomplete
    let mut buf = data;
    while let Some((_, used)) = h.handle(buf, src, true) {
        if used == 0 || used > buf.len() {
            break;
        }
        buf = &buf[used..];
    }
});
