//! The HTTP server loop: hyper's HTTP/1.1 connections with a header-read
//! timeout, a cap on open connections and a whole-request timeout, so that
//! clients that send nothing, or a byte at a time, cannot hold sockets
//! until the daemon runs out of descriptors.
//!
//! # Guarantees
//! - A connection that has not sent a whole request head within
//!   `header_read_timeout` is closed; hyper starts that clock as soon as it
//!   waits for a head, so it also closes idle keep-alive connections.
//! - At most `max_connections` connections are open at once; further ones
//!   wait in the kernel's accept backlog, which costs no descriptor.
//! - A request (its body included) that takes longer than
//!   `request_timeout` is answered 408.
//! - On shutdown, accepting stops and open connections finish the request
//!   under way.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The limits every listener is served with (config `server.*`).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Until a whole request head has arrived (and between keep-alive
    /// requests).
    pub header_read_timeout: Duration,
    /// One request from its head to the end of its response's head.
    pub request_timeout: Duration,
    /// Connections open at once, per listener.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

impl ServerLimits {
    /// At most half the process's open-file limit, so that the store, AWS
    /// and the other listener always have descriptors left.
    pub fn capped_by_file_limit(mut self, open_files: Option<u64>) -> Self {
        if let Some(limit) = open_files {
            let half = usize::try_from(limit / 2).unwrap_or(usize::MAX).max(1);
            self.max_connections = self.max_connections.min(half);
        }
        self
    }
}

/// The soft `RLIMIT_NOFILE` of this process, read from `/proc/self/limits`
/// (there is no safe libc call, and `unsafe` is forbidden here).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// open connections finish their request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    // The timeout's bare 408 gets the JSON shape of every other refusal.
    let router = router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn(crate::error::json_refusals));
    run(listener, router, limits, shutdown).await;
}

/// [`serve`] for a router whose answers are not the API's: with the same
/// limits, but its refusals left as they are (the waker's empty 404, its
/// 503 with `Retry-After`).
pub async fn serve_as_is(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    run(listener, router, limits, shutdown).await;
}

async fn run(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room above the API's own limits (crate::limits), so that a
        // request just over them gets the JSON refusal, not hyper's bare one.
        .max_buf_size(64 * 1024)
        .max_headers(200);
    let mut accept_errors = crate::limits::Throttle::new(Duration::from_secs(10));
    loop {
        let slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or the peer gave up: wait a moment
                    // rather than spin, and say so now and then.
                    if accept_errors.allow() {
                        tracing::warn!(error = %e, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            },
        ));
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's doing (a timeout, a reset, a
            // malformed head); hyper has answered what could be answered.
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
