//! The store's schema, versioned with `PRAGMA user_version`, and its
//! migrations: migration `n` takes a store from version `n` to `n + 1`.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Migrations in order; the schema version is how many have been applied.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: tasks, events, output, control requests, live hosts.
    "CREATE TABLE tasks (
        id            TEXT PRIMARY KEY,
        subagent      TEXT NOT NULL,
        description   TEXT NOT NULL,
        status        TEXT NOT NULL,
        parent_id     TEXT,
        depth         INTEGER NOT NULL,
        key           TEXT NOT NULL,
        model         TEXT,
        workspace     TEXT NOT NULL,
        request       TEXT NOT NULL,
        permissions   TEXT NOT NULL,
        result        TEXT,
        created_at_ms INTEGER NOT NULL,
        started_at_ms INTEGER,
        ended_at_ms   INTEGER,
        owner         TEXT NOT NULL
    );
    CREATE INDEX tasks_by_status ON tasks (status);
    CREATE INDEX tasks_by_parent ON tasks (parent_id);
    CREATE INDEX tasks_by_created ON tasks (created_at_ms);
    CREATE TABLE events (
        task_id TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        at_ms   INTEGER NOT NULL,
        type    TEXT NOT NULL,
        body    TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE output (
        task_id     TEXT NOT NULL,
        byte_offset INTEGER NOT NULL,
        data        BLOB NOT NULL,
        PRIMARY KEY (task_id, byte_offset)
    ) WITHOUT ROWID;
    CREATE TABLE control (
        id            INTEGER PRIMARY KEY,
        task_id       TEXT NOT NULL,
        owner         TEXT NOT NULL,
        kind          TEXT NOT NULL,
        text          TEXT,
        created_at_ms INTEGER NOT NULL,
        handled_at_ms INTEGER,
        outcome       TEXT
    );
    CREATE INDEX control_pending ON control (owner, outcome);
    CREATE TABLE hosts (
        id              TEXT PRIMARY KEY,
        pid             INTEGER NOT NULL,
        hostname        TEXT NOT NULL,
        started_at_ms   INTEGER NOT NULL,
        heartbeat_at_ms INTEGER NOT NULL
    );",
    // 1 -> 2: results move to a table of their own, so a listing of tasks
    // never reads one (a result may be megabytes).
    "CREATE TABLE results (
        task_id TEXT PRIMARY KEY,
        body    TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO results (task_id, body) SELECT id, result FROM tasks WHERE result IS NOT NULL;
    ALTER TABLE tasks DROP COLUMN result;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Bring the store at `path` up to [`SCHEMA_VERSION`], refusing a newer one.
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| super::classify(path, e);
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(corrupt)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: path.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version as usize == MIGRATIONS.len() {
        // Current: nothing to do. Damage deeper than the header shows as a
        // corrupt-database error where a query meets it, and is reported so.
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // Each step and its version bump commit together; a concurrent
        // opener waits on the write lock, then sees the new version.
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            from + 1
        ))
        .or_else(|err| {
            let _ = conn.execute_batch("ROLLBACK");
            let now: u32 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap_or(0);
            // Another process migrated first: that is fine.
            if now > from as u32 { Ok(()) } else { Err(err) }
        })
        .map_err(corrupt)?;
    }
    // After a migration, a real check that the file is a healthy database,
    // not just a header (on every open it would cost a read of the whole file).
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(corrupt)?;
    if check != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: check,
        });
    }
    Ok(())
}
