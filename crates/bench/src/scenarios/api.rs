//! dispatch: requests per second and latency of `POST /v1/dispatch` on
//! SQLite and PostgreSQL, from a load generator on loopback. The
//! controller is not running, so the figure is the API and the store alone.

use super::burst::Outcome;
use super::{percentile, round3};
use crate::harness::{self, Backend, Daemon, SimParams, StoreHandle};
use previewd_sim::Sim;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub async fn dispatch(
    backend: Backend,
    pg_url: &str,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    let store = StoreHandle::open(backend, pg_url).await?;
    let params = SimParams::aws_like(0);
    let d = Daemon::start(
        Sim::new(params.sim_config()),
        store.store.clone(),
        params.template(),
        None,
    )
    .await?;
    // Warm-up: connections and the first statements.
    for i in 0..concurrency {
        d.dispatch(&harness::branch(9000 + i), "c0ffee1").await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (client, addr, next) = (d.client.clone(), d.addr, next.clone());
        workers.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return anyhow::Ok(lat);
                }
                let t = Instant::now();
                // Every request is a new preview: an insert, not a no-op.
                harness::dispatch(&client, addr, &harness::branch(i), "c0ffee1").await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        });
    }
    let mut lat = Vec::with_capacity(requests);
    while let Some(r) = workers.join_next().await {
        lat.extend(r??);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    d.stop().await;
    store.remove().await;
    let rps = round3(requests as f64 / elapsed);
    let (p50, p99) = (percentile(&lat, 50.0), percentile(&lat, 99.0));
    let summary = format!(
        "dispatch {backend:?}: {rps:.0} requests/s, p50 {p50:.2} ms, p99 {p99:.2} ms \
         ({requests} new previews, {concurrency} connections)"
    );
    let json = json!({
        "scenario": "dispatch",
        "system": "previewd",
        "backend": backend,
        "requests": requests,
        "concurrency": concurrency,
        "secs": round3(elapsed),
        "requests_per_sec": rps,
        "p50_ms": round3(p50),
        "p99_ms": round3(p99),
    });
    Ok(Outcome { json, summary })
}
