//! Replicas wake each other through LISTEN/NOTIFY, and sweep one at a time.

use crate::pg::{
    all_ready, created_exactly, deploy, drop_database, fresh_database, stores, wait_rows,
};
use previewd_controller::{Cloud, SweepError, SweepOptions, Sweeper};
use previewd_core::pool::Pool;
use previewd_core::render::Template;
use previewd_sim::{Sim, SimConfig};
use previewd_tests::{RunningController, fast_controller, plant_orphans};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Connections of `url`'s database that have run LISTEN.
async fn listeners(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_on_one_replica_wakes_another_long_before_its_poll() {
    let (url, name) = fresh_database().await;
    let [writer, b_store]: [_; 2] = stores(&url, 2).await.try_into().ok().unwrap();
    let sim = Sim::new(SimConfig::default());
    // Replica B would look at the table again only after a minute: only a
    // wake-up from the database can make it act within the test. B's own
    // store is not written to: the listener feeds its wake-ups.
    let b_wake = b_store.wakeups();
    let cancel = CancellationToken::new();
    let listener = tokio::spawn(previewd_store::wake_on_writes(
        url.clone(),
        b_wake.clone(),
        cancel.clone(),
    ));
    let b = RunningController::start(
        b_store,
        &sim,
        Arc::new(Template::default()),
        previewd_controller::ControllerConfig {
            poll_interval: Duration::from_secs(60),
            ..fast_controller("replica-b")
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while listeners(&url).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica B never started listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // B has looked at the empty table and gone to sleep for its minute.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Replica A's API takes the dispatch; A runs no controller of its own.
    deploy(&*writer, 0..1).await;
    wait_rows(
        &*writer,
        Duration::from_secs(30),
        "B made the preview Ready",
        all_ready,
    )
    .await;
    created_exactly(&sim, 1);

    b.stop().await;
    cancel.cancel();
    listener.await.expect("the listener ends on cancellation");
    drop(writer);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sweeping_at_once_run_one_sweep() {
    let (url, name) = fresh_database().await;
    // Slow enough that one sweep is still listing when the other starts.
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    });
    plant_orphans(&sim, "previewd", "orphan-1").await;
    let sweepers: Vec<Sweeper> = stores(&url, 2)
        .await
        .into_iter()
        .map(|store| Sweeper {
            cloud: Cloud::from_one(sim.clone()),
            store,
            template: Arc::new(Template::default()),
            pool: Arc::new(Pool::single(&Template::default())),
            projects: None,
        })
        .collect();
    let opts = SweepOptions {
        dry_run: false,
        grace: Duration::ZERO,
        max_deletions: 20,
    };
    let now = chrono::Utc::now();
    let (a, b) = tokio::join!(sweepers[0].sweep(&opts, now), sweepers[1].sweep(&opts, now));
    let (ran, skipped) = match (a, b) {
        (Ok(r), Err(SweepError::Busy)) | (Err(SweepError::Busy), Ok(r)) => (r, true),
        (a, b) => panic!("expected one sweep and one skip, got {a:?} and {b:?}"),
    };
    assert!(skipped);
    assert!(ran.errors.is_empty(), "{:?}", ran.errors);
    assert!(ran.deleted > 0, "the sweep that ran collected the orphans");
    // The lock went with the sweep: the next one runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match sweepers[1].sweep(&opts, chrono::Utc::now()).await {
            Ok(r) => {
                assert_eq!(r.deleted, 0, "nothing is left to collect");
                break;
            }
            Err(SweepError::Busy) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("a later sweep did not run: {e}"),
        }
    }
    drop(sweepers);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_connection_is_killed_listens_again() {
    let (url, name) = fresh_database().await;
    let [writer]: [_; 1] = stores(&url, 1).await.try_into().ok().unwrap();
    let wake = Arc::new(Notify::new());
    let cancel = CancellationToken::new();
    let listener = tokio::spawn(previewd_store::wake_on_writes(
        url.clone(),
        wake.clone(),
        cancel.clone(),
    ));
    let wait_listening = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while listeners(&url).await == 0 {
            assert!(tokio::time::Instant::now() < deadline, "nobody listens");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    wait_listening().await;
    // What an operator's pg_terminate_backend or a failover does to it.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%') t",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_listening().await;
    // Forget the wake-ups of (re)connecting, then write.
    while tokio::time::timeout(Duration::from_millis(300), wake.notified())
        .await
        .is_ok()
    {}
    deploy(&*writer, 0..1).await;
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("the write woke the listener after it reconnected");
    cancel.cancel();
    listener.await.expect("the listener ends on cancellation");
    drop(writer);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_writes_that_make_work_due_wake_the_replicas() {
    use previewd_core::model::{Phase, PreviewStatus, StatusUpdate};
    let (url, name) = fresh_database().await;
    let [store]: [_; 1] = stores(&url, 1).await.try_into().ok().unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen(previewd_store::WAKE_CHANNEL).await.unwrap();
    let now = chrono::Utc::now;
    let lease = Duration::from_secs(60);

    deploy(&*store, 0..1).await; // wakes: a new row
    let claimed = store.claim_due("r", now(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1); // silent: a leased row is nobody else's
    store
        .renew_lease(&claimed[0].key, "r", now() + lease)
        .await
        .unwrap(); // silent
    let later = StatusUpdate {
        status: PreviewStatus {
            phase: Phase::Provisioning,
            conditions: Default::default(),
            observed_generation: 1,
            url: None,
            message: None,
            last_error: None,
        },
        next_reconcile_at: now() + chrono::Duration::hours(1),
        attempts: 0,
        outbox: Vec::new(),
    };
    store
        .record_status(&claimed[0].key, "r", &later, now())
        .await
        .unwrap(); // silent: due only in an hour
    deploy(&*store, 1..2).await; // wakes: a new row
    let other = store.claim_due("r", now(), lease, 10).await.unwrap();
    assert_eq!(other.len(), 1);
    store.release_lease(&other[0].key, "r").await.unwrap(); // wakes: due and free
    store.apply_destroy(&claimed[0].key, now()).await.unwrap(); // wakes: a new generation

    let mut heard = Vec::new();
    for _ in 0..4 {
        let n = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        heard.push(n.payload().to_owned());
    }
    assert_eq!(
        heard,
        [
            "acme/shop qanote/issue-0",
            "acme/shop qanote/issue-1",
            "acme/shop qanote/issue-1",
            "acme/shop qanote/issue-0",
        ]
    );
    drop(listener);
    drop(store);
    drop_database(&name).await;
}
