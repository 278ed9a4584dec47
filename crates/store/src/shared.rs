//! The `Store` implementation, written once and stamped out for each pool.
//! `apply` is the one write path of desired state: it dispatches each
//! command to its inherent function (`apply.rs`, `deliveries.rs`) and wakes
//! the loop after a write that made a row due.
//!
//! sqlx's executors are concrete per database, and a generic version would
//! drown every method in trait bounds; a macro keeps one readable body per
//! method instead. The backends differ only in the claim statements they
//! pass in (see `sql.rs`).

/// Implements `Store` for `$store`, a struct with `pool` and `wake` fields.
macro_rules! impl_store {
    (
        $store:ident,
        db: $db:ty,
        claim_due: $claim_due:expr,
        claim_outbox: $claim_outbox:expr $(,)?
    ) => {
        // A module of its own, so the bodies can use short names without
        // clashing with the backend file's imports; as a child module it
        // still sees the store's private `pool`.
        mod store_impl {
            use super::$store;
            use async_trait::async_trait;
            use previewd_core::naming::{host_label_candidates, slug_candidates};
            use previewd_core::ports::{
                Delivery, Store, StoreError, StoreResult, SweepLock, WebhookDestroy,
            };
            use previewd_core::{
                ApplyOutcome, Command, DeployRequest, Desired, Effect, ListFilter, NamingConfig,
                OutboxItem, Phase, Preview, PreviewKey, StatusUpdate, Timestamp,
            };
            use std::time::Duration;
            use $crate::{apply, error, rows, shared, sql};

            $crate::apply::impl_apply!($store, $db);
            $crate::deliveries::impl_deliveries!($store, $db);
            $crate::events::impl_events!($store, $claim_due);

            #[async_trait]
            impl Store for $store {
                async fn apply(&self, command: &Command, now: Timestamp) -> StoreResult<Effect> {
                    let effect = match command {
                        Command::Deploy { request, naming } => {
                            Effect::Applied(Some(self.deploy(request, naming, now).await?))
                        }
                        Command::Destroy(key) | Command::Expire(key) => {
                            Effect::Applied(self.destroy(key, now).await?)
                        }
                        Command::WebhookDestroy {
                            delivery,
                            key,
                            event_at,
                        } => self.webhook_destroy(delivery, key, *event_at, now).await?,
                    };
                    // Committed by now; a row made due is worth looking at at once.
                    if effect.changed() {
                        self.wake.notify_one();
                    }
                    Ok(effect)
                }

                fn wakeups(&self) -> std::sync::Arc<tokio::sync::Notify> {
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
                    shared::check_owner(owner)?;
                    if limit <= 0 {
                        return Ok(Vec::new());
                    }
                    let mut claimed = self.claim_rows(owner, now, lease, limit).await?;
                    // RETURNING promises no order; callers get the most overdue first.
                    claimed.sort_by(|a, b| {
                        (a.next_reconcile_at, &a.key).cmp(&(b.next_reconcile_at, &b.key))
                    });
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

                async fn remember_delivery(
                    &self,
                    delivery: &Delivery,
                    now: Timestamp,
                ) -> StoreResult<bool> {
                    self.remember(delivery, now).await
                }

                async fn lease_deleted(
                    &self,
                    key: &PreviewKey,
                    owner: &str,
                    now: Timestamp,
                    lease: Duration,
                ) -> StoreResult<bool> {
                    shared::check_owner(owner)?;
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
                    priority: Option<i32>,
                ) -> StoreResult<()> {
                    shared::check_priority(priority)?;
                    let done = sqlx::query(sql::SET_PRIORITY)
                        .bind(&key.project)
                        .bind(&key.branch)
                        .bind(priority)
                        .execute(&self.pool)
                        .await;
                    match (done, priority) {
                        (Ok(done), _) if done.rows_affected() == 0 => {
                            Err(StoreError::NotFound(key.clone()))
                        }
                        (Ok(_), _) => Ok(()),
                        // The partial unique index is the arbiter, so two rows
                        // racing for one priority cannot both win.
                        (Err(e), Some(p)) if error::is_unique_violation(&e) => {
                            Err(StoreError::PriorityTaken(p))
                        }
                        (Err(e), _) => Err(error::query("set_rule_priority")(e)),
                    }
                }

                async fn reserved_priorities(&self, except: &PreviewKey) -> StoreResult<Vec<i32>> {
                    sqlx::query_scalar(sql::RESERVED_PRIORITIES)
                        .bind(&except.project)
                        .bind(&except.branch)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(error::query("reserved_priorities"))
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
                    shared::check_owner(owner)?;
                    if limit <= 0 {
                        return Ok(Vec::new());
                    }
                    let now_ms = rows::to_ms(now);
                    let mut items = sqlx::query_as::<_, rows::OutboxRow>($claim_outbox)
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
                    shared::check_outbox_hit(done.rows_affected(), id, "no outbox message")
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
                    shared::check_outbox_hit(
                        done.rows_affected(),
                        id,
                        "no undelivered outbox message",
                    )
                }

                async fn events(
                    &self,
                    key: &PreviewKey,
                    limit: i64,
                ) -> StoreResult<Vec<previewd_core::Event>> {
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

                async fn try_sweep_lock(&self) -> StoreResult<Option<SweepLock>> {
                    self.take_sweep_lock().await
                }
            }
        }
    };
}
pub(crate) use impl_store;

use previewd_core::ports::{StoreError, StoreResult};

/// An empty owner would be indistinguishable from "no lease" in logs.
pub(crate) fn check_owner(owner: &str) -> StoreResult<()> {
    if owner.is_empty() {
        return Err(StoreError::Invalid {
            field: "owner",
            rule: "must not be empty".into(),
        });
    }
    Ok(())
}

/// ALB listener rule priorities are 1..=50000.
pub(crate) fn check_priority(priority: Option<i32>) -> StoreResult<()> {
    match priority {
        Some(p) if !(1..=50_000).contains(&p) => Err(StoreError::Invalid {
            field: "rule_priority",
            rule: format!("must be between 1 and 50000 (got {p})"),
        }),
        _ => Ok(()),
    }
}

/// The outbox calls name a message by id; missing it is the caller's error.
pub(crate) fn check_outbox_hit(rows: u64, id: i64, what: &str) -> StoreResult<()> {
    if rows == 0 {
        return Err(StoreError::Invalid {
            field: "id",
            rule: format!("{what} {id}"),
        });
    }
    Ok(())
}
