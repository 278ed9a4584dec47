//! `SqlStore`, the one implementation of the core's `Store` port: its
//! connection, and every port method in the trait's order; `apply` is the
//! one write path of desired state and wakes the loop itself. The longer
//! paths live beside it, named for what they write: `apply.rs` (deploy
//! and destroy), `deliveries.rs` (webhooks), `events.rs` (the status
//! history and the claim that counts takeovers), `gc.rs` (the sweep's
//! sightings and lock), `pull_requests.rs` (the sticky comment's pull
//! request).
//!
//! One body serves both databases through sqlx's `Any` driver: the
//! statements are shared text (`sql.rs`), the columns are TEXT and BIGINT
//! on both, and what differs is chosen by [`Backend`].

use crate::{Backend, error, postgres, rows, sql, sqlite};
use async_trait::async_trait;
use previewd_core::pool::Reservation;
use previewd_core::ports::{Delivery, Store, StoreError, StoreResult, SweepLock};
use previewd_core::{
    Command, Desired, Effect, ListFilter, OutboxItem, Phase, Preview, PreviewKey, ReportTo,
    StatusUpdate, Timestamp,
};
use sqlx::AnyPool;
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The store on SQLite or PostgreSQL, whichever its URL names.
///
/// # Guarantees
/// - Every claim is one `UPDATE … RETURNING` statement: atomic on SQLite,
///   which has a single writer; on PostgreSQL replicas claiming at once
///   never receive the same row or outbox message, because the claim's
///   subselect skips rows another claimer has locked and re-checks a row
///   that changed under it.
/// - Migrations run at connect time (on PostgreSQL under sqlx's advisory
///   lock, so replicas starting together do not race on the schema).
/// - `sqlite::memory:` is one database shared by every caller of this
///   store (a single connection that is never closed for idleness).
///
/// # Assumptions
/// - A PostgreSQL database exists: creating it is the operator's job (and
///   privilege).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// On a SQLite file, an exclusive lock on `<file>.lock`, held while the
    /// store lives: the leases that keep replicas apart are PostgreSQL's
    /// business, so a second process on the same file is refused outright.
    _replica_lock: Option<Arc<File>>,
    /// Notified after a committed write made a row due. On SQLite (one
    /// process) that is the whole story; on PostgreSQL
    /// [`crate::wake_on_writes`] is fed this handle for other replicas'
    /// writes too.
    wake: Arc<Notify>,
}

impl SqlStore {
    /// Connects to `url` and migrates: `sqlite:///var/lib/previewd/p.db`
    /// (created if missing), `sqlite::memory:`, or
    /// `postgres://user@host:5432/db`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)?;
        let (pool, replica_lock) = match backend {
            Backend::Sqlite => sqlite::connect(url).await?,
            Backend::Postgres => (postgres::connect(url).await?, None),
        };
        Ok(Self {
            pool,
            backend,
            _replica_lock: replica_lock,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Which database this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for callers that need the database beyond the `Store` port.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for SqlStore {
    /// The one write path of desired state: each command goes to its
    /// write (`apply.rs`, `deliveries.rs`), and a write that made a row due
    /// wakes the loop once it is committed.
    async fn apply(&self, command: &Command, now: Timestamp) -> StoreResult<Effect> {
        let effect = match command {
            Command::Deploy { request, naming } => {
                Effect::Applied(Some(self.deploy(request, naming, now).await?))
            }
            Command::Destroy(key) | Command::Expire(key) => {
                Effect::Applied(self.destroy(key, &ReportTo::default(), now).await?)
            }
            Command::DestroyFor { key, report_to } => {
                Effect::Applied(self.destroy(key, report_to, now).await?)
            }
            Command::WebhookDestroy {
                delivery,
                key,
                event_at,
            } => self.webhook_destroy(delivery, key, *event_at, now).await?,
            Command::WebhookDeploy {
                delivery,
                request,
                naming,
                event_at,
                pull_request,
            } => {
                let pr = *pull_request;
                self.webhook_deploy(delivery, request, naming, pr, *event_at, now)
                    .await?
            }
            Command::Sleep { key, generation } => {
                Effect::Applied(self.set_asleep(key, Some(*generation), now).await?)
            }
            Command::Wake(key) => Effect::Applied(self.set_asleep(key, None, now).await?),
        };
        if effect.changed() {
            self.wake.notify_one();
        }
        Ok(effect)
    }

    fn wakeups(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    async fn get(&self, key: &PreviewKey) -> StoreResult<Option<Preview>> {
        self.fetch_preview(key, "get").await
    }

    async fn list(&self, filter: &ListFilter) -> StoreResult<Vec<Preview>> {
        sqlx::query_as::<_, rows::PreviewRow>(sql::LIST)
            .bind(filter.project.as_deref())
            .bind(filter.phase.map(Phase::as_str))
            .bind(filter.desired.map(Desired::as_str))
            .bind(filter.limit.map_or(i64::MAX, |l| l.max(0)))
            .bind(filter.expired_at.map(rows::to_ms))
            .fetch_all(&self.pool)
            .await
            .map_err(error::query("list"))?
            .into_iter()
            .map(rows::PreviewRow::into_preview)
            .collect()
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<Preview>> {
        check_owner(owner)?;
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let mut claimed = self.claim_rows(owner, now, lease, limit).await?;
        // RETURNING promises no order; callers get the most overdue first.
        claimed.sort_by(|a, b| (a.next_reconcile_at, &a.key).cmp(&(b.next_reconcile_at, &b.key)));
        Ok(claimed)
    }

    async fn save_deployment(
        &self,
        key: &PreviewKey,
        generation: i64,
        deployment_id: i64,
        now: Timestamp,
    ) -> StoreResult<i64> {
        sqlx::query(sql::SAVE_DEPLOYMENT)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(generation)
            .bind(deployment_id)
            .bind(rows::to_ms(now))
            .execute(&self.pool)
            .await
            .map_err(error::query("save_deployment"))?;
        // The first one saved wins; report whichever that is.
        let saved = self.deployment(key, Some(generation)).await?;
        Ok(saved.unwrap_or(deployment_id))
    }

    async fn deployment(
        &self,
        key: &PreviewKey,
        generation: Option<i64>,
    ) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(sql::FIND_DEPLOYMENT)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(generation)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::query("deployment"))
    }

    async fn pull_request(&self, key: &PreviewKey) -> StoreResult<Option<i64>> {
        self.find_pull_request(key).await
    }

    async fn set_pull_request(
        &self,
        key: &PreviewKey,
        number: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.keep_pull_request(key, number, now).await
    }

    async fn heartbeat(
        &self,
        replica: &str,
        now: Timestamp,
        alive_since: Timestamp,
    ) -> StoreResult<u32> {
        self.beat(replica, now, alive_since).await
    }

    async fn remember_delivery(&self, delivery: &Delivery, now: Timestamp) -> StoreResult<bool> {
        self.remember(delivery, now).await
    }

    async fn lease_deleted(
        &self,
        key: &PreviewKey,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<bool> {
        check_owner(owner)?;
        let now_ms = rows::to_ms(now);
        let done = sqlx::query(sql::LEASE_DELETED)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(owner)
            .bind(now_ms.saturating_add(rows::duration_ms(lease)))
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(error::query("lease_deleted"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, key: &PreviewKey, owner: &str) -> StoreResult<()> {
        sqlx::query(sql::RELEASE_LEASE)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(error::query("release_lease"))?;
        Ok(())
    }

    async fn renew_lease(
        &self,
        key: &PreviewKey,
        owner: &str,
        until: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::RENEW_LEASE)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(owner)
            .bind(rows::to_ms(until))
            .execute(&self.pool)
            .await
            .map_err(error::query("renew_lease"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(key.clone()));
        }
        Ok(())
    }

    async fn record_status(
        &self,
        key: &PreviewKey,
        owner: &str,
        update: &StatusUpdate,
        now: Timestamp,
    ) -> StoreResult<()> {
        let status = rows::StatusColumns::new(&update.status)?;
        let payloads = update
            .outbox
            .iter()
            .map(|m| rows::payload_json(&m.payload))
            .collect::<Result<Vec<_>, _>>()?;
        let now_ms = rows::to_ms(now);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(error::query("record_status: begin"))?;
        // The status update comes first: it takes the row's write lock
        // (and on SQLite the database's) before anything is read.
        let done = sqlx::query(sql::RECORD_STATUS)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(owner)
            .bind(status.phase)
            .bind(&status.conditions_json)
            .bind(status.observed_generation)
            .bind(status.url)
            .bind(status.message)
            .bind(status.last_error_json.as_deref())
            .bind(rows::to_ms(update.next_reconcile_at))
            .bind(update.attempts)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(error::query("record_status: update"))?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls it back; nothing was written.
            return Err(StoreError::LeaseLost(key.clone()));
        }
        for (message, payload) in update.outbox.iter().zip(&payloads) {
            sqlx::query(sql::ENQUEUE)
                .bind(&key.project)
                .bind(&key.branch)
                .bind(message.kind.as_str())
                .bind(payload)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(error::query("record_status: enqueue"))?;
        }
        let noted = sqlx::query(sql::NOTE_EVENT)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(error::query("record_status: note event"))?;
        // A resync that changed nothing noted nothing: no pruning due.
        if noted.rows_affected() > 0 {
            sqlx::query(sql::PRUNE_EVENTS)
                .bind(&key.project)
                .bind(&key.branch)
                .bind(previewd_core::EVENTS_KEPT)
                .execute(&mut *tx)
                .await
                .map_err(error::query("record_status: prune events"))?;
        }
        tx.commit()
            .await
            .map_err(error::query("record_status: commit"))
    }

    async fn set_rule_priority(
        &self,
        key: &PreviewKey,
        listener_arn: Option<&str>,
        priority: Option<i32>,
    ) -> StoreResult<()> {
        self.place(key, listener_arn, priority).await
    }

    async fn reservations(&self, except: &PreviewKey) -> StoreResult<Vec<Reservation>> {
        self.placements(except).await
    }

    async fn adopt_unplaced(&self, first: &str) -> StoreResult<u64> {
        self.adopt(first).await
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        let ms: Option<i64> = sqlx::query_scalar(sql::NEXT_DUE)
            .fetch_one(&self.pool)
            .await
            .map_err(error::query("next_due"))?;
        ms.map(|ms| rows::from_ms("previews", "next_reconcile_at", ms))
            .transpose()
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxItem>> {
        check_owner(owner)?;
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let now_ms = rows::to_ms(now);
        let mut items = sqlx::query_as::<_, rows::OutboxRow>(sql::claim_outbox(self.backend))
            .bind(owner)
            .bind(now_ms.saturating_add(rows::duration_ms(lease)))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(error::query("claim_outbox"))?
            .into_iter()
            .map(rows::OutboxRow::into_item)
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    async fn ack_outbox(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(sql::ACK_OUTBOX)
            .bind(id)
            .bind(rows::to_ms(now))
            .execute(&self.pool)
            .await
            .map_err(error::query("ack_outbox"))?;
        check_outbox_hit(done.rows_affected(), id, "no outbox message")
    }

    async fn retry_outbox(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        last_error: &str,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::RETRY_OUTBOX)
            .bind(id)
            .bind(rows::to_ms(next_attempt_at))
            .bind(last_error)
            .execute(&self.pool)
            .await
            .map_err(error::query("retry_outbox"))?;
        check_outbox_hit(done.rows_affected(), id, "no undelivered outbox message")
    }

    async fn events(&self, key: &PreviewKey, limit: i64) -> StoreResult<Vec<previewd_core::Event>> {
        self.read_events(key, limit).await
    }

    async fn outbox_backlog(&self) -> StoreResult<(i64, Option<Timestamp>)> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(sql::OUTBOX_BACKLOG)
            .fetch_one(&self.pool)
            .await
            .map_err(error::query("outbox_backlog"))?;
        let oldest = oldest
            .map(|ms| rows::from_ms("outbox", "created_at", ms))
            .transpose()?;
        Ok((count, oldest))
    }

    async fn gc_sightings(
        &self,
        resources: &[String],
        now: Timestamp,
        record: bool,
    ) -> StoreResult<Vec<Timestamp>> {
        self.sightings(resources, now, record).await
    }

    async fn try_sweep_lock(&self) -> StoreResult<Option<SweepLock>> {
        self.sweep_lock().await
    }
}

/// An empty owner would be indistinguishable from "no lease" in logs.
fn check_owner(owner: &str) -> StoreResult<()> {
    if owner.is_empty() {
        return Err(StoreError::Invalid {
            field: "owner",
            rule: "must not be empty".into(),
        });
    }
    Ok(())
}

/// The outbox calls name a message by id; missing it is the caller's error.
fn check_outbox_hit(rows: u64, id: i64, what: &str) -> StoreResult<()> {
    if rows == 0 {
        return Err(StoreError::Invalid {
            field: "id",
            rule: format!("{what} {id}"),
        });
    }
    Ok(())
}
