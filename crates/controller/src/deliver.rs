//! The outbox worker: delivers each report (GitHub deployment status and
//! callback) and each sticky pull-request comment with retries and
//! backoff, in order per preview and kind.
//!
//! # Guarantees
//! - Nothing is lost: a message leaves the outbox only when delivered (or
//!   refused for good); a crash mid-delivery leaves it to be claimed again.
//! - Order per preview is the store's: one message of a preview and kind
//!   in flight, none before an earlier one of its kind is done. Reports and
//!   comments are separate queues, so a comment GitHub keeps refusing never
//!   holds back a deployment status or a callback.
//! - A redelivery repeats the same state, never an older one: a message is
//!   retried until it succeeds before the next is sent. The deployment of a
//!   generation is created once and kept in the store; callbacks carry an
//!   idempotency key the receiver can drop repeats by.

use previewd_core::delivery::{AfterDelivery, RetryPolicy, after_delivery};
use previewd_core::key::PreviewKey;
use previewd_core::metrics::DeliveryTarget;
use previewd_core::model::{OutboxItem, OutboxKind};
use previewd_core::outbox_report::{self, Report, Target};
use previewd_core::ports::{ReportError, Reporter, Store};
use previewd_core::pr_comment;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A store failure while delivering: worth another try.
fn store_error(e: previewd_core::ports::StoreError) -> ReportError {
    ReportError {
        retryable: true,
        retry_after: None,
        message: e.to_string(),
    }
}

pub struct Deliverer {
    pub store: Arc<dyn Store>,
    pub reporter: Arc<dyn Reporter>,
    /// Lease owner for claimed messages; unique per process.
    pub owner: String,
    pub lease: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub poll_interval: Duration,
}

impl Deliverer {
    /// Delivers until cancelled; `wake` is notified whenever a status
    /// write may have enqueued something.
    pub async fn run(self, wake: Arc<Notify>, cancel: CancellationToken) {
        loop {
            let busy = match self.deliver_due(chrono::Utc::now()).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming outbox messages failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One round: claims what is due and delivers it. Returns how many
    /// messages were handled (delivered, retried later or dropped).
    pub async fn deliver_due(
        &self,
        now: previewd_core::Timestamp,
    ) -> Result<usize, previewd_core::ports::StoreError> {
        let items = self
            .store
            .claim_outbox(&self.owner, now, self.lease, 16)
            .await?;
        let n = items.len();
        let policy = RetryPolicy {
            base: self.backoff_base,
            max: self.backoff_max,
        };
        for item in items {
            let result = self.deliver(&item).await;
            let now = chrono::Utc::now();
            let next = after_delivery(
                result.as_ref().copied(),
                item.attempts,
                policy,
                crate::jitter(),
                now,
            );
            match (next, result) {
                (AfterDelivery::Retry { wait, at }, Err(e)) => {
                    tracing::info!(key = %item.key, id = item.id, kind = %item.kind, attempts = item.attempts + 1, error = %e, ?wait, "report delivery failed; will retry");
                    self.store.retry_outbox(item.id, at, &e.message).await?;
                }
                (AfterDelivery::Dropped, Err(e)) => {
                    tracing::warn!(key = %item.key, id = item.id, kind = %item.kind, error = %e, "report refused; dropping it");
                    self.store.ack_outbox(item.id, now).await?;
                }
                // Delivered.
                _ => self.store.ack_outbox(item.id, now).await?,
            }
        }
        Ok(n)
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), ReportError> {
        if !matches!(item.kind, OutboxKind::Report | OutboxKind::Comment) {
            return Err(ReportError {
                retryable: false,
                retry_after: None,
                message: format!("unknown outbox kind {:?}", item.kind.as_str()),
            });
        }
        let r: Report = serde_json::from_value(item.payload.clone()).map_err(|e| ReportError {
            retryable: false,
            retry_after: None,
            message: format!("bad report payload: {e}"),
        })?;
        if item.kind == OutboxKind::Comment {
            let written = self.deliver_comment(&item.key, &r).await;
            crate::metrics::delivered(DeliveryTarget::Comment, &written);
            return written;
        }
        self.deliver_report(&item.key, &r).await
    }

    /// Where `key`'s GitHub reports go: its project's repository.
    fn github_for(&self, key: &PreviewKey) -> &dyn Reporter {
        self.reporter
            .for_project(&key.project)
            .unwrap_or(self.reporter.as_ref())
    }

    /// Writes the sticky comment report `r` owes (`pr_comment::owed`) on
    /// the preview's pull request: the one kept in the store, else the
    /// branch's open one, kept from then on. No pull request: nothing to
    /// write, and nothing to retry. Every step repeats safely: the comment
    /// is found by its marker each time, so a redelivery edits, never posts.
    /// `previewd once` also calls it for the failure it owes when it stops
    /// waiting.
    pub async fn deliver_comment(&self, key: &PreviewKey, r: &Report) -> Result<(), ReportError> {
        if !self.github_for(key).reports_to_github() {
            return Ok(());
        }
        let owed = pr_comment::owed(r);
        let number = match self.store.pull_request(key).await.map_err(store_error)? {
            Some(n) => n,
            None => match self.github_for(key).open_pull_request(&r.branch).await? {
                Some(n) => {
                    self.store
                        .set_pull_request(key, Some(n), chrono::Utc::now())
                        .await
                        .map_err(store_error)?;
                    n
                }
                None => {
                    tracing::debug!(%key, "no open pull request for the branch: no comment");
                    return Ok(());
                }
            },
        };
        let wrote = self
            .github_for(key)
            .write_comment(number, &owed.marker, &owed.body, owed.may_create)
            .await?;
        tracing::debug!(%key, number, wrote, phase = %r.phase, "pull request comment");
        if owed.forget_pull_request {
            self.store
                .set_pull_request(key, None, chrono::Utc::now())
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// Sends one report now, outside the outbox: `previewd once` uses it
    /// for the failure it owes when it stops waiting (its outbox drained
    /// first, so the order holds).
    pub async fn deliver_report(&self, key: &PreviewKey, r: &Report) -> Result<(), ReportError> {
        let plan = outbox_report::plan(r);
        let to_github = self.github_for(key).reports_to_github();
        let steps = [plan.superseded, plan.status].into_iter().flatten();
        for step in steps.filter(|_| to_github) {
            let github = async {
                match self.deployment(key, r, step.target).await? {
                    Some(id) => self.github_for(key).deployment_status(id, &step).await,
                    None => Ok(()),
                }
            }
            .await;
            crate::metrics::delivered(DeliveryTarget::Github, &github);
            github?;
        }
        if let Some((url, body)) = plan.callback {
            let key = r.idempotency_key(body.state);
            let sent = self.reporter.callback(&url, &body, &key).await;
            crate::metrics::delivered(DeliveryTarget::Callback, &sent);
            sent?;
        }
        Ok(())
    }

    /// The deployment a status goes to, created once per generation.
    async fn deployment(
        &self,
        key: &PreviewKey,
        r: &Report,
        target: Target,
    ) -> Result<Option<i64>, ReportError> {
        match target {
            Target::Newest => self.store.deployment(key, None).await.map_err(store_error),
            Target::Generation(g) => self
                .store
                .deployment(key, Some(g))
                .await
                .map_err(store_error),
            Target::ThisGeneration => {
                if let Some(id) = self
                    .store
                    .deployment(key, Some(r.generation))
                    .await
                    .map_err(store_error)?
                {
                    return Ok(Some(id));
                }
                let Some(commit) = &r.commit_sha else {
                    return Ok(None);
                };
                let description = r.deployment_description(commit);
                let id = self
                    .github_for(key)
                    .create_deployment(&r.branch, commit, &description)
                    .await?;
                self.store
                    .save_deployment(key, r.generation, id, chrono::Utc::now())
                    .await
                    .map(Some)
                    .map_err(store_error)
            }
        }
    }
}
