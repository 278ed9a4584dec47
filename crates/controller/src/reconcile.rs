//! One reconcile pass over one preview: observe, plan, apply, and decide
//! the status to write.

use crate::execute::{ExecuteError, execute};
use crate::observe::{Freshness, Observer};
use crate::status::{Outcome, next_status};
use crate::{Cloud, ControllerConfig, DnsBatcher};
use previewd_core::CloudError;
use previewd_core::model::{Phase, Preview, StatusUpdate};
use previewd_core::observed::ObservedService;
use previewd_core::plan::{Change, Plan, Verdict, plan};
use previewd_core::ports::Store;
use previewd_core::render::{Template, render};
use previewd_core::tags;
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
            ),
            dns: DnsBatcher::spawn(cloud.dns.clone(), config.dns_batch_window),
            store,
            cloud,
            template,
            config,
            reported: Arc::new(tokio::sync::Notify::new()),
            choosing: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    /// Converges one preview and returns the status to record. Never asks
    /// why it was woken: it reads the row and AWS and acts on the difference.
    /// `service` is the preview's service when the caller described it in
    /// a batch (`Some(None)`: described, does not exist).
    pub async fn reconcile(
        &self,
        p: &Preview,
        service: Option<Option<ObservedService>>,
    ) -> StatusUpdate {
        let started = Instant::now();
        let outcome = match self.pass(p, service, started).await {
            Ok(verdict) => Outcome::Planned(verdict),
            Err(e) => Outcome::Error(e),
        };
        let url = render(&self.template, p).url;
        next_status(p, &outcome, &url, &self.config, chrono::Utc::now())
    }

    async fn pass(
        &self,
        p: &Preview,
        service: Option<Option<ObservedService>>,
        started: Instant,
    ) -> Result<Verdict, ExecuteError> {
        let w = render(&self.template, p);
        let observe_err = |source| ExecuteError::Cloud {
            step: "Observe",
            source,
        };
        let o = self
            .observer
            .observe(p, &w, service, Freshness::Cached)
            .await
            .map_err(observe_err)?;
        let first = plan(&self.template, p, &w, &o, &BTreeSet::new());
        // Act only on what is true now: a plan that changes anything, or
        // that makes a new claim (gone, failed, or Ready for a generation
        // not yet Ready), is made again on listings fetched after this pass
        // began, with the priorities other rows hold. A cached listing may
        // predate a deletion by someone else (a sweep, a person).
        let already_ready =
            p.status.phase == Phase::Ready && p.status.observed_generation == p.generation;
        let acting = !first.changes.is_empty()
            || matches!(first.verdict, Verdict::Gone | Verdict::Failed(_))
            || (first.verdict == Verdict::Ready && !already_ready);
        let mut choosing = None;
        let Plan { changes, verdict } = if acting {
            let o = self
                .observer
                .observe(p, &w, None, Freshness::After(started))
                .await
                .map_err(observe_err)?;
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
            choosing = planned.changes.iter().find_map(|c| match c {
                Change::ReservePriority(prio) => Some(*prio),
                _ => None,
            });
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
            execute(
                &self.cloud,
                &self.dns,
                self.store.as_ref(),
                &p.key,
                &changes,
            )
            .await?;
        }
        Ok(verdict)
    }

    /// The ELB resources a plan modifies or deletes still carry this
    /// preview's tags, read now: the listings' tags are remembered by ARN,
    /// and a remembered tag never licenses a change. One DescribeTags, and
    /// only for a pass that touches an existing rule or target group.
    async fn verify_ownership(&self, p: &Preview, changes: &[Change]) -> Result<(), ExecuteError> {
        let arns: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                Change::ModifyRule { arn, .. }
                | Change::DeleteRule { arn, .. }
                | Change::DeleteTargetGroup { arn, .. } => Some(arn.clone()),
                _ => None,
            })
            .collect();
        let refused = |source| ExecuteError::Cloud {
            step: "VerifyOwnership",
            source,
        };
        let found = self.observer.fresh_tags(&arns).await.map_err(refused)?;
        let id = self.template.controller_id.as_str();
        for arn in &arns {
            // Gone already: deleting it succeeds anyway, and modifying it
            // fails with NotFound and is planned again.
            let Some(tags) = found.get(arn) else {
                continue;
            };
            if tags::owner_slug(tags, id) != Some(p.slug.as_str()) {
                return Err(refused(CloudError::Transient {
                    code: "OwnershipChanged".into(),
                    message: format!(
                        "{arn} no longer carries previewd's tags for {}; leaving it alone and observing again",
                        p.slug
                    ),
                }));
            }
        }
        Ok(())
    }
}
