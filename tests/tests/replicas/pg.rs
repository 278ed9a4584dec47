//! Fresh PostgreSQL databases and the few steps every replica test repeats.

use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, ListFilter, Phase, Preview, PreviewSpec};
use previewd_core::naming::NamingConfig;
use previewd_core::ports::Store;
use previewd_sim::Sim;
use previewd_tests::PROJECT;
use sqlx::Executor;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

fn admin_url() -> String {
    std::env::var("PREVIEWD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own on the server at PREVIEWD_TEST_PG_URL (default
/// the local one); fails, never skips, when PostgreSQL is not there.
/// Returns its URL and its name.
pub async fn fresh_database() -> (String, String) {
    let admin_url = admin_url();
    let opts =
        PgConnectOptions::from_str(&admin_url).expect("PREVIEWD_TEST_PG_URL is a PostgreSQL URL");
    let mut admin = sqlx::ConnectOptions::connect(&opts)
        .await
        .expect("PostgreSQL is reachable (start it or set PREVIEWD_TEST_PG_URL)");
    let name = format!("previewd_replicas_{:016x}", rand::random::<u64>());
    // The name is ours (hex digits only), so splicing it into SQL is safe.
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database part");
    (format!("{base}/{name}"), name)
}

pub async fn drop_database(name: &str) {
    let opts = PgConnectOptions::from_str(&admin_url()).unwrap();
    if let Ok(mut admin) = sqlx::ConnectOptions::connect(&opts).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}

/// `n` stores on one database, each with its own pool, as separate
/// processes would have.
pub async fn stores(url: &str, n: usize) -> Vec<Arc<dyn Store>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(previewd_store::open(url).await.unwrap());
    }
    out
}

pub fn issue(i: usize) -> PreviewKey {
    PreviewKey::new(PROJECT, &format!("qanote/issue-{i}")).unwrap()
}

/// A dispatch of `qanote/issue-<i>` for each `i` in `range`.
pub async fn deploy(writer: &dyn Store, range: std::ops::Range<usize>) {
    for i in range {
        let spec = PreviewSpec {
            commit_sha: Some("abc1234".into()),
            ..Default::default()
        };
        let req = DeployRequest {
            key: issue(i),
            spec,
            expiry: previewd_core::Expiry::Never,
        };
        writer
            .apply_deploy(&req, &NamingConfig::default(), chrono::Utc::now())
            .await
            .unwrap();
    }
}

pub async fn rows(store: &dyn Store) -> Vec<Preview> {
    store.list(&ListFilter::default()).await.unwrap()
}

/// Polls until `done` holds for the rows, failing after `within` with the
/// rows in the message.
pub async fn wait_rows(
    store: &dyn Store,
    within: Duration,
    what: &str,
    done: impl Fn(&[Preview]) -> bool,
) -> Vec<Preview> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let rows = rows(store).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}: {:?}",
            rows.iter()
                .map(|p| (
                    &p.key.branch,
                    p.status.phase,
                    &p.lease_owner,
                    &p.status.message
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn all_ready(rows: &[Preview]) -> bool {
    !rows.is_empty()
        && rows
            .iter()
            .all(|p| p.status.phase == Phase::Ready && p.status.observed_generation == p.generation)
}

/// Each create call happened exactly `n` times: nothing was made twice.
pub fn created_exactly(sim: &Sim, n: u64) {
    let calls = sim.calls();
    for op in [
        "ecs:CreateService",
        "elbv2:CreateRule",
        "elbv2:CreateTargetGroup",
        "logs:CreateLogGroup",
        "ecs:RegisterTaskDefinition",
    ] {
        assert_eq!(calls.get(op), Some(&n), "{op} once per preview: {calls:?}");
    }
}
