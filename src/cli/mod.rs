//! The `enroute` commands, one command group a file; `main.rs` parses the arguments
//! and hands each command to its file's `run`.
//!
//! - [`serve`]: `enroute serve`, the service until a signal.
//! - [`route`]: `enroute route`, a decision made here or asked of a running server.
//! - [`config`]: `enroute config check`.
//! - [`zone`]: `enroute zone check | export | init`.
//! - [`entries`]: `enroute numbers | prefixes list | get | put | delete`, through the
//!   admin API ([`enroute::client`]).
//! - [`import`]: `enroute import FILE`, a CSV or NDJSON file streamed to the admin API's
//!   bulk import, with progress.
//! - [`setup`]: what the commands start from: the configuration file (or the built-in
//!   defaults), quiet logging, the zones as served, the admin-API client.
//! - [`output`]: how answers read on the terminal: a routing decision (one renderer for
//!   local and remote decisions), entries and routes, the API's JSON, client failures.
//!
//! These are modules of the binary, not the library: nothing but the binary calls them
//! (the integration tests run the binary). Each command file owns its clap arguments,
//! its help texts and exit codes, and the checks and prints of its command; serving,
//! routing, zones, the store and HTTP stay in the library. Must not touch: the library's
//! internals beyond its public API, nor another command's file (shared pieces go to
//! `setup` or `output`).

pub mod config;
pub mod entries;
pub mod import;
pub mod output;
pub mod route;
pub mod serve;
pub mod setup;
pub mod zone;
