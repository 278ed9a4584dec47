//! Webhook deliveries: each acted on once, known by its id and by its body's
//! digest, and recorded in the same transaction as the destroy it causes.
//! A labelled pull request's deploy (`apply.rs`'s guarded retry loop, which
//! holds no transaction) is recorded just before it and forgotten again
//! when the deploy fails, so GitHub's redelivery is acted on.
//!
//! Every write here begins with the prune (a `DELETE`), so on SQLite the
//! transaction holds the write lock from its first statement and never has
//! to upgrade a read lock (which fails at once with SQLITE_BUSY).

use crate::apply::destroy_on;
use crate::{SqlStore, error, rows, sql};
use previewd_core::ports::{DELIVERIES_KEPT_FOR, Delivery, StoreResult, WebhookDestroy};
use previewd_core::{DeployRequest, Desired, NamingConfig, PreviewKey, ReportTo, Timestamp};
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

impl SqlStore {
    /// # Caveats
    /// The stale check reads `deployed_at` before the deploy's guarded
    /// write: a dispatch landing between the two can still be overwritten
    /// by an older pull-request change (GitHub sends a pull request's
    /// deliveries one after another, so only a redelivery can race).
    pub(crate) async fn webhook_deploy(
        &self,
        delivery: &Delivery,
        request: &DeployRequest,
        naming: &NamingConfig,
        pull_request: Option<i64>,
        event_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<WebhookDestroy> {
        delivery.check()?;
        let key = &request.key;
        let deployed_at: Option<Option<i64>> = sqlx::query_scalar(sql::DEPLOYED_AT)
            .bind(&key.project)
            .bind(&key.branch)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::query("apply_webhook_deploy: read"))?;
        let deployed_at = deployed_at
            .flatten()
            .map(|ms| rows::from_ms("previews", "deployed_at", ms))
            .transpose()?;
        let stale = previewd_core::pull_request::stale(event_at, deployed_at);
        if !self.remember(delivery, now).await? {
            return Ok(WebhookDestroy::Duplicate);
        }
        if stale {
            return Ok(WebhookDestroy::Stale);
        }
        // The sticky comment's pull request, kept before the deploy so that
        // no comment the deploy leads to can look the branch's pull request
        // up instead (a branch may have several open). A failure here costs
        // that lookup, not the deploy.
        if let Some(n) = pull_request
            && let Err(e) = self.keep_pull_request(key, Some(n), now).await
        {
            tracing::warn!(%key, error = %e, "the pull request was not kept");
        }
        match self.deploy(request, naming, now).await {
            Ok(outcome) => Ok(WebhookDestroy::Applied(Some(outcome))),
            Err(e) => {
                // Best effort: the deploy's error is the one to report.
                let forgot = sqlx::query(sql::FORGET_DELIVERY)
                    .bind(&delivery.id)
                    .execute(&self.pool)
                    .await;
                if let Err(f) = forgot {
                    tracing::warn!(delivery = %delivery.id, error = %f, "a failed deploy's delivery stays recorded");
                }
                Err(e)
            }
        }
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
