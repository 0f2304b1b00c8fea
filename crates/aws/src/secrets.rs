//! Secrets Manager as the [`SecretStore`], behind a TTL cache.
//!
//! # Naming
//!
//! The port's names (`[a-z0-9_./-]{1,128}`, e.g. `golf/birdsfoot`) live under the
//! stage's prefix ([`Names::secrets_prefix`], `rez/<stage>/`): `golf/birdsfoot` is the
//! Secrets Manager secret `rez/dev/golf/birdsfoot`. A bad name is refused with
//! `StoreError::Conflict`, as locally. Listing asks Secrets Manager for the prefix and
//! also filters on it here (the service's name filter is a word/prefix match), so only
//! this stage's secrets are ever listed, by their port name, never with values.
//!
//! # Semantics (mirroring `rez-local`)
//!
//! - `get_secret`: the `AWSCURRENT` string value; `None` if the secret does not exist,
//!   has no value yet (a secret the template created empty) or is scheduled for deletion.
//!   A binary-only secret is `StoreError::Corrupt` (the value is never shown).
//! - `put_secret`: `DescribeSecret`, then `PutSecretValue`, or `CreateSecret` when the
//!   secret does not exist. A secret someone scheduled for deletion (console, CLI) is
//!   restored first: putting a value means "this secret exists".
//! - `delete_secret`: **immediate and unrecoverable** (`ForceDeleteWithoutRecovery`),
//!   like the local store, so a deleted name reads as absent and can be put again at once,
//!   with no 7–30-day "scheduled for deletion" limbo in which get and put would fail.
//!   Returns whether a live secret existed (checked with `DescribeSecret`, since a forced
//!   delete of a missing secret succeeds). On AWS the forced delete completes
//!   asynchronously; a put in the next few seconds can be refused, which surfaces as the
//!   retryable `StoreError::Unavailable`. A secret that the stack template owns should
//!   be updated with a put, not deleted.
//!
//! # Cache
//!
//! A Lambda instance serves many invocations, so values (and absences) are cached per
//! name for a TTL ([`DEFAULT_TTL`], 5 minutes; `with_ttl`, zero disables it): a warm
//! invocation does not call Secrets Manager. `put_secret` and `delete_secret` invalidate
//! the name in this instance; other instances see a change when their entry expires.
//! A fetch that raced with a put or delete is not cached (a generation counter), so this
//! instance never caches a value older than its own last write.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use rez_core::ports::{SecretInfo, SecretStore, SecretValue, StoreError, StoreResult};
use rez_core::time::Timestamp;
use tokio::time::Instant;

use crate::error::backend;
use crate::{Clients, Names};

/// How long a value read from Secrets Manager is served from memory.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Longest port secret name.
pub const MAX_SECRET_NAME_LEN: usize = 128;

/// Is `name` a valid port secret name (`[a-z0-9_./-]{1,128}`)?
pub fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECRET_NAME_LEN
        && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b'-'))
}

fn checked(name: &str) -> StoreResult<()> {
    if is_valid_secret_name(name) {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("invalid secret name `{name}`: use [a-z0-9_./-]{{1,128}}")))
    }
}

/// A per-key cache whose entries expire `ttl` after they were fetched. Time is tokio's,
/// so tests can pause it.
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    state: Mutex<CacheState<V>>,
}

struct CacheState<V> {
    /// Bumped by every invalidation; a fetch that started in an older generation is not
    /// stored.
    generation: u64,
    entries: HashMap<String, (Instant, V)>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, state: Mutex::new(CacheState { generation: 0, entries: HashMap::new() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState<V>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value of `key` if fetched less than `ttl` ago, else `fetch()` (stored
    /// unless an invalidation happened meanwhile). Errors are not cached.
    pub(crate) async fn get_or_fetch<E, F, Fut>(&self, key: &str, fetch: F) -> Result<(V, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return fetch().await.map(|v| (v, false));
        }
        let generation = {
            let state = self.lock();
            if let Some((at, v)) = state.entries.get(key)
                && at.elapsed() < self.ttl
            {
                return Ok((v.clone(), true));
            }
            state.generation
        };
        let fetched_at = Instant::now();
        let value = fetch().await?;
        let mut state = self.lock();
        if state.generation == generation {
            state.entries.insert(key.to_owned(), (fetched_at, value.clone()));
        }
        Ok((value, false))
    }

    pub(crate) fn invalidate(&self, key: &str) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.entries.remove(key);
    }
}

/// The [`SecretStore`] of the AWS deployment.
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    cache: TtlCache<Option<SecretValue>>,
}

impl SecretsManagerStore {
    /// The stage's secrets (`names.secrets_prefix`), cached for [`DEFAULT_TTL`].
    pub fn new(clients: &Clients, names: &Names) -> Self {
        Self::with_prefix(clients, &names.secrets_prefix)
    }

    pub fn with_prefix(clients: &Clients, prefix: &str) -> Self {
        Self { client: clients.secrets.clone(), prefix: prefix.to_owned(), cache: TtlCache::new(DEFAULT_TTL) }
    }

    /// Cache values for `ttl` instead (zero: no cache).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.cache = TtlCache::new(ttl);
        self
    }

    /// The Secrets Manager name of the port name `name`.
    pub fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn fetch(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        let id = self.full_name(name);
        match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(out) => match out.secret_string() {
                Some(s) => Ok(Some(SecretValue::new(s))),
                None if out.secret_binary().is_some() => {
                    Err(StoreError::Corrupt(format!("secret `{name}` holds binary data, not text")))
                }
                None => Ok(None),
            },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            // Also what a secret scheduled for deletion answers.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_invalid_request_exception()) => {
                match self.scheduled_for_deletion(&id).await? {
                    Some(true) | None => Ok(None),
                    Some(false) => Err(backend(&format!("secretsmanager get_secret_value {id}"), e)),
                }
            }
            Err(e) => Err(backend(&format!("secretsmanager get_secret_value {id}"), e)),
        }
    }

    /// `None` if the secret does not exist; whether it is scheduled for deletion if it does.
    async fn scheduled_for_deletion(&self, id: &str) -> StoreResult<Option<bool>> {
        match self.client.describe_secret().secret_id(id).send().await {
            Ok(out) => Ok(Some(out.deleted_date().is_some())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(backend(&format!("secretsmanager describe_secret {id}"), e)),
        }
    }

    /// Describe first (puts are rare): a missing secret is created, one scheduled for
    /// deletion restored (AWS refuses a value for it; moto would take it silently).
    async fn put_value(&self, id: &str, value: &SecretValue) -> StoreResult<()> {
        match self.scheduled_for_deletion(id).await? {
            None => return self.create(id, value).await,
            Some(true) => {
                self.client
                    .restore_secret()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| backend(&format!("secretsmanager restore_secret {id}"), e))?;
                tracing::info!(secret = id, "restored a secret that was scheduled for deletion");
            }
            Some(false) => {}
        }
        match self.client.put_secret_value().secret_id(id).secret_string(value.expose()).send().await {
            Ok(_) => Ok(()),
            // Deleted since it was described.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                self.create(id, value).await
            }
            Err(e) => Err(backend(&format!("secretsmanager put_secret_value {id}"), e)),
        }
    }

    async fn create(&self, id: &str, value: &SecretValue) -> StoreResult<()> {
        let out = self
            .client
            .create_secret()
            .name(id)
            .description("rez_agent secret")
            .secret_string(value.expose())
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(secret = id, "secret created");
                Ok(())
            }
            // Created concurrently: write the value over it.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => self
                .client
                .put_secret_value()
                .secret_id(id)
                .secret_string(value.expose())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| backend(&format!("secretsmanager put_secret_value {id}"), e)),
            Err(e) => Err(backend(&format!("secretsmanager create_secret {id}"), e)),
        }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        checked(name)?;
        let (value, cached) = self.cache.get_or_fetch(name, || self.fetch(name)).await?;
        tracing::debug!(secret = name, cached, found = value.is_some(), "secret read");
        Ok(value)
    }

    async fn put_secret(&self, name: &str, value: &SecretValue) -> StoreResult<()> {
        checked(name)?;
        let result = self.put_value(&self.full_name(name), value).await;
        self.cache.invalidate(name);
        result?;
        tracing::info!(secret = name, "secret stored");
        Ok(())
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<bool> {
        checked(name)?;
        let id = self.full_name(name);
        let existed = match self.scheduled_for_deletion(&id).await {
            Ok(None) => {
                self.cache.invalidate(name);
                return Ok(false);
            }
            Ok(Some(scheduled)) => !scheduled,
            Err(e) => {
                self.cache.invalidate(name);
                return Err(e);
            }
        };
        let out = self.client.delete_secret().secret_id(&id).force_delete_without_recovery(true).send().await;
        self.cache.invalidate(name);
        match out {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(false),
            Err(e) => return Err(backend(&format!("secretsmanager delete_secret {id}"), e)),
        }
        tracing::info!(secret = name, existed, "secret deleted");
        Ok(existed)
    }

    async fn list_secrets(&self) -> StoreResult<Vec<SecretInfo>> {
        let filter = Filter::builder().key(FilterNameStringType::Name).values(&self.prefix).build();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_secrets()
                .filters(filter.clone())
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| backend("secretsmanager list_secrets", e))?;
            for entry in page.secret_list() {
                if entry.deleted_date().is_some() {
                    continue;
                }
                let Some(name) = entry.name().and_then(|n| n.strip_prefix(&self.prefix)) else { continue };
                if !is_valid_secret_name(name) {
                    tracing::debug!(secret = name, "skipping a secret whose name is not a valid secret name");
                    continue;
                }
                let updated = entry.last_changed_date().or(entry.created_date());
                out.push(SecretInfo {
                    name: name.to_owned(),
                    updated_date: updated.map(to_chrono).unwrap_or_default(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn to_chrono(t: &aws_sdk_secretsmanager::primitives::DateTime) -> Timestamp {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn counting(n: &AtomicU32, value: &str) -> impl Future<Output = Result<String, ()>> {
        n.fetch_add(1, Ordering::SeqCst);
        let v = value.to_owned();
        async move { Ok(v) }
    }

    #[tokio::test(start_paused = true)]
    async fn served_from_cache_within_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(300));
        let calls = AtomicU32::new(0);
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "v1")).await, Ok(("v1".to_owned(), false)));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "v2")).await, Ok(("v1".to_owned(), true)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Other keys are separate.
        assert_eq!(cache.get_or_fetch("b", || counting(&calls, "w")).await, Ok(("w".to_owned(), false)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refetched_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(300));
        let calls = AtomicU32::new(0);
        cache.get_or_fetch("a", || counting(&calls, "v1")).await.unwrap();
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "v2")).await, Ok(("v2".to_owned(), false)));
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "v3")).await, Ok(("v2".to_owned(), true)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidation_forces_a_fetch_and_errors_are_not_cached() {
        let cache = TtlCache::new(Duration::from_secs(300));
        let calls = AtomicU32::new(0);
        cache.get_or_fetch("a", || counting(&calls, "v1")).await.unwrap();
        cache.invalidate("a");
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "v2")).await, Ok(("v2".to_owned(), false)));
        let failed: Result<(String, bool), &str> = {
            cache.invalidate("a");
            cache.get_or_fetch("a", || async { Err("down") }).await
        };
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "v3")).await, Ok(("v3".to_owned(), false)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_racing_an_invalidation_is_not_cached() {
        let cache = TtlCache::new(Duration::from_secs(300));
        let calls = AtomicU32::new(0);
        // The write lands while the read is in flight: the read's (older) value is
        // returned to its caller but not kept.
        let got = cache
            .get_or_fetch("a", || async {
                cache.invalidate("a");
                Ok::<_, ()>("old".to_owned())
            })
            .await;
        assert_eq!(got, Ok(("old".to_owned(), false)));
        assert_eq!(cache.get_or_fetch("a", || counting(&calls, "new")).await, Ok(("new".to_owned(), false)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_disables_the_cache() {
        let cache = TtlCache::new(Duration::ZERO);
        let calls = AtomicU32::new(0);
        cache.get_or_fetch("a", || counting(&calls, "v")).await.unwrap();
        cache.get_or_fetch("a", || counting(&calls, "v")).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn names() {
        for ok in ["golf/birdsfoot", "a", "x.y-z_0/9", &"a".repeat(128)] {
            assert!(is_valid_secret_name(ok), "{ok}");
        }
        for bad in ["", "Golf", "golf birdsfoot", "é", "a\n", &"a".repeat(129)] {
            assert!(!is_valid_secret_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn values_never_print() {
        let cached: Option<SecretValue> = Some(SecretValue::new("hunter2"));
        assert!(!format!("{cached:?}").contains("hunter2"));
    }
}
