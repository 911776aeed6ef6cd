//! Modules of the `enroute` binary (not the library: nothing but the binary calls them).
//!
//! - [`output`]: how answers read on the terminal: a routing decision, entries and
//!   routes, the API's JSON, client failures.

pub mod output;
