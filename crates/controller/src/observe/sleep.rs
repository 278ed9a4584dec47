//! What sleep needs of the observer: the target groups' ARNs for the idle
//! check.

use super::Observer;
use previewd_core::observed::ObservedTargetGroup;
use previewd_core::operations::Op;
use previewd_core::ports::CloudResult;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl Observer {
    /// The target groups of ours, as last listed (up to the cache's max
    /// age old): the idle check reads their ARNs here rather than listing
    /// them again.
    pub async fn cached_target_groups(&self) -> CloudResult<Arc<Vec<ObservedTargetGroup>>> {
        self.target_groups_within(self.max_age).await
    }

    /// The target groups as listed at most `max_age` ago (reconcile passes
    /// list them at every resync), fetched only when the cache is older;
    /// any listing will do when `max_age` reaches back before the clock's
    /// start.
    pub async fn target_groups_within(
        &self,
        max_age: Duration,
    ) -> CloudResult<Arc<Vec<ObservedTargetGroup>>> {
        let mut pacing = self.pacing(Op::DescribeTargetGroups, true);
        let not_before = match Instant::now().checked_sub(max_age) {
            Some(t) => t,
            None => {
                pacing.stale_ok = true;
                Instant::now()
            }
        };
        let prefixes = self.family_prefixes();
        let (_, groups) = self
            .target_groups
            .get(not_before, pacing, || self.fetch_target_groups(&prefixes))
            .await?;
        Ok(groups)
    }
}
