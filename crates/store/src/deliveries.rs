//! Webhook deliveries: each acted on once, known by its id and by its body's
//! digest, and recorded in the same transaction as the destroy it causes.
//!
//! Every write here begins with the prune (a `DELETE`), so on SQLite the
//! transaction holds the write lock from its first statement and never has
//! to upgrade a read lock (which fails at once with SQLITE_BUSY).

use crate::apply::destroy_on;
use crate::{SqlStore, error, rows, sql};
use previewd_core::ports::{DELIVERIES_KEPT_FOR, Delivery, StoreResult, WebhookDestroy};
use previewd_core::{Desired, PreviewKey, ReportTo, Timestamp};
use sqlx::AnyConnection;

impl SqlStore {
    pub(crate) async fn remember(&self, delivery: &Delivery, now: Timestamp) -> StoreResult<bool> {
        delivery.check()?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(error::query("remember_delivery: begin"))?;
        let first = record_delivery(&mut tx, delivery, now).await?;
        tx.commit()
            .await
            .map_err(error::query("remember_delivery: commit"))?;
        Ok(first)
    }

    pub(crate) async fn webhook_destroy(
        &self,
        delivery: &Delivery,
        key: &PreviewKey,
        event_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<WebhookDestroy> {
        delivery.check()?;
        // Dropped without commit on every early return and error, which
        // rolls back: the delivery stays unknown.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(error::query("apply_webhook_destroy: begin"))?;
        if !record_delivery(&mut tx, delivery, now).await? {
            return Ok(WebhookDestroy::Duplicate);
        }
        let outcome = destroy_on(&mut tx, key, &ReportTo::default(), now, event_at).await?;
        tx.commit()
            .await
            .map_err(error::query("apply_webhook_destroy: commit"))?;
        // With `event_at`, the destroy spares exactly the present rows
        // deployed after it; without, it spares none.
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

/// Forgets deliveries past their keeping time, then records this one;
/// false when its id or digest is already there.
async fn record_delivery(
    conn: &mut AnyConnection,
    delivery: &Delivery,
    now: Timestamp,
) -> StoreResult<bool> {
    sqlx::query(sql::PRUNE_DELIVERIES)
        .bind(keep_from_ms(now))
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

/// The oldest `received_at` (in milliseconds) still kept at `now`.
fn keep_from_ms(now: Timestamp) -> i64 {
    rows::to_ms(now).saturating_sub(rows::duration_ms(DELIVERIES_KEPT_FOR))
}
