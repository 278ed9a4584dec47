//! The work queue's promises, seen from outside: bounded concurrency and
//! one pass per key at a time, and a write wakes it.

use previewd_controller::{Cloud, Controller, Reconciler};
use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, ListFilter, Phase, PreviewSpec};
use previewd_core::naming::NamingConfig;
use previewd_core::observed::ObservedLogGroup;
use previewd_core::ports::{CloudResult, Logs};
use previewd_core::render::Template;
use previewd_core::tags::Tags;
use previewd_sim::{Sim, SimConfig};
use previewd_tests::{PROJECT, fast_controller};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The sim's log groups, with a slow create that records how many passes
/// are inside it at once, overall and per log group.
struct Gauge {
    sim: Sim,
    now: AtomicUsize,
    max: AtomicUsize,
    per_key: Mutex<BTreeMap<String, usize>>,
    max_per_key: AtomicUsize,
}

#[async_trait::async_trait]
impl Logs for Gauge {
    async fn log_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>> {
        self.sim.log_groups(prefix).await
    }
    async fn log_group_tags(&self, name: &str) -> CloudResult<Option<Tags>> {
        self.sim.log_group_tags(name).await
    }
    async fn create_log_group(&self, name: &str, days: i32, tags: &Tags) -> CloudResult<()> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let k = {
            let mut m = self.per_key.lock().unwrap();
            let k = m.entry(name.to_owned()).or_default();
            *k += 1;
            *k
        };
        self.max_per_key.fetch_max(k, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        *self.per_key.lock().unwrap().get_mut(name).unwrap() -= 1;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.sim.create_log_group(name, days, tags).await
    }
    async fn set_retention(&self, name: &str, days: i32) -> CloudResult<()> {
        self.sim.set_retention(name, days).await
    }
    async fn delete_log_group(&self, name: &str) -> CloudResult<()> {
        self.sim.delete_log_group(name).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_workers_passes_run_at_once_and_never_two_for_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = previewd_store::open(&format!("sqlite://{}/q.db", dir.path().display()))
        .await
        .unwrap();
    let sim = Sim::new(SimConfig::default());
    let gauge = Arc::new(Gauge {
        sim: sim.clone(),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        per_key: Mutex::new(BTreeMap::new()),
        max_per_key: AtomicUsize::new(0),
    });
    let cloud = Cloud {
        logs: gauge.clone(),
        ..Cloud::from_one(sim.clone())
    };
    let config = previewd_controller::ControllerConfig {
        workers: 3,
        ..fast_controller("q")
    };
    let reconciler = Arc::new(Reconciler::new(
        store.clone(),
        cloud,
        Arc::new(Template::default()),
        config,
    ));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Controller::new(reconciler).run(cancel.clone()));
    for i in 0..12 {
        let key = PreviewKey::new(PROJECT, &format!("qanote/issue-{i}")).unwrap();
        let spec = PreviewSpec {
            commit_sha: Some("abc1234".into()),
            ..Default::default()
        };
        let req = DeployRequest {
            key,
            spec,
            expiry: previewd_core::Expiry::Never,
        };
        store
            .apply_deploy(&req, &NamingConfig::default(), chrono::Utc::now())
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = store.list(&ListFilter::default()).await.unwrap();
        if rows.iter().all(|p| p.status.phase == Phase::Ready) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not all Ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(
        gauge.max.load(Ordering::SeqCst),
        3,
        "the worker bound is reached and kept"
    );
    assert_eq!(gauge.max_per_key.load(Ordering::SeqCst), 1);
}

/// Nobody pairs "write, then wake" by hand: the store's write path wakes a
/// controller that would otherwise look again only after a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_applied_to_the_store_wakes_an_idle_controller() {
    use previewd_core::{Command, Expiry};
    let dir = tempfile::tempdir().unwrap();
    let store = previewd_store::open(&format!("sqlite://{}/w.db", dir.path().display()))
        .await
        .unwrap();
    let sim = Sim::new(SimConfig::default());
    let config = previewd_controller::ControllerConfig {
        poll_interval: Duration::from_secs(60),
        ..fast_controller("w")
    };
    let reconciler = Arc::new(Reconciler::new(
        store.clone(),
        Cloud::from_one(sim.clone()),
        Arc::new(Template::default()),
        config,
    ));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Controller::new(reconciler).run(cancel.clone()));
    // The controller has looked at the empty table and gone to sleep.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key = PreviewKey::new(PROJECT, "qanote/issue-7").unwrap();
    let deploy = Command::Deploy {
        request: DeployRequest {
            key: key.clone(),
            spec: PreviewSpec {
                commit_sha: Some("abc1234".into()),
                ..Default::default()
            },
            expiry: Expiry::Never,
        },
        naming: NamingConfig::default(),
    };
    store.apply(&deploy, chrono::Utc::now()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.get(&key).await.unwrap().unwrap().status.phase != Phase::Ready {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write did not wake the controller"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    task.await.unwrap();
}
