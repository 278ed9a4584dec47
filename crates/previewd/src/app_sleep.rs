//! Wiring of `[sleep]`: the idle check and the waker listener.

use crate::config::Config;
use anyhow::Context;
use previewd_api::server::ServerLimits;
use previewd_api::waker::{WakerState, waker_app};
use previewd_controller::{Reconciler, Sleeper};
use previewd_core::ports::{Metrics, Store};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What sleep needs of the cloud: its request counts, the waker target
/// group of the listener's load balancer, and that load balancer.
pub(crate) struct SleepParts {
    pub metrics: Arc<dyn Metrics>,
    pub waker_target_group: String,
    pub load_balancer: String,
}

/// The load balancer of `cfg.cloud.listener_arn` (`app/<name>/<id>`).
pub(crate) fn load_balancer(cfg: &Config) -> anyhow::Result<String> {
    previewd_core::sleep::load_balancer_of(&cfg.cloud.listener_arn)
        .map(str::to_owned)
        .context("sleep.enabled: cloud.listener_arn is not a listener ARN")
}

/// Sleep's parts on AWS: CloudWatch through the adapter, the waker target
/// group configured for the listener's load balancer.
pub(crate) fn aws_parts(cfg: &Config, aws: Arc<previewd_aws::Aws>) -> anyhow::Result<SleepParts> {
    let load_balancer = load_balancer(cfg)?;
    let waker_target_group = cfg
        .sleep
        .waker_target_groups
        .get(&load_balancer)
        .cloned()
        .with_context(|| {
            format!("sleep.waker_target_groups: no waker target group for {load_balancer}")
        })?;
    Ok(SleepParts {
        metrics: aws,
        waker_target_group,
        load_balancer,
    })
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
    tracing::info!(
        addr = %listener.local_addr()?,
        waker_target_group = %parts.waker_target_group,
        idle_after_secs = s.idle_after_secs,
        "sleep on: idle previews scale to zero; the waker is listening"
    );
    let router = waker_app(WakerState {
        store,
        naming: cfg.naming.clone(),
        retry_after: std::time::Duration::from_secs(s.retry_after_secs),
    });
    let sleeper = Sleeper {
        reconciler,
        metrics: parts.metrics,
        load_balancer: parts.load_balancer,
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
