//! Replicas on one database split `cloud.api_share_percent` by themselves:
//! each paces to its part, so the sum holds whatever their number.

use crate::pg::{drop_database, fresh_database};
use previewd_controller::share_rate_limits;
use previewd_core::limits::{Limits, Pacer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How many RegisterTaskDefinition requests `pacer` lets go at once: the
/// burst it holds now (20 at the full limit).
fn burst_now(pacer: &Pacer) -> usize {
    let now = Instant::now();
    (0..100)
        .take_while(|_| {
            pacer
                .try_reserve("ecs:RegisterTaskDefinition", now, Some(Duration::ZERO))
                .is_ok()
        })
        .count()
}

fn full_pacer() -> Arc<Pacer> {
    Arc::new(Pacer::new(Limits::default(), Instant::now()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_each_pace_to_half_and_one_alone_to_all() {
    let (url, name) = fresh_database().await;
    let every = Duration::from_millis(100);
    let cancel = CancellationToken::new();
    let (a, b) = (full_pacer(), full_pacer());
    // Both stores are open (the schema migrated) before the beats start:
    // the waits below count beats, not migrations.
    let (store_a, store_b) = (
        previewd_store::open(&url).await.unwrap(),
        previewd_store::open(&url).await.unwrap(),
    );
    let run = |store, pacer: &Arc<Pacer>, id: &str, cancel: CancellationToken| {
        let (pacer, id) = (pacer.clone(), id.to_owned());
        tokio::spawn(async move { share_rate_limits(store, pacer, id, 100, every, cancel).await })
    };
    let first = run(store_a, &a, "a", cancel.child_token());
    let stop_b = cancel.child_token();
    let second = run(store_b, &b, "b", stop_b.clone());
    // Three beats: each has seen the other.
    tokio::time::sleep(every * 4).await;
    assert_eq!(burst_now(&a), 10, "a paces to half of the burst of 20");
    assert_eq!(burst_now(&b), 10, "b paces to half of the burst of 20");

    // b stops beating: after three beats a has the whole share again
    // (its level refills at the full rate from then on).
    stop_b.cancel();
    second.await.unwrap();
    tokio::time::sleep(every * 5).await;
    let refilled = Instant::now() + Duration::from_secs(60);
    let go = a
        .try_reserve("ecs:RegisterTaskDefinition", refilled, Some(Duration::ZERO))
        .is_ok();
    assert!(go);
    let whole = (0..100)
        .take_while(|_| {
            a.try_reserve("ecs:RegisterTaskDefinition", refilled, Some(Duration::ZERO))
                .is_ok()
        })
        .count();
    assert_eq!(whole + 1, 20, "alone again, a holds the full burst of 20");
    cancel.cancel();
    first.await.unwrap();
    drop_database(&name).await;
}

/// Each bucket's rate summed over `pacers`, against `percent` of AWS's.
fn rates_sum_to(pacers: &[&Arc<Pacer>], percent: f64) -> bool {
    let aws = Limits::default();
    previewd_core::limits::ALL.iter().all(|b| {
        let sum: f64 = pacers.iter().map(|p| p.limits().spec(*b).per_sec).sum();
        (sum - aws.spec(*b).per_sec * percent / 100.0).abs() < 1e-9
    })
}

/// Waits (polling, up to a minute) until `done` holds; false if it never did.
async fn eventually(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// RegisterTaskDefinition requests `pacer` schedules within `window` from
/// `at`: its burst plus what its rate refills (a measured rate, not a read
/// of its configuration).
fn paced_within(pacer: &Pacer, at: Instant, window: Duration) -> usize {
    (0..1000)
        .take_while(|_| {
            pacer
                .try_reserve("ecs:RegisterTaskDefinition", at, Some(window))
                .is_ok()
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_pace_to_the_total_and_a_dead_ones_share_goes_to_the_rest() {
    let (url, name) = fresh_database().await;
    // Slow beats leave a loaded machine room: a replica counts while it
    // beat within the last three (900 ms).
    let every = Duration::from_millis(300);
    let total = 60;
    let cancel = CancellationToken::new();
    let pacers = [full_pacer(), full_pacer(), full_pacer()];
    let mut stores = Vec::new();
    for _ in &pacers {
        stores.push(previewd_store::open(&url).await.unwrap());
    }
    let mut stops = Vec::new();
    let mut loops = Vec::new();
    for (i, (store, pacer)) in stores.into_iter().zip(&pacers).enumerate() {
        let stop = cancel.child_token();
        let (pacer, id) = (pacer.clone(), format!("replica-{i}"));
        let run = stop.clone();
        loops.push(tokio::spawn(async move {
            share_rate_limits(store, pacer, id, total, every, run).await
        }));
        stops.push(stop);
    }
    let [a, b, c] = &pacers;
    assert!(
        eventually(|| rates_sum_to(&[a], 20.0)
            && rates_sum_to(&[b], 20.0)
            && rates_sum_to(&[c], 20.0))
        .await,
        "each of three paces to a third of {total} %"
    );
    assert!(rates_sum_to(&[a, b, c], f64::from(total)));
    // Measured: drained, each schedules 4 (its burst) + 60 s × 0.2/s in a
    // minute; together 48, 60 % of one replica alone at AWS's limits (80).
    let now = Instant::now();
    let counts: Vec<usize> = pacers
        .iter()
        .map(|p| paced_within(p, now, Duration::from_secs(60)))
        .collect();
    for n in &counts {
        assert!((16..=17).contains(n), "one replica's minute: {counts:?}");
    }

    // c dies (stops beating): a and b take its share between them.
    stops[2].cancel();
    loops.pop().unwrap().await.unwrap();
    assert!(
        eventually(|| rates_sum_to(&[a], 30.0) && rates_sum_to(&[b], 30.0)).await,
        "the two left pace to half of {total} % each"
    );
    assert!(rates_sum_to(&[a, b], f64::from(total)));
    cancel.cancel();
    for l in loops {
        l.await.unwrap();
    }
    drop_database(&name).await;
}
