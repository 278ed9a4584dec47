//! Reports through the daemon: a fake GitHub and a callback receiver on
//! 127.0.0.1 see exactly the deployment, statuses and signed callbacks.

use crate::*;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use previewd_controller::Deliverer;
use previewd_github::{
    Auth, CallbackClient, CallbackConfig, CallbackPolicy, GithubClient, GithubConfig,
    GithubReporter, Secret,
};
use previewd_sim::SimConfig;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

const CALLBACK_SECRET: &str = "callback-secret";

/// Every request a fake server received: path, headers, body.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, HeaderMap, Value)>>,
    /// Answer 500 to this many status posts first.
    fail_statuses: AtomicUsize,
}

type Shared = Arc<Recorder>;

async fn deployments(
    State(r): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let mut seen = r.seen.lock().unwrap();
    // Ids count up from 4242, one per deployment made.
    let id = 4242 + seen.iter().filter(|s| s.0 == "deployments").count();
    seen.push((
        "deployments".into(),
        headers,
        serde_json::from_str(&body).unwrap(),
    ));
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "sha": "x" })),
    )
}

async fn statuses(
    State(r): State<Shared>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let failing = r.fail_statuses.load(Ordering::SeqCst);
    if failing > 0 {
        r.fail_statuses.store(failing - 1, Ordering::SeqCst);
        return (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({ "message": "Server Error" })),
        );
    }
    r.seen.lock().unwrap().push((
        format!("statuses/{id}"),
        headers,
        serde_json::from_str(&body).unwrap(),
    ));
    (StatusCode::CREATED, axum::Json(json!({ "id": 1 })))
}

async fn hook(State(r): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    r.seen
        .lock()
        .unwrap()
        .push(("callback".into(), headers, json!({ "raw": body })));
    StatusCode::OK
}

/// A second callback receiver, for a destroy that names its own.
async fn gone(State(r): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    r.seen
        .lock()
        .unwrap()
        .push(("gone".into(), headers, json!({ "raw": body })));
    StatusCode::OK
}

async fn fake_servers() -> (Shared, String) {
    let r: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/repos/acme/shop/deployments", post(deployments))
        .route("/repos/acme/shop/deployments/{id}/statuses", post(statuses))
        .route("/hook", post(hook))
        .route("/gone", post(gone))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, base)
}

fn start_deliverer(
    app: &TestApp,
    base: &str,
    owner: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let mut gh = GithubConfig::new("acme", "shop", Auth::Token(Secret::new("ghp_test")));
    gh.api_url = base.to_string();
    let policy = CallbackPolicy::new(["127.0.0.1:*"]).unwrap();
    let reporter = GithubReporter {
        github: Some(GithubClient::new(gh).unwrap()),
        callbacks: Some(
            CallbackClient::new(CallbackConfig::new(Secret::new(CALLBACK_SECRET), policy)).unwrap(),
        ),
        by_project: Default::default(),
    };
    let d = Deliverer {
        store: app.store.clone(),
        reporter: Arc::new(reporter),
        owner: owner.into(),
        lease: Duration::from_secs(5),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
    };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(d.run(Arc::new(tokio::sync::Notify::new()), cancel.clone()));
    (cancel, task)
}

async fn wait_for_seen(r: &Recorder, what: impl Fn(&[(String, HeaderMap, Value)]) -> bool) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !what(&r.seen.lock().unwrap()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not seen: {:?}",
            r.seen
                .lock()
                .unwrap()
                .iter()
                .map(|s| (&s.0, &s.2))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn states(seen: &[(String, HeaderMap, Value)]) -> Vec<String> {
    seen.iter()
        .filter(|s| s.0.starts_with("statuses/"))
        .map(|s| s.2["state"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn deploy_and_destroy_reach_github_and_the_callback() {
    let (rec, base) = fake_servers().await;
    let app = spawn_app(SimConfig::default(), None).await;
    let _deliverer = start_deliverer(&app, &base, "d1");
    let body = json!({"action": "deploy", "branch": "qanote/issue-42", "commit_sha": "4f2a9c1", "ai_run_id": "run-7", "callback_url": format!("{base}/hook")});
    let (status, _) = app.api.post("/v1/dispatch", body).await;
    assert_eq!(status, 202);
    app.api
        .wait_for("qanote/issue-42", WITHIN, phase_is("Ready", 1))
        .await;
    wait_for_seen(&rec, |s| {
        states(s).last().map(String::as_str) == Some("success")
    })
    .await;
    {
        let seen = rec.seen.lock().unwrap();
        let (_, headers, dep) = &seen[0];
        assert_eq!(seen[0].0, "deployments");
        assert_eq!(dep["ref"], "4f2a9c1");
        assert_eq!(dep["environment"], "preview/qanote-issue-42");
        assert_eq!(
            (
                dep["transient_environment"].clone(),
                dep["production_environment"].clone()
            ),
            (json!(true), json!(false))
        );
        assert_eq!(dep["required_contexts"], json!([]));
        assert_eq!(headers["authorization"], "Bearer ghp_test");
        assert_eq!(headers["x-github-api-version"], "2022-11-28");
        let st = states(&seen);
        assert_eq!(st.first().map(String::as_str), Some("in_progress"));
        let success = seen.iter().find(|s| s.2["state"] == "success").unwrap();
        assert_eq!(success.0, "statuses/4242");
        assert_eq!(
            success.2["environment_url"],
            "https://issue-42-preview.preview.example.com"
        );
        assert_eq!(success.2["auto_inactive"], false);
    }
    wait_for_seen(&rec, |s| s.iter().any(|x| x.0 == "callback")).await;
    app.api
        .post(
            "/v1/dispatch",
            json!({"action": "destroy", "branch": "qanote/issue-42"}),
        )
        .await;
    app.api
        .wait_for("qanote/issue-42", WITHIN, phase_is("Deleted", 2))
        .await;
    wait_for_seen(&rec, |s| {
        states(s).last().map(String::as_str) == Some("inactive")
    })
    .await;
    wait_for_seen(&rec, |s| {
        s.iter().filter(|x| x.0 == "callback").count() == 2
    })
    .await;
    let seen = rec.seen.lock().unwrap();
    assert_eq!(
        seen.iter().filter(|s| s.0 == "deployments").count(),
        1,
        "one deployment for the one generation deployed"
    );
    let inactive = seen.iter().find(|s| s.2["state"] == "inactive").unwrap();
    assert_eq!(
        inactive.0, "statuses/4242",
        "inactive goes to the deployment made"
    );
    let callbacks: Vec<&(String, HeaderMap, Value)> =
        seen.iter().filter(|s| s.0 == "callback").collect();
    for (i, (_, headers, raw)) in callbacks.iter().enumerate() {
        let raw = raw["raw"].as_str().unwrap();
        let sig = headers["x-previewd-signature-256"].to_str().unwrap();
        assert!(
            previewd_github::verify_signature(CALLBACK_SECRET.as_bytes(), raw.as_bytes(), sig),
            "callback {i} is signed"
        );
        assert!(headers.contains_key("idempotency-key"));
        let body: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(body["ai_run_id"], "run-7");
        assert_eq!(body["state"], if i == 0 { "success" } else { "inactive" });
    }
}

#[tokio::test]
async fn a_delivery_that_fails_twice_succeeds_after_a_restart_with_nothing_lost_or_doubled() {
    let (rec, base) = fake_servers().await;
    rec.fail_statuses.store(2, Ordering::SeqCst);
    let app = spawn_app(SimConfig::default(), None).await;
    let (cancel, task) = start_deliverer(&app, &base, "d1");
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-5", "abc1234"))
        .await;
    app.api
        .wait_for("qanote/issue-5", WITHIN, phase_is("Ready", 1))
        .await;
    // Two failures happen; then the worker dies and another takes over.
    let deadline = tokio::time::Instant::now() + WITHIN;
    while rec.fail_statuses.load(Ordering::SeqCst) > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    task.abort();
    let _ = task.await;
    let _second = start_deliverer(&app, &base, "d2");
    wait_for_seen(&rec, |s| {
        states(s).last().map(String::as_str) == Some("success")
    })
    .await;
    let seen = rec.seen.lock().unwrap();
    let st = states(&seen);
    assert_eq!(st, ["in_progress", "success"], "each state once, in order");
    assert_eq!(seen.iter().filter(|s| s.0 == "deployments").count(), 1);
}

#[tokio::test]
async fn a_callback_url_outside_the_allowlist_is_refused() {
    let app = spawn_app(SimConfig::default(), None).await;
    let body = json!({"action": "deploy", "branch": "main", "commit_sha": "abc1234", "callback_url": "http://10.0.0.5/steal"});
    let (status, err) = app.api.post("/v1/dispatch", body).await;
    assert_eq!((status, err["field"].as_str()), (422, Some("callback_url")));
    let (_, list) = app.api.get("/v1/previews").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn an_identical_dispatch_retries_a_failed_preview_as_a_new_reported_attempt() {
    let (rec, base) = fake_servers().await;
    let mut app = spawn_app(SimConfig::default(), None).await;
    let _deliverer = start_deliverer(&app, &base, "d1");
    app.sim
        .fail_tasks_of("pv-qanote-issue-8", "CannotPullContainerError: not yet");
    let body = json!({"action": "deploy", "branch": "qanote/issue-8", "commit_sha": "abc1234", "ai_run_id": "run-8", "callback_url": format!("{base}/hook")});
    app.api.post("/v1/dispatch", body.clone()).await;
    app.api
        .wait_for("qanote/issue-8", WITHIN, phase_is("Failed", 1))
        .await;
    // The identical dispatch while the fault lasts: a new attempt, which
    // fails again and is reported again.
    let (status, out) = app.api.post("/v1/dispatch", body.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(
        (out["changed"].clone(), out["generation"].clone()),
        (json!(true), json!(2))
    );
    app.api
        .wait_for("qanote/issue-8", WITHIN, phase_is("Failed", 2))
        .await;
    // The fault cleared, the identical dispatch again: retried, then Ready.
    // The controller is stopped meanwhile, so no recheck of generation 2
    // can heal it first and turn the dispatch into a no-op.
    app.controller.take().unwrap().stop().await;
    app.sim.heal_tasks_of("pv-qanote-issue-8");
    let (_, out) = app.api.post("/v1/dispatch", body.clone()).await;
    assert_eq!(
        (out["changed"].clone(), out["generation"].clone()),
        (json!(true), json!(3))
    );
    app.controller = Some(previewd_tests::RunningController::start(
        app.store.clone(),
        &app.sim,
        Arc::new(previewd_core::render::Template::default()),
        previewd_tests::fast_controller("e2e"),
    ));
    app.api
        .wait_for("qanote/issue-8", WITHIN, phase_is("Ready", 3))
        .await;
    // Ready: the identical dispatch is a no-op again.
    let (_, out) = app.api.post("/v1/dispatch", body).await;
    assert_eq!(
        (out["changed"].clone(), out["generation"].clone()),
        (json!(false), json!(3))
    );
    wait_for_seen(&rec, |s| {
        s.iter().filter(|x| x.0 == "callback").count() == 3
    })
    .await;
    let seen = rec.seen.lock().unwrap();
    assert_eq!(
        seen.iter().filter(|s| s.0 == "deployments").count(),
        3,
        "a deployment for each attempt"
    );
    let callbacks: Vec<String> = seen
        .iter()
        .filter(|s| s.0 == "callback")
        .map(|s| {
            let body: Value = serde_json::from_str(s.2["raw"].as_str().unwrap()).unwrap();
            assert_eq!(body["ai_run_id"], "run-8");
            body["state"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(callbacks, ["failure", "failure", "success"]);
}

#[tokio::test]
async fn a_destroy_with_its_own_run_and_callback_is_reported_there() {
    let (rec, base) = fake_servers().await;
    let app = spawn_app(SimConfig::default(), None).await;
    let _deliverer = start_deliverer(&app, &base, "d1");
    let deploy = json!({"action": "deploy", "branch": "qanote/issue-9", "commit_sha": "abc1234", "ai_run_id": "run-deploy", "callback_url": format!("{base}/hook")});
    app.api.post("/v1/dispatch", deploy).await;
    app.api
        .wait_for("qanote/issue-9", WITHIN, phase_is("Ready", 1))
        .await;
    let destroy = json!({"action": "destroy", "branch": "qanote/issue-9", "ai_run_id": "run-destroy", "callback_url": format!("{base}/gone")});
    let (status, _) = app.api.post("/v1/dispatch", destroy).await;
    assert_eq!(status, 202);
    app.api
        .wait_for("qanote/issue-9", WITHIN, phase_is("Deleted", 2))
        .await;
    wait_for_seen(&rec, |s| s.iter().any(|x| x.0 == "gone")).await;
    let seen = rec.seen.lock().unwrap();
    let hook: Vec<Value> = seen
        .iter()
        .filter(|s| s.0 == "callback")
        .map(|s| serde_json::from_str(s.2["raw"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        hook.len(),
        1,
        "only the deploy's outcome goes to the deploy's callback"
    );
    assert_eq!(
        (hook[0]["ai_run_id"].as_str(), hook[0]["state"].as_str()),
        (Some("run-deploy"), Some("success"))
    );
    let (_, headers, raw) = seen.iter().find(|s| s.0 == "gone").unwrap();
    let raw = raw["raw"].as_str().unwrap();
    let sig = headers["x-previewd-signature-256"].to_str().unwrap();
    assert!(previewd_github::verify_signature(
        CALLBACK_SECRET.as_bytes(),
        raw.as_bytes(),
        sig
    ));
    let body: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(
        (body["ai_run_id"].as_str(), body["state"].as_str()),
        (Some("run-destroy"), Some("inactive"))
    );
    assert_eq!(body["action"], "destroy");
}

#[tokio::test]
async fn a_destroy_naming_a_callback_outside_the_allowlist_is_refused() {
    let app = spawn_app(SimConfig::default(), None).await;
    let body =
        json!({"action": "destroy", "branch": "main", "callback_url": "http://10.0.0.5/steal"});
    let (status, err) = app.api.post("/v1/dispatch", body).await;
    assert_eq!((status, err["field"].as_str()), (422, Some("callback_url")));
}

#[tokio::test]
async fn a_generation_superseded_before_it_was_ready_ends_inactive() {
    let (rec, base) = fake_servers().await;
    let slow = SimConfig {
        target_healthy_after: Duration::from_millis(1500),
        ..SimConfig::default()
    };
    let app = spawn_app(slow, None).await;
    let _deliverer = start_deliverer(&app, &base, "d1");
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-12", "abc1234"))
        .await;
    // Generation 1 is under way on GitHub (deployment 4242, in_progress).
    wait_for_seen(&rec, |s| s.iter().any(|x| x.0 == "statuses/4242")).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-12", "def5678"))
        .await;
    app.api
        .wait_for("qanote/issue-12", WITHIN, phase_is("Ready", 2))
        .await;
    wait_for_seen(&rec, |s| {
        s.iter()
            .any(|x| x.0 == "statuses/4243" && x.2["state"] == "success")
    })
    .await;
    let seen = rec.seen.lock().unwrap();
    let first: Vec<&Value> = seen
        .iter()
        .filter(|s| s.0 == "statuses/4242")
        .map(|s| &s.2)
        .collect();
    let last = first.last().unwrap();
    assert_eq!(last["state"], "inactive", "{first:?}");
    assert_eq!(last["description"], "superseded by generation 2");
    assert!(first.iter().all(|s| s["state"] != "success"), "{first:?}");
}
