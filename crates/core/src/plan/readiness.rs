//! When an in-sync preview is Ready, still on its way, or failed.

use super::{Observation, Verdict, rollout};
use crate::model::Preview;
use crate::observed::*;

/// Where a preview whose plan changes nothing stands.
pub(super) fn readiness(p: &Preview, o: &Observation) -> Verdict {
    let Some(svc) = &o.service else {
        return Verdict::Progressing("waiting for the service".into());
    };
    if rollout::held_down(p, svc) {
        // This generation failed and its service was scaled to zero: the
        // failure stands until a new generation.
        return Verdict::Failed(
            p.status
                .message
                .clone()
                .unwrap_or_else(|| "a task cannot start".into()),
        );
    }
    let Some(primary) = svc.primary() else {
        return Verdict::Progressing("waiting for the service's first deployment".into());
    };
    if primary.task_definition != svc.task_definition {
        return Verdict::Progressing("waiting for the new deployment to start".into());
    }
    match primary.rollout_state {
        RolloutState::Failed => {
            let why = o
                .stopped_reason
                .clone()
                .or_else(|| primary.rollout_reason.clone())
                .unwrap_or_else(|| "the deployment failed".into());
            return Verdict::Failed(format!("rollout failed: {why}"));
        }
        RolloutState::InProgress => {
            // A task that can never start fails the preview now, not when
            // the circuit breaker gives up minutes later.
            if let Some(why) = rollout::doomed(o) {
                return Verdict::Failed(why.to_owned());
            }
            // Any other stopped task mid-rollout may be an old one being
            // replaced, or one ECS will retry: the breaker decides.
            if let Some(why) = &o.stopped_reason {
                return Verdict::Progressing(format!(
                    "deployment in progress; a task stopped: {why}"
                ));
            }
            return Verdict::Progressing(format!(
                "deployment in progress ({}/{} tasks running)",
                primary.running_count, primary.desired_count
            ));
        }
        RolloutState::Completed => {}
    }
    if primary.running_count < primary.desired_count {
        return Verdict::Progressing(format!(
            "{}/{} tasks running",
            primary.running_count, primary.desired_count
        ));
    }
    match o.target_health {
        Some(h) if h.healthy > 0 => Verdict::Ready,
        Some(h) => Verdict::Progressing(format!(
            "waiting for a healthy target ({} initial, {} unhealthy)",
            h.initial, h.unhealthy
        )),
        // Not looked up: the row was already Ready at this generation.
        None if p.status.phase == crate::Phase::Ready => Verdict::Ready,
        None => Verdict::Progressing("waiting for a healthy target".into()),
    }
}
