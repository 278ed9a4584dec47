//! Wiring: builds the store, the cloud, the controller and the API from the
//! configuration and runs them until SIGTERM or SIGINT.

use crate::config::{CloudKind, Config};
use anyhow::Context;
use previewd_api::{AppState, app};
use previewd_controller::{Cloud, Controller, ControllerConfig, Reconciler};
use previewd_core::ports::Store;
use previewd_sim::{Sim, SimConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    previewd_store::open(&cfg.store.url).await.with_context(|| {
        format!(
            "store.url: cannot open {}",
            crate::redact_url(&cfg.store.url)
        )
    })
}

pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    open_store(cfg).await?;
    println!(
        "migrations applied to {}",
        crate::redact_url(&cfg.store.url)
    );
    Ok(())
}

fn cloud(cfg: &Config) -> anyhow::Result<Cloud> {
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
                listener_arn: cfg.cloud.listener_arn.clone(),
                region: cfg.cloud.region.clone(),
                cluster: cfg.cloud.cluster.clone(),
                zone_name: cfg.naming.domain.clone(),
                ..SimConfig::default()
            });
            Ok(Cloud::from_one(sim))
        }
        CloudKind::Aws => anyhow::bail!("cloud.kind: \"aws\" is not available in this build yet"),
    }
}

fn controller_config(cfg: &Config) -> ControllerConfig {
    let c = &cfg.controller;
    ControllerConfig {
        workers: c.workers,
        resync_interval: Duration::from_secs(c.resync_interval_secs),
        progress_interval: Duration::from_millis(c.progress_interval_ms),
        poll_interval: Duration::from_millis(c.poll_interval_ms),
        ..ControllerConfig::default()
    }
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
    let store = open_store(&cfg).await?;
    let template = Arc::new(cfg.template());
    let wake = Arc::new(Notify::new());
    let reconciler = Arc::new(Reconciler::new(
        store.clone(),
        cloud(&cfg)?,
        template.clone(),
        controller_config(&cfg),
    ));
    let state = AppState {
        store,
        naming: cfg.naming.clone(),
        project: cfg.previews.project.clone(),
        url_scheme: cfg.container.url_scheme.clone(),
        wake: wake.clone(),
        api_token: token.map(|t| Arc::from(t.expose())),
        ttl: Duration::from_secs(cfg.previews.ttl_hours * 3600),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("server.listen: cannot bind {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, store = %crate::redact_url(&cfg.store.url), "previewd listening");

    let cancel = CancellationToken::new();
    let controller = tokio::spawn(Controller::new(reconciler, wake).run(cancel.child_token()));
    let shutdown = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        shutdown.cancel();
    });
    let server_cancel = cancel.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { server_cancel.cancelled().await })
        .await
        .context("HTTP server failed")?;
    controller.await.context("controller task panicked")?;
    tracing::info!("previewd stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
