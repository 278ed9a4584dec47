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
//! - What is unwanted, when it may go and which changes delete it are
//!   decided in `previewd_core::gc`; the deletions are `Change`s applied
//!   by the reconciler's executor, exactly as a teardown's are.
//! - One sweep at a time across replicas: a sweep that changes anything
//!   holds the store's sweep lock (on PostgreSQL an advisory lock), and a
//!   replica that cannot get it skips that sweep.

use crate::Cloud;
use crate::execute::{Executor, Subject};
use previewd_core::CloudError;
use previewd_core::command::Command;
use previewd_core::gc::{self, OwnedResource, Recheck, ResourceKind};
pub use previewd_core::gc_report::{Planned, SweepOptions, SweepReport};
use previewd_core::model::{Desired, ListFilter, Preview, Timestamp};
use previewd_core::naming;
use previewd_core::observed::ServiceStatus;
use previewd_core::ports::{CloudResult, Store, StoreError};
use previewd_core::projects::Projects;
use previewd_core::render::{DnsMode, Template};
use previewd_core::{tagged, tags};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    /// Every listener whose rules are looked at.
    pub pool: Arc<previewd_core::pool::Pool>,
    /// Every project, when several are configured: the sweep lists each
    /// naming prefix once and destroys the previews of retired projects.
    /// `None`: `template` alone.
    pub projects: Option<Arc<Projects>>,
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
        let mut due = self.store.list(&filter).await.map_err(SweepError::Store)?;
        due.extend(self.retired_rows(now).await?);
        for p in due {
            if !opts.dry_run {
                // The store wakes the loop for the rows this marks absent.
                let expire = Command::Expire(p.key.clone());
                if let Err(e) = self.store.apply(&expire, now).await {
                    report.errors.push(format!("expire {}: {e}", p.key));
                    continue;
                }
                tracing::info!(key = %p.key, expires_at = ?p.expires_at, "preview expired; destroying");
            }
            report.expired.push(p.key);
        }
        if !opts.dry_run && !report.expired.is_empty() {
            crate::metrics::expired(report.expired.len());
        }
        // Expiry stands even if collecting fails: report both.
        if let Err(e) = self.collect(opts, now, &mut report).await {
            report.errors.push(e.to_string());
        }
        Ok(report)
    }

    /// Finds, and unless braked or dry, deletes what no row wants. Which
    /// resources, when, and with which changes is decided in
    /// `previewd_core::gc`; this lists, records sightings, leases and
    /// executes.
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
        let schedule = gc::schedule(candidates, first_seen, opts, now);
        if schedule.braked {
            tracing::warn!(
                due = schedule.planned.iter().filter(|p| p.due).count(),
                brake = opts.max_deletions,
                "garbage collection braked: more deletions due than allowed; deleting none"
            );
        }
        let deleted = if opts.dry_run {
            Ok(())
        } else {
            self.delete(schedule.deletable(), report).await
        };
        report.braked = schedule.braked;
        report.unwanted = schedule.planned;
        deleted
    }

    /// Deletes `due` through the reconciler's executor, each resource on
    /// its own so one failure stops no other, after looking at the rows
    /// again ([`gc::recheck`]).
    async fn delete<'a>(
        &self,
        due: impl Iterator<Item = &'a Planned>,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let due: Vec<&Planned> = due.collect();
        if due.is_empty() {
            return Ok(());
        }
        let owner = format!("gc-{}-{:08x}", std::process::id(), rand::random::<u32>());
        let rows = self
            .store
            .list(&ListFilter::default())
            .await
            .map_err(SweepError::Store)?;
        let by_slug: HashMap<&str, &Preview> = rows.iter().map(|p| (p.slug.as_str(), p)).collect();
        let mut go: HashMap<&str, bool> = HashMap::new();
        let mut leased = Vec::new();
        for p in &due {
            let slug = p.candidate.resource.slug.as_str();
            if go.contains_key(slug) {
                continue;
            }
            let row = by_slug.get(slug).copied();
            let ok = match (gc::recheck(p.candidate.reason, row), row) {
                (Recheck::Delete, _) => true,
                (Recheck::LeaseRow, Some(row)) => {
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
        let executor = Executor {
            cloud: &self.cloud,
            dns: None,
            store: self.store.as_ref(),
            listener: None,
        };
        for p in due
            .into_iter()
            .filter(|p| go.get(p.candidate.resource.slug.as_str()) == Some(&true))
        {
            let r = &p.candidate.resource;
            let subject = Subject::Leftovers(&r.slug);
            match executor.execute(subject, &gc::deletion(r)).await {
                Ok(_) => {
                    report.deleted += 1;
                    crate::metrics::swept(&r.kind);
                    tracing::info!(kind = %r.kind, id = %r.id, slug = %r.slug, reason = %p.candidate.reason, "garbage collected");
                }
                Err(e) => {
                    let cause = e.cloud().map_or_else(|| e.to_string(), ToString::to_string);
                    report
                        .errors
                        .push(format!("delete {} {}: {cause}", r.kind, r.id));
                }
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

    /// The present rows of retired projects: the sweep destroys them like
    /// expired ones, with their own project's template, so removing the
    /// project afterwards leaves nothing behind.
    async fn retired_rows(&self, now: Timestamp) -> Result<Vec<Preview>, SweepError> {
        let Some(projects) = &self.projects else {
            return Ok(Vec::new());
        };
        if !projects.iter().any(|p| p.retired) {
            return Ok(Vec::new());
        }
        let filter = ListFilter {
            desired: Some(Desired::Present),
            ..Default::default()
        };
        let rows = self.store.list(&filter).await.map_err(SweepError::Store)?;
        Ok(rows
            .into_iter()
            .filter(|p| projects.get(&p.key.project).is_some_and(|c| c.retired))
            .filter(|p| p.expires_at.is_none_or(|at| at > now))
            .inspect(|p| tracing::info!(key = %p.key, "its project is retired; destroying"))
            .collect())
    }

    /// The naming prefixes of every project (one listing each at most)
    /// and whether any keeps DNS records.
    fn scope(&self) -> (Vec<String>, bool) {
        match &self.projects {
            Some(p) => (p.prefixes(), p.any_alias_dns()),
            None => (
                vec![self.template.naming.prefix.clone()],
                !matches!(self.template.dns, DnsMode::Wildcard),
            ),
        }
    }

    /// Every resource carrying our controller id.
    async fn inventory(&self) -> CloudResult<Vec<OwnedResource>> {
        let id = self.template.controller_id.as_str();
        let (prefixes, alias_dns) = self.scope();
        let families: Vec<String> = prefixes.iter().map(|p| naming::family_prefix(p)).collect();
        let common = previewd_core::projects::common_prefix(&families);
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
        if alias_dns {
            out.extend(gc::dns_names(id, self.cloud.dns.records().await?));
        }
        for s in self.cloud.services_under(&families).await? {
            if s.status == ServiceStatus::Active
                && let Some(mut r) = own(ResourceKind::Service, s.name.clone(), &s.tags)
            {
                r.desired_count = s.desired_count;
                r.task_definition = Some(s.task_definition.clone());
                out.push(r);
            }
        }
        let lb = self.cloud.load_balancer.as_ref();
        for listener in self.pool.arns() {
            for rule in tagged::listener(lb, listener).await?.rules {
                out.extend(own(
                    ResourceKind::ListenerRule,
                    rule.arn.clone(),
                    &rule.tags,
                ));
            }
        }
        // One target-group listing for every prefix (filtered on our side);
        // families and log groups filter server-side, one listing a prefix.
        for tg in tagged::target_groups(lb, &common).await? {
            if previewd_core::projects::under_any(&tg.name, &families) {
                out.extend(own(ResourceKind::TargetGroup, tg.arn.clone(), &tg.tags));
            }
        }
        for prefix in &prefixes {
            let family_prefix = naming::family_prefix(prefix);
            for family in self
                .cloud
                .compute
                .task_definition_families(&family_prefix)
                .await?
            {
                if let Some(td) = self.cloud.compute.task_definition(&family).await? {
                    out.extend(own(ResourceKind::TaskDefinitions, family, &td.tags));
                }
            }
            let log_prefix = naming::log_group_prefix(prefix);
            for lg in tagged::log_groups(self.cloud.logs.as_ref(), &log_prefix).await? {
                out.extend(own(ResourceKind::LogGroup, lg.name.clone(), &lg.tags));
            }
        }
        Ok(out)
    }
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
