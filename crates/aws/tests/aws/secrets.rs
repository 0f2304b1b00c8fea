//! The Secrets Manager secret store against moto: naming under the stage prefix, the
//! put/get/list/delete round trip, and the TTL cache.

use crate::common;

use std::time::Duration;

use rez_aws::secrets::SecretsManagerStore;
use rez_aws::{Clients, Names};
use rez_core::ports::{SecretStore, SecretValue, StoreError};

/// A store over a stage of its own (`rez/<unique>/`), so tests sharing moto never see
/// each other's secrets. Secrets need no provisioned resources.
async fn store(ttl: Duration) -> (SecretsManagerStore, Clients, Names) {
    let clients = common::clients().await;
    let names = Names::for_prefix("rez-test", &common::unique_prefix());
    assert!(names.secrets_prefix.starts_with("rez/rez-t") && names.secrets_prefix.ends_with('/'));
    (SecretsManagerStore::new(&clients, &names).with_ttl(ttl), clients, names)
}

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let (store, clients, names) = store(Duration::ZERO).await;
    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap(), None);
    assert!(store.list_secrets().await.unwrap().is_empty());

    store.put_secret("golf/birdsfoot", &SecretValue::new("user:pass")).await.unwrap();
    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap(), Some(SecretValue::new("user:pass")));
    // Stored under the stage prefix.
    let raw = clients
        .secrets
        .get_secret_value()
        .secret_id(format!("{}golf/birdsfoot", names.secrets_prefix))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.secret_string(), Some("user:pass"));

    // Put again: a new value of the same secret.
    store.put_secret("golf/birdsfoot", &SecretValue::new("user:new")).await.unwrap();
    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap(), Some(SecretValue::new("user:new")));
    store.put_secret("ntfy/token", &SecretValue::new("tk")).await.unwrap();

    let listed: Vec<String> = store.list_secrets().await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, ["golf/birdsfoot", "ntfy/token"]);
    let info = &store.list_secrets().await.unwrap()[0];
    assert!(info.updated_date > chrono::Utc::now() - chrono::TimeDelta::minutes(5), "{info:?}");

    assert!(store.delete_secret("golf/birdsfoot").await.unwrap());
    assert!(!store.delete_secret("golf/birdsfoot").await.unwrap(), "already gone");
    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap(), None);
    let listed: Vec<String> = store.list_secrets().await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, ["ntfy/token"]);
    // A deleted name can be put again at once.
    store.put_secret("golf/birdsfoot", &SecretValue::new("again")).await.unwrap();
    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap(), Some(SecretValue::new("again")));
}

#[tokio::test]
async fn names_outside_the_prefix_are_not_listed() {
    let (store, clients, names) = store(Duration::ZERO).await;
    store.put_secret("golf/mine", &SecretValue::new("x")).await.unwrap();
    let stage = names.secrets_prefix.trim_end_matches('/');
    for other in [
        format!("{stage}x/golf/other-stage"), // shares the text, not the prefix
        format!("other/{stage}/golf/nested"),
        "golf/unprefixed".to_owned(),
        format!("{}Golf/Upper", names.secrets_prefix), // not a valid port name
    ] {
        clients.secrets.create_secret().name(&other).secret_string("v").send().await.unwrap();
    }
    let listed: Vec<String> = store.list_secrets().await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, ["golf/mine"]);
    assert_eq!(store.get_secret("golf/unprefixed").await.unwrap(), None);
}

#[tokio::test]
async fn a_secret_without_a_value_reads_as_absent() {
    // The template may create a course's secret empty, for an operator to fill.
    let (store, clients, names) = store(Duration::ZERO).await;
    clients.secrets.create_secret().name(format!("{}golf/empty", names.secrets_prefix)).send().await.unwrap();
    assert_eq!(store.get_secret("golf/empty").await.unwrap(), None);
    store.put_secret("golf/empty", &SecretValue::new("filled")).await.unwrap();
    assert_eq!(store.get_secret("golf/empty").await.unwrap(), Some(SecretValue::new("filled")));
}

#[tokio::test]
async fn a_secret_scheduled_for_deletion_is_absent_and_restored_by_a_put() {
    let (store, clients, names) = store(Duration::ZERO).await;
    store.put_secret("golf/gone", &SecretValue::new("v1")).await.unwrap();
    let id = format!("{}golf/gone", names.secrets_prefix);
    clients.secrets.delete_secret().secret_id(&id).recovery_window_in_days(7).send().await.unwrap();
    assert_eq!(store.get_secret("golf/gone").await.unwrap(), None);
    assert!(store.list_secrets().await.unwrap().is_empty());
    store.put_secret("golf/gone", &SecretValue::new("v2")).await.unwrap();
    assert_eq!(store.get_secret("golf/gone").await.unwrap(), Some(SecretValue::new("v2")));
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let (store, _, _) = store(Duration::ZERO).await;
    for bad in ["", "Golf/x", "golf birdsfoot", "../x\n"] {
        assert!(matches!(store.get_secret(bad).await, Err(StoreError::Conflict(_))), "{bad:?}");
        assert!(matches!(store.put_secret(bad, &SecretValue::new("v")).await, Err(StoreError::Conflict(_))));
        assert!(matches!(store.delete_secret(bad).await, Err(StoreError::Conflict(_))));
    }
}

#[tokio::test]
async fn the_cache_hides_out_of_band_changes_until_the_ttl_expires() {
    let ttl = Duration::from_millis(1500);
    let (store, clients, names) = store(ttl).await;
    let id = format!("{}golf/cached", names.secrets_prefix);
    store.put_secret("golf/cached", &SecretValue::new("v1")).await.unwrap();
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), Some(SecretValue::new("v1")));

    // Changed behind the store's back (another Lambda instance, the console).
    clients.secrets.put_secret_value().secret_id(&id).secret_string("v2").send().await.unwrap();
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), Some(SecretValue::new("v1")), "served from cache");
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), Some(SecretValue::new("v2")), "TTL expired");

    // The store's own writes are seen at once.
    store.put_secret("golf/cached", &SecretValue::new("v3")).await.unwrap();
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), Some(SecretValue::new("v3")));
    assert!(store.delete_secret("golf/cached").await.unwrap());
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), None);

    // Absence is cached too.
    clients.secrets.create_secret().name(&id).secret_string("v4").send().await.unwrap();
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), None, "cached absence");
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(store.get_secret("golf/cached").await.unwrap(), Some(SecretValue::new("v4")));
}
