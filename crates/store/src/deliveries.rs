//! Webhook deliveries: each acted on once, known by its id and by its body's
//! digest, and recorded in the same transaction as the destroy it causes.
//!
//! Every write here begins with the prune (a `DELETE`), so on SQLite the
//! transaction holds the write lock from its first statement and never has
//! to upgrade a read lock (which fails at once with SQLITE_BUSY).

use previewd_core::Timestamp;
use previewd_core::ports::DELIVERIES_KEPT_FOR;

/// The oldest `received_at` (in milliseconds) still kept at `now`.
pub(crate) fn keep_from_ms(now: Timestamp) -> i64 {
    crate::rows::to_ms(now).saturating_sub(crate::rows::duration_ms(DELIVERIES_KEPT_FOR))
}

/// Inherent `remember` and `webhook_destroy` behind the `Store` methods.
/// Expands inside `shared::impl_store!`'s module and uses the names it
/// imports; `$db` is the backend's `sqlx::Database`.
macro_rules! impl_deliveries {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Forgets deliveries past their keeping time, then records
            /// this one; false when its id or digest is already there.
            async fn record_delivery(
                conn: &mut <$db as sqlx::Database>::Connection,
                delivery: &Delivery,
                now: Timestamp,
            ) -> StoreResult<bool> {
                sqlx::query(sql::PRUNE_DELIVERIES)
                    .bind($crate::deliveries::keep_from_ms(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(error::query("remember_delivery: prune"))?;
                let done = sqlx::query(sql::REMEMBER_DELIVERY)
                    .bind(&delivery.id)
                    .bind(&delivery.body_sha256)
                    .bind(&delivery.event)
                    .bind(rows::to_ms(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(error::query("remember_delivery: insert"))?;
                Ok(done.rows_affected() == 1)
            }

            async fn remember(&self, delivery: &Delivery, now: Timestamp) -> StoreResult<bool> {
                delivery.check()?;
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(error::query("remember_delivery: begin"))?;
                let first = Self::record_delivery(&mut tx, delivery, now).await?;
                tx.commit()
                    .await
                    .map_err(error::query("remember_delivery: commit"))?;
                Ok(first)
            }

            async fn webhook_destroy(
                &self,
                delivery: &Delivery,
                key: &PreviewKey,
                event_at: Option<Timestamp>,
                now: Timestamp,
            ) -> StoreResult<WebhookDestroy> {
                delivery.check()?;
                // Dropped without commit on every early return and error,
                // which rolls back: the delivery stays unknown.
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(error::query("apply_webhook_destroy: begin"))?;
                if !Self::record_delivery(&mut tx, delivery, now).await? {
                    return Ok(WebhookDestroy::Duplicate);
                }
                let outcome = Self::destroy_on(&mut tx, key, now, event_at).await?;
                tx.commit()
                    .await
                    .map_err(error::query("apply_webhook_destroy: commit"))?;
                // With `event_at`, the destroy spares exactly the present
                // rows deployed after it; without, it spares none.
                let spared = event_at.is_some()
                    && outcome
                        .as_ref()
                        .is_some_and(|o| !o.changed && o.preview.desired == Desired::Present);
                Ok(if spared {
                    WebhookDestroy::Stale
                } else {
                    WebhookDestroy::Applied(outcome)
                })
            }
        }
    };
}
pub(crate) use impl_deliveries;
