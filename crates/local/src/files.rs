//! Private files and directories: the data directory (the database, the master key) is
//! `0700` and a backup is `0600`, and a failure to make them so is an error rather than a
//! warning — a backup readable by every local user is a copy of every stored secret's
//! ciphertext and every message.

use std::path::{Path, PathBuf};

/// The data directory's mode.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// A backup's mode.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot make {path} private (mode {mode:04o}): {source}")]
    SetMode { path: PathBuf, mode: u32, source: std::io::Error },
    #[error("{path} has mode {found:04o} after setting {mode:04o}; its file system does not keep permissions")]
    ModeNotKept { path: PathBuf, mode: u32, found: u32 },
}

/// Create `dir` (and its parents) if needed and make it `0700`, whether it was just made
/// or already existed.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateFileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR_MODE);
    builder.create(dir).map_err(|source| PrivateFileError::Create { path: dir.to_owned(), source })?;
    set_mode(dir, PRIVATE_DIR_MODE)
}

/// Create `path`, which must not exist, empty and `0600` from its first instant.
pub fn create_private_file(path: &Path) -> Result<std::fs::File, PrivateFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE_MODE);
    let file = options.open(path).map_err(|source| PrivateFileError::Create { path: path.to_owned(), source })?;
    set_mode(path, PRIVATE_FILE_MODE)?;
    Ok(file)
}

/// Set `path`'s permission bits to `mode` and check that they stuck.
pub fn set_mode(path: &Path, mode: u32) -> Result<(), PrivateFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let err = |source| PrivateFileError::SetMode { path: path.to_owned(), mode, source };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
        let found = std::fs::metadata(path).map_err(err)?.permissions().mode() & 0o7777;
        if found != mode {
            return Err(PrivateFileError::ModeNotKept { path: path.to_owned(), mode, found });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_or_existing_directory_becomes_private() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b");
        ensure_private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn a_new_file_is_private_and_never_replaces_one() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("backup.db");
        create_private_file(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert!(matches!(create_private_file(&p), Err(PrivateFileError::Create { .. })));
    }

    /// `/proc/sys` exists but refuses a mode change, even to root.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_mode_that_cannot_be_set_is_an_error() {
        let e = ensure_private_dir(Path::new("/proc/sys")).unwrap_err();
        assert!(matches!(e, PrivateFileError::SetMode { .. }), "{e}");
    }
}
