//! steady: N Ready previews, K resync rounds with nothing to change; AWS
//! calls per preview per round, split by operation.

use super::burst::Outcome;
use super::{Calls, Fleet, System, round3, secs};
use crate::harness::{SimParams, controller_config};
use previewd_core::model::{ListFilter, Phase};
use serde_json::json;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Reconciles at once in the baseline's rounds (previewd's default workers
/// when the baseline's figures were taken).
const BASELINE_CONCURRENCY: usize = 16;

pub async fn steady(
    system: System,
    n: usize,
    rounds: u32,
    resync: Duration,
    params: &SimParams,
) -> anyhow::Result<Outcome> {
    // previewd's default cache age is a fifth of its resync interval; the
    // run keeps that ratio at a shorter interval.
    let base = controller_config(params);
    let cfg = previewd_controller::ControllerConfig {
        policy: previewd_controller::Policy {
            resync_interval: resync,
            ..base.policy.clone()
        },
        cache_max_age: resync / 5,
        ..base
    };
    let mut fleet = Fleet::start(system, params, cfg).await?;
    fleet.deploy_all(n, "c0ffee1", 1).await?;
    let started;
    let mut round_secs = Vec::new();
    match &mut fleet {
        Fleet::Previewd { daemon, .. } => {
            // Let every row reach its resync schedule before counting.
            tokio::time::sleep(resync + resync / 2).await;
            daemon.sim.reset_calls();
            started = Instant::now();
            tokio::time::sleep(resync * rounds).await;
        }
        Fleet::Baseline {
            sim,
            baseline,
            previews,
        } => {
            sim.reset_calls();
            started = Instant::now();
            for _ in 0..rounds {
                let t = Instant::now();
                let mut looks = JoinSet::new();
                let chunk = n.div_ceil(BASELINE_CONCURRENCY).max(1);
                for part in previews.chunks(chunk) {
                    let (b, part) = (baseline.clone(), part.to_vec());
                    looks.spawn(async move {
                        let mut unchanged = true;
                        for mut p in part {
                            let plan = b.look(&mut p, t + super::GIVE_UP).await?;
                            unchanged &= plan.changes.is_empty();
                        }
                        anyhow::Ok(unchanged)
                    });
                }
                while let Some(r) = looks.join_next().await {
                    anyhow::ensure!(r??, "a steady baseline look planned a change");
                }
                round_secs.push(secs(t.elapsed()));
            }
        }
    }
    let elapsed = started.elapsed();
    let calls = Calls::of(fleet.sim());
    let still_ready = match &fleet {
        Fleet::Previewd { daemon, .. } => daemon
            .store
            .list(&ListFilter {
                phase: Some(Phase::Ready),
                ..Default::default()
            })
            .await?
            .len(),
        Fleet::Baseline { previews, .. } => previews.len(),
    };
    fleet.stop().await;
    let per = |x: u64| round3(x as f64 / (n as f64 * rounds as f64));
    let summary = format!(
        "steady {system:?} n={n} rounds={rounds}: {} AWS calls per preview per round \
         ({} calls, {} mutating); {still_ready} of {n} still Ready",
        per(calls.total),
        calls.total,
        calls.mutating,
    );
    let json = json!({
        "scenario": "steady",
        "system": system,
        "n": n,
        "rounds": rounds,
        "resync_interval_secs": secs(resync),
        "cache_max_age_secs": secs(resync / 5),
        "sim": params,
        "measured_secs": secs(elapsed),
        "baseline_round_secs": round_secs,
        "calls_per_preview_per_round": per(calls.total),
        "calls_per_preview_per_round_by_operation": calls.per(n as f64 * rounds as f64),
        "calls_total": calls.total,
        "calls_mutating": calls.mutating,
        "calls": calls.by_operation,
        "still_ready": still_ready,
    });
    Ok(Outcome { json, summary })
}
