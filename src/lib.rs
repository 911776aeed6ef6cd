//! enroute: ENUM/DNS number translation and SIP redirect routing.
//!
//! Module map (each module's own doc says what it owns and must not touch):
//! - [`config`]: the TOML configuration, validated when loaded, one file per group of sections.
//! - [`zone`]: local zones: master files, the in-memory index, zone sets.
//! - [`name`]: domain names and labels (presentation and wire form), the bottom of the tree.
//! - [`naptr`]: NAPTR rdata, enumservices, RFC 3402 substitution expressions, and a
//!   route as the admin API writes it (to NAPTR rdata and back).
//! - [`uri`]: sip/sips/tel URI syntax, used by the configuration (gateway templates) and DDDS.
//! - [`net`]: sockets shared by the SIP and DNS listeners (the per-core UDP group).
//! - [`resolve`]: numbers and the dial plan, DDDS, gateways, and the one [`resolve::Router`].
//! - [`sip`]: the SIP redirect server.
//! - [`dns`]: the authoritative DNS listener, zone transfers, NOTIFY, secondary zones.
//! - [`store`]: the durable SQLite store, the zone data of record.
//! - [`registrar`]: REGISTER's users, digests, nonces and bindings (the location
//!   service), with their own SQLite file.
//! - [`keeper`]: keeps the served zones in step with the store (start-up, reload, admin).
//! - [`logging`]: log set-up (text or JSON) and rate limits for repeated errors.
//! - [`metrics`]: counters, histograms and the Prometheus `/metrics` text.
//! - [`admin`]: the admin HTTP API.
//! - [`server`]: the `serve` lifecycle.
//! - [`client`]: the command line's client for the admin API (`enroute numbers` …).

pub mod admin;
pub mod client;
pub mod config;
pub mod dns;
pub mod keeper;
pub mod logging;
pub mod metrics;
pub mod name;
pub mod naptr;
pub mod net;
pub mod registrar;
pub mod resolve;
pub mod server;
pub mod sip;
pub mod store;
pub mod uri;
pub mod zone;
