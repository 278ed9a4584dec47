//! The small rules around a pass: when a plan must be confirmed on fresh
//! listings, whether a change may touch what it names, and when a preview
//! expires.

use super::ExecuteError;
use crate::error::CloudError;
use crate::model::{Preview, Timestamp};
use crate::plan::{Change, Plan, Verdict};
use crate::tags::{self, Tags};
use chrono::Duration as ChronoDuration;
use std::collections::HashMap;
use std::time::Duration;

/// Act only on what is true now: a plan that changes anything, or that
/// makes a new claim (gone, failed, or Ready for a generation not yet
/// Ready), must be made again on listings fetched after the pass began,
/// with the priorities other rows hold. A cached listing may predate a
/// deletion by someone else (a sweep, a person).
pub fn must_confirm(first: &Plan, row: &Preview) -> bool {
    !first.changes.is_empty()
        || matches!(first.verdict, Verdict::Gone | Verdict::Failed(_))
        || (first.verdict == Verdict::Ready && !row.is_ready_at_generation())
}

/// Whether a pass should plan on listings fetched after it began from the
/// start, rather than on cached ones first. A row whose generation no pass
/// has acted on yet (a new deploy or destroy, or a retry after a failure)
/// almost always changes something, and then [`must_confirm`] asks for
/// fresh listings anyway: reading them first saves the cached look and a
/// second round of requests, which is most of a new dispatch's wait.
/// While the listings' buckets are under half full (`listings_pressed`) a
/// pass reads cached listings first all the same, since a fresh fetch
/// waits for the bucket and may find nothing to do.
pub fn fresh_first(row: &Preview, listings_pressed: bool) -> bool {
    !listings_pressed && row.status.observed_generation != row.generation
}

/// The rule priority a plan reserves, if any: while the pass runs it counts
/// as taken for the other passes of this process.
pub fn reserved_priority(changes: &[Change]) -> Option<i32> {
    changes.iter().find_map(|c| match c {
        Change::ReservePriority(prio) => Some(*prio),
        _ => None,
    })
}

/// The ELB resources `changes` modify or delete: their tags must be read
/// afresh before the changes are applied (see [`check_ownership`]).
pub fn ownership_arns(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::ModifyRule { arn, .. }
            | Change::DeleteRule { arn, .. }
            | Change::DeleteTargetGroup { arn, .. } => Some(arn.clone()),
            _ => None,
        })
        .collect()
}

/// Whether the resources `changes` modify or delete still carry this
/// preview's tags, as read just now (`found`, by ARN). A remembered tag
/// never licenses a change. An ARN missing from `found` is gone already:
/// deleting it succeeds anyway, and modifying it fails with NotFound and
/// is planned again.
pub fn check_ownership(
    changes: &[Change],
    found: &HashMap<String, Tags>,
    controller_id: &str,
    slug: &str,
) -> Result<(), ExecuteError> {
    for arn in ownership_arns(changes) {
        let Some(tags) = found.get(&arn) else {
            continue;
        };
        if tags::owner_slug(tags, controller_id) != Some(slug) {
            return Err(ExecuteError::Cloud {
                step: "VerifyOwnership",
                source: CloudError::Transient {
                    code: "OwnershipChanged".into(),
                    message: format!(
                        "{arn} no longer carries previewd's tags for {slug}; leaving it alone and observing again"
                    ),
                },
            });
        }
    }
    Ok(())
}

/// When a deploy made at `now` expires: `ttl` from now, but never past
/// `max_lifetime` counted from when the preview was first created
/// (`created_at`; `None` for a new one, which is created now).
pub fn expires_at(
    now: Timestamp,
    created_at: Option<Timestamp>,
    ttl: Duration,
    max_lifetime: Duration,
) -> Option<Timestamp> {
    let created = created_at.unwrap_or(now);
    let ttl = ChronoDuration::from_std(ttl).unwrap_or(ChronoDuration::MAX);
    let max = ChronoDuration::from_std(max_lifetime).unwrap_or(ChronoDuration::MAX);
    [now.checked_add_signed(ttl), created.checked_add_signed(max)]
        .into_iter()
        .flatten()
        .min()
}

/// How old the listings of a pass's cached look may be at `now`: as old
/// as `cache_max_age` allowed when the row fell due. Ready previews resync
/// together, at one slot of a shared grid ([`super::resync_slot`]), and at
/// N=1,000 a round's passes take longer to run than the cache lasts:
/// counted from the claim, every later batch of the round found the
/// listings expired and fetched them all again (3.4 fetches a round at a
/// fifth of the interval, 0.52 requests per preview per round). Counted
/// from the due time, one fetch serves the round, and no row is compared
/// with an AWS older than `cache_max_age` before it fell due. Lateness
/// counts for one `resync_interval` at most, so a backlog never makes an
/// arbitrarily old listing good enough.
pub fn cached_look_age(
    row: &Preview,
    now: Timestamp,
    cache_max_age: Duration,
    resync_interval: Duration,
) -> Duration {
    let late = (now - row.next_reconcile_at).to_std().unwrap_or_default();
    cache_max_age + late.min(resync_interval)
}
