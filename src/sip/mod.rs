//! The SIP redirect server (RFC 3261 UAS acting as a redirect server, SPEC §4).
//!
//! Submodules, lowest first (each imports only those above it):
//! - [`stats`]: what is counted (requests, responses, drops, transactions held);
//! - [`message`]: framing and parsing;
//! - [`dialog`]: what a request's answers copy or derive from it (top Via, From, To,
//!   Call-ID, CSeq, the To-tag);
//! - [`transaction`]: INVITE and REGISTER server transactions: keys, waiting requests,
//!   and the one set per task with Timers G, H and J and the bound on all of them;
//! - [`response`]: every answer's bytes (a header all answers carry goes in its
//!   `finish`; one some carry, in a `write_*` function there);
//! - [`redirect`]: one request in, one outcome out (checks, status, routing);
//! - [`register`]: REGISTER as the registrar answers it (SPEC §11), beside `redirect`
//!   (whose handler it extends);
//! - [`transport`]: sockets, stream framing, TLS, and the tasks that send each outcome
//!   and keep their transactions.
//!
//! This file only names them.

pub mod dialog;
pub mod message;
pub mod redirect;
pub mod register;
pub mod response;
pub mod stats;
pub mod transaction;
pub mod transport;
