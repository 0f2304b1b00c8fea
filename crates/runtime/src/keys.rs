//! API keys: minting, hashing and verification.
//!
//! A token is `rez_<26-char ULID>_<43-char secret>`; the ULID names the stored record,
//! and the store keeps SHA-256(token). Tokens carry 256 bits of randomness, so a fast
//! hash is the right tool (a password KDF buys nothing here). Hashes are compared in
//! constant time. Verified records are cached for [`CACHE_TTL`] so the hot path does
//! not read the database on every request; a revocation takes effect within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use rez_core::auth::{ApiKeyId, ApiKeyRecord, Scope};
use rez_core::clock::Clock;
use rez_core::ports::{ApiKeyStore, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const CACHE_TTL: Duration = Duration::from_secs(5);
const TOKEN_PREFIX: &str = "rez_";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `None` for the `REZ_API_KEY` admin key.
    pub key_id: Option<ApiKeyId>,
    pub scope: Scope,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("API key has been revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The bearer token of an `Authorization` header, if there is a non-empty one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A freshly minted key: the token is shown once, the record is stored.
pub struct MintedKey {
    pub token: String,
    pub record: ApiKeyRecord,
}

/// Make a new key. The caller stores `record` and shows `token` once.
pub fn mint(name: &str, scope: Scope, clock: &dyn Clock) -> MintedKey {
    let now = clock.now();
    let id = ApiKeyId::new(now);
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let ulid = &id.as_str()[ApiKeyId::PREFIX.len() + 1..];
    let token = format!("{TOKEN_PREFIX}{ulid}_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let record =
        ApiKeyRecord { id, name: name.to_owned(), scope, hash: hash(&token), created_date: now, revoked_date: None };
    MintedKey { token, record }
}

/// The key id a token claims, if it is shaped like one of ours.
fn claimed_id(token: &str) -> Option<ApiKeyId> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (ulid, secret) = rest.split_once('_')?;
    if secret.len() != 43 {
        return None;
    }
    ApiKeyId::parse(&format!("{}_{ulid}", ApiKeyId::PREFIX)).ok()
}

#[derive(Clone)]
pub struct KeyVerifier {
    store: Arc<dyn ApiKeyStore>,
    admin_hash: Option<[u8; 32]>,
    cache: Arc<Mutex<HashMap<ApiKeyId, (ApiKeyRecord, Instant)>>>,
    clock: Arc<dyn Clock>,
}

impl KeyVerifier {
    pub fn new(store: Arc<dyn ApiKeyStore>, admin_key: Option<String>, clock: Arc<dyn Clock>) -> Self {
        Self { store, admin_hash: admin_key.filter(|k| !k.is_empty()).map(|k| hash(&k)), cache: Arc::default(), clock }
    }

    pub fn store(&self) -> &Arc<dyn ApiKeyStore> {
        &self.store
    }

    /// Create and store a key; returns the token (to be shown once) and the record.
    pub async fn create(&self, name: &str, scope: Scope) -> Result<MintedKey, StoreError> {
        let minted = mint(name, scope, &*self.clock);
        self.store.insert(&minted.record).await?;
        Ok(minted)
    }

    /// Check a bearer token.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let presented = hash(token);
        if let Some(admin) = &self.admin_hash
            && bool::from(admin.ct_eq(&presented))
        {
            return Ok(Principal { key_id: None, scope: Scope::Admin });
        }
        let id = claimed_id(token).ok_or(AuthError::Invalid)?;
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(&id).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(r, _)| r.clone())
        };
        let record = match cached {
            Some(r) => r,
            None => {
                let r = self.store.get_key(&id).await?.ok_or(AuthError::Invalid)?;
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(id.clone(), (r.clone(), Instant::now()));
                r
            }
        };
        if !bool::from(record.hash.ct_eq(&presented)) {
            return Err(AuthError::Invalid);
        }
        if record.revoked_date.is_some() {
            return Err(AuthError::Revoked);
        }
        Ok(Principal { key_id: Some(record.id), scope: record.scope })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_to_their_id() {
        let m = mint("t", Scope::Read, &rez_core::clock::SystemClock);
        assert!(m.token.starts_with("rez_"));
        assert_eq!(claimed_id(&m.token), Some(m.record.id.clone()));
        assert_eq!(m.record.hash, hash(&m.token));
        assert_eq!(claimed_id("rez_nope"), None);
        assert_eq!(claimed_id(&m.token[..m.token.len() - 1]), None);
    }
}
