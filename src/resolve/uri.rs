//! URI syntax moved to [`crate::uri`] (below the configuration, which checks gateway
//! templates with it); this path re-exports it until `resolve/mod.rs` drops `pub mod uri`.
//!
//! Must not touch: anything; it holds no code.

pub use crate::uri::*;
