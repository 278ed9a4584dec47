//! Lease takeovers are counted in `previewd_lease_takeovers_total`, on both
//! backends. A test binary of its own with one test: the metrics recorder
//! is global to the process, and no other test may add to the count.

// Shared with the conformance suite, of which this test uses a part.
#[allow(dead_code)]
mod support;

use previewd_core::Phase;
use previewd_core::ports::Store;
use std::sync::Arc;
use support::*;

fn takeovers(handle: &metrics_exporter_prometheus::PrometheusHandle) -> u64 {
    let text = handle.render();
    text.lines()
        .find_map(|l| l.strip_prefix("previewd_lease_takeovers_total "))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

/// Claims of a row whose lease ran out while another replica held it are
/// takeovers; claiming a free row, or one's own expired lease, is not.
async fn count_takeovers(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "x", 0).await;
    assert_eq!(claim_all(&*store, "r1", 0).await.len(), 1);
    // r1 stalls; its lease runs out and r2 takes the row over.
    assert_eq!(claim_all(&*store, "r2", 30_001).await.len(), 1);
    // r2 stalls too and takes its own expired lease back: no takeover.
    assert_eq!(claim_all(&*store, "r2", 60_002).await.len(), 1);
    // r2 finishes and releases; r1 claims a free row: no takeover.
    let done = update(Phase::Ready, 1, 70_000, vec![]);
    store
        .record_status(&k, "r2", &done, t(60_003))
        .await
        .unwrap();
    assert_eq!(claim_all(&*store, "r1", 70_000).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_count_takeovers_of_expired_leases_on_both_backends() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder in this process");
    let before = takeovers(&handle);
    run_sqlite(count_takeovers).await;
    assert_eq!(takeovers(&handle) - before, 1, "sqlite");
    run_postgres(count_takeovers).await;
    assert_eq!(takeovers(&handle) - before, 2, "postgres");
}
