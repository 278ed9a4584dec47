//! `decide()`: the pure decision of what a pass over a preview leaves
//! behind — the next status (the phase machine), when to look again, the
//! attempts counter, and the reports owed.
//!
//! ```text
//!  row ──────┐
//!  outcome ──┼─▶ decide() ─▶ Decision { status, action, attempts, reports }
//!  policy ───┤                  │
//!  now, jitter┘                 └─▶ StatusUpdate (the store's write)
//! ```
//!
//! # Guarantees
//! - A retryable failure leaves the phase's meaning alone: this generation
//!   is not marked observed (a Ready left from the last one is no claim
//!   about it), except when it is a wait for load-balancer capacity.
//! - A terminal failure is `Failed` and is reported.
//! - A report is queued exactly when the phase or the observed generation
//!   changes; a condition's `since` moves only when its status flips.
//! - The next look is after `now` and no later than
//!   [`Policy::longest_wait`].
//! - A pass previewd's pacer turned back is looked at again when the pacer
//!   said its tokens would be free ([`paced_retry`]), not after a backoff.

mod outcome;
mod policy;
mod rules;

pub use outcome::{ExecuteError, Outcome, Stop};
pub use policy::{
    Action, Jitter, Policy, THROTTLED_BACKOFF_MAX, backoff_delay, paced_retry, resync_slot,
};
pub use rules::{
    cached_look_age, check_ownership, expires_at, fresh_first, must_confirm, ownership_arns,
    reserved_priority,
};

use crate::error::{CloudError, ErrorClass};
use crate::model::*;
use crate::plan::Verdict;
use std::time::Duration;

/// What a pass leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: PreviewStatus,
    /// When to look again, counted from `decided_at`.
    pub action: Action,
    /// Consecutive failed passes, for the backoff.
    pub attempts: i32,
    /// Reports (GitHub statuses, callbacks) to queue with the status.
    pub reports: Vec<OutboxMessage>,
    /// The `now` the decision was made at.
    pub decided_at: Timestamp,
}

impl From<Decision> for StatusUpdate {
    fn from(d: Decision) -> Self {
        StatusUpdate {
            next_reconcile_at: d.action.due_at(d.decided_at),
            status: d.status,
            attempts: d.attempts,
            outbox: d.reports,
        }
    }
}

impl Preview {
    /// Ready, and Ready about the generation the row asks for now.
    pub fn is_ready_at_generation(&self) -> bool {
        self.status.phase == Phase::Ready && self.status.observed_generation == self.generation
    }
}

/// A condition's (status, reason).
type Cond = (bool, &'static str);

/// The phase, message, conditions and schedule a plan's verdict leads to.
struct Step {
    phase: Phase,
    message: String,
    wait: Duration,
    synced: Cond,
    ready: Cond,
}

fn planned(v: &Verdict, present: bool, old: Phase, policy: &Policy) -> Step {
    let step = |phase, message: &str, wait, synced, ready| Step {
        phase,
        message: message.to_string(),
        wait,
        synced,
        ready,
    };
    let quick = policy.progress_interval / 4;
    match (v, present) {
        (Verdict::Working, true) => step(
            Phase::Provisioning,
            "applying changes",
            quick,
            (false, "Applying"),
            (false, "Applying"),
        ),
        (Verdict::Waiting(r), true) => step(
            Phase::Pending,
            r,
            policy.waiting_interval,
            (false, "WaitingForCapacity"),
            (false, "WaitingForCapacity"),
        ),
        // Looked at again every progress interval: the rollout starts on
        // the first pass after the image is pushed.
        (Verdict::WaitingForImage(image), true) => Step {
            phase: Phase::Pending,
            message: format!("waiting for image {image}"),
            wait: policy.progress_interval,
            synced: (false, "WaitingForImage"),
            ready: (false, "WaitingForImage"),
        },
        (Verdict::Progressing(r), true) => step(
            Phase::Provisioning,
            r,
            policy.progress_interval,
            (true, "Synced"),
            (false, "Progressing"),
        ),
        (Verdict::Ready, true) => step(
            Phase::Ready,
            "preview is ready",
            policy.resync_interval,
            (true, "Synced"),
            (true, "Ready"),
        ),
        (Verdict::Failed(r), _) => step(
            Phase::Failed,
            r,
            policy.failed_interval,
            (true, "Synced"),
            (false, "Failed"),
        ),
        (Verdict::Gone, false) => step(
            Phase::Deleted,
            "all resources deleted",
            policy.resync_interval * 4,
            (true, "Synced"),
            (false, "Deleted"),
        ),
        (Verdict::Working | Verdict::Waiting(_) | Verdict::WaitingForImage(_), false) => step(
            Phase::Deleting,
            "deleting resources",
            quick,
            (false, "Deleting"),
            (false, "Deleting"),
        ),
        (Verdict::Progressing(r), false) => step(
            Phase::Deleting,
            r,
            policy.progress_interval,
            (false, "Deleting"),
            (false, "Deleting"),
        ),
        (Verdict::Sleeping, true) => step(
            Phase::Sleeping,
            "asleep after no request for a while; a visit wakes it",
            policy.resync_interval,
            (true, "Synced"),
            (false, "Sleeping"),
        ),
        // A plan never says Gone for a present row, nor Ready or Sleeping
        // for an absent one; treat it as work still under way.
        (Verdict::Gone, true) | (Verdict::Ready | Verdict::Sleeping, false) => step(
            old,
            "re-checking",
            policy.progress_interval,
            (false, "Unknown"),
            (false, "Unknown"),
        ),
    }
}

/// Decides the status, schedule, attempts and reports after a pass over
/// `row` that ended with `outcome`. `url` is the preview's URL, `jitter`
/// scales a backoff.
pub fn decide(
    row: &Preview,
    outcome: &Outcome,
    url: &str,
    policy: &Policy,
    now: Timestamp,
    jitter: Jitter,
) -> Decision {
    let present = row.desired == Desired::Present;
    let old = &row.status;
    let mut s = PreviewStatus {
        observed_generation: row.generation,
        last_error: None,
        ..old.clone()
    };
    let (synced, ready): (Cond, Cond);
    let mut attempts = 0;
    let wait;
    match outcome.result() {
        Ok(v) => {
            let mut step = planned(v, present, old.phase, policy);
            if let Some(way) = on_the_way(row, v) {
                // Falling asleep or waking up is no rollout: the phase says
                // Sleeping (no report, GitHub keeps `success`), the message
                // and the Ready condition which way it goes.
                step.phase = Phase::Sleeping;
                step.message = format!("{way}: {}", step.message);
                step.ready = (false, if way == WAKING { "Waking" } else { "Sleeping" });
            }
            s.phase = step.phase;
            s.message = Some(step.message);
            s.url = (step.phase == Phase::Ready)
                .then(|| url.to_owned())
                .or(if present { old.url.clone() } else { None });
            (synced, ready) = (step.synced, step.ready);
            wait = step.wait;
        }
        Err(f) => {
            s.last_error = Some(LastError {
                code: f.code,
                message: f.message.clone(),
                class: f.class,
                at: now,
            });
            s.message = Some(f.message.clone());
            match (f.cloud, f.class) {
                (Some(CloudError::LimitExceeded { .. }), _) if present => {
                    s.phase = Phase::Pending;
                    s.message = Some(format!("waiting for capacity: {}", f.message));
                    (synced, ready) =
                        ((false, "WaitingForCapacity"), (false, "WaitingForCapacity"));
                    wait = policy.waiting_interval;
                }
                (_, ErrorClass::Terminal) => {
                    s.phase = Phase::Failed;
                    (synced, ready) = ((false, "Error"), (false, "Failed"));
                    wait = policy.failed_interval;
                }
                (_, ErrorClass::Retryable) => {
                    // The pass did not get through and the phase is left
                    // as it was: this generation is not observed yet, so a
                    // Ready left from the last one is no claim about it.
                    s.observed_generation = old.observed_generation;
                    // Losing a rule priority to a concurrent pass is no
                    // failure: plan again soon, with the priority now taken.
                    attempts = if f.contention {
                        row.attempts
                    } else {
                        row.attempts.saturating_add(1)
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
                    wait = if f.contention {
                        policy.progress_interval / 4
                    } else if let Some(CloudError::Paced { free_in, .. }) = f.cloud {
                        // Turned back by our own pacer, which said when.
                        paced_retry(*free_in)
                    } else if matches!(f.cloud, Some(CloudError::Throttled(_))) {
                        // Refused before doing anything: back off as the AWS
                        // SDKs do for throttling, never longer than their cap.
                        let max = policy.backoff_max.min(THROTTLED_BACKOFF_MAX);
                        backoff_delay(attempts, policy.backoff_base, max, jitter)
                    } else {
                        backoff_delay(attempts, policy.backoff_base, policy.backoff_max, jitter)
                    };
                }
            }
        }
    }
    let message = s.message.clone().unwrap_or_default();
    s.conditions = Conditions {
        synced: condition(&old.conditions.synced, synced, &message, now),
        ready: condition(&old.conditions.ready, ready, &message, now),
    };
    let mut reports = Vec::new();
    let changed = s.phase != old.phase || s.observed_generation != old.observed_generation;
    if changed && !asleep_or_awake(old, &s) {
        reports.push(report(row, &s));
    }
    let resync = matches!(
        outcome,
        Outcome::Planned(Verdict::Ready | Verdict::Sleeping)
    ) && present;
    let action = if resync {
        Action::resync(wait)
    } else {
        Action::requeue(wait)
    };
    Decision {
        status: s,
        action,
        attempts,
        reports,
        decided_at: now,
    }
}

const WAKING: &str = "waking up";
const FALLING_ASLEEP: &str = "falling asleep";

/// Whether a pass that is not done yet is a preview of this generation on
/// its way to sleep (asleep, from Ready or Sleeping) or back from it (a
/// visit woke a Sleeping one): which way.
fn on_the_way(row: &Preview, v: &Verdict) -> Option<&'static str> {
    let this_generation = row.desired == Desired::Present
        && row.status.observed_generation == row.generation
        && matches!(v, Verdict::Working | Verdict::Progressing(_));
    match row.status.phase {
        _ if !this_generation => None,
        Phase::Ready | Phase::Sleeping if row.asleep => Some(FALLING_ASLEEP),
        Phase::Sleeping => Some(WAKING),
        _ => None,
    }
}

/// Falling asleep or waking up within one generation: no report, since
/// the URL works throughout (a visit wakes it) and GitHub keeps `success`.
fn asleep_or_awake(old: &PreviewStatus, new: &PreviewStatus) -> bool {
    let quiet = |p| matches!(p, Phase::Ready | Phase::Sleeping);
    old.observed_generation == new.observed_generation && quiet(old.phase) && quiet(new.phase)
}

fn condition(
    old: &Option<Condition>,
    (status, reason): Cond,
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

/// A phase change the delivery worker turns into a GitHub deployment
/// status and a callback.
fn report(p: &Preview, s: &PreviewStatus) -> OutboxMessage {
    OutboxMessage {
        kind: crate::OutboxKind::Report,
        payload: serde_json::to_value(crate::outbox_report::Report::of(p, s))
            .expect("reports serialize"),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
