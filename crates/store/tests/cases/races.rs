//! Cases where replicas race; they need a backend with real concurrent
//! writers (PostgreSQL), where the claim statements use SKIP LOCKED.

use crate::support::*;
use previewd_core::ports::Store;
use previewd_core::{Phase, PreviewKey};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

const CLAIMERS: usize = 4;

/// Waits for every racer; the first panic or a stall past the deadline
/// fails the case, and dropping the set aborts the racers still running
/// (a failed racer can leave rows leased that the others would wait on).
async fn join_all<T: Send + 'static>(
    racers: Vec<impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let mut set: JoinSet<T> = racers.into_iter().collect();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(60), set.join_next()).await {
            Ok(Some(Ok(value))) => out.push(value),
            Ok(Some(Err(e))) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("a racer did not finish: {e}"),
            },
            Ok(None) => return out,
            Err(_) => panic!("the racers made no progress for 60 s"),
        }
    }
}

pub async fn concurrent_claimers_never_share_a_row(store: Arc<dyn Store>) {
    let keys: Vec<_> = (0..200).map(|i| key(&format!("race/{i}"))).collect();
    for k in &keys {
        deploy(&*store, k, "x", 0).await;
    }
    let racers: Vec<_> = (0..CLAIMERS)
        .map(|n| {
            let store = store.clone();
            async move {
                let owner = format!("w{n}");
                let mut mine = Vec::new();
                loop {
                    let got = store.claim_due(&owner, t(1), LEASE, 7).await.unwrap();
                    if got.is_empty() {
                        return (owner, mine);
                    }
                    mine.extend(got.into_iter().map(|p| p.key));
                }
            }
        })
        .collect();
    let mut seen: HashMap<PreviewKey, String> = HashMap::new();
    for (owner, mine) in join_all(racers).await {
        for k in mine {
            if let Some(other) = seen.insert(k.clone(), owner.clone()) {
                panic!("{k} was claimed by both {other} and {owner}");
            }
        }
    }
    assert_eq!(
        seen.len(),
        keys.len(),
        "together the claimers took every row"
    );
    assert!(claim_all(&*store, "late", 2).await.is_empty());
    for (k, owner) in &seen {
        let row = store.get(k).await.unwrap().unwrap();
        assert_eq!(row.lease_owner.as_ref(), Some(owner), "{k}");
    }
}

/// Delivery workers racing over many previews' queues: never two messages
/// of one preview in flight, and each preview's messages in order.
pub async fn concurrent_outbox_workers_keep_per_preview_order(store: Arc<dyn Store>) {
    const PREVIEWS: usize = 20;
    const PER_PREVIEW: i64 = 5;
    let keys: Vec<_> = (0..PREVIEWS).map(|i| key(&format!("q/{i}"))).collect();
    for k in &keys {
        deploy(&*store, k, "x", 0).await;
    }
    claim_all(&*store, "setup", 0).await;
    for k in &keys {
        let reports = (0..PER_PREVIEW).map(report).collect();
        let write = update(Phase::Provisioning, 1, 3_600_000, reports);
        store.record_status(k, "setup", &write, t(0)).await.unwrap();
    }

    let in_flight: Arc<Mutex<HashSet<PreviewKey>>> = Arc::default();
    let delivered: Arc<Mutex<HashMap<PreviewKey, Vec<i64>>>> = Arc::default();
    let racers: Vec<_> = (0..CLAIMERS)
        .map(|n| {
            let (store, in_flight, delivered) =
                (store.clone(), in_flight.clone(), delivered.clone());
            async move {
                let owner = format!("d{n}");
                while store.outbox_backlog().await.unwrap().0 > 0 {
                    let items = store.claim_outbox(&owner, t(1), LEASE, 3).await.unwrap();
                    for item in &items {
                        assert!(
                            in_flight.lock().unwrap().insert(item.key.clone()),
                            "two messages of {} in flight at once",
                            item.key
                        );
                        let n = item.payload["n"].as_i64().unwrap();
                        delivered
                            .lock()
                            .unwrap()
                            .entry(item.key.clone())
                            .or_default()
                            .push(n);
                    }
                    tokio::task::yield_now().await;
                    for item in &items {
                        // Released before the ack: once acked, the next
                        // message may be claimed by anyone at once.
                        in_flight.lock().unwrap().remove(&item.key);
                        store.ack_outbox(item.id, t(2)).await.unwrap();
                    }
                }
            }
        })
        .collect();
    join_all(racers).await;
    let delivered = delivered.lock().unwrap();
    assert_eq!(delivered.len(), PREVIEWS);
    for (k, ns) in delivered.iter() {
        assert_eq!(*ns, (0..PER_PREVIEW).collect::<Vec<_>>(), "{k}");
    }
}

pub async fn only_one_replica_at_a_time_holds_the_sweep_lock(store: Arc<dyn Store>) {
    let first = store.try_sweep_lock().await.unwrap();
    assert!(first.is_some(), "a free sweep lock is granted");
    // Another pooled connection stands in for another replica.
    assert!(
        store.try_sweep_lock().await.unwrap().is_none(),
        "a second sweeper is refused while the first holds the lock"
    );
    drop(first);
    // Dropping the guard rolls its transaction back when the connection
    // goes back to the pool, which sqlx does in a task of its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if store.try_sweep_lock().await.unwrap().is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep lock was never released after its guard was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn concurrent_sweepers_get_the_lock_exactly_once(store: Arc<dyn Store>) {
    let tried = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let racers: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let (store, tried) = (store.clone(), tried.clone());
            async move {
                let lock = store.try_sweep_lock().await.unwrap();
                let got = lock.is_some();
                // The winner holds it until every racer has tried.
                tried.wait().await;
                drop(lock);
                got
            }
        })
        .collect();
    let winners = join_all(racers)
        .await
        .into_iter()
        .filter(|got| *got)
        .count();
    assert_eq!(winners, 1, "exactly one of {CLAIMERS} sweepers may run");
}

/// The same signed body arriving at several replicas at once under fresh
/// delivery ids: the digest's unique index lets exactly one act on it.
pub async fn concurrent_replays_of_one_body_destroy_once(store: Arc<dyn Store>) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 0).await;
    let racers: Vec<_> = (0..CLAIMERS)
        .map(|n| {
            let (store, k) = (store.clone(), k.clone());
            async move {
                let d = delivery(&format!("d{n}"), "one signed body");
                store
                    .apply_webhook_destroy(&d, &k, Some(t(500)), t(1_000))
                    .await
                    .unwrap()
            }
        })
        .collect();
    let outcomes = join_all(racers).await;
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == previewd_core::ports::WebhookDestroy::Duplicate)
        .count();
    assert_eq!(duplicates, CLAIMERS - 1, "{outcomes:?}");
    assert_eq!(store.get(&k).await.unwrap().unwrap().generation, 2);
}
