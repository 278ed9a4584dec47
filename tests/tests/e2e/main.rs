//! End to end: the real API and controller, SQLite on a temp file, the sim.

mod api;
mod engine;
mod failfast;
mod gc;
mod images;
mod metrics;
mod ownership;
mod pool;
mod projects;
mod queue;
mod reporting;
mod sleep;
mod sleep_pool;
mod status_page;
mod webhooks;

use previewd_api::AppState;
use previewd_core::naming::NamingConfig;
use previewd_core::ports::Store;
use previewd_core::render::Template;
use previewd_sim::{Sim, SimConfig};
use previewd_tests::{PROJECT, RunningController, TestApi, fast_controller};
use std::sync::Arc;
use std::time::Duration;

pub const ID: &str = "previewd";
pub const WEBHOOK_SECRET: &str = "It's a Secret to Everybody";

pub struct TestApp {
    pub api: TestApi,
    pub sim: Sim,
    pub store: Arc<dyn Store>,
    pub controller: Option<RunningController>,
    _dir: tempfile::TempDir,
}

/// Starts the whole daemon on a fresh SQLite file and a fresh sim.
pub async fn spawn_app(sim_config: SimConfig, token: Option<&str>) -> TestApp {
    spawn_app_with(sim_config, token, |_| {}).await
}

/// Like [`spawn_app`], letting the test preload the sim before start.
pub async fn spawn_app_with(
    sim_config: SimConfig,
    token: Option<&str>,
    setup: impl FnOnce(&Sim),
) -> TestApp {
    spawn_app_templated(sim_config, token, setup, Template::default()).await
}

/// Like [`spawn_app_with`], building previews from `template`.
pub async fn spawn_app_templated(
    sim_config: SimConfig,
    token: Option<&str>,
    setup: impl FnOnce(&Sim),
    template: Template,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/previewd.db", dir.path().display());
    let store = previewd_store::open(&url).await.expect("store opens");
    let sim = Sim::new(sim_config);
    setup(&sim);
    let template = Arc::new(template);
    let controller = RunningController::start(
        store.clone(),
        &sim,
        template.clone(),
        fast_controller("e2e"),
    );
    let api = TestApi::serve(
        AppState {
            store: store.clone(),
            naming: NamingConfig::default(),
            project: PROJECT.into(),
            url_scheme: "https".into(),
            api_token: None,
            lifetime: previewd_core::Lifetime {
                ttl: Duration::from_secs(72 * 3600),
                max_lifetime: Duration::from_secs(14 * 24 * 3600),
            },
            webhook_secret: Some(Arc::from(WEBHOOK_SECRET)),
            callback_policy: Some(Arc::new(
                previewd_github::CallbackPolicy::new(["127.0.0.1:*"]).unwrap(),
            )),
            gc: Some(Arc::new(previewd_controller::GcPreview {
                sweeper: Arc::new(previewd_controller::Sweeper {
                    cloud: previewd_controller::Cloud::from_one(sim.clone()),
                    store: store.clone(),
                    pool: Arc::new(previewd_core::pool::Pool::single(&template)),
                    template: template.clone(),
                    projects: None,
                }),
                options: previewd_controller::SweepOptions {
                    dry_run: false,
                    grace: Duration::from_secs(900),
                    max_deletions: 20,
                },
            })),
            metrics: Some(previewd_api::metrics::install_recorder()),
            status_page: true,
            preview_label: None,
            projects: None,
        },
        token,
    )
    .await;
    TestApp {
        api,
        sim,
        store,
        controller: Some(controller),
        _dir: dir,
    }
}

pub const WITHIN: Duration = Duration::from_secs(10);

pub fn deploy(branch: &str, commit: &str) -> serde_json::Value {
    serde_json::json!({"action": "deploy", "branch": branch, "commit_sha": commit, "ai_run_id": "run-1"})
}

pub fn phase_is(phase: &'static str, generation: i64) -> impl Fn(&serde_json::Value) -> bool {
    move |p| p["phase"] == phase && p["observed_generation"] == generation
}
