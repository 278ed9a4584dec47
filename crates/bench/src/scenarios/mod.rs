//! The scenarios, and what they share: a converged fleet of previews for
//! either system, call accounting, percentiles.

pub mod api;
pub mod burst;
pub mod daemon_memory;
pub mod lease;
pub mod memory;
pub mod reaction;
pub mod steady;
mod timeline;
pub mod trace;

use crate::baseline::Baseline;
use crate::harness::{self, Daemon, SimParams, StoreHandle};
use anyhow::Context;
use previewd_controller::{Cloud, ControllerConfig};
use previewd_core::model::Preview;
use previewd_sim::Sim;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Which reconciler runs a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Previewd,
    Baseline,
}

/// How long any one wait may last before the run is called failed.
pub const GIVE_UP: Duration = Duration::from_secs(3600);

/// Requests per API since `reset_calls`, and their split.
#[derive(Debug, Clone, Serialize)]
pub struct Calls {
    pub total: u64,
    pub mutating: u64,
    pub by_operation: BTreeMap<String, u64>,
}

/// Whether an API (`elbv2:CreateRule`) changes anything.
pub fn is_mutating(op: &str) -> bool {
    let name = op.split(':').nth(1).unwrap_or(op);
    !["Describe", "List", "Get"]
        .iter()
        .any(|p| name.starts_with(p))
}

impl Calls {
    pub fn of(sim: &Sim) -> Self {
        let by_operation = sim.calls();
        Self {
            total: by_operation.values().sum(),
            mutating: by_operation
                .iter()
                .filter(|(op, _)| is_mutating(op))
                .map(|(_, n)| n)
                .sum(),
            by_operation,
        }
    }

    /// Requests per preview (and per round), per operation.
    pub fn per(&self, divisor: f64) -> BTreeMap<String, f64> {
        self.by_operation
            .iter()
            .map(|(op, n)| (op.clone(), round3(*n as f64 / divisor)))
            .collect()
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The p-th percentile (nearest rank) of `xs`, in the unit given.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// A system with N previews in flight or converged on one sim.
pub enum Fleet {
    Previewd {
        daemon: Box<Daemon>,
        store: Box<StoreHandle>,
    },
    Baseline {
        sim: Sim,
        baseline: Baseline,
        previews: Vec<Preview>,
    },
}

impl Fleet {
    pub fn sim(&self) -> &Sim {
        match self {
            Fleet::Previewd { daemon, .. } => &daemon.sim,
            Fleet::Baseline { sim, .. } => sim,
        }
    }

    pub async fn start(
        system: System,
        params: &SimParams,
        controller: ControllerConfig,
    ) -> anyhow::Result<Self> {
        let sim = Sim::new(params.sim_config());
        Ok(match system {
            System::Previewd => {
                let store = StoreHandle::open(harness::Backend::Sqlite, "").await?;
                let daemon = Daemon::start(
                    sim,
                    store.store.clone(),
                    params.template(),
                    Some(controller),
                )
                .await?;
                Fleet::Previewd {
                    daemon: Box::new(daemon),
                    store: Box::new(store),
                }
            }
            System::Baseline => Fleet::Baseline {
                baseline: Baseline::new(
                    Cloud::from_one(sim.clone()),
                    params.template(),
                    harness::pool_of(&sim, &params.template()),
                    Duration::from_millis(params.progress_ms),
                ),
                sim,
                previews: Vec::new(),
            },
        })
    }

    /// Deploys `commit` to previews 0..n at once (generation `generation`)
    /// and returns when each was Ready, measured from the start.
    pub async fn deploy_all(
        &mut self,
        n: usize,
        commit: &str,
        generation: i64,
    ) -> anyhow::Result<Vec<Duration>> {
        let t0 = Instant::now();
        match self {
            Fleet::Previewd { daemon, .. } => {
                let mut sends = JoinSet::new();
                for i in 0..n {
                    let (client, addr) = (daemon.client.clone(), daemon.addr);
                    let commit = commit.to_string();
                    sends.spawn(async move {
                        harness::dispatch(&client, addr, &harness::branch(i), &commit).await
                    });
                }
                while let Some(r) = sends.join_next().await {
                    r??;
                }
                let keys: Vec<_> = (0..n).map(harness::key).collect();
                daemon.wait_ready(&keys, generation, t0, GIVE_UP).await
            }
            Fleet::Baseline {
                baseline, previews, ..
            } => {
                let old = std::mem::take(previews);
                let mut scripts = JoinSet::new();
                for i in 0..n {
                    let b = baseline.clone();
                    let mut p = b.preview(&harness::branch(i), commit, generation);
                    if let Some(prev) = old.get(i) {
                        p.status = prev.status.clone();
                    }
                    scripts.spawn(async move {
                        let r = b.deploy(&mut p, t0 + GIVE_UP).await;
                        (i, p, r.map(|()| t0.elapsed()))
                    });
                }
                let mut done: Vec<Option<(Preview, Duration)>> = vec![None; n];
                while let Some(r) = scripts.join_next().await {
                    let (i, p, at) = r?;
                    done[i] = Some((p, at.with_context(|| harness::branch(i))?));
                }
                let (ps, times): (Vec<Preview>, Vec<Duration>) = done
                    .into_iter()
                    .map(|x| x.expect("every script ended"))
                    .unzip();
                *previews = ps;
                Ok(times)
            }
        }
    }

    pub async fn stop(self) {
        if let Fleet::Previewd { daemon, store } = self {
            daemon.stop().await;
            store.remove().await;
        }
    }
}

/// Seconds, rounded to milliseconds.
pub fn secs(d: Duration) -> f64 {
    round3(d.as_secs_f64())
}
