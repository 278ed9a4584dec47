//! The replicas sharing the database, by heartbeat: how many there are
//! decides each one's share of AWS's rate limits.

use crate::{SqlStore, error, rows, sql};
use previewd_core::Timestamp;
use previewd_core::ports::StoreResult;

impl SqlStore {
    /// Records `replica` as seen at `now`, forgets replicas not seen since
    /// `alive_since`, and counts the live ones (this one included), in one
    /// transaction so the count always includes the caller.
    pub(crate) async fn beat(
        &self,
        replica: &str,
        now: Timestamp,
        alive_since: Timestamp,
    ) -> StoreResult<u32> {
        let mut tx = self.pool.begin().await.map_err(error::query("heartbeat"))?;
        sqlx::query(sql::SEE_REPLICA)
            .bind(replica)
            .bind(rows::to_ms(now))
            .execute(&mut *tx)
            .await
            .map_err(error::query("heartbeat"))?;
        sqlx::query(sql::FORGET_DEAD_REPLICAS)
            .bind(rows::to_ms(alive_since))
            .execute(&mut *tx)
            .await
            .map_err(error::query("heartbeat"))?;
        let live: i64 = sqlx::query_scalar(sql::COUNT_REPLICAS)
            .bind(rows::to_ms(alive_since))
            .fetch_one(&mut *tx)
            .await
            .map_err(error::query("heartbeat"))?;
        tx.commit().await.map_err(error::query("heartbeat"))?;
        Ok(u32::try_from(live).unwrap_or(u32::MAX).max(1))
    }
}
