//! The durable task store: tasks, their events and output in SQLite (WAL),
//! shared safely by every `subagent` process on the machine.
//!
//! - **Durable before reported.** All writes go through one writer thread
//!   that commits them in batches (group commit, `synchronous = FULL`) and
//!   only then runs each write's acknowledgement: publishing the event,
//!   releasing awaiters, returning a launched id.
//! - **Crash recovery.** Each host process registers itself and heartbeats.
//!   Opening the store marks the unfinished tasks of dead hosts (no
//!   heartbeat within the lease, or a pid that no longer runs on this
//!   machine) `interrupted`; finished results are never touched, and two
//!   live hosts never take each other's tasks.
//! - **Control across processes.** `cancel` and `send` from another process
//!   are rows in `control`, which the owning host polls every 50 ms.
//! - **Retention.** Terminal tasks older than the retention period are pruned.

mod schema;

pub use schema::SCHEMA_VERSION;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::events::{EventKind, TaskEvent};
use crate::task::{ErrorKind, TaskError, TaskResult, TaskStatus};

/// How long a host may go without a heartbeat before its tasks count as orphaned.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a host heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Default retention of terminal tasks.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The store's file name inside the state directory.
pub const STORE_FILE: &str = "tasks.db";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the task store `{}`: {source}\n  = help: check that the directory is writable, or pass another --state-dir", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the task store `{}` is not a valid database ({detail})\n  = help: it was left untouched; move it aside (for example `mv {} {}.corrupt`) and a new store will be created", path.display(), path.display(), path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("the task store `{}` was written by a newer subagent (schema version {found}; this build knows up to {known})\n  = help: upgrade subagent, or pass another --state-dir; the store was left untouched", path.display())]
    Newer {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("the task store `{}` is {what}, not a database file\n  = help: move it aside, or pass another --state-dir", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("the task store `{}` has schema version {found}, older than this build's {known}, and this process may not write it to migrate it\n  = help: run any subagent command once as a user who may write it", path.display())]
    Older {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("task store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no task `{0}` in the store")]
    NotFound(String),
}

/// A task as the store records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub subagent: String,
    pub description: String,
    pub status: TaskStatus,
    pub parent_id: Option<String>,
    pub depth: u32,
    pub key: String,
    pub model: Option<String>,
    pub workspace: String,
    /// The launch request: prompt, write narrowing, readonly, timeout, model.
    pub request: serde_json::Value,
    /// Effective permissions.
    pub permissions: serde_json::Value,
    /// The result, once the task has ended. Listings ([`Store::tasks`])
    /// never read results and leave this `None`; [`Store::task`] fills it.
    pub result: Option<TaskResult>,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    /// The host process that owns (runs) the task.
    pub owner: String,
}

/// Which tasks [`Store::tasks`] returns.
#[derive(Clone, Debug, Default)]
pub struct TaskQuery {
    pub statuses: Vec<TaskStatus>,
    pub subagent: Option<String>,
    pub parent: Option<String>,
    pub limit: Option<usize>,
}

/// A cancel or follow-up message for a task owned by another process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Cancel,
    Send(String),
}

/// How the owner of a task answered a control request. Stored as JSON, so
/// the requesting process reads back a type, not a string to pick apart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ControlOutcome {
    /// Done: the task was asked to stop, or the message is in its inbox.
    Done,
    /// Refused, with the owner's reason (the task ended meanwhile, …).
    Refused { message: String },
}

impl ControlOutcome {
    /// Read a stored outcome; rows written before outcomes were typed said
    /// `ok` or `error: <message>`.
    fn parse(text: &str) -> ControlOutcome {
        serde_json::from_str(text).unwrap_or_else(|_| match text.strip_prefix("error: ") {
            Some(message) => ControlOutcome::Refused {
                message: message.to_owned(),
            },
            None => ControlOutcome::Done,
        })
    }
}

/// One pending control request, as its owner sees it.
#[derive(Clone, Debug)]
pub struct ControlRequest {
    pub id: i64,
    pub task_id: String,
    pub control: Control,
}

/// What a write does; see [`Store::write`].
pub(crate) enum Write {
    InsertTask(Box<TaskRecord>),
    /// An event; `started` and terminal events also update the task row.
    Event(EncodedEvent),
    /// A task's result, as JSON.
    Result {
        id: String,
        json: String,
    },
    Output {
        id: String,
        offset: u64,
        bytes: Vec<u8>,
    },
    Heartbeat {
        host: String,
        at_ms: u64,
    },
    /// A live host process, committed before (or with) its first task.
    RegisterHost {
        id: String,
        pid: u32,
        hostname: String,
        at_ms: u64,
    },
    /// A host that stopped cleanly.
    UnregisterHost {
        id: String,
    },
    ControlDone {
        id: i64,
        outcome: String,
    },
    /// Nothing; its acknowledgement says everything before it is committed.
    Flush,
    /// Delete terminal tasks that ended before `cutoff_ms`.
    Prune {
        cutoff_ms: u64,
    },
}

impl Write {
    /// An event, encoded by the caller so the writer thread only runs SQL.
    pub(crate) fn event(event: &TaskEvent) -> Write {
        let (kind, update) = match &event.kind {
            EventKind::Queued { .. } => ("queued", RowUpdate::None),
            EventKind::Started => ("started", RowUpdate::Started),
            EventKind::Progress { .. } => ("progress", RowUpdate::None),
            EventKind::Log { .. } => ("log", RowUpdate::None),
            EventKind::Output { .. } => ("output", RowUpdate::None),
            EventKind::MessageDelivered { .. } => ("message_delivered", RowUpdate::None),
            EventKind::MessageRead { .. } => ("message_read", RowUpdate::None),
            EventKind::Dropped { .. } => ("dropped", RowUpdate::None),
            EventKind::Terminal { status, .. } => ("terminal", RowUpdate::Ended(status.as_str())),
        };
        Write::Event(EncodedEvent {
            task_id: event.task_id.clone(),
            seq: event.seq,
            at_ms: event.at_ms,
            kind,
            body: serde_json::to_string(event).expect("events serialize"),
            update,
        })
    }

    /// A task's result, encoded by the caller.
    pub(crate) fn result(id: &str, result: &TaskResult) -> Write {
        Write::Result {
            id: id.to_owned(),
            json: serde_json::to_string(result).expect("results serialize"),
        }
    }
}

/// An event as the `events` table stores it.
pub(crate) struct EncodedEvent {
    task_id: String,
    seq: u64,
    at_ms: u64,
    kind: &'static str,
    body: String,
    update: RowUpdate,
}

/// What an event changes in its task's row.
enum RowUpdate {
    None,
    Started,
    Ended(&'static str),
}

struct Op {
    write: Write,
    ack: Option<Box<dyn FnOnce() + Send>>,
}

/// How much the writer has done, for benchmarks and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes in them.
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
    /// Writes this process made that the store no longer took: an outcome
    /// for a task another process had already ended (it found this host
    /// dead after a pause past its lease), or a heartbeat for a host row
    /// that was gone.
    superseded: AtomicU64,
}

/// The task store. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    counters: Arc<Counters>,
    writer: Mutex<mpsc::Sender<Op>>,
    /// For reads and for the few writes that need an answer.
    /// The connection for reads and the few synchronous writes, opened on
    /// first use: a process that only runs tasks (`subagent run`) never
    /// opens it, and parses the schema once, on the writer's connection.
    reader: OnceLock<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    crate::events::now_ms()
}

/// How long a connection waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Switching to WAL needs a moment of exclusive access; while another
    // process creates or recovers the store it can answer "busy" at once.
    let mut attempt = 0;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(err) if is_busy(&err) && attempt < 50 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => return Err(classify(path, err)),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every process that opens the store after the last one left replays
    // the WAL's committed frames to rebuild its index: keep them few. The
    // WAL is folded into the database every 64 pages (256 KiB), and its
    // file cut back to 4 MiB.
    conn.pragma_update(None, "wal_autocheckpoint", 64)?;
    conn.pragma_update(None, "journal_size_limit", 4 << 20)?;
    Ok(conn)
}

/// Delete the terminal tasks that ended before `cutoff` (ms since the
/// epoch), with their events, output and control rows; returns how many.
fn prune_on(tx: &rusqlite::Transaction<'_>, cutoff: u64) -> rusqlite::Result<usize> {
    let ids: Vec<String> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM tasks WHERE status NOT IN ('queued', 'running') AND ended_at_ms IS NOT NULL AND ended_at_ms < ?1",
        )?;
        stmt.query_map(params![cutoff], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in &ids {
        for table in ["events", "output", "control", "results"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE task_id = ?1"),
                params![id],
            )?;
        }
        tx.execute("DELETE FROM tasks WHERE id = ?1", params![id])?;
    }
    Ok(ids.len())
}

/// Mark the unfinished tasks of dead hosts `interrupted` through `conn`.
fn recover_on(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let hosts: Vec<(String, u32, String, u64)> = {
        let mut stmt = tx.prepare("SELECT id, pid, hostname, heartbeat_at_ms FROM hosts")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?
    };
    let here = hostname();
    let now = now_ms();
    let dead: Vec<(String, u32)> = hosts
        .into_iter()
        .filter(|(_, pid, host, beat)| {
            let stale = now.saturating_sub(*beat) > LEASE.as_millis() as u64;
            let gone = *host == here && !pid_alive(*pid);
            stale || gone
        })
        .map(|(id, pid, _, _)| (id, pid))
        .collect();
    let mut recovered = Vec::new();
    {
        let mut orphans = tx.prepare(
            "SELECT id, owner FROM tasks WHERE status IN ('queued', 'running')
             AND (owner NOT IN (SELECT id FROM hosts) OR owner IN (SELECT value FROM json_each(?1)))",
        )?;
        let dead_ids = serde_json::to_string(&dead.iter().map(|(id, _)| id).collect::<Vec<_>>())
            .expect("strings serialize");
        let rows: Vec<(String, String)> = orphans
            .query_map(params![dead_ids], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (id, owner) in rows {
            let pid = dead.iter().find(|(h, _)| *h == owner).map(|(_, pid)| *pid);
            let who = pid.map_or_else(
                || "its host process".to_owned(),
                |pid| format!("host process {pid}"),
            );
            let message = format!(
                "{who} stopped before the task ended (found by process {})",
                std::process::id()
            );
            let result = TaskResult::failure(TaskError::new(ErrorKind::Interrupted, message));
            let seq: u64 = tx.query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM events WHERE task_id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            let event = TaskEvent {
                task_id: id.clone(),
                seq,
                at_ms: now,
                kind: EventKind::Terminal {
                    status: TaskStatus::Interrupted,
                    error: result.error.clone(),
                },
            };
            apply(&tx, &Write::result(&id, &result))?;
            apply(&tx, &Write::event(&event))?;
            recovered.push(id);
        }
    }
    for (id, _) in &dead {
        tx.execute("DELETE FROM hosts WHERE id = ?1", params![id])?;
    }
    tx.commit()?;
    Ok(recovered)
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A store error: corrupt only when SQLite says the file is not (or no
/// longer) a database.
pub(crate) fn classify(path: &Path, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt {
                path: path.to_owned(),
                detail: err.to_string(),
            }
        }
        _ => StoreError::Open {
            path: path.to_owned(),
            source: err,
        },
    }
}

impl Store {
    /// The store in `state_dir` (created if missing): migrate the schema,
    /// mark the unfinished tasks of dead hosts `interrupted`, and start the
    /// writer.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a file that is not a database,
    /// [`StoreError::Newer`] for a schema from a newer build, or an I/O error.
    pub fn open(state_dir: &Path) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|e| io_error(state_dir, e))?;
        let path = state_dir.join(STORE_FILE);
        if let Ok(meta) = std::fs::metadata(&path) {
            refuse_non_file(&path, &meta)?;
        }
        let mut writer_conn = open_connection(&path)?;
        schema::migrate(&writer_conn, &path)?;
        recover_on(&mut writer_conn)?;
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer_counters = counters.clone();
        std::thread::Builder::new()
            .name("subagent-store".into())
            .spawn(move || writer(writer_conn, rx, &writer_counters))
            .map_err(|e| io_error(&path, e))?;
        Ok(Arc::new(Store {
            path,
            counters,
            writer: Mutex::new(tx),
            reader: OnceLock::new(),
        }))
    }

    /// The store in `state_dir` for reading only, by a process that may not
    /// write it (another user's store, a read-only mount): no migration, no
    /// recovery, no writer; a write through it is dropped.
    ///
    /// # Errors
    ///
    /// As [`Store::open`], and [`StoreError::Newer`] or [`StoreError::Older`]
    /// for a schema this build cannot read as it is.
    pub fn open_read_only(state_dir: &Path) -> Result<Arc<Store>, StoreError> {
        let path = state_dir.join(STORE_FILE);
        let meta = std::fs::metadata(&path).map_err(|e| io_error(&path, e))?;
        refuse_non_file(&path, &meta)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        if version != schema::SCHEMA_VERSION {
            return Err(if version > schema::SCHEMA_VERSION {
                StoreError::Newer {
                    path,
                    found: version,
                    known: schema::SCHEMA_VERSION,
                }
            } else {
                StoreError::Older {
                    path,
                    found: version,
                    known: schema::SCHEMA_VERSION,
                }
            });
        }
        // Writes go nowhere: the receiver is gone.
        let (tx, _) = mpsc::channel();
        let reader = OnceLock::new();
        let _ = reader.set(Mutex::new(conn));
        Ok(Arc::new(Store {
            path,
            counters: Arc::new(Counters::default()),
            writer: Mutex::new(tx),
            reader,
        }))
    }

    /// The reading connection, opened now if this is its first use.
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        if self.reader.get().is_none() {
            let conn = open_connection(&self.path)?;
            // Another thread may have opened one meanwhile: either will do.
            let _ = self.reader.set(Mutex::new(conn));
        }
        Ok(self
            .reader
            .get()
            .expect("opened above")
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process lost its hold on the store: another process
    /// found it dead (it was paused or cut off past its lease) and ended its
    /// tasks; what it wrote after that was not taken, so every task keeps
    /// the one outcome the store gave it first.
    pub fn lease_lost(&self) -> bool {
        self.counters.superseded.load(Ordering::Relaxed) > 0
    }

    /// Commits and writes so far in this process.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// Queue a write; `ack` runs on the writer thread once it is committed.
    pub(crate) fn write(&self, write: Write, ack: Option<Box<dyn FnOnce() + Send>>) {
        // The writer lives as long as the store; a send can only fail during teardown.
        let _ = self.writer.lock().unwrap().send(Op { write, ack });
    }

    /// Wait until everything queued so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.write(
            Write::Flush,
            Some(Box::new(move || {
                let _ = tx.send(());
            })),
        );
        let _ = rx.await;
    }

    /// Register a live host process; returns its id. The row is queued: it
    /// commits with (or before) the host's first task, so no task is ever
    /// stored without its host, and starting a host costs no commit of its
    /// own.
    ///
    /// # Errors
    ///
    /// None today; a write that fails is reported as every queued write is.
    pub fn register_host(&self) -> Result<String, StoreError> {
        let id = format!(
            "h-{:x}-{}",
            std::process::id(),
            crate::ids::new_task_id().trim_start_matches("t-")
        );
        self.write(
            Write::RegisterHost {
                id: id.clone(),
                pid: std::process::id(),
                hostname: hostname(),
                at_ms: now_ms(),
            },
            None,
        );
        Ok(id)
    }

    /// Forget a host that stopped cleanly (queued: [`Store::flush`] commits it).
    pub fn unregister_host(&self, host: &str) {
        self.write(
            Write::UnregisterHost {
                id: host.to_owned(),
            },
            None,
        );
    }

    pub(crate) fn heartbeat(&self, host: &str) {
        self.write(
            Write::Heartbeat {
                host: host.to_owned(),
                at_ms: now_ms(),
            },
            None,
        );
    }

    /// Mark the unfinished tasks of dead hosts `interrupted`, each with a
    /// terminal event; returns their ids.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn recover(&self) -> Result<Vec<String>, StoreError> {
        recover_on(&mut *self.conn()?)
    }

    /// Delete terminal tasks that ended more than `older_than` ago, with their
    /// events, output and control rows; returns how many.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn prune(&self, older_than: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pruned = prune_on(&tx, cutoff)?;
        tx.commit()?;
        Ok(pruned)
    }

    /// [`Store::prune`], queued: done by the writer with the next commit, so
    /// a starting host does not wait for it.
    pub fn prune_later(&self, older_than: Duration) {
        let cutoff_ms = now_ms().saturating_sub(older_than.as_millis() as u64);
        self.write(Write::Prune { cutoff_ms }, None);
    }

    /// Tasks matching `query`, newest first.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.conn()?;
        let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if !query.statuses.is_empty() {
            args.push(
                serde_json::to_string(
                    &query
                        .statuses
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>(),
                )
                .expect("strings"),
            );
            sql += &format!(
                " AND status IN (SELECT value FROM json_each(?{}))",
                args.len()
            );
        }
        if let Some(subagent) = &query.subagent {
            args.push(subagent.clone());
            sql += &format!(" AND subagent = ?{}", args.len());
        }
        if let Some(parent) = &query.parent {
            args.push(parent.clone());
            sql += &format!(" AND parent_id = ?{}", args.len());
        }
        sql += " ORDER BY created_at_ms DESC, id DESC";
        if let Some(limit) = query.limit {
            sql += &format!(" LIMIT {limit}");
        }
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), task_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One task.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], or SQL errors.
    pub fn task(&self, id: &str) -> Result<TaskRecord, StoreError> {
        let conn = self.conn()?;
        let mut task = conn
            .query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
                params![id],
                task_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let body: Option<String> = conn
            .query_row(
                "SELECT body FROM results WHERE task_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        // What a run returned is what comes back: a result the store holds
        // but cannot read is damage, said as such, never a missing result.
        task.result = match body {
            None => None,
            Some(body) => Some(
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("the result of task {id} does not parse: {e}"),
                })?,
            ),
        };
        Ok(task)
    }

    /// A task's events with `seq >= from`, in order.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn events(&self, id: &str, from: u64) -> Result<Vec<TaskEvent>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare("SELECT body FROM events WHERE task_id = ?1 AND seq >= ?2 ORDER BY seq")?;
        let rows = stmt.query_map(params![id, from], |r| r.get::<_, String>(0))?;
        let mut events = Vec::new();
        for body in rows {
            let body = body?;
            match serde_json::from_str(&body) {
                Ok(event) => events.push(event),
                Err(e) => {
                    return Err(StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: format!("an event of task {id} does not parse: {e}"),
                    });
                }
            }
        }
        Ok(events)
    }

    /// Up to `max` bytes of a task's output from byte `offset`, and the total
    /// stored so far.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn output(&self, id: &str, offset: u64, max: usize) -> Result<(Vec<u8>, u64), StoreError> {
        let conn = self.conn()?;
        let total: u64 = conn.query_row(
            "SELECT COALESCE(MAX(byte_offset + length(data)), 0) FROM output WHERE task_id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(
            "SELECT byte_offset, data FROM output WHERE task_id = ?1 AND byte_offset + length(data) > ?2 ORDER BY byte_offset",
        )?;
        let mut bytes = Vec::new();
        let mut rows = stmt.query(params![id, offset])?;
        while let Some(row) = rows.next()? {
            let start: u64 = row.get(0)?;
            let data: Vec<u8> = row.get(1)?;
            let skip = offset.saturating_sub(start) as usize;
            bytes.extend_from_slice(&data[skip.min(data.len())..]);
            if bytes.len() >= max {
                bytes.truncate(max);
                break;
            }
        }
        Ok((bytes, total))
    }

    /// Ask the process that owns task `id` to cancel it or deliver a message.
    /// Returns the request's id, to wait for its outcome.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for an unknown task.
    pub fn request_control(&self, id: &str, control: &Control) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        let owner: String = conn
            .query_row("SELECT owner FROM tasks WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let (kind, text) = match control {
            Control::Cancel => ("cancel", None),
            Control::Send(text) => ("send", Some(text.as_str())),
        };
        conn.execute(
            "INSERT INTO control (task_id, owner, kind, text, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, owner, kind, text, now_ms()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The outcome of a control request, once its owner handled it.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn control_outcome(&self, request: i64) -> Result<Option<ControlOutcome>, StoreError> {
        let conn = self.conn()?;
        let text: Option<String> = conn
            .query_row(
                "SELECT outcome FROM control WHERE id = ?1",
                params![request],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(text.as_deref().map(ControlOutcome::parse))
    }

    /// Control requests waiting for `host`.
    pub(crate) fn pending_controls(&self, host: &str) -> Result<Vec<ControlRequest>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id, task_id, kind, text FROM control WHERE owner = ?1 AND outcome IS NULL ORDER BY id")?;
        let rows = stmt.query_map(params![host], |r| {
            let kind: String = r.get(2)?;
            let text: Option<String> = r.get(3)?;
            Ok(ControlRequest {
                id: r.get(0)?,
                task_id: r.get(1)?,
                control: if kind == "cancel" {
                    Control::Cancel
                } else {
                    Control::Send(text.unwrap_or_default())
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn control_done(&self, id: i64, outcome: &ControlOutcome) {
        let outcome = serde_json::to_string(outcome).expect("outcomes serialize");
        self.write(Write::ControlDone { id, outcome }, None);
    }

    /// Whether the host that owns a task is alive.
    ///
    /// # Errors
    ///
    /// SQL errors.
    pub fn owner_alive(&self, owner: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let row: Option<(u32, String, u64)> = conn
            .query_row(
                "SELECT pid, hostname, heartbeat_at_ms FROM hosts WHERE id = ?1",
                params![owner],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.is_some_and(|(pid, host, beat)| {
            now_ms().saturating_sub(beat) <= LEASE.as_millis() as u64
                && (host != hostname() || pid_alive(pid))
        }))
    }
}

const TASK_COLUMNS: &str = "id, subagent, description, status, parent_id, depth, key, model, workspace, request, permissions, created_at_ms, started_at_ms, ended_at_ms, owner";

fn task_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRecord> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let text: String = r.get(i)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    let status: String = r.get(3)?;
    Ok(TaskRecord {
        id: r.get(0)?,
        subagent: r.get(1)?,
        description: r.get(2)?,
        status: serde_json::from_value(serde_json::Value::String(status))
            .unwrap_or(TaskStatus::Interrupted),
        parent_id: r.get(4)?,
        depth: r.get(5)?,
        key: r.get(6)?,
        model: r.get(7)?,
        workspace: r.get(8)?,
        request: json(9)?,
        permissions: json(10)?,
        result: None,
        created_at_ms: r.get(11)?,
        started_at_ms: r.get(12)?,
        ended_at_ms: r.get(13)?,
        owner: r.get(14)?,
    })
}

/// Apply one write inside a transaction.
/// An I/O failure opening the store at `path`.
fn io_error(path: &Path, err: std::io::Error) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        source: rusqlite::Error::ToSqlConversionFailure(Box::new(err)),
    }
}

/// Refuse a store path that is not a regular file, saying what it is.
fn refuse_non_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), StoreError> {
    if meta.is_file() {
        return Ok(());
    }
    Err(StoreError::NotAFile {
        path: path.to_owned(),
        what: if meta.is_dir() {
            "a directory"
        } else {
            "a special file"
        },
    })
}

/// Whether task `id` has ended in the store.
fn task_ended(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM tasks WHERE id = ?1 AND status NOT IN ('queued', 'running')",
        )?
        .exists(params![id])?)
}

/// Apply one write inside a transaction; returns whether the store still
/// took it (false: a task's outcome or event after another process had
/// ended the task, a heartbeat for a host it had found dead).
fn apply(tx: &rusqlite::Transaction<'_>, write: &Write) -> rusqlite::Result<bool> {
    match write {
        Write::InsertTask(t) => {
            tx.prepare_cached("INSERT INTO tasks (id, subagent, description, status, parent_id, depth, key, model, workspace, request, permissions, created_at_ms, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")?.execute(
                params![
                    t.id,
                    t.subagent,
                    t.description,
                    t.status.as_str(),
                    t.parent_id,
                    t.depth,
                    t.key,
                    t.model,
                    t.workspace,
                    t.request.to_string(),
                    t.permissions.to_string(),
                    t.created_at_ms,
                    t.owner
                ],
            )?;
        }
        Write::Event(event) => {
            // Only a live task gets events: one another process has ended
            // keeps the one outcome it was given.
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (task_id, seq, at_ms, type, body)
                     SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS
                       (SELECT 1 FROM tasks WHERE id = ?1 AND status IN ('queued', 'running'))",
                )?
                .execute(params![
                    event.task_id,
                    event.seq,
                    event.at_ms,
                    event.kind,
                    event.body
                ])?;
            match event.update {
                RowUpdate::None => {}
                RowUpdate::Started => {
                    tx.prepare_cached("UPDATE tasks SET status = 'running', started_at_ms = ?2 WHERE id = ?1 AND status = 'queued'")?
                        .execute(params![event.task_id, event.at_ms])?;
                }
                RowUpdate::Ended(status) => {
                    let ended = tx
                        .prepare_cached(
                            "UPDATE tasks SET status = ?2, ended_at_ms = ?3 WHERE id = ?1 AND status IN ('queued', 'running')",
                        )?
                        .execute(params![event.task_id, status, event.at_ms])?;
                    return Ok(inserted == 1 && ended == 1);
                }
            }
            return Ok(inserted == 1 || !task_ended(tx, &event.task_id)?);
        }
        Write::Result { id, json } => {
            let kept = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO results (task_id, body)
                     SELECT ?1, ?2 WHERE EXISTS
                       (SELECT 1 FROM tasks WHERE id = ?1 AND status IN ('queued', 'running'))",
                )?
                .execute(params![id, json])?;
            return Ok(kept == 1);
        }
        Write::Output { id, offset, bytes } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO output (task_id, byte_offset, data) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, offset, bytes])?;
        }
        Write::RegisterHost {
            id,
            pid,
            hostname,
            at_ms,
        } => {
            tx.prepare_cached("INSERT INTO hosts (id, pid, hostname, started_at_ms, heartbeat_at_ms) VALUES (?1, ?2, ?3, ?4, ?4)")?
                .execute(params![id, pid, hostname, at_ms])?;
        }
        Write::UnregisterHost { id } => {
            tx.prepare_cached("DELETE FROM hosts WHERE id = ?1")?
                .execute(params![id])?;
        }
        Write::Heartbeat { host, at_ms } => {
            let beat = tx
                .prepare_cached("UPDATE hosts SET heartbeat_at_ms = ?2 WHERE id = ?1")?
                .execute(params![host, at_ms])?;
            return Ok(beat == 1);
        }
        Write::ControlDone { id, outcome } => {
            tx.prepare_cached("UPDATE control SET outcome = ?2, handled_at_ms = ?3 WHERE id = ?1")?
                .execute(params![id, outcome, now_ms()])?;
        }
        Write::Flush => {}
        Write::Prune { cutoff_ms } => {
            prune_on(tx, *cutoff_ms)?;
        }
    }
    Ok(true)
}

/// The writer thread: take every queued write, commit them in one
/// transaction, then acknowledge them in order.
fn writer(mut conn: Connection, rx: mpsc::Receiver<Op>, counters: &Counters) {
    const MAX_BATCH: usize = 4096;
    // Under load (the last batch held more than one write), wait a moment
    // for more writes before committing: each commit costs an fsync.
    const LINGER: Duration = Duration::from_micros(500);
    let drain = |batch: &mut Vec<Op>| {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
    };
    let mut last_batch = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        drain(&mut batch);
        if last_batch > 1 && batch.len() < MAX_BATCH / 8 {
            std::thread::sleep(LINGER);
            drain(&mut batch);
        }
        last_batch = batch.len();
        let mut attempt = 0;
        loop {
            let result = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut refused = 0;
                for op in &batch {
                    if !apply(&tx, &op.write)? {
                        refused += 1;
                    }
                }
                tx.commit().map(|()| refused)
            })();
            match result {
                Ok(refused) => {
                    if refused > 0 {
                        counters.superseded.fetch_add(refused, Ordering::Relaxed);
                    }
                    counters.commits.fetch_add(1, Ordering::Relaxed);
                    counters
                        .writes
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    break;
                }
                Err(err) if attempt < 5 => {
                    attempt += 1;
                    eprintln!(
                        "subagent: task store write failed (attempt {attempt}), retrying: {err}"
                    );
                    std::thread::sleep(Duration::from_millis(50 << attempt));
                }
                Err(err) => {
                    // Never leave a task hanging: report on, and say loudly
                    // that this batch is not durable.
                    eprintln!(
                        "subagent: task store write failed, {} writes are not durable: {err}",
                        batch.len()
                    );
                    break;
                }
            }
        }
        for op in batch {
            if let Some(ack) = op.ack {
                ack();
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Whether a process with this pid runs on this machine. Where that cannot
/// be told (no /proc), assume it does and rely on the heartbeat lease.
fn pid_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; it only waits for its parent to reap it.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The state directory: `--state-dir`, else `$XDG_STATE_HOME/subagent`,
/// else `~/.local/state/subagent`.
pub fn state_dir(arg: Option<&Path>) -> Option<PathBuf> {
    arg.map(Path::to_owned).or_else(crate::paths::state_dir)
}

#[cfg(test)]
mod tests {
    use super::ControlOutcome;

    #[test]
    fn control_outcomes_read_back_as_written() {
        let refused = ControlOutcome::Refused {
            message: "task `t-1` is not running (it is completed)".into(),
        };
        for outcome in [ControlOutcome::Done, refused] {
            let text = serde_json::to_string(&outcome).unwrap();
            assert_eq!(ControlOutcome::parse(&text), outcome, "{text}");
        }
        // Rows written before outcomes were typed.
        assert_eq!(ControlOutcome::parse("ok"), ControlOutcome::Done);
        assert_eq!(
            ControlOutcome::parse("error: gone"),
            ControlOutcome::Refused {
                message: "gone".into()
            }
        );
    }
}
