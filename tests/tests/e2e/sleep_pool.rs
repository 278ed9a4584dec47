//! Sleep across a pool of two load balancers and two projects (issue 18 on
//! issue 17's pool): a preview on each load balancer, one per project,
//! both put to sleep by one idle check (one GetMetricData for both), each
//! onto the waker target group of its own load balancer; a visit to one
//! host wakes that preview alone, and the waker knows each project's hosts.

use crate::*;
use previewd_api::waker::{WakerState, waker_app};
use previewd_controller::{Controller, Reconciler, Sleeper};
use previewd_core::command::Lifetime;
use previewd_core::model::{DeployRequest, Phase, Preview, PreviewSpec};
use previewd_core::pool::{Pool, PoolListener};
use previewd_core::projects::{Project, Projects};
use previewd_core::sleep::Wakers;
use previewd_core::{Command, Expiry, PreviewKey};
use previewd_sim::{SimConfig, Visit};
use tokio_util::sync::CancellationToken;

const IDLE_AFTER: Duration = Duration::from_millis(1500);
/// Other teams' target groups and rules on each load balancer: room for
/// one preview on each, so the two previews land on different ones.
const FOREIGN: usize = 99;
const API: &str = "acme/api";
const WEB_HOST: &str = "issue-1-preview.preview.example.com";
const API_HOST: &str = "api-2.api.preview.example.com";

fn api_naming() -> NamingConfig {
    NamingConfig {
        prefix: "api".into(),
        domain: "api.preview.example.com".into(),
        host_pattern: "api-{issue}".into(),
        ..NamingConfig::default()
    }
}

struct Two {
    sim: Sim,
    store: Arc<dyn Store>,
    sleeper: Sleeper,
    wakers: Wakers,
    waker: std::net::SocketAddr,
    web: PreviewKey,
    api: PreviewKey,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Two {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn two() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/previewd.db", dir.path().display());
    let store = previewd_store::open(&url).await.expect("store opens");
    let sim = Sim::new(SimConfig::default().with_albs(2, FOREIGN));
    let wakers = Wakers::new(sim.waker_target_groups());
    assert_eq!(wakers.iter().count(), 2, "a waker on each load balancer");
    let template = Template::default();
    let pool = Pool {
        listeners: sim
            .config()
            .albs
            .iter()
            .map(|a| PoolListener {
                arn: a.listener_arn.clone(),
                alb_dns_name: a.dns_name.clone(),
                alb_zone_id: a.zone_id.clone(),
                priority_band: template.priority_band,
                rule_quota: a.rule_quota,
                draining: false,
            })
            .collect(),
    };
    let lifetime = Lifetime {
        ttl: Duration::from_secs(3600),
        max_lifetime: Duration::from_secs(7200),
    };
    let project = |name: &str, naming: NamingConfig| Project {
        name: name.into(),
        template: Arc::new(Template {
            naming,
            ..template.clone()
        }),
        lifetime,
        retired: false,
    };
    let projects = Arc::new(
        Projects::new(vec![
            project(PROJECT, NamingConfig::default()),
            project(API, api_naming()),
        ])
        .unwrap(),
    );
    let mut config = fast_controller("sleep-pool");
    config.wakers = wakers.clone();
    let reconciler = Arc::new(
        Reconciler::new(
            store.clone(),
            previewd_controller::Cloud::from_one(sim.clone()),
            Arc::new(template),
            config,
        )
        .with_pool(Arc::new(pool))
        .with_projects(projects.clone()),
    );
    let cancel = CancellationToken::new();
    tokio::spawn(Controller::new(reconciler.clone()).run(cancel.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let waker = listener.local_addr().unwrap();
    let router = waker_app(WakerState {
        store: store.clone(),
        projects,
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
    let web = PreviewKey::new(PROJECT, "qanote/issue-1").unwrap();
    let api = PreviewKey::new(API, "qanote/issue-2").unwrap();
    for (key, naming) in [(&web, NamingConfig::default()), (&api, api_naming())] {
        let deploy = Command::Deploy {
            request: DeployRequest {
                key: key.clone(),
                spec: PreviewSpec {
                    commit_sha: Some("4f2a9c1".into()),
                    ..PreviewSpec::default()
                },
                expiry: Expiry::Never,
            },
            naming,
        };
        store.apply(&deploy, chrono::Utc::now()).await.unwrap();
    }
    let t = Two {
        sim,
        store,
        sleeper,
        wakers,
        waker,
        web,
        api,
        cancel,
        _dir: dir,
    };
    for key in [&t.web, &t.api] {
        t.wait_for(key, |p| p.is_ready_at_generation()).await;
    }
    t
}

impl Two {
    async fn wait_for(&self, key: &PreviewKey, done: impl Fn(&Preview) -> bool) -> Preview {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let p = self.store.get(key).await.unwrap().unwrap();
            if done(&p) {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} not there within {WITHIN:?}: {:?} {:?}",
                p.status.phase,
                p.status.message
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The rule for `host`: its ARN, its listener, where it forwards.
    fn rule(&self, host: &str) -> (String, String, Option<String>) {
        let owned = self.sim.snapshot().owned_by(ID);
        let r = owned
            .rules
            .iter()
            .find(|r| r.hosts.iter().any(|h| h == host))
            .unwrap_or_else(|| panic!("no rule for {host}: {:?}", owned.rules));
        let listener = self
            .sim
            .config()
            .albs
            .iter()
            .map(|a| a.listener_arn.clone())
            .find(|l| {
                r.arn
                    .starts_with(&l.replacen(":listener/", ":listener-rule/", 1))
            })
            .expect("on a listener of the pool");
        (r.arn.clone(), listener, r.target_group_arn.clone())
    }

    fn desired(&self, prefix: &str) -> i32 {
        let owned = self.sim.snapshot().owned_by(ID);
        let s = owned
            .services
            .iter()
            .find(|s| s.name.starts_with(&format!("{prefix}-")))
            .unwrap();
        s.desired
    }

    async fn to_waker(&self, host: &str) -> (u16, String) {
        previewd_github::install_ring_provider();
        let resp = reqwest::Client::new()
            .get(format!("http://{}/", self.waker))
            .header("host", host)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

#[tokio::test]
async fn previews_on_two_albs_and_two_projects_sleep_onto_their_own_albs_waker() {
    let t = two().await;
    let (web_rule, web_listener, web_tg) = t.rule(WEB_HOST);
    let (api_rule, api_listener, api_tg) = t.rule(API_HOST);
    assert_ne!(
        web_listener, api_listener,
        "one preview on each load balancer"
    );
    let web_waker = t.wakers.for_listener(&web_listener).unwrap().to_owned();
    let api_waker = t.wakers.for_listener(&api_listener).unwrap().to_owned();
    assert_ne!(web_waker, api_waker);

    // One idle check puts both to sleep with one GetMetricData.
    tokio::time::sleep(IDLE_AFTER).await;
    t.sim.reset_calls();
    assert_eq!(t.sleeper.check(chrono::Utc::now()).await.unwrap(), 2);
    assert_eq!(t.sim.calls().get("cloudwatch:GetMetricData"), Some(&1));
    for key in [&t.web, &t.api] {
        t.wait_for(key, |p| p.status.phase == Phase::Sleeping).await;
    }
    // Each rule, the same one, on its own load balancer's waker.
    let deadline = tokio::time::Instant::now() + WITHIN;
    while t.desired("pv") != 0 || t.desired("api") != 0 {
        assert!(tokio::time::Instant::now() < deadline, "never scaled to 0");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        t.rule(WEB_HOST),
        (
            web_rule.clone(),
            web_listener.clone(),
            Some(web_waker.clone())
        )
    );
    assert_eq!(
        t.rule(API_HOST),
        (
            api_rule.clone(),
            api_listener.clone(),
            Some(api_waker.clone())
        )
    );
    assert_eq!(t.sim.visit(WEB_HOST), Visit::Waker);
    assert_eq!(t.sim.visit(API_HOST), Visit::Waker);

    // The waker knows each project's hosts, and nothing else: the api
    // preview's host spelled with the web project's naming is nobody's.
    for host in [
        "issue-2-preview.preview.example.com",
        "api-1.api.preview.example.com",
        "prod.example.com",
    ] {
        assert_eq!(t.to_waker(host).await, (404, String::new()), "{host}");
    }

    // A visit to the api project's preview wakes it alone.
    let (status, page) = t.to_waker(API_HOST).await;
    assert_eq!(status, 200);
    assert!(page.contains("qanote/issue-2"), "{page}");
    let woken = t.wait_for(&t.api, |p| p.status.phase == Phase::Ready).await;
    assert!(!woken.asleep);
    assert_eq!(t.rule(API_HOST), (api_rule, api_listener, api_tg));
    assert_eq!(t.sim.visit(API_HOST), Visit::Served);
    let web = t.store.get(&t.web).await.unwrap().unwrap();
    assert!(web.asleep, "the other preview sleeps on");
    assert_eq!(t.rule(WEB_HOST).2, Some(web_waker));

    // Then the web project's.
    assert_eq!(t.to_waker(WEB_HOST).await.0, 200);
    t.wait_for(&t.web, |p| p.status.phase == Phase::Ready).await;
    assert_eq!(t.rule(WEB_HOST), (web_rule, web_listener, web_tg));
    let calls = t.sim.calls();
    assert_eq!(calls.get("elbv2:CreateRule"), None, "{calls:?}");
    assert_eq!(calls.get("elbv2:DeleteRule"), None, "{calls:?}");
}
