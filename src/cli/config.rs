//! `enroute config check`: the configuration and every file it names (zones, the TLS
//! certificate and key), checked without starting anything or writing anything.
//!
//! Owns: the command's arguments, help text, lines and exit codes. Zone files are
//! checked as `enroute zone check` checks them ([`zone::check_configured_zone`]). Must
//! not touch: the store or the token file (nothing is written).

use super::setup::{DEFAULT_CONFIG, init_quiet_logging};
use super::zone;
use enroute::config::{Config, ZoneConfig, ZoneSource};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const CHECK_EXIT: &str = "\
Prints `FILE: OK` and one line per zone (serial, records) when all is well. Writes \
nothing: no store, no token file.

Exit codes:
  0  the configuration and every file it names (zones, TLS certificate and key) are valid
  1  a zone file has errors (each printed as FILE:LINE: message), or a file it names \
cannot be read (CONFIG:LINE: KEY: message)
  2  the configuration is invalid (one line: FILE:LINE: KEY: message), or missing";

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration and the zone files it names, without starting anything.
    #[command(after_help = CHECK_EXIT)]
    Check {
        #[arg(
            long,
            value_name = "FILE",
            help = "Configuration file [default: config/enroute.toml]"
        )]
        config: Option<PathBuf>,
    },
}

pub fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Check { config } => check(config.as_deref()),
    }
}

/// `config check`: the configuration, then every zone file it names; writes nothing
/// (no store, no token file).
fn check(path: Option<&Path>) -> ExitCode {
    let path = path.unwrap_or(Path::new(DEFAULT_CONFIG));
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return ExitCode::from(2);
        }
    };
    init_quiet_logging(&config);
    let mut lines = Vec::new();
    let mut clean = true;
    // Files `serve` reads at start besides the zones: the TLS certificate and key.
    if let Err(e) = enroute::server::check_tls_files(&config) {
        clean = false;
        lines.push(e.to_string());
    }
    for (i, z) in config.zones.iter().enumerate() {
        match zone_summary(&config, i, z) {
            Ok(line) => lines.push(line),
            Err(errors) => {
                clean = false;
                lines.extend(errors);
            }
        }
    }
    if clean {
        println!("{}: OK", path.display());
    }
    for l in lines {
        println!("{l}");
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One configured zone for `config check`: a file is checked; the others are named.
fn zone_summary(config: &Config, i: usize, z: &ZoneConfig) -> Result<String, Vec<String>> {
    match &z.source {
        ZoneSource::File(path) => zone::check_configured_zone(config, i, path, &z.origin),
        ZoneSource::Primary(addr) => Ok(format!(
            "zone {}: secondary, transferred from {addr}",
            z.origin
        )),
        ZoneSource::Store => Ok(format!(
            "zone {}: kept in the store, managed through the admin API",
            z.origin
        )),
    }
}
