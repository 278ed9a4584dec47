//! Model-based chaos: random deploys, redeploys and destroys over several
//! branches, with the sim failing, losing responses and throttling, and the
//! controller killed or stopped at random points; previews expire, sweeps
//! run, and orphans (resources of ours no row knows) appear. At the end AWS (the sim)
//! must hold exactly what the desired rows call for, nothing leaked, every
//! foreign resource unchanged, and every row's phase true.
//!
//! `PREVIEWD_CHAOS_SCHEDULES=N` runs N schedules (default 200);
//! `PREVIEWD_CHAOS_SEED=S` replays one.

use previewd_controller::{SweepOptions, Sweeper};
use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, Desired, ListFilter, Phase, Preview, PreviewSpec};
use previewd_core::naming::NamingConfig;
use previewd_core::ports::Store;
use previewd_core::render::{Template, render};
use previewd_core::tags::Tags;
use previewd_sim::{BucketSpec, Limits, Sim, SimConfig, Snapshot};
use previewd_tests::{PROJECT, RunningController, fast_controller, try_plant_orphans};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

const ID: &str = "previewd";
const BRANCHES: [&str; 5] = ["b0", "b1", "feature/B2", "qanote/issue-3", "qanote/issue-4"];
const COMMITS: [&str; 3] = ["aaaaaaa", "bbbbbbb", "ccccccc"];

/// Buckets small enough that a schedule really meets throttling.
fn tight_limits() -> Limits {
    let b = BucketSpec::new(4.0, 200.0);
    Limits {
        ecs_service_read: b,
        ecs_service_modify: b,
        ecs_task_def_modify: b,
        ecs_task_def_read: b,
        ecs_cluster_read: b,
        ecs_tag: b,
        elb_account: b,
        elb_non_mutating: b,
        elb_mutating: b,
        elb_targets: b,
        route53: b,
        route53_changes: BucketSpec::new(20.0, 2000.0),
        logs_admin: b,
        logs_config: b,
        ecr_read: b,
        cloudwatch_get_metric_data: b,
    }
}

/// Other teams' resources, named like ours but never ours.
fn preload_foreign(sim: &Sim, rng: &mut StdRng) {
    for (i, priority) in [1000, 1002, 1005].into_iter().enumerate() {
        if rng.random_bool(0.7) {
            let tg = sim.add_foreign_target_group(&format!("pv-b{i}-prod"), Tags::new());
            sim.add_foreign_rule_forwarding(
                priority,
                &format!("b{i}-prod.preview.example.com"),
                &tg,
                Tags::new(),
            );
        }
    }
    sim.add_foreign_log_group("/ecs/pv-b0-archive");
    sim.add_foreign_service("pv-b1-legacy");
    sim.add_foreign_task_definition("pv-b0-legacy");
    let mut other_team = Tags::new();
    other_team.insert("previewd:managed-by".into(), "someone-else".into());
    sim.add_foreign_target_group("pv-b1-blue", other_team);
}

struct Schedule {
    seed: u64,
    sim: Sim,
    store: Arc<dyn Store>,
    template: Arc<Template>,
    controller: Option<RunningController>,
    restarts: u32,
    /// The model: what each branch should be.
    model: BTreeMap<String, Option<&'static str>>,
    /// Branches deployed already past their TTL: the next sweep ends them.
    expiring: BTreeSet<String>,
    ghosts: u32,
    sweeper: Sweeper,
}

impl Schedule {
    fn start_controller(&mut self) {
        self.restarts += 1;
        let cfg = fast_controller(&format!("replica-{}-{}", self.seed, self.restarts));
        self.controller = Some(RunningController::start(
            self.store.clone(),
            &self.sim,
            self.template.clone(),
            cfg,
        ));
    }

    async fn deploy(&mut self, branch: &str, commit: &'static str, expired: bool) {
        let key = PreviewKey::new(PROJECT, branch).unwrap();
        let spec = PreviewSpec {
            commit_sha: Some(commit.into()),
            ..Default::default()
        };
        let now = chrono::Utc::now();
        let req = DeployRequest {
            key,
            spec,
            expiry: expired.then_some(now).into(),
        };
        let out = self
            .store
            .apply_deploy(&req, &NamingConfig::default(), now)
            .await
            .unwrap();
        self.model.insert(branch.into(), Some(commit));
        // An identical resend changes nothing, not even the expiry.
        if out.changed {
            if expired {
                self.expiring.insert(branch.into());
            } else {
                self.expiring.remove(branch);
            }
        }
    }

    async fn destroy(&mut self, branch: &str) {
        let key = PreviewKey::new(PROJECT, branch).unwrap();
        self.store
            .apply_destroy(&key, chrono::Utc::now())
            .await
            .unwrap();
        self.expiring.remove(branch);
        if self.model.contains_key(branch) {
            self.model.insert(branch.into(), None);
        }
    }

    /// One garbage-collection sweep with no grace; errors (sim faults) are
    /// fine, a sweep is simply run again.
    async fn sweep(&mut self) {
        let opts = SweepOptions {
            dry_run: false,
            grace: Duration::ZERO,
            max_deletions: 1000,
        };
        if let Ok(report) = self.sweeper.sweep(&opts, chrono::Utc::now()).await {
            for key in report.expired {
                self.expiring.remove(&key.branch);
                self.model.insert(key.branch, None);
            }
        }
    }

    async fn plant_ghost(&mut self) {
        self.ghosts += 1;
        let slug = format!("ghost-{}", self.ghosts);
        let mut last = None;
        for _ in 0..200 {
            match try_plant_orphans(&self.sim, ID, &slug).await {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("could not plant {slug}: {last:?}");
    }
}

async fn run_schedule(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let ms = |rng: &mut StdRng, max: u64| Duration::from_millis(rng.random_range(0..=max));
    let sim = Sim::new(SimConfig {
        seed,
        service_stable_after: ms(&mut rng, 20),
        target_healthy_after: ms(&mut rng, 10),
        drain_after: ms(&mut rng, 20),
        fault_rate: rng.random_range(0.0..0.12),
        fault_after_apply_rate: rng.random_range(0.0..0.08),
        throttling: rng.random_bool(0.5),
        limits: tight_limits(),
        ..SimConfig::default()
    });
    preload_foreign(&sim, &mut rng);
    let foreign_before = sim.snapshot().foreign_to(ID);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}/chaos.db", dir.path().display());
    let store = previewd_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let sweeper = Sweeper {
        cloud: previewd_controller::Cloud::from_one(sim.clone()),
        store: store.clone(),
        template: Arc::new(Template::default()),
        pool: Arc::new(previewd_core::pool::Pool::single(&Template::default())),
        projects: None,
    };
    let mut s = Schedule {
        seed,
        sim,
        store,
        template: Arc::new(Template::default()),
        controller: None,
        restarts: 0,
        model: BTreeMap::new(),
        expiring: BTreeSet::new(),
        ghosts: 0,
        sweeper,
    };
    s.start_controller();
    for _ in 0..rng.random_range(12..28) {
        let branch = BRANCHES[rng.random_range(0..BRANCHES.len())];
        match rng.random_range(0..100) {
            0..40 => {
                s.deploy(branch, COMMITS[rng.random_range(0..COMMITS.len())], false)
                    .await
            }
            40..45 => {
                s.deploy(branch, COMMITS[rng.random_range(0..COMMITS.len())], true)
                    .await
            }
            45..60 => s.destroy(branch).await,
            60..68 => {
                s.controller.take().unwrap().kill().await;
                tokio::time::sleep(ms(&mut rng, 20)).await;
                s.start_controller();
            }
            68..72 => {
                s.controller.take().unwrap().stop().await;
                s.start_controller();
            }
            72..78 => s.sweep().await,
            78..81 => s.plant_ghost().await,
            _ => tokio::time::sleep(ms(&mut rng, 30)).await,
        }
    }
    // Calm weather: the controller must now converge everything.
    s.sim.set_fault_rate(0.0);
    s.sim.set_fault_after_apply_rate(0.0);
    s.sim.set_throttling(false);
    wait_converged(&s).await?;
    // The daemon's next sweep: expiries end, ghosts go; then calm again.
    s.sweep().await;
    s.store.wakeups().notify_one();
    if !s.expiring.is_empty() {
        return Err(format!(
            "expired previews survived the sweep: {:?}",
            s.expiring
        ));
    }
    let rows = wait_converged(&s).await?;
    check_world(&s, &rows, &foreign_before)?;
    s.controller.take().unwrap().stop().await;
    Ok(())
}

fn converged(p: &Preview) -> bool {
    let phase = if p.desired == Desired::Present {
        Phase::Ready
    } else {
        Phase::Deleted
    };
    p.status.phase == phase && p.status.observed_generation == p.generation
}

async fn wait_converged(s: &Schedule) -> Result<Vec<Preview>, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = s
            .store
            .list(&ListFilter::default())
            .await
            .map_err(|e| e.to_string())?;
        if rows.iter().all(converged) {
            return Ok(rows);
        }
        if tokio::time::Instant::now() > deadline {
            let stuck: Vec<String> = rows
                .iter()
                .filter(|p| !converged(p))
                .map(|p| {
                    format!(
                        "{} {:?} {} gen {}/{}: {:?}",
                        p.key,
                        p.desired,
                        p.status.phase,
                        p.status.observed_generation,
                        p.generation,
                        p.status.message
                    )
                })
                .collect();
            return Err(format!("did not converge: {stuck:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn check_world(s: &Schedule, rows: &[Preview], foreign_before: &Snapshot) -> Result<(), String> {
    let snap = s.sim.snapshot();
    if snap.foreign_to(ID) != *foreign_before {
        return Err(format!(
            "foreign resources changed:\nbefore {foreign_before:?}\nafter {:?}",
            snap.foreign_to(ID)
        ));
    }
    let owned = snap.owned_by(ID);
    for p in rows {
        let wanted = s.model.get(&p.key.branch).copied().flatten();
        let present = p.desired == Desired::Present;
        if present != wanted.is_some() || (present && p.spec.commit_sha.as_deref() != wanted) {
            return Err(format!("row {} disagrees with the model {wanted:?}", p.key));
        }
    }
    let live: Vec<_> = rows
        .iter()
        .filter(|p| p.desired == Desired::Present)
        .map(|p| (p, render(&s.template, p)))
        .collect();
    let count = |n: usize, what: &str, expected: usize| {
        if n == expected {
            Ok(())
        } else {
            Err(format!("{what}: {n} owned, {expected} wanted\n{owned:?}"))
        }
    };
    count(owned.services.len(), "services", live.len())?;
    count(owned.target_groups.len(), "target groups", live.len())?;
    count(owned.rules.len(), "rules", live.len())?;
    count(owned.log_groups.len(), "log groups", live.len())?;
    count(owned.records.len(), "DNS records", 2 * live.len())?;
    for (p, w) in &live {
        let svc = owned
            .services
            .iter()
            .find(|x| x.name == w.names.service)
            .ok_or(format!("no service for {}", p.key))?;
        let td = owned
            .task_definitions
            .iter()
            .find(|t| svc.task_definition == t.arn)
            .ok_or(format!("{} runs an unknown task definition", p.key))?;
        if td.tags.get("previewd:spec-hash") != Some(&w.task_definition.spec_hash) {
            return Err(format!(
                "{} runs an old spec: service {svc:?}, task definition {td:?}, wanted hash {}, row {:?}",
                p.key, w.task_definition.spec_hash, p.status
            ));
        }
        let rule = owned
            .rules
            .iter()
            .find(|r| r.hosts == [w.names.host.clone()])
            .ok_or(format!("no rule for {}", p.key))?;
        if rule.priority != p.rule_priority {
            return Err(format!(
                "{}: rule at {:?}, row says {:?}",
                p.key, rule.priority, p.rule_priority
            ));
        }
    }
    let live_families: Vec<&str> = live.iter().map(|(_, w)| w.names.family.as_str()).collect();
    if let Some(td) = owned
        .task_definitions
        .iter()
        .find(|t| !live_families.contains(&t.family.as_str()))
    {
        return Err(format!("leaked task definition {}", td.arn));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_converge_with_no_leaks_and_no_foreign_changes() {
    let seeds: Vec<u64> = match std::env::var("PREVIEWD_CHAOS_SEED") {
        Ok(seed) => vec![seed.parse().expect("PREVIEWD_CHAOS_SEED is a number")],
        Err(_) => {
            let n = std::env::var("PREVIEWD_CHAOS_SCHEDULES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200u64);
            (0..n).collect()
        }
    };
    let total = seeds.len();
    let parallel = Arc::new(Semaphore::new(8));
    let mut runs = tokio::task::JoinSet::new();
    for seed in seeds {
        let permit = parallel.clone().acquire_owned().await.unwrap();
        runs.spawn(async move {
            // An inner task, so a panic is reported with its seed.
            let result = match tokio::spawn(run_schedule(seed)).await {
                Ok(result) => result,
                Err(e) => Err(format!("panicked: {e}")),
            };
            drop(permit);
            (seed, result)
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = runs.join_next().await {
        let (seed, result) = done.expect("the schedule runner itself failed");
        if let Err(e) = result {
            failures.push(format!("seed {seed}: {e}\n  replay: PREVIEWD_CHAOS_SEED={seed} cargo nextest run -p previewd-tests --test chaos"));
        }
    }
    println!("chaos: {} schedules, {} failed", total, failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
