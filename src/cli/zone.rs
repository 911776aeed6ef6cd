//! `enroute zone check | export | init`: master files checked as `serve` loads them,
//! compared with the zone being served, printed from the served zone, or started.
//!
//! Owns: the commands' arguments, help texts, lines and exit codes; the check of one
//! zone file, which `enroute config check` uses too ([`check_configured_zone`]). Must
//! not touch: parsing (`enroute::zone`), the file-vs-store rule (`enroute::keeper`), or
//! the store (nothing here writes it).

use super::setup::{CONFIG_HELP, init_quiet_logging, load_all, load_config};
use enroute::config::{Config, ZoneSource};
use enroute::name::Name;
use enroute::zone::Zone;
use enroute::zone::starter::{self, Starter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const CHECK_EXIT: &str = "\
Prints `FILE: zone ORIGIN OK: serial, records` for a clean file, else each error as \
FILE:LINE: message. With --config, also one line per file comparing it with the zone \
being served from the store: the same, newer (replaces the stored zone on the next start \
or SIGHUP), not in the store yet, or ignored (it differs but its serial is not higher: \
raise the serial, or make the change through the admin API).

Exit codes:
  0  every file checked is clean (and, with --config, none is ignored)
  1  errors in a file (or it cannot be read), or with --config a file that differs from \
the served zone without a higher serial
  2  bad arguments (an unusable --origin, a bad configuration)";

const EXPORT_EXIT: &str = "\
Exit codes:
  0  the zone was printed
  1  no such zone in the configuration
  2  bad arguments, a bad configuration or a zone that does not load";

const INIT_ABOUT: &str = "\
Writes a starting zone: $ORIGIN, $TTL, an SOA with sane timers (refresh 1 h, retry \
15 min, expire 1 week, negative TTL 5 min) and a serial that is today's date \
(YYYYMMDD01), and the NS records. It passes `enroute zone check` as it is; add numbers \
to the file, or name it in a [[zone]] of the configuration and add them through the \
admin API (`enroute numbers put`).";

const INIT_EXIT: &str = "\
Exit codes:
  0  written
  2  bad arguments, or --output names a file that exists (it is never overwritten)";

#[derive(clap::Subcommand)]
pub enum ZoneCommand {
    /// Validate a master file, or every zone file a configuration names.
    #[command(after_help = CHECK_EXIT)]
    Check {
        /// The master file to check.
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        file: Option<PathBuf>,
        /// Zone origin [default: the file's first $ORIGIN, else its name without .zone].
        #[arg(long, value_name = "ORIGIN", conflicts_with = "config")]
        origin: Option<String>,
        /// Check every file zone this configuration names, with its configured origin,
        /// and compare each with the zone being served (read from the store; safe
        /// beside a running server).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a configured zone as a master file, as it is served.
    #[command(after_help = EXPORT_EXIT)]
    Export {
        /// The zone's origin, e.g. 2.3.6.1.4.4.e164.arpa.
        origin: String,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Write a starting zone file (SOA and NS) for a number range.
    #[command(long_about = INIT_ABOUT, after_help = INIT_EXIT)]
    Init {
        /// The zone's origin, e.g. 2.3.6.1.4.4.e164.arpa. for +441632.
        origin: String,
        /// A name server for the NS set (repeat for more; the first is the SOA's primary)
        /// [default: localhost., a placeholder to replace].
        #[arg(long = "ns", value_name = "NAME")]
        ns: Vec<String>,
        /// The SOA serial [default: today as YYYYMMDD01].
        #[arg(long, value_name = "N")]
        serial: Option<u32>,
        /// Write to this file instead of standard output; an existing file is never
        /// overwritten.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(command: ZoneCommand) -> ExitCode {
    match command {
        ZoneCommand::Check {
            config: Some(config),
            ..
        } => check_config(&config),
        ZoneCommand::Check {
            file: Some(file),
            origin,
            ..
        } => check(&file, origin.as_deref()),
        // clap requires a file or --config; this is the same usage error.
        ZoneCommand::Check { .. } => {
            eprintln!("enroute: zone check needs a FILE or --config FILE");
            ExitCode::from(2)
        }
        ZoneCommand::Export { origin, config } => export(&origin, config.as_deref()),
        ZoneCommand::Init {
            origin,
            ns,
            serial,
            output,
        } => init(&origin, &ns, serial, output.as_deref()),
    }
}

// ---------------------------------------------------------------------------------
// zone check

/// One zone file checked: its summary line when clean, else every error line
/// (`FILE:LINE: message`). Warnings go to standard error as they are found.
fn check_zone_file(file: &Path, origin: &Name) -> Result<String, Vec<String>> {
    let display = file.display().to_string();
    let text =
        std::fs::read(file).map_err(|e| vec![format!("{display}: cannot read zone file: {e}")])?;
    check_zone_text(&text, file, origin)
}

/// As [`check_zone_file`] for the `i`-th `[[zone]]` of `config`: an unreadable file is
/// named by the configuration's file, line and key (`e.toml:9: zone[0].file: …`).
pub fn check_configured_zone(
    config: &Config,
    i: usize,
    file: &Path,
    origin: &Name,
) -> Result<String, Vec<String>> {
    let text = enroute::keeper::read_zone_text(config, i, file).map_err(|e| vec![e.to_string()])?;
    check_zone_text(&text, file, origin)
}

/// Loads a zone file's text as `serve` would and says how it went.
fn check_zone_text(text: &[u8], file: &Path, origin: &Name) -> Result<String, Vec<String>> {
    let display = file.display().to_string();
    match Zone::from_master(text, &display, origin, file.parent()) {
        Ok((zone, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            Ok(format!(
                "{display}: zone {} OK: serial {}, {} ({} NAPTR), {}",
                zone.origin,
                zone.soa.serial,
                counted(zone.stats.records, "record"),
                zone.stats.naptr_records,
                counted(owner_names(&zone), "name")
            ))
        }
        Err(e) => Err(e.diagnostics.iter().map(|d| d.to_string()).collect()),
    }
}

/// Names that own records (empty non-terminals and derived prefix copies not counted).
fn owner_names(zone: &Zone) -> usize {
    let mut names = 0;
    zone.for_each_name(|_, _| names += 1);
    names
}

/// `1 record`, `2 records`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Prints a check's lines; true when it was clean.
fn print_check(result: Result<String, Vec<String>>) -> bool {
    match result {
        Ok(line) => {
            println!("{line}");
            true
        }
        Err(lines) => {
            for l in lines {
                println!("{l}");
            }
            false
        }
    }
}

fn check(file: &Path, origin: Option<&str>) -> ExitCode {
    if let Err(e) = std::fs::metadata(file) {
        println!("{}: cannot read zone file: {e}", file.display());
        return ExitCode::from(1);
    }
    let origin = match origin.map(str::to_string).or_else(|| guess_origin(file)) {
        Some(o) => o,
        None => {
            eprintln!(
                "enroute: {}: no --origin given, no $ORIGIN in the file and no origin in its name",
                file.display()
            );
            return ExitCode::from(2);
        }
    };
    let origin = match Name::from_text(&origin) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("enroute: --origin {origin:?}: {e}");
            return ExitCode::from(2);
        }
    };
    if print_check(check_zone_file(file, &origin)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `zone check --config F`: every file zone the configuration names, each with its
/// configured origin, printed as the single-file form prints it.
fn check_config(config_path: &Path) -> ExitCode {
    let config = match load_config(Some(config_path)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_quiet_logging(&config);
    let mut clean = true;
    let mut any = false;
    for (i, z) in config.zones.iter().enumerate() {
        if let ZoneSource::File(path) = &z.source {
            any = true;
            clean &= print_check(check_configured_zone(&config, i, path, &z.origin));
        }
    }
    if !any {
        eprintln!("enroute: {} names no zone files", config_path.display());
    }
    // Then whether each file is what is served (the store's copy wins unless the
    // file's serial is newer): an edit without a higher serial is silently ignored.
    match enroute::keeper::file_drift(&config) {
        Ok(drifts) => {
            for d in &drifts {
                if let Some(line) = drift_line(d) {
                    println!("{line}");
                }
                clean &= !d.verdict.is_problem();
            }
        }
        Err(e) => {
            println!("enroute: cannot compare with the store: {e}");
            clean = false;
        }
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What `zone check --config` says about a file beside the zone being served; `None`
/// for an unreadable or invalid file (its check already printed the errors).
fn drift_line(d: &enroute::keeper::FileDrift) -> Option<String> {
    use enroute::keeper::Drift;
    let (file, origin) = (d.file.display(), &d.origin);
    let serial = |s: Option<u32>| s.map_or("?".to_string(), |s| s.to_string());
    let (ours, served) = (serial(d.file_serial), serial(d.served_serial));
    Some(match d.verdict {
        Drift::Same => format!(
            "{file}: zone {origin}: the file is what was last loaded (serving serial \
             {served}; changes made through the API since then are kept)"
        ),
        Drift::FileNewer => format!(
            "{file}: zone {origin}: serial {ours} is newer than served {served}: replaces the \
             stored zone on the next start or SIGHUP (changes made through the API are lost)"
        ),
        Drift::Ignored => format!(
            "{file}: zone {origin}: differs from the zone being served, but serial {ours} is \
             not higher than {served}: ignored. Raise the serial above {served} and send \
             SIGHUP, or make the change through the admin API"
        ),
        Drift::NotInStore => format!(
            "{file}: zone {origin}: not in the store yet: loaded on the next start or SIGHUP"
        ),
        Drift::Unreadable(_) | Drift::Invalid(_) => return None,
    })
}

/// The first `$ORIGIN` before any record, else the file name without `.zone`.
fn guess_origin(file: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read(file) {
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
    }
    let name = file.file_name()?.to_str()?;
    let stem = name.strip_suffix(".zone").unwrap_or(name);
    (stem != name && !stem.is_empty()).then(|| stem.to_string())
}

// ---------------------------------------------------------------------------------
// zone export, zone init

fn export(origin: &str, config: Option<&Path>) -> ExitCode {
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

fn init(origin: &str, ns: &[String], serial: Option<u32>, output: Option<&Path>) -> ExitCode {
    match starting_zone(origin, ns, serial) {
        Ok((starter, text)) => match output {
            None => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Some(file) => write_new_zone(file, &starter, &text),
        },
        Err(why) => {
            eprintln!("enroute: {why}");
            ExitCode::from(2)
        }
    }
}

/// The starting zone's text, checked to load as any zone file does.
fn starting_zone(
    origin: &str,
    ns: &[String],
    serial: Option<u32>,
) -> Result<(Starter, String), String> {
    let name =
        |what: &str, text: &str| Name::from_text(text).map_err(|e| format!("{what} {text:?}: {e}"));
    let origin = name("origin", origin)?;
    if origin.label_count() == 0 {
        return Err("origin: the root zone is not a number range".into());
    }
    let name_servers = ns
        .iter()
        .map(|n| name("--ns", n))
        .collect::<Result<Vec<_>, _>>()?;
    let starter = Starter {
        origin,
        name_servers,
        serial: serial.unwrap_or_else(starter::date_serial_now),
    };
    let text = starter.to_master();
    // What init writes must pass `zone check`; a name that cannot be written back
    // (it should not happen) is refused rather than written.
    Zone::from_master(text.as_bytes(), "zone init", &starter.origin, None)
        .map_err(|e| format!("the starting zone does not load:\n{e}"))?;
    Ok((starter, text))
}

/// Writes a new file; an existing one is refused (exit 2), never overwritten.
fn write_new_zone(file: &Path, starter: &Starter, text: &str) -> ExitCode {
    use std::io::Write;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file);
    let written =
        created.and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    match written {
        Ok(()) => {
            eprintln!(
                "enroute: wrote {} (zone {}, serial {}); serve it with\n  [[zone]]\n  origin = \"{}\"\n  file = \"{}\"   # relative to the configuration file",
                file.display(),
                starter.origin,
                starter.serial,
                starter.origin,
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "enroute: {} exists; zone init never overwrites a file (remove it or choose another --output)",
                file.display()
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("enroute: --output {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}
