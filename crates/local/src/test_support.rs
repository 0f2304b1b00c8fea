//! Helpers for the crate's unit tests: a migrated database and its query plans, so that
//! the index choices the code relies on are checked where the queries are written.

use std::path::Path;

use rusqlite::{Connection, Params};

/// A connection to a fresh database in `dir`, migrated to the latest schema.
pub fn migrated(dir: &Path) -> Connection {
    let path = dir.join("rez.db");
    let mut conn = Connection::open(&path).expect("open");
    crate::migrations::run(&mut conn, &path).expect("migrate");
    conn
}

/// SQLite's plan for `sql` (the detail column of `EXPLAIN QUERY PLAN`), one line a step.
pub fn query_plan(conn: &Connection, sql: &str, params: impl Params) -> Vec<String> {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("plan")
        .query_map(params, |r| r.get::<_, String>(3))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("plan rows")
}
