//! Issue 15: a daemon on SQLite killed with SIGKILL in the middle of a pass
//! and started again does not wait for its own dead lease: the file lock
//! proves no other process is using the database, so it takes every lease
//! back at once and its previews converge within seconds.

mod daemon;

use daemon::{Daemon, http, wait_for};
use sqlx::Connection;
use std::time::{Duration, Instant};

/// Whether any preview row is leased right now, read beside the daemon
/// (WAL lets a reader in while it writes).
async fn leased(db: &str) -> bool {
    let mut c = sqlx::SqliteConnection::connect(&format!("{db}?mode=ro"))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM previews WHERE lease_owner IS NOT NULL")
        .fetch_one(&mut c)
        .await
        .unwrap_or(0);
    n > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_reconcile_converges_at_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/previewd.db", dir.path().display());
    // A lease far longer than the test may wait: only taking it back can
    // make the restarted daemon act in time. Slow AWS calls keep a pass
    // under way long enough to be killed in the middle of it.
    let env = [
        ("PREVIEWD_STORE_URL", db.as_str()),
        ("PREVIEWD_CONTROLLER_LEASE_SECS", "300"),
        ("PREVIEWD_SIM_LATENCY_MS", "150"),
        ("PREVIEWD_SIM_SERVICE_STABLE_AFTER_MS", "1500"),
    ];
    let first = Daemon::start(&env);
    let body = r#"{"action":"deploy","branch":"qanote/issue-15","commit_sha":"abc1234"}"#;
    let json = ("Content-Type", "application/json");
    let (status, reply) = http(&first.addr, "POST", "/v1/dispatch", &[json], body);
    assert_eq!(status, 202, "{reply}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !leased(&db).await {
        assert!(Instant::now() < deadline, "no pass ever held the row");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(first); // SIGKILL: the pass dies holding its 300 s lease.
    assert!(
        leased(&db).await,
        "the dead daemon's lease is still on the row"
    );

    let restarted_at = Instant::now();
    let second = Daemon::start(&env);
    let server = second.url();
    let ready = tokio::task::spawn_blocking(move || {
        wait_for(&server, &[], "qanote/issue-15", |p| {
            p["phase"] == "Ready" && p["observed_generation"] == p["generation"]
        })
    })
    .await
    .unwrap();
    let took = restarted_at.elapsed();
    eprintln!("Ready {took:?} after the restart");
    assert_eq!(ready["phase"], "Ready");
    let lines = second.stop();
    assert!(
        lines.iter().any(|l| l.contains("took back the leases")),
        "the restart did not say it took the leases back: {lines:#?}"
    );
}
