//! The pull request each preview's sticky comment is on, once found
//! (`github.pr_comment`): one row per preview, replaced or forgotten.

use crate::{SqlStore, error, rows, sql};
use previewd_core::ports::StoreResult;
use previewd_core::{PreviewKey, Timestamp};

impl SqlStore {
    pub(crate) async fn find_pull_request(&self, key: &PreviewKey) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(sql::FIND_PULL_REQUEST)
            .bind(&key.project)
            .bind(&key.branch)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::query("pull_request"))
    }

    pub(crate) async fn keep_pull_request(
        &self,
        key: &PreviewKey,
        number: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let q = match number {
            Some(n) => sqlx::query(sql::SAVE_PULL_REQUEST)
                .bind(&key.project)
                .bind(&key.branch)
                .bind(n)
                .bind(rows::to_ms(now)),
            None => sqlx::query(sql::FORGET_PULL_REQUEST)
                .bind(&key.project)
                .bind(&key.branch),
        };
        q.execute(&self.pool)
            .await
            .map_err(error::query("set_pull_request"))?;
        Ok(())
    }
}
