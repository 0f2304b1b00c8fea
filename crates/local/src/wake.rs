//! Cross-process wake-ups. Other processes write to the same database as `rez serve`:
//! the `rez` CLI (`send`, `schedules create`, `dlq redrive`, ...) opens it directly. In
//! process, a commit wakes the right consumers at once (`Db::subscribe`); across
//! processes nothing would, and the server would only notice at its next idle poll.
//!
//! So the server binds a Unix datagram socket beside the database (`<db>.wake`), and
//! every other process sends it one empty datagram after each of its commits. That lets
//! the idle workers and the schedule engine sleep for long stretches (no idle CPU)
//! without making a CLI-sent notification wait for a poll.
//!
//! Best effort by design: a lost or refused datagram costs at most one idle-poll interval,
//! never a message — the database is the record, the datagram only says "look now".
//! Unix only; elsewhere both sides are no-ops and the idle polls do the work.

use std::path::{Path, PathBuf};

/// The socket of the server listening on the database at `db`.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".wake");
    PathBuf::from(name)
}

#[cfg(unix)]
mod imp {
    use std::io::ErrorKind;
    use std::os::unix::net::UnixDatagram;
    use std::path::{Path, PathBuf};

    /// The listening side; removes its socket file when dropped.
    pub struct Listener {
        path: PathBuf,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            self.task.abort();
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Bind `path` and call `on_wake` for every datagram, on the current tokio runtime.
    /// `None` when another live process already listens there (it keeps the socket), or
    /// when the socket cannot be made (a path too long for `sun_path`, say).
    pub fn listen(path: &Path, on_wake: impl Fn() + Send + 'static) -> Option<Listener> {
        let socket = match UnixDatagram::bind(path) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                // A live listener answers a connect; a dead one's file refuses it.
                if UnixDatagram::unbound().and_then(|s| s.connect(path)).is_ok() {
                    tracing::info!(socket = %path.display(), "another process serves this database; relying on idle polls for its writes");
                    return None;
                }
                let _ = std::fs::remove_file(path);
                UnixDatagram::bind(path).ok()?
            }
            Err(e) => {
                tracing::info!(socket = %path.display(), error = %e, "no cross-process wake socket; relying on idle polls");
                return None;
            }
        };
        socket.set_nonblocking(true).ok()?;
        let socket = tokio::net::UnixDatagram::from_std(socket).ok()?;
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            loop {
                match socket.recv(&mut buf).await {
                    Ok(_) => on_wake(),
                    Err(e) => {
                        tracing::warn!(error = %e, "wake socket failed; relying on idle polls");
                        return;
                    }
                }
            }
        });
        Some(Listener { path: path.to_owned(), task })
    }

    /// The sending side, kept by a database's writer thread.
    #[derive(Default)]
    pub struct Sender {
        socket: Option<UnixDatagram>,
    }

    impl Sender {
        /// One datagram to `path`, never blocking; every failure (nobody listening, a
        /// full buffer) is ignored.
        pub fn poke(&mut self, path: &Path) {
            if self.socket.is_none() {
                self.socket = UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s)).ok();
            }
            if let Some(s) = &self.socket {
                let _ = s.send_to(&[], path);
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use std::path::Path;

    pub struct Listener;

    pub fn listen(_path: &Path, _on_wake: impl Fn() + Send + 'static) -> Option<Listener> {
        None
    }

    #[derive(Default)]
    pub struct Sender;

    impl Sender {
        pub fn poke(&mut self, _path: &Path) {}
    }
}

pub use imp::{Listener, Sender, listen};

#[cfg(all(test, unix))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    async fn wait_for(count: &AtomicUsize, n: usize) {
        for _ in 0..200 {
            if count.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} wake-ups, saw {}", count.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_poke_from_another_socket_wakes_the_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = socket_path(&dir.path().join("rez.db"));
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let listener = listen(&path, move || {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .expect("listening");
        let mut sender = Sender::default();
        sender.poke(&path);
        sender.poke(&path);
        wait_for(&count, 2).await;
        drop(listener);
        assert!(!path.exists(), "the socket file is removed with the listener");
        // Nobody listens any more: poking is a silent no-op.
        sender.poke(&path);
    }

    #[tokio::test]
    async fn a_second_listener_defers_to_a_live_one_and_replaces_a_dead_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = socket_path(&dir.path().join("rez.db"));
        let first = listen(&path, || {}).expect("first listener");
        assert!(listen(&path, || {}).is_none(), "a live listener keeps the socket");
        drop(first);
        // A crashed server leaves its socket file behind: bound, then closed, not removed.
        drop(std::os::unix::net::UnixDatagram::bind(&path).expect("bind"));
        assert!(path.exists());
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let _second = listen(&path, move || {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .expect("a stale socket file is replaced");
        Sender::default().poke(&path);
        wait_for(&count, 1).await;
    }
}
