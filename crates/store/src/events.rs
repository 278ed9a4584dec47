//! The per-preview event history the status page shows, and the lease
//! takeovers claims notice: the store's two contributions to observability.

/// Inherent `read_events` and `claim_rows` behind the `Store` methods.
/// Expands inside `shared::impl_store!`'s module and uses the names it
/// imports; `$claim_due` is the backend's claim statement.
macro_rules! impl_events {
    ($store:ident, $claim_due:expr) => {
        impl $store {
            async fn read_events(
                &self,
                key: &PreviewKey,
                limit: i64,
            ) -> StoreResult<Vec<previewd_core::Event>> {
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

            /// Leases due rows, counting (and logging) each one whose
            /// lease ran out while another replica held it.
            async fn claim_rows(
                &self,
                owner: &str,
                now: Timestamp,
                lease: Duration,
                limit: i64,
            ) -> StoreResult<Vec<Preview>> {
                let now_ms = rows::to_ms(now);
                let claimed = sqlx::query_as::<_, rows::ClaimRow>($claim_due)
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
    };
}
pub(crate) use impl_events;
