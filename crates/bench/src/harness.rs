//! The system under test: previewd's real store, controller and HTTP API on
//! the simulated AWS, wired the way `previewd serve` wires them.

use crate::tap::Tap;
use anyhow::{Context, bail};
use previewd_api::{AppState, app};
use previewd_controller::{Cloud, Controller, ControllerConfig, Reconciler};
use previewd_core::key::PreviewKey;
use previewd_core::limits::{Limits, Pacer};
use previewd_core::model::{ListFilter, Phase};
use previewd_core::naming::NamingConfig;
use previewd_core::plan::MAX_TARGET_GROUPS_PER_ALB;
use previewd_core::pool::{Pool, PoolListener};
use previewd_core::ports::Store;
use previewd_core::render::Template;
use previewd_sim::{Sim, SimConfig};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Executor};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const PROJECT: &str = "acme/shop";

/// Where PostgreSQL runs; each run creates its own database there.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The simulated account's behaviour for a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimParams {
    /// Added to every AWS request.
    pub latency_ms: u64,
    /// CreateService/UpdateService until the rollout completes.
    pub stable_after_ms: u64,
    /// Task running until its target is healthy.
    pub healthy_after_ms: u64,
    /// AWS's published token buckets (docs/aws-limits.md) are enforced.
    pub throttling: bool,
    /// Load balancers in the sim, each at AWS's true limits (100 target
    /// groups, a rule quota of 100) with one listener of previewd's pool.
    pub albs: usize,
    /// Other teams' rules (each forwarding to its own target group) on
    /// every listener, taking up room as on a shared listener.
    pub foreign: usize,
    /// How soon a converging preview is looked at again: previewd's
    /// `progress_interval` and the baseline script's poll alike.
    pub progress_ms: u64,
    /// previewd's reconciles at once (`controller.workers`): its default
    /// unless a run says otherwise.
    pub workers: usize,
}

impl SimParams {
    pub fn aws_like(latency_ms: u64) -> Self {
        Self {
            latency_ms,
            stable_after_ms: 3000,
            healthy_after_ms: 2000,
            throttling: true,
            albs: 1,
            foreign: 0,
            progress_ms: 5000,
            workers: ControllerConfig::default().workers,
        }
    }

    /// For the smoke test: 1 ms per request, instant rollouts, no
    /// throttling (whose backoffs would only make the test slow).
    pub fn quick() -> Self {
        Self {
            latency_ms: 1,
            stable_after_ms: 0,
            healthy_after_ms: 0,
            throttling: false,
            progress_ms: 200,
            ..Self::aws_like(1)
        }
    }

    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            latency: Duration::from_millis(self.latency_ms),
            service_stable_after: Duration::from_millis(self.stable_after_ms),
            target_healthy_after: Duration::from_millis(self.healthy_after_ms),
            drain_after: Duration::from_millis(self.stable_after_ms),
            throttling: self.throttling,
            ..SimConfig::default()
        }
        .with_albs(self.albs.max(1), self.foreign)
    }

    /// The controller's template for this account (the first load
    /// balancer's listener, as `Template::default` names it).
    pub fn template(&self) -> Template {
        Template::default()
    }

    /// Load balancers enough for `n` previews at AWS's limits, with room
    /// for the foreign rules on each.
    pub fn albs_for(n: usize, foreign: usize) -> usize {
        let room = MAX_TARGET_GROUPS_PER_ALB.saturating_sub(foreign).max(1);
        n.div_ceil(room).max(1)
    }
}

/// previewd's pool: one listener per simulated load balancer, in order.
pub fn pool_of(sim: &Sim, t: &Template) -> Pool {
    Pool {
        listeners: sim
            .config()
            .albs
            .iter()
            .map(|a| PoolListener {
                arn: a.listener_arn.clone(),
                alb_dns_name: a.dns_name.clone(),
                alb_zone_id: a.zone_id.clone(),
                priority_band: t.priority_band,
                rule_quota: a.rule_quota,
                draining: false,
            })
            .collect(),
    }
}

/// Which database holds the desired-state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open store and what must be removed after the run.
pub struct StoreHandle {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    /// The admin connection options and the database created for this run.
    pg: Option<(PgConnectOptions, String)>,
}

impl StoreHandle {
    /// A fresh SQLite file in a temporary directory, or a fresh PostgreSQL
    /// database created for this run on `pg_url`'s server.
    pub async fn open(backend: Backend, pg_url: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let url = format!("sqlite://{}", dir.path().join("previewd.db").display());
                let store = previewd_store::open(&url).await?;
                Ok(Self {
                    store,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Backend::Postgres => {
                let admin = PgConnectOptions::from_str(pg_url).context("--pg-url")?;
                let name = format!("previewd_bench_{:016x}", rand::random::<u64>());
                let mut conn = admin
                    .connect()
                    .await
                    .with_context(|| format!("connecting to PostgreSQL at {pg_url}"))?;
                // The name is ours (hex digits only), so splicing it is safe.
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await?;
                let url = admin.clone().database(&name).to_url_lossy();
                let store = previewd_store::open(url.as_str()).await?;
                Ok(Self {
                    store,
                    _dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    /// Drops the run's PostgreSQL database (best effort).
    pub async fn remove(self) {
        let Self { store, pg, .. } = self;
        drop(store);
        if let Some((admin, name)) = pg
            && let Ok(mut conn) = admin.connect().await
        {
            let _ = conn
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// previewd's defaults, named for this process, with the run's
/// progress interval.
pub fn controller_config(params: &SimParams) -> ControllerConfig {
    ControllerConfig {
        replica_id: "bench".into(),
        policy: previewd_controller::Policy {
            progress_interval: Duration::from_millis(params.progress_ms),
            ..previewd_controller::Policy::default()
        },
        workers: params.workers,
        ..ControllerConfig::default()
    }
}

/// The daemon: store, controller and API on one sim.
pub struct Daemon {
    pub sim: Sim,
    pub tap: Arc<Tap>,
    pub store: Arc<dyn Store>,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    template: Arc<Template>,
    controller: Option<(CancellationToken, JoinHandle<()>)>,
    server: JoinHandle<()>,
}

impl Daemon {
    /// Serves the API on 127.0.0.1:0; the controller runs only if
    /// `controller` is given.
    pub async fn start(
        sim: Sim,
        store: Arc<dyn Store>,
        template: Template,
        controller: Option<ControllerConfig>,
    ) -> anyhow::Result<Self> {
        let tap = Arc::new(Tap::new(sim.clone()));
        let template = Arc::new(template);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = AppState {
            store: store.clone(),
            naming: NamingConfig::default(),
            project: PROJECT.into(),
            url_scheme: "https".into(),
            api_token: None,
            lifetime: previewd_core::Lifetime {
                ttl: Duration::from_secs(72 * 3600),
                max_lifetime: Duration::from_secs(14 * 24 * 3600),
            },
            webhook_secret: None,
            callback_policy: None,
            gc: None,
            metrics: None,
            status_page: false,
            preview_label: None,
            projects: None,
        };
        previewd_github::install_ring_provider();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app(state)).await;
        });
        let mut d = Self {
            sim,
            tap,
            store,
            addr,
            client: reqwest::Client::new(),
            template,
            controller: None,
            server,
        };
        if let Some(cfg) = controller {
            d.start_controller(cfg);
        }
        Ok(d)
    }

    pub fn start_controller(&mut self, cfg: ControllerConfig) {
        // The simulated account is previewd's alone: it paces itself to
        // all of AWS's limits (`cloud.api_share_percent = 100`).
        let pacer = Arc::new(Pacer::new(
            Limits::default(),
            tokio::time::Instant::now().into_std(),
        ));
        self.sim.set_pacer(Some(pacer.clone()));
        let cloud = Cloud {
            logs: self.tap.clone(),
            compute: Arc::new(self.sim.clone()),
            load_balancer: Arc::new(self.sim.clone()),
            dns: Arc::new(self.sim.clone()),
            images: Arc::new(self.sim.clone()),
            pacer: Some(pacer),
        };
        let pool = Arc::new(pool_of(&self.sim, &self.template));
        let reconciler = Arc::new(
            Reconciler::new(self.store.clone(), cloud, self.template.clone(), cfg).with_pool(pool),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(Controller::new(reconciler).run(cancel.clone()));
        self.controller = Some((cancel, task));
    }

    /// Stops the controller and the API.
    pub async fn stop(mut self) {
        if let Some((cancel, task)) = self.controller.take() {
            cancel.cancel();
            let _ = task.await;
        }
        self.server.abort();
    }

    /// `POST /v1/dispatch` for a deploy; returns when the daemon answered.
    pub async fn dispatch(&self, branch: &str, commit: &str) -> anyhow::Result<()> {
        dispatch(&self.client, self.addr, branch, commit).await
    }

    /// Waits until every key is Ready at `generation`; returns, per key,
    /// when it was first seen so (polled every `poll`), from `since`.
    pub async fn wait_ready(
        &self,
        keys: &[PreviewKey],
        generation: i64,
        since: Instant,
        within: Duration,
    ) -> anyhow::Result<Vec<Duration>> {
        wait_ready(self.store.as_ref(), keys, generation, since, within).await
    }
}

/// One deploy through the HTTP API.
pub async fn dispatch(
    client: &reqwest::Client,
    addr: SocketAddr,
    branch: &str,
    commit: &str,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "action": "deploy", "branch": branch, "commit_sha": commit, "ai_run_id": "bench",
    });
    let resp = client
        .post(format!("http://{addr}/v1/dispatch"))
        .json(&body)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!(
            "dispatch {branch}: {} {}",
            resp.status(),
            resp.text().await?
        );
    }
    Ok(())
}

/// How often the harness looks at the table while waiting.
pub const POLL: Duration = Duration::from_millis(100);

/// See [`Daemon::wait_ready`].
pub async fn wait_ready(
    store: &dyn Store,
    keys: &[PreviewKey],
    generation: i64,
    since: Instant,
    within: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let wanted: std::collections::HashSet<&PreviewKey> = keys.iter().collect();
    let mut seen: HashMap<PreviewKey, Duration> = HashMap::new();
    let deadline = since + within;
    let mut next_note = Instant::now() + NOTE_EVERY;
    while seen.len() < keys.len() {
        if Instant::now() >= next_note {
            next_note += NOTE_EVERY;
            note_progress(store, seen.len(), keys.len(), since).await;
        }
        let ready = store
            .list(&ListFilter {
                phase: Some(Phase::Ready),
                ..Default::default()
            })
            .await?;
        let at = since.elapsed();
        for p in ready {
            if p.status.observed_generation >= generation && wanted.contains(&p.key) {
                seen.entry(p.key).or_insert(at);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} previews Ready within {within:?}",
                seen.len(),
                keys.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    keys.iter()
        .map(|k| seen.get(k).copied().context("a key not in the run"))
        .collect()
}

/// How often a long wait says where it stands (on stderr).
const NOTE_EVERY: Duration = Duration::from_secs(30);

/// One line on stderr: how many are Ready, and the commonest messages of
/// the others.
async fn note_progress(store: &dyn Store, ready: usize, of: usize, since: Instant) {
    let Ok(rows) = store.list(&ListFilter::default()).await else {
        return;
    };
    let mut why: HashMap<String, usize> = HashMap::new();
    for p in rows.iter().filter(|p| p.status.phase != Phase::Ready) {
        let m = p.status.message.clone().unwrap_or_default();
        let m: String = m.chars().take(60).collect();
        *why.entry(format!("{}: {m}", p.status.phase)).or_default() += 1;
    }
    let mut why: Vec<_> = why.into_iter().collect();
    why.sort_by_key(|w| std::cmp::Reverse(w.1));
    why.truncate(3);
    eprintln!(
        "  … {:.0} s: {ready} of {of} Ready; others: {why:?}",
        since.elapsed().as_secs_f64()
    );
}

/// Branch `i` of a run, with an issue number so hosts look like QA Note's.
/// Four digits, so no preview's name is a prefix of another's (a prefix
/// listing for one preview then matches only that preview).
pub fn branch(i: usize) -> String {
    format!("qanote/issue-{}", 1000 + i)
}

pub fn key(i: usize) -> PreviewKey {
    PreviewKey::new(PROJECT, &branch(i)).expect("a valid branch")
}
