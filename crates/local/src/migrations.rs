//! Versioned schema migrations, tracked in `PRAGMA user_version`. Each migration runs in
//! its own transaction; a database newer than this build is refused rather than touched.

use std::path::Path;

use rusqlite::Connection;

use crate::db::DbError;

/// Migrations in order; index + 1 is the version they bring the schema to.
const MIGRATIONS: &[&str] = &[
    // 1: messages, idempotency keys, queues, inbox, API keys, process leases.
    r#"
    CREATE TABLE messages (
        id              TEXT PRIMARY KEY,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL,
        created_by      TEXT NOT NULL,
        stage           TEXT NOT NULL,
        message_type    TEXT NOT NULL,
        status          TEXT NOT NULL,
        idempotency_key TEXT,
        retry_count     INTEGER NOT NULL DEFAULT 0,
        error_message   TEXT,
        version         TEXT NOT NULL,
        payload         TEXT NOT NULL,
        arguments       TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX messages_by_status ON messages(status, id);
    CREATE INDEX messages_by_type ON messages(message_type, id);

    CREATE TABLE idempotency_keys (
        key        TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_ms);

    -- One row per message per queue. `queue` is a queue or a DLQ name.
    -- Waiting: receipt IS NULL. In flight: receipt set, visible_ms = end of visibility.
    CREATE TABLE queue_items (
        queue            TEXT NOT NULL,
        message_id       TEXT NOT NULL,
        source_queue     TEXT NOT NULL,
        visible_ms       INTEGER NOT NULL,
        enqueued_ms      INTEGER NOT NULL,
        receive_count    INTEGER NOT NULL DEFAULT 0,
        receipt          TEXT,
        owner            TEXT,
        last_error       TEXT,
        dead_lettered_ms INTEGER,
        PRIMARY KEY (queue, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX queue_items_by_visibility ON queue_items(queue, visible_ms);
    CREATE INDEX queue_items_by_owner ON queue_items(owner) WHERE owner IS NOT NULL;
    CREATE INDEX queue_items_by_message ON queue_items(message_id);

    CREATE TABLE inbox (
        message_id   TEXT PRIMARY KEY,
        notification TEXT NOT NULL,
        state        TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        last_error   TEXT,
        push_id      TEXT,
        created_ms   INTEGER NOT NULL,
        delivered_ms INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX inbox_by_state ON inbox(state, message_id);

    CREATE TABLE api_keys (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        scope      TEXT NOT NULL,
        hash       BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    ) WITHOUT ROWID;

    -- Live processes. In-flight work of a process whose heartbeat stops is redelivered.
    CREATE TABLE instances (
        id           TEXT PRIMARY KEY,
        pid          INTEGER NOT NULL,
        started_ms   INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: schedules (the whole definition as JSON, plus the columns the engine indexes)
    //    and the engine lease.
    r#"
    CREATE TABLE schedules (
        id          TEXT PRIMARY KEY,
        version     INTEGER NOT NULL,
        status      TEXT NOT NULL,
        target_type TEXT NOT NULL,
        due_ms      INTEGER,
        body        TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX schedules_by_due ON schedules(due_ms) WHERE due_ms IS NOT NULL;
    CREATE INDEX schedules_by_status ON schedules(status, id);

    CREATE TABLE engine_leases (
        name       TEXT PRIMARY KEY,
        owner      TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 3: web-action results (expiring) and the golf booking ledger.
    r#"
    CREATE TABLE results (
        id         TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        body       TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX results_by_message ON results(message_id, id);
    CREATE INDEX results_by_expiry ON results(expires_ms);

    -- One row per booking key (derived from the message id): the intent recorded before
    -- reserving and the confirmation after, so a booking happens exactly once.
    CREATE TABLE booking_ledger (
        key          TEXT PRIMARY KEY,
        state        TEXT NOT NULL,
        intent       TEXT,
        confirmation TEXT,
        error        TEXT,
        updated_ms   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 4: secrets, sealed with XChaCha20-Poly1305 under the master key (see secrets.rs);
    //    only names and dates are in the clear.
    r#"
    CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        nonce      BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 5: no index on queue_items(message_id) alone. Every message paid an insert and a
    //    delete in it; the two rare lookups by message id (retry, DLQ delete) seek the
    //    primary key once per queue instead (`queues::ANY_QUEUE`).
    r#"
    DROP INDEX queue_items_by_message;
    "#,
    // 6: the status indexes leave out the state almost every row ends in (`completed`;
    //    `delivered` and `inbox_only` in the inbox). They held every message ever kept,
    //    and each message paid an index insert for its final state. A list filtered on
    //    the final state walks the table newest first instead, where nearly every row
    //    matches; the other states stay one index seek away. The OR lists (not `<>`)
    //    are what lets SQLite prove that `status = 'failed'` may use the index.
    r#"
    DROP INDEX messages_by_status;
    CREATE INDEX messages_by_status ON messages(status, id)
        WHERE status = 'created' OR status = 'queued' OR status = 'processing'
           OR status = 'failed' OR status = 'dead_lettered';
    DROP INDEX inbox_by_state;
    CREATE INDEX inbox_by_state ON inbox(state, message_id)
        WHERE state = 'pending' OR state = 'failed';
    "#,
    // 7: a pending booking is owned by one attempt under a lease, and keeps the progress
    //    of the search for an uncertain reserve (see booking.rs).
    r#"
    ALTER TABLE booking_ledger ADD COLUMN lease_attempt TEXT;
    ALTER TABLE booking_ledger ADD COLUMN lease_until_ms INTEGER;
    ALTER TABLE booking_ledger ADD COLUMN verification TEXT;
    "#,
    // 8: the agent's runs, their steps and chat sessions (agent.rs), and the budget
    //    ledger (budget.rs). A run and a step are JSON documents; the columns beside them
    //    are what listing filters on. Money is whole nanodollars.
    r#"
    CREATE TABLE agent_runs (
        id          TEXT PRIMARY KEY,
        status      TEXT NOT NULL,
        schedule_id TEXT,
        session_id  TEXT,
        doc         TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX agent_runs_by_status ON agent_runs(status, id);
    CREATE INDEX agent_runs_by_schedule ON agent_runs(schedule_id, id) WHERE schedule_id IS NOT NULL;
    CREATE INDEX agent_runs_by_session ON agent_runs(session_id, id) WHERE session_id IS NOT NULL;
    CREATE TABLE agent_steps (
        run_id TEXT NOT NULL,
        idx    INTEGER NOT NULL,
        doc    TEXT NOT NULL,
        PRIMARY KEY (run_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE agent_sessions (
        id         TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE agent_exchanges (
        session_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        run_id     TEXT NOT NULL,
        doc        TEXT NOT NULL,
        PRIMARY KEY (session_id, seq),
        UNIQUE (session_id, run_id)
    ) WITHOUT ROWID;
    CREATE TABLE budget_days (
        day       TEXT PRIMARY KEY,
        committed INTEGER NOT NULL,
        spent     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE budget_runs (
        run_id    TEXT PRIMARY KEY,
        committed INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE budget_reservations (
        run_id TEXT NOT NULL,
        step   INTEGER NOT NULL,
        day    TEXT NOT NULL,
        model  TEXT NOT NULL,
        amount INTEGER NOT NULL,
        actual INTEGER,
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    CREATE TABLE budget_spend (
        day                TEXT NOT NULL,
        model              TEXT NOT NULL,
        calls              INTEGER NOT NULL,
        input_tokens       INTEGER NOT NULL,
        output_tokens      INTEGER NOT NULL,
        cache_read_tokens  INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        cost               INTEGER NOT NULL,
        PRIMARY KEY (day, model)
    ) WITHOUT ROWID;
    "#,
    // 9: approvals an agent run waits for. The token hashes live in their own columns,
    // never in the document the API serves.
    r#"
    CREATE TABLE approvals (
        id           TEXT PRIMARY KEY,
        run_id       TEXT NOT NULL,
        step         INTEGER NOT NULL,
        state        TEXT NOT NULL,
        approve_hash TEXT NOT NULL,
        decline_hash TEXT NOT NULL,
        doc          TEXT NOT NULL,
        UNIQUE (run_id, step)
    ) WITHOUT ROWID;
    CREATE INDEX approvals_by_state ON approvals(state, id);
    "#,
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

pub fn run(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    let current: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| DbError::Migration { version: 0, source })?;
    if current > LATEST {
        return Err(DbError::TooNew { path: path.to_owned(), found: current, known: LATEST });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as u32 + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(|source| DbError::Migration { version, source })?;
        // Re-check under the lock: another process may have migrated meanwhile.
        let now: u32 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|source| DbError::Migration { version, source })?;
        if now >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(|source| DbError::Migration { version, source })?;
        tx.pragma_update(None, "user_version", version).map_err(|source| DbError::Migration { version, source })?;
        tx.commit().map_err(|source| DbError::Migration { version, source })?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}
