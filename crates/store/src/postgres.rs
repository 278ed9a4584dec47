//! The PostgreSQL backend: several replicas share the work through per-row
//! leases taken with `FOR UPDATE SKIP LOCKED`.

use crate::error::BackendError;
use previewd_core::ports::{StoreResult, SweepLock};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::Notify;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The store on PostgreSQL.
///
/// # Guarantees
/// - Replicas claiming at once never receive the same row or outbox
///   message: the claim's subselect skips rows another claimer has locked
///   and re-checks a row that changed under it.
/// - Migrations run under sqlx's advisory lock, so replicas starting
///   together do not race on the schema.
///
/// # Assumptions
/// - The database exists: creating it is the operator's job (and privilege).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Notified after this process's committed write made a row due, and
    /// by [`crate::wake_on_writes`] (fed this handle) after any replica's.
    wake: Arc<Notify>,
}

impl PgStore {
    pub const BACKEND: &'static str = "postgres";

    /// Connects to `url` (`postgres://user@host:5432/db`) and migrates.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|source| BackendError::Connect {
            backend: Self::BACKEND,
            source,
        })?;
        Self::connect_with(options).await
    }

    /// Like [`PgStore::connect`], from options built in code.
    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .connect_with(options)
            .await
            .map_err(|source| BackendError::Connect {
                backend: Self::BACKEND,
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| BackendError::Migrate {
                backend: Self::BACKEND,
                source,
            })?;
        Ok(Self {
            pool,
            wake: Arc::new(Notify::new()),
        })
    }

    /// The pool, for advisory locks and `LISTEN/NOTIFY` beside the port.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction-scoped advisory lock in a transaction kept open for the
    /// sweep. Transaction-scoped rather than session-scoped so that every way
    /// of letting go releases it: the guard dropped (sqlx rolls back before
    /// the connection is reused), a panic, the connection or process dying.
    /// A session lock left on a pooled connection would outlive the sweep.
    pub(crate) async fn take_sweep_lock(&self) -> StoreResult<Option<SweepLock>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(crate::error::query("try_sweep_lock: begin"))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(SWEEP_LOCK_KEY)
            .fetch_one(&mut *tx)
            .await
            .map_err(crate::error::query("try_sweep_lock: lock"))?;
        // Not ours: dropping `tx` rolls the empty transaction back.
        Ok(got.then(|| SweepLock::new(tx)))
    }
}

/// The advisory-lock key of the sweep, fixed for every replica: the bytes
/// of "prevgc01", so it is recognisable in `pg_locks`.
const SWEEP_LOCK_KEY: i64 = i64::from_be_bytes(*b"prevgc01");

crate::shared::impl_store!(
    PgStore,
    db: sqlx::Postgres,
    claim_due: crate::sql::CLAIM_DUE_POSTGRES,
    claim_outbox: crate::sql::CLAIM_OUTBOX_POSTGRES,
);
