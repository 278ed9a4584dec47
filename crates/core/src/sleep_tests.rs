use super::*;
use crate::model::{Condition, PreviewSpec};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn t0() -> Timestamp {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

fn ready(branch: &str, since: Timestamp) -> Preview {
    let key = PreviewKey::new("acme/shop", branch).unwrap();
    let mut p = Preview::fresh(key, branch, branch, PreviewSpec::default(), since);
    p.status.phase = Phase::Ready;
    p.status.observed_generation = p.generation;
    p.status.conditions.ready = Some(Condition {
        status: true,
        reason: "Ready".into(),
        message: String::new(),
        since,
    });
    p
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn an_idle_preview_serving_for_an_hour_sleeps_and_a_visited_one_does_not() {
    let now = t0() + chrono::Duration::hours(2);
    let idle_one = candidate(&ready("idle", t0())).unwrap();
    let visited = candidate(&ready("visited", t0())).unwrap();
    let young = candidate(&ready("young", now - chrono::Duration::minutes(10))).unwrap();
    let counts = BTreeMap::from([(visited.key.clone(), 3.0)]);
    let asleep = idle(&[idle_one.clone(), visited, young], &counts, now, HOUR);
    assert_eq!(asleep, [idle_one.key]);
}

#[test]
fn only_an_awake_preview_ready_at_its_generation_is_a_candidate() {
    let p = ready("a", t0());
    assert!(candidate(&p).is_some());
    let mut asleep = p.clone();
    asleep.asleep = true;
    let mut redeployed = p.clone();
    redeployed.generation += 1;
    let mut gone = p.clone();
    gone.desired = Desired::Absent;
    let mut sleeping = p.clone();
    sleeping.status.phase = Phase::Sleeping;
    for q in [asleep, redeployed, gone, sleeping] {
        assert_eq!(candidate(&q), None, "{q:?}");
    }
}

#[test]
fn a_wake_restarts_the_idle_clock() {
    let mut p = ready("a", t0());
    let woken = t0() + chrono::Duration::hours(5);
    p.sleep_changed_at = Some(woken);
    assert_eq!(candidate(&p).unwrap().awake_since, woken);
}

#[test]
fn five_hundred_queries_go_in_one_call() {
    assert_eq!(metric_calls(0), 0);
    assert_eq!(metric_calls(1), 1);
    assert_eq!(metric_calls(500), 1);
    assert_eq!(metric_calls(501), 2);
}

#[test]
fn the_load_balancer_and_target_group_dimensions_come_from_the_arns() {
    let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2";
    assert_eq!(
        load_balancer_of(listener),
        Some("app/previews/50dc6c495c0c9188")
    );
    assert_eq!(
        load_balancer_of("arn:aws:elasticloadbalancing:x:listener/app/p"),
        None
    );
    assert_eq!(load_balancer_of("not an arn"), None);
    let tg =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pv-a/73e2d6bc24d8a067";
    assert_eq!(
        target_group_dimension(tg),
        Some("targetgroup/pv-a/73e2d6bc24d8a067")
    );
    assert_eq!(target_group_dimension("arn:x:targetgroup/only-name"), None);
}

#[test]
fn a_host_header_is_a_host_name_or_nothing() {
    assert_eq!(
        host_of("Issue-42-Preview.Example.com:443").as_deref(),
        Some("issue-42-preview.example.com")
    );
    assert_eq!(host_of("a.example.com.").as_deref(), Some("a.example.com"));
    for hostile in [
        "",
        "a b",
        "a/../b",
        "<script>",
        "a..b",
        "x'; DROP TABLE previews;--",
        "%41.example.com",
    ] {
        assert_eq!(host_of(hostile), None, "{hostile}");
    }
    assert_eq!(host_of(&"a".repeat(254)), None);
}

#[test]
fn the_waker_wakes_a_sleeping_preview_and_answers_browsers_with_the_page() {
    let mut p = ready("a", t0());
    p.asleep = true;
    assert_eq!(
        answer(Some(&p), Some("text/html,application/xhtml+xml")),
        (true, WakerAnswer::WaitingPage)
    );
    assert_eq!(
        answer(Some(&p), Some("application/json")),
        (true, WakerAnswer::RetryLater)
    );
    assert_eq!(answer(Some(&p), None), (true, WakerAnswer::RetryLater));
    // Waking: answered, not woken again.
    p.asleep = false;
    p.status.phase = Phase::Sleeping;
    assert_eq!(
        answer(Some(&p), Some("text/html")),
        (false, WakerAnswer::WaitingPage)
    );
    // Awake, or no such host: nothing.
    p.status.phase = Phase::Ready;
    assert_eq!(
        answer(Some(&p), Some("text/html")),
        (false, WakerAnswer::Nothing)
    );
    assert_eq!(
        answer(None, Some("text/html")),
        (false, WakerAnswer::Nothing)
    );
}

proptest! {
    #[test]
    fn only_idle_candidates_serving_long_enough_sleep(
        cases in proptest::collection::vec((0u32..300, proptest::option::of(0u32..5)), 0..40),
        idle_mins in 1u64..240,
    ) {
        let now = t0() + chrono::Duration::minutes(300);
        let idle_after = Duration::from_secs(idle_mins * 60);
        let mut candidates = Vec::new();
        let mut counts = BTreeMap::new();
        for (i, (age, count)) in cases.iter().enumerate() {
            let c = candidate(&ready(&format!("b{i}"), now - chrono::Duration::minutes(i64::from(*age)))).unwrap();
            if let Some(n) = count {
                counts.insert(c.key.clone(), f64::from(*n));
            }
            candidates.push(c);
        }
        let asleep = idle(&candidates, &counts, now, idle_after);
        for c in &candidates {
            let served_long = (now - c.awake_since).num_seconds() >= idle_after.as_secs() as i64;
            let quiet = counts.get(&c.key).is_none_or(|n| *n == 0.0);
            prop_assert_eq!(asleep.contains(&c.key), served_long && quiet, "{:?}", c);
        }
    }

    #[test]
    fn a_host_that_passes_is_plain_lower_case(header in ".{0,80}") {
        if let Some(h) = host_of(&header) {
            prop_assert!(h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            prop_assert!(!h.is_empty() && h.len() <= 253);
        }
    }
}
