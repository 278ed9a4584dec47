//! lease: the database writes the short lease adds. A burst of N previews
//! converges on PostgreSQL with the controller's lease (15 s by default,
//! renewed every quarter of it while a pass runs, so only passes longer
//! than that renew at all); every store call is counted by method, and the
//! renewals are set against all the writes.

use super::burst::Outcome;
use super::{GIVE_UP, round3, secs};
use crate::counted::{Counted, READS};
use crate::harness::{self, Backend, Daemon, SimParams, StoreHandle, controller_config};
use previewd_controller::ControllerConfig;
use previewd_sim::Sim;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub async fn lease(
    n: usize,
    lease: Duration,
    pg_url: &str,
    params: &SimParams,
) -> anyhow::Result<Outcome> {
    let store = StoreHandle::open(Backend::Postgres, pg_url).await?;
    let counted = Arc::new(Counted::new(store.store.clone()));
    let cfg = ControllerConfig {
        lease,
        ..controller_config(params)
    };
    let daemon = Daemon::start(
        Sim::new(params.sim_config()),
        counted.clone(),
        params.template(),
        Some(cfg),
    )
    .await?;
    let t0 = Instant::now();
    let mut sends = JoinSet::new();
    for i in 0..n {
        let (client, addr) = (daemon.client.clone(), daemon.addr);
        sends.spawn(async move {
            harness::dispatch(&client, addr, &harness::branch(i), "c0ffee1").await
        });
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    let keys: Vec<_> = (0..n).map(harness::key).collect();
    // Watched through the store itself, so the harness's polling is not
    // counted as the daemon's load.
    let times = harness::wait_ready(store.store.as_ref(), &keys, 1, t0, GIVE_UP).await?;
    let run = t0.elapsed();
    daemon.stop().await;
    store.remove().await;

    let calls = counted.calls();
    let count = |method: &str| calls.get(method).copied().unwrap_or(0);
    let renewals = count("renew_lease");
    let passes = count("record_status");
    let writes: u64 = calls
        .iter()
        .filter(|(method, _)| !READS.contains(method))
        .map(|(_, n)| n)
        .sum();
    let all = times.iter().max().copied().unwrap_or_default();
    let per_sec = |x: u64| round3(x as f64 / run.as_secs_f64());
    let share = round3(renewals as f64 / writes.max(1) as f64);
    let summary = format!(
        "lease {} s, n={n} on PostgreSQL: all Ready in {:.1} s; {renewals} lease renewals \
         ({:.2}/s) in {passes} passes, against {writes} writing store calls ({:.1}/s): \
         renewals are {:.1} % of the writes",
        lease.as_secs(),
        all.as_secs_f64(),
        per_sec(renewals),
        per_sec(writes),
        share * 100.0,
    );
    let json = json!({
        "scenario": "lease",
        "system": "previewd",
        "backend": Backend::Postgres,
        "n": n,
        "sim": params,
        "lease_secs": lease.as_secs_f64(),
        "all_ready_secs": secs(all),
        "run_secs": secs(run),
        "passes": passes,
        "lease_renewals": renewals,
        "lease_renewals_per_sec": per_sec(renewals),
        "lease_renewals_per_pass": round3(renewals as f64 / passes.max(1) as f64),
        "writing_calls": writes,
        "writing_calls_per_sec": per_sec(writes),
        "renewal_share_of_writes": share,
        "store_calls": calls,
    });
    Ok(Outcome { json, summary })
}
