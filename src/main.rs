//! The `enroute` command line (SPEC §2): argument parsing, exit codes and output. All
//! behaviour lives in the library; this file only wires it to the terminal.

use clap::{Parser, Subcommand};
use enroute::config::Config;
use enroute::resolve::Router;
use enroute::store::Store;
use enroute::zone::name::Name;
use enroute::zone::{Zone, ZoneSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const DEFAULT_CONFIG: &str = "config/enroute.toml";

#[derive(Parser)]
#[command(
    name = "enroute",
    version,
    about = "ENUM/DNS number translation and SIP redirect routing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service until SIGINT/SIGTERM; SIGHUP reloads zone files.
    Serve {
        /// Configuration file (default config/enroute.toml; built-in defaults when absent).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the routing decision for a number or Request-URI.
    Route {
        number: String,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Master-file tools.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
    },
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// Validate a master file; prints FILE:LINE: message per error, exit 1 when any.
    Check {
        file: PathBuf,
        /// Zone origin (default: the file's first $ORIGIN, else its name without .zone).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print a configured zone as a master file.
    Export {
        origin: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Route {
            number,
            config,
            json,
        } => route(&number, config.as_deref(), json),
        Command::Zone {
            command: ZoneCommand::Check { file, origin },
        } => zone_check(&file, origin.as_deref()),
        Command::Zone {
            command: ZoneCommand::Export { origin, config },
        } => zone_export(&origin, config.as_deref()),
    }
}

/// Loads the configuration: the given file, else `config/enroute.toml` when present,
/// else the built-in defaults (SPEC §10.2). Errors print one line; exit 2.
fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    let result = match path {
        Some(p) => Config::load(p),
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG)),
        None => Ok(Config::builtin()),
    };
    result.map_err(|e| {
        eprintln!("enroute: config error: {e}");
        ExitCode::from(2)
    })
}

/// Loads every configured zone as it is served: the store's copy or the newer file
/// (written to the store when `store` is given, SPEC §6), then the kept copies of
/// secondary zones. Any error is fatal (all or nothing).
fn load_zones(config: &Config, store: Option<&mut Store>) -> Result<Vec<Zone>, String> {
    let mut zones = match store {
        Some(store) => enroute::keeper::load_zones_of_record(config, store)?,
        None => enroute::keeper::read_zones_of_record(config)?,
    };
    // Secondary zones start from the copy kept on disk (until SOA expire); their tasks
    // transfer a fresh one as soon as the server runs.
    for sec in enroute::server::secondary_zones(config) {
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
fn load_all(config_path: Option<&Path>) -> Result<(Config, Vec<Zone>), ExitCode> {
    let config = load_config(config_path)?;
    enroute::logging::init(&config);
    match load_zones(&config, None) {
        Ok(zones) => Ok((config, zones)),
        Err(e) => {
            eprintln!("enroute: zone load failed:\n{e}");
            Err(ExitCode::from(2))
        }
    }
}

fn route(number: &str, config: Option<&Path>, json: bool) -> ExitCode {
    if number.trim().is_empty() {
        eprintln!("enroute: route needs a number or a sip:, sips: or tel: URI");
        return ExitCode::from(2);
    }
    let (config, zones) = match load_all(config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Upstream lookups are asynchronous: a small runtime for this one decision.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("enroute: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let decision = runtime.block_on(async {
        let router = Router::new(&config, Arc::new(ZoneSet::new(zones)));
        router.route_full(number, true).await
    });
    if json {
        match serde_json::to_string_pretty(&decision) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("enroute: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", decision.to_text());
    }
    // SPEC §10.22: 0 for a 302, 1 for any other decision.
    if decision.status == 302 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn zone_check(file: &Path, origin: Option<&str>) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}:0: cannot read zone file: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let origin = match origin
        .map(str::to_string)
        .or_else(|| guess_origin(file, &text))
    {
        Some(o) => o,
        None => {
            eprintln!(
                "{}:0: no --origin given, no $ORIGIN in the file and no origin in its name",
                file.display()
            );
            return ExitCode::from(1);
        }
    };
    let origin = match Name::from_text(&origin) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("enroute: --origin {origin:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let display = file.display().to_string();
    match Zone::from_master(&text, &display, &origin, file.parent()) {
        Ok((zone, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            println!(
                "{display}: zone {} OK: serial {}, {} records ({} NAPTR), {} names",
                zone.origin,
                zone.soa.serial,
                zone.stats.records,
                zone.stats.naptr_records,
                zone.stats.nodes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for d in &e.diagnostics {
                println!("{d}");
            }
            ExitCode::from(1)
        }
    }
}

/// The first `$ORIGIN` before any record, else the file name without `.zone`.
fn guess_origin(file: &Path, text: &[u8]) -> Option<String> {
    for line in text.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let t = line.trim();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
        let mut words = t.split_whitespace();
        match words.next() {
            Some(w) if w.eq_ignore_ascii_case("$ORIGIN") => {
                return words.next().map(str::to_string);
            }
            Some(w) if w.starts_with('$') => continue,
            _ => break,
        }
    }
    let name = file.file_name()?.to_str()?;
    let stem = name.strip_suffix(".zone").unwrap_or(name);
    (stem != name && !stem.is_empty()).then(|| stem.to_string())
}

fn zone_export(origin: &str, config: Option<&Path>) -> ExitCode {
    let origin = match Name::from_text(origin) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("enroute: origin {origin:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let (_, zones) = match load_all(config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match zones.iter().find(|z| z.origin.eq_ignore_case(&origin)) {
        Some(z) => {
            print!("{}", z.to_master());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("enroute: no zone {origin} in the configuration");
            ExitCode::from(1)
        }
    }
}

fn serve(config_path: Option<&Path>) -> ExitCode {
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
    let zones = match load_zones(&config, Some(&mut store)) {
        Ok(z) => z,
        Err(e) => {
            eprintln!("enroute: zone load failed:\n{e}");
            return ExitCode::from(2);
        }
    };
    let zone_set = Arc::new(ZoneSet::new(zones));
    let router = Arc::new(Router::new(&config, zone_set.clone()));
    for z in zone_set.load().iter() {
        tracing::info!(zone = %z.origin, serial = z.soa.serial, records = z.stats.records, "zone loaded");
    }
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
    runtime.block_on(enroute::server::run(config, router, store))
}
