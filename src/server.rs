//! The running service: start-up, signals, reload and shutdown (SPEC §2 `serve`).
//!
//! Owns: the process lifecycle. Binds the SIP and DNS listeners at start (a bind failure
//! ends the process with exit 1 naming the address) and starts the secondary-zone
//! tasks; SIGHUP re-reads the configuration file, its zone files, dial plan and
//! gateways and swaps them in, all or nothing (one bad file and nothing changes), and
//! NOTIFYs `dns.notify` for every zone whose serial changed; SIGINT/SIGTERM stop
//! accepting, let every task finish the message in hand, and exit 0. The admin listener
//! (`admin.listen`, also `/metrics`) is bound beside them; zone changes from SIGHUP go
//! through the [`Keeper`] like admin changes do, and the keeper's [`Publisher`] is the one
//! the secondary-zone tasks publish their transfers through.
//!
//! Must not touch: routing rules or zone contents; it only swaps what other modules load.

use crate::admin::AdminState;
use crate::config::{Config, ZoneSource};
use crate::dns::answer::{Authority, DnsStats, SecondaryOf};
use crate::dns::notify::Notifier;
use crate::dns::secondary::SecondaryZone;
use crate::keeper::{Keeper, Publisher};
use crate::metrics::{self, Exporter, ProcessStats};
use crate::resolve::{Router, RoutingPlan};
use crate::store::Store;
use std::process::ExitCode;
use std::sync::Arc;

/// SIGHUP: re-reads the configuration file, its zone files, dial plan and gateways, all
/// or nothing. Everything is read and checked first; one error (logged as
/// `FILE:LINE: message`, every one of them) and nothing changes. Then each zone file
/// newer than the store's copy replaces it (through the keeper, which NOTIFYs) and the
/// routing plan is swapped. Returns how many zones were replaced.
///
/// Listeners, the store path, the admin token and `metrics.enabled` are read at start
/// only: changing them needs a restart.
pub fn reload(
    config_file: Option<&std::path::Path>,
    router: &Router,
    keeper: &Keeper,
) -> Result<usize, ReloadError> {
    let config = match config_file {
        Some(p) => Config::load(p).inspect_err(|e| tracing::error!("reload rejected: {e}"))?,
        None => Config::builtin(),
    };
    let plan = RoutingPlan::from_config(&config);
    let replaced = keeper.reload_files(&config)?;
    router.set_plan(plan);
    Ok(replaced)
}

/// Why a SIGHUP reload changed nothing (the details were logged, `FILE:LINE: message`).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Zones(#[from] crate::keeper::ZoneFilesRejected),
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(config: Config, router: Arc<Router>, store: Store) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    metrics::set_enabled(config.metrics_enabled);
    let sockets =
        match crate::sip::transport::bind(&config.sip.listen, config.sip.tls.as_ref()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("SIP listeners not started: {e}");
                eprintln!("enroute: SIP listeners not started: {e}");
                return ExitCode::from(1);
            }
        };
    let shared = Arc::new(crate::sip::transport::Shared {
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
    });
    let dns_sockets = match crate::dns::bind(&config.dns.listen).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("DNS listeners not started: {e}");
            eprintln!("enroute: DNS listeners not started: {e}");
            return ExitCode::from(1);
        }
    };
    let admin_listener = match std::net::TcpListener::bind(config.admin.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
    {
        Ok(l) => l,
        Err(e) => {
            let msg = format!(
                "admin listener not started: cannot bind {}: {e}",
                config.admin.listen
            );
            tracing::error!("{msg}");
            eprintln!("enroute: {msg}");
            return ExitCode::from(1);
        }
    };
    let token = match crate::admin::load_token(&config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("enroute: {e}");
            return ExitCode::from(1);
        }
    };
    let notifier = Arc::new(Notifier::new(config.dns.notify.clone()));
    // Every zone change (admin, SIGHUP, secondary transfers) is published through this.
    let publisher = Arc::new(Publisher::new(
        router.zones().clone(),
        router.cache().clone(),
        notifier.clone(),
    ));
    let keeper = Arc::new(Keeper::new(store, publisher.clone(), &config));
    let process = Arc::new(ProcessStats::new());
    let sip_stats = shared.stats.clone();
    let dns_stats = Arc::new(DnsStats::default());
    let exporter = config.metrics_enabled.then(|| {
        Arc::new(Exporter::new(vec![
            process.clone() as Arc<dyn metrics::Source>,
            sip_stats,
            router.stats().clone(),
            router.cache().clone(),
            dns_stats.clone(),
            notifier.clone(),
            router.zones().clone(),
        ]))
    });
    let admin_state = Arc::new(AdminState::new(
        &config,
        keeper.clone(),
        router.clone(),
        token,
        exporter,
    ));
    let secondaries = secondary_zones(&config);
    let (refresh_tx, refresh_rx) = tokio::sync::mpsc::unbounded_channel();
    let authority = Arc::new(Authority {
        zones: router.zones().clone(),
        allow_transfer: config.dns.allow_transfer.clone(),
        secondaries: secondaries
            .iter()
            .map(|s| SecondaryOf {
                origin: s.origin.clone(),
                primary: s.primary,
            })
            .collect(),
        refresh: refresh_tx,
        stats: dns_stats,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sip = tokio::spawn(crate::sip::transport::serve(
        sockets,
        shared,
        stopped.clone(),
    ));
    let dns = tokio::spawn(crate::dns::serve(dns_sockets, authority, stopped.clone()));
    let admin = crate::admin::spawn(admin_listener, admin_state.clone(), stopped.clone());
    let keep = tokio::spawn(crate::dns::secondary::run(
        secondaries,
        publisher,
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
    tracing::info!(
        config = %config.file.as_ref().map_or("(built-in defaults)".to_string(), |p| p.display().to_string()),
        admin = %config.admin.listen,
        "enroute {} ready",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let file = config.file.clone();
                let (r, k) = (router.clone(), keeper.clone());
                let applied = tokio::task::spawn_blocking(move || reload(file.as_deref(), &r, &k)).await;
                match applied {
                    Ok(Ok(n)) => {
                        process.record_reload(true);
                        tracing::info!(zones = n, "SIGHUP: reload done");
                    }
                    Ok(Err(e)) => {
                        process.record_reload(false);
                        tracing::error!("SIGHUP: reload rejected, nothing changed: {e}");
                    }
                    Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down: no new messages, finishing those in hand");
    let _ = stop.send(true);
    let all = async {
        let _ = tokio::join!(sip, dns, keep, admin);
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), all)
        .await
        .is_err()
    {
        tracing::warn!("SIP/DNS tasks did not finish within 10 s");
    }
    ExitCode::SUCCESS
}

/// Where secondary zones keep their copies: `secondary/` beside the store.
pub fn secondary_dir(config: &Config) -> std::path::PathBuf {
    config
        .store
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("secondary")
}

/// The configured secondary zones (`primary = "IP:PORT"`).
pub fn secondary_zones(config: &Config) -> Vec<SecondaryZone> {
    let dir = secondary_dir(config);
    config
        .zones
        .iter()
        .filter_map(|z| match z.source {
            ZoneSource::Primary(addr) => Some(SecondaryZone::new(z.origin.clone(), addr, &dir)),
            ZoneSource::File(_) => None,
        })
        .collect()
}
