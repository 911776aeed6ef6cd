//! `enroute numbers | prefixes list | get | put | delete`: entries and their routes
//! through the admin API of a running server.
//!
//! Owns: the commands' arguments (one macro for both collections, whose help names
//! what each works on), their help text and exit codes, the cleaning of a typed number,
//! `--body` input, and what each operation prints. Must not touch: HTTP, the endpoint
//! or the problem format (`enroute::client`), nor the store (it only speaks to a server).

use super::output::{self, report};
use super::setup::connect;
use clap::{Args, Subcommand};
use enroute::client::{self, Client, ClientError, Kind, ListQuery};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT: &str = "\
Where the API is: --url, else ENROUTE_ADMIN_URL, else http://<admin.listen> from the \
configuration. The token: --token, else ENROUTE_ADMIN_TOKEN, else the content of \
admin.token_file from the configuration (only read, never written).

Exit codes:
  0  done
  1  the server refused, or the entry does not exist (HTTP 4xx: 404, 409, 422 ...); the
     problem's title, detail and each failing field are printed
  2  bad arguments or configuration (nothing was sent)
  3  the server is not reachable, timed out or answered 5xx";

/// Where the admin API is and how to speak to it (every admin-client command).
#[derive(Args)]
pub struct ApiArgs {
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
        pub enum $name {
            #[command(
                about = concat!("List ", $many, " with their routes, sorted, a page at a time"),
                after_help = EXIT
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
            #[command(about = concat!("Show one ", $one, "'s routes"), after_help = EXIT)]
            Get {
                #[arg(value_name = $value, help = concat!("The ", $one, ", e.g. ", $example))]
                e164: String,
                #[command(flatten)]
                api: ApiArgs,
            },
            #[command(
                about = concat!("Set one ", $one, "'s routes (replacing any it had)"),
                after_help = EXIT
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
            #[command(about = concat!("Remove one ", $one, " and its routes"), after_help = EXIT)]
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

/// A number or prefix as typed, without the visual separators a person may paste
/// (`+44 1632 960001`): the API takes `+` and digits.
fn clean_number(s: &str) -> String {
    enroute::resolve::number::without_separators(s)
}

/// `enroute numbers …`.
pub fn numbers(command: NumberCommand) -> ExitCode {
    let (op, api) = command.split();
    run(Kind::Numbers, op, &api)
}

/// `enroute prefixes …`.
pub fn prefixes(command: PrefixCommand) -> ExitCode {
    let (op, api) = command.split();
    run(Kind::Prefixes, op, &api)
}

/// One operation against the API: connect, send, print; a failure is reported with
/// its exit code.
fn run(kind: Kind, op: EntryOp, api: &ApiArgs) -> ExitCode {
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
