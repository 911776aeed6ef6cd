//! The `enroute` command line: argument parsing, help texts, exit codes and output.
//! Serving, routing, zones and the admin API live in the library (`server` for `serve`,
//! `resolve` for `route`, `zone` and `keeper` for the zone tools, `client` for the
//! admin-API commands); this file holds only what is about the terminal: which checks
//! a command runs and the exit code; how answers read is `cli/output.rs`.

mod cli;

use clap::{Args, Parser, Subcommand};
use cli::output::{self, report};
use enroute::client::{self, Client, ClientError, Endpoint, Kind, ListQuery};
use enroute::config::{Config, ConfigError, ZoneSource};
use enroute::name::Name;
use enroute::resolve::Router;
use enroute::store::Store;
use enroute::zone::starter::{self, Starter};
use enroute::zone::{Zone, ZoneSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const DEFAULT_CONFIG: &str = "config/enroute.toml";

const CONFIG_HELP: &str =
    "Configuration file [default: config/enroute.toml when it exists, else built-in defaults]";

const SERVE_ABOUT: &str = "\
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

const SERVE_EXIT: &str = "\
Exit codes:
  0  stopped by SIGINT or SIGTERM
  1  a listener could not bind, or the store or the token file could not be opened
  2  bad configuration, or a zone file that does not load (FILE:LINE: message)";

const ROUTE_ABOUT: &str = "\
Prints the routing decision for a number or Request-URI, as the SIP answer would carry \
it (status, Contacts with q), and where it came from: the dial plan, every lookup \
(zone or upstream suffix, records, TTL), each record used or skipped, the gateway.

NUMBER is a number as dialled (+441632960001, 01632 960001: spaces, '-', '.', '(' and \
')' are visual separators) or a sip:, sips: or tel: URI. Local by default: the zones \
as served (the store's copy, or a newer file) and upstream ENUM over DNS. With --url, \
the running server decides instead (GET /v1/route/NUMBER on its admin API), with its \
cache and its store.";

const ROUTE_EXIT: &str = "\
Exit codes:
  0  the decision is a 302 (Contacts found)
  1  any other decision (404, 484, 416, 503 ...); with --url also a request the server
     refused (4xx, such as a wrong token)
  2  bad input (neither a number nor a URI) or a bad configuration
  3  with --url: the server is not reachable, timed out or answered 5xx";

const CLIENT_EXIT: &str = "\
Where the API is: --url, else ENROUTE_ADMIN_URL, else http://<admin.listen> from the \
configuration. The token: --token, else ENROUTE_ADMIN_TOKEN, else the content of \
admin.token_file from the configuration (only read, never written).

Exit codes:
  0  done
  1  the server refused, or the entry does not exist (HTTP 4xx: 404, 409, 422 ...); the
     problem's title, detail and each failing field are printed
  2  bad arguments or configuration (nothing was sent)
  3  the server is not reachable, timed out or answered 5xx";

const CONFIG_CHECK_EXIT: &str = "\
Prints `FILE: OK` and one line per zone (serial, records) when all is well. Writes \
nothing: no store, no token file.

Exit codes:
  0  the configuration and every file it names (zones, TLS certificate and key) are valid
  1  a zone file has errors (each printed as FILE:LINE: message), or a file it names \
cannot be read (CONFIG:LINE: KEY: message)
  2  the configuration is invalid (one line: FILE:LINE: KEY: message), or missing";

const ZONE_CHECK_EXIT: &str = "\
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

const ZONE_EXPORT_EXIT: &str = "\
Exit codes:
  0  the zone was printed
  1  no such zone in the configuration
  2  bad arguments, a bad configuration or a zone that does not load";

const ZONE_INIT_ABOUT: &str = "\
Writes a starting zone: $ORIGIN, $TTL, an SOA with sane timers (refresh 1 h, retry \
15 min, expire 1 week, negative TTL 5 min) and a serial that is today's date \
(YYYYMMDD01), and the NS records. It passes `enroute zone check` as it is; add numbers \
to the file, or name it in a [[zone]] of the configuration and add them through the \
admin API (`enroute numbers put`).";

const ZONE_INIT_EXIT: &str = "\
Exit codes:
  0  written
  2  bad arguments, or --output names a file that exists (it is never overwritten)";

#[derive(Parser)]
#[command(
    name = "enroute",
    version,
    about = "ENUM/DNS number translation and SIP redirect routing",
    after_help = "Each command's --help describes its arguments and lists its exit codes."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service until SIGINT/SIGTERM; SIGHUP reloads zone files and routing.
    #[command(long_about = SERVE_ABOUT, after_help = SERVE_EXIT)]
    Serve {
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Print the routing decision for a number or Request-URI.
    #[command(long_about = ROUTE_ABOUT, after_help = ROUTE_EXIT)]
    Route(RouteArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Master-file tools: check, export, init.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
    },
    /// Numbers through the admin API of a running server: list, get, put, delete.
    Numbers {
        #[command(subcommand)]
        command: NumberCommand,
    },
    /// Prefix (range) routes through the admin API: list, get, put, delete.
    Prefixes {
        #[command(subcommand)]
        command: PrefixCommand,
    },
}

#[derive(Args)]
struct RouteArgs {
    /// A number as dialled (spaces and -.() are separators) or a sip:, sips: or tel: URI.
    number: String,
    #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
    config: Option<PathBuf>,
    /// Print the decision as JSON (the admin API's shape).
    #[arg(long)]
    json: bool,
    /// Ask the running server at this admin API URL instead of deciding locally.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// With --url: the bearer token [default: ENROUTE_ADMIN_TOKEN, else the content of
    /// admin.token_file].
    #[arg(long, value_name = "TOKEN", requires = "url")]
    token: Option<String>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration and the zone files it names, without starting anything.
    #[command(after_help = CONFIG_CHECK_EXIT)]
    Check {
        #[arg(
            long,
            value_name = "FILE",
            help = "Configuration file [default: config/enroute.toml]"
        )]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// Validate a master file, or every zone file a configuration names.
    #[command(after_help = ZONE_CHECK_EXIT)]
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
    #[command(after_help = ZONE_EXPORT_EXIT)]
    Export {
        /// The zone's origin, e.g. 2.3.6.1.4.4.e164.arpa.
        origin: String,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Write a starting zone file (SOA and NS) for a number range.
    #[command(long_about = ZONE_INIT_ABOUT, after_help = ZONE_INIT_EXIT)]
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

/// Where the admin API is and how to speak to it (every admin-client command).
#[derive(Args)]
struct ApiArgs {
    /// Admin API URL [default: ENROUTE_ADMIN_URL, else http://<admin.listen> from the
    /// configuration].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Bearer token [default: ENROUTE_ADMIN_TOKEN, else the content of admin.token_file];
    /// prefer the variable: a flag shows in the process list.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Configuration to read admin.listen and admin.token_file from [default:
    /// config/enroute.toml when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One admin-client operation on numbers or prefixes, whichever command gave it.
enum EntryOp {
    List { query: ListQuery, all: bool },
    Get { e164: String },
    Put(PutArgs),
    Delete { e164: String },
}

struct PutArgs {
    e164: String,
    uris: Vec<String>,
    ttl: Option<u32>,
    body: Option<String>,
}

/// `numbers` and `prefixes` take the same operations; their help names what each works
/// on.
macro_rules! entry_commands {
    ($name:ident, $one:literal, $many:literal, $value:literal, $example:literal) => {
        #[derive(Subcommand)]
        enum $name {
            #[command(
                about = concat!("List ", $many, " with their routes, sorted, a page at a time"),
                after_help = CLIENT_EXIT
            )]
            List {
                #[arg(long, value_name = "PREFIX",
                      help = concat!("Only ", $many, " that start with this, e.g. +4416"))]
                prefix: Option<String>,
                #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000),
                      help = "Page size, 1 to 1000 [default: the server's, 100]")]
                limit: Option<u16>,
                #[arg(long, value_name = "CURSOR",
                      help = concat!("Start after this ", $one, " (the `next` a page ended with)"))]
                after: Option<String>,
                /// Follow `next` to the last page and print every entry.
                #[arg(long)]
                all: bool,
                #[command(flatten)]
                api: ApiArgs,
            },
            #[command(about = concat!("Show one ", $one, "'s routes"), after_help = CLIENT_EXIT)]
            Get {
                #[arg(value_name = $value, help = concat!("The ", $one, ", e.g. ", $example))]
                e164: String,
                #[command(flatten)]
                api: ApiArgs,
            },
            #[command(
                about = concat!("Set one ", $one, "'s routes (replacing any it had)"),
                after_help = CLIENT_EXIT
            )]
            Put {
                #[arg(value_name = $value, help = concat!("The ", $one, ", e.g. ", $example))]
                e164: String,
                /// A route's URI (sip:, sips: or tel:); repeat for more: order 100,
                /// preference 10, 20, 30 ... in the order given.
                #[arg(long = "uri", value_name = "URI",
                      required_unless_present = "body", conflicts_with = "body")]
                uris: Vec<String>,
                /// TTL of the records in seconds [default: the server's, 300].
                #[arg(long, value_name = "S", conflicts_with = "body")]
                ttl: Option<u32>,
                /// The whole JSON body from a file, or - for standard input (routes with
                /// pstn, rn, npdi, regexp, service ...).
                #[arg(long, value_name = "FILE|-")]
                body: Option<String>,
                #[command(flatten)]
                api: ApiArgs,
            },
            #[command(about = concat!("Remove one ", $one, " and its routes"), after_help = CLIENT_EXIT)]
            Delete {
                #[arg(value_name = $value, help = concat!("The ", $one, ", e.g. ", $example))]
                e164: String,
                #[command(flatten)]
                api: ApiArgs,
            },
        }

        impl $name {
            fn split(self) -> (EntryOp, ApiArgs) {
                match self {
                    $name::List { prefix, limit, after, all, api } => {
                        let query = ListQuery {
                            prefix: prefix.map(|p| clean_number(&p)),
                            limit,
                            after: after.map(|a| clean_number(&a)),
                        };
                        (EntryOp::List { query, all }, api)
                    }
                    $name::Get { e164, api } => (EntryOp::Get { e164 }, api),
                    $name::Put { e164, uris, ttl, body, api } => {
                        (EntryOp::Put(PutArgs { e164, uris, ttl, body }), api)
                    }
                    $name::Delete { e164, api } => (EntryOp::Delete { e164 }, api),
                }
            }
        }
    };
}

entry_commands!(NumberCommand, "number", "numbers", "E164", "+441632960001");
entry_commands!(
    PrefixCommand,
    "prefix",
    "prefixes",
    "E164PREFIX",
    "+4416329"
);

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
        Command::Route(args) => route(&args),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => config_check(config.as_deref()),
        Command::Zone { command } => zone(command),
        Command::Numbers { command } => {
            let (op, api) = command.split();
            entries(Kind::Numbers, op, &api)
        }
        Command::Prefixes { command } => {
            let (op, api) = command.split();
            entries(Kind::Prefixes, op, &api)
        }
    }
}

fn zone(command: ZoneCommand) -> ExitCode {
    match command {
        ZoneCommand::Check {
            config: Some(config),
            ..
        } => zone_check_config(&config),
        ZoneCommand::Check {
            file: Some(file),
            origin,
            ..
        } => zone_check(&file, origin.as_deref()),
        // clap requires a file or --config; this is the same usage error.
        ZoneCommand::Check { .. } => {
            eprintln!("enroute: zone check needs a FILE or --config FILE");
            ExitCode::from(2)
        }
        ZoneCommand::Export { origin, config } => zone_export(&origin, config.as_deref()),
        ZoneCommand::Init {
            origin,
            ns,
            serial,
            output,
        } => zone_init(&origin, &ns, serial, output.as_deref()),
    }
}

// ---------------------------------------------------------------------------------
// Configuration and logging.

/// Reads the configuration: the given file, else `config/enroute.toml` when present,
/// else the built-in defaults (SPEC §10.2).
fn read_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG)),
        None => Ok(Config::builtin()),
    }
}

/// As [`read_config`]; an error is printed as one line and carries exit code 2.
fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    read_config(path).map_err(|e| {
        eprintln!("enroute: config error: {e}");
        ExitCode::from(2)
    })
}

/// Logging for every command but `serve`: warnings and errors only, whatever
/// `log.level` says. The user asked for output, not for the server's log; the format
/// (text or JSON) is kept.
fn init_quiet_logging(config: &Config) {
    let mut quiet = config.clone();
    quiet.log.level = "warn".into();
    enroute::logging::init(&quiet);
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
    init_quiet_logging(&config);
    match load_zones(&config, None) {
        Ok(zones) => Ok((config, zones)),
        Err(e) => {
            eprintln!("enroute: zone load failed:\n{e}");
            Err(ExitCode::from(2))
        }
    }
}

// ---------------------------------------------------------------------------------
// route

fn route(args: &RouteArgs) -> ExitCode {
    if let Some(why) = route_input_problem(&args.number) {
        eprintln!("enroute: {why}");
        return ExitCode::from(2);
    }
    match &args.url {
        Some(url) => route_remote(args, url),
        None => route_local(&args.number, args.config.as_deref(), args.json),
    }
}

/// SPEC §10.22: bad input (exit 2) is input that is neither a URI nor a number at all;
/// anything else gets a decision, whatever its status (`sip:alice@x` is a 404, `12` a
/// 484, `mailto:a@b` a 416), as the same text in a Request-URI would. A number is `+`,
/// digits, `*` and `#`, once visual separators, spaces and `%`-escapes are read; so
/// `alice` or `+44abc` typed bare is bad input.
fn route_input_problem(input: &str) -> Option<String> {
    let t = input.trim();
    if t.is_empty() {
        return Some("route needs a number or a sip:, sips: or tel: URI".into());
    }
    if t.chars().any(char::is_control) {
        return Some(format!("{input:?} has control characters"));
    }
    if has_scheme(t) {
        return None;
    }
    let dialable = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'))
    };
    match enroute::resolve::number::extract(t) {
        Ok(d) if dialable(&d.text) => None,
        _ => Some(format!(
            "{input:?} is neither a number (+, digits and separators) nor a sip:, sips: or tel: URI"
        )),
    }
}

/// `scheme:` in front (letters only, as the router reads a Request-URI).
fn has_scheme(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic())
    })
}

fn route_local(number: &str, config: Option<&Path>, json: bool) -> ExitCode {
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
    // --json keeps the decision's own field order (a JSON value would sort the keys);
    // the text reads the decision as JSON, as it reads the server's.
    let printed = if json {
        serde_json::to_string_pretty(&decision).map(|s| println!("{s}"))
    } else {
        serde_json::to_value(&decision).map(|v| print!("{}", output::decision_text(&v)))
    };
    if let Err(e) = printed {
        eprintln!("enroute: {e}");
        return ExitCode::from(2);
    }
    decision_exit(u64::from(decision.status))
}

/// SPEC §10.22: 0 for a 302, 1 for any other decision.
fn decision_exit(status: u64) -> ExitCode {
    if status == 302 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `route --url`: the running server's decision, printed as a local one is.
fn route_remote(args: &RouteArgs, url: &str) -> ExitCode {
    let client = match connect(Some(url), args.token.as_deref(), args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return report(&e, None),
    };
    let answer = match client.route(&args.number) {
        Ok(a) => a,
        Err(e) => return report(&e, Some(client.endpoint())),
    };
    let decision = match answer.json() {
        Ok(v) => v,
        Err(e) => return report(&e, Some(client.endpoint())),
    };
    if args.json {
        println!("{}", output::pretty_json(&answer.body));
    } else {
        print!("{}", output::decision_text(&decision));
    }
    decision_exit(decision.get("status").and_then(|s| s.as_u64()).unwrap_or(0))
}

// ---------------------------------------------------------------------------------
// The admin-API client commands.

/// The client for `--url`/`--token`/`--config` (each falling back as `numbers --help`
/// says); the configuration is read only when the URL or the token is still missing.
fn connect(
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

/// A number or prefix as typed, without the visual separators a person may paste
/// (`+44 1632 960001`): the API takes `+` and digits.
fn clean_number(s: &str) -> String {
    enroute::resolve::number::without_separators(s)
}

fn entries(kind: Kind, op: EntryOp, api: &ApiArgs) -> ExitCode {
    let client = match connect(
        api.url.as_deref(),
        api.token.as_deref(),
        api.config.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => return report(&e, None),
    };
    let done = match op {
        EntryOp::List { query, all } => list(&client, kind, &query, all, api.json),
        EntryOp::Get { e164 } => get(&client, kind, &e164, api.json),
        EntryOp::Put(args) => put(&client, kind, &args, api.json),
        EntryOp::Delete { e164 } => delete(&client, kind, &e164),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, Some(client.endpoint())),
    }
}

/// The E164 argument, cleaned; blank is a usage error (the path would be a listing).
fn e164_arg(kind: Kind, text: &str) -> Result<String, ClientError> {
    let n = clean_number(text);
    if n.is_empty() {
        return Err(ClientError::Usage(format!("the {} is empty", kind.key())));
    }
    Ok(n)
}

fn get(client: &Client, kind: Kind, e164: &str, json: bool) -> Result<(), ClientError> {
    let answer = client.get(kind, &e164_arg(kind, e164)?)?;
    print_entry(kind, &answer, json)
}

fn put(client: &Client, kind: Kind, args: &PutArgs, json: bool) -> Result<(), ClientError> {
    let e164 = e164_arg(kind, &args.e164)?;
    let body = match &args.body {
        Some(source) => read_body_arg(source)?,
        None => client::routes_body(&args.uris, args.ttl)
            .to_string()
            .into_bytes(),
    };
    let answer = client.put(kind, &e164, &body)?;
    for w in output::warnings(&answer.json()?) {
        eprintln!("enroute: warning: {w}");
    }
    print_entry(kind, &answer, json)
}

/// `--body FILE` or `--body -` (standard input), at most as large as the server takes
/// by default.
fn read_body_arg(source: &str) -> Result<Vec<u8>, ClientError> {
    const LIMIT: u64 = 64 << 20;
    let mut body = Vec::new();
    let read = if source == "-" {
        std::io::stdin()
            .lock()
            .take(LIMIT + 1)
            .read_to_end(&mut body)
    } else {
        std::fs::File::open(source).and_then(|f| f.take(LIMIT + 1).read_to_end(&mut body))
    };
    let shown = if source == "-" {
        "standard input"
    } else {
        source
    };
    match read {
        Err(e) => Err(ClientError::Usage(format!("--body {shown}: {e}"))),
        Ok(n) if n as u64 > LIMIT => Err(ClientError::Usage(format!(
            "--body {shown}: larger than {LIMIT} bytes"
        ))),
        Ok(_) => Ok(body),
    }
}

fn print_entry(kind: Kind, answer: &client::Answer, json: bool) -> Result<(), ClientError> {
    if json {
        println!("{}", output::pretty_json(&answer.body));
        return Ok(());
    }
    let v = answer.json()?;
    print!("{}", output::entry_text(&v, kind.key()));
    println!("{}", output::entry_footer(&v));
    Ok(())
}

fn delete(client: &Client, kind: Kind, e164: &str) -> Result<(), ClientError> {
    let e164 = e164_arg(kind, e164)?;
    client.delete(kind, &e164)?;
    // --json prints nothing: the API answers 204 with no body; the exit code says it.
    Ok(())
}

fn list(
    client: &Client,
    kind: Kind,
    query: &ListQuery,
    all: bool,
    json: bool,
) -> Result<(), ClientError> {
    let (page, raw) = if all {
        (client.list_all(kind, query)?, None)
    } else {
        let answer = client.list(kind, query)?;
        (answer.json()?, Some(answer.body))
    };
    if json {
        match raw {
            Some(raw) => println!("{}", output::pretty_json(&raw)),
            None => println!(
                "{}",
                serde_json::to_string_pretty(&page).unwrap_or_default()
            ),
        }
        return Ok(());
    }
    let items = page.get("items").and_then(|i| i.as_array());
    for item in items.into_iter().flatten() {
        print!("{}", output::entry_text(item, kind.key()));
    }
    if items.is_none_or(|i| i.is_empty()) {
        eprintln!("enroute: no {}", kind_plural(kind));
    }
    if let Some(next) = page.get("next").and_then(|n| n.as_str()) {
        eprintln!(
            "enroute: more after {next}: enroute {} list --after {next} (or --all)",
            kind_plural(kind)
        );
    }
    Ok(())
}

fn kind_plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Numbers => "numbers",
        Kind::Prefixes => "prefixes",
    }
}

// ---------------------------------------------------------------------------------
// Zone and configuration checks.

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
fn check_configured_zone(
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
                counted(zone.stats.nodes, "name")
            ))
        }
        Err(e) => Err(e.diagnostics.iter().map(|d| d.to_string()).collect()),
    }
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

fn zone_check(file: &Path, origin: Option<&str>) -> ExitCode {
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
fn zone_check_config(config_path: &Path) -> ExitCode {
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

/// `config check`: the configuration, then every zone file it names; writes nothing
/// (no store, no token file).
fn config_check(path: Option<&Path>) -> ExitCode {
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
fn zone_summary(
    config: &Config,
    i: usize,
    z: &enroute::config::ZoneConfig,
) -> Result<String, Vec<String>> {
    match &z.source {
        ZoneSource::File(path) => check_configured_zone(config, i, path, &z.origin),
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

// ---------------------------------------------------------------------------------
// zone export, zone init

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

fn zone_init(origin: &str, ns: &[String], serial: Option<u32>, output: Option<&Path>) -> ExitCode {
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

// ---------------------------------------------------------------------------------
// serve

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
    let router = Arc::new(Router::new(&config, zone_set));
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
