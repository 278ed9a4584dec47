//! `GET /metrics` on a running daemon, read with a real Prometheus
//! text-format parser.
//!
//! The recorder is global to the process. nextest (the project's runner)
//! runs every test in a process of its own, so the counts this test makes
//! exact are its own; the gauges come from the table and are exact anyway.

use crate::*;
use async_trait::async_trait;
use previewd_controller::{Deliverer, SweepOptions, Sweeper};
use previewd_core::outbox_report::{CallbackBody, StatusStep};
use previewd_core::ports::{ReportError, Reporter};
use previewd_sim::SimConfig;
use prometheus_parse::{Scrape, Value};

/// Accepts every GitHub call and refuses every callback for good.
struct GithubOnly;

#[async_trait]
impl Reporter for GithubOnly {
    fn reports_to_github(&self) -> bool {
        true
    }
    async fn create_deployment(&self, _: &str, _: &str, _: &str) -> Result<i64, ReportError> {
        Ok(7)
    }
    async fn deployment_status(&self, _: i64, _: &StatusStep) -> Result<(), ReportError> {
        Ok(())
    }
    async fn callback(&self, _: &str, _: &CallbackBody, _: &str) -> Result<(), ReportError> {
        Err(ReportError {
            retryable: false,
            retry_after: None,
            message: "410 Gone".into(),
        })
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    // No bearer token: Prometheus carries none.
    let resp = app
        .api
        .client
        .get(app.api.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = resp.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
        .collect();
    assert_eq!(hits.len(), 1, "{metric}{labels:?}: {hits:?}");
    match &hits[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric} is not a number: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_reconciles_phases_aws_calls_deliveries_and_sweeps() {
    let app = spawn_app(
        SimConfig::default(),
        Some("s3cret-token-for-the-e2e-tests-0001"),
    )
    .await;
    for (branch, commit) in [("qanote/issue-1", "aaa1111"), ("qanote/issue-2", "bbb2222")] {
        let mut body = deploy(branch, commit);
        body["callback_url"] = "http://127.0.0.1:9/done".into();
        assert_eq!(app.api.post("/v1/dispatch", body).await.0, 202);
    }
    for branch in ["qanote/issue-1", "qanote/issue-2"] {
        app.api.wait_for(branch, WITHIN, phase_is("Ready", 1)).await;
    }
    let deliverer = Deliverer {
        store: app.store.clone(),
        reporter: Arc::new(GithubOnly),
        owner: "metrics-test".into(),
        lease: Duration::from_secs(30),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        poll_interval: Duration::from_millis(10),
    };
    while deliverer.deliver_due(chrono::Utc::now()).await.unwrap() > 0 {}
    previewd_tests::plant_orphans(&app.sim, ID, "ghost").await;
    let sweeper = Sweeper {
        cloud: previewd_controller::Cloud::from_one(app.sim.clone()),
        store: app.store.clone(),
        template: Arc::new(previewd_core::render::Template::default()),
        pool: Arc::new(previewd_core::pool::Pool::single(&Default::default())),
        projects: None,
    };
    let opts = SweepOptions {
        dry_run: false,
        grace: Duration::ZERO,
        max_deletions: 20,
    };
    let swept = sweeper.sweep(&opts, chrono::Utc::now()).await.unwrap();
    assert_eq!(swept.deleted, 4, "{swept:?}");

    let s = scrape(&app).await;
    assert!(value(&s, "previewd_reconciles_total", &[("result", "ok")]) >= 2.0);
    assert_eq!(value(&s, "previewd_previews", &[("phase", "Ready")]), 2.0);
    for phase in ["Pending", "Provisioning", "Failed", "Deleting", "Deleted"] {
        assert_eq!(value(&s, "previewd_previews", &[("phase", phase)]), 0.0);
    }
    let create_service = [
        ("service", "ecs"),
        ("operation", "CreateService"),
        ("outcome", "ok"),
    ];
    assert_eq!(value(&s, "previewd_aws_calls_total", &create_service), 2.0);
    // Both Ready rows wait for their resync; none is due yet.
    assert_eq!(value(&s, "previewd_queue_depth", &[]), 0.0);
    // Two reports each (Provisioning, Ready), all handled.
    assert_eq!(value(&s, "previewd_outbox_backlog", &[]), 0.0);
    assert_eq!(value(&s, "previewd_outbox_oldest_age_seconds", &[]), 0.0);
    let github_ok = [("target", "github"), ("outcome", "ok")];
    assert_eq!(value(&s, "previewd_deliveries_total", &github_ok), 4.0);
    let refused = [("target", "callback"), ("outcome", "refused")];
    assert_eq!(value(&s, "previewd_deliveries_total", &refused), 2.0);
    for kind in [
        "dns-records",
        "target-group",
        "task-definitions",
        "log-group",
    ] {
        let labels = [("kind", kind)];
        assert_eq!(value(&s, "previewd_sweep_deletions_total", &labels), 1.0);
    }
    // The histogram saw every pass the counter saw, each under 90 s.
    let passes: f64 = s
        .samples
        .iter()
        .filter(|x| x.metric == "previewd_reconciles_total")
        .map(|x| match x.value {
            Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    let Some(Value::Histogram(buckets)) = s
        .samples
        .iter()
        .find(|x| x.metric == "previewd_reconcile_duration_seconds")
        .map(|x| &x.value)
    else {
        panic!("no reconcile duration histogram");
    };
    let le_90 = buckets.iter().find(|b| b.less_than == 90.0).unwrap();
    assert_eq!(le_90.count, passes);
    assert!(s.docs.contains_key("previewd_aws_calls_total"));
}

#[tokio::test]
async fn metrics_and_the_status_page_need_no_token_but_v1_does() {
    let app = spawn_app(
        SimConfig::default(),
        Some("s3cret-token-for-the-e2e-tests-0001"),
    )
    .await;
    let get = |path: &str| app.api.client.get(app.api.url(path)).send();
    assert_eq!(get("/metrics").await.unwrap().status(), 200);
    assert_eq!(get("/").await.unwrap().status(), 200);
    assert_eq!(get("/v1/previews").await.unwrap().status(), 401);
}
