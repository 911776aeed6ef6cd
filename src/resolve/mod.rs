//! Resolution: from a dialled number to a routing [`Decision`].
//!
//! The one [`Router`] (in [`router`]) that SIP, `enroute route` and the admin API all
//! call. Files: [`decision`] (the decision, contacts, q-values, trace steps and the
//! tracer), [`router`] (the router: cache, upstream fetching, counting), `decide` (the
//! steps of one decision: number, suffix chain, conclusion), [`plan`] (the routing inputs
//! from the configuration), `local` (local-zone lookups and the one local-vs-upstream
//! rule), [`stats`] (counters), [`number`] (numbers and the dial plan), [`ddds`] (DDDS),
//! [`gateway`] (gateways), [`upstream`] (upstream DNS) and [`cache`] (the
//! cache of upstream answers).
//!
//! Must not touch: sockets, SIP messages, or zone storage.

pub mod aor;
pub mod cache;
pub mod ddds;
mod decide;
pub mod decision;
pub mod gateway;
mod local;
pub mod number;
pub mod plan;
pub mod router;
pub mod stats;
pub mod upstream;

pub use decision::{Contact, Decision, Q, Source, TraceStep, rank_contacts, reason_phrase};
pub use plan::RoutingPlan;
pub use router::Router;
pub use stats::{OUTCOMES, RouteStats, SuffixStats, UPSTREAM_RESULTS};
