//! Cases for the work schedule: claims, leases, status writes, priorities.

use crate::support::*;
use previewd_core::Phase;
use previewd_core::pool::Reservation;
use previewd_core::ports::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

pub async fn claim_takes_only_due_rows_most_overdue_first(store: Arc<dyn Store>) {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    // Inserted out of due order; each row is due when it was deployed.
    deploy(&*store, &b, "x", 2_000).await;
    deploy(&*store, &c, "x", 3_000).await;
    deploy(&*store, &a, "x", 1_000).await;
    let claimed = store.claim_due("w1", t(2_500), LEASE, 10).await.unwrap();
    let keys: Vec<_> = claimed.iter().map(|p| p.key.clone()).collect();
    assert_eq!(keys, [a, b]);
    for p in &claimed {
        assert_eq!(p.lease_owner.as_deref(), Some("w1"));
        assert_eq!(p.lease_until, Some(t(32_500)));
    }
    assert_eq!(claim_all(&*store, "w1", 3_000).await, [c]);
}

pub async fn claim_respects_its_limit(store: Arc<dyn Store>) {
    for b in ["a", "b", "c"] {
        deploy(&*store, &key(b), "x", 0).await;
    }
    assert!(
        store
            .claim_due("w1", t(0), LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_due("w1", t(0), LEASE, 2).await.unwrap().len(),
        2
    );
    assert_eq!(claim_all(&*store, "w2", 0).await, [key("c")]);
}

pub async fn a_leased_row_is_never_claimed_again_before_its_lease_ends(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "x", 0).await;
    assert_eq!(claim_all(&*store, "w1", 0).await, std::slice::from_ref(&k));
    assert!(claim_all(&*store, "w2", 1_000).await.is_empty());
    // Not even by its holder: a key is never reconciled twice at once.
    assert!(claim_all(&*store, "w1", 1_000).await.is_empty());
    // The lease covers its last millisecond too.
    assert!(claim_all(&*store, "w2", 30_000).await.is_empty());
    let row = store.get(&k).await.unwrap().unwrap();
    assert_eq!(row.lease_owner.as_deref(), Some("w1"));
}

pub async fn an_expired_lease_can_be_reclaimed_and_the_old_holder_loses(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "x", 0).await;
    assert_eq!(claim_all(&*store, "w1", 0).await, std::slice::from_ref(&k));
    assert_eq!(
        claim_all(&*store, "w2", 30_001).await,
        std::slice::from_ref(&k)
    );
    let late = update(Phase::Ready, 1, 90_000, vec![report(1)]);
    let err = store
        .record_status(&k, "w1", &late, t(30_002))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseLost(ref lost) if *lost == k),
        "{err:?}"
    );
    let err = store.renew_lease(&k, "w1", t(90_000)).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().lease_owner.as_deref(),
        Some("w2")
    );
}

pub async fn renew_lease_extends_only_a_lease_we_hold(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "x", 0).await;
    claim_all(&*store, "w1", 0).await;
    store.renew_lease(&k, "w1", t(60_000)).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().lease_until,
        Some(t(60_000))
    );
    // Past the first lease, inside the renewed one.
    assert!(claim_all(&*store, "w2", 45_000).await.is_empty());
    for (k, owner) in [(&k, "w2"), (&key("missing"), "w1")] {
        let err = store.renew_lease(k, owner, t(90_000)).await.unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
    }
}

pub async fn record_status_with_a_lost_lease_writes_nothing(store: Arc<dyn Store>) {
    let k = key("main");
    let before = deploy(&*store, &k, "x", 0).await.preview;
    // Never claimed at all.
    let write = update(Phase::Ready, 1, 90_000, vec![report(1), report(2)]);
    let err = store
        .record_status(&k, "w1", &write, t(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
    // Claimed by someone else.
    claim_all(&*store, "w2", 2).await;
    let err = store
        .record_status(&k, "w1", &write, t(3))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");

    let after = store.get(&k).await.unwrap().unwrap();
    assert_eq!(after.status, before.status);
    assert_eq!((after.next_reconcile_at, after.updated_at), (t(0), t(0)));
    assert_eq!(store.outbox_backlog().await.unwrap(), (0, None));
    assert!(
        store
            .claim_outbox("d", t(10), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn record_status_schedules_the_next_look_and_releases_the_lease(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "x", 0).await;
    claim_all(&*store, "w1", 0).await;
    let mut write = update(Phase::Ready, 1, 300_000, vec![]);
    write.attempts = 2;
    store
        .record_status(&k, "w1", &write, t(1_000))
        .await
        .unwrap();
    let row = store.get(&k).await.unwrap().unwrap();
    assert_eq!((row.lease_owner, row.lease_until), (None, None));
    assert_eq!(
        (row.next_reconcile_at, row.attempts, row.updated_at),
        (t(300_000), 2, t(1_000))
    );
    assert_eq!(row.status, write.status);
    assert!(claim_all(&*store, "w1", 299_999).await.is_empty());
    assert_eq!(claim_all(&*store, "w2", 300_000).await, [k]);
}

/// A dispatch that lands while the old generation is being reconciled must
/// not have its wake-up pushed out by that reconcile's status write.
pub async fn a_dispatch_during_a_reconcile_keeps_the_earlier_wake_up(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "old", 0).await;
    claim_all(&*store, "w1", 0).await;
    let redeploy = deploy(&*store, &k, "new", 1_000).await.preview;
    assert_eq!(
        (redeploy.generation, redeploy.next_reconcile_at),
        (2, t(1_000))
    );

    let mut stale = update(Phase::Failed, 1, 3_600_000, vec![report(1)]);
    stale.attempts = 4;
    store
        .record_status(&k, "w1", &stale, t(2_000))
        .await
        .unwrap();
    let row = store.get(&k).await.unwrap().unwrap();
    assert_eq!(
        row.next_reconcile_at,
        t(1_000),
        "the dispatch's wake-up is kept"
    );
    assert_eq!(row.attempts, 0, "the new generation starts without backoff");
    assert_eq!(
        (row.status.phase, row.status.observed_generation),
        (Phase::Failed, 1)
    );
    assert_eq!(row.lease_owner, None);
    assert_eq!(
        store.outbox_backlog().await.unwrap().0,
        1,
        "the report still goes out"
    );
    let again = store.claim_due("w1", t(2_001), LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].generation, 2);

    // Once that generation is the one being reconciled, its write wins.
    let done = update(Phase::Ready, 2, 3_600_000, vec![]);
    store
        .record_status(&k, "w1", &done, t(3_000))
        .await
        .unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().next_reconcile_at,
        t(3_600_000)
    );
}

pub async fn next_due_is_when_a_row_can_next_be_claimed(store: Arc<dyn Store>) {
    assert_eq!(store.next_due().await.unwrap(), None);
    deploy(&*store, &key("a"), "x", 1_000).await;
    deploy(&*store, &key("b"), "x", 5_000).await;
    assert_eq!(store.next_due().await.unwrap(), Some(t(1_000)));
    // `a` is leased until 31s: the loop has nothing to do before `b` is due.
    claim_all(&*store, "w1", 1_000).await;
    assert_eq!(store.next_due().await.unwrap(), Some(t(5_000)));
    claim_all(&*store, "w1", 5_000).await;
    assert_eq!(store.next_due().await.unwrap(), Some(t(31_000)));
}

pub async fn rule_priorities_are_unique_per_listener(store: Arc<dyn Store>) {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let (l1, l2) = (Some("arn:listener/one"), Some("arn:listener/two"));
    deploy(&*store, &a, "x", 0).await;
    deploy(&*store, &b, "x", 0).await;
    deploy(&*store, &c, "x", 0).await;
    store.set_rule_priority(&a, l1, Some(10)).await.unwrap();
    store.set_rule_priority(&a, l1, Some(10)).await.unwrap();
    let err = store.set_rule_priority(&b, l1, Some(10)).await.unwrap_err();
    assert!(matches!(err, StoreError::PriorityTaken(10)), "{err:?}");
    // The same priority on another listener is another reservation.
    store.set_rule_priority(&b, l2, Some(10)).await.unwrap();
    store.set_rule_priority(&c, l1, Some(11)).await.unwrap();
    let held = |l: &str, p| Reservation {
        listener_arn: l.into(),
        priority: p,
    };
    assert_eq!(
        store.reservations(&a).await.unwrap(),
        [held("arn:listener/one", 11), held("arn:listener/two", 10)]
    );
    assert_eq!(
        store.reservations(&key("d")).await.unwrap(),
        [
            held("arn:listener/one", 10),
            held("arn:listener/one", 11),
            held("arn:listener/two", 10)
        ]
    );
    let row = store.get(&b).await.unwrap().unwrap();
    assert_eq!(
        (row.listener_arn.as_deref(), row.rule_priority),
        (l2, Some(10))
    );

    store.set_rule_priority(&a, None, None).await.unwrap();
    store.set_rule_priority(&b, l1, Some(10)).await.unwrap();
    let row = store.get(&a).await.unwrap().unwrap();
    assert_eq!((row.listener_arn, row.rule_priority), (None, None));

    let err = store
        .set_rule_priority(&key("nope"), l1, Some(12))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // A priority is held on a listener: never one without the other.
    for (l, p) in [(None, Some(12)), (l1, None), (Some(""), Some(12))] {
        let err = store.set_rule_priority(&a, l, p).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "listener_arn",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

/// A row placed before the pool (a priority, no listener) is recorded on
/// the first listener; unplaced rows and placed ones are left alone.
pub async fn pre_pool_rows_are_adopted_by_the_first_listener(store: Arc<dyn Store>, db: Sql) {
    let (old, new, none) = (key("old"), key("new"), key("none"));
    for k in [&old, &new, &none] {
        deploy(&*store, k, "x", 0).await;
    }
    store
        .set_rule_priority(&new, Some("arn:listener/two"), Some(7))
        .await
        .unwrap();
    // What a row written before migration 0009 looks like.
    db.execute("UPDATE previews SET rule_priority = 7 WHERE branch = 'old'")
        .await;
    assert_eq!(store.adopt_unplaced("arn:listener/one").await.unwrap(), 1);
    let row = |k| {
        let store = store.clone();
        async move { store.get(&k).await.unwrap().unwrap() }
    };
    let o = row(old.clone()).await;
    assert_eq!(
        (o.listener_arn.as_deref(), o.rule_priority),
        (Some("arn:listener/one"), Some(7))
    );
    let n = row(new.clone()).await;
    assert_eq!(n.listener_arn.as_deref(), Some("arn:listener/two"));
    assert_eq!(row(none.clone()).await.listener_arn, None);
    assert_eq!(store.adopt_unplaced("arn:listener/one").await.unwrap(), 0);
    let err = store.adopt_unplaced("").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "listener_arn",
                ..
            }
        ),
        "{err:?}"
    );
}

pub async fn bad_input_is_refused_with_the_field_named(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "x", 0).await;
    for p in [0, 50_001, -3] {
        let err = store
            .set_rule_priority(&k, Some("arn:listener/one"), Some(p))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "rule_priority",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let err = store.claim_due("", t(0), LEASE, 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "owner", .. }),
        "{err:?}"
    );
    let err = store
        .claim_outbox("", t(0), Duration::from_secs(1), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "owner", .. }),
        "{err:?}"
    );
}

pub async fn gc_sightings_keep_the_first_and_forget_the_unseen(store: Arc<dyn Store>) {
    let a = "service:pv-a".to_string();
    let b = "service:pv-b".to_string();
    let seen = store
        .gc_sightings(&[a.clone(), b.clone()], t(1_000), true)
        .await
        .unwrap();
    assert_eq!(seen, [t(1_000), t(1_000)]);
    let seen = store
        .gc_sightings(std::slice::from_ref(&a), t(5_000), true)
        .await
        .unwrap();
    assert_eq!(seen, [t(1_000)], "the first sighting is kept");
    // b was not seen at 5_000: it is forgotten and starts over.
    let seen = store
        .gc_sightings(&[a.clone(), b.clone()], t(9_000), false)
        .await
        .unwrap();
    assert_eq!(seen, [t(1_000), t(9_000)]);
    // A dry run records nothing.
    let seen = store
        .gc_sightings(std::slice::from_ref(&b), t(12_000), true)
        .await
        .unwrap();
    assert_eq!(seen, [t(12_000)]);
}

pub async fn only_a_finished_teardown_can_be_leased_for_gc(store: Arc<dyn Store>) {
    let k = key("gone");
    let naming = previewd_core::NamingConfig::default();
    let minute = std::time::Duration::from_secs(60);
    store
        .apply_deploy(&deploy_request(&k, "abc1234"), &naming, t(0))
        .await
        .unwrap();
    assert!(
        !store.lease_deleted(&k, "gc", t(1), minute).await.unwrap(),
        "a present row is not"
    );
    store.apply_destroy(&k, t(1)).await.unwrap();
    claim_all(&*store, "w1", 10).await;
    store
        .record_status(&k, "w1", &update(Phase::Deleted, 2, 9_000, vec![]), t(11))
        .await
        .unwrap();
    assert!(store.lease_deleted(&k, "gc", t(12), minute).await.unwrap());
    assert!(
        !store.lease_deleted(&k, "gc2", t(13), minute).await.unwrap(),
        "a held row is not"
    );
    // A redeploy lands meanwhile: the row waits for the lease.
    store
        .apply_deploy(&deploy_request(&k, "def5678"), &naming, t(14))
        .await
        .unwrap();
    assert!(claim_all(&*store, "w2", 15).await.is_empty());
    store.release_lease(&k, "gc").await.unwrap();
    assert_eq!(
        claim_all(&*store, "w2", 16).await.as_slice(),
        std::slice::from_ref(&k)
    );
    assert!(
        !store.lease_deleted(&k, "gc", t(17), minute).await.unwrap(),
        "present again"
    );
}

pub async fn a_free_sweep_lock_is_granted_and_given_back_on_drop(store: Arc<dyn Store>) {
    let lock = store.try_sweep_lock().await.unwrap();
    assert!(lock.is_some(), "nobody else sweeps, so the lock is ours");
    drop(lock);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.try_sweep_lock().await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped sweep lock was never given back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn replicas_are_counted_by_heartbeat_and_dead_ones_forgotten(store: Arc<dyn Store>) {
    // Alone: one replica, itself.
    assert_eq!(store.heartbeat("a", t(10_000), t(0)).await.unwrap(), 1);
    assert_eq!(store.heartbeat("b", t(11_000), t(1_000)).await.unwrap(), 2);
    // A beat again is the same replica, not a third.
    assert_eq!(store.heartbeat("a", t(12_000), t(2_000)).await.unwrap(), 2);
    // b has not beaten since 11 s: past the window, it no longer counts,
    // and it is forgotten, so a window moved back does not revive it.
    assert_eq!(store.heartbeat("a", t(30_000), t(20_000)).await.unwrap(), 1);
    assert_eq!(store.heartbeat("a", t(31_000), t(0)).await.unwrap(), 1);
}
