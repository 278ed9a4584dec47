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
use previewd_core::outbox_report::Report;
use previewd_core::ports::{ReportError, StoreError};
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
    /// The repository (`owner/name`) whose preview this is: required when
    /// the configuration has several `[[projects]]`.
    #[arg(long)]
    pub project: Option<String>,
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
    let projects = Arc::new(cfg.projects_served());
    let project = match projects.resolve_for(args.project.as_deref(), &args.action) {
        Ok(p) => p.clone(),
        Err(refusal) => return Ok(refused(refusal.into())),
    };
    app::refuse_plain_listeners(&cfg).await?;
    let cloud = app::cloud(&cfg).await?;
    let reconciler = Arc::new(
        Reconciler::new(store.clone(), cloud, template, app::controller_config(&cfg))
            .with_pool(Arc::new(cfg.pool()))
            .with_projects(projects.clone()),
    );
    let callback_policy = app::callback_policy(&cfg)?;
    let key = match PreviewKey::new(&project.name, &args.branch) {
        Ok(k) => k,
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
    };
    let inputs = DispatchRequest {
        action: args.action.clone(),
        branch: args.branch.clone(),
        commit_sha: args.commit_sha.clone(),
        ai_run_id: args.ai_run_id.clone(),
        callback_url: args.callback_url.clone(),
        project: Some(project.name.clone()),
    };
    let command = match inputs.command(&project.name, &project.template.naming, project.lifetime) {
        Ok(command) => command,
        Err(refusal) => return Ok(refused(refusal.into())),
    };
    if let Err(e) = vet_callback(Some(&callback_policy), &command).await {
        return Ok(refused(e));
    }
    let reporter = Arc::new(app::reporter(&cfg)?);
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
            naming: project.template.naming.clone(),
        };
        let recorded = store.apply(&record, chrono::Utc::now()).await?;
        if let Some(out) = recorded.outcome() {
            remember_deployment(&*store, &reporter, key, out.preview.generation).await?;
        }
    }
    match store.apply(&command, chrono::Utc::now()).await {
        Ok(_) => {}
        Err(e @ StoreError::Invalid { .. }) => return Ok(refused(e.into())),
        Err(e) => return Err(e.into()),
    }

    let cancel = CancellationToken::new();
    let stop_controller = cancel.child_token();
    let reported = reconciler.reported.clone();
    let controller = tokio::spawn(Controller::new(reconciler).run(stop_controller.clone()));
    let deliverer = || previewd_controller::Deliverer {
        store: store.clone(),
        reporter: reporter.clone(),
        owner: "once".into(),
        lease: Duration::from_secs(60),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
    };
    let delivery = tokio::spawn(deliverer().run(reported, cancel.child_token()));

    let mut progress = Progress {
        started: Instant::now(),
        tty: std::io::stderr().is_terminal(),
        last: None,
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut timed_out = None;
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
            // The run gave up: that is this attempt's outcome, owed to
            // GitHub and the callback like any other. The controller stops
            // first, so nothing it writes can follow the failure.
            stop_controller.cancel();
            let report =
                Report::of(&p, &p.status).timed_out(p.status.phase, &message, args.timeout_secs);
            timed_out = Some(report);
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
    let (mut left, _) = store.outbox_backlog().await?;
    if let Some(report) = timed_out {
        let _ = controller.await;
        if deliver_with_retries(&deliverer(), &key, &report, drain_until)
            .await
            .is_err()
        {
            left += 1;
        }
        // The sticky comment shows the same failure; best effort, as the
        // comment never holds back the status or the callback.
        if cfg.github.pr_comment
            && let Err(e) = deliverer().deliver_comment(&key, &report).await
        {
            eprintln!("warning: the pull request comment: {e}");
        }
    }
    if left > 0 {
        eprintln!(
            "warning: {left} report(s) (GitHub status, callback or pull request comment) could not be delivered"
        );
    }
    cancel.cancel();
    let _ = delivery.await;
    Ok(outcome)
}

/// A destroy run has no table of past deployments: find the branch's newest
/// through the GitHub API and keep it with the recorded row, so that the
/// Deleted report marks it `inactive` as the daemon would. Without GitHub
/// credentials there is nothing to mark; a failed look-up is a warning.
async fn remember_deployment(
    store: &dyn previewd_core::ports::Store,
    reporter: &previewd_github::GithubReporter,
    key: &PreviewKey,
    generation: i64,
) -> anyhow::Result<()> {
    // The project's own repository when several are configured.
    let project = reporter
        .by_project
        .get(&key.project.to_ascii_lowercase())
        .and_then(|r| r.github.as_ref());
    let Some(gh) = project.or(reporter.github.as_ref()) else {
        return Ok(());
    };
    let environment = previewd_github::environment_for_branch(&key.branch);
    match gh.list_deployments(&environment).await {
        Ok(found) => {
            if let Some(id) = found.first().and_then(|d| i64::try_from(d.0).ok()) {
                store
                    .save_deployment(key, generation, id, chrono::Utc::now())
                    .await?;
            }
        }
        Err(e) => eprintln!("warning: cannot find the deployment of {environment}: {e}"),
    }
    Ok(())
}

/// Delivers `report` now, retrying what may pass later until `until`.
async fn deliver_with_retries(
    deliverer: &previewd_controller::Deliverer,
    key: &PreviewKey,
    report: &Report,
    until: Instant,
) -> Result<(), ReportError> {
    loop {
        match deliverer.deliver_report(key, report).await {
            Err(e) if e.retryable && Instant::now() < until => {
                tracing::info!(error = %e, "timeout report failed; will retry");
                tokio::time::sleep(e.retry_after.unwrap_or(Duration::from_millis(500))).await;
            }
            Err(e) => {
                eprintln!("warning: {e}");
                return Err(e);
            }
            Ok(()) => return Ok(()),
        }
    }
}
