//! `previewd once`: the daemon's engine run for one preview, with no daemon
//! and no database (an in-memory table), for teams that keep the workflow
//! inside GitHub Actions. The request goes through the same dispatch
//! handler as `POST /v1/dispatch`, so it is validated exactly alike.

use crate::app;
use crate::config::Config;
use anyhow::Context;
use previewd_api::{AppState, app as router};
use previewd_controller::{Controller, Reconciler};
use previewd_core::model::{DeployRequest, PreviewSpec};
use previewd_core::{Phase, PreviewKey};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The workflow's inputs, as flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OnceArgs {
    /// `deploy` or `destroy`.
    #[arg(long)]
    pub action: String,
    #[arg(long)]
    pub branch: String,
    /// The commit to deploy (required for deploy).
    #[arg(long)]
    pub commit_sha: Option<String>,
    /// The QA tool's run id, echoed back in the callback.
    #[arg(long)]
    pub ai_run_id: Option<String>,
    /// Where to POST the signed outcome (must be in callbacks.allowed_hosts).
    #[arg(long)]
    pub callback_url: Option<String>,
    /// Give up (exit 1) if the preview is not Ready, or gone, by then.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
}

/// How `once` ended; the exit code follows from it.
#[derive(Debug)]
pub enum Outcome {
    /// Ready (deploy) or gone (destroy).
    Done,
    /// Failed, timed out, or refused: the description to print.
    Failed(String),
    /// The inputs broke the contract (exit 2).
    Refused(String),
}

/// Shows each change of phase or message: one redrawn line on a terminal,
/// a plain line per change otherwise (CI logs).
struct Progress {
    started: Instant,
    tty: bool,
    last: Option<(Phase, String)>,
}

impl Progress {
    fn show(&mut self, phase: Phase, message: &str) {
        let now = (phase, message.to_owned());
        if self.last.as_ref() == Some(&now) && !self.tty {
            return;
        }
        let secs = self.started.elapsed().as_secs_f32();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K[{secs:6.1}s] {phase:?}: {message}");
        } else {
            let _ = writeln!(err, "[{secs:6.1}s] {phase:?}: {message}");
        }
        let _ = err.flush();
        self.last = Some(now);
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

pub async fn once(cfg: Config, args: OnceArgs) -> anyhow::Result<Outcome> {
    // One preview, this process only: the table lives in memory.
    let store = previewd_store::open("sqlite::memory:").await?;
    let template = Arc::new(cfg.template());
    let wake = Arc::new(Notify::new());
    let cloud = app::cloud(&cfg).await?;
    let reconciler = Arc::new(Reconciler::new(
        store.clone(),
        cloud,
        template,
        app::controller_config(&cfg),
    ));
    let state = AppState {
        store: store.clone(),
        naming: cfg.naming.clone(),
        project: cfg.previews.project.clone(),
        url_scheme: cfg.container.url_scheme.clone(),
        wake: wake.clone(),
        api_token: None,
        ttl: Duration::from_secs(cfg.previews.ttl_hours * 3600),
        max_lifetime: Duration::from_secs(cfg.previews.max_lifetime_hours * 3600),
        gc: None,
        webhook_secret: None,
        callback_policy: Some(Arc::new(app::callback_policy(&cfg)?)),
        metrics: None,
        status_page: false,
    };
    let key = match PreviewKey::new(&cfg.previews.project, &args.branch) {
        Ok(k) => k,
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
    };
    if args.action == "destroy" {
        // The table is empty: record the preview first so its names are
        // derived exactly as the deploy derived them, then ask it gone.
        store
            .apply_deploy(
                &DeployRequest {
                    key: key.clone(),
                    spec: PreviewSpec::default(),
                    expires_at: None,
                },
                &cfg.naming,
                chrono::Utc::now(),
            )
            .await?;
    }
    let body = serde_json::json!({
        "action": args.action,
        "branch": args.branch,
        "commit_sha": args.commit_sha,
        "ai_run_id": args.ai_run_id,
        "callback_url": args.callback_url,
    });
    let request = axum::http::Request::post("/v1/dispatch")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .context("building the dispatch request")?;
    let response = router(state).oneshot(request).await?;
    if !response.status().is_success() {
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await?;
        return Ok(Outcome::Refused(
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }

    let cancel = CancellationToken::new();
    let reported = reconciler.reported.clone();
    let controller = tokio::spawn(Controller::new(reconciler, wake).run(cancel.child_token()));
    let deliverer = previewd_controller::Deliverer {
        store: store.clone(),
        reporter: Arc::new(app::reporter(&cfg)?),
        owner: "once".into(),
        lease: Duration::from_secs(60),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
    };
    let delivery = tokio::spawn(deliverer.run(reported, cancel.child_token()));

    let mut progress = Progress {
        started: Instant::now(),
        tty: std::io::stderr().is_terminal(),
        last: None,
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let outcome = loop {
        let p = store
            .get(&key)
            .await?
            .context("the preview's row vanished")?;
        let message = p.status.message.clone().unwrap_or_else(|| "queued".into());
        progress.show(p.status.phase, &message);
        let settled = p.status.observed_generation == p.generation;
        match p.status.phase {
            Phase::Ready if settled && args.action == "deploy" => {
                let url = p.status.url.clone().unwrap_or_default();
                progress.finish();
                println!("{url}");
                break Outcome::Done;
            }
            Phase::Deleted if args.action == "destroy" => {
                progress.finish();
                break Outcome::Done;
            }
            Phase::Failed if settled => {
                progress.finish();
                break Outcome::Failed(message);
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            progress.finish();
            break Outcome::Failed(format!(
                "timed out after {}s; last: {:?}: {message}",
                args.timeout_secs, p.status.phase
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The statuses and the callback are part of the job: give the outbox
    // a bounded while to drain before the process (and the table) is gone.
    let drain_until = Instant::now() + Duration::from_secs(30);
    while store.outbox_backlog().await?.0 > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (left, _) = store.outbox_backlog().await?;
    if left > 0 {
        eprintln!("warning: {left} report(s) (GitHub status or callback) could not be delivered");
    }
    cancel.cancel();
    let _ = controller.await;
    let _ = delivery.await;
    Ok(outcome)
}
