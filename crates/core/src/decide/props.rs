//! Property tests of the whole decision: the phase machine, the schedule,
//! the attempts counter, the reports and the conditions.

use super::*;
use crate::key::PreviewKey;
use crate::ports::StoreError;
use proptest::prelude::*;

/// An outcome as plain data (an `ExecuteError` is not `Clone`).
#[derive(Debug, Clone)]
enum Recipe {
    Planned(Verdict),
    Cloud(CloudError),
    PriorityTaken,
    LeaseLost,
    Stopped(Stop),
}

impl Recipe {
    fn outcome(&self, key: &PreviewKey) -> Outcome {
        let cloud = |source| {
            Outcome::Error(ExecuteError::Cloud {
                step: "CreateRule",
                source,
            })
        };
        let store = |source| {
            Outcome::Error(ExecuteError::Store {
                step: "ReservePriority",
                source,
            })
        };
        match self {
            Recipe::Planned(v) => Outcome::Planned(v.clone()),
            Recipe::Cloud(e) => cloud(e.clone()),
            Recipe::PriorityTaken => store(StoreError::PriorityTaken(1000)),
            Recipe::LeaseLost => store(StoreError::LeaseLost(key.clone())),
            Recipe::Stopped(s) => Outcome::Stopped(s.clone()),
        }
    }

    fn class(&self) -> Option<ErrorClass> {
        match self {
            Recipe::Planned(_) => None,
            Recipe::Cloud(e) => Some(e.class()),
            _ => Some(ErrorClass::Retryable),
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    "[a-z ]{0,12}"
}

fn cloud_error() -> impl Strategy<Value = CloudError> {
    prop_oneof![
        (text(), text()).prop_map(|(action, message)| CloudError::AccessDenied { action, message }),
        text().prop_map(CloudError::Throttled),
        (text(), 0..30_000u64).prop_map(|(message, ms)| CloudError::Paced {
            message,
            free_in: Duration::from_millis(ms)
        }),
        (1..50_000i32).prop_map(CloudError::PriorityInUse),
        text().prop_map(CloudError::ResourceInUse),
        text().prop_map(|message| CloudError::LimitExceeded {
            code: "TooManyTargetGroups".into(),
            message
        }),
        text().prop_map(CloudError::NotFound),
        text().prop_map(CloudError::AlreadyExists),
        text().prop_map(|message| CloudError::Invalid {
            code: "ValidationError".into(),
            message
        }),
        text().prop_map(|message| CloudError::Transient {
            code: "InternalFailure".into(),
            message
        }),
    ]
}

/// The verdicts `plan()` gives a row that is `present` (or absent): never
/// Gone for a present row, never Ready or Waiting for an absent one.
fn verdict(present: bool) -> BoxedStrategy<Verdict> {
    if present {
        prop_oneof![
            Just(Verdict::Working),
            text().prop_map(Verdict::Waiting),
            text().prop_map(Verdict::WaitingForImage),
            text().prop_map(Verdict::Progressing),
            Just(Verdict::Ready),
            text().prop_map(Verdict::Failed),
            Just(Verdict::Sleeping),
        ]
        .boxed()
    } else {
        prop_oneof![
            Just(Verdict::Working),
            text().prop_map(Verdict::Progressing),
            text().prop_map(Verdict::Failed),
            Just(Verdict::Gone),
        ]
        .boxed()
    }
}

fn recipe(present: bool) -> impl Strategy<Value = Recipe> {
    prop_oneof![
        3 => verdict(present).prop_map(Recipe::Planned),
        3 => cloud_error().prop_map(Recipe::Cloud),
        1 => Just(Recipe::PriorityTaken),
        1 => Just(Recipe::LeaseLost),
        1 => (1..600u64).prop_map(|s| Recipe::Stopped(Stop::Timeout(Duration::from_secs(s)))),
        1 => (1..600u64).prop_map(|s| Recipe::Stopped(Stop::LeaseNotRenewed(Duration::from_secs(s)))),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (1_600_000_000_000i64..1_900_000_000_000)
        .prop_map(|ms| Timestamp::from_timestamp_millis(ms).expect("in range"))
}

fn condition() -> impl Strategy<Value = Option<Condition>> {
    proptest::option::of((any::<bool>(), text(), timestamp()).prop_map(
        |(status, reason, since)| Condition {
            status,
            message: reason.clone(),
            reason,
            since,
        },
    ))
}

fn row() -> impl Strategy<Value = Preview> {
    let phase = proptest::sample::select(Phase::ALL.to_vec());
    (
        any::<bool>(),
        1..6i64,
        0..6i64,
        phase,
        (
            0..20i32,
            proptest::option::of(Just("https://old".to_string())),
        ),
        (condition(), condition()),
        (timestamp(), any::<bool>()),
    )
        .prop_map(
            |(present, generation, seen, phase, (attempts, url), (synced, ready), (at, asleep))| {
                let key = PreviewKey::new("acme/shop", "qanote/issue-42").expect("valid");
                let mut p = Preview::fresh(
                    key,
                    "issue-42",
                    "issue-42-preview",
                    PreviewSpec::default(),
                    at,
                );
                p.desired = if present {
                    Desired::Present
                } else {
                    Desired::Absent
                };
                p.generation = generation;
                p.status.observed_generation = seen.min(generation);
                p.status.phase = phase;
                p.status.url = url;
                p.status.conditions = Conditions { synced, ready };
                p.attempts = attempts;
                p.asleep = asleep;
                p
            },
        )
}

fn policy() -> impl Strategy<Value = Policy> {
    let ms = |lo: u64, hi: u64| (lo..hi).prop_map(Duration::from_millis);
    (
        ms(4, 600_000),
        ms(4, 60_000),
        ms(1, 600_000),
        ms(1, 3_600_000),
        ms(1, 10_000),
        ms(1, 3_600_000),
    )
        .prop_map(|(resync, progress, waiting, failed, base, max)| Policy {
            resync_interval: resync,
            progress_interval: progress,
            waiting_interval: waiting,
            failed_interval: failed,
            backoff_base: base,
            backoff_max: max,
        })
}

type Case = (Preview, Recipe, Policy, Timestamp, Jitter);

/// One pass: the row, how it ended, the policy, now, and the jitter.
fn case() -> impl Strategy<Value = Case> {
    case_ending(|present| recipe(present).boxed())
}

/// A pass that ended with a terminal cloud error.
fn terminal_case() -> impl Strategy<Value = Case> {
    case_ending(|_| {
        cloud_error()
            .prop_filter("terminal", |e| e.class() == ErrorClass::Terminal)
            .prop_map(Recipe::Cloud)
            .boxed()
    })
}

fn case_ending(
    recipe: impl Fn(bool) -> BoxedStrategy<Recipe> + Clone,
) -> impl Strategy<Value = Case> {
    row().prop_flat_map(move |p| {
        let present = p.desired == Desired::Present;
        (
            Just(p),
            recipe(present),
            policy(),
            timestamp(),
            (0.5..=1.0f64).prop_map(Jitter::new),
        )
    })
}

fn run(p: &Preview, r: &Recipe, policy: &Policy, now: Timestamp, jitter: Jitter) -> Decision {
    decide(p, &r.outcome(&p.key), "https://new", policy, now, jitter)
}

fn is_capacity_wait(p: &Preview, r: &Recipe) -> bool {
    p.desired == Desired::Present && matches!(r, Recipe::Cloud(CloudError::LimitExceeded { .. }))
}

proptest! {
    #[test]
    fn a_present_row_never_decides_deleted_or_deleting((p, r, policy, now, j) in case()) {
        prop_assume!(p.desired == Desired::Present);
        let d = run(&p, &r, &policy, now, j);
        prop_assert!(!matches!(d.status.phase, Phase::Deleted | Phase::Deleting), "{:?}", d.status.phase);
    }

    #[test]
    fn an_absent_row_never_decides_ready_or_pending((p, r, policy, now, j) in case()) {
        prop_assume!(p.desired == Desired::Absent);
        let d = run(&p, &r, &policy, now, j);
        prop_assert!(!matches!(d.status.phase, Phase::Ready | Phase::Pending), "{:?}", d.status.phase);
    }

    #[test]
    fn the_next_look_is_in_the_future_and_within_the_longest_wait((p, r, policy, now, j) in case()) {
        let d = run(&p, &r, &policy, now, j);
        let due = d.action.due_at(now);
        prop_assert!(due > now, "{due} is not after {now}");
        let wait = (due - now).to_std().expect("positive");
        prop_assert!(wait <= policy.longest_wait(), "{wait:?} > {:?}", policy.longest_wait());
        let update = StatusUpdate::from(d);
        prop_assert_eq!(update.next_reconcile_at, due);
    }

    #[test]
    fn attempts_grow_only_on_retryable_non_contention_errors_and_reset_on_success(
        (p, r, policy, now, j) in case()
    ) {
        let d = run(&p, &r, &policy, now, j);
        let expected = match (&r, r.class()) {
            (Recipe::PriorityTaken, _) => p.attempts,
            (_, Some(ErrorClass::Retryable)) if !is_capacity_wait(&p, &r) => p.attempts + 1,
            _ => 0,
        };
        prop_assert_eq!(d.attempts, expected);
        if matches!(r, Recipe::Planned(_)) {
            prop_assert_eq!(d.attempts, 0);
            prop_assert_eq!(d.status.last_error, None);
        } else {
            prop_assert!(d.status.last_error.is_some());
        }
    }

    #[test]
    fn a_report_is_queued_exactly_when_the_phase_or_observed_generation_changes(
        (p, r, policy, now, j) in case()
    ) {
        let d = run(&p, &r, &policy, now, j);
        let changed = d.status.phase != p.status.phase
            || d.status.observed_generation != p.status.observed_generation;
        // Falling asleep and waking within a generation are not reported:
        // the URL works throughout and GitHub keeps `success`.
        let quiet = |ph| matches!(ph, Phase::Ready | Phase::Sleeping);
        let asleep_or_awake = quiet(p.status.phase)
            && quiet(d.status.phase)
            && d.status.observed_generation == p.status.observed_generation;
        prop_assert_eq!(d.reports.len(), usize::from(changed && !asleep_or_awake));
        if let Some(m) = d.reports.first() {
            let report: crate::outbox_report::Report = serde_json::from_value(m.payload.clone()).unwrap();
            prop_assert_eq!(report.phase, d.status.phase);
            prop_assert_eq!(report.generation, p.generation);
        }
    }

    #[test]
    fn a_retryable_error_never_advances_the_observed_generation((p, r, policy, now, j) in case()) {
        prop_assume!(r.class() == Some(ErrorClass::Retryable));
        let d = run(&p, &r, &policy, now, j);
        if is_capacity_wait(&p, &r) {
            // Waiting for capacity is an answer about this generation, as
            // a plan's Waiting verdict is.
            prop_assert_eq!((d.status.phase, d.status.observed_generation), (Phase::Pending, p.generation));
        } else {
            prop_assert_eq!(d.status.observed_generation, p.status.observed_generation);
        }
    }

    #[test]
    fn a_condition_since_changes_only_when_its_status_flips((p, r, policy, now, j) in case()) {
        let d = run(&p, &r, &policy, now, j);
        let old = &p.status.conditions;
        let new = &d.status.conditions;
        for (old, new) in [(&old.synced, &new.synced), (&old.ready, &new.ready)] {
            let new = new.as_ref().expect("always set");
            match old {
                Some(o) if o.status == new.status => prop_assert_eq!(new.since, o.since),
                _ => prop_assert_eq!(new.since, now),
            }
        }
    }

    #[test]
    fn terminal_errors_always_give_failed((p, r, policy, now, j) in terminal_case()) {
        let d = run(&p, &r, &policy, now, j);
        prop_assert_eq!(d.status.phase, Phase::Failed);
        prop_assert_eq!(d.status.observed_generation, p.generation);
        prop_assert_eq!(d.action, Action::requeue(policy.failed_interval));
    }

    #[test]
    fn only_a_ready_verdict_sets_the_new_url_and_resyncs((p, r, policy, now, j) in case()) {
        let d = run(&p, &r, &policy, now, j);
        let ready = matches!(r, Recipe::Planned(Verdict::Ready)) && p.desired == Desired::Present;
        prop_assert_eq!(d.status.phase == Phase::Ready && d.status.url.as_deref() == Some("https://new"), ready);
        // A preview found asleep is as settled as a Ready one.
        let settled = matches!(r, Recipe::Planned(Verdict::Ready | Verdict::Sleeping))
            && p.desired == Desired::Present;
        prop_assert_eq!(matches!(d.action, Action::Resync(_)), settled);
    }

    #[test]
    fn a_pass_the_pacer_turned_back_is_retried_when_its_tokens_are_free(
        (p, _r, policy, now, j) in case(),
        free_ms in 0..1_200_000u64,
    ) {
        let free_in = Duration::from_millis(free_ms);
        let r = Recipe::Cloud(CloudError::Paced { message: "wait".into(), free_in });
        let d = run(&p, &r, &policy, now, j);
        let Action::Requeue(wait) = d.action else {
            return Err(TestCaseError::fail(format!("{:?} is no requeue", d.action)));
        };
        // The pacer's turn, however short the configured backoff.
        let cap = crate::limits::MAX_PACED_TURN;
        if free_in <= cap && !free_in.is_zero() {
            prop_assert_eq!(wait, free_in);
        } else {
            prop_assert!(wait <= cap.max(Duration::from_millis(1)) && !wait.is_zero(), "{wait:?}");
        }
        // Whatever the jitter and however often it was turned back before.
        let mut again = p.clone();
        again.attempts = p.attempts.saturating_add(7);
        prop_assert_eq!(d.action, run(&again, &r, &policy, now, Jitter::NONE).action);
        // It is a throttled pass like any other in everything else.
        let throttled = run(&p, &Recipe::Cloud(CloudError::Throttled("wait".into())), &policy, now, j);
        prop_assert_eq!((d.status.phase, d.attempts), (throttled.status.phase, throttled.attempts));
    }

    #[test]
    fn only_a_generation_not_yet_acted_on_is_observed_fresh_first_and_never_under_pressure(
        p in row(),
    ) {
        prop_assert!(!fresh_first(&p, true));
        let unobserved = p.status.observed_generation != p.generation;
        prop_assert_eq!(fresh_first(&p, false), unobserved);
        // A steady resync always starts from the cached listings.
        if p.is_ready_at_generation() {
            prop_assert!(!fresh_first(&p, false));
        }
    }

    #[test]
    fn a_preview_is_sleeping_only_when_asleep_or_waking_at_its_generation(
        (p, r, policy, now, j) in case()
    ) {
        let d = run(&p, &r, &policy, now, j);
        if d.status.phase == Phase::Sleeping && p.status.phase != Phase::Sleeping {
            // Entered only by a plan that found it asleep, or on the way
            // there from Ready at this generation.
            let falling = p.asleep
                && p.status.phase == Phase::Ready
                && p.status.observed_generation == p.generation
                && matches!(r, Recipe::Planned(Verdict::Working | Verdict::Progressing(_)));
            prop_assert!(matches!(r, Recipe::Planned(Verdict::Sleeping)) || falling, "{r:?}");
            prop_assert!(p.desired == Desired::Present);
        }
        if d.status.phase == Phase::Sleeping {
            prop_assert!(p.desired == Desired::Present);
            // Whatever it says, a sleeping preview keeps its URL.
            prop_assert_eq!(&d.status.url, &p.status.url);
        }
    }

    #[test]
    fn a_waking_preview_stays_sleeping_until_it_serves(
        (mut p, r, policy, now, j) in case()
    ) {
        p.desired = Desired::Present;
        p.asleep = false;
        p.status.phase = Phase::Sleeping;
        p.status.observed_generation = p.generation;
        let d = run(&p, &r, &policy, now, j);
        match &r {
            Recipe::Planned(Verdict::Working | Verdict::Progressing(_)) => {
                prop_assert_eq!(d.status.phase, Phase::Sleeping);
                prop_assert_eq!(d.status.conditions.ready.as_ref().map(|c| c.reason.as_str()), Some("Waking"));
                prop_assert!(d.reports.is_empty());
            }
            Recipe::Planned(Verdict::Ready) => {
                prop_assert_eq!(d.status.phase, Phase::Ready);
                prop_assert!(d.reports.is_empty());
            }
            _ => {}
        }
    }

    /// A cached look is never fresher than `cache_max_age` demands, never
    /// older than that plus one resync interval, and grows with lateness:
    /// a pass on time (or early) gets exactly `cache_max_age`.
    #[test]
    fn a_cached_look_is_bounded_by_the_age_at_the_due_time(
        p in row(),
        now in timestamp(),
        late_ms in -100_000i64..10_000_000,
        more_ms in 0i64..1_000_000,
        cache_ms in 0u64..600_000,
        resync_ms in 1u64..3_600_000,
    ) {
        let (cache, resync) = (Duration::from_millis(cache_ms), Duration::from_millis(resync_ms));
        let at = |late: i64| {
            let mut p = p.clone();
            p.next_reconcile_at = now - chrono::Duration::milliseconds(late);
            cached_look_age(&p, now, cache, resync)
        };
        let age = at(late_ms);
        prop_assert!(age >= cache);
        prop_assert!(age <= cache + resync);
        if late_ms <= 0 {
            prop_assert_eq!(age, cache);
        } else {
            prop_assert_eq!(age, cache + Duration::from_millis(late_ms as u64).min(resync));
        }
        prop_assert!(at(late_ms + more_ms) >= age);
    }
}
