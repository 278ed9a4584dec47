//! Two `previewd serve` processes on one PostgreSQL database: SIGTERM to
//! the one mid-reconcile hands its work to the other at once.

use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, ListFilter, Phase, Preview, PreviewSpec};
use previewd_core::naming::NamingConfig;
use previewd_core::ports::Store;
use sqlx::Executor;
use sqlx::postgres::PgConnectOptions;
use std::process::{Child, Command};
use std::str::FromStr;
use std::time::Duration;

fn admin_url() -> String {
    std::env::var("PREVIEWD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own (URL, name); fails when PostgreSQL is not there.
async fn fresh_database() -> (String, String) {
    let admin_url = admin_url();
    let opts = PgConnectOptions::from_str(&admin_url).expect("a PostgreSQL URL");
    let mut admin = sqlx::ConnectOptions::connect(&opts)
        .await
        .expect("PostgreSQL is reachable (start it or set PREVIEWD_TEST_PG_URL)");
    let name = format!("previewd_serve_{:016x}", rand::random::<u64>());
    // The name is ours (hex digits only), so splicing it into SQL is safe.
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database part");
    (format!("{base}/{name}"), name)
}

/// `previewd serve` on `url` with a simulated AWS answering each call after
/// `latency_ms`, logging to `log`. Its poll interval is a minute: only a
/// wake-up from the database makes it look at the table sooner.
fn serve(url: &str, log: &std::path::Path, latency_ms: &str) -> Replica {
    let child = Command::new(env!("CARGO_BIN_EXE_previewd"))
        .arg("serve")
        .env_clear()
        .env("PREVIEWD_SERVER_LISTEN", "127.0.0.1:0")
        .env("PREVIEWD_STORE_URL", url)
        .env("PREVIEWD_SIM_LATENCY_MS", latency_ms)
        .env("PREVIEWD_SIM_SERVICE_STABLE_AFTER_MS", "200")
        .env("PREVIEWD_SIM_TARGET_HEALTHY_AFTER_MS", "100")
        .env("PREVIEWD_CONTROLLER_POLL_INTERVAL_MS", "60000")
        .env("PREVIEWD_CONTROLLER_PROGRESS_INTERVAL_MS", "50")
        .env("PREVIEWD_CONTROLLER_SHUTDOWN_GRACE_SECS", "0")
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("previewd starts");
    Replica(child)
}

/// A running `previewd serve`, killed if the test fails before stopping it.
struct Replica(Child);

impl Replica {
    fn id(&self) -> u32 {
        self.0.id()
    }

    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

async fn wait_for<T>(what: &str, within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn row(store: &dyn Store) -> Option<Preview> {
    store.list(&ListFilter::default()).await.unwrap().pop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_reconcile_hands_the_work_to_another_replica_at_once() {
    let (url, name) = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let started = |log: &std::path::Path| {
        std::fs::read_to_string(log).is_ok_and(|t| t.contains("previewd listening"))
    };
    let mut a = serve(&url, &log_a, "500");
    wait_for("A starts", Duration::from_secs(30), async || {
        started(&log_a).then_some(())
    })
    .await;
    let store = previewd_store::open(&url).await.unwrap();
    let key = PreviewKey::new("example/app", "qanote/issue-7").unwrap();
    let req = DeployRequest {
        key,
        spec: PreviewSpec {
            commit_sha: Some("abc1234".into()),
            ..Default::default()
        },
        expiry: previewd_core::Expiry::Never,
    };
    store
        .apply_deploy(&req, &NamingConfig::default(), chrono::Utc::now())
        .await
        .unwrap();
    // A is woken by the write (NOTIFY); its first pass makes a dozen AWS
    // calls of 500 ms each.
    let a_id = format!("-{}-", a.id());
    wait_for(
        "A claims the preview",
        Duration::from_secs(30),
        async || {
            row(&*store)
                .await
                .filter(|p| p.lease_owner.as_deref().is_some_and(|o| o.contains(&a_id)))
        },
    )
    .await;
    let mut b = serve(&url, &log_b, "20");
    wait_for("B starts", Duration::from_secs(30), async || {
        started(&log_b).then_some(())
    })
    .await;
    let before = row(&*store).await.unwrap();
    assert!(
        before
            .lease_owner
            .as_deref()
            .is_some_and(|o| o.contains(&a_id)),
        "A is still mid-pass when the signal comes: {before:?}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &a.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = a.wait().unwrap();
    let a_said = std::fs::read_to_string(&log_a).unwrap();
    assert!(status.success(), "A exited {status:?}:\n{a_said}");
    assert!(a_said.contains("lease released"), "{a_said}");
    let after = row(&*store).await.unwrap();
    assert!(
        !after
            .lease_owner
            .as_deref()
            .is_some_and(|o| o.contains(&a_id)),
        "A exited still holding the row: {after:?}"
    );
    // B's poll is a minute and A's lease two: only the release and its
    // NOTIFY let B finish within the wait.
    let done = wait_for("B makes it Ready", Duration::from_secs(40), async || {
        row(&*store).await.filter(|p| {
            p.status.phase == Phase::Ready && p.status.observed_generation == p.generation
        })
    })
    .await;
    assert_eq!(done.generation, 1);
    let _ = Command::new("kill")
        .args(["-TERM", &b.id().to_string()])
        .status();
    let b_status = b.wait().unwrap();
    assert!(b_status.success(), "B exited {b_status:?}");
    drop(store);
    let opts = PgConnectOptions::from_str(&admin_url()).unwrap();
    if let Ok(mut admin) = sqlx::ConnectOptions::connect(&opts).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}
