//! What sleep needs of the observer: the target groups' ARNs for the idle
//! check.

use super::Observer;
use previewd_core::observed::ObservedTargetGroup;
use previewd_core::operations::Op;
use previewd_core::ports::CloudResult;
use std::sync::Arc;
use tokio::time::Instant;

impl Observer {
    /// The target groups of ours, as last listed (up to the cache's max
    /// age old): the idle check reads their ARNs here rather than listing
    /// them again.
    pub async fn cached_target_groups(&self) -> CloudResult<Arc<Vec<ObservedTargetGroup>>> {
        let not_before = Instant::now()
            .checked_sub(self.max_age)
            .unwrap_or_else(Instant::now);
        let prefixes = self.family_prefixes();
        let (_, groups) = self
            .target_groups
            .get(
                not_before,
                self.pacing(Op::DescribeTargetGroups, true),
                || self.fetch_target_groups(&prefixes),
            )
            .await?;
        Ok(groups)
    }
}
