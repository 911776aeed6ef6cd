//! The registrar and location service (RFC 3261 §10, §22; RFC 7616, RFC 8760): who
//! may register (users and their HA1s), digest verification with nonces that cannot be
//! forged or replayed, the throttling of sources that fail too often, and the bindings
//! the redirect server routes to first.
//!
//! Files, one concern each:
//! - [`digest`]: HA1s, `Authorization` parameters, responses, nonces;
//! - [`replay`]: the `nc` values each nonce used;
//! - [`throttle`]: failures per source per minute;
//! - [`page`]: the first keys after a cursor, for the admin lists;
//! - [`users`]: who may register (HA1s per algorithm);
//! - [`location`]: the bindings in memory and RFC 3261 §10.3's rules for changing them;
//! - [`writer`]: the SQLite file and the one thread that commits changes (grouped) and
//!   then applies them in memory.
//!
//! This file holds [`Registrar`], what the SIP side, the router and the admin API share.
//!
//! Sits below `resolve`, `sip` and `admin` (they call it) and imports none of them: it
//! takes canonical AORs (`user@domain`, numbers as `+E.164`), which the caller makes
//! with `resolve::aor`.

pub mod digest;
pub mod location;
pub mod page;
pub mod replay;
pub mod throttle;
pub mod users;
pub mod writer;

use crate::config::{DigestAlgorithm, RegistrarConfig};
use crate::metrics::{Counters, Family};
use digest::{Credentials, Hex, NonceCheck, Nonces};
pub use location::{Binding, ContactRequest, Contacts, Location, Refused, Update};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;
use users::slot;
pub use users::{User, Users};
use writer::Job;

/// What a REGISTER's credentials are worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid for the AOR: go on.
    Authorized,
    /// No usable credentials (or a stale nonce): 401 with fresh challenges.
    Challenge { stale: bool },
    /// Wrong credentials, an unknown user, or a replayed count: 401, counted against the
    /// source.
    Failed,
    /// The source failed too often this minute: 403.
    Throttled,
    /// The header cannot be read: 400 with this reason phrase.
    Malformed(&'static str),
}

/// `enroute_registrar_requests_total{result}`'s labels.
pub const RESULTS: [&str; 8] = [
    "ok",
    "challenged",
    "auth_failed",
    "too_brief",
    "throttled",
    "not_found",
    "bad_request",
    "error",
];

/// A REGISTER's result, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Challenged,
    AuthFailed,
    TooBrief,
    Throttled,
    NotFound,
    BadRequest,
    /// The store failed or the writer's queue was full.
    Error,
}

/// The registrar every SIP task, the router and the admin API share.
pub struct Registrar {
    pub config: RegistrarConfig,
    pub location: Arc<Location>,
    pub users: Arc<Users>,
    pub nonces: Nonces,
    replay: replay::Replay,
    throttle: throttle::Throttle,
    /// The writer's queue (`None` once shutting down).
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    results: Counters<8>,
    /// Stand-in HA1s (one per algorithm, in [`DigestAlgorithm::ALL`]'s order) for users
    /// that do not exist, so that their check costs what a wrong password's does.
    decoy: [Hex; 2],
}

/// A 64-bit key of an AOR, to tell its uses of one nonce from another AOR's.
fn key_of(aor: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0xa0c).hash_one(aor)
}

/// The digest username of a canonical AOR: its user part (`alice`, `+441632960123`).
/// HA1s are made over it and REGISTERs must give it.
pub fn username_of(aor: &str) -> &str {
    aor.rsplit_once('@').map_or(aor, |(user, _)| user)
}

/// Unix time now, in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Registrar {
    /// Opens the registrar's file at `path` (creating it), loads users and live
    /// bindings, and starts the writer thread.
    pub fn open(config: RegistrarConfig, path: &Path) -> Result<Arc<Registrar>, writer::OpenError> {
        let users = Arc::new(Users::default());
        let location = Arc::new(Location::default());
        let conn = writer::open(path, &users, &location, unix_now())?;
        let (tx, rx) = std::sync::mpsc::sync_channel(writer::QUEUE);
        let thread = {
            let (users, location) = (users.clone(), location.clone());
            let (max, file) = (config.max_bindings, path.to_path_buf());
            std::thread::Builder::new()
                .name("enroute-registrar".into())
                .spawn(move || writer::run(conn, rx, users, location, max, file))
                .map_err(|source| writer::OpenError::Io {
                    path: path.to_path_buf(),
                    source,
                })?
        };
        let mut decoy_key = [0u8; 16];
        getrandom::fill(&mut decoy_key).expect("the system's random source");
        let decoy = format!("{decoy_key:?}");
        Ok(Arc::new(Registrar {
            nonces: Nonces::new(config.nonce_ttl_s),
            replay: replay::Replay::new(config.nonce_ttl_s),
            throttle: throttle::Throttle::new(config.max_auth_failures),
            decoy: DigestAlgorithm::ALL.map(|alg| digest::ha1(alg, "", "", &decoy)),
            config,
            location,
            users,
            jobs: Some(tx),
            thread: Some(thread),
            results: Counters::default(),
        }))
    }

    /// Counts a REGISTER's result.
    pub fn count(&self, outcome: Outcome) {
        self.results.inc(outcome as usize);
    }

    /// Judges a REGISTER's `Authorization` values for the canonical AOR `aor`, from
    /// `source`, at `now` (see [`Verdict`]). The digest username must be the AOR's user
    /// part ([`username_of`]). The answer never tells an unknown user from a wrong
    /// password.
    pub fn authenticate<'a>(
        &self,
        source: IpAddr,
        aor: &str,
        method: &str,
        authorizations: impl Iterator<Item = &'a str>,
        now: u64,
    ) -> Verdict {
        let user = username_of(aor);
        if self.throttle.throttled(source, now) {
            return Verdict::Throttled;
        }
        let mut found = None;
        for value in authorizations {
            match Credentials::parse(value) {
                Ok(c) if c.realm == self.config.realm => {
                    found = Some(c);
                    break;
                }
                Ok(_) | Err(digest::CredentialsError::NotDigest) => {}
                Err(e) => return Verdict::Malformed(e.reason()),
            }
        }
        let Some(c) = found else {
            return Verdict::Challenge { stale: false };
        };
        let Some(alg) = c.algorithm().filter(|a| self.config.algorithms.contains(a)) else {
            return Verdict::Challenge { stale: false };
        };
        if !c.qop.eq_ignore_ascii_case("auth") || c.cnonce.is_empty() {
            return Verdict::Malformed("Digest needs qop=auth with a cnonce");
        }
        let Some(nc) = c.nonce_count() else {
            return Verdict::Malformed("Malformed nc in Authorization header");
        };
        let stored = self
            .users
            .get(aor)
            .filter(|u| *u.realm == *self.config.realm);
        let ha1 = stored.as_ref().and_then(|u| u.ha1(alg));
        let matches = match ha1 {
            Some(ha1) => c.response_matches(alg, ha1, method),
            None => {
                // The same work for a user that does not exist.
                let _ = c.response_matches(alg, &self.decoy[slot(alg)], method);
                false
            }
        };
        if !matches || c.username != user {
            self.throttle.failed(source, now);
            return Verdict::Failed;
        }
        match self.nonces.check(c.nonce, now) {
            NonceCheck::Foreign | NonceCheck::Stale => Verdict::Challenge { stale: true },
            NonceCheck::Fresh { id, made } => {
                match self.replay.accept(id ^ key_of(aor), made, nc, now) {
                    replay::Use::New => Verdict::Authorized,
                    replay::Use::Forgotten => Verdict::Challenge { stale: true },
                    // Refused, but not held against the source: the response was
                    // right, and a retransmission whose first answer was not held (a
                    // server past its share of transactions) looks the same. Counting
                    // those would lock out everyone behind the address under load.
                    replay::Use::Replayed => Verdict::Failed,
                }
            }
        }
    }

    /// Hands `job` to the writer; `false` when its queue is full or it stopped.
    fn submit(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.try_send(job).is_ok())
    }

    /// Queues a REGISTER's update; the receiver gets the AOR's bindings once they are
    /// on disk and served. [`Refused::Busy`]: the writer's queue is full (answer 503).
    pub fn register(
        &self,
        update: Update,
    ) -> Result<oneshot::Receiver<Result<Vec<Binding>, Refused>>, Refused> {
        let (tx, rx) = oneshot::channel();
        if self.submit(Job::Register(update, tx)) {
            Ok(rx)
        } else {
            Err(Refused::Busy)
        }
    }

    /// Hands the job `make` builds to the writer and waits for its answer (an admin
    /// change, committed before this returns).
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Refused>>) -> Job,
    ) -> Result<T, Refused> {
        let (tx, rx) = oneshot::channel();
        if !self.submit(make(tx)) {
            return Err(Refused::Busy);
        }
        rx.await.unwrap_or(Err(Refused::Store))
    }

    /// Removes every binding of `aor`; how many were live.
    pub async fn unregister(&self, aor: &str) -> Result<usize, Refused> {
        self.ask(|tx| Job::Unregister(aor.to_string(), tx)).await
    }

    /// Creates or replaces a user; whether it existed.
    pub async fn put_user(&self, aor: &str, user: User) -> Result<bool, Refused> {
        self.ask(|tx| Job::PutUser(aor.to_string(), user, tx)).await
    }

    /// Deletes a user and its bindings; whether it existed.
    pub async fn delete_user(&self, aor: &str) -> Result<bool, Refused> {
        self.ask(|tx| Job::DeleteUser(aor.to_string(), tx)).await
    }

    /// Drops bindings expired by `now` from memory and disk (every few seconds).
    pub fn sweep(&self, now: u64) {
        if self.location.any_expired(now) {
            self.submit(Job::Sweep(now));
        }
    }
}

impl Drop for Registrar {
    /// Stops the writer after the jobs already queued.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl crate::metrics::Source for Registrar {
    fn families(&self, out: &mut Vec<Family>) {
        out.push(
            Family::counter(
                "enroute_registrar_requests_total",
                "REGISTER requests answered, by result.",
                &["result"],
            )
            .per_label(&self.results, &RESULTS, |i| i < 2),
        );
        out.push(
            Family::gauge(
                "enroute_registrar_bindings",
                "Bindings held (contacts of registered AORs).",
                &[],
            )
            .with(&[], self.location.bindings() as f64),
        );
        out.push(
            Family::gauge(
                "enroute_registrar_aors",
                "AORs with at least one binding.",
                &[],
            )
            .with(&[], self.location.aors() as f64),
        );
        out.push(
            Family::gauge("enroute_registrar_users", "Users allowed to register.", &[])
                .with(&[], self.users.len() as f64),
        );
    }
}
