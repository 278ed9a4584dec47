//! Sleep end to end (issue 18): the idle check puts an unvisited preview to
//! sleep (desired 0, its rule on the waker), a visit reaches the waker,
//! which answers and wakes it, and the same rule goes back to the preview.

use crate::*;
use previewd_api::waker::{WakerState, waker_app};
use previewd_controller::{Controller, Reconciler, Sleeper};
use previewd_core::model::{DeployRequest, Phase, Preview, PreviewSpec};
use previewd_core::{Command, Expiry, PreviewKey};
use previewd_sim::{SimConfig, Visit};
use tokio_util::sync::CancellationToken;

const HOST: &str = "issue-42-preview.preview.example.com";
/// Short, so the test can wait it out: the check reads the real clock, as
/// the store's writes do.
const IDLE_AFTER: Duration = Duration::from_millis(1500);

struct Sleepy {
    sim: Sim,
    store: Arc<dyn Store>,
    sleeper: Sleeper,
    waker: std::net::SocketAddr,
    waker_tg: String,
    key: PreviewKey,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Sleepy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn sleepy() -> Sleepy {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/previewd.db", dir.path().display());
    let store = previewd_store::open(&url).await.expect("store opens");
    let sim = Sim::new(SimConfig::default());
    let waker_tg = sim.waker_target_group();
    let mut config = fast_controller("sleep");
    config.wakers = previewd_core::sleep::Wakers::new(sim.waker_target_groups());
    let reconciler = Arc::new(Reconciler::new(
        store.clone(),
        previewd_controller::Cloud::from_one(sim.clone()),
        Arc::new(Template::default()),
        config,
    ));
    let cancel = CancellationToken::new();
    tokio::spawn(Controller::new(reconciler.clone()).run(cancel.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let waker = listener.local_addr().unwrap();
    let router = waker_app(WakerState {
        store: store.clone(),
        projects: Arc::new(previewd_core::projects::Projects::uniform(Arc::new(
            Template::default(),
        ))),
        retry_after: Duration::from_secs(3),
    });
    tokio::spawn(previewd_api::server::serve_as_is(
        listener,
        router,
        previewd_api::server::ServerLimits::default(),
        cancel.clone(),
    ));
    let sleeper = Sleeper {
        reconciler,
        metrics: Arc::new(sim.clone()),
        idle_after: IDLE_AFTER,
        check_interval: Duration::from_secs(300),
    };
    let key = PreviewKey::new(PROJECT, "qanote/issue-42").unwrap();
    let deploy = Command::Deploy {
        request: DeployRequest {
            key: key.clone(),
            spec: PreviewSpec {
                commit_sha: Some("4f2a9c1".into()),
                ..PreviewSpec::default()
            },
            expiry: Expiry::Never,
        },
        naming: NamingConfig::default(),
    };
    store.apply(&deploy, chrono::Utc::now()).await.unwrap();
    let s = Sleepy {
        sim,
        store,
        sleeper,
        waker,
        waker_tg,
        key,
        cancel,
        _dir: dir,
    };
    s.wait_for(|p| p.is_ready_at_generation()).await;
    s
}

impl Sleepy {
    async fn wait_for(&self, done: impl Fn(&Preview) -> bool) -> Preview {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let p = self.store.get(&self.key).await.unwrap().unwrap();
            if done(&p) {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not there within {WITHIN:?}: {:?} {:?}",
                p.status.phase,
                p.status.message
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The idle check once the preview has been serving for idle_after.
    async fn check_later(&self) -> usize {
        tokio::time::sleep(IDLE_AFTER).await;
        self.sleeper
            .check(chrono::Utc::now())
            .await
            .expect("idle check")
    }

    /// Our rule's ARN and where it forwards.
    fn rule(&self) -> (String, Option<String>) {
        let owned = self.sim.snapshot().owned_by(ID);
        assert_eq!(owned.rules.len(), 1, "{:?}", owned.rules);
        let r = &owned.rules[0];
        (r.arn.clone(), r.target_group_arn.clone())
    }

    fn desired(&self) -> i32 {
        self.sim.snapshot().owned_by(ID).services[0].desired
    }

    async fn to_waker(&self, host: &str, accept: &str) -> (u16, Option<String>, String) {
        previewd_github::install_ring_provider();
        let resp = reqwest::Client::new()
            .get(format!("http://{}/some/page?x=1", self.waker))
            .header("host", host)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, retry, resp.text().await.unwrap())
    }
}

#[tokio::test]
async fn an_idle_preview_sleeps_a_visit_wakes_it_and_the_rule_is_modified_in_place() {
    let s = sleepy().await;
    let (rule_arn, own_tg) = s.rule();
    // Serving for less than idle_after: nothing to ask CloudWatch.
    s.sim.reset_calls();
    assert_eq!(s.sleeper.check(chrono::Utc::now()).await.unwrap(), 0);
    assert_eq!(s.sim.calls().get("cloudwatch:GetMetricData"), None);

    // idle_after on with no request: it sleeps, in one GetMetricData.
    assert_eq!(s.check_later().await, 1);
    assert_eq!(s.sim.calls().get("cloudwatch:GetMetricData"), Some(&1));
    let asleep = s.wait_for(|p| p.status.phase == Phase::Sleeping).await;
    assert!(asleep.asleep);
    assert_eq!(s.rule(), (rule_arn.clone(), Some(s.waker_tg.clone())));
    assert_eq!(s.desired(), 0);
    assert_eq!(s.sim.visit(HOST), Visit::Waker);
    // Its URL stays: a visit wakes it.
    let url = format!("https://{HOST}");
    assert_eq!(asleep.status.url.as_deref(), Some(url.as_str()));

    // A browser's visit: the waiting page, naming the branch; it wakes.
    let (status, _, page) = s.to_waker(HOST, "text/html,application/xhtml+xml").await;
    assert_eq!(status, 200);
    assert!(page.contains("qanote/issue-42"), "{page}");
    assert!(page.contains("Waking up"), "{page}");
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    let ready = s.wait_for(|p| p.status.phase == Phase::Ready).await;
    assert!(!ready.asleep);
    assert_eq!(s.rule(), (rule_arn.clone(), own_tg.clone()));
    assert_eq!(s.desired(), 1);

    // Asleep again, a client that is no browser gets 503 and Retry-After,
    // and wakes it all the same.
    assert_eq!(s.check_later().await, 1);
    s.wait_for(|p| p.status.phase == Phase::Sleeping && p.asleep)
        .await;
    let (status, retry, _) = s.to_waker(HOST, "application/json").await;
    assert_eq!((status, retry.as_deref()), (503, Some("3")));
    s.wait_for(|p| p.status.phase == Phase::Ready).await;
    assert_eq!(s.rule(), (rule_arn, own_tg));
    assert_eq!(s.sim.visit(HOST), Visit::Served);
    let calls = s.sim.calls();
    assert_eq!(calls.get("elbv2:CreateRule"), None, "{calls:?}");
    assert_eq!(calls.get("elbv2:DeleteRule"), None, "{calls:?}");
}

#[tokio::test]
async fn a_visited_preview_stays_awake() {
    let s = sleepy().await;
    tokio::time::sleep(IDLE_AFTER).await;
    // Visited within the last idle_after: it stays awake.
    assert_eq!(s.sim.visit(HOST), Visit::Served);
    assert_eq!(s.sleeper.check(chrono::Utc::now()).await.unwrap(), 0);
    let p = s.store.get(&s.key).await.unwrap().unwrap();
    assert!(!p.asleep);
    assert_eq!(p.status.phase, Phase::Ready);
}

#[tokio::test]
async fn the_waker_answers_nothing_for_other_hosts() {
    let s = sleepy().await;
    assert_eq!(s.check_later().await, 1);
    s.wait_for(|p| p.status.phase == Phase::Sleeping).await;
    for host in [
        "prod.example.com",
        "issue-43-preview.preview.example.com",
        "<script>alert(1)</script>",
        "issue-42-preview.preview.example.com.evil.test",
    ] {
        let (status, retry, body) = s.to_waker(host, "text/html").await;
        assert_eq!((status, retry, body.as_str()), (404, None, ""), "{host}");
    }
    // Nothing was woken by them.
    assert!(s.store.get(&s.key).await.unwrap().unwrap().asleep);
    // An awake preview's host gets nothing either.
    s.to_waker(HOST, "text/html").await;
    s.wait_for(|p| p.status.phase == Phase::Ready).await;
    let (status, _, body) = s.to_waker(HOST, "text/html").await;
    assert_eq!((status, body.as_str()), (404, ""));
}

#[tokio::test]
async fn a_redeploy_wakes_a_sleeping_preview_at_the_new_commit() {
    let s = sleepy().await;
    assert_eq!(s.check_later().await, 1);
    s.wait_for(|p| p.status.phase == Phase::Sleeping).await;
    let redeploy = Command::Deploy {
        request: DeployRequest {
            key: s.key.clone(),
            spec: PreviewSpec {
                commit_sha: Some("bbbbbbb".into()),
                ..PreviewSpec::default()
            },
            expiry: Expiry::Never,
        },
        naming: NamingConfig::default(),
    };
    s.store.apply(&redeploy, chrono::Utc::now()).await.unwrap();
    let p = s.wait_for(|p| p.is_ready_at_generation()).await;
    assert_eq!(p.generation, 2);
    assert!(!p.asleep);
    assert_eq!(s.desired(), 1);
    assert_ne!(s.rule().1, Some(s.waker_tg.clone()));
    assert_eq!(s.sim.visit(HOST), Visit::Served);
}
