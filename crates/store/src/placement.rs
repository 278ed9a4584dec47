//! Where a preview is placed: its listener and rule priority, held in
//! the row (unique per listener), and the adoption of rows placed before
//! the pool of listeners existed.

use crate::{SqlStore, error, sql};
use previewd_core::PreviewKey;
use previewd_core::pool::Reservation;
use previewd_core::ports::{StoreError, StoreResult};

impl SqlStore {
    pub(crate) async fn place(
        &self,
        key: &PreviewKey,
        listener_arn: Option<&str>,
        priority: Option<i32>,
    ) -> StoreResult<()> {
        check_priority(priority)?;
        if priority.is_some() != listener_arn.is_some_and(|l| !l.is_empty()) {
            return Err(StoreError::Invalid {
                field: "listener_arn",
                rule: "a priority is reserved on a listener: both or neither".into(),
            });
        }
        let done = sqlx::query(sql::SET_PRIORITY)
            .bind(&key.project)
            .bind(&key.branch)
            .bind(listener_arn)
            .bind(priority)
            .execute(&self.pool)
            .await;
        match (done, priority) {
            (Ok(done), _) if done.rows_affected() == 0 => Err(StoreError::NotFound(key.clone())),
            (Ok(_), _) => Ok(()),
            // The partial unique index over (listener, priority) is the
            // arbiter, so two rows racing for one priority on one listener
            // cannot both win.
            (Err(e), Some(p)) if error::is_unique_violation(&e) => {
                Err(StoreError::PriorityTaken(p))
            }
            (Err(e), _) => Err(error::query("set_rule_priority")(e)),
        }
    }

    pub(crate) async fn placements(&self, except: &PreviewKey) -> StoreResult<Vec<Reservation>> {
        let rows: Vec<(String, i32)> = sqlx::query_as(sql::RESERVATIONS)
            .bind(&except.project)
            .bind(&except.branch)
            .fetch_all(&self.pool)
            .await
            .map_err(error::query("reservations"))?;
        Ok(rows
            .into_iter()
            .map(|(listener_arn, priority)| Reservation {
                listener_arn,
                priority,
            })
            .collect())
    }

    pub(crate) async fn adopt(&self, first: &str) -> StoreResult<u64> {
        if first.is_empty() {
            return Err(StoreError::Invalid {
                field: "listener_arn",
                rule: "must not be empty".into(),
            });
        }
        let done = sqlx::query(sql::ADOPT_UNPLACED)
            .bind(first)
            .execute(&self.pool)
            .await
            .map_err(error::query("adopt_unplaced"))?;
        Ok(done.rows_affected())
    }
}

/// ALB listener rule priorities are 1..=50000.
fn check_priority(priority: Option<i32>) -> StoreResult<()> {
    match priority {
        Some(p) if !(1..=50_000).contains(&p) => Err(StoreError::Invalid {
            field: "rule_priority",
            rule: format!("must be between 1 and 50000 (got {p})"),
        }),
        _ => Ok(()),
    }
}
