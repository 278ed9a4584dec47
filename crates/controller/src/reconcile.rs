//! One reconcile pass over one preview: observe, plan and apply
//! ([`Reconciler::attempt`]), then decide the status to write
//! ([`Reconciler::decide`], `previewd_core::decide`).

use crate::execute::{Executor, Subject};
use crate::observe::{Freshness, Observer, ReadService};
use crate::{Cloud, ControllerConfig, DnsBatcher};
use previewd_core::decide::{
    ExecuteError, Outcome, check_ownership, decide, fresh_first, must_confirm, ownership_arns,
    reserved_priority,
};
use previewd_core::model::{Preview, StatusUpdate};
use previewd_core::plan::{Change, Plan, Verdict, plan};
use previewd_core::ports::Store;
use previewd_core::pr_comment;
use previewd_core::render::{Template, render};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::time::Instant;

/// Holds a priority in [`Reconciler::choosing`] until the pass ends (its
/// reservation is in the store by then, or the pass failed).
struct Chosen<'a>(&'a std::sync::Mutex<BTreeSet<i32>>, i32);

impl Drop for Chosen<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("not poisoned").remove(&self.1);
    }
}

/// Everything a pass needs, shared by all workers.
pub struct Reconciler {
    pub store: Arc<dyn Store>,
    pub cloud: Cloud,
    pub observer: Observer,
    pub dns: DnsBatcher,
    pub template: Arc<Template>,
    pub config: ControllerConfig,
    /// Notified when a status write enqueued reports, so the delivery
    /// worker sends them at once rather than at its next poll.
    pub reported: Arc<tokio::sync::Notify>,
    /// Rule priorities planned by passes under way in this process.
    choosing: std::sync::Mutex<BTreeSet<i32>>,
}

impl Reconciler {
    pub fn new(
        store: Arc<dyn Store>,
        cloud: Cloud,
        template: Arc<Template>,
        config: ControllerConfig,
    ) -> Self {
        Self {
            observer: Observer::new(
                cloud.clone(),
                template.clone(),
                config.cache_max_age,
                config.listing_min_interval,
                config.elb_tags_max_age,
            )
            .with_waker(config.waker_target_group.clone()),
            dns: DnsBatcher::spawn(cloud.dns.clone(), config.dns_batch_window),
            store,
            cloud,
            template,
            config,
            reported: Arc::new(tokio::sync::Notify::new()),
            choosing: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    /// Observes, plans and applies for one preview (the pass up to the
    /// decision), and says how it ended. Never asks why it was woken: it
    /// reads the row and AWS and acts on the difference. `service` is the
    /// preview's service when the caller read it for a batch; `began` is
    /// when the pass began (before its row was claimed): a fresh
    /// observation is one fetched after it.
    pub async fn attempt(
        &self,
        p: &Preview,
        service: Option<ReadService>,
        began: Instant,
    ) -> Outcome {
        match self.pass(p, service, began).await {
            Ok(verdict) => Outcome::Planned(verdict),
            Err(e) => Outcome::Error(e),
        }
    }

    /// The status, schedule and reports to record after an attempt (with
    /// the sticky comment's messages when `pr_comment` is on).
    pub fn decide(&self, p: &Preview, outcome: &Outcome) -> StatusUpdate {
        let url = render(&self.template, p).url;
        let now = chrono::Utc::now();
        let mut update: StatusUpdate =
            decide(p, outcome, &url, &self.config.policy, now, crate::jitter()).into();
        let comments = pr_comment::messages(self.config.pr_comment, &update.outbox);
        update.outbox.extend(comments);
        update
    }

    async fn pass(
        &self,
        p: &Preview,
        service: Option<ReadService>,
        began: Instant,
    ) -> Result<Verdict, ExecuteError> {
        let w = render(&self.template, p);
        let observe_err = |source| ExecuteError::Cloud {
            step: "Observe",
            source,
        };
        let fresh = fresh_first(p, self.observer.listings_pressed());
        let first_look = if fresh {
            Freshness::After(began)
        } else {
            Freshness::Cached
        };
        let o = self
            .observer
            .observe(p, &w, service.clone(), first_look)
            .await
            .map_err(observe_err)?;
        let first = plan(&self.template, p, &w, &o, &BTreeSet::new());
        let mut choosing = None;
        let Plan { changes, verdict } = if must_confirm(&first, p) {
            let o = if fresh {
                o
            } else {
                self.observer
                    .observe(p, &w, service, Freshness::After(began))
                    .await
                    .map_err(observe_err)?
            };
            let mut reserved: BTreeSet<i32> = self
                .store
                .reserved_priorities(&p.key)
                .await
                .map_err(|source| ExecuteError::Store {
                    step: "ReservedPriorities",
                    source,
                })?
                .into_iter()
                .collect();
            // Passes planning at once would all pick the same lowest free
            // priority and all but one lose it; priorities chosen by passes
            // still under way count as taken, decided under one lock.
            let mut pending = self.choosing.lock().expect("not poisoned");
            reserved.extend(pending.iter().copied());
            let planned = plan(&self.template, p, &w, &o, &reserved);
            choosing = reserved_priority(&planned.changes);
            pending.extend(choosing);
            planned
        } else {
            first
        };
        let _chosen = choosing.map(|prio| Chosen(&self.choosing, prio));
        if !changes.is_empty() {
            let names: Vec<&str> = changes.iter().map(|c| c.name()).collect();
            tracing::info!(key = %p.key, generation = p.generation, changes = ?names, "applying plan");
            self.verify_ownership(p, &changes).await?;
            let executor = Executor {
                cloud: &self.cloud,
                dns: Some(&self.dns),
                store: self.store.as_ref(),
            };
            executor.execute(Subject::Preview(&p.key), &changes).await?;
        }
        Ok(verdict)
    }

    /// Reads afresh the tags of the ELB resources a plan modifies or
    /// deletes (the listings' tags are remembered by ARN) and checks them
    /// with [`check_ownership`]. One DescribeTags, and only for a pass that
    /// touches an existing rule or target group.
    async fn verify_ownership(&self, p: &Preview, changes: &[Change]) -> Result<(), ExecuteError> {
        let found = self
            .observer
            .fresh_tags(&ownership_arns(changes))
            .await
            .map_err(|source| ExecuteError::Cloud {
                step: "VerifyOwnership",
                source,
            })?;
        check_ownership(changes, &found, &self.template.controller_id, &p.slug)
    }
}
