//! Opening SQLite: one database file in WAL mode, for a single replica,
//! kept to one process by a lock file.

use crate::Backend;
use crate::error::BackendError;
use previewd_core::ports::{StoreError, StoreResult};
use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How long a writer waits for another to finish before failing (5 s);
/// SQLite admits one writer at a time and every store write is short.
const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";

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
async fn take_back_leases(pool: &AnyPool) -> StoreResult<()> {
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

/// Opens (creating the file if missing) and migrates the database at
/// `url`, e.g. `sqlite:///var/lib/previewd/previewd.db` or
/// `sqlite::memory:`. A file comes with the lock that keeps other
/// processes away, and its leases taken back.
pub(crate) async fn connect(url: &str) -> StoreResult<(AnyPool, Option<Arc<File>>)> {
    let connect = |source| BackendError::Connect {
        backend: Backend::Sqlite.name(),
        source,
    };
    // Parsed here as sqlx's SQLite driver will parse it, for the file's
    // name and to refuse a bad URL before the lock file is made.
    let options = SqliteConnectOptions::from_str(url).map_err(connect)?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let replica_lock = if in_memory {
        None
    } else {
        Some(Arc::new(lock_replica(options.get_filename())?))
    };
    let any_options = AnyConnectOptions::from_str(&any_url(url)).map_err(connect)?;
    let pool = if in_memory {
        // An in-memory database lives as long as a connection to it, so
        // keep exactly one, forever, and every caller sees the same data.
        AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        AnyPoolOptions::new().max_connections(MAX_CONNECTIONS)
    }
    .after_connect(move |conn, _| {
        Box::pin(async move {
            conn.execute(BUSY_TIMEOUT).await?;
            if !in_memory {
                // WAL lets readers run during a write; NORMAL sync is
                // durable across process crashes in WAL mode, which is
                // what we need.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
            }
            Ok(())
        })
    })
    .connect_with(any_options)
    .await
    .map_err(connect)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| BackendError::Migrate {
            backend: Backend::Sqlite.name(),
            source,
        })?;
    if replica_lock.is_some() {
        take_back_leases(&pool).await?;
    }
    Ok((pool, replica_lock))
}

/// The URL the `Any` driver opens: `url` with `mode=rwc`, so a missing
/// file is created. The SQLite driver reads each `mode` as one flag
/// (`ro` read-only, `rwc` create, `memory` in memory), so this adds the
/// create flag and changes no other. The `Any` driver hands the URL's text
/// to the SQLite driver unchanged.
fn any_url(url: &str) -> String {
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}mode=rwc")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Any` driver keeps the URL as a `Url` and gives its text to the
    /// SQLite driver, which must read the same file from it as from ours.
    #[test]
    fn the_any_url_names_the_same_file_and_creates_it() {
        for url in [
            "sqlite://previewd.db",
            "sqlite://Data/Previewd.db",
            "sqlite:///var/lib/previewd/previewd.db",
            "sqlite:///tmp/a dir/p%25.db",
            "sqlite:relative.db",
            "sqlite:///tmp/x.db?cache=private",
        ] {
            let ours = SqliteConnectOptions::from_str(url).unwrap();
            let ours = ours.create_if_missing(true);
            let any = AnyConnectOptions::from_str(&any_url(url)).unwrap();
            let theirs = SqliteConnectOptions::from_str(any.database_url.as_str()).unwrap();
            // Every field, the file's name and the create flag among them.
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{url}");
        }
    }
}
