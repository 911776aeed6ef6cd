//! What the commands start from: the configuration (the given file, else
//! `config/enroute.toml` when present, else the built-in defaults), logging quiet enough
//! for a terminal, every zone as it is served, and the admin-API client from `--url`,
//! `--token` and `--config`.
//!
//! Owns: the default configuration path and its help text, and the exit code 2 of a
//! configuration or zone that does not load (printed here, once). Must not touch: what
//! a command prints on success (its own file, or `output`).

use enroute::client::{Client, ClientError, Endpoint};
use enroute::config::{Config, ConfigError};
use enroute::store::Store;
use enroute::zone::Zone;
use std::path::Path;
use std::process::ExitCode;

pub const DEFAULT_CONFIG: &str = "config/enroute.toml";

pub const CONFIG_HELP: &str =
    "Configuration file [default: config/enroute.toml when it exists, else built-in defaults]";

/// Reads the configuration: the given file, else `config/enroute.toml` when present,
/// else the built-in defaults (SPEC §10.2).
pub fn read_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG)),
        None => Ok(Config::builtin()),
    }
}

/// As [`read_config`]; an error is printed as one line and carries exit code 2.
pub fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    read_config(path).map_err(|e| {
        eprintln!("enroute: config error: {e}");
        ExitCode::from(2)
    })
}

/// Logging for every command but `serve`: warnings and errors only, whatever
/// `log.level` says. The user asked for output, not for the server's log; the format
/// (text or JSON) is kept.
pub fn init_quiet_logging(config: &Config) {
    let mut quiet = config.clone();
    quiet.log.level = "warn".into();
    enroute::logging::init(&quiet);
}

/// Loads every configured zone as it is served: the store's copy or the newer file
/// (written to the store when `store` is given, SPEC §6), then the kept copies of
/// secondary zones. Any error is fatal (all or nothing).
pub fn load_zones(config: &Config, store: Option<&mut Store>) -> Result<Vec<Zone>, String> {
    let mut zones = match store {
        Some(store) => enroute::keeper::load_zones_of_record(config, store)?,
        None => enroute::keeper::read_zones_of_record(config)?,
    };
    // Secondary zones start from the copy kept on disk (until SOA expire); their tasks
    // transfer a fresh one as soon as the server runs.
    for sec in enroute::server::secondary_zones(config) {
        // A zone of this instance's own (one created through the API that a followed
        // catalog lists too) is served as its own.
        if zones.iter().any(|z| z.origin.eq_ignore_case(&sec.origin)) {
            continue;
        }
        match enroute::dns::secondary::load_copy(&sec) {
            Some((zone, _)) => {
                tracing::info!(zone = %sec.origin, serial = zone.soa.serial, "secondary zone: serving the kept copy until the primary answers");
                zones.push(zone);
            }
            None => {
                tracing::info!(zone = %sec.origin, primary = %sec.primary, "secondary zone: no kept copy; waiting for the first transfer");
            }
        }
    }
    Ok(zones)
}

/// Configuration, logging and every zone, as each command that routes needs them
/// (read-only: the store is not written); a failure has been printed and carries exit
/// code 2.
pub fn load_all(config_path: Option<&Path>) -> Result<(Config, Vec<Zone>), ExitCode> {
    let config = load_config(config_path)?;
    init_quiet_logging(&config);
    match load_zones(&config, None) {
        Ok(zones) => Ok((config, zones)),
        Err(e) => {
            eprintln!("enroute: zone load failed:\n{e}");
            Err(ExitCode::from(2))
        }
    }
}

/// The client for `--url`/`--token`/`--config` (each falling back as `numbers --help`
/// says); the configuration is read only when the URL or the token is still missing.
pub fn connect(
    url: Option<&str>,
    token: Option<&str>,
    config: Option<&Path>,
) -> Result<Client, ClientError> {
    let endpoint = Endpoint::resolve(url, token, || {
        let c = read_config(config).map_err(|e| format!("config error: {e}"))?;
        init_quiet_logging(&c);
        Ok(c)
    })?;
    Ok(Client::new(endpoint))
}
