//! The waker: what a sleeping preview's visitors reach (issue 18).
//!
//! A sleeping preview's listener rule forwards to the waker target group,
//! whose one target is this listener (`sleep.waker_listen`, a port of its
//! own). For the host of a preview that is sleeping or waking it wakes the
//! preview (`Command::Wake`) and answers a browser with a page that names
//! the branch, says it is waking and reloads itself, and anything else
//! with 503 and `Retry-After`. Any other host gets an empty 404.
//!
//! One waker serves every load balancer of the pool (each has its own
//! waker target group, all with this listener as their target) and every
//! project: a host is looked up among the sleeping and waking previews of
//! all projects, each spelled with its own project's naming
//! (`previewd_core::sleep::sleeping_at`).
//!
//! # Guarantees
//! - Nothing of the API is served here: one handler answers every path.
//! - The Host header is only compared with previews' hosts, after
//!   `previewd_core::sleep::host_of` accepted it as a host name.
//! - The branch name is escaped (maud escapes what it inserts).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, html};
use previewd_core::command::Command;
use previewd_core::model::{Desired, ListFilter, Preview, Timestamp};
use previewd_core::ports::Store;
use previewd_core::projects::Projects;
use previewd_core::sleep::{self, WakerAnswer};
use std::sync::Arc;
use std::time::Duration;

/// The path the load balancer health-checks the waker on.
pub const HEALTH_PATH: &str = previewd_core::sleep::WAKER_HEALTH_PATH;

/// What the waker needs.
#[derive(Clone)]
pub struct WakerState {
    pub store: Arc<dyn Store>,
    /// The projects served: each preview's host is spelled with its own
    /// project's naming.
    pub projects: Arc<Projects>,
    /// `sleep.retry_after_secs`.
    pub retry_after: Duration,
}

/// The waker's router: the health check, and one handler for the rest.
pub fn waker_app(state: WakerState) -> Router {
    waker_app_at(state, chrono::Utc::now)
}

/// [`waker_app`] stamping its wakes with `clock`: the controller's
/// (`ControllerConfig::clock`), simulated time in a benchmark.
pub fn waker_app_at(state: WakerState, clock: fn() -> Timestamp) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(|| async { "ok" }))
        .fallback(visit)
        .with_state(Waker { state, clock })
}

#[derive(Clone)]
struct Waker {
    state: WakerState,
    clock: fn() -> Timestamp,
}

async fn visit(State(w): State<Waker>, headers: HeaderMap) -> Response {
    let s = &w.state;
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(sleep::host_of)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let found = match sleeping_at(s, &host).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "waker: reading previews failed");
            return unavailable(s.retry_after);
        }
    };
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok());
    let (wake, answer) = sleep::answer(found.as_ref(), accept);
    let Some(p) = found.filter(|_| answer != WakerAnswer::Nothing) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if wake {
        match s
            .store
            .apply(&Command::Wake(p.key.clone()), (w.clock)())
            .await
        {
            Ok(effect) if effect.changed() => {
                metrics::counter!(previewd_core::metrics::WAKES).increment(1);
                tracing::info!(key = %p.key, "a visit woke a sleeping preview");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(key = %p.key, error = %e, "waker: waking failed"),
        }
    }
    match answer {
        WakerAnswer::WaitingPage => waiting_page(&p.key.branch, s.retry_after),
        _ => unavailable(s.retry_after),
    }
}

/// The sleeping (or waking) preview whose host is `host`.
async fn sleeping_at(
    s: &WakerState,
    host: &str,
) -> Result<Option<Preview>, previewd_core::ports::StoreError> {
    let rows = s
        .store
        .list(&ListFilter {
            desired: Some(Desired::Present),
            ..ListFilter::default()
        })
        .await?;
    Ok(sleep::sleeping_at(&rows, &s.projects, host).cloned())
}

fn retry_after(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_secs().max(1))
}

fn unavailable(after: Duration) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, retry_after(after)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        "the preview is waking up; try again shortly\n",
    )
        .into_response()
}

fn waiting_page(branch: &str, after: Duration) -> Response {
    let secs = after.as_secs().max(1);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(secs);
                title { "Waking up the preview" }
            }
            body {
                h1 { "Waking up the preview of " code { (branch) } }
                p { "It was asleep after a while without visitors. It is starting now; this page reloads every " (secs) " seconds until it is ready." }
            }
        }
    };
    (
        StatusCode::OK,
        [
            (header::RETRY_AFTER, retry_after(after)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
        ],
        page.into_string(),
    )
        .into_response()
}
