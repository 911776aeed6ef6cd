//! The SIP redirect server (RFC 3261 UAS acting as a redirect server, SPEC §4).
//!
//! Submodules, lowest first (each imports only those above it): [`stats`] (what is
//! counted), [`message`] (framing and parsing), [`redirect`] (one request in, one
//! answer out), [`transport`] (sockets, transactions). This file only names them.

pub mod dialog;
pub mod message;
pub mod redirect;
pub mod response;
pub mod stats;
pub mod transaction;
pub mod transport;
