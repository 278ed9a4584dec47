//! previewd's HTTP API: the dispatch contract, the previews resource,
//! health checks, Prometheus metrics and the status page, and the server
//! that serves them to hostile clients.
//!
//! Two routers: [`public_app`] (what the outside needs: `/v1` with its
//! token, the signed webhook, health) and [`internal_app`] (the pages and
//! `/metrics`, which publish the fleet, for listeners only the VPC or the
//! machine reaches). [`app`] is both, for loopback and tests. Each is a
//! pure function of the state, so tests serve it on `127.0.0.1:0` exactly
//! as `previewd serve` does.
//!
//! ```text
//!  request ─► json_refusals ─► security headers ─► request_shape ─► browser_guard
//!             (one error shape)                    (414/431)        (415/403)
//!          ─► [loopback_host] ─► router ─► [require_token on /v1] ─► handler
//! ```
#![forbid(unsafe_code)]

mod auth;
mod dispatch;
mod error;
mod guard;
pub mod limits;
pub mod metrics;
mod previews;
pub mod server;
pub mod status_page;
pub mod waker;
mod webhook;

pub use auth::ApiToken;
pub use dispatch::{DispatchRequest, vet_callback};
pub use error::ApiError;
pub use previews::{PreviewView, status_url};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use previewd_core::command::Lifetime;
use previewd_core::naming::NamingConfig;
use previewd_core::ports::Store;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

/// What the handlers share. A handler that changes desired state builds a
/// `previewd_core::Command` and hands it to `store.apply`, which also wakes
/// the controller.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub naming: NamingConfig,
    /// The repository this daemon serves previews for.
    pub project: String,
    /// `http` or `https`, for the preview URLs shown before a row is Ready.
    pub url_scheme: String,
    /// Bearer token for `/v1/*`; `None` only when listening on loopback.
    pub api_token: Option<ApiToken>,
    /// How long a preview lives: `ttl` after its last deploy, never more
    /// than `max_lifetime` after its creation. The store resolves it
    /// against the row it writes.
    pub lifetime: Lifetime,
    /// The secret GitHub signs webhooks with; without it the webhook
    /// route answers 503.
    pub webhook_secret: Option<Arc<str>>,
    /// Hosts `callback_url` may point at; `None` allows none.
    pub callback_policy: Option<Arc<previewd_github::CallbackPolicy>>,
    /// Garbage collection, for `GET /v1/gc` (a dry run of the next sweep).
    pub gc: Option<Arc<dyn previewd_core::gc_report::GcDryRun>>,
    /// The Prometheus recorder's handle for `GET /metrics` (see
    /// [`metrics::install_recorder`]); `None` answers 404.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Serve the HTML status page at `/` (config `server.status_page`).
    pub status_page: bool,
    /// The label that gives a pull request a preview of its head commit
    /// (config `github.preview_label`); `None`: labels change nothing.
    pub preview_label: Option<String>,
    /// Every project served, when configured as a pool (`[[projects]]`);
    /// `None`: the one `project` with `naming`, `url_scheme` and `lifetime`.
    pub projects: Option<Arc<previewd_core::projects::Projects>>,
}

impl AppState {
    /// The projects this daemon serves: the configured pool, or the one
    /// project the single-project fields describe.
    pub fn pool(&self) -> Arc<previewd_core::projects::Projects> {
        if let Some(p) = &self.projects {
            return p.clone();
        }
        let one = previewd_core::projects::Project {
            name: self.project.clone(),
            template: Arc::new(previewd_core::render::Template {
                naming: self.naming.clone(),
                url_scheme: self.url_scheme.clone(),
                ..Default::default()
            }),
            lifetime: self.lifetime,
            retired: false,
        };
        Arc::new(previewd_core::projects::Projects::new(vec![one]).expect("one project is a pool"))
    }

    /// The domain a preview of `project` lives under.
    pub(crate) fn domain_of(&self, project: &str) -> String {
        self.naming_of(project).0.domain
    }

    /// The naming and URL scheme of `project`'s previews.
    pub(crate) fn naming_of(&self, project: &str) -> (NamingConfig, String) {
        self.projects
            .as_ref()
            .and_then(|p| p.template(project))
            .map_or_else(
                || (self.naming.clone(), self.url_scheme.clone()),
                |t| (t.naming.clone(), t.url_scheme.clone()),
            )
    }

    /// Whether several projects are served (views then name theirs).
    pub(crate) fn several(&self) -> bool {
        self.projects.as_ref().is_some_and(|p| p.iter().count() > 1)
    }
}

/// What the next sweep would do, changing nothing.
async fn gc_dry_run(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<previewd_core::gc_report::SweepReport>, ApiError> {
    let Some(gc) = &state.gc else {
        return Err(ApiError::invalid(
            "gc",
            "garbage collection is not configured on this daemon",
        ));
    };
    gc.dry_run(chrono::Utc::now())
        .await
        .map(axum::Json)
        .map_err(ApiError::Unavailable)
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    /// `/v1` (with the bearer token), the webhook and health: what the
    /// public load balancer forwards.
    pub api: bool,
    /// The status page, the per-preview pages and `/metrics`: read-only
    /// and without a token (a browser and Prometheus carry none), so only
    /// for a listener that the VPC or this machine alone reaches.
    pub pages: bool,
}

impl Routes {
    pub const ALL: Routes = Routes {
        api: true,
        pages: true,
    };
}

fn api_routes(state: &AppState) -> Router<AppState> {
    let v1 = Router::new()
        .route(
            "/v1/dispatch",
            post(dispatch::dispatch).layer(DefaultBodyLimit::max(limits::MAX_DISPATCH_BODY)),
        )
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
    // Signed instead of token-checked: GitHub carries no bearer token. The
    // handler reads the body itself, after checking the headers.
    Router::new()
        .route("/v1/github/webhook", post(webhook::receive))
        .merge(v1)
}

fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(status_page::index))
        .route("/previews/{*branch}", get(status_page::detail))
        .route("/metrics", get(metrics::render))
}

/// The router for one listener. `loopback`: the listener is bound to a
/// loopback address, so only loopback `Host` names are served (a
/// DNS-rebinding page's requests carry its own).
pub fn router(state: AppState, routes: Routes, loopback: bool) -> Router {
    let mut router = health();
    if routes.api {
        router = router.merge(api_routes(&state));
    }
    if routes.pages {
        router = router.merge(page_routes());
    }
    let mut router = router
        .fallback(|| async {
            ApiError::refused(axum::http::StatusCode::NOT_FOUND, "path", "no such route")
        })
        .with_state(state)
        .layer(axum::middleware::from_fn(guard::browser_guard));
    if loopback {
        router = router.layer(axum::middleware::from_fn(guard::loopback_host));
    }
    harden(router)
}

/// Every route, no `Host` check: `once` and tests.
pub fn app(state: AppState) -> Router {
    router(state, Routes::ALL, false)
}

fn health() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(previews::ready))
}

/// The layers every router gets, outermost last: request limits, security
/// headers, one error shape, and a panic caught as a 500.
fn harden(router: Router) -> Router {
    router
        .layer(axum::middleware::from_fn(limits::request_shape))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(status_page::content_security_policy()),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(axum::middleware::from_fn(error::json_refusals))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_reply,
        ))
}
