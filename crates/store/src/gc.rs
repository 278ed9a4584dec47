//! What garbage collection keeps in the store: when each unowned resource
//! was first seen, and the lock that lets one replica sweep at a time.

use crate::{Backend, SqlStore, error, postgres, rows, sql};
use previewd_core::Timestamp;
use previewd_core::ports::{StoreResult, SweepLock};

impl SqlStore {
    /// The first sighting of each resource (now, for one never seen),
    /// recording this sweep's sightings when `record`.
    pub(crate) async fn sightings(
        &self,
        resources: &[String],
        now: Timestamp,
        record: bool,
    ) -> StoreResult<Vec<Timestamp>> {
        let now_ms = rows::to_ms(now);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(error::query("gc_sightings: begin"))?;
        let mut first = Vec::with_capacity(resources.len());
        for resource in resources {
            if record {
                sqlx::query(sql::SIGHT)
                    .bind(resource)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(error::query("gc_sightings: sight"))?;
            }
            let seen: Option<i64> = sqlx::query_scalar(sql::FIRST_SEEN)
                .bind(resource)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::query("gc_sightings: read"))?;
            let seen = seen.map_or(Ok(now), |ms| {
                rows::from_ms("gc_sightings", "first_seen", ms)
            })?;
            first.push(seen);
        }
        if record {
            sqlx::query(sql::FORGET_SIGHTINGS)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(error::query("gc_sightings: forget"))?;
        }
        tx.commit()
            .await
            .map_err(error::query("gc_sightings: commit"))?;
        Ok(first)
    }

    pub(crate) async fn sweep_lock(&self) -> StoreResult<Option<SweepLock>> {
        match self.backend() {
            // Always granted: the lock file already keeps a second replica
            // away, and two sweeps within one process would only repeat
            // idempotent work.
            Backend::Sqlite => Ok(Some(SweepLock::new(()))),
            Backend::Postgres => postgres::take_sweep_lock(&self.pool).await,
        }
    }
}
