//! Row ↔ domain conversions shared by the adapters.

use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use rez_core::MessageId;
use rez_core::message::{CreatedBy, IdempotencyKey, Message, MessageType, Stage};
use rez_core::ports::{StoreError, StoreResult};
use rez_core::status::Status;
use rez_core::time::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::db::sql;

pub const MESSAGE_COLUMNS: &str = "id, created_ms, updated_ms, created_by, stage, message_type, status, \
     idempotency_key, retry_count, error_message, version, payload, arguments";

/// Hot statements, spelled out once: `prepare_cached` looks statements up by their text,
/// and formatting it at every call cost the writer thread an allocation per message.
static LOAD_MESSAGE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"));
static INSERT_MESSAGE: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)")
});

pub fn ts(ms: i64) -> StoreResult<Timestamp> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {ms}")))
}

fn corrupt(what: &str, raw: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} `{raw}`"))
}

/// Decode a row selected with [`MESSAGE_COLUMNS`], starting at column `base`.
pub fn message_from_row(row: &Row<'_>, base: usize) -> StoreResult<Message> {
    let get_s = |i: usize| row.get::<_, String>(base + i).map_err(sql);
    let id = get_s(0)?;
    let created_by = get_s(3)?;
    let stage = get_s(4)?;
    let mtype = get_s(5)?;
    let status = get_s(6)?;
    let key: Option<String> = row.get(base + 7).map_err(sql)?;
    let payload = get_s(11)?;
    let arguments = get_s(12)?;
    Ok(Message {
        id: MessageId::parse(&id).map_err(|_| corrupt("message id", &id))?,
        created_date: ts(row.get(base + 1).map_err(sql)?)?,
        updated_date: ts(row.get(base + 2).map_err(sql)?)?,
        created_by: CreatedBy::parse(&created_by).ok_or_else(|| corrupt("created_by", &created_by))?,
        stage: Stage::parse(&stage).ok_or_else(|| corrupt("stage", &stage))?,
        message_type: MessageType::parse(&mtype).ok_or_else(|| corrupt("message_type", &mtype))?,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        idempotency_key: key
            .map(|k| IdempotencyKey::parse(&k).map_err(|_| corrupt("idempotency key", &k)))
            .transpose()?,
        retry_count: row.get(base + 8).map_err(sql)?,
        error_message: row.get(base + 9).map_err(sql)?,
        version: get_s(10)?,
        payload: serde_json::from_str(&payload).map_err(|_| corrupt("payload", &payload))?,
        arguments: serde_json::from_str(&arguments).map_err(|_| corrupt("arguments", &arguments))?,
    })
}

pub fn load_message(conn: &Connection, id: &str) -> StoreResult<Option<Message>> {
    let mut stmt = conn.prepare_cached(&LOAD_MESSAGE).map_err(sql)?;
    let row = stmt.query_row([id], |r| Ok(message_from_row(r, 0))).optional().map_err(sql)?;
    row.transpose()
}

/// A JSON object column, encoded.
pub fn json_object(map: &serde_json::Map<String, serde_json::Value>) -> StoreResult<String> {
    serde_json::to_string(map).map_err(|e| StoreError::Corrupt(format!("json: {e}")))
}

/// Insert a new message whose `payload` and `arguments` are already encoded (by
/// [`json_object`]), so the encoding can happen off the writer thread.
pub fn insert_message_encoded(conn: &Connection, m: &Message, payload: &str, arguments: &str) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(&INSERT_MESSAGE).map_err(sql)?;
    stmt.execute(rusqlite::params![
        m.id.as_str(),
        m.created_date.timestamp_millis(),
        m.updated_date.timestamp_millis(),
        m.created_by.as_str(),
        m.stage.as_str(),
        m.message_type.as_str(),
        m.status.as_str(),
        m.idempotency_key.as_ref().map(|k| k.as_str()),
        m.retry_count,
        m.error_message,
        m.version,
        payload,
        arguments,
    ])
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(format!("message {} already exists", m.id))
        }
        e => sql(e),
    })?;
    Ok(())
}

/// Move a message to `to` through the state machine and persist status, error and time.
/// `bump_retry` increments `retry_count`.
pub fn set_status(
    conn: &Connection,
    m: &mut Message,
    to: Status,
    error: Option<&str>,
    bump_retry: bool,
    now: Timestamp,
) -> StoreResult<()> {
    m.status = m.status.transition(to)?;
    if let Some(e) = error {
        m.error_message = Some(e.to_owned());
    }
    if bump_retry {
        m.retry_count += 1;
    }
    m.updated_date = now;
    let mut stmt = conn
        .prepare_cached(
            "UPDATE messages SET status = ?2, error_message = ?3, retry_count = ?4, updated_ms = ?5 WHERE id = ?1",
        )
        .map_err(sql)?;
    stmt.execute(rusqlite::params![
        m.id.as_str(),
        m.status.as_str(),
        m.error_message,
        m.retry_count,
        now.timestamp_millis()
    ])
    .map_err(sql)?;
    Ok(())
}
