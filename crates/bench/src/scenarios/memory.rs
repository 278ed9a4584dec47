//! memory: peak resident memory while the daemon holds N previews through
//! a full resync. The daemon, the simulated AWS (which holds every
//! resource) and the load generator share this process, so the figure is
//! an upper bound on the daemon's own.

use super::burst::Outcome;
use super::{Fleet, System, secs};
use crate::harness::{SimParams, controller_config};
use previewd_core::model::{ListFilter, Phase};
use serde_json::json;
use std::time::Duration;

/// `VmHWM` (peak) and `VmRSS` (now) of this process, in KiB.
pub fn rss_kib() -> (u64, u64) {
    rss_kib_of("self")
}

/// `VmHWM` and `VmRSS` of process `pid` (`self`: this one), in KiB.
pub fn rss_kib_of(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

pub async fn memory(n: usize, resync: Duration, params: &SimParams) -> anyhow::Result<Outcome> {
    let base = controller_config(params);
    let cfg = previewd_controller::ControllerConfig {
        policy: previewd_controller::Policy {
            resync_interval: resync,
            ..base.policy.clone()
        },
        cache_max_age: resync / 5,
        ..base
    };
    let mut fleet = Fleet::start(System::Previewd, params, cfg).await?;
    let (_, start_rss) = rss_kib();
    let times = fleet.deploy_all(n, "c0ffee1", 1).await?;
    let (hwm_converged, _) = rss_kib();
    // A full resync round: every row is looked at again.
    tokio::time::sleep(resync + resync / 2).await;
    let (hwm, rss) = rss_kib();
    let ready = match &fleet {
        Fleet::Previewd { daemon, .. } => daemon
            .store
            .list(&ListFilter {
                phase: Some(Phase::Ready),
                ..Default::default()
            })
            .await?
            .len(),
        Fleet::Baseline { .. } => 0,
    };
    fleet.stop().await;
    let mib = |k: u64| (k as f64 / 1024.0 * 10.0).round() / 10.0;
    let summary = format!(
        "memory n={n}: peak RSS {} MiB (process with daemon, sim and load generator; {} MiB \
         before the previews), {} MiB after a full resync; {ready} Ready",
        mib(hwm),
        mib(start_rss),
        mib(rss),
    );
    let json = json!({
        "scenario": "memory",
        "system": "previewd",
        "n": n,
        "sim": params,
        "resync_interval_secs": secs(resync),
        "rss_before_mib": mib(start_rss),
        "peak_rss_after_converging_mib": mib(hwm_converged),
        "peak_rss_mib": mib(hwm),
        "rss_after_resync_mib": mib(rss),
        "converge_secs": secs(times.iter().max().copied().unwrap_or_default()),
        "ready": ready,
    });
    Ok(Outcome { json, summary })
}
