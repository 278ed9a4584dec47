//! Turns the result of a pass into the row's next status, schedule and
//! reports.

use crate::ControllerConfig;
use crate::backoff::backoff_delay;
use crate::execute::ExecuteError;
use chrono::Duration as ChronoDuration;
use previewd_core::model::*;
use previewd_core::plan::Verdict;
use previewd_core::ports::StoreError;
use previewd_core::{CloudError, ErrorClass};
use std::time::Duration;

/// What a pass ended with.
#[derive(Debug)]
pub enum Outcome {
    /// The plan was applied (or there was nothing to do).
    Planned(Verdict),
    /// Observation or execution failed.
    Error(ExecuteError),
}

/// The longest wait after a throttled call (the AWS SDKs' retry cap).
const THROTTLED_BACKOFF_MAX: Duration = Duration::from_secs(20);

fn after(now: Timestamp, d: Duration) -> Timestamp {
    now + ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

fn condition(
    old: &Option<Condition>,
    status: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Option<Condition> {
    let since = match old {
        Some(c) if c.status == status => c.since,
        _ => now,
    };
    Some(Condition {
        status,
        reason: reason.into(),
        message: message.into(),
        since,
    })
}

/// When a Ready preview is looked at again: the first point of a grid of
/// `interval` steps (counted from the epoch, so every replica agrees) at
/// least half an interval from now. Ready previews thus resync together,
/// as an informer's periodic resync does, and one fetch of each shared
/// listing serves the whole round; left to drift apart, each preview's
/// resync would find the cache expired and pay for a fetch of its own.
fn resync_slot(now: Timestamp, interval: Duration) -> Timestamp {
    let step = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let earliest = after(now, interval / 2).timestamp_millis();
    let slot = earliest
        .div_euclid(step)
        .saturating_add(1)
        .saturating_mul(step);
    // `earliest` on the grid already is a slot; otherwise the next one.
    let slot = if earliest.rem_euclid(step) == 0 {
        earliest
    } else {
        slot
    };
    Timestamp::from_timestamp_millis(slot).unwrap_or_else(|| after(now, interval))
}

/// The status to write after a pass over `p`.
pub fn next_status(
    p: &Preview,
    outcome: &Outcome,
    url: &str,
    cfg: &ControllerConfig,
    now: Timestamp,
) -> StatusUpdate {
    let present = p.desired == Desired::Present;
    let old = &p.status;
    let mut s = PreviewStatus {
        observed_generation: p.generation,
        last_error: None,
        ..old.clone()
    };
    let (synced, ready): ((bool, &str), (bool, &str));
    let mut attempts = 0;
    let wait;
    match outcome {
        Outcome::Planned(v) => {
            let (phase, message, next, sy, re) = match (v, present) {
                (Verdict::Working, true) => (
                    Phase::Provisioning,
                    "applying changes".to_string(),
                    cfg.progress_interval / 4,
                    (false, "Applying"),
                    (false, "Applying"),
                ),
                (Verdict::Waiting(r), true) => (
                    Phase::Pending,
                    r.clone(),
                    cfg.waiting_interval,
                    (false, "WaitingForCapacity"),
                    (false, "WaitingForCapacity"),
                ),
                (Verdict::Progressing(r), true) => (
                    Phase::Provisioning,
                    r.clone(),
                    cfg.progress_interval,
                    (true, "Synced"),
                    (false, "Progressing"),
                ),
                (Verdict::Ready, true) => (
                    Phase::Ready,
                    "preview is ready".to_string(),
                    cfg.resync_interval,
                    (true, "Synced"),
                    (true, "Ready"),
                ),
                (Verdict::Failed(r), _) => (
                    Phase::Failed,
                    r.clone(),
                    cfg.failed_interval,
                    (true, "Synced"),
                    (false, "Failed"),
                ),
                (Verdict::Gone, false) => (
                    Phase::Deleted,
                    "all resources deleted".to_string(),
                    cfg.resync_interval * 4,
                    (true, "Synced"),
                    (false, "Deleted"),
                ),
                (Verdict::Working | Verdict::Waiting(_), false) => (
                    Phase::Deleting,
                    "deleting resources".to_string(),
                    cfg.progress_interval / 4,
                    (false, "Deleting"),
                    (false, "Deleting"),
                ),
                (Verdict::Progressing(r), false) => (
                    Phase::Deleting,
                    r.clone(),
                    cfg.progress_interval,
                    (false, "Deleting"),
                    (false, "Deleting"),
                ),
                // A plan never says Gone for a present row, nor Ready for an
                // absent one; treat it as work still under way.
                (Verdict::Gone, true) | (Verdict::Ready, false) => (
                    old.phase,
                    "re-checking".to_string(),
                    cfg.progress_interval,
                    (false, "Unknown"),
                    (false, "Unknown"),
                ),
            };
            s.phase = phase;
            s.message = Some(message);
            s.url = (phase == Phase::Ready)
                .then(|| url.to_owned())
                .or(if present { old.url.clone() } else { None });
            (synced, ready) = (sy, re);
            wait = next;
        }
        Outcome::Error(e) => {
            let cloud = match e {
                ExecuteError::Cloud { source, .. } => Some(source),
                ExecuteError::Store { .. } => None,
            };
            let class = cloud.map_or(ErrorClass::Retryable, CloudError::class);
            let code = cloud.map_or("StoreConflict", CloudError::code).to_string();
            s.last_error = Some(LastError {
                code,
                message: e.to_string(),
                class,
                at: now,
            });
            s.message = Some(e.to_string());
            match (cloud, class) {
                (Some(CloudError::LimitExceeded { .. }), _) if present => {
                    s.phase = Phase::Pending;
                    s.message = Some(format!("waiting for capacity: {e}"));
                    (synced, ready) =
                        ((false, "WaitingForCapacity"), (false, "WaitingForCapacity"));
                    wait = cfg.waiting_interval;
                }
                (_, ErrorClass::Terminal) => {
                    s.phase = Phase::Failed;
                    (synced, ready) = ((false, "Error"), (false, "Failed"));
                    wait = cfg.failed_interval;
                }
                (_, ErrorClass::Retryable) => {
                    // The pass did not get through and the phase is left
                    // as it was: this generation is not observed yet, so a
                    // Ready left from the last one is no claim about it.
                    s.observed_generation = old.observed_generation;
                    // Losing a rule priority to a concurrent pass is no
                    // failure: plan again soon, with the priority now taken.
                    let contention = matches!(
                        e,
                        ExecuteError::Store {
                            source: StoreError::PriorityTaken(_),
                            ..
                        }
                    );
                    attempts = if contention {
                        p.attempts
                    } else {
                        p.attempts.saturating_add(1)
                    };
                    if !present && s.phase != Phase::Deleted {
                        s.phase = Phase::Deleting;
                    } else if present
                        && matches!(s.phase, Phase::Pending | Phase::Deleting | Phase::Deleted)
                    {
                        s.phase = Phase::Provisioning;
                    }
                    (synced, ready) = (
                        (false, "Retrying"),
                        (
                            old.conditions.ready.as_ref().is_some_and(|c| c.status),
                            "Retrying",
                        ),
                    );
                    wait = if contention {
                        cfg.progress_interval / 4
                    } else if matches!(cloud, Some(CloudError::Throttled(_))) {
                        // Refused before doing anything: back off as the AWS
                        // SDKs do for throttling, never longer than their cap.
                        let max = cfg.backoff_max.min(THROTTLED_BACKOFF_MAX);
                        backoff_delay(attempts, cfg.backoff_base, max)
                    } else {
                        backoff_delay(attempts, cfg.backoff_base, cfg.backoff_max)
                    };
                }
            }
        }
    }
    let message = s.message.clone().unwrap_or_default();
    s.conditions = Conditions {
        synced: condition(&old.conditions.synced, synced.0, synced.1, &message, now),
        ready: condition(&old.conditions.ready, ready.0, ready.1, &message, now),
    };
    let mut outbox = Vec::new();
    if s.phase != old.phase || s.observed_generation != old.observed_generation {
        outbox.push(report(p, &s));
    }
    let resync = matches!(outcome, Outcome::Planned(Verdict::Ready)) && present;
    let next_reconcile_at = if resync {
        resync_slot(now, wait)
    } else {
        after(now, wait)
    };
    StatusUpdate {
        status: s,
        next_reconcile_at,
        attempts,
        outbox,
    }
}

/// A phase change the delivery worker turns into a GitHub deployment
/// status and a callback.
fn report(p: &Preview, s: &PreviewStatus) -> OutboxMessage {
    let report = previewd_core::report::Report {
        project: p.key.project.clone(),
        branch: p.key.branch.clone(),
        generation: p.generation,
        action: if p.desired == Desired::Present {
            previewd_core::report::Action::Deploy
        } else {
            previewd_core::report::Action::Destroy
        },
        phase: s.phase,
        url: s.url.clone(),
        message: s.message.clone(),
        commit_sha: p.spec.commit_sha.clone(),
        ai_run_id: p.spec.ai_run_id.clone(),
        callback_url: p.spec.callback_url.clone(),
    };
    OutboxMessage {
        kind: previewd_core::OutboxKind::Report,
        payload: serde_json::to_value(report).expect("reports serialize"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use previewd_core::key::PreviewKey;

    fn ready_row_with_new_generation() -> Preview {
        let key = PreviewKey::new("acme/shop", "main").unwrap();
        let mut p = Preview::fresh(
            key,
            "main",
            "main-preview",
            PreviewSpec::default(),
            chrono::Utc::now(),
        );
        p.generation = 2;
        p.status.phase = Phase::Ready;
        p.status.observed_generation = 1;
        p.status.url = Some("https://main-preview.example.com".into());
        p.rule_priority = Some(1000);
        p
    }

    #[test]
    fn ready_previews_resync_on_a_shared_grid_half_to_one_and_a_half_intervals_away() {
        let interval = Duration::from_secs(300);
        for offset_ms in [0, 1, 149_999, 150_000, 150_001, 299_999] {
            let now = Timestamp::from_timestamp_millis(1_700_000_100_000 + offset_ms).unwrap();
            let slot = resync_slot(now, interval);
            assert_eq!(slot.timestamp_millis() % 300_000, 0, "{now}: {slot}");
            let wait = (slot - now).to_std().unwrap();
            assert!(
                wait >= interval / 2 && wait < interval * 3 / 2,
                "{now}: {wait:?}"
            );
        }
        // Two previews made Ready a little apart share their next resync.
        let a = Timestamp::from_timestamp_millis(1_700_000_100_000).unwrap();
        let b = a + chrono::Duration::seconds(40);
        assert_eq!(resync_slot(a, interval), resync_slot(b, interval));
    }

    /// Regression (chaos seed 707): a failed pass over a new generation
    /// must not mark it observed while the phase still says Ready.
    #[test]
    fn a_failed_pass_does_not_observe_the_new_generation() {
        let p = ready_row_with_new_generation();
        let err = ExecuteError::Cloud {
            step: "Observe",
            source: CloudError::Throttled("Rate exceeded".into()),
        };
        let u = next_status(
            &p,
            &Outcome::Error(err),
            "https://x",
            &ControllerConfig::default(),
            chrono::Utc::now(),
        );
        assert_eq!(u.status.observed_generation, 1);
        assert_eq!(u.attempts, 1);
        assert!(u.outbox.is_empty(), "no phase change, no report");
    }

    #[test]
    fn a_terminal_error_fails_and_reports_with_the_action() {
        let p = ready_row_with_new_generation();
        let denied = CloudError::AccessDenied {
            action: "elasticloadbalancing:ModifyRule".into(),
            message: "not authorized".into(),
        };
        let err = ExecuteError::Cloud {
            step: "ModifyRule",
            source: denied,
        };
        let u = next_status(
            &p,
            &Outcome::Error(err),
            "https://x",
            &ControllerConfig::default(),
            chrono::Utc::now(),
        );
        assert_eq!(u.status.phase, Phase::Failed);
        assert!(
            u.status
                .message
                .as_deref()
                .unwrap()
                .contains("AccessDenied: elasticloadbalancing:ModifyRule")
        );
        assert_eq!(u.outbox.len(), 1);
    }

    #[test]
    fn ready_reports_once_per_generation() {
        let mut p = ready_row_with_new_generation();
        let cfg = ControllerConfig::default();
        let u = next_status(
            &p,
            &Outcome::Planned(Verdict::Ready),
            "https://x",
            &cfg,
            chrono::Utc::now(),
        );
        assert_eq!(
            (u.status.phase, u.status.observed_generation, u.outbox.len()),
            (Phase::Ready, 2, 1)
        );
        p.status = u.status;
        let again = next_status(
            &p,
            &Outcome::Planned(Verdict::Ready),
            "https://x",
            &cfg,
            chrono::Utc::now(),
        );
        assert!(again.outbox.is_empty());
    }
}
