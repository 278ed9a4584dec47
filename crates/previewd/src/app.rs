//! Wiring: builds the store, the cloud, the controller and the API from the
//! configuration and runs them until SIGTERM or SIGINT.

use crate::config::{CloudKind, Config};
use anyhow::Context;
use previewd_api::{AppState, Routes};
use previewd_controller::{
    Cloud, Controller, ControllerConfig, Policy, Reconciler, Sweeper, run_sweeps,
};
use previewd_core::limits::{Limits, Pacer};
use previewd_core::ports::Store;
use previewd_sim::{Sim, SimConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[path = "app_sleep.rs"]
mod sleep;

#[path = "app_access.rs"]
mod access;
pub(crate) use access::refuse_plain_listeners;

async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    previewd_store::open(cfg.store_url()?.expose())
        .await
        .with_context(|| format!("opening {}", crate::redact_url(&cfg.store.url)))
}

pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    open_store(cfg).await?;
    println!(
        "migrations applied to {}",
        crate::redact_url(&cfg.store.url)
    );
    Ok(())
}

async fn aws(cfg: &Config) -> previewd_aws::Aws {
    let c = &cfg.cloud;
    let pool = cfg.pool();
    previewd_aws::Aws::connect(previewd_aws::Settings {
        region: Some(c.region.clone()),
        cluster: c.cluster.clone(),
        listener_arn: pool.first().arn.clone(),
        listener_arns: pool.arns().map(str::to_owned).collect(),
        hosted_zone_id: c.hosted_zone_id.clone(),
        call_timeout: Duration::from_secs(c.call_timeout_secs),
    })
    .await
}

/// `previewd doctor`: the configuration against the live account, as a
/// table; false when something would break a deploy.
pub async fn doctor(cfg: &Config) -> anyhow::Result<bool> {
    if cfg.cloud.kind != CloudKind::Aws {
        anyhow::bail!("cloud.kind: the doctor checks a real AWS account; set it to \"aws\"");
    }
    let projects = cfg.project_list();
    let first = &projects[0];
    let input = previewd_aws::doctor::DoctorInput {
        vpc_id: cfg.cloud.vpc_id.clone(),
        subnets: cfg.cloud.subnets.clone(),
        security_groups: cfg.cloud.security_groups.clone(),
        domain: first.naming.domain.clone(),
        log_group_prefix: previewd_core::naming::log_group_prefix(&first.naming.prefix),
        log_retention_days: first.container.log_retention_days,
        scope: cfg.policy_scope(),
        other_projects: projects[1..]
            .iter()
            .map(|p| previewd_aws::doctor::ProjectInput {
                project: p.project.clone(),
                domain: p.naming.domain.clone(),
                log_group_prefix: previewd_core::naming::log_group_prefix(&p.naming.prefix),
                log_retention_days: p.container.log_retention_days,
            })
            .collect(),
        wakers: match cfg.sleep.enabled {
            true => cfg.sleep.waker_target_groups.clone().into_iter().collect(),
            false => Vec::new(),
        },
        protected_projects: cfg.protected_projects(),
    };
    let checks = aws(cfg).await.doctor(&input).await;
    let (table, ok) = previewd_aws::doctor::table(&checks);
    print!("{table}");
    Ok(ok)
}

/// Rows placed before the pool existed go on its first listener (the one
/// the single-listener configuration named); nothing changes in AWS.
pub(crate) async fn adopt_unplaced(
    store: &dyn Store,
    pool: &previewd_core::pool::Pool,
) -> anyhow::Result<()> {
    let first = &pool.first().arn;
    let n = store
        .adopt_unplaced(first)
        .await
        .context("recording pre-pool previews on the pool's first listener")?;
    if n > 0 {
        tracing::info!(
            previews = n,
            listener = %first,
            "previews placed before the listener pool recorded on its first listener"
        );
    }
    Ok(())
}

pub(crate) async fn cloud(cfg: &Config) -> anyhow::Result<Cloud> {
    Ok(cloud_and_sleep(cfg).await?.0)
}

/// The cloud, and what sleep needs of it when `sleep.enabled`.
async fn cloud_and_sleep(cfg: &Config) -> anyhow::Result<(Cloud, Option<sleep::SleepParts>)> {
    match cfg.cloud.kind {
        CloudKind::Sim => {
            tracing::warn!(
                "cloud.kind = \"sim\": previews run on the simulated AWS inside this process; NO AWS resource will be created"
            );
            let s = &cfg.sim;
            let sim = Sim::new(SimConfig {
                latency: Duration::from_millis(s.latency_ms),
                service_stable_after: Duration::from_millis(s.service_stable_after_ms),
                target_healthy_after: Duration::from_millis(s.target_healthy_after_ms),
                drain_after: Duration::from_millis(s.service_stable_after_ms),
                // AWS's own rate limits, so the demo behaves like an account.
                throttling: true,
                // One simulated load balancer per listener of the pool.
                albs: cfg
                    .pool()
                    .listeners
                    .iter()
                    .map(|l| previewd_sim::SimAlb {
                        listener_arn: l.arn.clone(),
                        dns_name: l.alb_dns_name.clone(),
                        zone_id: l.alb_zone_id.clone(),
                        rule_quota: l.rule_quota,
                        foreign: 0,
                    })
                    .collect(),
                region: cfg.cloud.region.clone(),
                cluster: cfg.cloud.cluster.clone(),
                zone_name: cfg.sim_zone(),
                ..SimConfig::default()
            });
            let pacer = pacer(cfg.cloud.api_share_percent);
            sim.set_pacer(Some(pacer.clone()));
            let sleep = match cfg.sleep.enabled {
                // The simulator's own waker target group on each of its
                // load balancers, as the stack would create them.
                true => Some(sleep::SleepParts {
                    metrics: Arc::new(sim.clone()),
                    wakers: previewd_core::sleep::Wakers::new(sim.waker_target_groups()),
                }),
                false => None,
            };
            Ok((Cloud::from_one(sim).paced_by(pacer), sleep))
        }
        CloudKind::Aws => {
            let c = &cfg.cloud;
            let pacer = pacer(c.api_share_percent);
            let aws = aws(cfg).await.with_pacer(pacer.clone());
            let pool = cfg.pool();
            tracing::info!(
                region = %c.region,
                cluster = %c.cluster,
                listeners = pool.listeners.len(),
                first_listener = %pool.first().arn,
                "cloud.kind = \"aws\": previews are real AWS resources"
            );
            let aws = Arc::new(aws);
            let sleep = match cfg.sleep.enabled {
                true => Some(sleep::aws_parts(cfg, aws.clone())),
                false => None,
            };
            Ok((Cloud::from_shared(aws).paced_by(pacer), sleep))
        }
    }
}

/// How often a replica announces itself, so that replicas sharing a
/// database split the API share between them (within three beats of a
/// replica starting or dying).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// previewd's side of AWS's published API limits, at `percent` of each.
fn pacer(percent: u32) -> Arc<Pacer> {
    let limits = Limits::default().scaled(f64::from(percent) / 100.0);
    Arc::new(Pacer::new(limits, tokio::time::Instant::now().into_std()))
}

pub(crate) fn controller_config(cfg: &Config) -> ControllerConfig {
    let c = &cfg.controller;
    ControllerConfig {
        workers: c.workers,
        policy: Policy {
            resync_interval: Duration::from_secs(c.resync_interval_secs),
            progress_interval: Duration::from_millis(c.progress_interval_ms),
            ..Policy::default()
        },
        poll_interval: Duration::from_millis(c.poll_interval_ms),
        shutdown_grace: Duration::from_secs(c.shutdown_grace_secs),
        lease: Duration::from_secs(c.lease_secs),
        replica_id: replica_id(),
        pr_comment: cfg.github.pr_comment,
        ..ControllerConfig::default()
    }
}

/// Unique per process even when every container is PID 1 on a host named
/// alike: leases must never confuse two replicas.
fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let nonce: u32 = rand::random();
    format!(
        "{}-{}-{nonce:08x}",
        if host.is_empty() { "previewd" } else { host },
        std::process::id()
    )
}

fn secret_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub(crate) fn callback_policy(cfg: &Config) -> anyhow::Result<previewd_github::CallbackPolicy> {
    previewd_github::CallbackPolicy::new(&cfg.callbacks.allowed_hosts)
        .map_err(|e| anyhow::anyhow!("callbacks.allowed_hosts: {e}"))
}

/// GitHub statuses when credentials are configured, callbacks when their
/// signing secret is; each is skipped (and says so) otherwise.
pub(crate) fn reporter(cfg: &Config) -> anyhow::Result<previewd_github::GithubReporter> {
    use previewd_github::{
        Auth, CallbackClient, CallbackConfig, GithubClient, GithubConfig, Secret,
    };
    let g = &cfg.github;
    let auth = match (g.app_id, g.installation_id, &g.private_key_file) {
        (Some(app_id), Some(installation_id), Some(file)) => {
            let pem = std::fs::read_to_string(file).with_context(|| {
                format!("github.private_key_file: cannot read {}", file.display())
            })?;
            Some(Auth::App {
                app_id,
                installation_id,
                private_key_pem: Secret::new(pem),
            })
        }
        _ => secret_env("PREVIEWD_GITHUB_TOKEN").map(|t| Auth::Token(Secret::new(t))),
    };
    // One client per project's repository, one set of credentials (a
    // GitHub App must be installed on every one of them).
    let client = |project: &str, auth: Auth| -> anyhow::Result<GithubClient> {
        let Some((owner, repo)) = project.split_once('/') else {
            anyhow::bail!("project {project:?}: must be owner/repo to post GitHub statuses")
        };
        let mut gc = GithubConfig::new(owner, repo, auth);
        gc.api_url = g.api_url.clone();
        GithubClient::new(gc).map_err(|e| anyhow::anyhow!("github ({project}): {e}"))
    };
    let projects = cfg.project_list();
    let mut by_project = std::collections::BTreeMap::new();
    let github = match auth {
        Some(auth) => {
            if projects.len() > 1 {
                for p in &projects {
                    let reporter = previewd_github::GithubReporter {
                        github: Some(client(&p.project, auth.clone())?),
                        callbacks: None,
                        by_project: Default::default(),
                    };
                    by_project.insert(p.project.to_ascii_lowercase(), reporter);
                }
            }
            Some(client(&projects[0].project, auth)?)
        }
        None => {
            tracing::warn!(
                "no GitHub credentials (PREVIEWD_GITHUB_TOKEN or a GitHub App): deployment statuses are not posted"
            );
            None
        }
    };
    let callbacks = match secret_env("PREVIEWD_CALLBACK_SECRET") {
        Some(s) => Some(
            CallbackClient::new(CallbackConfig::new(Secret::new(s), callback_policy(cfg)?))
                .map_err(|e| anyhow::anyhow!("callbacks: {e}"))?,
        ),
        None => {
            tracing::warn!(
                "no PREVIEWD_CALLBACK_SECRET: callbacks cannot be signed and are not sent"
            );
            None
        }
    };
    Ok(previewd_github::GithubReporter {
        github,
        callbacks,
        by_project,
    })
}

/// `previewd gc`: one sweep (or a dry run of one) against the configured
/// cloud and store, printed as a table.
pub async fn gc(cfg: &Config, dry_run: bool) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    let template = Arc::new(cfg.template());
    cfg.refuse_unknown_projects(store.as_ref()).await?;
    let s = Sweeper {
        cloud: cloud(cfg).await?,
        store,
        template,
        pool: Arc::new(cfg.pool()),
        projects: Some(Arc::new(cfg.projects_served())),
    };
    let report = s
        .sweep(&cfg.sweep_options(dry_run), chrono::Utc::now())
        .await?;
    print!("{}", report.to_table(cfg.gc.grace_secs));
    if report.braked || !report.errors.is_empty() {
        anyhow::bail!("the sweep did not finish cleanly (see above)");
    }
    Ok(())
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let token = cfg.api_token()?;
    let listen = cfg.server.listen;
    if token.is_none() && !listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {listen} without an API token: set PREVIEWD_API_TOKEN (or server.api_token_file), or listen on 127.0.0.1 only"
        );
    }
    if token.is_none() {
        tracing::warn!(%listen, "no API token configured: /v1 is open to anyone on this machine (loopback only)");
    }
    let limits = server_limits(&cfg);
    // Before anything records: a metric recorded earlier would be lost.
    let metrics_handle = previewd_api::metrics::install_recorder();
    // Before anything is created: AWS would refuse every protected rule.
    refuse_plain_listeners(&cfg).await?;
    let store = open_store(&cfg).await?;
    cfg.refuse_unknown_projects(store.as_ref()).await?;
    let template = Arc::new(cfg.template());
    let pool = Arc::new(cfg.pool());
    adopt_unplaced(store.as_ref(), &pool).await?;
    let projects = Arc::new(cfg.projects_served());
    let (cloud, sleep_parts) = cloud_and_sleep(&cfg).await?;
    let pacer = cloud.pacer.clone();
    let mut controller_cfg = controller_config(&cfg);
    if let Some(s) = &sleep_parts {
        controller_cfg.wakers = s.wakers.clone();
    }
    let replica = controller_cfg.replica_id.clone();
    let store_for_share = store.clone();
    let reconciler = Arc::new(
        Reconciler::new(
            store.clone(),
            cloud.clone(),
            template.clone(),
            controller_cfg,
        )
        .with_pool(pool.clone())
        .with_projects(projects.clone()),
    );
    let sweeps = Arc::new(Sweeper {
        cloud,
        store: store.clone(),
        template: template.clone(),
        pool,
        projects: Some(projects.clone()),
    });
    let store_for_outbox = store.clone();
    let wakeups = store.wakeups();
    // The single-project fields; `projects` is what the API serves.
    let first = cfg.project_list().remove(0);
    let state = AppState {
        store,
        naming: first.naming.clone(),
        project: first.project.clone(),
        url_scheme: first.container.url_scheme.clone(),
        api_token: token,
        lifetime: crate::config::lifetime_of(&first.previews),
        gc: Some(Arc::new(previewd_controller::GcPreview {
            sweeper: sweeps.clone(),
            options: cfg.sweep_options(false),
        })),
        webhook_secret: secret_env("PREVIEWD_GITHUB_WEBHOOK_SECRET").map(Arc::from),
        callback_policy: Some(Arc::new(callback_policy(&cfg)?)),
        metrics: Some(metrics_handle.clone()),
        status_page: cfg.server.status_page,
        preview_label: cfg.github.preview_label.clone(),
        projects: Some(projects),
    };
    let reporter = Arc::new(reporter(&cfg)?);
    let signal = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("server.listen: cannot bind {listen}"))?;
    let internal = match cfg.server.internal_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("server.internal_listen: cannot bind {addr}"))?,
        ),
        None => None,
    };
    // The pages publish every branch, commit and AWS error: on the public
    // listener only when that is loopback and no internal one is set.
    let pages_on_public = internal.is_none() && listen.ip().is_loopback();
    if internal.is_none() && !pages_on_public {
        tracing::warn!(%listen, "the status pages and /metrics are not served: set server.internal_listen to an address only the VPC reaches");
    }
    let public_router = previewd_api::router(
        state.clone(),
        Routes {
            api: true,
            pages: pages_on_public,
        },
        listen.ip().is_loopback(),
    );
    if let Some(l) = &internal {
        let addr = l.local_addr()?;
        tracing::info!(addr = %addr, max_connections = limits.max_connections, "status pages and /metrics listening");
    }
    tracing::info!(addr = %listener.local_addr()?, store = %crate::redact_url(&cfg.store.url), max_connections = limits.max_connections, "previewd listening");

    let cancel = CancellationToken::new();
    let reported = reconciler.reported.clone();
    // Other replicas' writes wake this one at once (PostgreSQL only);
    // this process's own writes wake it through the store directly.
    let wake_loop = tokio::spawn(previewd_store::wake_on_writes(
        cfg.store.url.clone(),
        wakeups,
        cancel.child_token(),
    ));
    let sleep_tasks = match sleep_parts {
        Some(parts) => {
            let store = reconciler.store.clone();
            let (r, c) = (reconciler.clone(), cancel.child_token());
            sleep::start(&cfg, parts, r, store, limits, c).await?
        }
        None => Vec::new(),
    };
    let mut controller = tokio::spawn(Controller::new(reconciler).run(cancel.child_token()));
    let deliverer = previewd_controller::Deliverer {
        store: store_for_outbox,
        reporter,
        owner: format!("outbox-{}", replica_id()),
        lease: Duration::from_secs(60),
        backoff_base: Duration::from_secs(2),
        backoff_max: Duration::from_secs(600),
        poll_interval: Duration::from_secs(1),
    };
    let delivery_loop = tokio::spawn(deliverer.run(reported, cancel.child_token()));
    let sweep_loop = tokio::spawn(run_sweeps(
        sweeps,
        cfg.sweep_options(false),
        cfg.gc_interval(),
        cancel.child_token(),
    ));
    let upkeep = tokio::spawn(metrics_upkeep(metrics_handle, cancel.child_token()));
    // Replicas on one database split `cloud.api_share_percent` between them.
    let share_loop = pacer.map(|pacer| {
        tokio::spawn(previewd_controller::share_rate_limits(
            store_for_share,
            pacer,
            replica,
            cfg.cloud.api_share_percent,
            HEARTBEAT_EVERY,
            cancel.child_token(),
        ))
    });
    let shutdown = cancel.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutdown requested");
        shutdown.cancel();
    });
    let internal_server = internal.map(|l| {
        let loopback = l.local_addr().is_ok_and(|a| a.ip().is_loopback());
        let router = previewd_api::router(
            state.clone(),
            Routes {
                api: false,
                pages: true,
            },
            loopback,
        );
        tokio::spawn(previewd_api::server::serve(
            l,
            router,
            limits,
            cancel.child_token(),
        ))
    });
    let mut server = tokio::spawn(previewd_api::server::serve(
        listener,
        public_router,
        limits,
        cancel.child_token(),
    ));
    // If the controller dies the daemon must not keep accepting work it
    // will never do: stop everything and fail. On a signal, everything
    // drains: the server stops accepting, passes under way finish.
    let failure = tokio::select! {
        // A shutdown ends the server and the controller too: ask first.
        biased;
        _ = cancel.cancelled() => None,
        served = &mut server => Some(format!("the HTTP server stopped: {served:?}")),
        ended = &mut controller => Some(format!("the controller stopped unexpectedly: {:?}", ended.err())),
    };
    cancel.cancel();
    if let Some(why) = failure {
        anyhow::bail!(why);
    }
    server.await.context("HTTP server task panicked")?;
    if let Some(s) = internal_server {
        s.await.context("internal HTTP server task panicked")?;
    }
    controller.await.context("controller task panicked")?;
    let _ = sweep_loop.await;
    let _ = delivery_loop.await;
    let _ = wake_loop.await;
    let _ = upkeep.await;
    if let Some(share) = share_loop {
        let _ = share.await;
    }
    for task in sleep_tasks {
        let _ = task.await;
    }
    tracing::info!("previewd stopped");
    Ok(())
}

/// The HTTP limits of `server.*`, the connection cap held under half the
/// process's open-file limit.
fn server_limits(cfg: &Config) -> previewd_api::server::ServerLimits {
    let s = &cfg.server;
    previewd_api::server::ServerLimits {
        header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
        request_timeout: Duration::from_secs(s.request_timeout_secs),
        max_connections: s.max_connections,
    }
    .capped_by_file_limit(previewd_api::server::open_file_limit())
}

/// Drains the recorder's histogram buffers now and then, so they stay
/// small even when nothing scrapes `/metrics` (a scrape drains them too).
async fn metrics_upkeep(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal that comes
/// right after start-up is not lost) and resolves when either arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
