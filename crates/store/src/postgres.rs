//! Opening PostgreSQL, where several replicas share the work through
//! per-row leases, and the advisory lock that lets one of them sweep.

use crate::Backend;
use crate::error::{self, BackendError};
use previewd_core::ports::{StoreResult, SweepLock};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use std::str::FromStr;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connects to `url` (`postgres://user@host:5432/db`) and migrates, under
/// sqlx's advisory lock, so replicas starting together do not race on the
/// schema.
pub(crate) async fn connect(url: &str) -> StoreResult<AnyPool> {
    let connect = |source| BackendError::Connect {
        backend: Backend::Postgres.name(),
        source,
    };
    let options = AnyConnectOptions::from_str(url).map_err(connect)?;
    let pool = AnyPoolOptions::new()
        .connect_with(options)
        .await
        .map_err(connect)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| BackendError::Migrate {
            backend: Backend::Postgres.name(),
            source,
        })?;
    Ok(pool)
}

/// A transaction-scoped advisory lock in a transaction kept open for the
/// sweep. Transaction-scoped rather than session-scoped so that every way
/// of letting go releases it: the guard dropped (sqlx rolls back before
/// the connection is reused), a panic, the connection or process dying.
/// A session lock left on a pooled connection would outlive the sweep.
pub(crate) async fn take_sweep_lock(pool: &AnyPool) -> StoreResult<Option<SweepLock>> {
    let mut tx = pool
        .begin()
        .await
        .map_err(error::query("try_sweep_lock: begin"))?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEP_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await
        .map_err(error::query("try_sweep_lock: lock"))?;
    // Not ours: dropping `tx` rolls the empty transaction back.
    Ok(got.then(|| SweepLock::new(tx)))
}

/// The advisory-lock key of the sweep, fixed for every replica: the bytes
/// of "prevgc01", so it is recognisable in `pg_locks`.
const SWEEP_LOCK_KEY: i64 = i64::from_be_bytes(*b"prevgc01");
