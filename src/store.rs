//! The durable store: SQLite (`store.path`), the zone data of record (SPEC §6).
//!
//! Owns: the schema and its migrations, reading a zone's records back, and the
//! transactions that start-up, SIGHUP and the admin API commit. Records are kept as the
//! index keeps them (owner as labels below the apex, rdata in uncompressed wire form),
//! so a zone goes from the store to the index without parsing text, and a NAPTR regexp
//! is stored as the exact bytes the DNS answer carries (no escaping layer to get wrong).
//!
//! Must not touch: the in-memory index, HTTP, or what records mean: it keeps rows.
//! `keeper::stored` maps zones to these rows and back, and `keeper::change` decides what
//! a change writes.
//!
//! Durability: WAL journal with `synchronous = FULL`, so `COMMIT` returns only after the
//! WAL is fsynced (the WAL is copied into the database by a checkpoint thread, not
//! inside the commit): an acknowledged change survives a power cut, not only a killed
//! process. (`NORMAL` would fsync only at checkpoints and may lose the last commits on
//! power loss, which would break "a 2xx means committed to disk".)

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// Schema migrations, applied in order; `PRAGMA user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: zones, their records, and which wildcards are managed prefix routes.
    "CREATE TABLE zones (
        id INTEGER PRIMARY KEY,
        origin TEXT NOT NULL UNIQUE,
        serial INTEGER NOT NULL
     );
     CREATE TABLE records (
        zone INTEGER NOT NULL REFERENCES zones(id),
        owner BLOB NOT NULL,      -- labels below the apex, closest first, [len][bytes] each
        number TEXT,              -- '+digits' when the owner is an E.164 number
        rtype INTEGER NOT NULL,
        ttl INTEGER NOT NULL,
        rdata BLOB NOT NULL       -- uncompressed wire form
     );
     CREATE INDEX records_by_owner ON records (zone, owner);
     CREATE INDEX records_by_number ON records (number) WHERE number IS NOT NULL;
     CREATE TABLE prefixes (
        zone INTEGER NOT NULL REFERENCES zones(id),
        owner BLOB NOT NULL,      -- the prefix's name (its wildcard is owner + '*')
        PRIMARY KEY (zone, owner)
     ) WITHOUT ROWID;",
    // 2: the digest of the zone file as it was last loaded into the store (NULL when
    // the zone came from elsewhere), so an unchanged file is told apart from an edited
    // one after the API has changed the zone.
    "ALTER TABLE zones ADD COLUMN file_digest BLOB;",
    // 3: the IXFR journal: each serial change of a zone as its difference (records
    // removed and added, in the byte form of `zone::diff::Diff`), oldest first by seq.
    "CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        zone INTEGER NOT NULL REFERENCES zones(id),
        serial_from INTEGER NOT NULL,
        serial_to INTEGER NOT NULL,
        diff BLOB NOT NULL
     );
     CREATE INDEX journal_by_zone ON journal (zone, seq);",
    // 4: zones created through the admin API (`PUT /v1/zones/{origin}` for a zone not
    // served): served at start beside the configured ones, and the only zones the API
    // may delete.
    "ALTER TABLE zones ADD COLUMN api_created INTEGER NOT NULL DEFAULT 0;",
    // 5: numbers kept compactly. A number (the caller says which owners are numbers) is
    // one row of integers: its key and the id of its shape, an opaque blob kept once per
    // zone (its RRsets with the number cut out; `naptrs` counts its NAPTR records, for
    // listing). `numbers_split` marks the zones whose numbers have left `records`; the
    // zones of an older store are split on their first start. Numbers the caller keeps
    // as records (longer than a key holds) are listed by `records.number`, per zone.
    "CREATE TABLE shapes (
        zone INTEGER NOT NULL REFERENCES zones(id),
        id INTEGER NOT NULL,
        data BLOB NOT NULL,
        naptrs INTEGER NOT NULL,
        PRIMARY KEY (zone, id)
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX shapes_by_data ON shapes (zone, data);
     CREATE TABLE numbers (
        zone INTEGER NOT NULL REFERENCES zones(id),
        key INTEGER NOT NULL,     -- the number's key: a positive integer, in name order
        shape INTEGER NOT NULL,
        PRIMARY KEY (zone, key)
     ) WITHOUT ROWID;
     ALTER TABLE zones ADD COLUMN numbers_split INTEGER NOT NULL DEFAULT 0;
     DROP INDEX records_by_number;
     CREATE INDEX records_by_number ON records (zone, number) WHERE number IS NOT NULL;",
];

/// What [`Store::read_zone`] gives a zone's rows to, in this order: every record, in
/// owner order (each owner's records together, in stored order), then every shape, then
/// every number in key order.
pub trait ZoneRows {
    fn record(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]);
    fn shape(&mut self, id: i64, data: &[u8]);
    fn number(&mut self, key: i64, shape: i64);
}

/// A path as the path of an SQLite `file:` URI: `%`, `?` and `#` (and bytes outside
/// printable ASCII) percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A store failure, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store {path}: cannot create its directory: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store {path}: cannot start its checkpoint thread: {source}")]
    Thread {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "store {path}: schema version {found} is newer than this enroute knows ({known}); \
         use the newer release or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
}

/// Encodes labels below the apex (closest first) as a stored owner key: the
/// [`crate::name::labels_key`] form, in lower case.
pub fn owner_key<L: AsRef<[u8]>>(below_apex: &[L]) -> Vec<u8> {
    let mut key = crate::name::labels_key(below_apex);
    key.make_ascii_lowercase();
    key
}

/// Splits a stored owner key into its labels.
pub fn owner_labels(key: &[u8]) -> Vec<&[u8]> {
    crate::name::key_labels(key).collect()
}

/// An open store. One writer per process (the keeper holds it behind a mutex); readers
/// open their own connections ([`Store::open_reader`]), which WAL lets run beside it.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The writer's background checkpoints (none for a reader).
    checkpoints: Option<Checkpoints>,
}

/// Checkpoints of the WAL into the database file, on a thread with its own connection,
/// told of each commit. SQLite's automatic checkpoint would run inside the `COMMIT` that
/// crosses its threshold: a change that wrote 1.7 GB of WAL (a 10^6-number delta on
/// 10^8 numbers dirties most of the numbers table) would wait for those pages to be
/// copied into the database and synced before its 2xx. Durability does not depend on
/// the checkpoint: a commit returns once its WAL frames are synced.
struct Checkpoints {
    /// Told of each commit; dropped to stop the thread.
    commits: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    fn start(path: &Path) -> Result<Checkpoints, StoreError> {
        let conn = Connection::open(path).map_err(|e| sqlite(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| sqlite(path, e))?;
        let (commits, told) = std::sync::mpsc::sync_channel::<()>(1);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("enroute-checkpoint".into())
            .spawn(move || {
                while told.recv().is_ok() {
                    // PASSIVE: copies what no reader still needs, never blocks a writer.
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = done {
                        tracing::warn!(store = %shown, error = %e, "store: checkpoint failed");
                    }
                }
            })
            .map_err(|source| StoreError::Thread {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Checkpoints {
            commits: Some(commits),
            thread: Some(thread),
        })
    }
}

impl Drop for Store {
    /// Stops the checkpoint thread (its connection closes) before the writer's
    /// connection, so that the writer's close, the last, checkpoints the rest and
    /// removes the `-wal` and `-shm` files.
    fn drop(&mut self) {
        if let Some(mut c) = self.checkpoints.take() {
            drop(c.commits.take());
            if let Some(t) = c.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Store {
    /// Opens (creating the file and its directory when missing) and migrates.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| sqlite(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            checkpoints: None,
        };
        store.configure()?;
        store.migrate()?;
        store.checkpoints = Some(Checkpoints::start(path)?);
        Ok(store)
    }

    /// Opens an existing store for reading (CLI commands, admin GETs); `None` when the
    /// file does not exist.
    pub fn open_reader(path: &Path) -> Result<Option<Store>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // A WAL database opened even read-only gets `-wal` and `-shm` files created
        // beside it. With no server running (no `-wal` file) nothing can change it, so
        // read it as immutable and leave the directory as it was.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let conn = if Path::new(&wal).exists() {
            Connection::open_with_flags(path, flags)
        } else {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        }
        .map_err(|e| sqlite(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| sqlite(path, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            checkpoints: None,
        };
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| store.err(e))?;
        if version as usize != MIGRATIONS.len() {
            // Not yet created by a server (or from another release): nothing to read.
            return Ok(None);
        }
        Ok(Some(store))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite(&self.path, e)
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(store = %self.path.display(), mode, "store: WAL mode not available");
        }
        self.conn
            .execute_batch(
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;
                 PRAGMA wal_autocheckpoint = 0;",
            )
            .map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| sqlite(&self.path, e))?;
            tx.execute_batch(sql).map_err(|e| sqlite(&self.path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| sqlite(&self.path, e))?;
            tx.commit().map_err(|e| sqlite(&self.path, e))?;
            tracing::info!(store = %self.path.display(), version = i + 1, "store schema migrated");
        }
        Ok(())
    }

    /// The stored serial of a zone, `None` when the store does not hold it.
    pub fn serial(&self, origin: &str) -> Result<Option<u32>, StoreError> {
        self.conn
            .query_row(
                "SELECT serial FROM zones WHERE origin = ?1",
                [origin],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|s| s.map(|s| s as u32))
            .map_err(|e| self.err(e))
    }

    /// The digest of the zone file as last loaded into the store (see
    /// [`Write::set_file_digest`]); `None` when the zone is not held, or did not come
    /// from a file (the API replaced it, a store-only zone, a store from before it was
    /// kept).
    pub fn file_digest(&self, origin: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT file_digest FROM zones WHERE origin = ?1",
                [origin],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Feeds a zone's rows to `rows` (see [`ZoneRows`]: records in owner order, an
    /// RRset's records in the order they were stored, then shapes, then numbers in key
    /// order) and returns the owners of its managed prefix routes.
    pub fn read_zone(
        &self,
        origin: &str,
        rows: &mut dyn ZoneRows,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        read_zone(&self.conn, &self.path, origin, rows)
    }

    /// The journal of a zone from the change that starts at `serial` on, oldest first:
    /// `(serial_from, serial_to, difference)` each. Empty when no change starts there
    /// (the journal does not reach that far back, or the zone is not held).
    pub fn journal_from(
        &self,
        origin: &str,
        serial: u32,
    ) -> Result<Vec<(u32, u32, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        self.journal_each(origin, serial, |from, to, diff| {
            out.push((from, to, diff.to_vec()));
            true
        })?;
        Ok(out)
    }

    /// [`Store::journal_from`] one change at a time, without holding them all: `each`
    /// gets `(serial_from, serial_to, difference)` and returns whether to go on.
    pub fn journal_each(
        &self,
        origin: &str,
        serial: u32,
        mut each: impl FnMut(u32, u32, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let Some(id) = self.zone_id(origin)? else {
            return Ok(());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT serial_from, serial_to, diff FROM journal WHERE zone = ?1 AND seq >=
                   (SELECT max(seq) FROM journal WHERE zone = ?1 AND serial_from = ?2)
                 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![id, serial as i64])
            .map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| sqlite(&self.path, e))? {
            let read = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get::<_, i64>(0)? as u32,
                    r.get::<_, i64>(1)? as u32,
                    r.get_ref(2)?.as_blob()?,
                ))
            })();
            let (from, to, diff) = read.map_err(|e| sqlite(&self.path, e))?;
            if !each(from, to, diff) {
                break;
            }
        }
        Ok(())
    }

    /// How many changes the journal holds, per zone origin.
    pub fn journal_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT z.origin, count(j.seq) FROM zones z LEFT JOIN journal j ON j.zone = z.id
                 GROUP BY z.id ORDER BY z.origin",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Keys of the numbers of zone `origin` with NAPTR records, in `[from, to)`,
    /// ascending, at most `limit`. Each number's shape is looked up by its key (a
    /// correlated `EXISTS`), so a page costs its own rows: `shape IN (SELECT …)` built the
    /// zone's whole shape list first, 130 ms a page with a million numbers each routed
    /// its own way.
    pub fn number_keys(
        &self,
        origin: &str,
        (from, to): (i64, i64),
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let Some(id) = self.zone_id(origin)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key FROM numbers n WHERE zone = ?1 AND key >= ?2 AND key < ?3
                   AND EXISTS (SELECT 1 FROM shapes s
                               WHERE s.zone = ?1 AND s.id = n.shape AND s.naptrs > 0)
                 ORDER BY key LIMIT ?4",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![id, from, to, limit as i64], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Numbers (`+digits`) of zone `origin` kept as records with NAPTRs, in
    /// `[from, to)` and after `after` (text order), ascending, at most `limit`.
    pub fn long_numbers(
        &self,
        origin: &str,
        (from, to, after): (&str, &str, &str),
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let Some(id) = self.zone_id(origin)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT number FROM records WHERE zone = ?1 AND number IS NOT NULL
                   AND number >= ?2 AND number < ?3 AND number > ?4 AND rtype = 35
                 ORDER BY number LIMIT ?5",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![id, from, to, after, limit as i64], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Whether the zone's numbers have left `records` (see the migrations); `true`
    /// when the store does not hold the zone.
    pub fn numbers_split(&self, origin: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT numbers_split FROM zones WHERE origin = ?1",
                [origin],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.is_none_or(|v| v == 1))
            .map_err(|e| self.err(e))
    }

    /// Every zone held, by origin.
    pub fn zones(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT origin FROM zones ORDER BY origin")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// The origins of the zones created through the admin API, sorted.
    pub fn api_created_zones(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT origin FROM zones WHERE api_created = 1 ORDER BY origin")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Whether the zone was created through the admin API (`false` when not held).
    pub fn is_api_created(&self, origin: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT api_created FROM zones WHERE origin = ?1",
                [origin],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v == Some(1))
            .map_err(|e| self.err(e))
    }

    fn zone_id(&self, origin: &str) -> Result<Option<i64>, StoreError> {
        zone_id(&self.conn, &self.path, origin)
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`: the write lock is taken at once,
    /// so a commit never fails on a lock upgrade).
    pub fn write(&mut self) -> Result<Write<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sqlite(&self.path, e))?;
        Ok(Write {
            tx,
            path: &self.path,
            commits: self.checkpoints.as_ref().and_then(|c| c.commits.as_ref()),
        })
    }
}

/// [`Store::read_zone`] on a connection (the store's, or a write transaction's).
fn read_zone(
    conn: &Connection,
    path: &Path,
    origin: &str,
    rows: &mut dyn ZoneRows,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let Some(id) = zone_id(conn, path, origin)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT owner, rtype, ttl, rdata FROM records WHERE zone = ?1 ORDER BY owner, rowid",
        )
        .map_err(|e| sqlite(path, e))?;
    let mut found = stmt.query([id]).map_err(|e| sqlite(path, e))?;
    while let Some(r) = found.next().map_err(|e| sqlite(path, e))? {
        let owner = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
        let rdata = r.get_ref(3).and_then(|v| Ok(v.as_blob()?));
        let (rtype, ttl): (i64, i64) = (
            r.get(1).map_err(|e| sqlite(path, e))?,
            r.get(2).map_err(|e| sqlite(path, e))?,
        );
        match (owner, rdata) {
            (Ok(o), Ok(d)) => rows.record(o, rtype as u16, ttl as u32, d),
            (Err(e), _) | (_, Err(e)) => return Err(sqlite(path, e)),
        }
    }
    let mut stmt = conn
        .prepare_cached("SELECT id, data FROM shapes WHERE zone = ?1 ORDER BY id")
        .map_err(|e| sqlite(path, e))?;
    let mut found = stmt.query([id]).map_err(|e| sqlite(path, e))?;
    while let Some(r) = found.next().map_err(|e| sqlite(path, e))? {
        let id: i64 = r.get(0).map_err(|e| sqlite(path, e))?;
        let data = r.get_ref(1).and_then(|v| Ok(v.as_blob()?));
        rows.shape(id, data.map_err(|e| sqlite(path, e))?);
    }
    let mut stmt = conn
        .prepare_cached("SELECT key, shape FROM numbers WHERE zone = ?1 ORDER BY key")
        .map_err(|e| sqlite(path, e))?;
    let mut found = stmt.query([id]).map_err(|e| sqlite(path, e))?;
    while let Some(r) = found.next().map_err(|e| sqlite(path, e))? {
        let (key, shape) = (r.get(0), r.get(1));
        rows.number(
            key.map_err(|e| sqlite(path, e))?,
            shape.map_err(|e| sqlite(path, e))?,
        );
    }
    let mut stmt = conn
        .prepare_cached("SELECT owner FROM prefixes WHERE zone = ?1 ORDER BY owner")
        .map_err(|e| sqlite(path, e))?;
    let prefixes = stmt
        .query_map([id], |r| r.get::<_, Vec<u8>>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| sqlite(path, e))?;
    Ok(prefixes)
}

fn zone_id(conn: &Connection, path: &Path, origin: &str) -> Result<Option<i64>, StoreError> {
    conn.query_row("SELECT id FROM zones WHERE origin = ?1", [origin], |r| {
        r.get(0)
    })
    .optional()
    .map_err(|e| sqlite(path, e))
}

fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// One write transaction: nothing is visible or durable until [`Write::commit`];
/// dropped without it, everything is rolled back.
pub struct Write<'s> {
    tx: rusqlite::Transaction<'s>,
    path: &'s Path,
    /// Tells the checkpoint thread of the commit.
    commits: Option<&'s std::sync::mpsc::SyncSender<()>>,
}

impl Write<'_> {
    fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite(self.path, e)
    }

    /// The zone's id, creating its row (serial 0, nothing to split) when missing.
    pub fn zone(&mut self, origin: &str) -> Result<i64, StoreError> {
        self.tx
            .execute(
                "INSERT INTO zones (origin, serial, numbers_split) VALUES (?1, 0, 1)
                 ON CONFLICT(origin) DO NOTHING",
                [origin],
            )
            .map_err(|e| self.err(e))?;
        self.tx
            .query_row("SELECT id FROM zones WHERE origin = ?1", [origin], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// Removes every record, number, shape and prefix route of a zone (before a
    /// whole-zone replace), and marks its numbers as kept apart from its records.
    pub fn clear_zone(&mut self, zone: i64) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM records WHERE zone = ?1",
            "DELETE FROM numbers WHERE zone = ?1",
            "DELETE FROM shapes WHERE zone = ?1",
            "DELETE FROM prefixes WHERE zone = ?1",
        ] {
            self.tx.execute(sql, [zone]).map_err(|e| self.err(e))?;
        }
        self.set_numbers_split(zone, true)
    }

    /// Marks whether the zone's numbers have left `records` (see the migrations).
    pub fn set_numbers_split(&mut self, zone: i64, split: bool) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE zones SET numbers_split = ?2 WHERE id = ?1",
                params![zone, split as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Adds a shape under `id` (the zone must not have that id yet).
    pub fn put_shape(
        &mut self,
        zone: i64,
        id: i64,
        data: &[u8],
        naptrs: usize,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("INSERT INTO shapes (zone, id, data, naptrs) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![zone, id, data, naptrs as i64]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The id of the zone's shape `data`, added under a new id when it has none.
    pub fn shape_id(&mut self, zone: i64, data: &[u8], naptrs: usize) -> Result<i64, StoreError> {
        let found = self
            .tx
            .prepare_cached("SELECT id FROM shapes WHERE zone = ?1 AND data = ?2")
            .and_then(|mut s| s.query_row(params![zone, data], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        if let Some(id) = found {
            return Ok(id);
        }
        let id: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(id) + 1, 0) FROM shapes WHERE zone = ?1")
            .and_then(|mut s| s.query_row([zone], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        self.put_shape(zone, id, data, naptrs)?;
        Ok(id)
    }

    /// Sets the number `key`'s shape (`None`: removes the number).
    pub fn put_number(
        &mut self,
        zone: i64,
        key: i64,
        shape: Option<i64>,
    ) -> Result<(), StoreError> {
        let done = match shape {
            Some(shape) => self
                .tx
                .prepare_cached(
                    // An upsert changes a kept row in place; REPLACE deletes it and
                    // inserts it again, rebalancing the page twice.
                    "INSERT INTO numbers (zone, key, shape) VALUES (?1, ?2, ?3)
                     ON CONFLICT (zone, key) DO UPDATE SET shape = excluded.shape",
                )
                .and_then(|mut s| s.execute(params![zone, key, shape])),
            None => self
                .tx
                .prepare_cached("DELETE FROM numbers WHERE zone = ?1 AND key = ?2")
                .and_then(|mut s| s.execute(params![zone, key])),
        };
        done.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The zone's managed prefix routes (their owners), sorted.
    pub fn prefixes(&self, zone: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tx
            .prepare_cached("SELECT owner FROM prefixes WHERE zone = ?1 ORDER BY owner")
            .and_then(|mut s| s.query_map([zone], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))
    }

    /// Whether zone `zone`'s numbers have left `records` (see the migrations).
    pub fn numbers_split(&self, zone: i64) -> Result<bool, StoreError> {
        self.tx
            .query_row(
                "SELECT numbers_split FROM zones WHERE id = ?1",
                [zone],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v == 1)
            .map_err(|e| self.err(e))
    }

    /// The shape bytes of the number `key`, when the zone keeps it as a number.
    pub fn number_shape(&self, zone: i64, key: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT s.data FROM numbers n JOIN shapes s ON s.zone = n.zone AND s.id = n.shape
                 WHERE n.zone = ?1 AND n.key = ?2",
            )
            .and_then(|mut s| s.query_row(params![zone, key], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    /// The records `(type, ttl, rdata)` kept at `owner`, in stored order.
    pub fn records_at(
        &self,
        zone: i64,
        owner: &[u8],
    ) -> Result<Vec<(u16, u32, Vec<u8>)>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT rtype, ttl, rdata FROM records WHERE zone = ?1 AND owner = ?2 ORDER BY rowid",
            )
            .and_then(|mut s| {
                s.query_map(params![zone, owner], |r| {
                    Ok((r.get::<_, i64>(0)? as u16, r.get::<_, i64>(1)? as u32, r.get(2)?))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Removes every record kept at `owner`.
    pub fn delete_owner(&mut self, zone: i64, owner: &[u8]) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("DELETE FROM records WHERE zone = ?1 AND owner = ?2")
            .and_then(|mut s| s.execute(params![zone, owner]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records the zone's serial.
    pub fn set_serial(&mut self, zone: i64, serial: u32) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE zones SET serial = ?2 WHERE id = ?1",
                params![zone, serial as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records which file content the zone was loaded from (`None`: not from a file).
    pub fn set_file_digest(&mut self, zone: i64, digest: Option<&[u8]>) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE zones SET file_digest = ?2 WHERE id = ?1",
                params![zone, digest],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes the records of one type at an owner.
    pub fn delete_rrset(&mut self, zone: i64, owner: &[u8], rtype: u16) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("DELETE FROM records WHERE zone = ?1 AND owner = ?2 AND rtype = ?3")
            .and_then(|mut s| s.execute(params![zone, owner, rtype as i64]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Adds one record. `number` is the owner as an E.164 number (`+digits`) when it
    /// is one kept as records, for [`Store::long_numbers`].
    pub fn insert(
        &mut self,
        zone: i64,
        owner: &[u8],
        number: Option<&str>,
        (rtype, ttl): (u16, u32),
        rdata: &[u8],
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO records (zone, owner, number, rtype, ttl, rdata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    zone,
                    owner,
                    number,
                    rtype as i64,
                    ttl as i64,
                    rdata
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks or unmarks `owner` as a managed prefix route.
    pub fn set_prefix(&mut self, zone: i64, owner: &[u8], on: bool) -> Result<(), StoreError> {
        let sql = if on {
            "INSERT INTO prefixes (zone, owner) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM prefixes WHERE zone = ?1 AND owner = ?2"
        };
        self.tx
            .execute(sql, params![zone, owner])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// [`Store::read_zone`] inside the transaction: its own writes included.
    pub fn read_zone(
        &self,
        origin: &str,
        rows: &mut dyn ZoneRows,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        read_zone(&self.tx, self.path, origin, rows)
    }

    /// Appends a change to the zone's journal and drops its oldest changes beyond
    /// `keep` (0: keeps none), and beyond `max_bytes` of differences in all (the
    /// newest change always stays).
    pub fn journal_append(
        &mut self,
        zone: i64,
        (serial_from, serial_to): (u32, u32),
        diff: &[u8],
        (keep, max_bytes): (usize, u64),
    ) -> Result<(), StoreError> {
        if keep == 0 {
            return self.journal_clear(zone);
        }
        self.tx
            .prepare_cached(
                "INSERT INTO journal (zone, serial_from, serial_to, diff) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![zone, serial_from as i64, serial_to as i64, diff]))
            .map_err(|e| self.err(e))?;
        self.tx
            .prepare_cached(
                "DELETE FROM journal WHERE zone = ?1 AND seq <=
                   (SELECT seq FROM journal WHERE zone = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )
            .and_then(|mut s| s.execute(params![zone, keep as i64]))
            .map_err(|e| self.err(e))?;
        // `length` of a blob reads its size, not its bytes.
        self.tx
            .prepare_cached(
                "DELETE FROM journal WHERE zone = ?1 AND seq <= (
                   SELECT seq FROM (
                     SELECT seq, SUM(length(diff)) OVER (ORDER BY seq DESC) AS newer
                     FROM journal WHERE zone = ?1)
                   WHERE newer > ?2 AND seq < (SELECT max(seq) FROM journal WHERE zone = ?1)
                   ORDER BY seq DESC LIMIT 1)",
            )
            .and_then(|mut s| s.execute(params![zone, max_bytes as i64]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Empties the zone's journal: its history no longer leads to what is stored.
    pub fn journal_clear(&mut self, zone: i64) -> Result<(), StoreError> {
        self.tx
            .execute("DELETE FROM journal WHERE zone = ?1", [zone])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks the zone as created through the admin API (`on`), or not.
    pub fn set_api_created(&mut self, zone: i64, on: bool) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE zones SET api_created = ?2 WHERE id = ?1",
                params![zone, on as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a zone and everything kept for it: its journal, records, prefix routes
    /// and its row. Returns whether the store held it.
    pub fn delete_zone(&mut self, origin: &str) -> Result<bool, StoreError> {
        let id: Option<i64> = self
            .tx
            .query_row("SELECT id FROM zones WHERE origin = ?1", [origin], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(id) = id else {
            return Ok(false);
        };
        for sql in [
            "DELETE FROM journal WHERE zone = ?1",
            "DELETE FROM records WHERE zone = ?1",
            "DELETE FROM numbers WHERE zone = ?1",
            "DELETE FROM shapes WHERE zone = ?1",
            "DELETE FROM prefixes WHERE zone = ?1",
            "DELETE FROM zones WHERE id = ?1",
        ] {
            self.tx.execute(sql, [id]).map_err(|e| self.err(e))?;
        }
        Ok(true)
    }

    /// Makes everything in the transaction durable (fsynced) and visible.
    pub fn commit(self) -> Result<(), StoreError> {
        let (path, commits) = (self.path, self.commits);
        self.tx.commit().map_err(|e| sqlite(path, e))?;
        if let Some(commits) = commits {
            // Full: a checkpoint is already due, and it will take this commit too.
            let _ = commits.try_send(());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_of_a_closed_store_leaves_the_directory_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        // A name that needs escaping in an SQLite URI.
        let path = dir.path().join("a dir?#%/enroute.db");
        {
            let mut store = Store::open(&path).unwrap();
            let mut w = store.write().unwrap();
            let z = w.zone("9.4.4.e164.arpa.").unwrap();
            w.set_serial(z, 7).unwrap();
            w.set_file_digest(z, Some(b"digest")).unwrap();
            w.commit().unwrap();
        }
        let files = || {
            let mut v: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let before = files();
        assert_eq!(
            before,
            ["enroute.db"],
            "a clean close leaves only the database"
        );
        let reader = Store::open_reader(&path).unwrap().unwrap();
        assert_eq!(reader.serial("9.4.4.e164.arpa.").unwrap(), Some(7));
        assert_eq!(
            reader.file_digest("9.4.4.e164.arpa.").unwrap().as_deref(),
            Some(&b"digest"[..])
        );
        drop(reader);
        assert_eq!(files(), before, "no -wal or -shm created by reading");
    }

    #[test]
    fn commits_reach_the_database_file_by_the_checkpoint_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enroute.db");
        let mut store = Store::open(&path).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let mut w = store.write().unwrap();
        let z = w.zone("4.4.e164.arpa.").unwrap();
        for i in 0..2000u32 {
            w.insert(z, &i.to_be_bytes(), None, (16, 60), &[7; 100])
                .unwrap();
        }
        w.commit().unwrap();
        // Not inside the commit (no automatic checkpoint), but soon after it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size() <= before + 100_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint: {} bytes",
                size()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(store);
        let wal = dir.path().join("enroute.db-wal");
        assert!(!wal.exists(), "a clean close leaves no WAL");
    }

    #[test]
    fn the_journal_keeps_its_newest_changes_within_a_count_and_a_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        let origin = "1.4.4.e164.arpa.";
        let other = "2.4.4.e164.arpa.";
        {
            // Another zone's journal is not this one's to trim.
            let mut w = store.write().unwrap();
            let z = w.zone(other).unwrap();
            w.journal_append(z, (100, 101), &[7; 900], (4, 1000))
                .unwrap();
            w.commit().unwrap();
        }
        let append = |store: &mut Store, serial: u32, len: usize, bound: (usize, u64)| {
            let mut w = store.write().unwrap();
            let z = w.zone(origin).unwrap();
            w.journal_append(z, (serial, serial + 1), &vec![7; len], bound)
                .unwrap();
            w.commit().unwrap();
        };
        let kept = |store: &Store| -> Vec<u32> {
            let mut q = store
                .conn
                .prepare(
                    "SELECT serial_from FROM journal WHERE zone =
                       (SELECT id FROM zones WHERE origin = ?1) ORDER BY seq",
                )
                .unwrap();
            let rows = q.query_map([origin], |r| r.get::<_, u32>(0)).unwrap();
            rows.map(Result::unwrap).collect()
        };
        for serial in 1..=5 {
            append(&mut store, serial, 100, (4, 1000));
        }
        assert_eq!(kept(&store), [2, 3, 4, 5], "four by count");
        // Then 300 and 600 bytes: 3 goes by count, 4 by size (its 100 would make 1100).
        append(&mut store, 6, 300, (4, 1000));
        append(&mut store, 7, 600, (4, 1000));
        assert_eq!(kept(&store), [5, 6, 7], "within 1000 bytes");
        // A change larger than the bound stays alone.
        append(&mut store, 8, 2000, (4, 1000));
        assert_eq!(kept(&store), [8]);
        let others: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM journal WHERE serial_from = 100",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(others, 1, "the other zone's change stays");
    }

    #[test]
    fn a_deleted_zone_leaves_nothing_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("enroute.db")).unwrap();
        let (gone, kept) = ("1.4.4.e164.arpa.", "2.4.4.e164.arpa.");
        {
            let mut w = store.write().unwrap();
            for origin in [gone, kept] {
                let z = w.zone(origin).unwrap();
                w.insert(z, &owner_key(&["5"]), None, (35, 60), b"x")
                    .unwrap();
                let shape = w.shape_id(z, b"shape", 1).unwrap();
                w.put_number(z, 0x7 << 56, Some(shape)).unwrap();
                w.set_prefix(z, &owner_key(&["6"]), true).unwrap();
                w.journal_append(z, (1, 2), b"diff", (10, 1 << 20)).unwrap();
                w.set_api_created(z, true).unwrap();
            }
            w.commit().unwrap();
        }
        assert_eq!(store.api_created_zones().unwrap(), [gone, kept]);
        let mut w = store.write().unwrap();
        assert!(w.delete_zone(gone).unwrap());
        assert!(!w.delete_zone("9.9.e164.arpa.").unwrap());
        w.commit().unwrap();
        assert_eq!(store.serial(gone).unwrap(), None);
        assert!(!store.is_api_created(gone).unwrap());
        assert!(store.is_api_created(kept).unwrap());
        assert_eq!(store.api_created_zones().unwrap(), [kept]);
        let rows = |table: &str| -> i64 {
            store
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        // Only the kept zone's rows remain.
        assert_eq!(
            ["records", "prefixes", "journal", "numbers", "shapes"].map(rows),
            [1; 5]
        );
    }

    #[test]
    fn records_round_trip_and_uncommitted_writes_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/enroute.db");
        let mut store = Store::open(&path).unwrap();
        let owner = owner_key(&["9", "6"]);
        {
            let mut w = store.write().unwrap();
            let z = w.zone("2.3.6.1.4.4.e164.arpa.").unwrap();
            w.insert(z, &owner, Some("+44163296"), (35, 60), b"\x00\x01")
                .unwrap();
            // Two numbers with NAPTRs, one without, and a shape made new once.
            let (routed, plain) = (
                w.shape_id(z, b"r", 2).unwrap(),
                w.shape_id(z, b"p", 0).unwrap(),
            );
            assert_eq!(w.shape_id(z, b"r", 2).unwrap(), routed);
            for (key, shape) in [(30, routed), (10, routed), (20, plain)] {
                w.put_number(z, key, Some(shape)).unwrap();
            }
            w.put_number(z, 40, Some(routed)).unwrap();
            w.put_number(z, 40, None).unwrap();
            assert_eq!(w.number_shape(z, 30).unwrap().as_deref(), Some(&b"r"[..]));
            w.set_serial(z, 7).unwrap();
            w.commit().unwrap();
        }
        {
            let mut w = store.write().unwrap();
            let z = w.zone("2.3.6.1.4.4.e164.arpa.").unwrap();
            w.insert(z, &owner, None, (1, 60), b"gone").unwrap();
            w.put_number(z, 50, Some(0)).unwrap();
            // dropped: rolled back
        }
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.serial("2.3.6.1.4.4.e164.arpa.").unwrap(), Some(7));
        #[derive(Default)]
        struct Seen(Vec<String>);
        impl ZoneRows for Seen {
            fn record(&mut self, o: &[u8], t: u16, ttl: u32, d: &[u8]) {
                self.0.push(format!("record {o:?} {t} {ttl} {d:?}"));
            }
            fn shape(&mut self, id: i64, data: &[u8]) {
                self.0.push(format!("shape {id} {data:?}"));
            }
            fn number(&mut self, key: i64, shape: i64) {
                self.0.push(format!("number {key} {shape}"));
            }
        }
        let mut seen = Seen::default();
        store
            .read_zone("2.3.6.1.4.4.e164.arpa.", &mut seen)
            .unwrap();
        let want = [
            format!("record {owner:?} 35 60 [0, 1]"),
            "shape 0 [114]".into(),
            "shape 1 [112]".into(),
            "number 10 0".into(),
            "number 20 1".into(),
            "number 30 0".into(),
        ];
        assert_eq!(seen.0, want);
        assert_eq!(owner_labels(&owner), vec![&b"9"[..], b"6"]);
        let keys = |range, limit| {
            store
                .number_keys("2.3.6.1.4.4.e164.arpa.", range, limit)
                .unwrap()
        };
        assert_eq!(
            keys((0, 100), 10),
            [10, 30],
            "numbers without NAPTRs are not listed"
        );
        assert_eq!(keys((11, 100), 10), [30]);
        assert_eq!(keys((0, 100), 1), [10]);
        assert!(
            store
                .number_keys("9.e164.arpa.", (0, 100), 10)
                .unwrap()
                .is_empty()
        );
        let long = |after| {
            let range = ("+4416", "+4416\u{ffff}", after);
            store
                .long_numbers("2.3.6.1.4.4.e164.arpa.", range, 10)
                .unwrap()
        };
        assert_eq!(long(""), ["+44163296"]);
        assert!(long("+44163296").is_empty());
    }
}
