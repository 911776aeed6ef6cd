//! The SIP redirect server (RFC 3261 UAS acting as a redirect server, SPEC §4).
//!
//! Submodules: [`message`] (framing and parsing).

pub mod message;
pub mod redirect;
pub mod transport;
