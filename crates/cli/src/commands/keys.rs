//! `rez keys create|list|revoke`.

use rez_core::auth::{ApiKeyId, Scope};
use rez_core::ports::ApiKeyStore;
use rez_local::LocalStore;
use rez_runtime::keys::mint;

pub async fn create(store: &LocalStore, name: &str, scope: Scope) -> anyhow::Result<()> {
    anyhow::ensure!(!name.trim().is_empty() && name.len() <= 100, "--name must be 1–100 characters");
    let minted = mint(name, scope, &**store.clock());
    store.insert(&minted.record).await?;
    eprintln!("Created key {} ({scope}). It is shown once; store it now:", minted.record.id);
    println!("{}", minted.token);
    Ok(())
}

pub async fn list(store: &LocalStore, json: bool) -> anyhow::Result<()> {
    let keys = store.list_keys().await?;
    if json {
        return super::print_json(&keys);
    }
    if keys.is_empty() {
        println!("no keys; create one with `rez keys create --name me --scope admin`");
    }
    for k in keys {
        let state = match k.revoked_date {
            Some(t) => format!("revoked {}", rez_core::time::rfc3339(&t)),
            None => "active".into(),
        };
        println!("{}  {:<6} {:<24} {}", k.id, k.scope, k.name, state);
    }
    Ok(())
}

pub async fn revoke(store: &LocalStore, id: &str) -> anyhow::Result<()> {
    let id = ApiKeyId::parse(id).map_err(|e| anyhow::anyhow!(e.message))?;
    if store.revoke(&id, store.clock().now()).await? {
        println!("revoked {id} (running servers stop accepting it within {}s)", rez_runtime::keys::CACHE_TTL.as_secs());
        Ok(())
    } else {
        anyhow::bail!("no active key {id}")
    }
}
