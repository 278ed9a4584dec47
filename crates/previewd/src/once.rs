//! `previewd once`: the daemon's engine run for one preview, with no daemon
//! and no database (an in-memory table), for teams that keep the workflow
//! inside GitHub Actions. The flags are the dispatch contract's inputs: the
//! command is built by the same rules as `POST /v1/dispatch`'s (so it is
//! refused alike, with the same JSON), its callback vetted alike, and it is
//! applied through the store's one write path.

use crate::app;
use crate::config::Config;
use anyhow::Context;
use previewd_api::{ApiError, vet_callback};
use previewd_controller::{Controller, Reconciler};
use previewd_core::command::{Command, DispatchRequest, Expiry};
use previewd_core::model::{DeployRequest, PreviewSpec};
use previewd_core::ports::StoreError;
use previewd_core::{Phase, PreviewKey};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

/// How `once` answers a refused request: the JSON a refusal from
/// `POST /v1/dispatch` carries, so the two read alike.
fn refused(e: ApiError) -> Outcome {
    Outcome::Refused(
        e.refusal_json()
            .map_or_else(|| e.to_string(), |j| j.to_string()),
    )
}

pub async fn once(cfg: Config, args: OnceArgs) -> anyhow::Result<Outcome> {
    // One preview, this process only: the table lives in memory.
    let store = previewd_store::open("sqlite::memory:").await?;
    let template = Arc::new(cfg.template());
    let cloud = app::cloud(&cfg).await?;
    let reconciler = Arc::new(Reconciler::new(
        store.clone(),
        cloud,
        template,
        app::controller_config(&cfg),
    ));
    let callback_policy = app::callback_policy(&cfg)?;
    let key = match PreviewKey::new(&cfg.previews.project, &args.branch) {
        Ok(k) => k,
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
    };
    let inputs = DispatchRequest {
        action: args.action.clone(),
        branch: args.branch.clone(),
        commit_sha: args.commit_sha.clone(),
        ai_run_id: args.ai_run_id.clone(),
        callback_url: args.callback_url.clone(),
    };
    let command = match inputs.command(&cfg.previews.project, &cfg.naming, cfg.lifetime()) {
        Ok(command) => command,
        Err(refusal) => return Ok(refused(refusal.into())),
    };
    if let Err(e) = vet_callback(Some(&callback_policy), &command).await {
        return Ok(refused(e));
    }
    if !matches!(command, Command::Deploy { .. }) {
        let key = command.key();
        // The table is empty: record the preview first so its names are
        // derived exactly as the deploy derived them, then ask it gone.
        let record = Command::Deploy {
            request: DeployRequest {
                key: key.clone(),
                spec: PreviewSpec::default(),
                expiry: Expiry::Never,
            },
            naming: cfg.naming.clone(),
        };
        store.apply(&record, chrono::Utc::now()).await?;
    }
    match store.apply(&command, chrono::Utc::now()).await {
        Ok(_) => {}
        Err(e @ StoreError::Invalid { .. }) => return Ok(refused(e.into())),
        Err(e) => return Err(e.into()),
    }

    let cancel = CancellationToken::new();
    let reported = reconciler.reported.clone();
    let controller = tokio::spawn(Controller::new(reconciler).run(cancel.child_token()));
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
