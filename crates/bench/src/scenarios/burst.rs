//! burst: N previews dispatched at once, time until all are Ready against
//! the rate limits' lower bound; redeploy: each of them gets a new commit.

use super::{Calls, Fleet, System, round3, secs, timeline};
use crate::bound::lower_bound;
use crate::harness::{SimParams, controller_config};
use previewd_sim::Limits;
use serde_json::{Value, json};

/// The JSON line and the human summary of one run.
pub struct Outcome {
    pub json: Value,
    pub summary: String,
}

pub async fn burst(system: System, n: usize, params: &SimParams) -> anyhow::Result<Outcome> {
    let mut fleet = Fleet::start(system, params, controller_config(params)).await?;
    fleet.sim().reset_calls();
    let sampler = timeline::sample(fleet.sim().clone());
    let times = fleet.deploy_all(n, "c0ffee1", 1).await?;
    let calls = Calls::of(fleet.sim());
    let timeline = sampler.finish().await;
    fleet.stop().await;
    let bound = lower_bound(n, params, &Limits::default());
    let all = times.iter().max().copied().unwrap_or_default();
    let ratio = round3(all.as_secs_f64() / bound.secs);
    let mut curve: Vec<f64> = times.iter().map(|d| secs(*d)).collect();
    curve.sort_by(f64::total_cmp);
    let summary = format!(
        "burst {system:?} n={n}: all Ready in {:.1} s; lower bound {:.1} s ({}); ratio {ratio:.2}; \
         {} AWS calls ({:.1} per preview, {} mutating)",
        all.as_secs_f64(),
        bound.secs,
        bound.binding,
        calls.total,
        calls.total as f64 / n as f64,
        calls.mutating,
    );
    let json = json!({
        "scenario": "burst",
        "system": system,
        "n": n,
        "sim": params,
        "all_ready_secs": secs(all),
        "lower_bound_secs": round3(bound.secs),
        "ratio_to_bound": ratio,
        "bound": bound,
        "calls_total": calls.total,
        "calls_mutating": calls.mutating,
        "calls_per_preview": round3(calls.total as f64 / n as f64),
        "calls": calls.by_operation,
        "ready_secs_sorted": curve,
        "calls_timeline": timeline,
    });
    Ok(Outcome { json, summary })
}

pub async fn redeploy(system: System, n: usize, params: &SimParams) -> anyhow::Result<Outcome> {
    let mut fleet = Fleet::start(system, params, controller_config(params)).await?;
    fleet.deploy_all(n, "c0ffee1", 1).await?;
    fleet.sim().reset_calls();
    let times = fleet.deploy_all(n, "beef002", 2).await?;
    let calls = Calls::of(fleet.sim());
    let snapshot = fleet.sim().snapshot();
    fleet.stop().await;
    let all = times.iter().max().copied().unwrap_or_default();
    let mutating: std::collections::BTreeMap<String, f64> = calls
        .per(n as f64)
        .into_iter()
        .filter(|(op, _)| super::is_mutating(op))
        .collect();
    let per_preview = round3(calls.mutating as f64 / n as f64);
    let summary = format!(
        "redeploy {system:?} n={n}: all Ready at the new commit in {:.1} s; {per_preview} mutating \
         calls per preview ({} calls in all, {:.1} per preview)",
        all.as_secs_f64(),
        calls.total,
        calls.total as f64 / n as f64,
    );
    let json = json!({
        "scenario": "redeploy",
        "system": system,
        "n": n,
        "sim": params,
        "all_ready_secs": secs(all),
        "mutating_calls_per_preview": per_preview,
        "mutating_by_operation_per_preview": mutating,
        "calls_total": calls.total,
        "calls_mutating": calls.mutating,
        "calls": calls.by_operation,
        // Consistency: one service and one task definition family per preview.
        "services": snapshot.services.len(),
        "task_definition_families": snapshot.task_definitions.len(),
    });
    Ok(Outcome { json, summary })
}
