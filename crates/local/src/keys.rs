//! API keys on SQLite. Only hashes are stored.

use async_trait::async_trait;
use rez_core::auth::{ApiKeyId, ApiKeyRecord, Scope};
use rez_core::ports::{ApiKeyStore, StoreError, StoreResult};
use rez_core::time::Timestamp;
use rusqlite::{OptionalExtension, Row};

use crate::LocalStore;
use crate::codec::ts;
use crate::db::sql;

fn record(r: &Row<'_>) -> StoreResult<ApiKeyRecord> {
    let id: String = r.get(0).map_err(sql)?;
    let scope: String = r.get(2).map_err(sql)?;
    let hash: Vec<u8> = r.get(3).map_err(sql)?;
    Ok(ApiKeyRecord {
        id: ApiKeyId::parse(&id).map_err(|_| StoreError::Corrupt(format!("key id {id}")))?,
        name: r.get(1).map_err(sql)?,
        scope: Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("scope {scope}")))?,
        hash: hash.try_into().map_err(|_| StoreError::Corrupt(format!("hash of key {id}")))?,
        created_date: ts(r.get(4).map_err(sql)?)?,
        revoked_date: r.get::<_, Option<i64>>(5).map_err(sql)?.map(ts).transpose()?,
    })
}

const COLUMNS: &str = "id, name, scope, hash, created_ms, revoked_ms";

#[async_trait]
impl ApiKeyStore for LocalStore {
    async fn insert(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let k = key.clone();
        self.db
            .write(move |ctx| {
                ctx.tx
                    .execute(
                        &format!("INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                        rusqlite::params![
                            k.id.as_str(),
                            k.name,
                            k.scope.as_str(),
                            k.hash.as_slice(),
                            k.created_date.timestamp_millis(),
                            k.revoked_date.map(|t| t.timestamp_millis())
                        ],
                    )
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn get_key(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"))
                    .map_err(sql)?
                    .query_row([id], |r| Ok(record(r)))
                    .optional()
                    .map_err(sql)?
                    .transpose()
            })
            .await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id")).map_err(sql)?;
                let mut rows = stmt.query([]).map_err(sql)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    out.push(record(r)?);
                }
                Ok(out)
            })
            .await
    }

    async fn revoke(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<bool> {
        let id = id.to_string();
        self.db
            .write(move |ctx| {
                let n = ctx
                    .tx
                    .execute(
                        "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                        rusqlite::params![id, at.timestamp_millis()],
                    )
                    .map_err(sql)?;
                Ok(n > 0)
            })
            .await
    }
}
