//! `rez secrets set|set-golf|list|delete`: manage the local secret store (golf
//! credentials per course, tokens) from the command line.
//!
//! Why it exists: credentials must reach the store without passing through the API or a
//! request body (SPEC §6.4, §8), and without landing in shell history or `ps` output.
//! So values are read from stdin (the default) or from a named environment variable,
//! never from a command-line argument, and they are never printed back: `list` shows
//! names and dates only. The store needs a master key (`LocalStore::with_master_key`).

use std::io::{IsTerminal, Read};

use rez_core::ports::{SecretStore, SecretValue};
use rez_local::{LocalStore, check_secret_name};
use serde_json::{Map, Value};

/// Largest value accepted from stdin or an environment variable.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Where a secret value comes from. Never from an argument: those leak into shell
/// history and the process list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SecretSource {
    /// All of stdin, minus one trailing newline.
    #[default]
    Stdin,
    /// The value of this environment variable (`--from-env VAR`).
    Env(String),
}

/// The secret name holding a course's credentials: `golf/<course_id>`.
pub fn golf_secret_name(course_id: &str) -> String {
    format!("golf/{course_id}")
}

/// `rez secrets set <name> [--from-env VAR]`: store (or replace) one secret.
pub async fn set(store: &LocalStore, name: &str, value_from: SecretSource) -> anyhow::Result<()> {
    check_secret_name(name)?;
    let value = read_value(&value_from, &format!("value of `{name}`"))?;
    store.put_secret(name, &SecretValue::new(value)).await?;
    println!("stored secret `{name}`");
    Ok(())
}

/// `rez secrets set-golf <course_id> --username U [--password-from-env VAR]
/// [--client-id ID] [--client-secret-from-env VAR]`: store the course's credentials as
/// `{"username","password","client_id"?,"client_secret"?}` under `golf/<course_id>`.
/// At most one of the two secret values can come from stdin.
pub async fn set_golf(
    store: &LocalStore,
    course_id: &str,
    username: &str,
    password_from: SecretSource,
    client_id: Option<&str>,
    client_secret_from: Option<SecretSource>,
) -> anyhow::Result<()> {
    let name = golf_secret_name(course_id);
    check_secret_name(&name)?;
    anyhow::ensure!(!username.trim().is_empty(), "--username must not be empty");
    anyhow::ensure!(
        !(password_from == SecretSource::Stdin && client_secret_from == Some(SecretSource::Stdin)),
        "the password and the client secret cannot both come from stdin; pass one with --…-from-env VAR"
    );
    let password = read_value(&password_from, &format!("password of {username} at {course_id}"))?;
    let client_secret =
        client_secret_from.map(|s| read_value(&s, &format!("client secret for {course_id}"))).transpose()?;
    let body = golf_credentials_json(username, password, client_id, client_secret);
    store.put_secret(&name, &SecretValue::new(body)).await?;
    println!("stored golf credentials for `{course_id}` (user {username}) as secret `{name}`");
    Ok(())
}

/// `rez secrets list [--json]`: names and dates, never values.
pub async fn list(store: &LocalStore, json: bool) -> anyhow::Result<()> {
    let secrets = store.list_secrets().await?;
    if json {
        return super::print_json(&secrets);
    }
    if secrets.is_empty() {
        println!("no secrets; add one with `rez secrets set <name>` (the value is read from stdin)");
    }
    for s in secrets {
        println!("{:<40} updated {}", s.name, rez_core::time::rfc3339(&s.updated_date));
    }
    Ok(())
}

/// `rez secrets delete <name>`.
pub async fn delete(store: &LocalStore, name: &str) -> anyhow::Result<()> {
    check_secret_name(name)?;
    if store.delete_secret(name).await? {
        println!("deleted secret `{name}`");
        Ok(())
    } else {
        anyhow::bail!("no stored secret `{name}`")
    }
}

fn golf_credentials_json(
    username: &str,
    password: String,
    client_id: Option<&str>,
    client_secret: Option<String>,
) -> String {
    let mut m = Map::new();
    m.insert("username".into(), Value::String(username.to_owned()));
    m.insert("password".into(), Value::String(password));
    if let Some(id) = client_id.filter(|s| !s.is_empty()) {
        m.insert("client_id".into(), Value::String(id.to_owned()));
    }
    if let Some(secret) = client_secret {
        m.insert("client_secret".into(), Value::String(secret));
    }
    Value::Object(m).to_string()
}

/// Read a value from its source. `what` names it in prompts and errors (never the value).
fn read_value(source: &SecretSource, what: &str) -> anyhow::Result<String> {
    match source {
        SecretSource::Stdin => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "Type the {what}, then Enter and Ctrl-D. It is visible as you type; \
                     pipe it in (or use --from-env) to avoid that."
                );
            }
            value_from_reader(stdin.lock(), what)
        }
        SecretSource::Env(var) => value_from_env(var, std::env::var_os(var), what),
    }
}

/// All of `input`, minus one trailing newline (`\n` or `\r\n`).
fn value_from_reader(input: impl Read, what: &str) -> anyhow::Result<String> {
    let mut raw = Vec::new();
    input.take(MAX_VALUE_BYTES as u64 + 3).read_to_end(&mut raw)?;
    let mut value = String::from_utf8(raw).map_err(|_| anyhow::anyhow!("the {what} on stdin is not valid UTF-8"))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    check_value(value, what)
}

fn value_from_env(var: &str, value: Option<std::ffi::OsString>, what: &str) -> anyhow::Result<String> {
    let value = value.ok_or_else(|| anyhow::anyhow!("environment variable {var} (for the {what}) is not set"))?;
    let value = value.into_string().map_err(|_| anyhow::anyhow!("environment variable {var} is not valid UTF-8"))?;
    check_value(value, what)
}

fn check_value(value: String, what: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!value.is_empty(), "the {what} is empty");
    anyhow::ensure!(value.len() <= MAX_VALUE_BYTES, "the {what} is longer than {MAX_VALUE_BYTES} bytes");
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rez_core::clock::SystemClock;
    use rez_local::{MasterKey, QueueConfig};

    use super::*;

    #[test]
    fn stdin_loses_one_trailing_newline() {
        assert_eq!(value_from_reader(&b"s3cret\n"[..], "v").unwrap(), "s3cret");
        assert_eq!(value_from_reader(&b"s3cret\r\n"[..], "v").unwrap(), "s3cret");
        assert_eq!(value_from_reader(&b"s3cret\n\n"[..], "v").unwrap(), "s3cret\n");
        assert_eq!(value_from_reader(&b" spaced "[..], "v").unwrap(), " spaced ");
        assert!(value_from_reader(&b"\n"[..], "v").is_err());
        assert!(value_from_reader(&b"\xff\xfe"[..], "v").is_err());
        assert!(value_from_reader(&vec![b'a'; MAX_VALUE_BYTES + 1][..], "v").is_err());
        assert_eq!(value_from_reader(&vec![b'a'; MAX_VALUE_BYTES][..], "v").unwrap().len(), MAX_VALUE_BYTES);
    }

    #[test]
    fn env_source() {
        assert_eq!(value_from_env("X", Some("v".into()), "value").unwrap(), "v");
        let missing = value_from_env("GOLF_PW", None, "password").unwrap_err().to_string();
        assert!(missing.contains("GOLF_PW") && missing.contains("not set"), "{missing}");
        assert!(value_from_env("X", Some("".into()), "value").is_err());
    }

    #[test]
    fn golf_json_shape() {
        let v: Value = serde_json::from_str(&golf_credentials_json("me@example.com", "pw".into(), None, None)).unwrap();
        assert_eq!(v, serde_json::json!({"username": "me@example.com", "password": "pw"}));
        let v: Value =
            serde_json::from_str(&golf_credentials_json("me", "p\"w".into(), Some("onlineresweb"), Some("cs".into())))
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"username": "me", "password": "p\"w", "client_id": "onlineresweb", "client_secret": "cs"})
        );
    }

    #[tokio::test]
    async fn set_golf_stores_json_under_the_course() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("rez.db"), Arc::new(SystemClock), QueueConfig::default())
            .unwrap()
            .with_master_key(MasterKey::from_bytes([1; 32]));
        // `PATH` is always set; using it avoids mutating the process environment.
        let path = std::env::var("PATH").unwrap();
        set_golf(&store, "birdsfoot", "me", SecretSource::Env("PATH".into()), None, None).await.unwrap();
        let stored = store.get_secret("golf/birdsfoot").await.unwrap().unwrap();
        let v: Value = serde_json::from_str(stored.expose()).unwrap();
        assert_eq!(v, serde_json::json!({"username": "me", "password": path}));

        let both_stdin =
            set_golf(&store, "birdsfoot", "me", SecretSource::Stdin, None, Some(SecretSource::Stdin)).await;
        assert!(both_stdin.is_err());
        assert!(set_golf(&store, "Bad Id", "me", SecretSource::Env("PATH".into()), None, None).await.is_err());
        assert!(set(&store, "Bad Name", SecretSource::Env("PATH".into())).await.is_err());

        delete(&store, "golf/birdsfoot").await.unwrap();
        assert!(delete(&store, "golf/birdsfoot").await.is_err());
    }
}
