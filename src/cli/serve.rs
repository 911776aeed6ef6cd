//! `enroute serve`: opens the store, loads the zones, builds the router and runs the
//! server ([`enroute::server::run`]) until a signal.
//!
//! Owns: the command's help text and the exit codes of a failed start. Must not touch:
//! the lifecycle itself (listeners, signals, reload), which is the library's `server`.

use super::setup::{load_config, load_zones};
use enroute::resolve::Router;
use enroute::store::Store;
use enroute::zone::ZoneSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub const ABOUT: &str = "\
Runs the SIP redirect server, the DNS server for the local zones and the admin HTTP API \
until SIGINT or SIGTERM, which stop it gracefully: no new requests, those in hand finish, \
exit 0.

SIGHUP re-reads the configuration file and applies, all or nothing (one error and \
nothing changes): the zone files (a file replaces the served zone only when its SOA \
serial is higher than the stored copy's), [dialplan], [enum], [[gateway]] and \
sip.max_contacts.

Read at start only (a restart applies a change): the listeners (sip.listen, dns.listen, \
admin.listen, which also serves /metrics), sip.allow, the [sip.tls] files, the limits \
(sip.max_message_bytes, sip.tcp_idle_s, sip.max_transactions, admin.max_body_bytes), \
[cache], dns.allow_transfer and dns.notify, secondary zones, [admin], [store], [log] and \
[metrics].

The admin API's bearer token is ENROUTE_ADMIN_TOKEN when set, else the content of \
admin.token_file, else a random token written there (mode 0600) on the first start.";

pub const EXIT: &str = "\
Exit codes:
  0  stopped by SIGINT or SIGTERM
  1  a listener could not bind, or the store or the token file could not be opened
  2  bad configuration, or a zone file that does not load (FILE:LINE: message)";

pub fn run(config_path: Option<&Path>) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    enroute::logging::init(&config);
    let mut store = match Store::open(&config.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("enroute: {e}");
            return ExitCode::from(1);
        }
    };
    // A store from before the numbers table keeps its numbers as records: moved once.
    match enroute::keeper::stored::split_numbers(&mut store) {
        Ok(split) if !split.is_empty() => {
            tracing::info!(zones = ?split, "numbers moved to the store's numbers table");
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("enroute: {e}");
            return ExitCode::from(1);
        }
    }
    let zones = match load_zones(&config, Some(&mut store)) {
        Ok(z) => z,
        Err(e) => {
            eprintln!("enroute: zone load failed:\n{e}");
            return ExitCode::from(2);
        }
    };
    let zone_set = Arc::new(ZoneSet::new(zones));
    let registrar = if config.registrar.enabled {
        let path = enroute::registrar::writer::path_beside(&config.store);
        match enroute::registrar::Registrar::open(config.registrar.clone(), &path) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("enroute: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let mut router = Router::new(&config, zone_set);
    if let Some(reg) = &registrar {
        router = router.with_registrar(reg.location.clone(), config.registrar.domains.clone());
    }
    let router = Arc::new(router);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("enroute: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(enroute::server::run(config, router, store, registrar))
}
