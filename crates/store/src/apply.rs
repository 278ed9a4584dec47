//! The desired-state writes behind `Store::apply`, a deploy and a destroy,
//! whose read-decide-write must survive concurrent writers on either
//! backend. A deploy's expiry is resolved against the row read for the
//! guarded write, not one a caller read before.
//!
//! No transaction spans the read and the write: every write is a single
//! statement guarded by what was read (the key's absence, enforced by the
//! primary key and the unique slug and host indexes; or the generation
//! read). A writer that loses a race sees the guard fail and reads again.
//! This also avoids SQLite's deferred-transaction upgrade, which fails at
//! once with SQLITE_BUSY instead of waiting for the lock.
//!
//! The destroy is one guarded statement and a read, on any connection, so
//! the webhook path (`deliveries.rs`) runs the very same code inside the
//! transaction that records its delivery.

use crate::error::{self, BackendError};
use crate::{SqlStore, rows, sql};
use previewd_core::command::{DeployStep, ReportTo, deploy_step};
use previewd_core::naming::{host_label_candidates, slug_candidates};
use previewd_core::ports::StoreResult;
use previewd_core::{ApplyOutcome, DeployRequest, NamingConfig, Preview, PreviewKey, Timestamp};
use sqlx::AnyConnection;
use sqlx::any::Any;

/// How often a deploy re-reads and retries after losing a race (a
/// concurrent insert of the same key or of a look-alike name).
const APPLY_TRIES: u32 = 8;

/// How many slug candidates to try before declaring the table pathological.
const SLUG_CANDIDATES: usize = 64;

impl SqlStore {
    pub(crate) async fn fetch_preview(
        &self,
        key: &PreviewKey,
        step: &'static str,
    ) -> StoreResult<Option<Preview>> {
        read_preview(&self.pool, key, step).await
    }

    pub(crate) async fn deploy(
        &self,
        req: &DeployRequest,
        naming: &NamingConfig,
        now: Timestamp,
    ) -> StoreResult<ApplyOutcome> {
        let spec = rows::SpecColumns::new(&req.spec)?;
        let now_ms = rows::to_ms(now);
        for _ in 0..APPLY_TRIES {
            let Some(current) = self.fetch_preview(&req.key, "apply_deploy: read").await? else {
                match self.insert_new(req, naming, &spec, now).await? {
                    Some(preview) => {
                        return Ok(ApplyOutcome {
                            preview,
                            changed: true,
                        });
                    }
                    None => continue,
                }
            };
            // Core decides: an identical resend is a pure no-op (not even
            // expires_at moves), unless it retries a failed preview.
            if deploy_step(Some(&current), &req.spec) == DeployStep::Unchanged {
                return Ok(ApplyOutcome {
                    preview: current,
                    changed: false,
                });
            }
            let updated = sqlx::query_as::<_, rows::PreviewRow>(sql::REDEPLOY)
                .bind(&req.key.project)
                .bind(&req.key.branch)
                .bind(spec.commit_sha)
                .bind(spec.ai_run_id)
                .bind(spec.callback_url)
                .bind(spec.image)
                .bind(&spec.env_json)
                .bind(req.expiry.resolve(Some(&current), now).map(rows::to_ms))
                .bind(now_ms)
                .bind(current.generation)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::query("apply_deploy: update"))?;
            if let Some(row) = updated {
                return Ok(ApplyOutcome {
                    preview: row.into_preview()?,
                    changed: true,
                });
            }
        }
        Err(BackendError::Contention {
            step: "apply_deploy",
            tries: APPLY_TRIES,
        }
        .into())
    }

    /// Puts the row to sleep (`generation`: the one the idle check saw) or
    /// wakes it (`None`). A row that does not qualify is left as it is:
    /// `changed` false.
    pub(crate) async fn set_asleep(
        &self,
        key: &PreviewKey,
        generation: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<Option<ApplyOutcome>> {
        let (statement, step) = match generation {
            Some(_) => (sql::SLEEP, "apply_sleep"),
            None => (sql::WAKE, "apply_wake"),
        };
        let mut q = sqlx::query_as::<_, rows::PreviewRow>(statement)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(rows::to_ms(now));
        if let Some(g) = generation {
            q = q.bind(g);
        }
        let updated = q
            .fetch_optional(&self.pool)
            .await
            .map_err(error::query(step))?;
        if let Some(row) = updated {
            return Ok(Some(ApplyOutcome {
                preview: row.into_preview()?,
                changed: true,
            }));
        }
        Ok(self
            .fetch_preview(key, step)
            .await?
            .map(|preview| ApplyOutcome {
                preview,
                changed: false,
            }))
    }

    pub(crate) async fn destroy(
        &self,
        key: &PreviewKey,
        report_to: &ReportTo,
        now: Timestamp,
    ) -> StoreResult<Option<ApplyOutcome>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(error::query("apply_destroy: connect"))?;
        destroy_on(&mut conn, key, report_to, now, None).await
    }

    /// Inserts a new row; `None` when a concurrent writer took the key or
    /// one of the chosen names first.
    async fn insert_new(
        &self,
        req: &DeployRequest,
        naming: &NamingConfig,
        spec: &rows::SpecColumns<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<Preview>> {
        let now_ms = rows::to_ms(now);
        let branch = &req.key.branch;
        let slug = self
            .first_free(
                sql::SLUG_HOLDERS,
                "slug",
                branch,
                slug_candidates(branch).take(SLUG_CANDIDATES),
            )
            .await?;
        let host = self
            .first_free(
                sql::HOST_HOLDERS,
                "host label",
                branch,
                host_label_candidates(naming, branch, &slug),
            )
            .await?;
        let inserted = sqlx::query_as::<_, rows::PreviewRow>(sql::INSERT)
            .bind(&req.key.project)
            .bind(branch)
            .bind(&slug)
            .bind(&host)
            .bind(spec.commit_sha)
            .bind(spec.ai_run_id)
            .bind(spec.callback_url)
            .bind(spec.image)
            .bind(&spec.env_json)
            .bind(rows::empty_conditions_json()?)
            .bind(now_ms)
            .bind(req.expiry.resolve(None, now).map(rows::to_ms))
            .fetch_one(&self.pool)
            .await;
        match inserted {
            Ok(row) => row.into_preview().map(Some),
            Err(e) if error::is_unique_violation(&e) => Ok(None),
            Err(e) => Err(error::query("apply_deploy: insert")(e)),
        }
    }

    /// The first candidate no row holds. Another writer may take it before
    /// our insert; the unique index then sends us round again.
    async fn first_free(
        &self,
        holders_sql: &'static str,
        what: &'static str,
        branch: &str,
        candidates: impl IntoIterator<Item = String> + Send,
    ) -> StoreResult<String> {
        for candidate in candidates {
            let holders: i64 = sqlx::query_scalar(holders_sql)
                .bind(&candidate)
                .fetch_one(&self.pool)
                .await
                .map_err(error::query("apply_deploy: allocate names"))?;
            if holders == 0 {
                return Ok(candidate);
            }
        }
        Err(BackendError::NamesExhausted {
            what,
            branch: branch.to_owned(),
        }
        .into())
    }
}

/// The row of `key` through any executor (the pool, or a transaction's
/// connection).
pub(crate) async fn read_preview<'c, E>(
    executor: E,
    key: &PreviewKey,
    step: &'static str,
) -> StoreResult<Option<Preview>>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    sqlx::query_as::<_, rows::PreviewRow>(sql::GET)
        .bind(&key.project)
        .bind(&key.branch)
        .fetch_optional(executor)
        .await
        .map_err(error::query(step))?
        .map(rows::PreviewRow::into_preview)
        .transpose()
}

/// `apply_destroy` on `conn`. With `deployed_by`, a row whose current spec
/// was deployed later is left present (and reported unchanged); the check
/// is part of the update. `report_to` is kept on the row for the Deleted
/// report.
pub(crate) async fn destroy_on(
    conn: &mut AnyConnection,
    key: &PreviewKey,
    report_to: &ReportTo,
    now: Timestamp,
    deployed_by: Option<Timestamp>,
) -> StoreResult<Option<ApplyOutcome>> {
    let row = sqlx::query_as::<_, rows::PreviewRow>(sql::DESTROY)
        .bind(&key.project)
        .bind(&key.branch)
        .bind(rows::to_ms(now))
        .bind(deployed_by.map(rows::to_ms))
        .bind(report_to.ai_run_id.as_deref())
        .bind(report_to.callback_url.as_deref())
        .fetch_optional(&mut *conn)
        .await
        .map_err(error::query("apply_destroy: update"))?;
    if let Some(row) = row {
        return Ok(Some(ApplyOutcome {
            preview: row.into_preview()?,
            changed: true,
        }));
    }
    // Already absent, or no such row: report what is there.
    Ok(read_preview(&mut *conn, key, "apply_destroy: read")
        .await?
        .map(|preview| ApplyOutcome {
            preview,
            changed: false,
        }))
}
