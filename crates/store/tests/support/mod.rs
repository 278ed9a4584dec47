//! Fixtures for the conformance suite: a fresh database per test on each
//! backend, and small builders that keep the cases readable.

use previewd_core::ports::{Delivery, Store};
use previewd_core::{
    ApplyOutcome, DeployRequest, NamingConfig, OutboxMessage, Phase, PreviewKey, PreviewSpec,
    PreviewStatus, StatusUpdate, Timestamp,
};
use previewd_store::SqlStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Executor};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Where the PostgreSQL cases create their throw-away databases.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// An arbitrary instant (2023-11-14) the cases count from, in milliseconds.
pub const T0: i64 = 1_700_000_000_000;

pub const LEASE: Duration = Duration::from_secs(30);

/// The database behind a case's store, for the few cases that must put a
/// row into a state the `Store` API never writes.
#[derive(Clone)]
pub struct Sql(SqlStore);

impl Sql {
    /// Runs one statement the case wrote (text shared by both backends).
    pub async fn execute(&self, statement: &'static str) {
        let done = self.0.pool().execute(statement).await;
        let rows = done
            .map(|d| d.rows_affected())
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        assert!(rows > 0, "{statement} changed nothing");
    }
}

/// Runs `case` against a fresh SQLite file that is deleted afterwards.
pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_sqlite_with(|store, _| case(store)).await;
}

/// [`run_sqlite`] for a case that also needs the database itself.
pub async fn run_sqlite_with<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>, Sql) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("previewd.db").display());
    let store = SqlStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    let outcome = tokio::spawn(case(Arc::new(store.clone()), Sql(store.clone()))).await;
    store.close().await;
    drop(dir);
    finish(outcome);
}

/// Runs `case` against a database created for it alone, dropped afterwards
/// (best effort: a failed drop leaves a `previewd_test_*` database behind).
/// Fails, never skips, when PostgreSQL is not there.
pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_postgres_with(|store, _| case(store)).await;
}

/// [`run_postgres`] for a case that also needs the database itself.
pub async fn run_postgres_with<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>, Sql) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url =
        std::env::var("PREVIEWD_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let admin_options = PgConnectOptions::from_str(&admin_url)
        .unwrap_or_else(|e| panic!("PREVIEWD_TEST_PG_URL is not a PostgreSQL URL: {e}"));
    let where_ = format!("{}:{}", admin_options.get_host(), admin_options.get_port());
    let mut admin = admin_options.connect().await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL for the conformance tests is not reachable at {where_} ({e}); \
             start it, or point PREVIEWD_TEST_PG_URL at a server where the user may \
             CREATE DATABASE"
        )
    });
    let name = format!("previewd_test_{:016x}", rand::random::<u64>());
    // The name is ours (hex digits only), so splicing it into SQL is safe.
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("creating database {name} at {where_}: {e}"));
    let url = admin_options.clone().database(&name).to_url_lossy();
    let store = SqlStore::connect(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("opening database {name} at {where_}: {e}"));
    let outcome = tokio::spawn(case(Arc::new(store.clone()), Sql(store.clone()))).await;
    store.close().await;
    // FORCE ends any connection a panicking case left behind.
    let _ = admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
    finish(outcome);
}

/// Re-raises a case's panic after the fixture has cleaned up.
fn finish(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the case did not finish: {e}"),
        }
    }
}

/// `T0 + offset` milliseconds.
pub fn t(offset_ms: i64) -> Timestamp {
    Timestamp::from_timestamp_millis(T0 + offset_ms).expect("a representable instant")
}

pub fn key(branch: &str) -> PreviewKey {
    key_in("acme/shop", branch)
}

pub fn key_in(project: &str, branch: &str) -> PreviewKey {
    PreviewKey::new(project, branch).expect("a valid key")
}

pub fn naming() -> NamingConfig {
    NamingConfig::default()
}

pub fn spec(commit: &str) -> PreviewSpec {
    PreviewSpec {
        commit_sha: Some(commit.to_owned()),
        ..PreviewSpec::default()
    }
}

pub fn deploy_request(key: &PreviewKey, commit: &str) -> DeployRequest {
    DeployRequest {
        key: key.clone(),
        spec: spec(commit),
        expiry: previewd_core::Expiry::Never,
    }
}

/// Deploys `commit` to `key` at `T0 + at`.
pub async fn deploy(store: &dyn Store, key: &PreviewKey, commit: &str, at: i64) -> ApplyOutcome {
    store
        .apply_deploy(&deploy_request(key, commit), &naming(), t(at))
        .await
        .unwrap_or_else(|e| panic!("deploying {key}: {e}"))
}

pub fn status(phase: Phase, observed_generation: i64) -> PreviewStatus {
    PreviewStatus {
        phase,
        conditions: Default::default(),
        observed_generation,
        url: None,
        message: None,
        last_error: None,
    }
}

/// A status write that asks to look again at `T0 + next`.
pub fn update(
    phase: Phase,
    generation: i64,
    next: i64,
    outbox: Vec<OutboxMessage>,
) -> StatusUpdate {
    StatusUpdate {
        status: status(phase, generation),
        next_reconcile_at: t(next),
        attempts: 0,
        outbox,
    }
}

/// A report whose payload carries `n`, so delivery order can be checked.
pub fn report(n: i64) -> OutboxMessage {
    OutboxMessage {
        kind: "report".into(),
        payload: serde_json::json!({ "n": n }),
    }
}

/// Claims everything due at `T0 + at` for `owner`.
pub async fn claim_all(store: &dyn Store, owner: &str, at: i64) -> Vec<PreviewKey> {
    store
        .claim_due(owner, t(at), LEASE, 1_000)
        .await
        .expect("claim_due")
        .into_iter()
        .map(|p| p.key)
        .collect()
}

/// A `pull_request` delivery `id` of `body`.
pub fn delivery(id: &str, body: &str) -> Delivery {
    Delivery::of_body(id, "pull_request", body.as_bytes())
}
