//! reaction: from `POST /v1/dispatch` returning to the first mutating AWS
//! call for that preview (its CreateLogGroup), with the daemon idle and
//! with it busy converging a burst of other previews.

use super::burst::Outcome;
use super::{GIVE_UP, percentile, round3};
use crate::harness::{self, Daemon, SimParams, StoreHandle, controller_config};
use anyhow::Context;
use previewd_core::render::render;
use previewd_sim::Sim;
use serde_json::json;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Probe previews use branch indices from here, clear of the busy load.
const PROBE_BASE: usize = 5000;

/// Milliseconds from dispatch returning to the first CreateLogGroup call
/// (negative if the controller called before the HTTP answer arrived).
async fn probe(daemon: &Daemon, i: usize) -> anyhow::Result<f64> {
    let branch = harness::branch(i);
    daemon.dispatch(&branch, "c0ffee1").await?;
    let returned = Instant::now();
    let row = daemon
        .store
        .get(&harness::key(i))
        .await?
        .context("the dispatched row")?;
    let log_group = render(&previewd_core::render::Template::default(), &row)
        .names
        .log_group;
    loop {
        if let Some(at) = daemon.tap.first_create(&log_group) {
            let ms = match at.checked_duration_since(returned) {
                Some(d) => d.as_secs_f64() * 1000.0,
                None => -(returned - at).as_secs_f64() * 1000.0,
            };
            return Ok(ms);
        }
        anyhow::ensure!(returned.elapsed() < GIVE_UP, "{branch}: no CreateLogGroup");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn daemon(params: &SimParams) -> anyhow::Result<(Daemon, StoreHandle)> {
    let store = StoreHandle::open(harness::Backend::Sqlite, "").await?;
    let d = Daemon::start(
        Sim::new(params.sim_config()),
        store.store.clone(),
        params.template(),
        Some(controller_config(params)),
    )
    .await?;
    Ok((d, store))
}

fn stats(xs: &[f64]) -> serde_json::Value {
    json!({
        "samples": xs.len(),
        "p50_ms": round3(percentile(xs, 50.0)),
        "p99_ms": round3(percentile(xs, 99.0)),
        "max_ms": round3(percentile(xs, 100.0)),
    })
}

pub async fn reaction(probes: usize, busy_n: usize, params: &SimParams) -> anyhow::Result<Outcome> {
    // Idle: each probe waits for the last one to be Ready first.
    let (d, store) = daemon(params).await?;
    let mut idle = Vec::new();
    for i in 0..probes {
        idle.push(probe(&d, PROBE_BASE + i).await?);
        let keys = [harness::key(PROBE_BASE + i)];
        d.wait_ready(&keys, 1, Instant::now(), GIVE_UP).await?;
    }
    d.stop().await;
    store.remove().await;

    // Busy: a burst of `busy_n` is converging (throttled) meanwhile.
    let (d, store) = daemon(params).await?;
    let mut load = JoinSet::new();
    for i in 0..busy_n {
        let (client, addr) = (d.client.clone(), d.addr);
        load.spawn(async move {
            harness::dispatch(&client, addr, &harness::branch(i), "c0ffee1").await
        });
    }
    while let Some(r) = load.join_next().await {
        r??;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut busy = Vec::new();
    for i in 0..probes {
        busy.push(probe(&d, PROBE_BASE + i).await?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    d.stop().await;
    store.remove().await;

    let (i50, b50) = (percentile(&idle, 50.0), percentile(&busy, 50.0));
    let summary = format!(
        "reaction: dispatch → first mutating call p50 {i50:.1} ms / p99 {:.1} ms idle; \
         p50 {b50:.1} ms / p99 {:.1} ms busy ({busy_n} previews converging); {probes} probes each",
        percentile(&idle, 99.0),
        percentile(&busy, 99.0),
    );
    let json = json!({
        "scenario": "reaction",
        "system": "previewd",
        "sim": params,
        "busy_previews": busy_n,
        "idle": stats(&idle),
        "busy": stats(&busy),
    });
    Ok(Outcome { json, summary })
}
