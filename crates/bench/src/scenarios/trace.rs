//! trace: sleep on a usage trace (issue 18). N previews over H simulated
//! hours, each visited in S sessions at random times; Fargate task-hours
//! with sleep against always-on, wake latency, and the API cost of idle
//! detection.
//!
//! # Method
//! - **The real code.** previewd's store (SQLite), reconcile loop, idle
//!   check (`Sleeper::run`) and waker handler (`waker_app_at`) on the sim
//!   with the harness's AWS-like latency, rollout, health check and
//!   rate limits, and previewd's defaults: `check_interval` 5 min,
//!   `idle_after` 1 h, `retry_after` 5 s, resync every 5 min.
//! - **Time compressed, not modelled.** The run has its own current-thread
//!   runtime with tokio's clock paused: when every task waits on a timer,
//!   tokio jumps to the next one, so the sim's delays, the loop's sleeps
//!   and the idle check's interval all pass at once. The controller's wall
//!   clock (`ControllerConfig::clock`), the waker's and the scenario's own
//!   writes read [`crate::clock::now`], a fixed date plus tokio's elapsed
//!   time, so the schedule in the store and the idle decisions agree with
//!   the sim. The store answers from another thread; the store wrapper
//!   (`Counted::holding`) keeps the clock still while a call is under way,
//!   so no time passes in the middle of a database call that would not
//!   pass in production.
//! - **The trace** (seeded): all N previews are dispatched at t = 0
//!   (applied to the store directly, never expiring). Each gets S sessions
//!   starting uniformly in [10 min, H − session]; one of a preview's
//!   sessions that would start before its previous one ended starts when
//!   it ends. A session sends a request every 30–60 s (uniform) for its
//!   length through the sim's load balancer (`visitor`): a sleeping
//!   preview's request reaches the waker, which wakes it; the visitor
//!   tries again per `Retry-After` until the preview answers.
//! - **Task-hours**: the sim's running tasks, sampled every 30 s of
//!   simulated time over the H hours, against N × H always on.
//! - **Wake latency**: per wake, from its first request to the preview
//!   answering (a 100 ms probe that counts no request), and to the
//!   visitor's own retry being served; the goal compares the p50 of the
//!   first with the sim's task start + health check + 5 s.
//! - **API cost of idle detection**: the AWS requests made by the idle
//!   check's task (`attributed`), per preview per hour.

use super::burst::Outcome;
use super::{Calls, percentile, round3};
use crate::attributed;
use crate::clock;
use crate::counted::{Counted, Hold};
use crate::harness::{self, Backend, SimParams, StoreHandle, controller_config};
use crate::visitor::{self, Tally};
use anyhow::Context;
use previewd_api::waker::{WakerState, waker_app_at};
use previewd_controller::{Cloud, Controller, ControllerConfig, Reconciler, Sleeper};
use previewd_core::limits::{Limits, Pacer};
use previewd_core::model::{DeployRequest, PreviewSpec};
use previewd_core::naming::{NamingConfig, ResourceNames};
use previewd_core::ports::Store;
use previewd_core::{Command, Expiry};
use previewd_sim::Sim;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The run's shape and previewd's sleep settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceParams {
    pub n: usize,
    pub hours: u64,
    pub sessions: usize,
    pub session_minutes: u64,
    pub seed: u64,
    pub idle_after_secs: u64,
    pub check_interval_secs: u64,
    pub retry_after_secs: u64,
    /// The idle check as it was before its schedule: every check reads
    /// the counts of the previews awake for `idle_after`, remembering
    /// nothing (`Sleeper::check` at every tick), for comparison.
    pub read_every_check: bool,
}

/// How often the running tasks are sampled.
const SAMPLE: Duration = Duration::from_secs(30);
/// Sessions start no earlier: the first deploys are under way.
const FIRST_SESSION: Duration = Duration::from_secs(600);

/// Runs the trace in its own paused runtime on a thread of its own.
pub fn trace(p: TraceParams, params: SimParams) -> anyhow::Result<Outcome> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()?;
        rt.block_on(run(&p, &params))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the trace's thread panicked"))?
}

/// Session start times per preview, sorted, from `seed`.
pub fn sessions(p: &TraceParams) -> Vec<Vec<Duration>> {
    let mut rng = StdRng::seed_from_u64(p.seed);
    let len = Duration::from_secs(p.session_minutes * 60);
    let last = Duration::from_secs(p.hours * 3600).saturating_sub(len);
    (0..p.n)
        .map(|_| {
            let mut s: Vec<Duration> = (0..p.sessions)
                .map(|_| {
                    let span = last.saturating_sub(FIRST_SESSION).as_secs_f64();
                    FIRST_SESSION + Duration::from_secs_f64(rng.random::<f64>() * span)
                })
                .collect();
            s.sort();
            s
        })
        .collect()
}

async fn run(p: &TraceParams, params: &SimParams) -> anyhow::Result<Outcome> {
    let wall = std::time::Instant::now();
    clock::start();
    let t0 = Instant::now();
    let calls_of_idle_check = attributed::install().context("a metrics recorder was installed")?;
    let sim = Sim::new(params.sim_config());
    let handle = {
        let _held = Hold::new();
        StoreHandle::open(Backend::Sqlite, "").await?
    };
    let counted = Arc::new(Counted::holding(handle.store.clone()));
    let store: Arc<dyn Store> = counted.clone();
    let template = Arc::new(params.template());
    let pacer = Arc::new(Pacer::new(Limits::default(), Instant::now().into_std()));
    sim.set_pacer(Some(pacer.clone()));
    let cfg = ControllerConfig {
        clock: clock::now,
        wakers: previewd_core::sleep::Wakers::new(sim.waker_target_groups()),
        ..controller_config(params)
    };
    let cloud = Cloud::from_one(sim.clone()).paced_by(pacer);
    let reconciler = Arc::new(Reconciler::new(store.clone(), cloud, template.clone(), cfg));
    let cancel = CancellationToken::new();
    let controller = tokio::spawn(Controller::new(reconciler.clone()).run(cancel.clone()));
    let sleeper = Sleeper {
        reconciler,
        metrics: Arc::new(sim.clone()),
        idle_after: Duration::from_secs(p.idle_after_secs),
        check_interval: Duration::from_secs(p.check_interval_secs),
    };
    let idle_check = if p.read_every_check {
        tokio::spawn(attributed::idle_check(forgetful(sleeper, cancel.clone())))
    } else {
        tokio::spawn(attributed::idle_check(sleeper.run(cancel.clone())))
    };
    let waker = waker_app_at(
        WakerState {
            store: store.clone(),
            projects: Arc::new(previewd_core::projects::Projects::uniform(template.clone())),
            retry_after: Duration::from_secs(p.retry_after_secs),
        },
        clock::now,
    );

    // The running tasks, sampled from t = 0.
    let end = t0 + Duration::from_secs(p.hours * 3600);
    let sampler = tokio::spawn({
        let (sim, n, hours) = (sim.clone(), p.n, p.hours);
        async move {
            let mut s = Sampled {
                task_secs: 0.0,
                by_hour: vec![0.0; hours as usize],
                peak_asleep: 0,
            };
            let mut at = t0;
            while at < end {
                let running = sim.running_tasks();
                let secs = running as f64 * SAMPLE.as_secs_f64();
                s.task_secs += secs;
                let hour = ((at - t0).as_secs() / 3600) as usize;
                if let Some(h) = s.by_hour.get_mut(hour) {
                    *h += secs / 3600.0;
                }
                s.peak_asleep = s.peak_asleep.max(n as i64 - running);
                if (at - t0).as_secs().is_multiple_of(3600) && at > t0 {
                    let gmd = sim.calls().get("cloudwatch:GetMetricData").copied();
                    eprintln!(
                        "  … hour {}: {running} tasks running; {} GetMetricData so far ({:.0} s wall)",
                        (at - t0).as_secs() / 3600,
                        gmd.unwrap_or(0),
                        wall.elapsed().as_secs_f64()
                    );
                }
                at += SAMPLE;
                tokio::time::sleep_until(at).await;
            }
            s
        }
    });

    // Every preview dispatched at t = 0.
    let naming = NamingConfig::default();
    let mut hosts = Vec::new();
    for i in 0..p.n {
        let request = DeployRequest {
            key: harness::key(i),
            spec: PreviewSpec {
                commit_sha: Some("c0ffee1".into()),
                ..PreviewSpec::default()
            },
            expiry: Expiry::Never,
        };
        let command = Command::Deploy {
            request,
            naming: naming.clone(),
        };
        store.apply(&command, clock::now()).await?;
        let row = store
            .get(&harness::key(i))
            .await?
            .context("the row deployed")?;
        hosts.push(ResourceNames::new(&naming, &row.slug, &row.host_label).host);
    }
    let keys: Vec<_> = (0..p.n).map(harness::key).collect();
    let ready = harness::wait_ready(store.as_ref(), &keys, 1, t0, super::GIVE_UP).await?;
    let all_ready = ready.iter().max().copied().unwrap_or_default();

    // The visitors.
    let len = Duration::from_secs(p.session_minutes * 60);
    let mut visitors = tokio::task::JoinSet::new();
    for (i, (host, starts)) in hosts.into_iter().zip(sessions(p)).enumerate() {
        let (sim, waker) = (sim.clone(), waker.clone());
        let mut rng = StdRng::seed_from_u64(p.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
        visitors.spawn(async move {
            let mut t = Tally::default();
            for start in starts {
                tokio::time::sleep_until((t0 + start).max(Instant::now())).await;
                let until = Instant::now() + len;
                while Instant::now() < until && Instant::now() < end {
                    visitor::request(&sim, &waker, &host, &mut t).await?;
                    let gap = Duration::from_secs_f64(rng.random_range(30.0..=60.0));
                    tokio::time::sleep(gap).await;
                }
            }
            anyhow::Ok(t)
        });
    }
    let sampled = sampler.await?;
    let mut tally = Tally::default();
    while let Some(r) = visitors.join_next().await {
        let t = r??;
        tally.requests += t.requests;
        tally.served += t.served;
        tally.to_waker += t.to_waker;
        tally.unavailable += t.unavailable;
        tally.waker_not_found += t.waker_not_found;
        tally.gave_up += t.gave_up;
        tally.wakes.extend(t.wakes);
    }
    let simulated = t0.elapsed();
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(60), controller).await;
    let _ = idle_check.await;
    let calls = Calls::of(&sim);
    let idle_calls = calls_of_idle_check.by_operation();
    let store_calls = counted.calls();
    drop(store);
    drop(counted);
    handle.remove().await;
    report(
        p,
        params,
        Report {
            all_ready,
            task_secs: sampled.task_secs,
            by_hour: sampled.by_hour,
            peak_asleep: sampled.peak_asleep,
            tally,
            calls,
            idle_calls,
            sleeps: store_calls.get("apply:sleep").copied().unwrap_or(0),
            wakes: store_calls.get("apply:wake").copied().unwrap_or(0),
            simulated,
            wall: wall.elapsed(),
        },
    )
}

/// `Sleeper::run` remembering nothing between checks.
async fn forgetful(sleeper: Sleeper, cancel: CancellationToken) {
    let mut every = tokio::time::interval(sleeper.check_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        let _ = sleeper.check(clock::now()).await;
    }
}

struct Sampled {
    task_secs: f64,
    by_hour: Vec<f64>,
    peak_asleep: i64,
}

struct Report {
    all_ready: Duration,
    task_secs: f64,
    by_hour: Vec<f64>,
    peak_asleep: i64,
    tally: Tally,
    calls: Calls,
    idle_calls: std::collections::BTreeMap<String, u64>,
    sleeps: u64,
    wakes: u64,
    simulated: Duration,
    wall: Duration,
}

fn report(p: &TraceParams, params: &SimParams, r: Report) -> anyhow::Result<Outcome> {
    let preview_hours = p.n as f64 * p.hours as f64;
    let task_hours = r.task_secs / 3600.0;
    let reduction = 1.0 - task_hours / preview_hours;
    let answering: Vec<f64> = r.tally.wakes.iter().map(|w| w.answering_secs).collect();
    let served: Vec<f64> = r.tally.wakes.iter().map(|w| w.served_secs).collect();
    let bound = (params.stable_after_ms + params.healthy_after_ms) as f64 / 1000.0 + 5.0;
    let idle_total: u64 = r.idle_calls.values().sum();
    let per_preview_hour = idle_total as f64 / preview_hours;
    let gmd = r
        .calls
        .by_operation
        .get("cloudwatch:GetMetricData")
        .copied()
        .unwrap_or(0);
    let checks = p.hours * 3600 / p.check_interval_secs.max(1);
    let p50 = percentile(&answering, 50.0);
    let summary = format!(
        "trace{} n={} hours={} sessions={}x{}min seed={}: {:.0} task-hours with sleep vs {:.0} always on \
         ({:.1} % fewer; goal ≥ 70 %); {} wakes, first request → answering p50 {:.1} s p90 {:.1} s \
         (goal p50 ≤ {:.1} s), → visitor served p50 {:.1} s; idle check {} AWS requests \
         ({} GetMetricData in {} checks) = {:.4} per preview per hour (goal ≤ 0.05); \
         {:.0} s wall for {:.1} simulated hours",
        if p.read_every_check {
            " (read at every check)"
        } else {
            ""
        },
        p.n,
        p.hours,
        p.sessions,
        p.session_minutes,
        p.seed,
        task_hours,
        preview_hours,
        reduction * 100.0,
        r.tally.wakes.len(),
        p50,
        percentile(&answering, 90.0),
        bound,
        percentile(&served, 50.0),
        idle_total,
        gmd,
        checks,
        per_preview_hour,
        r.wall.as_secs_f64(),
        r.simulated.as_secs_f64() / 3600.0,
    );
    let json = json!({
        "scenario": "trace",
        "system": "previewd",
        "n": p.n,
        "trace": p,
        "sim": params,
        "all_ready_secs": super::secs(r.all_ready),
        "task_hours_with_sleep": round3(task_hours),
        "task_hours_always_on": preview_hours,
        "task_hours_reduction": round3(reduction),
        "task_hours_by_hour": r.by_hour.iter().map(|h| round3(*h)).collect::<Vec<_>>(),
        "most_asleep_at_once": r.peak_asleep,
        "sleeps": r.sleeps,
        "wakes": r.wakes,
        "wakes_measured": r.tally.wakes.len(),
        "wake_answering_secs": {
            "p50": p50, "p90": percentile(&answering, 90.0), "max": percentile(&answering, 100.0),
        },
        "wake_served_secs": {
            "p50": percentile(&served, 50.0), "p90": percentile(&served, 90.0), "max": percentile(&served, 100.0),
        },
        "wake_goal_secs": bound,
        "visits": r.tally,
        "idle_check_checks": checks,
        "idle_check_requests": idle_total,
        "idle_check_requests_by_operation": r.idle_calls,
        "idle_check_requests_per_preview_hour": round3(per_preview_hour * 10.0) / 10.0,
        "get_metric_data_total": gmd,
        "calls_total": r.calls.total,
        "calls": r.calls.by_operation,
        "simulated_secs": super::secs(r.simulated),
        "wall_secs": super::secs(r.wall),
    });
    Ok(Outcome { json, summary })
}
