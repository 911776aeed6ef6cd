//! The running service: start-up, signals, reload and shutdown (SPEC §2 `serve`).
//!
//! Owns: the process lifecycle. Binds the SIP, DNS and admin listeners at start (a bind
//! failure, or an unreadable TLS file, ends the process with exit 1 and names the
//! config's `FILE:LINE: KEY` and the address), logs the start-up summary (listeners as
//! bound, config file, store, where the admin token comes from, each zone with serial
//! and records; the `ready` line last, and no line before it says "ready") and starts
//! the secondary-zone tasks; SIGHUP re-reads the configuration file, its zone files, dial plan and
//! gateways and swaps them in, all or nothing (one bad file and nothing changes), and
//! NOTIFYs `dns.notify` for every zone whose serial changed; SIGINT/SIGTERM stop
//! accepting, let every task finish the message in hand, and exit 0. The admin listener
//! (`admin.listen`, also `/metrics`) is bound beside them; zone changes from SIGHUP go
//! through the [`Keeper`] like admin changes do, and the keeper's [`Publisher`] is the one
//! the secondary-zone tasks publish their transfers through.
//!
//! Must not touch: routing rules or zone contents; it only swaps what other modules load.

use crate::admin::{AdminState, TokenError, TokenSource};
use crate::config::{Config, ZoneSource};
use crate::dns::answer::{Authority, DnsStats, SecondaryOf};
use crate::dns::follow::Registry;
use crate::dns::guard::Keys;
use crate::dns::notify::Notifier;
use crate::dns::secondary::{Role, SecondaryZone};
use crate::dns::xfr::XfrStats;
use crate::keeper::journal::Journal;
use crate::keeper::reload::Reloaded;
use crate::keeper::{Hooks, Keeper, Publisher};
use crate::metrics::{self, Exporter, ProcessStats};
use crate::registrar::Registrar;
use crate::resolve::{Router, RoutingPlan};
use crate::store::Store;
use std::process::ExitCode;
use std::sync::Arc;

/// SIGHUP: re-reads the configuration file, its zone files, dial plan and gateways, all
/// or nothing. Everything is read and checked first; one error (logged as
/// `FILE:LINE: message`, every one of them) and nothing changes. Then each zone file
/// newer than the store's copy replaces it (through the keeper, which NOTIFYs) and the
/// routing plan is swapped. Returns what happened to the zones.
///
/// Listeners, the store path, the admin token and `metrics.enabled` are read at start
/// only: changing them needs a restart.
pub fn reload(
    config_file: Option<&std::path::Path>,
    router: &Router,
    keeper: &Keeper,
) -> Result<Reloaded, ReloadError> {
    let config = match config_file {
        Some(p) => Config::load(p).inspect_err(|e| tracing::error!("reload rejected: {e}"))?,
        None => Config::builtin(),
    };
    let plan = RoutingPlan::from_config(&config);
    let replaced = keeper.reload_files(&config)?;
    router.set_plan(plan);
    // Zones may have come or gone: the catalog follows (a failure leaves its last copy).
    if let Err(e) = keeper.sync_catalog() {
        tracing::error!("{e}");
    }
    Ok(replaced)
}

/// Why a SIGHUP reload changed nothing (the details were logged, `FILE:LINE: message`).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Zones(#[from] crate::keeper::reload::ZoneFilesRejected),
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(
    config: Config,
    router: Arc<Router>,
    store: Store,
    registrar: Option<Arc<Registrar>>,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    metrics::set_enabled(config.metrics_enabled);
    let Listeners {
        sip: sockets,
        dns: dns_sockets,
        admin: admin_listener,
        summary: listening,
    } = match bind_all(&config).await {
        Ok(l) => l,
        Err(e) => return fatal(&e.to_string()),
    };
    // The address really bound (`admin.listen` may ask for port 0).
    let admin_addr = admin_listener
        .local_addr()
        .map_or(config.admin.listen.to_string(), |a| a.to_string());
    let (token, token_source) = match crate::admin::load_token(&config) {
        Ok(t) => t,
        // Its message starts with the key; give it the file and line too.
        Err(e @ TokenError::File { .. }) => {
            return fatal(&format!("{}{e}", config.keys.location("admin.token_file")));
        }
        Err(e) => return fatal(&e.to_string()),
    };
    let shared = sip_shared(&config, &router, registrar.clone());
    let transfer_key = config.dns.transfer_key.as_ref();
    let notify_key = transfer_key.and_then(|k| config.tsig_key(k)).cloned();
    let notifier = Arc::new(Notifier::new(config.dns.notify.clone(), notify_key));
    let publisher = publisher(&router, &notifier);
    // A followed catalog's member never takes over a zone created through this
    // server's API (configured zones are left out by `secondary_zones`).
    let api_zones: Vec<crate::name::Name> = match store.api_created_zones() {
        Ok(origins) => origins
            .iter()
            .filter_map(|o| crate::name::Name::from_text(o).ok())
            .collect(),
        Err(e) => return fatal(&e.to_string()),
    };
    let keeper = Arc::new(Keeper::new(store, publisher.clone(), &config));
    // Every secondary (catalog members from kept copies included) is marked before the
    // catalog is brought in step, so that none is listed as a zone of this primary.
    let secondaries: Vec<SecondaryZone> = secondary_zones(&config)
        .into_iter()
        .filter(|s| {
            !matches!(s.role, Role::Member(_))
                || !api_zones.iter().any(|o| o.eq_ignore_case(&s.origin))
        })
        .collect();
    for s in &secondaries {
        keeper.set_secondary(&s.origin, true);
    }
    let k = keeper.clone();
    match tokio::task::spawn_blocking(move || k.sync_catalog()).await {
        Ok(Err(e)) => return fatal(&e.to_string()),
        Err(e) => return fatal(&e.to_string()),
        Ok(Ok(_)) => {}
    }
    let process = Arc::new(ProcessStats::new());
    let dns_stats = Arc::new(DnsStats::default());
    let xfr_stats = Arc::new(XfrStats::new(keeper.transfers().clone()));
    let journal = Arc::new(Journal::new(config.store.clone()));
    let exporter = config.metrics_enabled.then(|| {
        let mut sources: Vec<Arc<dyn metrics::Source>> = vec![
            process.clone() as Arc<dyn metrics::Source>,
            shared.stats.clone(),
            router.stats().clone(),
            router.cache().clone(),
            dns_stats.clone(),
            xfr_stats.clone(),
            journal.clone(),
            notifier.clone(),
            router.zones().clone(),
        ];
        if let Some(r) = &registrar {
            sources.push(r.clone());
        }
        Arc::new(Exporter::new(sources))
    });
    let admin_state = Arc::new(AdminState::new(
        &config,
        keeper.clone(),
        router.clone(),
        token,
        exporter,
        registrar.clone(),
    ));
    let (refresh_tx, refresh_rx) = tokio::sync::mpsc::unbounded_channel();
    let stats = (dns_stats, xfr_stats.clone());
    let authority = authority(&config, &router, &secondaries, refresh_tx, stats, journal);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sip = tokio::spawn(crate::sip::transport::serve(
        sockets,
        shared,
        stopped.clone(),
    ));
    let dns = tokio::spawn(crate::dns::serve(
        dns_sockets,
        authority.clone(),
        stopped.clone(),
    ));
    let admin = crate::admin::spawn(admin_listener, admin_state.clone(), stopped.clone());
    let sweep = registrar
        .clone()
        .map(|r| tokio::spawn(sweep_bindings(r, stopped.clone())));
    let registry = Registry {
        notify_from: authority.secondaries.clone(),
        keeper: keeper.clone(),
        dir: secondary_dir(&config),
    };
    let keep = tokio::spawn(crate::dns::follow::run(
        secondaries,
        (publisher, xfr_stats),
        registry,
        refresh_rx,
        stopped,
    ));
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::from(1);
    };
    // Every listener is bound: /readyz now answers by the zones alone.
    admin_state
        .listening
        .store(true, std::sync::atomic::Ordering::Release);
    log_summary(&config, &listening, token_source, router.zones());
    if let Some(r) = &registrar {
        tracing::info!(
            path = %crate::registrar::writer::path_beside(&config.store).display(),
            domains = ?r.config.domains,
            users = r.users.len(),
            aors = r.location.aors(),
            bindings = r.location.bindings(),
            "registrar"
        );
    }
    tracing::info!(
        config = %config.file.as_ref().map_or("(built-in defaults)".to_string(), |p| p.display().to_string()),
        admin = %admin_addr,
        "enroute {} ready",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        tokio::select! {
            _ = hup.recv() => on_sighup(&config, &router, &keeper, &process).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down: no new messages, finishing those in hand");
    let _ = stop.send(true);
    let all = async {
        let _ = tokio::join!(sip, dns, keep, admin);
        if let Some(s) = sweep {
            let _ = s.await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), all)
        .await
        .is_err()
    {
        tracing::warn!("SIP/DNS tasks did not finish within 10 s");
    }
    ExitCode::SUCCESS
}

/// Drops expired bindings from memory and disk every few seconds (they are never used
/// once expired; this only frees them) until shutdown.
async fn sweep_bindings(registrar: Arc<Registrar>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => {
                let r = registrar.clone();
                let _ = tokio::task::spawn_blocking(move || r.sweep(crate::registrar::unix_now())).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// What every SIP listener shares: the router, the limits and the counters.
fn sip_shared(
    config: &Config,
    router: &Arc<Router>,
    registrar: Option<Arc<Registrar>>,
) -> Arc<crate::sip::transport::Shared> {
    Arc::new(crate::sip::transport::Shared {
        router: router.clone(),
        max_transactions: config.sip.max_transactions,
        settings: crate::sip::redirect::Settings {
            allow: config.sip.allow.clone(),
            server: format!("enroute/{}", env!("CARGO_PKG_VERSION")),
        },
        tag_key: Default::default(),
        max_message_bytes: config.sip.max_message_bytes,
        tcp_idle: std::time::Duration::from_secs(config.sip.tcp_idle_s),
        stats: Default::default(),
        registrar,
    })
}

/// The publisher every zone change (admin, SIGHUP, secondary transfers) goes through:
/// it NOTIFYs and drops stale cached decisions through these hooks.
fn publisher(router: &Router, notifier: &Arc<Notifier>) -> Arc<Publisher> {
    let (n, cache) = (notifier.clone(), router.cache().clone());
    let cache_all = cache.clone();
    let hooks = Hooks {
        serial_changed: Box::new(move |origin, serial| n.zone_changed(origin, serial)),
        invalidate_all: Box::new(move || cache_all.invalidate_all()),
        invalidate: Box::new(move |number| cache.invalidate(number)),
    };
    Arc::new(Publisher::new(router.zones().clone(), hooks))
}

/// What the DNS listeners answer from: the zones, who may transfer them, and which are
/// secondaries (a NOTIFY for one asks its task to refresh).
fn authority(
    config: &Config,
    router: &Router,
    secondaries: &[SecondaryZone],
    refresh: tokio::sync::mpsc::UnboundedSender<crate::name::Name>,
    (stats, xfr): (Arc<DnsStats>, Arc<XfrStats>),
    journal: Arc<Journal>,
) -> Arc<Authority> {
    Arc::new(Authority {
        zones: router.zones().clone(),
        allow_transfer: config.dns.allow_transfer.clone(),
        secondaries: Arc::new(std::sync::RwLock::new(
            secondaries
                .iter()
                .map(|s| SecondaryOf {
                    origin: s.origin.clone(),
                    primary: s.primary,
                    key: s.key.as_ref().map(|k| k.name.clone()),
                })
                .collect(),
        )),
        refresh,
        stats,
        xfr,
        journal: Some(journal),
        keys: Keys {
            all: config.tsig.clone(),
            transfer: config.dns.transfer_key.clone(),
        },
    })
}

/// SIGHUP: [`reload`] on a blocking thread, its outcome logged and counted.
async fn on_sighup(
    config: &Config,
    router: &Arc<Router>,
    keeper: &Arc<Keeper>,
    process: &ProcessStats,
) {
    let file = config.file.clone();
    let (r, k) = (router.clone(), keeper.clone());
    let applied = tokio::task::spawn_blocking(move || reload(file.as_deref(), &r, &k)).await;
    match applied {
        Ok(Ok(r)) if r.ignored > 0 => {
            process.record_reload(true);
            tracing::warn!(
                zones = r.replaced,
                ignored_files = r.ignored,
                "SIGHUP: reload done, but zone files were ignored (see the warnings above)"
            );
        }
        Ok(Ok(r)) => {
            process.record_reload(true);
            tracing::info!(zones = r.replaced, "SIGHUP: reload done");
        }
        Ok(Err(e)) => {
            process.record_reload(false);
            tracing::error!("SIGHUP: reload rejected, nothing changed: {e}");
        }
        Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
    }
}

/// Prints a start-up failure (to the log and plainly on stderr, for when the log is
/// filtered or JSON) and gives the exit code for it.
fn fatal(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("enroute: {message}");
    ExitCode::from(1)
}

/// Every listener, bound; what the start-up summary says about them.
struct Listeners {
    sip: Vec<crate::sip::transport::Bound>,
    dns: Vec<crate::dns::Bound>,
    admin: std::net::TcpListener,
    summary: Vec<Listening>,
}

/// One bound address as the summary names it: service, transport, the address really
/// bound (port 0 resolved), and how many sockets share it (one UDP socket per core).
struct Listening {
    service: &'static str,
    transport: &'static str,
    addr: std::net::SocketAddr,
    sockets: usize,
}

/// Adds a bound socket to the summary, counting it with the one before when both share
/// the address (the per-core UDP sockets of one `listen` entry).
fn note(
    summary: &mut Vec<Listening>,
    service: &'static str,
    transport: &'static str,
    addr: std::io::Result<std::net::SocketAddr>,
) {
    let Ok(addr) = addr else { return };
    match summary.last_mut() {
        Some(l) if l.service == service && l.transport == transport && l.addr == addr => {
            l.sockets += 1
        }
        _ => summary.push(Listening {
            service,
            transport,
            addr,
            sockets: 1,
        }),
    }
}

/// Binds the SIP, DNS and admin listeners, each `listen` entry on its own so that a
/// failure names the config's file, line and key (`e.toml:3: sip.listen[1]: cannot
/// bind …`). TLS files are checked for reading first, for the same reason.
async fn bind_all(config: &Config) -> Result<Listeners, crate::config::ConfigError> {
    let mut summary = Vec::new();
    check_tls_files(config)?;
    let sip = bind_sip(config, &mut summary).await?;
    let dns = bind_dns(config, &mut summary).await?;
    let admin = std::net::TcpListener::bind(config.admin.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            config.value_error(
                "admin.listen",
                format!("cannot bind {}: {e}", config.admin.listen),
            )
        })?;
    note(&mut summary, "admin", "http", admin.local_addr());
    Ok(Listeners {
        sip,
        dns,
        admin,
        summary,
    })
}

async fn bind_sip(
    config: &Config,
    summary: &mut Vec<Listening>,
) -> Result<Vec<crate::sip::transport::Bound>, crate::config::ConfigError> {
    use crate::sip::transport::{self, BindError, Bound};
    let mut sip = Vec::new();
    for (i, l) in config.sip.listen.iter().enumerate() {
        let bound = transport::bind(std::slice::from_ref(l), config.sip.tls.as_ref())
            .await
            .map_err(|e| match e {
                BindError::Tls(m) => config.value_error("sip.tls", m),
                bind => config.value_error(&format!("sip.listen[{i}]"), bind.to_string()),
            })?;
        for b in &bound {
            match b {
                Bound::Udp(s) => note(summary, "SIP", "udp", s.local_addr()),
                Bound::Tcp(s) => note(summary, "SIP", "tcp", s.local_addr()),
                Bound::Tls(s, _) => note(summary, "SIP", "tls", s.local_addr()),
            }
        }
        sip.extend(bound);
    }
    Ok(sip)
}

async fn bind_dns(
    config: &Config,
    summary: &mut Vec<Listening>,
) -> Result<Vec<crate::dns::Bound>, crate::config::ConfigError> {
    use crate::dns::{self, Bound};
    let mut out = Vec::new();
    for (i, l) in config.dns.listen.iter().enumerate() {
        let bound = dns::bind(std::slice::from_ref(l))
            .await
            .map_err(|e| config.value_error(&format!("dns.listen[{i}]"), e.to_string()))?;
        for b in &bound {
            match b {
                Bound::Udp(s) => note(summary, "DNS", "udp", s.local_addr()),
                Bound::Tcp(s) => note(summary, "DNS", "tcp", s.local_addr()),
            }
        }
        out.extend(bound);
    }
    Ok(out)
}

/// With a `tls:` listener, the certificate and key must be readable: an error names
/// the key (`sip.tls.cert`, with the config's `FILE:LINE`) rather than leaving the
/// operator to guess which file. `serve` checks this before it binds anything, and
/// `config check` asks the same so that it fails where `serve` would.
pub fn check_tls_files(config: &Config) -> Result<(), crate::config::ConfigError> {
    let Some(tls) = &config.sip.tls else {
        return Ok(());
    };
    if !config
        .sip
        .listen
        .iter()
        .any(|l| l.transport == crate::config::Transport::Tls)
    {
        return Ok(());
    }
    for (key, path) in [("sip.tls.cert", &tls.cert), ("sip.tls.key", &tls.key)] {
        std::fs::File::open(path).map_err(|e| {
            config.value_error(key, format!("cannot read \"{}\": {e}", path.display()))
        })?;
    }
    Ok(())
}

/// The start-up summary, logged once everything is bound and just before the ready
/// line: every listener with the address really bound, the config file, the store, where
/// the admin token comes from (never the token), and each configured zone with its
/// serial and record count. Nothing here may say "ready": that word marks the last line.
fn log_summary(
    config: &Config,
    listening: &[Listening],
    token: TokenSource,
    zones: &crate::zone::ZoneSet,
) {
    log_listeners(config, listening);
    match &config.file {
        Some(f) => tracing::info!(file = %f.display(), "config"),
        None => tracing::info!("config: built-in defaults (no file)"),
    }
    tracing::info!(path = %config.store.display(), "store");
    let file = config.admin.token_file.display();
    match token {
        TokenSource::Env => tracing::info!("admin token: from ENROUTE_ADMIN_TOKEN"),
        TokenSource::File => tracing::info!(file = %file, "admin token read from its file"),
        TokenSource::Generated => {
            tracing::info!(file = %file, "admin token generated into its file (mode 0600)")
        }
    }
    log_zones(config, zones);
}

/// One line per bound address; the per-core UDP sockets of one address are one line
/// that counts them.
fn log_listeners(config: &Config, listening: &[Listening]) {
    for l in listening {
        if l.service == "admin" {
            let paths = if config.metrics_enabled {
                "/v1 (with the token), /healthz, /metrics"
            } else {
                "/v1 (with the token), /healthz"
            };
            tracing::info!(url = %format!("http://{}", l.addr), paths, "admin API listening");
        } else if l.sockets > 1 {
            tracing::info!(addr = %l.addr, sockets = l.sockets, "{} listening on {}", l.service, l.transport);
        } else {
            tracing::info!(addr = %l.addr, "{} listening on {}", l.service, l.transport);
        }
    }
}

/// Each configured zone: where it comes from and, when served, its serial and records.
fn log_zones(config: &Config, zones: &crate::zone::ZoneSet) {
    let served = zones.load();
    for z in &config.zones {
        let source = match &z.source {
            // The store's copy is served; the file replaces it only when its serial is
            // higher (the serial logged is the served one, which may be the store's).
            ZoneSource::File(p) => format!(
                "store, loaded from file {} when its serial is higher",
                p.display()
            ),
            ZoneSource::Store => "store only (change it through the admin API)".to_string(),
            ZoneSource::Primary(a) => format!("secondary of {a}"),
        };
        match served.iter().find(|s| s.origin.eq_ignore_case(&z.origin)) {
            Some(s) => {
                tracing::info!(zone = %z.origin, serial = s.soa.serial, records = s.stats.records, source, "zone")
            }
            None => {
                tracing::info!(zone = %z.origin, source, "zone not served yet: waiting for the first transfer")
            }
        }
    }
}

/// Where secondary zones keep their copies: `secondary/` beside the store.
pub fn secondary_dir(config: &Config) -> std::path::PathBuf {
    config
        .store
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("secondary")
}

/// The secondary zones: configured ones (`primary = "IP:PORT"`), followed catalogs
/// (`[[catalog]]`) and the members their kept copies list.
pub fn secondary_zones(config: &Config) -> Vec<SecondaryZone> {
    let dir = secondary_dir(config);
    let key =
        |name: &Option<crate::name::Name>| name.as_ref().and_then(|k| config.tsig_key(k)).cloned();
    let zones = config.zones.iter().filter_map(|z| match z.source {
        ZoneSource::Primary(addr) => Some(SecondaryZone::new(
            z.origin.clone(),
            addr,
            &dir,
            key(&z.key),
        )),
        ZoneSource::File(_) | ZoneSource::Store => None,
    });
    let catalogs = config.catalogs.iter().map(|c| {
        SecondaryZone::new(c.origin.clone(), c.primary, &dir, key(&c.key)).with_role(Role::Catalog)
    });
    // Zones this instance is primary for are never taken over by a catalog's member.
    let local: Vec<crate::name::Name> = config
        .zones
        .iter()
        .filter(|z| !matches!(z.source, ZoneSource::Primary(_)))
        .map(|z| z.origin.clone())
        .chain(config.dns.catalog_zone.clone())
        .collect();
    crate::dns::follow::with_members(zones.chain(catalogs).collect(), &dir, &local)
}
