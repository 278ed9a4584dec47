//! Wiring of `[sleep]`: the idle check and the waker listener.

use crate::config::Config;
use anyhow::Context;
use previewd_api::server::ServerLimits;
use previewd_api::waker::{WakerState, waker_app};
use previewd_controller::{Reconciler, Sleeper};
use previewd_core::ports::{Metrics, Store};
use previewd_core::sleep::Wakers;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What sleep needs of the cloud: its request counts, and the waker
/// target group of each load balancer of the pool.
pub(crate) struct SleepParts {
    pub metrics: Arc<dyn Metrics>,
    pub wakers: Wakers,
}

/// Sleep's parts on AWS: CloudWatch through the adapter, the waker target
/// groups configured (`sleep.waker_target_groups`). A listener whose load
/// balancer has none keeps its previews awake; `config check` warns of it.
pub(crate) fn aws_parts(cfg: &Config, aws: Arc<previewd_aws::Aws>) -> SleepParts {
    SleepParts {
        metrics: aws,
        wakers: Wakers::new(cfg.sleep.waker_target_groups.clone()),
    }
}

/// Binds the waker listener and starts it and the idle check.
pub(crate) async fn start(
    cfg: &Config,
    parts: SleepParts,
    reconciler: Arc<Reconciler>,
    store: Arc<dyn Store>,
    limits: ServerLimits,
    cancel: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let s = &cfg.sleep;
    let listener = tokio::net::TcpListener::bind(s.waker_listen)
        .await
        .with_context(|| format!("sleep.waker_listen: cannot bind {}", s.waker_listen))?;
    let unserved = parts.wakers.unserved(&reconciler.pool);
    if !unserved.is_empty() {
        tracing::warn!(
            listeners = ?unserved,
            "sleep.waker_target_groups has no waker for these listeners' load balancers: previews placed there never sleep"
        );
    }
    let wakers: Vec<String> = parts
        .wakers
        .iter()
        .map(|(lb, tg)| format!("{lb}={tg}"))
        .collect();
    tracing::info!(
        addr = %listener.local_addr()?,
        wakers = ?wakers,
        idle_after_secs = s.idle_after_secs,
        "sleep on: idle previews scale to zero; the waker is listening"
    );
    let router = waker_app(WakerState {
        store,
        projects: reconciler.projects.clone(),
        retry_after: std::time::Duration::from_secs(s.retry_after_secs),
    });
    let sleeper = Sleeper {
        reconciler,
        metrics: parts.metrics,
        idle_after: s.idle_after(),
        check_interval: s.check_interval(),
    };
    Ok(vec![
        tokio::spawn(previewd_api::server::serve_as_is(
            listener,
            router,
            limits,
            cancel.child_token(),
        )),
        tokio::spawn(sleeper.run(cancel.child_token())),
    ])
}
