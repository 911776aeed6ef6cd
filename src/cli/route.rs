//! `enroute route`: the routing decision for a number or Request-URI, made here (the
//! zones as served, upstream ENUM over DNS) or, with `--url`, by the running server.
//!
//! Owns: the command's arguments and help, what counts as bad input (exit 2), and the
//! exit code of a decision (0 for a 302, else 1). Both paths print a decision as JSON
//! through [`output::decision_text`], so the local and the remote text are the same by
//! construction. Must not touch: routing itself (`enroute::resolve`) or HTTP
//! (`enroute::client`).

use super::output::{self, report};
use super::setup::{CONFIG_HELP, connect, load_all};
use enroute::resolve::Router;
use enroute::zone::ZoneSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub const ABOUT: &str = "\
Prints the routing decision for a number or Request-URI, as the SIP answer would carry \
it (status, Contacts with q), and where it came from: the dial plan, every lookup \
(zone or upstream suffix, records, TTL), each record used or skipped, the gateway.

NUMBER is a number as dialled (+441632960001, 01632 960001: spaces, '-', '.', '(' and \
')' are visual separators) or a sip:, sips: or tel: URI. Local by default: the zones \
as served (the store's copy, or a newer file) and upstream ENUM over DNS. With --url, \
the running server decides instead (GET /v1/route/NUMBER on its admin API), with its \
cache and its store.";

pub const EXIT: &str = "\
Exit codes:
  0  the decision is a 302 (Contacts found)
  1  any other decision (404, 484, 416, 503 ...); with --url also a request the server
     refused (4xx, such as a wrong token)
  2  bad input (neither a number nor a URI) or a bad configuration
  3  with --url: the server is not reachable, timed out or answered 5xx";

#[derive(clap::Args)]
pub struct RouteArgs {
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

pub fn run(args: &RouteArgs) -> ExitCode {
    if let Some(why) = input_problem(&args.number) {
        eprintln!("enroute: {why}");
        return ExitCode::from(2);
    }
    match &args.url {
        Some(url) => remote(args, url),
        None => local(&args.number, args.config.as_deref(), args.json),
    }
}

/// SPEC §10.22: bad input (exit 2) is input that is neither a URI nor a number at all;
/// anything else gets a decision, whatever its status (`sip:alice@x` is a 404, `12` a
/// 484, `mailto:a@b` a 416), as the same text in a Request-URI would. A number is `+`,
/// digits, `*` and `#`, once visual separators, spaces and `%`-escapes are read; so
/// `alice` or `+44abc` typed bare is bad input.
fn input_problem(input: &str) -> Option<String> {
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

/// The decision made here: the zones as served and upstream ENUM, traced.
fn local(number: &str, config: Option<&Path>, json: bool) -> ExitCode {
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
        let mut router = Router::new(&config, Arc::new(ZoneSet::new(zones)));
        if config.registrar.enabled {
            // The bindings a running server has committed (read-only).
            let path = enroute::registrar::writer::path_beside(&config.store);
            let now = enroute::registrar::unix_now();
            match enroute::registrar::writer::read_location(&path, now) {
                Ok(location) => {
                    let domains = config.registrar.domains.clone();
                    router = router.with_registrar(Arc::new(location), domains);
                }
                Err(e) => eprintln!("enroute: registrations not read: {e}"),
            }
        }
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
fn remote(args: &RouteArgs, url: &str) -> ExitCode {
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
