//! The database handle: one writer thread with group commit, and a pool of readers.
//!
//! Why a writer thread: SQLite allows one writer at a time, and an fsync per request
//! caps throughput at the disk's fsync rate. The writer takes every write job that is
//! waiting, runs each in its own savepoint (one job's failure rolls back only that job),
//! commits once, and only then answers the callers. So every acknowledged write is
//! durable, and N concurrent writes cost one fsync.
//!
//! The hot jobs (publish, receive, complete) run without a savepoint
//! ([`Db::write_unisolated`]): a savepoint makes SQLite copy every page the job touches
//! into a statement journal first, which was a sixth of the writer's CPU per delivery.
//! Such a job does its checks before its first write, so it fails after writing only
//! when SQLite itself fails; if it ever does, the whole group is rolled back and every
//! job in it is answered as if the commit had failed (see [`Guard::Group`]).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rez_core::ports::{StoreError, StoreResult};
use rez_core::routing::QueueName;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use crate::migrations;
use crate::wake;

/// Most jobs folded into one commit.
const MAX_GROUP: usize = 1024;
/// Readers kept open for reuse.
const MAX_IDLE_READERS: usize = 8;
/// Connections kept for [`Db::read_point`]; one per thread that reads at the same moment.
const MAX_POINT_READERS: usize = 8;
/// How long a connection waits for a lock (the point readers never wait).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Once the WAL holds this many pages and no write is waiting, the checkpointer thread
/// copies it into the database file (SQLite's own auto-checkpoint threshold).
const CHECKPOINT_WHEN_IDLE: usize = 1000;
/// ...and at this many pages, even under continuous load, the writer checkpoints itself,
/// holding the next group: the WAL can only restart when a checkpoint has copied all of
/// it, which under load happens only like this. Checkpointing sooner under load copied
/// the same hot pages over and over (more CPU per message, measured).
const CHECKPOINT_ALWAYS: usize = 10_000;
/// A group commit or a checkpoint that takes this long is logged at debug level, with
/// where its time went: the latency target from request to delivery is 20 ms.
const SLOW_DEBUG: Duration = Duration::from_millis(20);
/// ...and at warn level from this long on: every write waits behind it.
const SLOW_WARN: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("migration {version} failed: {source}")]
    Migration { version: u32, source: rusqlite::Error },
    #[error("database {path} has schema version {found}, newer than this build knows ({known}); upgrade rez")]
    TooNew { path: PathBuf, found: u32, known: u32 },
    #[error("cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

/// Why `rez backup` failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    File(#[from] crate::files::PrivateFileError),
    #[error("copying the database failed: {0}")]
    Store(#[from] StoreError),
}

/// What a write job can touch besides the transaction: queues to wake after commit.
pub struct WriteCtx<'a> {
    pub tx: &'a Transaction<'a>,
    woken: &'a mut HashSet<QueueName>,
}

impl WriteCtx<'_> {
    /// Wake consumers of `queue` once this write is committed.
    pub fn wake(&mut self, queue: QueueName) {
        self.woken.insert(queue);
    }

    /// Run `f` under its own savepoint, inside this job: if it fails (or panics), only
    /// its changes are rolled back and the rest of the job stands. For jobs that apply
    /// several independent writes (a batch of firings).
    pub fn isolated<T>(&mut self, f: impl FnOnce(&mut WriteCtx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let tx = self.tx;
        run_cached(tx, "SAVEPOINT part").map_err(sql)?;
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a write panicked; its changes were rolled back".into())));
        match out {
            Ok(v) => match run_cached(tx, "RELEASE part") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = run_cached(tx, "ROLLBACK TO part").and_then(|()| run_cached(tx, "RELEASE part"));
                    Err(sql(e))
                }
            },
            Err(e) => {
                let _ = run_cached(tx, "ROLLBACK TO part").and_then(|()| run_cached(tx, "RELEASE part"));
                Err(e)
            }
        }
    }
}

/// Run one cached statement that returns no rows.
fn run_cached(tx: &Transaction<'_>, statement: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(statement)?.execute([])?;
    Ok(())
}

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
type RunJob = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Completion) + Send>;

struct Job {
    run: RunJob,
    /// Do not commit the group this job is in before this resolves (or its sender is
    /// dropped): see [`Db::write_parts_committed_after`].
    commit_after: Option<oneshot::Receiver<()>>,
    guard: Guard,
}

/// What undoes a job's writes when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Its own savepoint: all or nothing, and a failure touches no other job.
    Savepoint,
    /// Nothing around the whole job: it isolates each of its parts itself
    /// ([`WriteCtx::isolated`]). Nesting every part's savepoint in an outer one makes
    /// SQLite keep every page the whole job touches in the sub-journal, which made a
    /// batch of 1,000 firings twice as slow.
    Parts,
    /// No savepoint at all. A job that fails after changing rows (or panics) rolls back
    /// the whole group: every job already run in it is answered as if the commit had
    /// failed, and the jobs not yet run go on in a new transaction. A job that fails
    /// before its first write disturbs nobody.
    Group,
}

struct Shared {
    path: PathBuf,
    readers: ReaderPool,
    /// Connections for [`Db::read_point`]: they never wait for a lock (busy timeout 0).
    point_readers: ReaderPool,
    wakers: Vec<(QueueName, watch::Sender<u64>)>,
    /// Bumped when another process says it committed (see [`crate::wake`]).
    external: watch::Sender<u64>,
    /// Set when this process listens on the wake socket; it does not poke it after its
    /// own commits then.
    listener: OnceLock<wake::Listener>,
    /// Told how long each successful `COMMIT` took (see [`Db::on_commit`]).
    commit_observer: OnceLock<CommitObserver>,
}

type CommitObserver = Box<dyn Fn(Duration) + Send + Sync>;

impl Shared {
    /// Wake this process's consumers of `queue`.
    fn wake(&self, queue: QueueName) {
        if let Some((_, tx)) = self.wakers.iter().find(|(q, _)| *q == queue) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn wake_all(&self) {
        for (_, tx) in &self.wakers {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
        self.external.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Cheap to clone; all clones share the writer thread and the reader pool.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::UnboundedSender<Job>,
    shared: Arc<Shared>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Open {
                path: path.to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let mut writer = open_conn(path, true)?;
        migrations::run(&mut writer, path)?;
        // Replaces SQLite's auto-checkpoint, which runs inside the COMMIT that crosses its
        // threshold, so whichever caller's commit that was waited for a checkpoint too
        // (tens of ms in the firing-lateness benchmark). The writer loop asks the
        // checkpointer thread instead (see `checkpointer_loop`).
        let wal_pages = Arc::new(AtomicUsize::new(0));
        let pages = wal_pages.clone();
        writer
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                pages.store(usize::try_from(n).unwrap_or(0), Ordering::Relaxed);
                Ok(())
            }))
            .map_err(|source| DbError::Open { path: path.to_owned(), source })?;

        let wakers = QueueName::ALL.iter().map(|q| (*q, watch::channel(0u64).0)).collect();
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            readers: ReaderPool::new(MAX_IDLE_READERS, BUSY_TIMEOUT),
            point_readers: ReaderPool::new(MAX_POINT_READERS, Duration::ZERO),
            wakers,
            external: watch::channel(0u64).0,
            listener: OnceLock::new(),
            commit_observer: OnceLock::new(),
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        let (checkpoints, requested) = std::sync::mpsc::sync_channel(1);
        let checkpoint_path = path.to_owned();
        std::thread::Builder::new()
            .name("rez-sqlite-checkpointer".into())
            .spawn(move || checkpointer_loop(&checkpoint_path, &requested))
            .map_err(DbError::Thread)?;
        let for_thread = shared.clone();
        std::thread::Builder::new()
            .name("rez-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, for_thread, wal_pages, checkpoints))
            .map_err(DbError::Thread)?;
        Ok(Self { jobs, shared })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Run `f` in the next group commit; resolves after the commit is durable.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, Guard::Savepoint, None).await
    }

    /// Like [`Db::write`], without a savepoint of its own: for hot jobs that make every
    /// check (receipt, state machine, existence) before their first write, so that they
    /// can fail after writing only when SQLite fails. If such a job does fail after
    /// changing rows (or panics), the whole group is rolled back: its other jobs are
    /// answered with an error as if the commit had failed, which every caller handles
    /// already, and nothing half-done is committed. A job that fails before its first
    /// write is answered with its error and disturbs nobody.
    pub async fn write_unisolated<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, Guard::Group, None).await
    }

    /// Like [`Db::write`], for a job made of independent parts that `f` runs each under
    /// [`WriteCtx::isolated`]: there is no savepoint around the whole job, so what `f`
    /// did before failing or panicking outside a part is committed with the group.
    pub async fn write_parts<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, Guard::Parts, None).await
    }

    /// Like [`Db::write_parts`], but the commit waits until `open` fires (or its sender
    /// is dropped): the writes are done ahead, only the commit is left for the moment.
    /// The writer thread holds the group while it waits, so callers send such a job
    /// only shortly before `open` (schedule firings: the batch's expected apply time).
    pub async fn write_parts_committed_after<T, F>(&self, f: F, open: oneshot::Receiver<()>) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, Guard::Parts, Some(open)).await
    }

    async fn submit<T, F>(&self, f: F, guard: Guard, commit_after: Option<oneshot::Receiver<()>>) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel::<StoreResult<T>>();
        let run: RunJob = Box::new(move |ctx| {
            let result = f(ctx);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let out = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                let _ = reply.send(out);
            });
            (ok, completion)
        });
        self.jobs
            .send(Job { run, commit_after, guard })
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the database writer dropped a job".into()))?
    }

    /// Tell `observe` how long each successful group commit's `COMMIT` took: writing the
    /// group's pages to the WAL and syncing it, the disk's part of every write's latency
    /// (a metric). Runs on the writer thread, so it must be quick. The first observer set
    /// stays; later calls are ignored.
    pub fn on_commit(&self, observe: impl Fn(Duration) + Send + Sync + 'static) {
        let _ = self.shared.commit_observer.set(Box::new(observe));
    }

    /// Run `f` on a pooled read connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.readers.with(&shared.path, f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Run a lookup by key on the calling thread, with a pooled connection that never
    /// waits for a lock. For the hot single-row reads (the notification processor's
    /// inbox check, once per delivery): handing each to a blocking thread and back cost
    /// more CPU than the read itself (a tenth of the pipeline's, measured with `perf`).
    ///
    /// A WAL-mode reader takes no lock the writer holds, so such a read is a few page
    /// lookups in memory-mapped WAL index and cached pages (microseconds). Should SQLite
    /// ever report the database busy (a reader racing a WAL reset), the read fails at
    /// once instead of blocking an async worker thread; callers treat that like any
    /// other transient store error. Anything that scans belongs in [`Db::read`]. (A
    /// thread's first point read opens its connection here too; they are kept after.)
    pub fn read_point<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.shared.point_readers.with(&self.shared.path, f)
    }

    /// Wake this process's consumers of `queue`, as a commit that wrote to it does.
    pub(crate) fn wake(&self, queue: QueueName) {
        self.shared.wake(queue);
    }

    /// A receiver that changes whenever work is committed to `queue` by this process.
    pub fn subscribe(&self, queue: QueueName) -> watch::Receiver<u64> {
        self.shared
            .wakers
            .iter()
            .find(|(q, _)| *q == queue)
            .map(|(_, tx)| tx.subscribe())
            .unwrap_or_else(|| watch::channel(0).1)
    }

    /// Listen for other processes' commits to this database (`rez serve` does): each one
    /// wakes every queue's consumers and [`Db::subscribe_external`]. Needs a tokio
    /// runtime. False when another live process already listens (or the platform has no
    /// Unix sockets); idle polls then notice other processes' writes.
    pub fn listen_for_other_processes(&self) -> bool {
        if self.shared.listener.get().is_some() {
            return true;
        }
        let shared = Arc::downgrade(&self.shared);
        let listener = wake::listen(&wake::socket_path(&self.shared.path), move || {
            if let Some(s) = shared.upgrade() {
                s.wake_all();
            }
        });
        match listener {
            Some(l) => {
                let _ = self.shared.listener.set(l);
                true
            }
            None => false,
        }
    }

    /// A receiver that changes whenever another process signals a commit (only while
    /// [`Db::listen_for_other_processes`] is on): schedules it created, for instance.
    pub fn subscribe_external(&self) -> watch::Receiver<u64> {
        self.shared.external.subscribe()
    }

    /// A consistent snapshot of the whole database into `dest` (`VACUUM INTO`).
    ///
    /// `dest` must not exist. It is created empty with mode 0600 before SQLite writes into
    /// it (`VACUUM INTO` accepts an empty file), so the copy is never readable by others,
    /// not even while it is being written; a partial copy is removed.
    pub async fn backup(&self, dest: PathBuf) -> Result<(), BackupError> {
        drop(crate::files::create_private_file(&dest)?);
        let target = dest.clone();
        let copied = self
            .read(move |c| {
                c.execute("VACUUM INTO ?1", [target.to_string_lossy()]).map_err(sql)?;
                Ok(())
            })
            .await;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&dest);
            return Err(e.into());
        }
        // SQLite keeps an existing file's mode; check that nothing widened it.
        crate::files::set_mode(&dest, crate::files::PRIVATE_FILE_MODE)?;
        Ok(())
    }
}

/// Read connections, each taken for one read and given back after; at most `max_idle`
/// are kept open.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    busy_timeout: Duration,
}

impl ReaderPool {
    fn new(max_idle: usize, busy_timeout: Duration) -> Self {
        Self { idle: Mutex::new(Vec::new()), max_idle, busy_timeout }
    }

    /// Run `f` on the calling thread with an idle connection, or a new one.
    fn with<T>(&self, path: &Path, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open(path).map_err(|e| StoreError::Unavailable(e.to_string()))?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        out
    }

    fn open(&self, path: &Path) -> Result<Connection, DbError> {
        let conn = open_conn(path, false)?;
        conn.busy_timeout(self.busy_timeout).map_err(|source| DbError::Open { path: path.to_owned(), source })?;
        Ok(conn)
    }
}

fn open_conn(path: &Path, writer: bool) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|source| DbError::Open { path: path.to_owned(), source })?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the writer answers. Group commit pays for it.
        conn.pragma_update(None, "synchronous", if writer { "FULL" } else { "NORMAL" })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Small page caches keep idle memory low; the working set is small and hot.
        conn.pragma_update(None, "cache_size", if writer { -2048 } else { -512 })?;
        // The same plan whatever the bound values. Without it, SQLite (built with STAT4)
        // marks a cached statement with a range on an indexed column to be re-parsed and
        // re-planned at every new binding: the receive query was compiled afresh on each
        // call. Our statements have one right plan.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Every hot write path uses cached statements; the default 16 slots are fewer than
        // the writer's distinct statements, and an evicted statement is re-parsed.
        conn.set_prepared_statement_cache_capacity(if writer { 128 } else { 32 });
        Ok(())
    };
    setup().map_err(|source| DbError::Open { path: path.to_owned(), source })?;
    Ok(conn)
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Job>,
    shared: Arc<Shared>,
    wal_pages: Arc<AtomicUsize>,
    checkpoints: std::sync::mpsc::SyncSender<()>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(64);
    let mut poke = wake::Sender::default();
    let wake_path = wake::socket_path(&shared.path);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut woken = HashSet::new();
        let started = Instant::now();
        let mut commit_took = Duration::ZERO;
        let commit = run_group(&mut conn, &mut batch, &mut completions, &mut woken, &mut commit_took);
        log_if_slow(started.elapsed(), completions.len(), commit_took, wal_pages.load(Ordering::Relaxed));
        if let Err(e) = &commit {
            tracing::error!(error = %e, jobs = completions.len(), "group commit failed");
        }
        let ok = commit.is_ok();
        if let (true, Some(observe)) = (ok, shared.commit_observer.get()) {
            observe(commit_took);
        }
        for c in completions.drain(..) {
            c(commit.clone());
        }
        if ok {
            for q in woken {
                shared.wake(q);
            }
            // Tell a server sharing this database (if any) to look now.
            if shared.listener.get().is_none() {
                poke.poke(&wake_path);
            }
        }
        let pages = wal_pages.load(Ordering::Relaxed);
        if pages >= CHECKPOINT_ALWAYS {
            checkpoint(&conn, "writer");
            wal_pages.store(0, Ordering::Relaxed);
        } else if pages >= CHECKPOINT_WHEN_IDLE && rx.is_empty() {
            // Full means one is running or asked for already; it copies these pages too.
            let _ = checkpoints.try_send(());
        }
    }
    tracing::debug!("database writer stopped");
}

/// Checkpoints on request, on a connection of its own (opened at the first request): a
/// PASSIVE checkpoint takes no lock the writer needs, so the copy and its two syncs run
/// beside the writer instead of holding the next group of writes. Ends when the writer
/// thread does.
fn checkpointer_loop(path: &Path, requested: &std::sync::mpsc::Receiver<()>) {
    let mut conn = None;
    while requested.recv().is_ok() {
        if conn.is_none() {
            match open_conn(path, true) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the checkpoint connection; the next request retries");
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            checkpoint(c, "checkpointer");
        }
    }
}

/// Log a group commit that took long, with how many jobs it answered, how much of the
/// time was the `COMMIT` itself (the WAL's sync) and how many pages the WAL holds. A group
/// held by a commit gate (schedule firings) counts its wait: the writers behind it wait
/// too.
fn log_if_slow(took: Duration, jobs: usize, commit: Duration, wal_pages: usize) {
    if took < SLOW_DEBUG {
        return;
    }
    let (took_ms, commit_ms) = (took.as_secs_f64() * 1e3, commit.as_secs_f64() * 1e3);
    if took >= SLOW_WARN {
        tracing::warn!(jobs, took_ms, commit_ms, wal_pages, "slow group commit");
    } else {
        tracing::debug!(jobs, took_ms, commit_ms, wal_pages, "slow group commit");
    }
}

/// Copy the WAL's committed pages into the database file without waiting for readers
/// (PASSIVE); what a reader still needs is copied by a later checkpoint. `by` names the
/// thread, for the log.
fn checkpoint(conn: &Connection, by: &'static str) {
    let started = Instant::now();
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    let took = started.elapsed();
    let took_ms = took.as_secs_f64() * 1e3;
    match result {
        Ok((busy, log, done)) if took >= SLOW_WARN => {
            tracing::warn!(by, busy, log, done, took_ms, "slow WAL checkpoint")
        }
        Ok((busy, log, done)) => tracing::debug!(by, busy, log, done, took_ms, "WAL checkpoint"),
        // The other thread's checkpoint is running; it copies the same pages.
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            tracing::debug!("WAL checkpoint already running")
        }
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries"),
    }
}

fn run_group(
    conn: &mut Connection,
    batch: &mut Vec<Job>,
    completions: &mut Vec<Completion>,
    woken: &mut HashSet<QueueName>,
    commit_took: &mut Duration,
) -> Result<(), String> {
    let mut jobs = batch.drain(..);
    loop {
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            // Answer every job not run yet with the failure: dropping a job drops its
            // reply sender, and its caller sees an error. Jobs already answered stay so.
            Err(e) => return Err(e.to_string()),
        };
        let mut commit_gates = Vec::new();
        let mut failed = None;
        for job in jobs.by_ref() {
            if let Some(f) = run_job(&tx, job, completions, woken, &mut commit_gates) {
                failed = Some(f);
                break;
            }
        }
        let Some(failed) = failed else {
            for gate in commit_gates {
                // Resolves when the moment comes, or at once if the sender is gone.
                let _ = gate.blocking_recv();
            }
            let committing = Instant::now();
            let committed = tx.commit().map_err(|e| e.to_string());
            *commit_took = committing.elapsed();
            return committed;
        };
        // A job without a savepoint failed halfway: nothing of this transaction may
        // stand. Everyone in it is answered as if the commit had failed; the failed job
        // with its own error. The jobs not run yet go on in a new transaction.
        let reason = match tx.rollback() {
            Ok(()) => format!("rolled back with a write that failed in the same group: {}", failed.error),
            Err(e) => format!("rolled back ({e}) with a write that failed in the same group: {}", failed.error),
        };
        tracing::error!(error = %failed.error, jobs = completions.len(), "a write without a savepoint failed after changing rows; the group was rolled back");
        for c in completions.drain(..) {
            c(Err(reason.clone()));
        }
        if let Some(own) = failed.completion {
            own(Ok(()));
        }
        woken.clear();
    }
}

/// A job without a savepoint that failed after changing rows: its group must be rolled
/// back. `completion` answers it with its own error (none if it panicked).
struct FailedHalfway {
    completion: Option<Completion>,
    error: String,
}

/// Run one job inside the group's transaction (under its own savepoint unless it
/// isolates its parts itself or goes without one), collecting its completion and commit
/// gate. Returns the failure of a savepoint-less job that changed rows before failing.
fn run_job(
    tx: &Transaction<'_>,
    job: Job,
    completions: &mut Vec<Completion>,
    woken: &mut HashSet<QueueName>,
    commit_gates: &mut Vec<oneshot::Receiver<()>>,
) -> Option<FailedHalfway> {
    let Job { run, commit_after, guard } = job;
    commit_gates.extend(commit_after);
    match guard {
        Guard::Parts => {
            // Its parts are isolated by the job itself; whatever it wrote stands.
            let mut ctx = WriteCtx { tx, woken: &mut *woken };
            match std::panic::catch_unwind(AssertUnwindSafe(|| run(&mut ctx))) {
                Ok((_, completion)) => completions.push(completion),
                Err(_) => tracing::error!("a write job panicked outside its isolated parts"),
            }
            None
        }
        Guard::Group => {
            let changes_before = tx.total_changes();
            let mut job_woken = HashSet::new();
            let mut ctx = WriteCtx { tx, woken: &mut job_woken };
            match std::panic::catch_unwind(AssertUnwindSafe(|| run(&mut ctx))) {
                Ok((true, completion)) => {
                    woken.extend(job_woken);
                    completions.push(completion);
                    None
                }
                Ok((false, completion)) if tx.total_changes() == changes_before => {
                    completions.push(completion);
                    None
                }
                Ok((false, completion)) => {
                    Some(FailedHalfway { completion: Some(completion), error: "the job failed after writing".into() })
                }
                Err(_) => Some(FailedHalfway { completion: None, error: "a write job panicked".into() }),
            }
        }
        Guard::Savepoint => {
            if let Err(e) = run_cached(tx, "SAVEPOINT job") {
                drop(run);
                tracing::error!(error = %e, "savepoint failed");
                return None;
            }
            let mut job_woken = HashSet::new();
            let mut ctx = WriteCtx { tx, woken: &mut job_woken };
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run(&mut ctx)));
            match outcome {
                Ok((true, completion)) => {
                    let _ = run_cached(tx, "RELEASE job");
                    woken.extend(job_woken);
                    completions.push(completion);
                }
                Ok((false, completion)) => {
                    let _ = run_cached(tx, "ROLLBACK TO job").and_then(|()| run_cached(tx, "RELEASE job"));
                    completions.push(completion);
                }
                Err(_) => {
                    tracing::error!("a write job panicked; its changes were rolled back");
                    let _ = run_cached(tx, "ROLLBACK TO job").and_then(|()| run_cached(tx, "RELEASE job"));
                }
            }
            None
        }
    }
}

/// Map a SQLite error to the port's error.
pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's auto-checkpoint is off on the writer (the WAL hook replaces it), so the
    /// checkpointer thread must copy the WAL into the database once it is past the
    /// threshold: the main database file grows (only a checkpoint writes to it) without
    /// anyone else checkpointing.
    #[tokio::test]
    async fn the_wal_is_checkpointed_into_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rez.db");
        let db = Db::open(&path).expect("open");
        db.write(|ctx| ctx.tx.execute_batch("CREATE TABLE scratch (b BLOB)").map_err(sql)).await.expect("table");
        let before = std::fs::metadata(&path).expect("db file").len();
        // ~1,500 pages of 4 KiB, in commits of 100 rows.
        for _ in 0..15 {
            db.write(|ctx| {
                for _ in 0..100 {
                    ctx.tx.execute("INSERT INTO scratch (b) VALUES (zeroblob(4000))", []).map_err(sql)?;
                }
                Ok(())
            })
            .await
            .expect("insert");
        }
        let mut after = before;
        for _ in 0..100 {
            after = std::fs::metadata(&path).expect("db file").len();
            if after > before + 4_000_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            after > before + 4_000_000,
            "the WAL was not checkpointed into the database: {before} -> {after} bytes"
        );
    }

    /// The commit observer hears of every group commit, before the group's writers are
    /// answered (a metric read after a write includes it), and only one observer is kept.
    #[tokio::test]
    async fn every_commit_is_timed_before_its_writers_hear_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("rez.db")).expect("open");
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        db.on_commit(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        db.on_commit(|_| panic!("a second observer is ignored"));
        table(&db).await;
        for x in 0..3 {
            db.write(move |ctx| ctx.tx.execute("INSERT INTO t VALUES (?1)", [x]).map_err(sql)).await.expect("insert");
            assert_eq!(seen.load(Ordering::SeqCst), usize::try_from(x).expect("small") + 2);
        }
    }

    /// `read_point` runs on the caller's thread, sees what was committed, reuses its
    /// connection, and never waits for a lock (busy timeout 0; `read`'s wait up to 10 s).
    #[tokio::test]
    async fn a_point_read_sees_commits_and_never_waits_for_a_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rez.db");
        let db = Db::open(&path).expect("open");
        db.write(|ctx| ctx.tx.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)").map_err(sql))
            .await
            .expect("table");
        let read = |db: &Db| db.read_point(|c| c.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0)).map_err(sql));
        assert_eq!(read(&db).expect("read"), 7);
        db.write(|ctx| ctx.tx.execute("UPDATE t SET x = 8", []).map_err(sql)).await.expect("update");
        assert_eq!(read(&db).expect("read"), 8, "a pooled connection sees later commits");
        assert_eq!(db.shared.point_readers.idle.lock().expect("pool").len(), 1, "one connection, reused");

        let timeout = db.read_point(|c| c.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0)).map_err(sql));
        assert_eq!(timeout.expect("pragma"), 0, "a point read never waits for a lock");
    }

    /// A cached statement is compiled once: rebinding a range bound (the receive query's
    /// `visible_ms <= ?`) must not re-plan it (see the QPSG setting in `open_conn`).
    #[test]
    fn cached_statements_are_not_re_prepared_when_rebound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rez.db");
        let mut conn = open_conn(&path, true).expect("open");
        migrations::run(&mut conn, &path).expect("migrate");
        let query: &str = &crate::queues::RECEIVE_CANDIDATES;
        for now in 0..5i64 {
            let mut stmt = conn.prepare_cached(query).expect("prepare");
            let rows = stmt.query_map(rusqlite::params!["notify", now, 10i64], |r| r.get::<_, String>(0));
            assert_eq!(rows.expect("query").count(), 0);
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "re-prepared at binding {now}");
        }
    }

    /// Hold the writer inside a job until the returned sender fires, so that the jobs
    /// sent meanwhile land in one group. (`tokio::join!` polls its futures in order, and a
    /// write sends its job at the first poll: the jobs are queued before the release.)
    async fn hold_writer(db: &Db) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (inside, entered) = oneshot::channel();
        let writer = db.clone();
        tokio::spawn(async move {
            writer
                .write(move |_| {
                    let _ = inside.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        entered.await.expect("the writer runs the holding job");
        release
    }

    async fn table(db: &Db) {
        db.write(|ctx| ctx.tx.execute_batch("CREATE TABLE t (x INTEGER)").map_err(sql)).await.expect("table");
    }

    async fn rows(db: &Db) -> Vec<i64> {
        db.read(|c| {
            let mut stmt = c.prepare("SELECT x FROM t ORDER BY x").map_err(sql)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)
        })
        .await
        .expect("rows")
    }

    fn insert(x: i64) -> impl FnOnce(&mut WriteCtx<'_>) -> StoreResult<usize> + Send + 'static {
        move |ctx| ctx.tx.execute("INSERT INTO t VALUES (?1)", [x]).map_err(sql)
    }

    /// A job without a savepoint that fails after writing takes its whole group down
    /// (nothing half-done is committed, and the jobs before it are answered with an
    /// error, not a lie); the jobs after it still commit, in a new transaction.
    #[tokio::test]
    async fn an_unisolated_job_failing_after_writing_rolls_back_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("rez.db")).expect("open");
        table(&db).await;
        let release = hold_writer(&db).await;
        let halfway = |ctx: &mut WriteCtx<'_>| -> StoreResult<usize> {
            ctx.tx.execute("INSERT INTO t VALUES (2)", []).map_err(sql)?;
            Err(StoreError::Conflict("failed after writing".into()))
        };
        let (before, failed, after, ()) =
            tokio::join!(db.write_unisolated(insert(1)), db.write_unisolated(halfway), db.write(insert(3)), async {
                release.send(()).expect("release")
            });
        assert!(
            matches!(&before, Err(StoreError::Unavailable(e)) if e.contains("rolled back")),
            "the job before it was rolled back with it: {before:?}"
        );
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "the failed job gets its own error: {failed:?}");
        assert_eq!(after.expect("the job after it"), 1);
        assert_eq!(rows(&db).await, vec![3]);
    }

    /// A job without a savepoint that fails before writing anything, or panics, is
    /// answered alone in the first case; a panic (which may have come halfway) rolls the
    /// group back like a failure after writing.
    #[tokio::test]
    async fn an_unisolated_job_failing_before_writing_disturbs_nobody() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("rez.db")).expect("open");
        table(&db).await;
        let release = hold_writer(&db).await;
        let refuse = |_: &mut WriteCtx<'_>| -> StoreResult<usize> { Err(StoreError::Conflict("no".into())) };
        let (a, refused, c, ()) = tokio::join!(
            db.write_unisolated(insert(1)),
            db.write_unisolated(refuse),
            db.write_unisolated(insert(3)),
            async { release.send(()).expect("release") }
        );
        assert_eq!((a.expect("a"), c.expect("c")), (1, 1));
        assert!(matches!(refused, Err(StoreError::Conflict(_))));
        assert_eq!(rows(&db).await, vec![1, 3]);

        let release = hold_writer(&db).await;
        let panics = |ctx: &mut WriteCtx<'_>| -> StoreResult<usize> {
            ctx.tx.execute("INSERT INTO t VALUES (5)", []).map_err(sql)?;
            panic!("a bug halfway through a write");
        };
        let (d, panicked, f, ()) = tokio::join!(
            db.write_unisolated(insert(4)),
            db.write_unisolated(panics),
            db.write_unisolated(insert(6)),
            async { release.send(()).expect("release") }
        );
        assert!(d.is_err() && panicked.is_err(), "{d:?} {panicked:?}");
        assert_eq!(f.expect("the job after the panic"), 1);
        assert_eq!(rows(&db).await, vec![1, 3, 6]);
    }

    #[tokio::test]
    async fn a_commit_gate_holds_the_commit_not_the_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("rez.db")).expect("open");
        db.write(|ctx| ctx.tx.execute_batch("CREATE TABLE t (x INTEGER)").map_err(sql)).await.expect("table");
        let (open, opened) = oneshot::channel();
        let writer = db.clone();
        let job = tokio::spawn(async move {
            writer
                .write_parts_committed_after(|ctx| ctx.tx.execute("INSERT INTO t VALUES (1)", []).map_err(sql), opened)
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = |db: Db| async move {
            db.read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).map_err(sql)).await
        };
        assert_eq!(count(db.clone()).await.expect("count"), 0, "nothing is visible before the gate");
        assert!(!job.is_finished(), "the caller is answered only after the commit");
        open.send(()).expect("gate");
        assert_eq!(job.await.expect("join").expect("write"), 1);
        assert_eq!(count(db).await.expect("count"), 1);
    }
}
