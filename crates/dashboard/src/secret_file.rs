//! The dashboard's session secret on disk: 32 random bytes in a file only the owner may
//! read (0600), made on first start and kept, so sessions outlive a restart.

use std::io::{Read, Write};
use std::path::Path;

use crate::session::SessionSecret;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("reading or writing the dashboard secret {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the dashboard secret {path} is not 32 bytes; delete it to make a new one (every session ends)")]
    Malformed { path: String },
}

/// Read the secret at `path`, or make one there (mode 0600) if there is none.
pub fn load_or_create_secret(path: &Path) -> Result<SessionSecret, SecretFileError> {
    let io = |source| SecretFileError::Io { path: path.display().to_string(), source };
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let mut bytes = Vec::with_capacity(32);
            f.read_to_end(&mut bytes).map_err(io)?;
            let arr: [u8; 32] =
                bytes.try_into().map_err(|_| SecretFileError::Malformed { path: path.display().to_string() })?;
            Ok(SessionSecret::new(arr))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            let mut arr = [0u8; 32];
            rand::rng().fill_bytes(&mut arr);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(io)?;
            f.write_all(&arr).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(SessionSecret::new(arr))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_private_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("dashboard.key");
        load_or_create_secret(&p).expect("made");
        let first = std::fs::read(&p).expect("read");
        assert_eq!(first.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        load_or_create_secret(&p).expect("read back");
        assert_eq!(std::fs::read(&p).expect("read"), first, "kept");
        std::fs::write(&p, b"short").expect("write");
        assert!(matches!(load_or_create_secret(&p), Err(SecretFileError::Malformed { .. })));
    }
}
