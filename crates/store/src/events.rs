//! The per-preview event history the status page shows, and the lease
//! takeovers claims notice: the store's two contributions to observability.

use crate::{SqlStore, error, rows, sql};
use previewd_core::ports::StoreResult;
use previewd_core::{Event, Preview, PreviewKey, Timestamp};
use std::time::Duration;

impl SqlStore {
    pub(crate) async fn read_events(
        &self,
        key: &PreviewKey,
        limit: i64,
    ) -> StoreResult<Vec<Event>> {
        sqlx::query_as::<_, rows::EventRow>(sql::EVENTS)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await
            .map_err(error::query("events"))?
            .into_iter()
            .map(rows::EventRow::into_event)
            .collect()
    }

    /// Leases due rows, counting (and logging) each one whose lease ran out
    /// while another replica held it.
    pub(crate) async fn claim_rows(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<Preview>> {
        let now_ms = rows::to_ms(now);
        let claimed = sqlx::query_as::<_, rows::ClaimRow>(sql::claim_due(self.backend()))
            .bind(owner)
            .bind(now_ms.saturating_add(rows::duration_ms(lease)))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(error::query("claim_due"))?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in claimed {
            let p = row.preview.into_preview()?;
            if let Some(from) = row.lease_taken_from {
                tracing::info!(key = %p.key, from = %from, "took over a lease that ran out");
                metrics::counter!(previewd_core::metrics::LEASE_TAKEOVERS).increment(1);
            }
            out.push(p);
        }
        Ok(out)
    }
}
