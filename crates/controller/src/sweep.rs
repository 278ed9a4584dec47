//! Garbage collection sweeps: expire previews past their TTL, and delete
//! resources of ours that no row wants.
//!
//! # Guarantees
//! - Only resources carrying our controller id (DNS: our TXT marker) are
//!   listed, so nothing else can become a candidate.
//! - A candidate is deleted only after it has stayed unwanted for the grace
//!   period; first sightings live in the store, so this holds across
//!   restarts and one-shot `previewd gc` runs.
//! - If more candidates are due than the brake allows, the sweep deletes
//!   nothing and says so: a sudden mass of orphans more likely means a lost
//!   database or a wrong controller id than real garbage.
//! - Expired previews are only marked absent; the reconciler tears them
//!   down like any destroy, with its reports.
//! - Idempotent: a sweep that dies midway is simply run again.
//! - One sweep at a time across replicas: a sweep that changes anything
//!   holds the store's sweep lock (on PostgreSQL an advisory lock), and a
//!   replica that cannot get it skips that sweep.

use crate::Cloud;
use chrono::Duration as ChronoDuration;
use previewd_core::CloudError;
use previewd_core::gc::{self, OwnedResource, Reason, ResourceKind};
pub use previewd_core::gc_report::{Planned, SweepOptions, SweepReport};
use previewd_core::model::{Desired, ListFilter, Timestamp};
use previewd_core::observed::{RecordType, ServiceStatus};
use previewd_core::ports::{CloudResult, Store, StoreError};
use previewd_core::render::{DnsAction, DnsChange, DnsMode, Template};
use previewd_core::{tagged, tags};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a sweep may hold a half-deleted row while deleting leftovers.
const GC_LEASE: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("listing resources: {0}")]
    Inventory(#[source] CloudError),
    #[error("reading previews: {0}")]
    Store(#[source] StoreError),
    /// Another replica holds the sweep lock; this sweep did nothing.
    #[error("another replica is sweeping right now")]
    Busy,
    #[error("taking the sweep lock: {0}")]
    Lock(#[source] StoreError),
}

/// The API's view of garbage collection: a dry run of the next sweep with
/// the daemon's options.
pub struct GcPreview {
    pub sweeper: Arc<Sweeper>,
    pub options: SweepOptions,
}

#[async_trait::async_trait]
impl previewd_core::gc_report::GcDryRun for GcPreview {
    async fn dry_run(&self, now: Timestamp) -> Result<SweepReport, String> {
        let options = SweepOptions {
            dry_run: true,
            ..self.options.clone()
        };
        self.sweeper
            .sweep(&options, now)
            .await
            .map_err(|e| e.to_string())
    }
}

pub struct Sweeper {
    pub cloud: Cloud,
    pub store: Arc<dyn Store>,
    pub template: Arc<Template>,
    /// Woken when expiry marks previews absent.
    pub wake: Arc<Notify>,
}

impl Sweeper {
    pub async fn sweep(
        &self,
        opts: &SweepOptions,
        now: Timestamp,
    ) -> Result<SweepReport, SweepError> {
        // One sweep at a time across replicas; a dry run changes nothing
        // and needs no lock. Held (and then dropped) for the whole sweep.
        let _lock = if opts.dry_run {
            None
        } else {
            match self
                .store
                .try_sweep_lock()
                .await
                .map_err(SweepError::Lock)?
            {
                Some(lock) => Some(lock),
                None => return Err(SweepError::Busy),
            }
        };
        let mut report = SweepReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let filter = ListFilter {
            desired: Some(Desired::Present),
            expired_at: Some(now),
            ..Default::default()
        };
        for p in self.store.list(&filter).await.map_err(SweepError::Store)? {
            if !opts.dry_run {
                if let Err(e) = self.store.apply_destroy(&p.key, now).await {
                    report.errors.push(format!("expire {}: {e}", p.key));
                    continue;
                }
                tracing::info!(key = %p.key, expires_at = ?p.expires_at, "preview expired; destroying");
            }
            report.expired.push(p.key);
        }
        if !opts.dry_run && !report.expired.is_empty() {
            crate::metrics::expired(report.expired.len());
            self.wake.notify_one();
        }
        // Expiry stands even if collecting fails: report both.
        if let Err(e) = self.collect(opts, now, &mut report).await {
            report.errors.push(e.to_string());
        }
        Ok(report)
    }

    /// Finds, and unless braked or dry, deletes what no row wants.
    async fn collect(
        &self,
        opts: &SweepOptions,
        now: Timestamp,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        // AWS first, rows second: see `previewd_core::gc`'s assumptions.
        let inventory = self.inventory().await.map_err(SweepError::Inventory)?;
        let rows = self
            .store
            .list(&ListFilter::default())
            .await
            .map_err(SweepError::Store)?;
        let candidates = gc::unwanted(&rows, inventory);
        let ids: Vec<String> = candidates.iter().map(|c| c.resource.identity()).collect();
        let first_seen = self
            .store
            .gc_sightings(&ids, now, !opts.dry_run)
            .await
            .map_err(SweepError::Store)?;
        let grace = ChronoDuration::from_std(opts.grace).unwrap_or(ChronoDuration::MAX);
        report.unwanted = candidates
            .into_iter()
            .zip(first_seen)
            .map(|(candidate, first_seen)| Planned {
                due: first_seen + grace <= now,
                candidate,
                first_seen,
            })
            .collect();
        let due = report.unwanted.iter().filter(|p| p.due).count();
        if due > opts.max_deletions {
            report.braked = true;
            tracing::warn!(
                due,
                brake = opts.max_deletions,
                "garbage collection braked: more deletions due than allowed; deleting none"
            );
            return Ok(());
        }
        if opts.dry_run {
            return Ok(());
        }
        // Look again just before acting. An orphan's slug must still have no
        // row; a half-deleted preview's row is leased for the deletes (only
        // while it is still absent and Deleted), so a redeploy that lands
        // meanwhile waits for us instead of racing us.
        let owner = format!("gc-{}-{:08x}", std::process::id(), rand::random::<u32>());
        let rows = self
            .store
            .list(&ListFilter::default())
            .await
            .map_err(SweepError::Store)?;
        let by_slug: HashMap<&str, &previewd_core::model::Preview> =
            rows.iter().map(|p| (p.slug.as_str(), p)).collect();
        let mut go: HashMap<&str, bool> = HashMap::new();
        let mut leased = Vec::new();
        for p in report.unwanted.iter().filter(|p| p.due) {
            let slug = p.candidate.resource.slug.as_str();
            if go.contains_key(slug) {
                continue;
            }
            let ok = match (by_slug.get(slug), p.candidate.reason) {
                (None, Reason::Orphan) => true,
                (Some(row), Reason::HalfDeleted) => {
                    let got = self
                        .store
                        .lease_deleted(&row.key, &owner, chrono::Utc::now(), GC_LEASE)
                        .await
                        .map_err(SweepError::Store)?;
                    if got {
                        leased.push(row.key.clone());
                    }
                    got
                }
                _ => false,
            };
            go.insert(slug, ok);
        }
        for p in report
            .unwanted
            .iter()
            .filter(|p| p.due && go.get(p.candidate.resource.slug.as_str()) == Some(&true))
        {
            let r = &p.candidate.resource;
            match self.delete(r).await {
                Ok(()) => {
                    report.deleted += 1;
                    crate::metrics::swept(&r.kind);
                    tracing::info!(kind = %r.kind, id = %r.id, slug = %r.slug, reason = %p.candidate.reason, "garbage collected");
                }
                Err(e) => report
                    .errors
                    .push(format!("delete {} {}: {e}", r.kind, r.id)),
            }
        }
        for key in leased {
            if let Err(e) = self.store.release_lease(&key, &owner).await {
                report
                    .errors
                    .push(format!("release {key}: {e} (the lease expires by itself)"));
            }
        }
        Ok(())
    }

    /// Every resource carrying our controller id.
    async fn inventory(&self) -> CloudResult<Vec<OwnedResource>> {
        let id = self.template.controller_id.as_str();
        let prefix = format!("{}-", self.template.naming.prefix);
        let own = |kind, id_: String, t: &tags::Tags| {
            tags::owner_slug(t, id).map(|slug| OwnedResource {
                kind,
                id: id_,
                slug: slug.to_owned(),
                records: Vec::new(),
                desired_count: 0,
                task_definition: None,
            })
        };
        let mut out = Vec::new();
        if !matches!(self.template.dns, DnsMode::Wildcard) {
            out.extend(dns_inventory(id, self.cloud.dns.records().await?));
        }
        for s in self.cloud.services_named(&prefix).await? {
            if s.status == ServiceStatus::Active
                && let Some(mut r) = own(ResourceKind::Service, s.name.clone(), &s.tags)
            {
                r.desired_count = s.desired_count;
                r.task_definition = Some(s.task_definition.clone());
                out.push(r);
            }
        }
        let lb = self.cloud.load_balancer.as_ref();
        for rule in tagged::listener(lb).await?.rules {
            out.extend(own(
                ResourceKind::ListenerRule,
                rule.arn.clone(),
                &rule.tags,
            ));
        }
        for tg in tagged::target_groups(lb, &prefix).await? {
            out.extend(own(ResourceKind::TargetGroup, tg.arn.clone(), &tg.tags));
        }
        for family in self.cloud.compute.task_definition_families(&prefix).await? {
            if let Some(td) = self.cloud.compute.task_definition(&family).await? {
                out.extend(own(ResourceKind::TaskDefinitions, family, &td.tags));
            }
        }
        for lg in tagged::log_groups(self.cloud.logs.as_ref(), &format!("/ecs/{prefix}")).await? {
            out.extend(own(ResourceKind::LogGroup, lg.name.clone(), &lg.tags));
        }
        Ok(out)
    }

    async fn delete(&self, r: &OwnedResource) -> CloudResult<()> {
        let gone_is_fine = |res: CloudResult<()>| match res {
            Err(CloudError::NotFound(_)) => Ok(()),
            other => other,
        };
        let c = &self.cloud;
        match r.kind {
            ResourceKind::DnsRecords => {
                let deletes: Vec<DnsChange> = r
                    .records
                    .iter()
                    .map(|record| DnsChange {
                        action: DnsAction::Delete,
                        record: record.clone(),
                    })
                    .collect();
                c.dns.change(&deletes).await
            }
            ResourceKind::Service => {
                if r.desired_count > 0 {
                    let td = r.task_definition.clone().unwrap_or_default();
                    c.compute
                        .update_service(&r.id, &td, 0, &tags::Tags::new())
                        .await?;
                }
                gone_is_fine(c.compute.delete_service(&r.id).await)
            }
            ResourceKind::ListenerRule => gone_is_fine(c.load_balancer.delete_rule(&r.id).await),
            ResourceKind::TargetGroup => {
                gone_is_fine(c.load_balancer.delete_target_group(&r.id).await)
            }
            ResourceKind::TaskDefinitions => c.compute.deregister_task_definitions(&r.id).await,
            ResourceKind::LogGroup => gone_is_fine(c.logs.delete_log_group(&r.id).await),
        }
    }
}

/// DNS names whose TXT record carries our marker, with all their A and TXT
/// record sets.
fn dns_inventory(id: &str, records: Vec<previewd_core::observed::DnsRecord>) -> Vec<OwnedResource> {
    let marker_head = format!("\"previewd:managed-by={id};slug=");
    let mut by_name: BTreeMap<String, (Option<String>, Vec<_>)> = BTreeMap::new();
    for r in records
        .into_iter()
        .filter(|r| matches!(r.kind, RecordType::A | RecordType::Txt))
    {
        let entry = by_name.entry(r.name.clone()).or_default();
        if r.kind == RecordType::Txt
            && let Some(slug) = r
                .values
                .iter()
                .find_map(|v| v.strip_prefix(&marker_head)?.strip_suffix('"'))
        {
            entry.0 = Some(slug.to_owned());
        }
        entry.1.push(r);
    }
    by_name
        .into_iter()
        .filter_map(|(name, (slug, records))| {
            slug.map(|slug| OwnedResource {
                kind: ResourceKind::DnsRecords,
                id: name,
                slug,
                records,
                desired_count: 0,
                task_definition: None,
            })
        })
        .collect()
}

/// Runs a sweep every `interval` until cancelled.
pub async fn run_sweeps(
    sweeper: Arc<Sweeper>,
    opts: SweepOptions,
    interval: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match sweeper.sweep(&opts, chrono::Utc::now()).await {
            Ok(r) => tracing::info!(
                expired = r.expired.len(),
                unwanted = r.unwanted.len(),
                deleted = r.deleted,
                braked = r.braked,
                errors = r.errors.len(),
                "sweep done"
            ),
            Err(SweepError::Busy) => tracing::debug!("another replica is sweeping; skipped"),
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
    }
}
