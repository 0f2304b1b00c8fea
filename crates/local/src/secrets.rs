//! The local [`SecretStore`]: secrets (golf credentials per course, tokens) encrypted at
//! rest in the `secrets` table, with environment variables as a fallback (SPEC §8).
//!
//! Why it exists: credentials must never come from a request (SPEC §6.4), so they live
//! here, and a copied database file or backup must not give them away. Each value is
//! sealed with XChaCha20-Poly1305 under a 32-byte [`MasterKey`] with a fresh random
//! 24-byte nonce per write; the associated data binds the ciphertext to its secret name,
//! so a row moved to another name does not decrypt. Only names and dates are stored in
//! the clear.
//!
//! The master key comes from `REZ_MASTER_KEY` (base64 of 32 bytes) or from
//! `<data_dir>/master.key` (the same base64 text, mode 0600), created on first use. It is
//! held in memory only, inside the cipher (wiped on drop), and its `Debug` is redacted.
//!
//! Semantics of [`LocalStore`]'s [`SecretStore`] implementation:
//! - Names must match `[a-z0-9_./-]{1,128}`; a bad name is refused with
//!   `StoreError::Conflict("invalid secret name …")` (the port has no better variant).
//! - `get_secret` reads the store first, then the variable [`secret_env_var`]`(name)`
//!   (`golf/birdsfoot` → `REZ_SECRET_GOLF_BIRDSFOOT`); an empty variable counts as unset.
//! - Without a master key ([`LocalStore::with_master_key`] not called), `put_secret`, and
//!   `get_secret` of a *stored* secret, return `StoreError::Unavailable`; environment
//!   fallback, listing and deleting need no key, since they never touch a ciphertext.
//! - A value that does not decrypt (another master key, or an altered row) is
//!   `StoreError::Corrupt` naming the secret, never showing any value.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use rand::TryRngCore;
use rez_core::ports::{SecretInfo, SecretStore, SecretValue, StoreError, StoreResult};
use rusqlite::OptionalExtension;

use crate::LocalStore;
use crate::codec::ts;
use crate::db::sql;

/// The variable holding the master key (base64, standard or URL-safe, of 32 bytes).
pub const MASTER_KEY_ENV: &str = "REZ_MASTER_KEY";
/// The key file's name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Prefix of the environment fallback for one secret (see [`secret_env_var`]).
pub const SECRET_ENV_PREFIX: &str = "REZ_SECRET_";
/// Longest secret name.
pub const MAX_SECRET_NAME_LEN: usize = 128;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Domain separation for the associated data: `rez-secret-v1\0<name>`.
const AAD_PREFIX: &[u8] = b"rez-secret-v1\0";
/// A key file is a line of base64; anything much larger is not one.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// Base64 decoders that accept padded and unpadded input.
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a master key could not be obtained, or a secret name is refused. Messages never
/// contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "{MASTER_KEY_ENV} must be the base64 (standard or URL-safe) of exactly 32 bytes, but {0}; \
         generate one with `openssl rand -base64 32`"
    )]
    BadEnvKey(KeyTextError),
    #[error("{MASTER_KEY_ENV} is set but is not valid UTF-8")]
    EnvKeyNotUnicode,
    #[error(
        "the master key file {path} must hold the base64 of exactly 32 bytes, but {reason}; \
         restore it from a backup (without it the stored secrets cannot be read)"
    )]
    BadKeyFile { path: PathBuf, reason: KeyTextError },
    #[error(
        "the master key file {path} is accessible by other users (mode {mode:03o}); \
         run `chmod 600 {path}` and try again"
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("the master key file {path} is not a regular file")]
    KeyFileNotRegular { path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("invalid secret name `{0}`: use [a-z0-9_./-]{{1,128}}")]
    InvalidName(String),
}

/// What is wrong with a key's text (never the text itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyTextError {
    #[error("it is empty")]
    Empty,
    #[error("it is not valid base64")]
    NotBase64,
    #[error("it decodes to {0} bytes")]
    WrongLength(usize),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError {
    move |source| SecretsError::Io { action, path: path.to_owned(), source }
}

/// Overwrite a buffer that held key material before it is freed (best effort without
/// an extra crate; the long-lived copy inside the cipher is wiped by `chacha20poly1305`).
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// The 32-byte key that seals every stored secret. In memory only; `Debug` is redacted.
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut key = Key::from(bytes);
        let cipher = XChaCha20Poly1305::new(&key);
        wipe(key.as_mut_slice());
        Self { cipher }
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> Result<Self, SecretsError> {
        let mut bytes = random_bytes::<KEY_LEN>().map_err(SecretsError::Random)?;
        let key = Self::from_bytes(bytes);
        wipe(&mut bytes);
        Ok(key)
    }

    /// Parse base64 (standard or URL-safe, padding optional, surrounding whitespace
    /// ignored) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyTextError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyTextError::Empty);
        }
        let mut raw =
            B64_STANDARD.decode(text).or_else(|_| B64_URL_SAFE.decode(text)).map_err(|_| KeyTextError::NotBase64)?;
        let out = match <[u8; KEY_LEN]>::try_from(raw.as_slice()) {
            Ok(mut bytes) => {
                let key = Self::from_bytes(bytes);
                wipe(&mut bytes);
                Ok(key)
            }
            Err(_) => Err(KeyTextError::WrongLength(raw.len())),
        };
        wipe(&mut raw);
        out
    }

    /// The key of this process: `REZ_MASTER_KEY` if set, else `<data_dir>/master.key`
    /// (created on first use). See [`MasterKey::from_value_or_file`].
    pub fn from_env_or_file(data_dir: &Path) -> Result<Self, SecretsError> {
        match std::env::var_os(MASTER_KEY_ENV) {
            None => Self::from_value_or_file(None, data_dir),
            Some(v) => {
                let v = v.into_string().map_err(|_| SecretsError::EnvKeyNotUnicode)?;
                Self::from_value_or_file(Some(&v), data_dir)
            }
        }
    }

    /// `env_value` is the content of `REZ_MASTER_KEY` (if set; an empty value is an
    /// error, not "unset"). Without it the key file `<data_dir>/master.key` is read —
    /// refused if group or others may access it — or created atomically with a random
    /// key and mode 0600.
    pub fn from_value_or_file(env_value: Option<&str>, data_dir: &Path) -> Result<Self, SecretsError> {
        match env_value {
            Some(v) => Self::from_base64(v).map_err(SecretsError::BadEnvKey),
            None => Self::load_or_create_file(&data_dir.join(MASTER_KEY_FILE)),
        }
    }

    /// Read the key file at `path`, or create it if it does not exist. Two processes
    /// creating it at once end up with the same key: the file appears under its name
    /// only when complete (written to a temporary file, synced, then hard-linked, which
    /// never replaces an existing file).
    pub fn load_or_create_file(path: &Path) -> Result<Self, SecretsError> {
        match std::fs::File::open(path) {
            Ok(file) => return Self::read_key_file(file, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open", path)(e)),
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io_err("create the directory", &dir))?;

        let mut bytes = random_bytes::<KEY_LEN>().map_err(SecretsError::Random)?;
        let mut text = B64_STANDARD.encode(bytes);
        text.push('\n');
        let key = Self::from_bytes(bytes);
        wipe(&mut bytes);

        let tmp = dir.join(format!(".{MASTER_KEY_FILE}.{}.tmp", ulid::Ulid::new()));
        let written = write_new_private(&tmp, text.as_bytes());
        // The key's text is no longer needed: wipe it before it is freed.
        let mut text_bytes = text.into_bytes();
        wipe(&mut text_bytes);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(&dir);
                tracing::warn!(
                    path = %path.display(),
                    "created a new master key for the secret store; back it up: without it the stored secrets cannot be read"
                );
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let file = std::fs::File::open(path).map_err(io_err("open", path))?;
                Self::read_key_file(file, path)
            }
            Err(e) => Err(io_err("create", path)(e)),
        }
    }

    fn read_key_file(file: std::fs::File, path: &Path) -> Result<Self, SecretsError> {
        let meta = file.metadata().map_err(io_err("inspect", path))?;
        if !meta.is_file() {
            return Err(SecretsError::KeyFileNotRegular { path: path.to_owned() });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretsError::KeyFilePermissions { path: path.to_owned(), mode });
            }
        }
        let mut raw = Vec::with_capacity(64);
        file.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut raw).map_err(io_err("read", path))?;
        let out = if raw.len() as u64 > MAX_KEY_FILE_LEN {
            Err(KeyTextError::NotBase64)
        } else {
            std::str::from_utf8(&raw).map_err(|_| KeyTextError::NotBase64).and_then(Self::from_base64)
        };
        wipe(&mut raw);
        out.map_err(|reason| SecretsError::BadKeyFile { path: path.to_owned(), reason })
    }

    /// Encrypt `plaintext` for the secret `name`: (nonce, ciphertext with tag).
    fn seal(&self, name: &str, plaintext: &[u8]) -> StoreResult<([u8; NONCE_LEN], Vec<u8>)> {
        let nonce = random_bytes::<NONCE_LEN>().map_err(StoreError::Unavailable)?;
        let aad = aad(name);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| StoreError::Unavailable(format!("cannot encrypt secret `{name}`")))?;
        Ok((nonce, ciphertext))
    }

    /// Decrypt the stored row of `name`.
    fn open(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> StoreResult<SecretValue> {
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce)
            .map_err(|_| StoreError::Corrupt(format!("secret `{name}`: nonce of {} bytes", nonce.len())))?;
        let aad = aad(name);
        let plain =
            self.cipher.decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: &aad }).map_err(|_| {
                StoreError::Corrupt(format!(
                    "secret `{name}` cannot be decrypted: the master key does not match the one it was stored \
                     with ({MASTER_KEY_ENV} or {MASTER_KEY_FILE} in the data directory), or the row was \
                     altered; restore the original key or set the secret again"
                ))
            })?;
        match String::from_utf8(plain) {
            Ok(s) => Ok(SecretValue::new(s)),
            Err(e) => {
                let mut bytes = e.into_bytes();
                wipe(&mut bytes);
                Err(StoreError::Corrupt(format!("secret `{name}` is not valid UTF-8")))
            }
        }
    }
}

fn aad(name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + name.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    rand::rngs::OsRng.try_fill_bytes(&mut out).map_err(|e| format!("random number generator: {e}"))?;
    Ok(out)
}

/// Create `path` (which must not exist) readable by its owner only, write `data` and
/// flush it to disk.
fn write_new_private(path: &Path, data: &[u8]) -> Result<(), SecretsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err("create", path))?;
    file.write_all(data).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))?;
    Ok(())
}

/// Make a new directory entry durable (best effort; not possible on every platform).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the directory of the master key file");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Accept `name` if it matches `[a-z0-9_./-]{1,128}`.
pub fn check_secret_name(name: &str) -> Result<(), SecretsError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SECRET_NAME_LEN
        && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b'-'));
    if ok { Ok(()) } else { Err(SecretsError::InvalidName(name.to_owned())) }
}

fn checked(name: &str) -> StoreResult<()> {
    check_secret_name(name).map_err(|e| StoreError::Conflict(e.to_string()))
}

/// The environment variable that can provide the secret `name` when it is not stored:
/// `REZ_SECRET_` + the name upper-cased with `/`, `.` and `-` replaced by `_`
/// (`golf/birdsfoot` → `REZ_SECRET_GOLF_BIRDSFOOT`). Names differing only in those
/// characters share a variable.
pub fn secret_env_var(name: &str) -> String {
    let mut var = String::with_capacity(SECRET_ENV_PREFIX.len() + name.len());
    var.push_str(SECRET_ENV_PREFIX);
    var.extend(name.chars().map(|c| match c {
        '/' | '.' | '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    var
}

impl LocalStore {
    /// Use `key` to seal and open secrets. Without it, storing a secret or reading a
    /// stored one is `StoreError::Unavailable`.
    pub fn with_master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(Arc::new(key));
        self
    }

    fn master_key(&self) -> StoreResult<Arc<MasterKey>> {
        self.master_key.clone().ok_or_else(|| {
            StoreError::Unavailable(format!(
                "no master key configured for the secret store: set {MASTER_KEY_ENV} or let rez create \
                 {MASTER_KEY_FILE} in the data directory"
            ))
        })
    }

    /// [`SecretStore::get_secret`] with the environment lookup supplied by the caller
    /// (`env(variable) -> value`), so the fallback can be tested without touching the
    /// process environment.
    pub async fn get_secret_with_env<E>(&self, name: &str, env: E) -> StoreResult<Option<SecretValue>>
    where
        E: FnOnce(&str) -> Option<String> + Send,
    {
        checked(name)?;
        let key_name = name.to_owned();
        let row = self
            .db
            .read(move |c| {
                c.prepare_cached("SELECT nonce, ciphertext FROM secrets WHERE name = ?1")
                    .map_err(sql)?
                    .query_row([key_name], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))
                    .optional()
                    .map_err(sql)
            })
            .await?;
        match row {
            Some((nonce, ciphertext)) => self.master_key()?.open(name, &nonce, &ciphertext).map(Some),
            None => Ok(env(&secret_env_var(name)).filter(|v| !v.is_empty()).map(SecretValue::new)),
        }
    }
}

#[async_trait]
impl SecretStore for LocalStore {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        self.get_secret_with_env(name, |var| std::env::var(var).ok()).await
    }

    async fn put_secret(&self, name: &str, value: &SecretValue) -> StoreResult<()> {
        checked(name)?;
        let (nonce, ciphertext) = self.master_key()?.seal(name, value.expose().as_bytes())?;
        let name = name.to_owned();
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                ctx.tx
                    .prepare_cached(
                        "INSERT INTO secrets (name, nonce, ciphertext, updated_ms) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT(name) DO UPDATE SET nonce = excluded.nonce, \
                         ciphertext = excluded.ciphertext, updated_ms = excluded.updated_ms",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![name, nonce.as_slice(), ciphertext, now_ms])
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<bool> {
        checked(name)?;
        let name = name.to_owned();
        self.db
            .write(move |ctx| {
                let n = ctx.tx.execute("DELETE FROM secrets WHERE name = ?1", [name]).map_err(sql)?;
                Ok(n > 0)
            })
            .await
    }

    async fn list_secrets(&self) -> StoreResult<Vec<SecretInfo>> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare("SELECT name, updated_ms FROM secrets ORDER BY name").map_err(sql)?;
                let mut rows = stmt.query([]).map_err(sql)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    out.push(SecretInfo { name: r.get(0).map_err(sql)?, updated_date: ts(r.get(1).map_err(sql)?)? });
                }
                Ok(out)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["golf/birdsfoot", "a", "x.y-z_0/9", &"a".repeat(128)] {
            assert!(check_secret_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Golf", "golf birdsfoot", "é", "a\n", &"a".repeat(129)] {
            assert!(check_secret_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_names() {
        assert_eq!(secret_env_var("golf/birdsfoot"), "REZ_SECRET_GOLF_BIRDSFOOT");
        assert_eq!(secret_env_var("a.b-c_d/0"), "REZ_SECRET_A_B_C_D_0");
    }

    #[test]
    fn seal_open_binds_name() {
        let key = MasterKey::from_bytes([7; 32]);
        let (nonce, ct) = key.seal("a", b"value").expect("seal");
        assert_eq!(key.open("a", &nonce, &ct).expect("open").expose(), "value");
        assert!(matches!(key.open("b", &nonce, &ct), Err(StoreError::Corrupt(_))));
        let (nonce2, _) = key.seal("a", b"value").expect("seal");
        assert_ne!(nonce, nonce2, "a fresh nonce per write");
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", MasterKey::from_bytes([1; 32])), "MasterKey(<redacted>)");
    }
}
