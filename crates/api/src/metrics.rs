//! `GET /metrics`: the Prometheus text exposition of every metric the
//! process records, with the table-derived gauges read just before.
//!
//! # Why the gauges are read at scrape time
//! Queue depth, previews per phase and the outbox backlog are facts about
//! the table, which every replica shares. Reading them when Prometheus asks
//! costs two queries per scrape (one list, one count), is exact at that
//! moment, and needs no task of its own that would query the database
//! whether anyone looks or not. Every replica reports the same values, so
//! aggregate them with `max`, not `sum`.

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use previewd_core::gauges::TableGauges;
use previewd_core::metrics as names;
use std::sync::OnceLock;

/// The process's one recorder: the `metrics` facade takes a single global
/// recorder, so it is installed once and every caller (the daemon, each
/// test's app in one test process) shares its handle.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder the first time, and returns its handle.
pub fn install_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(names::RECONCILE_DURATION.into()),
                    &names::RECONCILE_BUCKETS,
                )
                .expect("the reconcile buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                // Someone else's recorder came first: /metrics shows only
                // what still reaches ours, which is nothing. Say so.
                tracing::warn!(error = %e, "a metrics recorder was already installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::RECONCILES,
        "Reconcile passes by result (ok, retryable_error, terminal_error, timeout)."
    );
    describe_histogram!(
        names::RECONCILE_DURATION,
        Unit::Seconds,
        "Duration of one reconcile pass, claim to status written."
    );
    describe_gauge!(
        names::QUEUE_DEPTH,
        "Previews due for a reconcile and not held by a live lease."
    );
    describe_gauge!(names::PREVIEWS, "Previews by phase.");
    describe_gauge!(names::PROJECT_PREVIEWS, "Previews by project and phase.");
    describe_counter!(
        names::AWS_CALLS,
        "AWS API requests by service, operation and outcome (ok, throttled or the error's class)."
    );
    describe_counter!(
        names::DELIVERIES,
        "Report deliveries by target (github, callback) and outcome (ok, retry, refused)."
    );
    describe_gauge!(names::OUTBOX_BACKLOG, "Outbox messages not yet delivered.");
    describe_gauge!(
        names::OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest undelivered outbox message (0 when none)."
    );
    describe_counter!(
        names::SWEEP_DELETIONS,
        "Resources deleted by garbage collection, by kind."
    );
    describe_counter!(
        names::SWEEP_EXPIRED,
        "Previews destroyed because they passed their TTL."
    );
    describe_counter!(
        names::LEASE_TAKEOVERS,
        "Claims of a preview whose lease ran out while another replica held it."
    );
    describe_counter!(
        names::AUTH_FAILURES,
        "Requests to /v1 refused for their bearer token, by reason (missing, malformed, empty, wrong)."
    );
}

/// The exposition; 404 when this app was built without metrics.
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled").into_response();
    };
    if let Err(e) = refresh_table_gauges(&state).await {
        // The counters are still worth serving; the gauges keep their
        // last values and the log says why they are stale.
        tracing::warn!(error = %e, "metrics: reading the table for gauges failed");
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Reads the table and sets every gauge, zeros included, so a phase that
/// empties reads 0 rather than its last value; run just before each scrape.
async fn refresh_table_gauges(state: &AppState) -> Result<(), previewd_core::ports::StoreError> {
    use previewd_core::model::{ListFilter, Phase};
    let store = state.store.as_ref();
    let rows = store.list(&ListFilter::default()).await?;
    let outbox = store.outbox_backlog().await?;
    let g = TableGauges::count(&rows, outbox, chrono::Utc::now());
    metrics::gauge!(names::QUEUE_DEPTH).set(g.queue_depth as f64);
    for (phase, n) in Phase::ALL.iter().zip(g.by_phase) {
        metrics::gauge!(names::PREVIEWS, "phase" => phase.as_str()).set(n as f64);
    }
    // Every configured project, zeros included, and any other project
    // rows still hold (one removed from the configuration).
    let mut by_project = g.by_project;
    for p in state.pool().iter() {
        by_project.entry(p.name.clone()).or_default();
    }
    for (project, counts) in by_project {
        for (phase, n) in Phase::ALL.iter().zip(counts) {
            metrics::gauge!(names::PROJECT_PREVIEWS, "project" => project.clone(), "phase" => phase.as_str())
                .set(n as f64);
        }
    }
    metrics::gauge!(names::OUTBOX_BACKLOG).set(g.outbox_backlog as f64);
    metrics::gauge!(names::OUTBOX_OLDEST_AGE).set(g.outbox_oldest_age.as_secs_f64());
    Ok(())
}
