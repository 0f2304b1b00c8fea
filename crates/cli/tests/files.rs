//! The data directory and backups are private to their owner: the real binary creates
//! the directory 0700 and a backup 0600, and a mode it cannot set is an error.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn rez(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rez"))
        .args(args)
        .env("REZ_DATA_DIR", data_dir)
        .env_remove("REZ_MASTER_KEY")
        .env_remove("REZ_CONFIG")
        .output()
        .expect("run rez")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn data_directory_is_0700_and_backup_is_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // An existing, open directory is made private too.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = rez(&data, &["config", "check"]);
    assert_eq!(mode(&data), 0o700, "config check: {}", String::from_utf8_lossy(&out.stdout));
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = rez(&data, &["keys", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&data), 0o700);

    let fresh = tmp.path().join("fresh/nested");
    assert!(rez(&fresh, &["keys", "list"]).status.success());
    assert_eq!(mode(&fresh), 0o700);

    let dest = tmp.path().join("backup.db");
    let out = rez(&data, &["backup", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&dest), 0o600);
    assert!(std::fs::metadata(&dest).unwrap().len() > 0, "the backup has the database");
    // An existing destination is never overwritten.
    assert!(!rez(&data, &["backup", dest.to_str().unwrap()]).status.success());
}

/// `/proc/sys` exists but refuses a mode change, even to root: the command must stop
/// with the reason instead of carrying on in a directory others may read.
#[cfg(target_os = "linux")]
#[test]
fn a_data_directory_that_cannot_be_made_private_is_an_error() {
    let out = rez(Path::new("/proc/sys"), &["keys", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot make /proc/sys private"), "{err}");
    let out = rez(Path::new("/proc/sys"), &["config", "check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot make /proc/sys private"));
}
