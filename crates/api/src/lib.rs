//! previewd's HTTP API: the dispatch contract, the previews resource,
//! health checks, Prometheus metrics and the status page. `app(state)` is a
//! pure function of the state, so tests serve it on `127.0.0.1:0` exactly as
//! `previewd serve` does.
#![forbid(unsafe_code)]

mod auth;
mod dispatch;
mod error;
pub mod metrics;
mod previews;
pub mod status_page;
mod webhook;

pub use dispatch::DispatchRequest;
pub use error::ApiError;
pub use previews::{PreviewView, status_url};

use axum::Router;
use axum::routing::{get, post};
use previewd_core::naming::NamingConfig;
use previewd_core::ports::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub naming: NamingConfig,
    /// The repository this daemon serves previews for.
    pub project: String,
    /// `http` or `https`, for the preview URLs shown before a row is Ready.
    pub url_scheme: String,
    /// Woken after every write so the controller acts at once.
    pub wake: Arc<Notify>,
    /// Bearer token for `/v1/*`; `None` only when listening on loopback.
    pub api_token: Option<Arc<str>>,
    /// How long after its last deploy a preview expires.
    pub ttl: Duration,
    /// No preview outlives its creation by more than this, redeploys or not.
    pub max_lifetime: Duration,
    /// The secret GitHub signs webhooks with; without it the webhook
    /// route answers 503.
    pub webhook_secret: Option<Arc<str>>,
    /// Hosts `callback_url` may point at; `None` allows none.
    pub callback_policy: Option<Arc<previewd_github::CallbackPolicy>>,
    /// Garbage collection, for `GET /v1/gc` (a dry run of the next sweep).
    pub gc: Option<(
        Arc<previewd_controller::Sweeper>,
        previewd_controller::SweepOptions,
    )>,
    /// The Prometheus recorder's handle for `GET /metrics` (see
    /// [`metrics::install_recorder`]); `None` answers 404.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Serve the HTML status page at `/` (config `server.status_page`).
    pub status_page: bool,
}

/// What the next sweep would do, changing nothing.
async fn gc_dry_run(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<previewd_controller::SweepReport>, ApiError> {
    let Some((sweeper, opts)) = &state.gc else {
        return Err(ApiError::invalid(
            "gc",
            "garbage collection is not configured on this daemon",
        ));
    };
    let opts = previewd_controller::SweepOptions {
        dry_run: true,
        ..opts.clone()
    };
    sweeper
        .sweep(&opts, chrono::Utc::now())
        .await
        .map(axum::Json)
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/dispatch", post(dispatch::dispatch))
        .route("/v1/previews", get(previews::list))
        .route("/v1/gc", get(gc_dry_run))
        .route(
            "/v1/previews/{*branch}",
            get(previews::get_one).delete(previews::destroy),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // Read-only and without the bearer token, like the health checks: a
    // person's browser and Prometheus carry none.
    Router::new()
        .route("/", get(status_page::index))
        .route("/previews/{*branch}", get(status_page::detail))
        .route("/metrics", get(metrics::render))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/github/webhook", post(webhook::receive))
        .route("/readyz", get(previews::ready))
        .merge(v1)
        .with_state(state)
}
