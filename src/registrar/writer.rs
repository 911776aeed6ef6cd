//! The registrar's durable half: its SQLite file (users with their HA1s, bindings) and
//! the one writer thread that changes it and then the in-memory [`Location`] and
//! [`Users`], in that order, so that a 200 to a REGISTER and a 2xx from the admin API
//! always mean "on disk and already served".
//!
//! Group commit: the thread takes every job waiting (up to [`BATCH`]) into one
//! transaction and one fsync, so REGISTERs arriving together share the disk's latency.
//! Jobs of one batch see each other's effects in order (an overlay of the AORs and
//! users they touched), as if committed one by one; a commit that fails fails every
//! job of its batch (500), and nothing of it is applied.
//!
//! A file of its own beside the zone store (`enroute-registrar.db` next to
//! `enroute.db`): a bulk number import holds the zone store's write lock for seconds to
//! minutes, and registrations must not wait behind it.
//!
//! Must not touch: SIP messages, digests, routing.

use super::location::{Binding, Location, Refused, Update, apply};
use super::users::{User, Users};
use crate::config::DigestAlgorithm;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most jobs committed together.
const BATCH: usize = 1024;
/// Jobs waiting at most; more are refused (503) rather than queued without bound.
pub const QUEUE: usize = 65_536;

/// The registrar file's tables (`scripts/peers/gen-registrar.py` reads this constant
/// from here to write benchmark files: keep it one string literal).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    aor TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    ha1_sha256 TEXT,
    ha1_md5 TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bindings (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    q INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,   -- unix seconds
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bindings_by_expiry ON bindings (expires_at);";

/// Why the registrar's file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("registrar store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("registrar store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The registrar's file beside the zone store `store` (`data/enroute.db` →
/// `data/enroute-registrar.db`).
pub fn path_beside(store: &Path) -> PathBuf {
    let stem = store
        .file_stem()
        .map_or_else(|| "enroute".into(), |s| s.to_string_lossy().into_owned());
    store.with_file_name(format!("{stem}-registrar.db"))
}

/// One change for the writer.
pub enum Job {
    /// A REGISTER's update; answered with the AOR's bindings after it.
    Register(Update, oneshot::Sender<Result<Vec<Binding>, Refused>>),
    /// Removes every binding of an AOR (admin); answered with how many went.
    Unregister(String, oneshot::Sender<Result<usize, Refused>>),
    /// Creates or replaces a user (admin); answered whether it existed.
    PutUser(String, User, oneshot::Sender<Result<bool, Refused>>),
    /// Deletes a user and its bindings (admin); answered whether it existed.
    DeleteUser(String, oneshot::Sender<Result<bool, Refused>>),
    /// Drops the bindings expired by this time (unix seconds).
    Sweep(u64),
}

/// The answer a job gets once its batch is committed (or failed).
enum Reply {
    Register(
        oneshot::Sender<Result<Vec<Binding>, Refused>>,
        Result<Vec<Binding>, Refused>,
    ),
    Unregister(oneshot::Sender<Result<usize, Refused>>, usize),
    User(oneshot::Sender<Result<bool, Refused>>, bool),
    None,
}

impl Reply {
    fn send(self, committed: bool) {
        let fail = Err(Refused::Store);
        match self {
            Reply::Register(tx, r) => {
                let _ = tx.send(if committed { r } else { fail });
            }
            Reply::Unregister(tx, n) => {
                let _ = tx.send(if committed {
                    Ok(n)
                } else {
                    Err(Refused::Store)
                });
            }
            Reply::User(tx, existed) => {
                let _ = tx.send(if committed {
                    Ok(existed)
                } else {
                    Err(Refused::Store)
                });
            }
            Reply::None => {}
        }
    }
}

/// Opens (creating) the file and reads it back: users, and bindings not yet expired at
/// `now` into `location`. Returns the connection the writer will own.
pub fn open(
    path: &Path,
    users: &Users,
    location: &Location,
    now: u64,
) -> Result<Connection, OpenError> {
    let sql = |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(sql)?;
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    {
        let mut stmt = conn
            .prepare("SELECT aor, realm, ha1_sha256, ha1_md5 FROM users")
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        let mut map = HashMap::new();
        while let Some(r) = rows.next().map_err(sql)? {
            let aor: String = r.get(0).map_err(sql)?;
            let realm: String = r.get(1).map_err(sql)?;
            let sha: Option<String> = r.get(2).map_err(sql)?;
            let md5: Option<String> = r.get(3).map_err(sql)?;
            let user = User::from_hex(&realm, sha.as_deref(), md5.as_deref());
            map.insert(aor.into_boxed_str(), Arc::new(user));
        }
        users.replace_all(map);
    }
    read_bindings(&conn, location, now).map_err(sql)?;
    Ok(conn)
}

/// Every binding not expired at `now` into `location`.
fn read_bindings(conn: &Connection, location: &Location, now: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT aor, contact, q, expires_at, call_id, cseq, updated_ms FROM bindings
         WHERE expires_at > ?1 ORDER BY aor",
    )?;
    let mut rows = stmt.query([now as i64])?;
    let mut current: Option<(String, Vec<Binding>)> = None;
    while let Some(r) = rows.next()? {
        let aor: String = r.get(0)?;
        let b = Binding {
            contact: r.get::<_, String>(1)?.into(),
            q: r.get::<_, i64>(2)?.clamp(0, 1000) as u16,
            expires_at: r.get::<_, i64>(3)?.max(0) as u64,
            call_id: r.get::<_, String>(4)?.into(),
            cseq: r.get::<_, i64>(5)?.clamp(0, u32::MAX as i64) as u32,
            updated_ms: r.get::<_, i64>(6)?.max(0) as u64,
        };
        match &mut current {
            Some((a, list)) if *a == aor => list.push(b),
            _ => {
                if let Some((a, list)) = current.take() {
                    location.set(&a, list);
                }
                current = Some((aor, vec![b]));
            }
        }
    }
    if let Some((a, list)) = current {
        location.set(&a, list);
    }
    Ok(())
}

/// The live bindings in the file at `path`, read without writing anything (the CLI's
/// `enroute route` beside a running server); empty when the file does not exist.
pub fn read_location(path: &Path, now: u64) -> Result<Location, OpenError> {
    let location = Location::default();
    if !path.exists() {
        return Ok(location);
    }
    let sql = |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql)?;
    read_bindings(&conn, &location, now).map_err(sql)?;
    Ok(location)
}

/// The writer thread's loop: runs until every sender is dropped.
pub fn run(
    mut conn: Connection,
    jobs: std::sync::mpsc::Receiver<Job>,
    users: Arc<Users>,
    location: Arc<Location>,
    max_bindings: usize,
    path: PathBuf,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut effects = Effects::default();
        let state = (&*location, &*users);
        let done = write_batch(&mut conn, batch, state, max_bindings, &mut effects);
        let committed = match done {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(store = %path.display(), error = %e, "registrar: commit failed; the batch's REGISTERs get 500");
                false
            }
        };
        if committed {
            for (aor, list) in effects.bindings {
                location.set(&aor, list);
            }
            for (aor, user) in effects.users {
                users.set(&aor, user);
            }
        }
        for r in effects.replies {
            r.send(committed);
        }
    }
}

/// What a batch changes once committed, and its answers.
#[derive(Default)]
struct Effects {
    /// Each AOR touched, with its bindings after the batch (empty: none left).
    bindings: HashMap<String, Vec<Binding>>,
    /// Each user touched (`None`: deleted).
    users: Vec<(String, Option<Arc<User>>)>,
    replies: Vec<Reply>,
}

fn now_s_ms() -> (u64, u64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.as_millis() as u64)
}

fn write_batch(
    conn: &mut Connection,
    batch: Vec<Job>,
    (location, users): (&Location, &Users),
    max_bindings: usize,
    fx: &mut Effects,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (now, now_ms) = now_s_ms();
    for job in batch {
        match job {
            Job::Register(u, reply) => {
                let result = if has_user(fx, users, &u.aor) {
                    let current = current(fx, location, &u.aor);
                    apply(&current, &u, now, now_ms, max_bindings)
                } else {
                    // Deleted since the REGISTER was authenticated.
                    Err(Refused::NoUser)
                };
                if let Ok(next) = &result {
                    write_aor(&tx, &u.aor, next)?;
                    fx.bindings.insert(u.aor.clone(), next.clone());
                }
                fx.replies.push(Reply::Register(reply, result));
            }
            Job::Unregister(aor, reply) => {
                let n = current(fx, location, &aor)
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .count();
                write_aor(&tx, &aor, &[])?;
                fx.bindings.insert(aor, Vec::new());
                fx.replies.push(Reply::Unregister(reply, n));
            }
            Job::PutUser(aor, user, reply) => {
                let existed = tx
                    .query_row("SELECT 1 FROM users WHERE aor = ?1", [&aor], |_| Ok(()))
                    .optional()?
                    .is_some();
                tx.prepare_cached(
                    "INSERT INTO users (aor, realm, ha1_sha256, ha1_md5) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(aor) DO UPDATE SET realm = ?2, ha1_sha256 = ?3, ha1_md5 = ?4",
                )?
                .execute(params![
                    aor,
                    &*user.realm,
                    user.ha1(DigestAlgorithm::Sha256)
                        .map(|h| h.as_str().to_string()),
                    user.ha1(DigestAlgorithm::Md5)
                        .map(|h| h.as_str().to_string()),
                ])?;
                fx.users.push((aor, Some(Arc::new(user))));
                fx.replies.push(Reply::User(reply, existed));
            }
            Job::DeleteUser(aor, reply) => {
                let existed = tx.execute("DELETE FROM users WHERE aor = ?1", [&aor])? > 0;
                write_aor(&tx, &aor, &[])?;
                fx.bindings.insert(aor.clone(), Vec::new());
                fx.users.push((aor, None));
                fx.replies.push(Reply::User(reply, existed));
            }
            Job::Sweep(at) => {
                for aor in location.expired_aors(at) {
                    let live: Vec<Binding> = current(fx, location, &aor)
                        .into_iter()
                        .filter(|b| b.expires_at > at)
                        .collect();
                    fx.bindings.insert(aor, live);
                }
                tx.prepare_cached("DELETE FROM bindings WHERE expires_at <= ?1")?
                    .execute([at as i64])?;
                fx.replies.push(Reply::None);
            }
        }
    }
    tx.commit()
}

/// Whether `aor` has a user, as the batch so far left the users.
fn has_user(fx: &Effects, users: &Users, aor: &str) -> bool {
    match fx.users.iter().rev().find(|(a, _)| a == aor) {
        Some((_, user)) => user.is_some(),
        None => users.get(aor).is_some(),
    }
}

/// An AOR's bindings as the batch so far left them.
fn current(fx: &Effects, location: &Location, aor: &str) -> Vec<Binding> {
    match fx.bindings.get(aor) {
        Some(list) => list.clone(),
        None => location.get(aor),
    }
}

/// Replaces an AOR's rows with `list`.
fn write_aor(tx: &rusqlite::Transaction<'_>, aor: &str, list: &[Binding]) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM bindings WHERE aor = ?1")?
        .execute([aor])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO bindings (aor, contact, q, expires_at, call_id, cseq, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(aor, contact) DO UPDATE SET q = ?3, expires_at = ?4, call_id = ?5,
         cseq = ?6, updated_ms = ?7",
    )?;
    for b in list {
        insert.execute(params![
            aor,
            &*b.contact,
            b.q,
            b.expires_at as i64,
            &*b.call_id,
            b.cseq,
            b.updated_ms as i64
        ])?;
    }
    Ok(())
}
