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
