//! The buckets, the pacer and its turns.

use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn replicas_together_never_pace_past_the_total(total in 1u32..=100, n in 1u32..=64) {
        let share = replica_share(total, n);
        prop_assert!(share > 0.0);
        let limits = Limits::default();
        let each = limits.scaled(share);
        for b in ALL {
            let sum = each.spec(b).per_sec * f64::from(n);
            let allowed = limits.spec(b).per_sec * f64::from(total) / 100.0;
            prop_assert!(sum <= allowed + 1e-9, "{b:?}: {sum} > {allowed}");
        }
    }
}

#[test]
fn a_smaller_share_caps_the_tokens_at_once_and_refills_slower() {
    let t0 = Instant::now();
    let pacer = Pacer::new(Limits::default(), t0);
    let key = "ecs:RegisterTaskDefinition";
    pacer.set_limits(Limits::default().scaled(replica_share(100, 2)), t0);
    // Half of the burst of 20 is left, then one every two seconds.
    for _ in 0..10 {
        assert_eq!(pacer.try_reserve(key, t0, None).unwrap(), t0);
    }
    let next = pacer.try_reserve(key, t0, None).unwrap();
    assert!(next.duration_since(t0).abs_diff(Duration::from_secs(2)) < Duration::from_millis(1));
}

#[test]
fn a_bucket_refuses_past_its_burst_and_refills_at_its_rate() {
    let t0 = Instant::now();
    let mut b = Buckets::full(Limits::default(), t0);
    let td = [(Bucket::EcsTaskDefModify, 1.0)];
    for _ in 0..20 {
        assert!(b.take(&td, t0));
    }
    assert!(!b.take(&td, t0));
    assert!(!b.take(&td, t0 + Duration::from_millis(999)));
    assert!(b.take(&td, t0 + Duration::from_secs(1)));
}

#[test]
fn a_short_bucket_takes_nothing_from_the_others() {
    let t0 = Instant::now();
    let mut b = Buckets::full(Limits::default(), t0);
    let write = [(Bucket::ElbMutating, 1.0), (Bucket::ElbAccount, 1.0)];
    for _ in 0..20 {
        assert!(b.take(&write, t0));
    }
    assert!(!b.take(&write, t0));
    // The account bucket kept its other 20 tokens for reads.
    let read = [(Bucket::ElbNonMutating, 1.0), (Bucket::ElbAccount, 1.0)];
    for _ in 0..20 {
        assert!(b.take(&read, t0));
    }
    assert!(!b.take(&read, t0));
}

#[test]
fn reservations_queue_in_order_at_the_refill_rate() {
    let t0 = Instant::now();
    let pacer = Pacer::new(Limits::default(), t0);
    let go: Vec<Instant> = (0..23)
        .map(|_| {
            pacer
                .try_reserve("ecs:RegisterTaskDefinition", t0, None)
                .unwrap()
        })
        .collect();
    // The burst of 20 goes at once, then one per second.
    assert!(go[..20].iter().all(|g| *g == t0));
    for (i, g) in go[20..].iter().enumerate() {
        let want = Duration::from_secs(i as u64 + 1);
        let got = g.duration_since(t0);
        assert!(
            got.abs_diff(want) < Duration::from_millis(1),
            "{i}: {got:?}"
        );
    }
}

#[test]
fn a_wait_past_the_limit_reserves_nothing() {
    let t0 = Instant::now();
    let pacer = Pacer::new(Limits::default(), t0);
    let key = "ecs:RegisterTaskDefinition";
    let max = Some(Duration::from_secs(2));
    for _ in 0..22 {
        pacer.try_reserve(key, t0, max).unwrap();
    }
    let wait = pacer.try_reserve(key, t0, max).unwrap_err();
    assert!(wait > Duration::from_secs(2), "{wait:?}");
    // The refusal spent nothing: the 23rd still goes at 3 s.
    let go = pacer.try_reserve(key, t0, None).unwrap();
    assert!(go.duration_since(t0).abs_diff(Duration::from_secs(3)) < Duration::from_millis(1));
}

#[test]
fn requests_turned_back_get_turns_one_refill_apart() {
    let t0 = Instant::now();
    let pacer = Pacer::new(Limits::default(), t0);
    let key = "ecs:RegisterTaskDefinition";
    let max = Some(Duration::from_secs(3));
    // The burst of 20 and three seconds of debt go.
    while pacer.try_reserve(key, t0, max).is_ok() {}
    let turns: Vec<Duration> = (0..5)
        .map(|_| pacer.try_reserve(key, t0, max).unwrap_err())
        .collect();
    assert!(turns[0] > Duration::from_secs(3), "{turns:?}");
    for w in turns.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap.abs_diff(Duration::from_secs(1)) < Duration::from_millis(1),
            "{turns:?}"
        );
    }
    // Each finds its token at its turn, without waiting.
    for t in &turns {
        assert_eq!(pacer.try_reserve(key, t0 + *t, max), Ok(t0 + *t));
    }
    // However long the queue, no turn is further than MAX_PACED_TURN.
    let now = t0 + turns[4];
    while pacer.try_reserve(key, now, max).is_ok() {}
    let far = (0..2_000)
        .map(|_| pacer.try_reserve(key, now, max).unwrap_err())
        .max()
        .unwrap();
    assert_eq!(far, MAX_PACED_TURN);
}

#[test]
fn paced_requests_never_find_aws_short() {
    // Whatever the pacer lets through, AWS's own buckets accept.
    let t0 = Instant::now();
    let pacer = Pacer::new(Limits::default(), t0);
    let mut aws = Buckets::full(Limits::default(), t0);
    let keys = [
        "elbv2:DescribeRules",
        "elbv2:CreateRule",
        "elbv2:DescribeTags",
    ];
    let mut sent: Vec<(Instant, &str)> = (0..300)
        .map(|i| {
            let key = keys[i % keys.len()];
            (
                pacer
                    .try_reserve(key, t0 + Duration::from_millis(i as u64), None)
                    .unwrap(),
                key,
            )
        })
        .collect();
    sent.sort();
    for (at, key) in sent {
        let cost: Vec<(Bucket, f64)> = buckets_of(key).iter().map(|b| (*b, 1.0)).collect();
        assert!(aws.take(&cost, at), "{key} at {:?}", at.duration_since(t0));
    }
}

#[test]
fn a_share_scales_burst_and_rate_but_keeps_one_token() {
    let half = Limits::default().scaled(0.5);
    assert_eq!(half.elb_account, BucketSpec::new(20.0, 5.0));
    let tiny = Limits::default().scaled(0.01);
    assert_eq!(tiny.logs_config.burst, 1.0);
}

#[test]
fn every_metered_api_has_its_buckets() {
    use Bucket::*;
    assert_eq!(
        buckets_of("elbv2:DescribeTags"),
        &[ElbNonMutating, ElbAccount]
    );
    assert_eq!(
        buckets_of("elbv2:SetRulePriorities"),
        &[ElbMutating, ElbAccount]
    );
    assert_eq!(buckets_of("ecs:DescribeTaskDefinition"), &[EcsTaskDefRead]);
    assert_eq!(
        buckets_of("ecs:ListTaskDefinitionFamilies"),
        &[EcsTaskDefRead]
    );
    assert_eq!(buckets_of("route53:GetChange"), &[Route53]);
    assert!(buckets_of("logs:ListTagsForResource").is_empty());
    assert!(buckets_of("sts:GetCallerIdentity").is_empty());
}
