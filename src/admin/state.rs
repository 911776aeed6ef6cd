//! What every handler shares ([`AdminState`]): the keeper and the router, the token,
//! readiness, limits from the configuration, and the runtime and metrics it reaches.
//!
//! Must not touch: requests (it is built once at start-up and read by handlers).

use crate::config::Config;
use crate::keeper::Keeper;
use crate::name::Name;
use crate::resolve::Router as RouteEngine;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What every handler shares.
pub struct AdminState {
    pub keeper: Arc<Keeper>,
    pub router: Arc<RouteEngine>,
    /// The bearer token, compared in constant time.
    pub token: String,
    /// Set once every listener is bound; `/readyz` also waits for every zone.
    pub listening: AtomicBool,
    /// Origins of every configured zone and followed catalog (readiness waits for all
    /// of them).
    pub configured: Vec<Name>,
    pub max_body_bytes: usize,
    pub store_path: std::path::PathBuf,
    /// Longest number accepted in paths and bodies (`dialplan.max_digits`).
    pub max_digits: usize,
    /// The runtime SIP, DNS and upstream lookups run on (the API runs on its own).
    pub main: tokio::runtime::Handle,
    /// What `/metrics` renders; `None` when `metrics.enabled` is off.
    pub metrics: Option<Arc<crate::metrics::Exporter>>,
    /// Held by the import running, until its commit ends (one at a time: each holds
    /// its parsed numbers).
    pub importing: Arc<tokio::sync::Mutex<()>>,
    /// The registrar, when `registrar.enabled` (users and registrations).
    pub registrar: Option<Arc<crate::registrar::Registrar>>,
}

impl AdminState {
    pub fn new(
        config: &Config,
        keeper: Arc<Keeper>,
        router: Arc<RouteEngine>,
        token: String,
        metrics: Option<Arc<crate::metrics::Exporter>>,
        registrar: Option<Arc<crate::registrar::Registrar>>,
    ) -> Self {
        AdminState {
            keeper,
            router,
            token,
            listening: AtomicBool::new(false),
            configured: config
                .zones
                .iter()
                .map(|z| z.origin.clone())
                .chain(config.catalogs.iter().map(|c| c.origin.clone()))
                .collect(),
            max_body_bytes: usize::try_from(config.admin.max_body_bytes).unwrap_or(usize::MAX),
            store_path: config.store.clone(),
            max_digits: config.dialplan.max_digits.max(15),
            main: tokio::runtime::Handle::current(),
            metrics,
            importing: Arc::new(tokio::sync::Mutex::new(())),
            registrar,
        }
    }
}

pub(super) type Shared = Arc<AdminState>;
