//! Batched, cached observation of AWS, shared by every reconcile.
//!
//! Listings that cover all previews at once — the listener's rules, the
//! target groups, the log groups, the zone's records — are fetched once and
//! shared, the way Kubernetes informers share one watch. A pass that only
//! confirms the steady state may use a listing up to `cache_max_age` old; a
//! pass that is about to change something asks for one fetched after it
//! started, and concurrent askers share a single fetch.
//!
//! The listener's rules and the target groups are listed without their
//! tags too: an ELB ARN is never reused, so its tags are read once (twenty
//! per DescribeTags) and kept by ARN, read again after `elb_tags_max_age`
//! and dropped when the ARN leaves the listing. A listing of a thousand rules
//! then costs three DescribeRules, not fifty DescribeTags more. Before a
//! pass modifies or deletes an ELB resource it reads that resource's tags
//! afresh (`Reconciler::verify_ownership`), so nothing is changed on the
//! strength of a remembered tag.
//!
//! Log groups are listed without their tags (AWS's DescribeLogGroups has
//! none; ListTagsForResource costs one request per group). A group's tags
//! are read once and kept by name while the group stays in the listing; a
//! pass about to act reads its own group's tags afresh, so nothing is ever
//! changed on the strength of a remembered tag.

use crate::Cloud;
use previewd_core::model::Preview;
use previewd_core::observed::*;
use previewd_core::operations::Op;
use previewd_core::plan::{
    Observation, needs_stopped_reason, needs_target_health, needs_task_definition,
};
use previewd_core::ports::CloudResult;
use previewd_core::render::{DnsMode, Template, Wanted};
use previewd_core::tags::{self, Tags};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

mod elb_tags;

/// One shared listing, when its fetch began and how long it took.
struct Cache<T> {
    slot: Mutex<Option<(Instant, Duration, Arc<T>)>>,
}

impl<T> Cache<T> {
    fn new() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }

    /// The cached value if it began after `not_before` (or at all, when
    /// `pacing.stale_ok`), else a new fetch. Under pressure it begins no
    /// sooner than `pacing.gap`, or as long as the last fetch took if
    /// longer, after the last one began: a listing whose pages waited for
    /// their tokens is not fetched again before the bucket has refilled as
    /// much, so its cost can never outgrow the bucket.
    /// Holding the lock across the fetch (and the wait before it) makes
    /// concurrent askers share the one fetch instead of each starting
    /// their own; the gap keeps a stream of passes that each want a fresh
    /// listing from spending a shared bucket (ELB's 10 requests/s for the
    /// whole account) on back-to-back fetches, writes starving behind them.
    async fn get<F, Fut>(
        &self,
        not_before: Instant,
        pacing: Pacing,
        fetch: F,
    ) -> CloudResult<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CloudResult<T>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, _, v)) = slot.as_ref()
            && (*at >= not_before || pacing.stale_ok)
        {
            return Ok(v.clone());
        }
        if let Some((at, took, _)) = slot.as_ref()
            && !pacing.gap.is_zero()
        {
            tokio::time::sleep_until(*at + pacing.gap.max(*took)).await;
        }
        let started = Instant::now();
        let v = Arc::new(fetch().await?);
        *slot = Some((started, started.elapsed(), v.clone()));
        Ok(v)
    }
}

/// How a listing may be fetched now, by how full the pacer finds its buckets.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    /// The least time since the last fetch began.
    gap: Duration,
    /// Whether an expired listing will do for a pass that only confirms.
    stale_ok: bool,
}

pub struct Observer {
    cloud: Cloud,
    template: Arc<Template>,
    max_age: Duration,
    /// The least time between two fetches of one listing, while the
    /// listing's buckets run low.
    min_gap: Duration,
    listener: Cache<ListenerState>,
    target_groups: Cache<Vec<ObservedTargetGroup>>,
    log_groups: Cache<Vec<ObservedLogGroup>>,
    records: Cache<Vec<DnsRecord>>,
    /// Every service of ours by name (ListServices, then DescribeServices
    /// ten at a time), for resyncs of Ready previews.
    services: Cache<HashMap<String, ObservedService>>,
    /// Task definition ARN → its spec-hash tag. Revisions never change, so
    /// an entry is true forever and a steady resync costs no describe.
    revision_hashes: std::sync::Mutex<HashMap<String, String>>,
    /// Log group name → its tags as last read. Dropped when the group is
    /// missing from a listing (it may come back as someone else's).
    log_group_tags: std::sync::Mutex<HashMap<String, Tags>>,
    /// Rule and target group ARN → its tags and when they were read.
    elb_tags: std::sync::Mutex<HashMap<String, (Tags, Instant)>>,
    /// How long a listing trusts a remembered ELB tag.
    elb_tags_max_age: Duration,
}

/// How fresh an observation must be.
#[derive(Debug, Clone, Copy)]
pub enum Freshness {
    /// Listings up to the cache's max age will do.
    Cached,
    /// Listings must have been fetched after this instant.
    After(Instant),
}

impl Observer {
    pub fn new(
        cloud: Cloud,
        template: Arc<Template>,
        max_age: Duration,
        min_gap: Duration,
        elb_tags_max_age: Duration,
    ) -> Self {
        Self {
            cloud,
            template,
            max_age,
            min_gap,
            listener: Cache::new(),
            target_groups: Cache::new(),
            log_groups: Cache::new(),
            records: Cache::new(),
            services: Cache::new(),
            revision_hashes: std::sync::Mutex::new(HashMap::new()),
            log_group_tags: std::sync::Mutex::new(HashMap::new()),
            elb_tags: std::sync::Mutex::new(HashMap::new()),
            elb_tags_max_age,
        }
    }

    /// The spec hash of the revision an ACTIVE service runs.
    async fn running_hash(&self, service: Option<&ObservedService>) -> CloudResult<Option<String>> {
        let Some(arn) = service
            .filter(|s| s.status == ServiceStatus::Active)
            .map(|s| s.task_definition.clone())
        else {
            return Ok(None);
        };
        if let Some(hash) = self.revision_hashes.lock().expect("not poisoned").get(&arn) {
            return Ok(Some(hash.clone()));
        }
        let td = self.cloud.compute.task_definition(&arn).await?;
        let hash = td.and_then(|td| td.tags.get(tags::SPEC_HASH).cloned());
        // Only a found hash is forever; a miss (eventual consistency right
        // after registering) is asked again next time.
        if let Some(h) = &hash {
            self.revision_hashes
                .lock()
                .expect("not poisoned")
                .insert(arn, h.clone());
        }
        Ok(hash)
    }

    /// The listed group with its tags: remembered ones for a pass that
    /// only confirms, fresh ones for a pass about to act. `None` if the
    /// group is gone by the time its tags are asked for.
    async fn with_tags(
        &self,
        lg: &ObservedLogGroup,
        freshness: Freshness,
    ) -> CloudResult<Option<ObservedLogGroup>> {
        let known = match freshness {
            Freshness::Cached => self
                .log_group_tags
                .lock()
                .expect("not poisoned")
                .get(&lg.name)
                .cloned(),
            Freshness::After(_) => None,
        };
        let tags = match known {
            Some(t) => t,
            None => match self.cloud.logs.log_group_tags(&lg.name).await? {
                Some(t) => {
                    self.log_group_tags
                        .lock()
                        .expect("not poisoned")
                        .insert(lg.name.clone(), t.clone());
                    t
                }
                None => {
                    self.forget_tags(&lg.name);
                    return Ok(None);
                }
            },
        };
        Ok(Some(ObservedLogGroup { tags, ..lg.clone() }))
    }

    fn forget_tags(&self, name: &str) {
        self.log_group_tags
            .lock()
            .expect("not poisoned")
            .remove(name);
    }

    /// How a listing (by its first request's operation, `key`) may be fetched now. While the
    /// pacer finds the listing's buckets under half full, a new fetch waits
    /// `min_gap` after the last one began, so listings leave room for
    /// writes, and a pass that only confirms (`confirming`) makes do with
    /// the listing it has, however old: a resync round must not spend more
    /// than the bucket refills (at N=1,000 one listing of the services is
    /// 110 requests, five seconds of ECS's 20 per second). With the buckets
    /// full, nothing waits, so an idle controller acts at once. Without a
    /// pacer there is no telling: the gap always holds and caches expire.
    fn pacing(&self, key: Op, confirming: bool) -> Pacing {
        let pressed = match &self.cloud.pacer {
            Some(p) => p.under_pressure(&key, Instant::now().into_std()),
            None => true,
        };
        Pacing {
            gap: if pressed {
                self.min_gap
            } else {
                Duration::ZERO
            },
            stale_ok: confirming && pressed && self.cloud.pacer.is_some(),
        }
    }

    fn family_prefix(&self) -> String {
        previewd_core::naming::family_prefix(&self.template.naming.prefix)
    }

    /// The services of many previews, ten per AWS call.
    pub async fn services(&self, names: &[String]) -> CloudResult<Vec<ObservedService>> {
        self.cloud.compute.services(names).await
    }

    /// Every service of ours, from a listing at most `max_age` old: what a
    /// resync of Ready previews reads, so a whole round costs one ListServices
    /// and a DescribeServices per ten services. A pass that finds something
    /// to change observes afresh before it acts.
    pub async fn cached_services(&self) -> CloudResult<Arc<HashMap<String, ObservedService>>> {
        let not_before = Instant::now()
            .checked_sub(self.max_age)
            .unwrap_or_else(Instant::now);
        let prefix = self.family_prefix();
        self.services
            .get(not_before, self.pacing(Op::ListServices, true), || async {
                let found = self.cloud.services_named(&prefix).await?;
                Ok(found.into_iter().map(|s| (s.name.clone(), s)).collect())
            })
            .await
    }

    /// What AWS holds for one preview. `service` is passed in when the
    /// caller already described it as part of a batch.
    pub async fn observe(
        &self,
        p: &Preview,
        w: &Wanted,
        service: Option<Option<ObservedService>>,
        freshness: Freshness,
    ) -> CloudResult<Observation> {
        let not_before = match freshness {
            Freshness::Cached => Instant::now()
                .checked_sub(self.max_age)
                .unwrap_or_else(Instant::now),
            Freshness::After(t) => t,
        };
        let prefix = self.family_prefix();
        let log_prefix = previewd_core::naming::log_group_prefix(&self.template.naming.prefix);
        let wildcard = matches!(self.template.dns, DnsMode::Wildcard);
        let confirming = matches!(freshness, Freshness::Cached);
        let (listener, tgs, lgs, records) = tokio::try_join!(
            self.listener.get(
                not_before,
                self.pacing(Op::DescribeRules, confirming),
                || self.fetch_listener()
            ),
            self.target_groups.get(
                not_before,
                self.pacing(Op::DescribeTargetGroups, confirming),
                || self.fetch_target_groups(&prefix)
            ),
            self.log_groups.get(
                not_before,
                self.pacing(Op::DescribeLogGroups, confirming),
                || self.cloud.logs.log_groups_without_tags(&log_prefix)
            ),
            async {
                if wildcard {
                    Ok(Arc::new(Vec::new()))
                } else {
                    self.records
                        .get(
                            not_before,
                            self.pacing(Op::ListResourceRecordSets, confirming),
                            || self.cloud.dns.records(),
                        )
                        .await
                }
            },
        )?;
        let service = match service {
            Some(s) => s,
            None => {
                let found = self
                    .cloud
                    .compute
                    .services(std::slice::from_ref(&w.names.service))
                    .await?;
                found.into_iter().find(|s| s.name == w.names.service)
            }
        };
        let service_spec_hash = self.running_hash(service.as_ref()).await?;
        let wanted = &w.task_definition.spec_hash;
        let task_definition = if needs_task_definition(p, wanted, service_spec_hash.as_deref()) {
            self.cloud.compute.task_definition(&w.names.family).await?
        } else {
            None
        };
        let target_group = tgs
            .iter()
            .find(|tg| tg.name == w.names.target_group)
            .cloned();
        let target_health = match (&target_group, needs_target_health(p, service.as_ref())) {
            (Some(tg), true) => Some(self.cloud.load_balancer.target_health(&tg.arn).await?),
            _ => None,
        };
        let stopped_reason = if needs_stopped_reason(p, service.as_ref()) {
            self.cloud.compute.stopped_reason(&w.names.service).await?
        } else {
            None
        };
        let log_group = match lgs.iter().find(|lg| lg.name == w.names.log_group) {
            Some(lg) => self.with_tags(lg, freshness).await?,
            None => {
                self.forget_tags(&w.names.log_group);
                None
            }
        };
        Ok(Observation {
            log_group,
            task_definition,
            service,
            service_spec_hash,
            target_group,
            listener: (*listener).clone(),
            records: records
                .iter()
                .filter(|r| r.name == w.names.host)
                .cloned()
                .collect(),
            target_health,
            stopped_reason,
        })
    }
}
