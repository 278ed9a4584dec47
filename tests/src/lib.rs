//! Shared harness for the end-to-end and chaos tests: the real API and
//! controller on 127.0.0.1, a real SQLite or PostgreSQL store, the sim.
#![forbid(unsafe_code)]

use previewd_api::{AppState, app};
use previewd_controller::{Cloud, Controller, ControllerConfig, Reconciler};
use previewd_core::ports::Store;
use previewd_core::render::Template;
use previewd_sim::Sim;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PROJECT: &str = "acme/shop";

/// Intervals short enough for tests to converge in well under a second.
pub fn fast_controller(replica: &str) -> ControllerConfig {
    ControllerConfig {
        replica_id: replica.into(),
        workers: 8,
        lease: Duration::from_millis(400),
        reconcile_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(5),
        policy: previewd_controller::Policy {
            resync_interval: Duration::from_millis(500),
            progress_interval: Duration::from_millis(10),
            waiting_interval: Duration::from_millis(50),
            failed_interval: Duration::from_millis(100),
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(60),
        },
        poll_interval: Duration::from_millis(25),
        cache_max_age: Duration::from_millis(100),
        listing_min_interval: Duration::from_millis(10),
        elb_tags_max_age: Duration::from_secs(600),
        dns_batch_window: Duration::from_millis(2),
        clock: chrono::Utc::now,
        pr_comment: false,
        wakers: previewd_core::sleep::Wakers::default(),
    }
}

/// A running controller that can be stopped gracefully or killed.
pub struct RunningController {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningController {
    pub fn start(
        store: Arc<dyn Store>,
        sim: &Sim,
        template: Arc<Template>,
        config: ControllerConfig,
    ) -> Self {
        let reconciler = Arc::new(Reconciler::new(
            store,
            Cloud::from_one(sim.clone()),
            template,
            config,
        ));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(Controller::new(reconciler).run(cancel.clone()));
        Self { cancel, task }
    }

    /// Like [`RunningController::start`], placing previews on `pool`.
    pub fn start_pool(
        store: Arc<dyn Store>,
        sim: &Sim,
        template: Arc<Template>,
        pool: Arc<previewd_core::pool::Pool>,
        config: ControllerConfig,
    ) -> Self {
        let reconciler = Arc::new(
            Reconciler::new(store, Cloud::from_one(sim.clone()), template, config).with_pool(pool),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(Controller::new(reconciler).run(cancel.clone()));
        Self { cancel, task }
    }

    /// SIGTERM: stop claiming, let passes under way finish.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("controller ends cleanly");
    }

    /// A crash: every pass under way is dropped mid-flight.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The API served on an ephemeral loopback port.
pub struct TestApi {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub token: Option<String>,
}

impl TestApi {
    /// Serves `state` with `token` (at least 32 characters) as its API
    /// token.
    pub async fn serve(mut state: AppState, token: Option<&str>) -> Self {
        state.api_token =
            token.map(|t| previewd_api::ApiToken::new(t).expect("a strong test token"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let token = token.map(str::to_owned);
        // reqwest is built with rustls and no provider of its own (the
        // workspace uses ring); a client needs one installed first.
        previewd_github::install_ring_provider();
        tokio::spawn(async move {
            axum::serve(listener, app(state))
                .await
                .expect("server runs")
        });
        Self {
            addr,
            client: reqwest::Client::new(),
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .auth(self.client.post(self.url(path)).json(&body))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .auth(self.client.get(self.url(path)))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .auth(self.client.delete(self.url(path)))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Polls a preview until `done` holds for it, or panics after `within`.
    pub async fn wait_for(
        &self,
        branch: &str,
        within: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let path = format!("/v1/previews/{}", branch.replace('/', "%2F"));
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, body) = self.get(&path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{branch} did not get there within {within:?}; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Resources of ours for a slug no row knows, as a crash between an AWS
/// create and the row write (or a lost database) would leave them.
pub async fn plant_orphans(sim: &Sim, controller_id: &str, slug: &str) {
    try_plant_orphans(sim, controller_id, slug)
        .await
        .expect("planting orphans");
}

/// As [`plant_orphans`], but reporting a failed call (a sim fault) so the
/// caller can try again; what already exists is left as it is.
pub async fn try_plant_orphans(
    sim: &Sim,
    controller_id: &str,
    slug: &str,
) -> Result<(), previewd_core::CloudError> {
    use previewd_core::CloudError;
    use previewd_core::ports::{Compute, Dns, LoadBalancer, Logs};
    use previewd_core::render::{DnsAction, DnsChange, TargetGroupSpec};
    use previewd_core::tags;
    let exists_ok = |r: Result<(), CloudError>| match r {
        Err(CloudError::AlreadyExists(_)) => Ok(()),
        other => other,
    };
    let t = tags::ownership_tags(controller_id, PROJECT, slug, slug, None);
    let family = format!("pv-{slug}");
    exists_ok(
        sim.create_log_group(&format!("/ecs/{family}"), 14, &t)
            .await,
    )?;
    if sim.task_definition(&family).await?.is_none() {
        let mut td =
            previewd_core::render::render(&Template::default(), &ghost_row(slug)).task_definition;
        td.tags = t.clone();
        sim.register_task_definition(&td).await?;
    }
    let spec = TargetGroupSpec {
        name: family.clone(),
        port: 80,
        vpc_id: "vpc-sim".into(),
        health_check_path: "/".into(),
        tags: t,
    };
    sim.create_target_group(&spec).await?;
    let marker = previewd_core::observed::DnsRecord {
        name: format!("{slug}-preview.preview.example.com"),
        kind: previewd_core::observed::RecordType::Txt,
        ttl: Some(300),
        values: vec![tags::dns_owner_marker(controller_id, slug)],
        alias_target: None,
    };
    sim.change(&[DnsChange {
        action: DnsAction::Upsert,
        record: marker,
    }])
    .await
}

fn ghost_row(slug: &str) -> previewd_core::model::Preview {
    let key = previewd_core::key::PreviewKey::new(PROJECT, slug).expect("valid");
    let host = format!("{slug}-preview");
    previewd_core::model::Preview::fresh(key, slug, &host, Default::default(), chrono::Utc::now())
}
