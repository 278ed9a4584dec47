//! The idle check and the wake: previewd's side of sleep (issue 18).
//!
//! Every `sleep.check_interval` the idle check reads the request counts of
//! the previews that could sleep (awake, Ready, serving for at least
//! `sleep.idle_after`) from CloudWatch, 500 to a GetMetricData request,
//! and puts to sleep those no one visited (`previewd_core::sleep::idle`)
//! with `Command::Sleep`. The reconcile loop does the rest, as for any
//! other change of desired state: the rule to the waker, the service to 0.
//! A visit to the waker applies `Command::Wake` (`previewd_api::waker`).
//!
//! # Guarantees
//! - No preview that could sleep, no request: a check with nothing ripe
//!   costs nothing.
//! - A failed check sleeps nobody and is tried again at the next interval.

use crate::Reconciler;
use previewd_core::command::Command;
use previewd_core::model::{Desired, ListFilter, Phase, Preview, Timestamp};
use previewd_core::ports::{Metrics, RequestCountQuery};
use previewd_core::sleep::{self, Candidate, Ripe};
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
    /// Runs a check every `check_interval` until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        let mut every = tokio::time::interval(self.check_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = every.tick() => {}
            }
            match self.check(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(previews = n, "idle previews put to sleep"),
                Err(e) => {
                    tracing::warn!(error = %e, "idle check failed; trying again next interval")
                }
            }
        }
    }

    /// One idle check at `now`: how many previews it put to sleep.
    pub async fn check(&self, now: Timestamp) -> Result<usize, SleepError> {
        let store = &self.reconciler.store;
        let rows = store
            .list(&ListFilter {
                phase: Some(Phase::Ready),
                desired: Some(Desired::Present),
                ..ListFilter::default()
            })
            .await
            .map_err(SleepError::List)?;
        let ripe: Vec<(Candidate, &Preview)> = rows
            .iter()
            .filter_map(|p| sleep::candidate(p).map(|c| (c, p)))
            .filter(|(c, _)| {
                chrono::Duration::from_std(self.idle_after).is_ok_and(|d| c.awake_since + d <= now)
            })
            .collect();
        if ripe.is_empty() {
            return Ok(0);
        }
        let groups = self
            .reconciler
            .observer
            .cached_target_groups()
            .await
            .map_err(SleepError::TargetGroups)?;
        let arn_of: BTreeMap<&str, &str> = groups
            .iter()
            .map(|g| (g.name.as_str(), g.arn.as_str()))
            .collect();
        let r = &self.reconciler;
        // Each preview with its own project's names and its own listener;
        // one whose group is not listed, or whose listener's load balancer
        // has no waker, is left awake (`sleep::queries`).
        let ripe: Vec<Ripe<'_>> = ripe
            .into_iter()
            .map(|(candidate, p)| {
                let target_group_arn = r.projects.template(&p.key.project).and_then(|t| {
                    let names = ResourceNames::new(&t.naming, &p.slug, &p.host_label);
                    arn_of.get(names.target_group.as_str()).copied()
                });
                Ripe {
                    candidate,
                    listener: r.pool.recorded(p.listener_arn.as_deref(), p.rule_priority),
                    target_group_arn,
                }
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
        let counts: BTreeMap<PreviewKey, f64> = candidates
            .iter()
            .zip(counts)
            .map(|(c, n)| (c.key.clone(), n))
            .collect();
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
