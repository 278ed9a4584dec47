//! The decision's examples: moved from the controller's `status.rs` and
//! `backoff.rs` with their assertions unchanged, and the rules of a pass.

use super::*;
use crate::key::PreviewKey;
use crate::plan::{Change, Plan};
use crate::render::RuleSpec;
use crate::tags::Tags;
use std::collections::HashMap;

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

/// The decision as the store writes it, with a random jitter as the
/// controller draws it.
fn next_status(
    p: &Preview,
    outcome: &Outcome,
    url: &str,
    policy: &Policy,
    now: Timestamp,
) -> StatusUpdate {
    let jitter = Jitter::new(0.5 + f64::from(now.timestamp_subsec_millis()) / 2000.0);
    decide(p, outcome, url, policy, now, jitter).into()
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
        &Policy::default(),
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
        &Policy::default(),
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
    let cfg = Policy::default();
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

#[test]
fn backoff_grows_doubling_and_stays_under_the_cap() {
    let base = Duration::from_secs(1);
    let max = Duration::from_secs(60);
    for attempts in 1..40 {
        for jitter in [0.5, 0.75, 1.0] {
            let d = backoff_delay(attempts, base, max, Jitter::new(jitter));
            let ceiling = base.saturating_mul(1 << (attempts - 1).min(20)).min(max);
            assert!(d <= ceiling && d >= ceiling / 2, "{attempts}: {d:?}");
        }
    }
}

#[test]
fn a_stopped_pass_is_recorded_as_the_reconcile_step_timing_out() {
    let p = ready_row_with_new_generation();
    let now = chrono::Utc::now();
    let stop = Stop::Timeout(Duration::from_secs(90));
    let d = decide(
        &p,
        &Outcome::Stopped(stop),
        "https://x",
        &Policy::default(),
        now,
        Jitter::NONE,
    );
    let e = d.status.last_error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.message.as_str(), e.class),
        (
            "Timeout",
            "Reconcile: Timeout: reconcile took longer than 90s",
            ErrorClass::Retryable
        )
    );
    assert_eq!(
        (d.attempts, d.action),
        (1, Action::requeue(Duration::from_secs(2)))
    );
    let lease = Stop::LeaseNotRenewed(Duration::from_secs(120));
    assert_eq!(lease.code(), "LeaseNotRenewed");
    assert!(
        lease
            .to_string()
            .starts_with("Reconcile: LeaseNotRenewed: could not renew the 120s lease")
    );
}

fn rule_change(modify: bool, arn: &str) -> Change {
    if modify {
        Change::ModifyRule {
            arn: arn.into(),
            spec: RuleSpec {
                priority: 1000,
                host: "main-preview.example.com".into(),
                tags: Tags::new(),
                listener_arn: String::new(),
                auth: None,
                client_secret: None,
            },
            target_group_arn: None,
        }
    } else {
        Change::DeleteRule { arn: arn.into() }
    }
}

#[test]
fn a_plan_that_changes_or_claims_anything_is_confirmed_on_fresh_listings() {
    let mut p = ready_row_with_new_generation();
    let plan = |changes: Vec<Change>, verdict| Plan { changes, verdict };
    assert!(must_confirm(
        &plan(vec![rule_change(false, "a")], Verdict::Working),
        &p
    ));
    assert!(must_confirm(&plan(vec![], Verdict::Gone), &p));
    assert!(must_confirm(&plan(vec![], Verdict::Failed("x".into())), &p));
    assert!(
        must_confirm(&plan(vec![], Verdict::Ready), &p),
        "Ready is new at generation 2"
    );
    assert!(!must_confirm(
        &plan(vec![], Verdict::Progressing("x".into())),
        &p
    ));
    p.status.observed_generation = 2;
    assert!(
        !must_confirm(&plan(vec![], Verdict::Ready), &p),
        "already Ready here"
    );
}

#[test]
fn a_change_to_a_resource_whose_tags_changed_is_refused() {
    let id = "previewd";
    let ours: Tags = crate::tags::ownership_tags(id, "acme/shop", "main", "main", None);
    let theirs: Tags = crate::tags::ownership_tags(id, "acme/shop", "other", "other", None);
    let changes = vec![rule_change(true, "arn:1"), rule_change(false, "arn:2")];
    assert_eq!(ownership_arns(&changes), ["arn:1", "arn:2"]);
    let mut found = HashMap::from([("arn:1".to_string(), ours.clone())]);
    // arn:2 is gone already: nothing to refuse.
    assert!(check_ownership(&changes, &found, id, "main").is_ok());
    found.insert("arn:2".into(), theirs);
    let refused = check_ownership(&changes, &found, id, "main").unwrap_err();
    assert_eq!(refused.code(), "OwnershipChanged");
    assert!(
        refused
            .to_string()
            .starts_with("VerifyOwnership: OwnershipChanged: arn:2 no longer carries")
    );
}

#[test]
fn a_deploy_expires_after_its_ttl_but_never_past_the_max_lifetime() {
    let now = Timestamp::from_timestamp(1_700_000_000, 0).unwrap();
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let at = |h: i64| Some(now + chrono::Duration::hours(h));
    assert_eq!(expires_at(now, None, hours(72), hours(24 * 14)), at(72));
    let created = now - chrono::Duration::hours(24 * 14 - 10);
    assert_eq!(
        expires_at(now, Some(created), hours(72), hours(24 * 14)),
        at(10)
    );
    assert_eq!(expires_at(now, None, Duration::MAX, Duration::MAX), None);
}

/// Issue 16, item 2: a preview waiting for its image is Pending with
/// exactly that message, a reason of its own, and looked at again every
/// progress interval (not after the long capacity wait), so the rollout
/// starts on the pass after the push.
#[test]
fn waiting_for_an_image_is_pending_and_looked_at_every_progress_interval() {
    let mut p = ready_row_with_new_generation();
    p.status.phase = Phase::Pending;
    let policy = Policy::default();
    let now = chrono::Utc::now();
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:abc".to_owned();
    let d = decide(
        &p,
        &Outcome::Planned(Verdict::WaitingForImage(image.clone())),
        "https://main-preview.example.com",
        &policy,
        now,
        Jitter::new(1.0),
    );
    assert_eq!(d.status.phase, Phase::Pending);
    assert_eq!(
        d.status.message.as_deref(),
        Some(format!("waiting for image {image}").as_str())
    );
    let ready = d.status.conditions.ready.unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (false, "WaitingForImage")
    );
    assert_eq!(d.status.observed_generation, p.generation);
    let progress = chrono::Duration::from_std(policy.progress_interval).unwrap();
    assert_eq!(d.action.due_at(now), now + progress);
}

/// Issue 18: falling asleep and waking are no rollout; GitHub keeps its
/// `success` and the pull request hears nothing.
#[test]
fn falling_asleep_and_waking_keep_the_phase_sleeping_and_report_nothing() {
    let mut p = ready_row_with_new_generation();
    p.status.observed_generation = p.generation;
    let policy = Policy::default();
    let now = chrono::Utc::now();
    let url = "https://main-preview.example.com";
    p.asleep = true;
    let falling = next_status(&p, &Outcome::Planned(Verdict::Working), url, &policy, now);
    assert_eq!(falling.status.phase, Phase::Sleeping);
    assert!(falling.outbox.is_empty());
    assert!(
        falling
            .status
            .message
            .as_deref()
            .unwrap()
            .starts_with("falling asleep")
    );
    p.status = falling.status;
    let asleep = next_status(&p, &Outcome::Planned(Verdict::Sleeping), url, &policy, now);
    assert_eq!(asleep.status.phase, Phase::Sleeping);
    assert!(asleep.outbox.is_empty());
    p.status = asleep.status;
    p.asleep = false;
    let progressing = Outcome::Planned(Verdict::Progressing("0/1 tasks running".into()));
    let waking = next_status(&p, &progressing, url, &policy, now);
    assert_eq!(waking.status.phase, Phase::Sleeping);
    assert_eq!(
        waking.status.conditions.ready.as_ref().unwrap().reason,
        "Waking"
    );
    assert!(waking.outbox.is_empty());
    p.status = waking.status;
    let ready = next_status(&p, &Outcome::Planned(Verdict::Ready), url, &policy, now);
    assert_eq!(ready.status.phase, Phase::Ready);
    assert!(ready.outbox.is_empty());
    assert_eq!(ready.status.url.as_deref(), Some(url));
}
