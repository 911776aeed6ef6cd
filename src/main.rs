//! The `enroute` command line: the commands and their arguments (clap), which module
//! runs each, and the exit code of arguments clap refuses (2; help and version are 0).
//!
//! Each command group lives in its own file under `src/cli/` (see `cli/mod.rs`) with
//! its arguments, help texts, exit codes and prints; serving, routing, zones and the
//! admin API live in the library. A command returns its exit code; every command's
//! `--help` lists them: 0 done (a 302 for `route`), 1 refused or found wrong, 2 bad
//! arguments or configuration, 3 the server not reachable (admin-API commands). Must
//! not touch: what a command does or prints (its file), nor the library.

mod cli;

use clap::{Parser, Subcommand};
use cli::{config, entries, import, route, serve, setup, zone};
use std::path::PathBuf;
use std::process::ExitCode;

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
    #[command(long_about = serve::ABOUT, after_help = serve::EXIT)]
    Serve {
        #[arg(long, value_name = "FILE", help = setup::CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Print the routing decision for a number or Request-URI.
    #[command(long_about = route::ABOUT, after_help = route::EXIT)]
    Route(route::RouteArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Master-file tools: check, export, init.
    Zone {
        #[command(subcommand)]
        command: zone::ZoneCommand,
    },
    /// Numbers through the admin API of a running server: list, get, put, delete.
    Numbers {
        #[command(subcommand)]
        command: entries::NumberCommand,
    },
    /// Prefix (range) routes through the admin API: list, get, put, delete.
    Prefixes {
        #[command(subcommand)]
        command: entries::PrefixCommand,
    },
    /// Send a CSV or NDJSON file of numbers to the admin API in a stream (bulk import).
    #[command(long_about = import::ABOUT, after_help = import::EXIT)]
    Import(import::ImportArgs),
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
        Command::Serve { config } => serve::run(config.as_deref()),
        Command::Route(args) => route::run(&args),
        Command::Config { command } => config::run(command),
        Command::Zone { command } => zone::run(command),
        Command::Numbers { command } => entries::numbers(command),
        Command::Prefixes { command } => entries::prefixes(command),
        Command::Import(args) => import::run(&args),
    }
}
