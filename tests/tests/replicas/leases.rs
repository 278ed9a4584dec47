//! Leases across replicas: renewed while a long pass runs, respected when
//! lost, and handed over at once when a replica shuts down.

use crate::pg::{
    all_ready, created_exactly, deploy, drop_database, fresh_database, issue, rows, stores,
    wait_rows,
};
use previewd_controller::ControllerConfig;
use previewd_core::model::Phase;
use previewd_core::render::Template;
use previewd_sim::{Sim, SimConfig};
use previewd_tests::{RunningController, fast_controller};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

/// A replica whose passes may run long: only the lease bounds them.
fn patient(replica: &str, lease: Duration) -> ControllerConfig {
    ControllerConfig {
        lease,
        reconcile_timeout: Duration::from_secs(60),
        ..fast_controller(replica)
    }
}

/// One patient replica per id, each on its own store.
fn start_patient(
    ids: &[&str],
    stores: &[Arc<dyn previewd_core::ports::Store>],
    sim: &Sim,
    template: &Arc<Template>,
    lease: Duration,
) -> Vec<RunningController> {
    ids.iter()
        .zip(stores)
        .map(|(id, store)| {
            RunningController::start(store.clone(), sim, template.clone(), patient(id, lease))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_longer_than_its_lease_keeps_its_row_from_other_replicas() {
    let (url, name) = fresh_database().await;
    let s = stores(&url, 2).await;
    // A first pass makes a dozen calls of 150 ms each: several leases long.
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(150),
        ..SimConfig::default()
    });
    let template = Arc::new(Template::default());
    let lease = Duration::from_millis(400);
    let replicas = start_patient(&["replica-a", "replica-b"], &s, &sim, &template, lease);
    deploy(&*s[0], 0..2).await;
    wait_rows(&*s[0], Duration::from_secs(60), "all Ready", all_ready).await;
    // Had a lease run out mid-pass, the other replica would have claimed
    // the row and repeated the creates the first had not yet observed.
    created_exactly(&sim, 2);
    for r in replicas {
        r.stop().await;
    }
    drop(s);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_loses_its_lease_stops_before_its_next_aws_call() {
    let (url, name) = fresh_database().await;
    let s = stores(&url, 1).await;
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(200),
        ..SimConfig::default()
    });
    let a = RunningController::start(
        s[0].clone(),
        &sim,
        Arc::new(Template::default()),
        patient("replica-a", Duration::from_millis(400)),
    );
    deploy(&*s[0], 0..1).await;
    wait_rows(
        &*s[0],
        Duration::from_secs(10),
        "A claims the row",
        |rows| rows[0].lease_owner.as_deref() == Some("replica-a"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another replica takes the row, as if A's lease had run out.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let far = chrono::Utc::now().timestamp_millis() + 600_000;
    let stolen = sqlx::query(
        "UPDATE previews SET lease_owner = 'thief', lease_until = $1 WHERE lease_owner = 'replica-a'",
    )
    .bind(far)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(stolen.rows_affected(), 1, "A was mid-pass");
    // Writes only: a shared listing another pass started may still be
    // read to its end (it serves every preview, not this pass).
    let writes = || -> u64 {
        sim.calls()
            .iter()
            .filter(|(op, _)| {
                let name = op.split(':').nth(1).unwrap_or(op);
                !["Describe", "List", "Get"]
                    .iter()
                    .any(|r| name.starts_with(r))
            })
            .map(|(_, n)| n)
            .sum()
    };
    let calls_at_theft = writes();
    // A renews every 100 ms; its call in flight (200 ms) may still land.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls_after = writes();
    assert!(
        calls_after <= calls_at_theft + 1,
        "A kept changing AWS without its lease: {calls_at_theft} writes at the theft, {calls_after} after"
    );
    let row = s[0].get(&issue(0)).await.unwrap().unwrap();
    assert_eq!(row.lease_owner.as_deref(), Some("thief"));
    assert_eq!(row.status.phase, Phase::Pending, "A wrote no status");
    a.stop().await;
    drop(s);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_mid_reconcile_hands_its_rows_to_another_at_once() {
    let (url, name) = fresh_database().await;
    let s = stores(&url, 2).await;
    // Passes take seconds; the leases would hold the rows for two minutes.
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    });
    let template = Arc::new(Template::default());
    let lease = Duration::from_secs(120);
    let a = RunningController::start(
        s[0].clone(),
        &sim,
        template.clone(),
        ControllerConfig {
            shutdown_grace: Duration::from_millis(200),
            ..patient("replica-a", lease)
        },
    );
    deploy(&*s[0], 0..6).await;
    wait_rows(
        &*s[0],
        Duration::from_secs(10),
        "A claims every row",
        |rows| {
            rows.len() == 6
                && rows
                    .iter()
                    .all(|p| p.lease_owner.as_deref() == Some("replica-a"))
        },
    )
    .await;
    let b = RunningController::start(s[1].clone(), &sim, template, patient("replica-b", lease));
    // The path SIGTERM takes in `previewd serve`: the controller's token.
    a.stop().await;
    let held_by_a: Vec<_> = rows(&*s[0])
        .await
        .into_iter()
        .filter(|p| p.lease_owner.as_deref() == Some("replica-a"))
        .map(|p| p.key)
        .collect();
    assert!(
        held_by_a.is_empty(),
        "A stopped still holding {held_by_a:?}"
    );
    // Well inside the two-minute leases: B never waited for one to expire.
    wait_rows(
        &*s[1],
        Duration::from_secs(60),
        "B finishes everything",
        all_ready,
    )
    .await;
    created_exactly(&sim, 6);
    b.stop().await;
    drop(s);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_whose_lease_cannot_be_renewed_stops_before_the_lease_runs_out() {
    let (url, name) = fresh_database().await;
    let s = stores(&url, 1).await;
    // A fault in the database: every renewal fails (claims and status
    // writes still work), as when the database is briefly unreachable.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for statement in [
        "CREATE FUNCTION refuse_renewal() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'renewals are refused in this test'; END $$",
        "CREATE TRIGGER refuse_renewal BEFORE UPDATE OF lease_until ON previews FOR EACH ROW \
         WHEN (OLD.lease_owner IS NOT DISTINCT FROM NEW.lease_owner \
               AND NEW.lease_owner IS NOT NULL) \
         EXECUTE FUNCTION refuse_renewal()",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    // The first pass needs a dozen calls of 100 ms: far longer than the
    // 300 ms the lease can be trusted without a renewal.
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    });
    let a = RunningController::start(
        s[0].clone(),
        &sim,
        Arc::new(Template::default()),
        patient("replica-a", Duration::from_millis(400)),
    );
    deploy(&*s[0], 0..1).await;
    let rows = wait_rows(
        &*s[0],
        Duration::from_secs(20),
        "the pass stops for want of a renewal",
        |rows| {
            rows[0]
                .status
                .last_error
                .as_ref()
                .is_some_and(|e| e.code == "LeaseNotRenewed")
        },
    )
    .await;
    assert_ne!(rows[0].status.phase, Phase::Ready);
    a.stop().await;
    drop(s);
    drop_database(&name).await;
}

/// Issue 15: with the production lease (15 s, renewed every quarter), a
/// replica killed mid-reconcile hands its rows to another within that
/// lease, not after the two minutes it used to be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_rows_are_taken_over_within_the_default_lease() {
    let (url, name) = fresh_database().await;
    let s = stores(&url, 2).await;
    // Passes that take a while, so the kill finds some under way.
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(40),
        service_stable_after: Duration::from_millis(300),
        ..SimConfig::default()
    });
    let template = Arc::new(Template::default());
    let lease = ControllerConfig::default().lease;
    assert_eq!(lease, Duration::from_secs(15));
    let mut replicas = start_patient(&["doomed", "survivor"], &s, &sim, &template, lease);
    deploy(s[0].as_ref(), 0..6).await;
    wait_rows(
        s[1].as_ref(),
        Duration::from_secs(10),
        "doomed holds a row",
        |rows| {
            rows.iter()
                .any(|p| p.lease_owner.as_deref() == Some("doomed"))
        },
    )
    .await;
    replicas.remove(0).kill().await;
    let killed_at = tokio::time::Instant::now();
    wait_rows(
        s[1].as_ref(),
        lease + Duration::from_secs(10),
        "all Ready after the kill",
        all_ready,
    )
    .await;
    let took = killed_at.elapsed();
    eprintln!("taken over and Ready {took:?} after the kill (lease {lease:?})");
    assert!(took < lease + Duration::from_secs(10), "{took:?}");
    replicas.remove(0).stop().await;
    drop_database(&name).await;
}
