//! Batched, cached observation of AWS, shared by every reconcile.
//!
//! Listings that cover all previews at once — each pool listener's rules,
//! the target groups, the log groups, the zone's records — are fetched once
//! and shared, the way Kubernetes informers share one watch. Each listener
//! of the pool has its own listing (one paged DescribeRules); one listing
//! of target groups serves them all. A pass reads the listener it is
//! placed on (its `focus`) as fresh as it needs, the others as cached,
//! which is all placement needs to count their room. A pass that only
//! confirms the steady state may use a listing up to `cache_max_age` old,
//! counted from when the row fell due (`decide::cached_look_age`); a
//! pass that is about to change something asks for one fetched after it
//! began, and concurrent askers share a single fetch.
//!
//! One observation is fetched at once: the listings, the preview's service
//! and what depends only on it (the revision it runs, the task definition,
//! why a task stopped) go out together, and what needs both (target
//! health, the log group's tags, and — on the way to Ready at a new
//! generation only — the family's ACTIVE revisions) in one more round. At 30 ms a request, a
//! pass observes in one or two latencies instead of five.
//!
//! This is the one place tags are kept. The ports list rules, target groups
//! and log groups without their tags (`previewd_core::tagged` lists with
//! them, for callers that keep none). An ELB ARN is never reused, so its
//! tags are read once (twenty per DescribeTags) and kept by ARN, read again after `elb_tags_max_age`
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
//!
//! A preview on its way to Ready whose image is in ECR has it looked for
//! (`images`), in the first round with the rest, batched across passes
//! per repository (`ImageBatcher`); a found image is remembered.

use crate::Cloud;
use crate::image_batch::ImageBatcher;
use previewd_core::model::Preview;
use previewd_core::observed::*;
use previewd_core::operations::Op;
use previewd_core::plan::{
    Observation, needs_revisions, needs_stopped_reason, needs_target_health, needs_task_definition,
};
use previewd_core::pool::Pool;
use previewd_core::ports::CloudResult;
use previewd_core::projects::Projects;
use previewd_core::render::{Template, Wanted};
use previewd_core::tags::{self, Tags};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod cache;
mod elb_tags;
mod images;
mod join;

fn listener_caches(pool: &Pool) -> BTreeMap<String, Cache<ListenerState>> {
    pool.arns().map(|a| (a.to_owned(), Cache::new())).collect()
}
mod sleep;

use cache::{Cache, Pacing};

/// The listings' first requests, whose buckets say whether they run low.
const LISTINGS: [Op; 4] = [
    Op::DescribeRules,
    Op::DescribeTargetGroups,
    Op::DescribeLogGroups,
    Op::ListResourceRecordSets,
];

pub struct Observer {
    cloud: Cloud,
    template: Arc<Template>,
    /// The listeners previews are placed on.
    pool: Arc<Pool>,
    /// Every project's template: listings cover each naming prefix, and
    /// a preview's image is checked by its own project's rules.
    projects: Arc<Projects>,
    max_age: Duration,
    /// The least time between two fetches of one listing, while the
    /// listing's buckets run low.
    min_gap: Duration,
    /// One listing per pool listener, by ARN.
    listeners: BTreeMap<String, Cache<ListenerState>>,
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
    /// Images found in ECR: never asked for again.
    found_images: std::sync::Mutex<std::collections::HashSet<previewd_core::image::EcrImage>>,
    image_batcher: ImageBatcher,
}

/// How fresh an observation must be.
#[derive(Debug, Clone, Copy)]
pub enum Freshness {
    /// Listings up to this old will do (`decide::cached_look_age`).
    Within(Duration),
    /// Listings must have been fetched after this instant.
    After(Instant),
}

/// A preview's service as the runner read it for a batch of passes
/// (`None`: it does not exist), and when the request that read it began:
/// a pass that needs a fresh observation uses it only if that was after
/// the pass began.
#[derive(Debug, Clone)]
pub struct ReadService {
    pub service: Option<ObservedService>,
    pub at: Instant,
}

/// The shared listings one observation reads.
struct Listings {
    listeners: BTreeMap<String, Arc<ListenerState>>,
    target_groups: Arc<Vec<ObservedTargetGroup>>,
    log_groups: Arc<Vec<ObservedLogGroup>>,
    records: Arc<Vec<DnsRecord>>,
}

/// The preview's service and what is read on the strength of it alone.
struct ServiceSide {
    service: Option<ObservedService>,
    service_spec_hash: Option<String>,
    task_definition: Option<ObservedTaskDefinition>,
    stopped_reason: Option<String>,
}

impl Observer {
    pub fn new(
        cloud: Cloud,
        template: Arc<Template>,
        max_age: Duration,
        min_gap: Duration,
        elb_tags_max_age: Duration,
    ) -> Self {
        let pool = Arc::new(Pool::single(&template));
        Self {
            listeners: listener_caches(&pool),
            pool,
            image_batcher: ImageBatcher::spawn(cloud.images.clone()),
            found_images: std::sync::Mutex::new(std::collections::HashSet::new()),
            cloud,
            projects: Arc::new(Projects::uniform(template.clone())),
            template,
            max_age,
            min_gap,
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

    /// Observes the listeners of `pool` instead of the template's one.
    pub fn with_pool(mut self, pool: Arc<Pool>) -> Self {
        self.listeners = listener_caches(&pool);
        self.pool = pool;
        self
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

    /// The preview's log group as listed, with its tags: remembered ones
    /// for a pass that only confirms, fresh ones for a pass about to act.
    /// `None` if it is not listed, or gone by the time its tags are asked
    /// for.
    async fn log_group(
        &self,
        listed: &[ObservedLogGroup],
        name: &str,
        freshness: Freshness,
    ) -> CloudResult<Option<ObservedLogGroup>> {
        let Some(lg) = listed.iter().find(|lg| lg.name == name) else {
            self.forget_tags(name);
            return Ok(None);
        };
        let known = match freshness {
            Freshness::Within(_) => self
                .log_group_tags
                .lock()
                .expect("not poisoned")
                .get(name)
                .cloned(),
            Freshness::After(_) => None,
        };
        let tags = match known {
            Some(t) => t,
            None => match self.cloud.logs.log_group_tags(name).await? {
                Some(t) => {
                    self.log_group_tags
                        .lock()
                        .expect("not poisoned")
                        .insert(name.to_owned(), t.clone());
                    t
                }
                None => {
                    self.forget_tags(name);
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
        let pressed = self.pressed(key);
        Pacing {
            gap: if pressed {
                self.min_gap
            } else {
                Duration::ZERO
            },
            stale_ok: confirming && pressed && self.cloud.pacer.is_some(),
        }
    }

    /// Whether the pacer finds `key`'s buckets under half full (always,
    /// without a pacer).
    fn pressed(&self, key: Op) -> bool {
        match &self.cloud.pacer {
            Some(p) => p.under_pressure(&key, Instant::now().into_std()),
            None => true,
        }
    }

    /// Whether any shared listing's buckets run low: a pass then reads the
    /// cached listings first (`previewd_core::decide::fresh_first`).
    pub fn listings_pressed(&self) -> bool {
        LISTINGS.into_iter().any(|op| self.pressed(op))
    }

    /// Serves `projects` (instead of the lone template it was built with).
    pub fn set_projects(&mut self, projects: Arc<Projects>) {
        self.projects = projects;
    }

    /// What our ECS and target-group names start with, one per distinct
    /// naming prefix.
    fn family_prefixes(&self) -> Vec<String> {
        self.projects
            .prefixes()
            .iter()
            .map(|p| previewd_core::naming::family_prefix(p))
            .collect()
    }

    /// The services of many previews, ten per AWS call.
    pub async fn services(&self, names: &[String]) -> CloudResult<Vec<ObservedService>> {
        self.cloud.compute.services(names).await
    }

    /// Every service of ours, from a listing at most `age` old, and
    /// when that listing began: what a resync of Ready previews reads, so
    /// a whole round costs one ListServices and a DescribeServices per ten
    /// services. A pass that finds something to change observes afresh
    /// before it acts.
    pub async fn cached_services(
        &self,
        age: Duration,
    ) -> CloudResult<(Instant, Arc<HashMap<String, ObservedService>>)> {
        let not_before = ago(age);
        let prefixes = self.family_prefixes();
        self.services
            .get(not_before, self.pacing(Op::ListServices, true), || async {
                let found = self.cloud.services_under(&prefixes).await?;
                Ok(found.into_iter().map(|s| (s.name.clone(), s)).collect())
            })
            .await
    }

    /// The four shared listings, fetched together; listeners other than
    /// `focus` as a cached look may be (`others_before`).
    async fn listings(
        &self,
        not_before: Instant,
        confirming: bool,
        focus: Option<&str>,
        others_before: Instant,
    ) -> CloudResult<Listings> {
        let prefixes = self.family_prefixes();
        let log_prefixes: Vec<String> = self
            .projects
            .prefixes()
            .iter()
            .map(|p| previewd_core::naming::log_group_prefix(p))
            .collect();
        let wildcard = !self.projects.any_alias_dns();
        let (listeners, (_, target_groups), (_, log_groups), records) = tokio::try_join!(
            self.listener_listings(not_before, confirming, focus, others_before),
            self.target_groups.get(
                not_before,
                self.pacing(Op::DescribeTargetGroups, confirming),
                || self.fetch_target_groups(&prefixes)
            ),
            self.log_groups.get(
                not_before,
                self.pacing(Op::DescribeLogGroups, confirming),
                // The prefix filters server-side: one listing per prefix.
                || async {
                    let mut all = Vec::new();
                    for prefix in &log_prefixes {
                        all.extend(self.cloud.logs.log_groups(prefix).await?);
                    }
                    Ok(all)
                }
            ),
            async {
                if wildcard {
                    return Ok(Arc::new(Vec::new()));
                }
                let (_, records) = self
                    .records
                    .get(
                        not_before,
                        self.pacing(Op::ListResourceRecordSets, confirming),
                        || self.cloud.dns.records(),
                    )
                    .await?;
                Ok(records)
            },
        )?;
        Ok(Listings {
            listeners,
            target_groups,
            log_groups,
            records,
        })
    }

    /// The preview's service (`given`, or described now), then at once
    /// what depends on it alone: the spec hash of the revision it runs and,
    /// when `plan` needs them, the family's task definition and why a task
    /// stopped.
    async fn service_side(
        &self,
        p: &Preview,
        w: &Wanted,
        given: Option<Option<ObservedService>>,
    ) -> CloudResult<ServiceSide> {
        let service = match given {
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
        let wanted = &w.task_definition.spec_hash;
        let ((service_spec_hash, task_definition), stopped_reason) = tokio::try_join!(
            async {
                let hash = self.running_hash(service.as_ref()).await?;
                let td = if needs_task_definition(p, wanted, hash.as_deref()) {
                    self.cloud.compute.task_definition(&w.names.family).await?
                } else {
                    None
                };
                Ok((hash, td))
            },
            async {
                let primary = service.as_ref().and_then(|s| s.primary());
                match primary.filter(|_| needs_stopped_reason(p, service.as_ref())) {
                    Some(d) => {
                        self.cloud
                            .compute
                            .stopped_reason(&w.names.service, &d.id)
                            .await
                    }
                    None => Ok(None),
                }
            },
        )?;
        Ok(ServiceSide {
            service,
            service_spec_hash,
            task_definition,
            stopped_reason,
        })
    }

    /// What AWS holds for one preview. `service` is what the runner read
    /// for the batch, used when it is fresh enough for `freshness`;
    /// `focus` is the listener it is (or is about to be) placed on, read
    /// as fresh as `freshness` asks (every listener when `None`).
    /// `Observation::listener` is `focus`'s (the pool's first's without
    /// one); `Observation::pool` has them all.
    pub async fn observe(
        &self,
        p: &Preview,
        w: &Wanted,
        service: Option<ReadService>,
        freshness: Freshness,
        focus: Option<&str>,
    ) -> CloudResult<Observation> {
        let (not_before, confirming, others_before) = match freshness {
            Freshness::Within(age) => (ago(age), true, ago(age)),
            Freshness::After(t) => (t, false, ago(self.max_age)),
        };
        // A pass that only confirms takes the runner's read as it is (a
        // resync reads the shared listing of services, however old).
        let given = service
            .filter(|s| confirming || s.at >= not_before)
            .map(|s| s.service);
        let (listings, side, image) = tokio::try_join!(
            self.listings(not_before, confirming, focus, others_before),
            self.service_side(p, w, given),
            self.image(p, w),
        )?;
        let target_group = listings
            .target_groups
            .iter()
            .find(|tg| tg.name == w.names.target_group)
            .cloned();
        let runs_wanted = side.service_spec_hash.as_ref() == Some(&w.task_definition.spec_hash);
        let (target_health, log_group, revisions) = tokio::try_join!(
            async {
                match (
                    &target_group,
                    needs_target_health(p, side.service.as_ref(), runs_wanted),
                ) {
                    (Some(tg), true) => self
                        .cloud
                        .load_balancer
                        .target_health(&tg.arn)
                        .await
                        .map(Some),
                    _ => Ok(None),
                }
            },
            self.log_group(&listings.log_groups, &w.names.log_group, freshness),
            async {
                if needs_revisions(p, side.service.as_ref(), runs_wanted) {
                    let family = &w.names.family;
                    self.cloud.compute.active_revisions(family).await.map(Some)
                } else {
                    Ok(None)
                }
            },
        )?;
        Ok(Observation {
            log_group,
            task_definition: side.task_definition,
            service: side.service,
            service_spec_hash: side.service_spec_hash,
            target_group,
            // The waker is set by the pass on the listener it places the
            // preview on (`Reconciler::plan_placed`): no listing holds it.
            listener: listings
                .listeners
                .get(focus.unwrap_or(&self.pool.first().arn))
                .map(|l| (**l).clone())
                .unwrap_or_default(),
            pool: listings.listeners,
            records: listings
                .records
                .iter()
                .filter(|r| r.name == w.names.host)
                .cloned()
                .collect(),
            target_health,
            stopped_reason: side.stopped_reason,
            image,
            revisions,
        })
    }
}

/// The instant `age` ago (the process's start, if it began since).
fn ago(age: Duration) -> Instant {
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}
