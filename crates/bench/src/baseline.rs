//! The naive baseline: how a deploy script converges one preview. It uses
//! the same ports and the same `plan()` as previewd, so it is correct and
//! converges, but it does everything per preview: every look describes each
//! of the preview's resources on its own, nothing is cached or shared
//! between previews, every AWS call is retried on its own like an SDK
//! would, and each preview sends its own Route53 change.
//!
//! What it pays that a hand-written script might not: finding its listener
//! rule lists the listener's rules with their tags (`tagged::listener`:
//! DescribeRules pages plus DescribeTags for every rule, 20 per call).
//!
//! With several load balancers a script is given one, first come first
//! served, 100 previews to each (a spreadsheet's placement), and keeps it.

use previewd_controller::Cloud;
use previewd_core::CloudError;
use previewd_core::error::gone_is_fine;
use previewd_core::model::{Phase, Preview, PreviewSpec};
use previewd_core::observed::ServiceStatus;
use previewd_core::plan::MAX_TARGET_GROUPS_PER_ALB;
use previewd_core::plan::{
    Change, Observation, Plan, Verdict, needs_stopped_reason, needs_target_health, plan,
};
use previewd_core::pool::{Pool, template_for};
use previewd_core::ports::CloudResult;
use previewd_core::render::{Template, Wanted, render};
use previewd_core::tagged;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One script per preview; they share only the account and a table of
/// taken rule priorities (what a CI system's lock or a spreadsheet does).
#[derive(Clone)]
pub struct Baseline {
    pub cloud: Cloud,
    pub template: Arc<Template>,
    /// How long a script sleeps between looks while a preview converges
    /// (previewd's `progress_interval`, for a like-for-like comparison).
    pub poll: Duration,
    /// The listeners, one per load balancer.
    pub pool: Arc<Pool>,
    /// Slug → (listener index, rule priority on it).
    priorities: Arc<Mutex<BTreeMap<String, (usize, i32)>>>,
    /// Slug → listener index, given once.
    placed: Arc<Mutex<BTreeMap<String, usize>>>,
}

/// Why a script gave up.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{0}: {1}")]
    Cloud(&'static str, #[source] CloudError),
    #[error("preview failed: {0}")]
    Failed(String),
    #[error("did not converge in time")]
    Timeout,
    /// Another script took the rule priority first: look again.
    #[error("rule priority {0} taken meanwhile")]
    Contended(i32),
}

/// Retries throttling and 5xx as the AWS SDK's standard mode does:
/// exponential backoff with full jitter, capped at 20 s, until `deadline`.
async fn retry<T, F, Fut>(step: &'static str, deadline: Instant, f: F) -> Result<T, BaselineError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = CloudResult<T>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(
                e @ (CloudError::Throttled(_)
                | CloudError::Paced { .. }
                | CloudError::Transient { .. }),
            ) => {
                if Instant::now() > deadline {
                    return Err(BaselineError::Cloud(step, e));
                }
                let cap = Duration::from_millis(100) * 2u32.pow(attempt.min(8));
                let cap = cap.min(Duration::from_secs(20));
                let sleep = cap.mul_f64(rand::rng().random_range(0.0..=1.0));
                tokio::time::sleep(sleep).await;
                attempt += 1;
            }
            other => return other.map_err(|e| BaselineError::Cloud(step, e)),
        }
    }
}

impl Baseline {
    pub fn new(cloud: Cloud, template: Template, pool: Pool, poll: Duration) -> Self {
        Self {
            cloud,
            poll,
            template: Arc::new(template),
            pool: Arc::new(pool),
            priorities: Arc::new(Mutex::new(BTreeMap::new())),
            placed: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The listener the preview's script uses: its own once given, else
    /// the first with fewer than 100 previews given to it.
    fn listener_of(&self, slug: &str) -> usize {
        let mut placed = self.placed.lock().expect("not poisoned");
        if let Some(i) = placed.get(slug) {
            return *i;
        }
        let mut count = vec![0usize; self.pool.listeners.len()];
        for i in placed.values() {
            count[*i] += 1;
        }
        let i = (0..count.len())
            .find(|i| count[*i] < MAX_TARGET_GROUPS_PER_ALB)
            .unwrap_or(0);
        placed.insert(slug.to_owned(), i);
        i
    }

    /// A preview row as the script knows it (it keeps no table).
    pub fn preview(&self, branch: &str, commit: &str, generation: i64) -> Preview {
        let key = previewd_core::key::PreviewKey::new(crate::harness::PROJECT, branch)
            .expect("a valid branch");
        let slug = previewd_core::naming::slug_candidates(branch)
            .next()
            .expect("a slug");
        let host =
            previewd_core::naming::host_label_candidates(&self.template.naming, branch, &slug)
                .into_iter()
                .next()
                .expect("a host label");
        let spec = PreviewSpec {
            commit_sha: Some(commit.into()),
            ..Default::default()
        };
        let mut p = Preview::fresh(key, &slug, &host, spec, chrono::Utc::now());
        p.generation = generation;
        p.rule_priority = self
            .priorities
            .lock()
            .expect("not poisoned")
            .get(&slug)
            .map(|(_, prio)| *prio);
        p
    }

    /// Describes each of the preview's resources separately.
    pub async fn observe(
        &self,
        p: &Preview,
        w: &Wanted,
        listener_arn: &str,
        deadline: Instant,
    ) -> Result<Observation, BaselineError> {
        let c = &self.cloud;
        let n = &w.names;
        let groups = retry("DescribeLogGroups", deadline, || {
            c.logs.log_groups(&n.log_group)
        })
        .await?;
        let mut log_group = groups.into_iter().find(|g| g.name == n.log_group);
        if let Some(g) = log_group.as_mut() {
            let tags = retry("ListTagsForResource", deadline, || {
                c.logs.log_group_tags(&g.name)
            })
            .await?;
            g.tags = tags.unwrap_or_default();
        }
        let task_definition = retry("DescribeTaskDefinition", deadline, || {
            c.compute.task_definition(&n.family)
        })
        .await?;
        let service = retry("DescribeServices", deadline, || {
            c.compute.services(std::slice::from_ref(&n.service))
        })
        .await?
        .into_iter()
        .find(|s| s.name == n.service);
        let target_group = retry("DescribeTargetGroups", deadline, || {
            tagged::target_groups(c.load_balancer.as_ref(), &n.target_group)
        })
        .await?
        .into_iter()
        .find(|t| t.name == n.target_group);
        let listener = retry("DescribeRules", deadline, || {
            tagged::listener(c.load_balancer.as_ref(), listener_arn)
        })
        .await?;
        let records = retry("ListResourceRecordSets", deadline, || c.dns.records())
            .await?
            .into_iter()
            .filter(|r| r.name == n.host)
            .collect();
        // The revision the service runs, described on its own.
        let service_spec_hash = match service
            .as_ref()
            .filter(|s| s.status == ServiceStatus::Active)
        {
            Some(s) => retry("DescribeTaskDefinition", deadline, || {
                c.compute.task_definition(&s.task_definition)
            })
            .await?
            .and_then(|td| td.tags.get(previewd_core::tags::SPEC_HASH).cloned()),
            None => None,
        };
        // A naive script asks for target health whatever the service runs.
        let target_health = match (
            &target_group,
            needs_target_health(p, service.as_ref(), true),
        ) {
            (Some(tg), true) => Some(
                retry("DescribeTargetHealth", deadline, || {
                    c.load_balancer.target_health(&tg.arn)
                })
                .await?,
            ),
            _ => None,
        };
        let primary = service
            .as_ref()
            .and_then(|s| s.primary())
            .map(|d| d.id.clone())
            .unwrap_or_default();
        let stopped_reason = if needs_stopped_reason(p, service.as_ref()) {
            retry("DescribeTasks", deadline, || {
                c.compute.stopped_reason(&n.service, &primary)
            })
            .await?
        } else {
            None
        };
        Ok(Observation {
            log_group,
            task_definition,
            service,
            service_spec_hash,
            target_group,
            listener,
            records,
            target_health,
            stopped_reason,
            // The naive baseline does not look for images.
            image: Default::default(),
            // The baseline keeps every revision, as a naive tool would.
            revisions: None,
            pool: Default::default(),
        })
    }

    /// One look: describe everything, plan, apply. Returns the verdict.
    pub async fn look(&self, p: &mut Preview, deadline: Instant) -> Result<Plan, BaselineError> {
        let i = self.listener_of(&p.slug);
        let t = template_for(&self.template, &self.pool.listeners[i]);
        let w = render(&t, p);
        let o = self.observe(p, &w, &t.listener_arn, deadline).await?;
        let reserved: BTreeSet<i32> = self
            .priorities
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(slug, (l, _))| **slug != p.slug && *l == i)
            .map(|(_, (_, prio))| *prio)
            .collect();
        let planned = plan(&t, p, &w, &o, &reserved);
        self.apply(p, i, &planned.changes, deadline).await?;
        Ok(planned)
    }

    /// Runs one preview's script until it is Ready.
    pub async fn deploy(&self, p: &mut Preview, deadline: Instant) -> Result<(), BaselineError> {
        loop {
            let planned = match self.look(p, deadline).await {
                // Two scripts chose one priority at once: the loser looks again.
                Err(BaselineError::Contended(_))
                | Err(BaselineError::Cloud(_, CloudError::PriorityInUse(_))) => continue,
                other => other?,
            };
            match planned.verdict {
                Verdict::Ready if planned.changes.is_empty() => {
                    p.status.phase = Phase::Ready;
                    p.status.observed_generation = p.generation;
                    return Ok(());
                }
                Verdict::Failed(why) => return Err(BaselineError::Failed(why)),
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(BaselineError::Timeout);
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn apply(
        &self,
        p: &mut Preview,
        listener: usize,
        changes: &[Change],
        deadline: Instant,
    ) -> Result<(), BaselineError> {
        let c = &self.cloud;
        let mut td_arn: Option<String> = None;
        let mut tg_arn: Option<String> = None;
        for change in changes {
            let step = change.name();
            match change {
                Change::CreateLogGroup {
                    name,
                    retention_days,
                    tags,
                } => {
                    let r = retry(step, deadline, || {
                        c.logs.create_log_group(name, *retention_days, tags)
                    })
                    .await;
                    match r {
                        Err(BaselineError::Cloud(_, CloudError::AlreadyExists(_))) => {}
                        other => other?,
                    }
                }
                Change::SetLogRetention {
                    name,
                    retention_days,
                } => {
                    retry(step, deadline, || {
                        c.logs.set_retention(name, *retention_days)
                    })
                    .await?
                }
                Change::RegisterTaskDefinition(td) => {
                    let r =
                        retry(step, deadline, || c.compute.register_task_definition(td)).await?;
                    td_arn = Some(r.arn);
                }
                Change::CreateTargetGroup(spec) => {
                    let r =
                        retry(step, deadline, || c.load_balancer.create_target_group(spec)).await?;
                    tg_arn = Some(r.arn);
                }
                Change::ReservePriority(prio) => {
                    let mut held = self.priorities.lock().expect("not poisoned");
                    if held
                        .iter()
                        .any(|(slug, x)| *x == (listener, *prio) && *slug != p.slug)
                    {
                        return Err(BaselineError::Contended(*prio));
                    }
                    held.insert(p.slug.clone(), (listener, *prio));
                    p.rule_priority = Some(*prio);
                }
                Change::ReleasePriority => {
                    self.priorities
                        .lock()
                        .expect("not poisoned")
                        .remove(&p.slug);
                    p.rule_priority = None;
                }
                Change::CreateRule {
                    spec,
                    target_group_arn,
                } => {
                    let tg = target_group_arn.as_ref().or(tg_arn.as_ref()).cloned();
                    let tg = tg.unwrap_or_default();
                    retry(step, deadline, || c.load_balancer.create_rule(spec, &tg)).await?;
                }
                Change::ModifyRule {
                    arn,
                    spec,
                    target_group_arn,
                } => {
                    let tg = target_group_arn.as_ref().or(tg_arn.as_ref()).cloned();
                    let tg = tg.unwrap_or_default();
                    retry(step, deadline, || {
                        c.load_balancer.modify_rule(arn, spec, &tg)
                    })
                    .await?
                }
                Change::CreateService {
                    spec,
                    task_definition_arn,
                    target_group_arn,
                } => {
                    let td = task_definition_arn.as_ref().or(td_arn.as_ref()).cloned();
                    let td = td.unwrap_or_default();
                    let tg = target_group_arn.as_ref().or(tg_arn.as_ref()).cloned();
                    let tg = tg.unwrap_or_default();
                    retry(step, deadline, || {
                        c.compute.create_service(spec, &td, Some(&tg))
                    })
                    .await?
                }
                Change::UpdateService {
                    name,
                    task_definition_arn,
                    desired_count,
                    tags,
                } => {
                    let td = task_definition_arn.as_ref().or(td_arn.as_ref()).cloned();
                    let td = td.unwrap_or_default();
                    retry(step, deadline, || {
                        c.compute.update_service(name, &td, *desired_count, tags)
                    })
                    .await?
                }
                Change::ChangeDns(changes) => {
                    retry(step, deadline, || c.dns.change(changes)).await?
                }
                Change::DeleteService { name } => {
                    retry(step, deadline, || async {
                        gone_is_fine(c.compute.delete_service(name).await)
                    })
                    .await?
                }
                Change::DeleteRule { arn } => {
                    retry(step, deadline, || async {
                        gone_is_fine(c.load_balancer.delete_rule(arn).await)
                    })
                    .await?
                }
                Change::DeleteTargetGroup { arn } => {
                    retry(step, deadline, || async {
                        gone_is_fine(c.load_balancer.delete_target_group(arn).await)
                    })
                    .await?
                }
                Change::DeregisterTaskDefinitions { family } => {
                    retry(step, deadline, || {
                        c.compute.deregister_task_definitions(family)
                    })
                    .await?
                }
                Change::DeregisterTaskDefinition { arn } => {
                    retry(step, deadline, || async {
                        gone_is_fine(c.compute.deregister_task_definition(arn).await)
                    })
                    .await?
                }
                Change::DeleteLogGroup { name } => {
                    retry(step, deadline, || async {
                        gone_is_fine(c.logs.delete_log_group(name).await)
                    })
                    .await?
                }
            }
        }
        Ok(())
    }
}
