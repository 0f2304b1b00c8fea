//! The local secret store: values are sealed at rest (the plaintext never reaches the
//! database files), bound to their names, readable only with the right master key, and
//! the master key file is created private and refused when it is not.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rez_core::clock::SystemClock;
use rez_core::ports::{SecretStore, SecretValue, StoreError};
use rez_local::{KeyTextError, LocalStore, MasterKey, QueueConfig, SecretsError, secret_env_var};

const PLAINTEXT: &str = "hunter2-correct-horse-battery-staple-7f3a";

fn open(dir: &Path) -> LocalStore {
    LocalStore::open(&dir.join("rez.db"), Arc::new(SystemClock), QueueConfig::default()).expect("open")
}

fn keyed(dir: &Path, key: [u8; 32]) -> LocalStore {
    open(dir).with_master_key(MasterKey::from_bytes(key))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn round_trip_overwrite_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyed(dir.path(), [1; 32]);

    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap(), None);
    store.put_secret("golf/birdsfoot", &SecretValue::new(PLAINTEXT)).await.unwrap();
    let got = store.get_secret("golf/birdsfoot").await.unwrap().expect("stored");
    assert_eq!(got.expose(), PLAINTEXT);

    store.put_secret("golf/birdsfoot", &SecretValue::new("second")).await.unwrap();
    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap().unwrap().expose(), "second");
    store.put_secret("ntfy.token", &SecretValue::new(PLAINTEXT)).await.unwrap();

    let list = store.list_secrets().await.unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["golf/birdsfoot", "ntfy.token"]);
    let shown = serde_json::to_string(&list).unwrap();
    assert!(!shown.contains(PLAINTEXT) && !shown.contains("second"), "listing shows no values: {shown}");
    assert!(shown.contains("updated_date"));

    assert!(store.delete_secret("golf/birdsfoot").await.unwrap());
    assert!(!store.delete_secret("golf/birdsfoot").await.unwrap());
    assert_eq!(store.get_secret_with_env("golf/birdsfoot", |_| None).await.unwrap(), None);
    assert_eq!(store.list_secrets().await.unwrap().len(), 1);
}

#[tokio::test]
async fn database_files_never_hold_the_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyed(dir.path(), [2; 32]);
    store.put_secret("golf/totteridge", &SecretValue::new(PLAINTEXT)).await.unwrap();
    store.put_secret("other", &SecretValue::new(PLAINTEXT)).await.unwrap();

    let db = dir.path().join("rez.db");
    let wal = dir.path().join("rez.db-wal");
    // Before the checkpoint the rows are in the WAL...
    let wal_bytes = std::fs::read(&wal).unwrap_or_default();
    assert!(!contains(&wal_bytes, PLAINTEXT.as_bytes()), "plaintext in the WAL");
    // ...after it, in the main file.
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    drop(raw);
    let db_bytes = std::fs::read(&db).unwrap();
    assert!(contains(&db_bytes, b"golf/totteridge"), "the checkpoint reached the main file");
    assert!(!contains(&db_bytes, PLAINTEXT.as_bytes()), "plaintext in the database file");
    let wal_bytes = std::fs::read(&wal).unwrap_or_default();
    assert!(!contains(&wal_bytes, PLAINTEXT.as_bytes()), "plaintext in the WAL");

    // Two writes of the same value under one key produce different ciphertexts.
    let raw = rusqlite::Connection::open(&db).unwrap();
    let cts: Vec<(Vec<u8>, Vec<u8>)> = raw
        .prepare("SELECT nonce, ciphertext FROM secrets ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(cts.len(), 2);
    assert_eq!(cts[0].0.len(), 24, "24-byte nonce");
    assert_eq!(cts[0].1.len(), PLAINTEXT.len() + 16, "ciphertext plus 16-byte tag");
    assert_ne!(cts[0], cts[1]);
}

#[tokio::test]
async fn another_master_key_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    keyed(dir.path(), [3; 32]).put_secret("golf/birdsfoot", &SecretValue::new(PLAINTEXT)).await.unwrap();

    let other = keyed(dir.path(), [4; 32]);
    match other.get_secret("golf/birdsfoot").await {
        Err(StoreError::Corrupt(msg)) => {
            assert!(msg.contains("golf/birdsfoot") && msg.contains("master key does not match"), "{msg}");
            assert!(!msg.contains(PLAINTEXT));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The environment fallback does not paper over an undecryptable stored secret.
    let r = other.get_secret_with_env("golf/birdsfoot", |_| Some("from-env".into())).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_name_does_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyed(dir.path(), [5; 32]);
    store.put_secret("golf/birdsfoot", &SecretValue::new(PLAINTEXT)).await.unwrap();

    let raw = rusqlite::Connection::open(dir.path().join("rez.db")).unwrap();
    raw.execute(
        "INSERT INTO secrets (name, nonce, ciphertext, updated_ms) \
         SELECT 'golf/totteridge', nonce, ciphertext, updated_ms FROM secrets WHERE name = 'golf/birdsfoot'",
        [],
    )
    .unwrap();
    drop(raw);

    assert_eq!(store.get_secret("golf/birdsfoot").await.unwrap().unwrap().expose(), PLAINTEXT);
    let moved = store.get_secret("golf/totteridge").await;
    assert!(matches!(moved, Err(StoreError::Corrupt(_))), "{moved:?}");
}

#[tokio::test]
async fn without_a_master_key() {
    let dir = tempfile::tempdir().unwrap();
    keyed(dir.path(), [6; 32]).put_secret("stored", &SecretValue::new(PLAINTEXT)).await.unwrap();
    let bare = open(dir.path());

    let put = bare.put_secret("x", &SecretValue::new("v")).await;
    assert!(matches!(&put, Err(StoreError::Unavailable(m)) if m.contains("no master key")), "{put:?}");
    let get = bare.get_secret("stored").await;
    assert!(matches!(&get, Err(StoreError::Unavailable(m)) if m.contains("no master key")), "{get:?}");
    // Names, deletion and the environment fallback need no key.
    assert_eq!(bare.list_secrets().await.unwrap().len(), 1);
    let env = bare.get_secret_with_env("golf/x", |v| (v == "REZ_SECRET_GOLF_X").then(|| "e".into())).await;
    assert_eq!(env.unwrap().unwrap().expose(), "e");
    assert!(bare.delete_secret("stored").await.unwrap());
}

#[tokio::test]
async fn environment_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyed(dir.path(), [7; 32]);
    assert_eq!(secret_env_var("golf/birdsfoot"), "REZ_SECRET_GOLF_BIRDSFOOT");
    assert_eq!(secret_env_var("ntfy.token-2_x"), "REZ_SECRET_NTFY_TOKEN_2_X");

    let env = |var: &str| (var == "REZ_SECRET_GOLF_BIRDSFOOT").then(|| "from-env".to_string());
    let got = store.get_secret_with_env("golf/birdsfoot", env).await.unwrap();
    assert_eq!(got.unwrap().expose(), "from-env");
    assert_eq!(store.get_secret_with_env("golf/totteridge", env).await.unwrap(), None);
    // An empty variable counts as unset.
    assert_eq!(store.get_secret_with_env("golf/birdsfoot", |_| Some(String::new())).await.unwrap(), None);

    // The store wins over the environment.
    store.put_secret("golf/birdsfoot", &SecretValue::new("stored")).await.unwrap();
    let got = store.get_secret_with_env("golf/birdsfoot", env).await.unwrap();
    assert_eq!(got.unwrap().expose(), "stored");
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyed(dir.path(), [8; 32]);
    let long = "a".repeat(129);
    for bad in ["", "Golf/Birdsfoot", "has space", "semi;colon", "ümlaut", long.as_str()] {
        let put = store.put_secret(bad, &SecretValue::new("v")).await;
        assert!(matches!(&put, Err(StoreError::Conflict(m)) if m.contains("invalid secret name")), "{bad:?}: {put:?}");
        assert!(matches!(store.get_secret(bad).await, Err(StoreError::Conflict(_))), "{bad:?}");
        assert!(matches!(store.delete_secret(bad).await, Err(StoreError::Conflict(_))), "{bad:?}");
    }
    assert!(rez_local::check_secret_name(&"a".repeat(128)).is_ok());
    assert!(store.list_secrets().await.unwrap().is_empty());
}

#[test]
fn master_key_from_base64() {
    let bytes = [0xfbu8; 32]; // encodes with `+`/`/` (standard) or `-`/`_` (URL-safe)
    let std = base64::engine::general_purpose::STANDARD.encode(bytes);
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    assert!(std.contains('/') || std.contains('+'));
    assert!(url.contains('_') || url.contains('-'));
    let dir = tempfile::tempdir().unwrap();
    for good in [std.as_str(), url.as_str(), &format!("  {std}\n")] {
        MasterKey::from_value_or_file(Some(good), dir.path()).expect("good key");
    }
    assert!(!dir.path().join("master.key").exists(), "an env key never creates a file");

    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
    assert_eq!(MasterKey::from_base64(&short).unwrap_err(), KeyTextError::WrongLength(16));
    assert_eq!(MasterKey::from_base64("not base64!!").unwrap_err(), KeyTextError::NotBase64);
    assert_eq!(MasterKey::from_base64("").unwrap_err(), KeyTextError::Empty);

    let secret_looking = "c2VjcmV0LXNlY3JldC1zZWNyZXQ*";
    let err = MasterKey::from_value_or_file(Some(secret_looking), dir.path()).unwrap_err();
    assert!(matches!(err, SecretsError::BadEnvKey(KeyTextError::NotBase64)));
    let msg = err.to_string();
    assert!(msg.contains("REZ_MASTER_KEY") && msg.contains("32 bytes"), "{msg}");
    assert!(!msg.contains(secret_looking), "the error never shows the key: {msg}");
    let err = MasterKey::from_value_or_file(Some(&short), dir.path()).unwrap_err();
    assert!(err.to_string().contains("decodes to 16 bytes"), "{err}");
    assert!(matches!(MasterKey::from_value_or_file(Some(""), dir.path()), Err(SecretsError::BadEnvKey(_))));
}

#[tokio::test]
async fn env_key_and_file_key_are_interchangeable() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = [9u8; 32];
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let a = open(dir.path()).with_master_key(MasterKey::from_value_or_file(Some(&text), dir.path()).unwrap());
    a.put_secret("k", &SecretValue::new(PLAINTEXT)).await.unwrap();
    let b = keyed(dir.path(), bytes);
    assert_eq!(b.get_secret("k").await.unwrap().unwrap().expose(), PLAINTEXT);
}

#[cfg(unix)]
mod key_file {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data"); // does not exist yet
        let path = data.join("master.key");
        let first = MasterKey::from_value_or_file(None, &data).expect("created");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap().len(), 32);
        let leftovers: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["master.key"], "no temporary file is left behind");

        // The second load reads the same key: what one sealed, the other opens.
        let second = MasterKey::from_value_or_file(None, &data).expect("reused");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the file is not rewritten");
        let a = open(dir.path()).with_master_key(first);
        a.put_secret("k", &SecretValue::new(PLAINTEXT)).await.unwrap();
        let b = open(dir.path()).with_master_key(second);
        assert_eq!(b.get_secret("k").await.unwrap().unwrap().expose(), PLAINTEXT);
        // And it is the key REZ_MASTER_KEY would give.
        let c = open(dir.path()).with_master_key(MasterKey::from_value_or_file(Some(&text), dir.path()).unwrap());
        assert_eq!(c.get_secret("k").await.unwrap().unwrap().expose(), PLAINTEXT);
    }

    #[test]
    fn concurrent_creation_agrees_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_owned();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let data = data.clone();
                std::thread::spawn(move || MasterKey::from_value_or_file(None, &data).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().expect("every thread gets a key");
        }
        let text = std::fs::read_to_string(data.join("master.key")).unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap().len(), 32);
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1, "no temporary files left behind");
    }

    #[test]
    fn a_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        MasterKey::from_value_or_file(None, dir.path()).unwrap();
        let path = dir.path().join("master.key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::from_value_or_file(None, dir.path()).unwrap_err();
        assert!(matches!(err, SecretsError::KeyFilePermissions { mode: 0o644, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("chmod 600") && msg.contains("644"), "{msg}");

        // 0400 (owner read-only) is as private as 0600.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        MasterKey::from_value_or_file(None, dir.path()).expect("0400 accepted");
    }

    #[test]
    fn a_damaged_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "too-short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = MasterKey::from_value_or_file(None, dir.path()).unwrap_err();
        assert!(matches!(err, SecretsError::BadKeyFile { .. }), "{err:?}");
        assert!(!err.to_string().contains("too-short"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "too-short\n");
    }
}
