//! The SQLite backend: one database file in WAL mode, for a single replica.

use crate::error::BackendError;
use previewd_core::ports::{StoreError, StoreResult, SweepLock};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How long a writer waits for another to finish before failing; SQLite
/// admits one writer at a time and every store write is short.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers run beside the one writer under WAL; more connections than this
/// would only queue on the write lock.
const MAX_CONNECTIONS: u32 = 4;

/// Takes `<database>.lock` for this process, or explains who has it.
fn lock_replica(db: &Path) -> StoreResult<File> {
    let path = PathBuf::from(format!("{}.lock", db.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Invalid {
            field: "store.url",
            rule: format!("cannot open the lock file {}: {e}", path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Invalid {
            field: "store.url",
            rule: format!(
                "another previewd is already using {} (SQLite serves a single replica; run several replicas on PostgreSQL)",
                db.display()
            ),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::Invalid {
            field: "store.url",
            rule: format!("cannot lock {}: {e}", path.display()),
        }),
    }
}

/// Frees every lease an earlier process left behind. The lock file proves
/// that no other process uses this database now, so a lease that is not
/// ours belongs to a process that is gone: waiting for it to run out would
/// only keep a restarted daemon from its own previews (issue 15).
async fn take_back_leases(pool: &SqlitePool) -> StoreResult<()> {
    use crate::error::query;
    let mut freed = [0u64; 2];
    for (n, statement) in freed.iter_mut().zip([
        "UPDATE previews SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
        "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
    ]) {
        *n = sqlx::query(statement)
            .execute(pool)
            .await
            .map_err(query("take_back_leases"))?
            .rows_affected();
    }
    let [rows, reports] = freed;
    if rows + reports > 0 {
        tracing::info!(
            previews = rows,
            reports,
            "took back the leases an earlier process left on this SQLite file"
        );
    }
    Ok(())
}

/// The store on SQLite.
///
/// # Guarantees
/// - Every claim is one `UPDATE … RETURNING` statement, atomic because
///   SQLite has a single writer.
/// - `sqlite::memory:` is one database shared by every caller of this
///   store (a single connection that is never closed for idleness).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// An exclusive lock on `<file>.lock`, held while the store lives: the
    /// leases that keep replicas apart are PostgreSQL's business, so a
    /// second process on the same file is refused outright.
    _replica_lock: Option<Arc<File>>,
    /// Notified after a committed write made a row due: one process is the
    /// only replica, so this in-process wake-up is the whole story.
    wake: Arc<Notify>,
}

impl SqliteStore {
    pub const BACKEND: &'static str = "sqlite";

    /// Opens (creating the file if missing) and migrates the database at
    /// `url`, e.g. `sqlite:///var/lib/previewd/previewd.db` or `sqlite::memory:`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let connect = |source| BackendError::Connect {
            backend: Self::BACKEND,
            source,
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(connect)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        if !in_memory {
            // WAL lets readers run during a write; NORMAL sync is durable
            // across process crashes in WAL mode, which is what we need.
            options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
        }
        let replica_lock = if in_memory {
            None
        } else {
            Some(Arc::new(lock_replica(options.get_filename())?))
        };
        let pool = if in_memory {
            // An in-memory database lives as long as a connection to it, so
            // keep exactly one, forever, and every caller sees the same data.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        }
        .connect_with(options)
        .await
        .map_err(connect)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| BackendError::Migrate {
                backend: Self::BACKEND,
                source,
            })?;
        if replica_lock.is_some() {
            take_back_leases(&pool).await?;
        }
        Ok(Self {
            pool,
            _replica_lock: replica_lock,
            wake: Arc::new(Notify::new()),
        })
    }

    /// The pool, for callers that need SQLite beyond the `Store` port.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Always granted: the lock file already keeps a second replica away,
    /// and two sweeps within one process would only repeat idempotent work.
    pub(crate) async fn take_sweep_lock(&self) -> StoreResult<Option<SweepLock>> {
        Ok(Some(SweepLock::new(())))
    }
}

crate::shared::impl_store!(
    SqliteStore,
    db: sqlx::Sqlite,
    claim_due: crate::sql::CLAIM_DUE_SQLITE,
    claim_outbox: crate::sql::CLAIM_OUTBOX_SQLITE,
);
