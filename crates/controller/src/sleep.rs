//! The idle check and the wake: previewd's side of sleep (issue 18).
//!
//! Every `sleep.check_interval` the idle check looks at the previews that
//! could sleep (awake, Ready). Only when one of them is due, that is could
//! be idle by now given its last request the check knows of
//! (`previewd_core::sleep::due`), it reads the request counts of all of
//! them from CloudWatch, 500 to a GetMetricData request, remembers each
//! one's last request, and puts to sleep those no one visited for
//! `sleep.idle_after` (`previewd_core::sleep::idle`) with `Command::Sleep`. The reconcile loop does the rest, as for any
//! other change of desired state: the rule to the waker, the service to 0.
//! A visit to the waker applies `Command::Wake` (`previewd_api::waker`).
//!
//! # Guarantees
//! - No preview due, no request: a check with nothing due costs nothing,
//!   so a preview visited now costs no read until `idle_after` later.
//! - A preview truly idle at a check is due at it (`sleep::due`): skipping
//!   reads delays no sleep.
//! - A failed check sleeps nobody and is tried again at the next interval.

use crate::Reconciler;
use previewd_core::command::Command;
use previewd_core::model::{Desired, ListFilter, Phase, Preview, Timestamp};
use previewd_core::ports::{Metrics, RequestCount, RequestCountQuery};
use previewd_core::sleep::{self, Candidate, Ripe, Seen};
use previewd_core::{CloudError, PreviewKey, ResourceNames};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why an idle check stopped.
#[derive(Debug, thiserror::Error)]
pub enum SleepError {
    #[error("listing previews: {0}")]
    List(#[source] previewd_core::ports::StoreError),
    #[error("listing target groups: {0}")]
    TargetGroups(#[source] CloudError),
    #[error("GetMetricData: {0}")]
    RequestCounts(#[source] CloudError),
    #[error("putting {key} to sleep: {source}")]
    Sleep {
        key: PreviewKey,
        #[source]
        source: previewd_core::ports::StoreError,
    },
}

/// The idle check. Which previews may sleep, and where, comes from the
/// reconciler: its pool (the listener each preview is placed on), its
/// projects (each preview's names) and `config.wakers`.
pub struct Sleeper {
    pub reconciler: Arc<Reconciler>,
    pub metrics: Arc<dyn Metrics>,
    /// `sleep.idle_after`.
    pub idle_after: Duration,
    /// `sleep.check_interval`.
    pub check_interval: Duration,
}

impl Sleeper {
    /// Runs a check every `check_interval` until cancelled, remembering
    /// between checks the last request each read found.
    pub async fn run(self, cancel: CancellationToken) {
        let mut every = tokio::time::interval(self.check_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = Seen::new();
        let clock = self.reconciler.config.clock;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = every.tick() => {}
            }
            match self.check_with(clock(), &mut seen).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(previews = n, "idle previews put to sleep"),
                Err(e) => {
                    tracing::warn!(error = %e, "idle check failed; trying again next interval")
                }
            }
        }
    }

    /// One idle check at `now` knowing no earlier read: how many previews
    /// it put to sleep.
    pub async fn check(&self, now: Timestamp) -> Result<usize, SleepError> {
        self.check_with(now, &mut Seen::new()).await
    }

    /// One idle check at `now`, given (and updating) the last requests
    /// earlier reads found.
    pub async fn check_with(&self, now: Timestamp, seen: &mut Seen) -> Result<usize, SleepError> {
        let store = &self.reconciler.store;
        let rows = store
            .list(&ListFilter {
                phase: Some(Phase::Ready),
                desired: Some(Desired::Present),
                ..ListFilter::default()
            })
            .await
            .map_err(SleepError::List)?;
        let awake: Vec<(Candidate, &Preview)> = rows
            .iter()
            .filter_map(|p| sleep::candidate(p).map(|c| (c, p)))
            .collect();
        let all: Vec<Candidate> = awake.iter().map(|(c, _)| c.clone()).collect();
        if !sleep::due(&all, seen, now, self.idle_after) {
            sleep::remember(seen, &all, &BTreeMap::new(), now);
            return Ok(0);
        }
        let r = &self.reconciler;
        // Each preview with its own project's names.
        let wanted: Vec<(Candidate, &Preview, Option<String>)> = awake
            .into_iter()
            .map(|(c, p)| {
                let name = r
                    .projects
                    .template(&p.key.project)
                    .map(|t| ResourceNames::new(&t.naming, &p.slug, &p.host_label).target_group);
                (c, p, name)
            })
            .collect();
        let observer = &r.observer;
        // A listing up to idle_after old will do (reconcile passes list at
        // every resync), so a check costs no listing of its own: a group
        // made anew (deleted behind previewd's back) takes its preview out
        // of Ready until it serves again, and a preview sleeps only
        // idle_after after its Ready, by when such a listing has the new
        // ARN. A candidate missing from it (deployed since) asks for a
        // fresh one.
        let mut groups = observer
            .target_groups_within(self.idle_after)
            .await
            .map_err(SleepError::TargetGroups)?;
        if wanted.iter().any(|(_, _, name)| {
            name.as_ref()
                .is_some_and(|n| !groups.iter().any(|g| &g.name == n))
        }) {
            groups = observer
                .cached_target_groups()
                .await
                .map_err(SleepError::TargetGroups)?;
        }
        let arn_of: BTreeMap<&str, &str> = groups
            .iter()
            .map(|g| (g.name.as_str(), g.arn.as_str()))
            .collect();
        // Each preview on its own listener; one whose group is not listed,
        // or whose listener's load balancer has no waker, is left awake
        // (`sleep::queries`).
        let ripe: Vec<Ripe<'_>> = wanted
            .into_iter()
            .map(|(candidate, p, name)| Ripe {
                candidate,
                listener: r.pool.recorded(p.listener_arn.as_deref(), p.rule_priority),
                target_group_arn: name.and_then(|n| arn_of.get(n.as_str()).copied()),
            })
            .collect();
        let (candidates, queries): (Vec<Candidate>, Vec<RequestCountQuery>) =
            sleep::queries(ripe, &r.config.wakers).into_iter().unzip();
        if queries.is_empty() {
            return Ok(0);
        }
        let counts = self
            .metrics
            .request_counts(&queries, self.idle_after)
            .await
            .map_err(SleepError::RequestCounts)?;
        let read: BTreeMap<PreviewKey, RequestCount> = candidates
            .iter()
            .zip(counts)
            .map(|(c, n)| (c.key.clone(), n))
            .collect();
        sleep::remember(seen, &all, &read, now);
        let counts: BTreeMap<PreviewKey, f64> =
            read.iter().map(|(k, n)| (k.clone(), n.sum)).collect();
        let generation: BTreeMap<&PreviewKey, i64> =
            rows.iter().map(|p| (&p.key, p.generation)).collect();
        let mut slept = 0;
        for key in sleep::idle(&candidates, &counts, now, self.idle_after) {
            let generation = generation.get(&key).copied().unwrap_or_default();
            let command = Command::Sleep {
                key: key.clone(),
                generation,
            };
            let effect = store
                .apply(&command, now)
                .await
                .map_err(|source| SleepError::Sleep { key, source })?;
            if effect.changed() {
                slept += 1;
            }
        }
        crate::metrics::slept(slept);
        Ok(slept)
    }
}
