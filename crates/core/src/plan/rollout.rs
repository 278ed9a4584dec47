//! The rollout rules `plan_present` and `readiness` share: a task that can
//! never start, a failed generation held at zero, and the revisions a
//! finished rollout leaves behind.

use super::Observation;
use crate::model::{Phase, Preview};
use crate::observed::{ObservedService, RolloutState};
use crate::stop_reason::never_heals;

/// The reason a task of the unfinished rollout stopped, when relaunching
/// it can never help (see [`never_heals`]).
pub(super) fn doomed(o: &Observation) -> Option<&str> {
    let rolling = o
        .service
        .as_ref()
        .and_then(|s| s.primary())
        .is_some_and(|d| d.rollout_state == RolloutState::InProgress);
    o.stopped_reason
        .as_deref()
        .filter(|why| rolling && never_heals(why))
}

/// Whether this generation failed and its service stands at zero — what
/// failing fast left — so no pass over the same generation scales it up
/// again. A new generation (a changed spec, or the retry of an identical
/// dispatch) is no longer held.
pub(super) fn held_down(p: &Preview, s: &ObservedService) -> bool {
    p.status.phase == Phase::Failed
        && p.status.observed_generation == p.generation
        && s.desired_count == 0
}

/// The family and revision number an ARN (or `family:N`) names.
pub(super) fn family_revision(arn: &str) -> Option<(&str, i64)> {
    let short = arn.rsplit('/').next().unwrap_or(arn);
    let (family, n) = short.rsplit_once(':')?;
    Some((family, n.parse().ok()?))
}

/// The ACTIVE revisions of `family` a finished rollout has superseded:
/// all but the one running (`running`), the one before it (kept for a
/// rollback), and any newer than the running one (a rollout that has not
/// happened yet). Only ARNs of `family` exactly: `familyPrefix` lists
/// `pv-issue-10` for `pv-issue-1`. `None` (not looked up): nothing.
pub(super) fn superseded(family: &str, running: &str, revisions: Option<&[String]>) -> Vec<String> {
    let Some(revisions) = revisions else {
        return Vec::new();
    };
    let Some((running_family, running_n)) = family_revision(running) else {
        return Vec::new();
    };
    if running_family != family {
        return Vec::new();
    }
    let ours: Vec<(i64, &String)> = revisions
        .iter()
        .filter_map(|arn| match family_revision(arn) {
            Some((f, n)) if f == family => Some((n, arn)),
            _ => None,
        })
        .collect();
    let previous = ours
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| *n < running_n)
        .max();
    ours.into_iter()
        .filter(|(n, _)| *n < running_n && Some(*n) != previous)
        .map(|(_, arn)| arn.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arn(family: &str, n: i64) -> String {
        format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{n}")
    }

    #[test]
    fn the_running_revision_and_the_one_before_it_are_kept() {
        let listed: Vec<String> = [1, 2, 3, 5].iter().map(|n| arn("pv-a", *n)).collect();
        let gone = superseded("pv-a", &arn("pv-a", 5), Some(&listed));
        assert_eq!(gone, [arn("pv-a", 1), arn("pv-a", 2)]);
        assert!(superseded("pv-a", &arn("pv-a", 5), None).is_empty());
    }

    #[test]
    fn another_family_sharing_the_prefix_is_never_touched() {
        let listed = vec![
            arn("pv-a", 1),
            arn("pv-a-1", 1),
            arn("pv-a", 7),
            arn("pv-a", 8),
        ];
        assert_eq!(
            superseded("pv-a", &arn("pv-a", 8), Some(&listed)),
            [arn("pv-a", 1)]
        );
        // A service running another family's revision: nothing of ours is
        // judged superseded by it.
        assert!(superseded("pv-a", &arn("pv-b", 9), Some(&listed)).is_empty());
    }

    proptest! {
        /// Whatever is listed, the running revision, the one before it and
        /// newer ones stay, nothing of another family goes, and at most two
        /// revisions at or below the running one remain.
        #[test]
        fn superseded_keeps_two_and_only_touches_its_family(
            mine in prop::collection::btree_set(1i64..40, 0..12),
            theirs in prop::collection::btree_set(1i64..40, 0..4),
            running in 1i64..40,
        ) {
            let listed: Vec<String> = mine.iter().map(|n| arn("pv-a", *n))
                .chain(theirs.iter().map(|n| arn("pv-a-2", *n)))
                .collect();
            let gone = superseded("pv-a", &arn("pv-a", running), Some(&listed));
            prop_assert!(gone.iter().all(|a| family_revision(a).unwrap().0 == "pv-a"));
            prop_assert!(!gone.contains(&arn("pv-a", running)));
            let left: Vec<i64> = mine.iter().copied()
                .filter(|n| !gone.contains(&arn("pv-a", *n)))
                .collect();
            prop_assert!(left.iter().filter(|n| **n <= running).count() <= 2);
            prop_assert!(mine.iter().filter(|n| **n > running).all(|n| left.contains(n)));
            let previous = mine.iter().copied().filter(|n| *n < running).max();
            if let Some(prev) = previous {
                prop_assert!(left.contains(&prev));
            }
        }
    }
}
