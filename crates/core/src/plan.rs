//! `plan()`: the pure decision of what to change so that AWS matches a row.
//!
//! # Guarantees
//! - Only resources carrying our ownership tag (DNS: our TXT marker) are
//!   ever modified or deleted; a look-alike that is not ours is a conflict
//!   reported as `Failed`, never touched.
//! - A rerun modifies in place: a new task definition revision, an
//!   `UpdateService`, a `ModifyRule`; never delete-and-create.
//! - Create order is log group → task definition → target group → rule →
//!   service → DNS; destroy is the reverse, rule before target group,
//!   service scaled to zero before it is deleted.
//! - When the load balancer is full, nothing is created and the verdict is
//!   `Waiting` with the reason.
//! - A task of the unfinished rollout that stopped for a reason no relaunch
//!   heals (`stop_reason::never_heals`) fails the preview on that pass and
//!   scales its service to zero; passes over that failed generation keep
//!   it at zero, a new generation scales it back up.
//! - The plan that finds a generation Ready deregisters the revisions it
//!   superseded, never the running one or the one before it, and only of
//!   the preview's own family.
//!
//! # Assumptions
//! The observation is of one moment; the controller re-observes before it
//! acts on a plan that changes anything, and cleanup copes with any subset
//! of resources existing (create may never have run, or run halfway).

use crate::image::{self, ImageCheck};
use crate::model::{Desired, Preview};
use crate::observed::*;
use crate::render::{DnsAction, DnsChange, RuleSpec, Template, Wanted};
use crate::tags::{self, Tags};
use std::collections::BTreeSet;
use std::time::Duration;

/// Hard AWS limit: target groups per application load balancer.
pub const MAX_TARGET_GROUPS_PER_ALB: usize = 100;

/// What the controller saw of one preview (and the listener it shares).
///
/// `listener` is the state of the listener the preview is placed on
/// (`crate::pool`); `pool` holds every listener of the pool, for placement.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub log_group: Option<ObservedLogGroup>,
    /// Latest ACTIVE revision of the family; `None` when absent or when
    /// [`needs_task_definition`] said there was no need to look.
    pub task_definition: Option<ObservedTaskDefinition>,
    pub service: Option<ObservedService>,
    /// The spec hash of the task definition an ACTIVE service runs, read
    /// from that revision's tag. Revisions are immutable, so this, not the
    /// service's own tag (which a failed TagResource can leave stale), says
    /// whether the service runs the wanted spec.
    pub service_spec_hash: Option<String>,
    pub target_group: Option<ObservedTargetGroup>,
    pub listener: ListenerState,
    /// Record sets at the preview host.
    pub records: Vec<DnsRecord>,
    pub target_health: Option<TargetHealth>,
    /// Why the newest task of the primary deployment stopped; looked up
    /// only while a rollout is unfinished ([`needs_stopped_reason`]).
    pub stopped_reason: Option<String>,
    /// Whether the wanted image is in ECR ([`crate::image`]).
    pub image: ImageCheck,
    /// The ARNs of the family's ACTIVE revisions; looked up only by a pass
    /// that may find this generation Ready ([`needs_revisions`]), so a
    /// steady resync costs nothing more.
    pub revisions: Option<Vec<String>>,
    /// Every listener of the pool by ARN, as listed (with rule tags).
    pub pool: std::collections::BTreeMap<String, std::sync::Arc<ListenerState>>,
}

/// Where the preview stands once the plan's changes (if any) are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Changes to apply; look again soon.
    Working,
    /// Cannot proceed for now (capacity); nothing was planned.
    Waiting(String),
    /// The wanted image (named) is not in ECR yet; nothing was planned,
    /// and a running service is left as it is.
    WaitingForImage(String),
    /// In sync with the spec, not serving yet (or still draining).
    Progressing(String),
    /// Serving. May come with changes that do not touch what serves: the
    /// deregistration of revisions the rollout superseded.
    Ready,
    /// Cannot converge without a person: rollout failed, name conflict, a
    /// task that can never start. The last comes with a change (the
    /// service scaled to zero, so ECS stops relaunching it); the others
    /// with none.
    Failed(String),
    /// Absent and every resource of ours is gone.
    Gone,
    /// Asleep as asked: the service at zero, the rule on the waker.
    Sleeping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub verdict: Verdict,
}

impl Plan {
    fn done(verdict: Verdict) -> Self {
        Plan {
            changes: Vec::new(),
            verdict,
        }
    }
}

/// Whether the latest task definition must be looked up: not when the
/// service already runs the wanted spec (the steady state).
pub fn needs_task_definition(p: &Preview, wanted_hash: &str, running_hash: Option<&str>) -> bool {
    p.desired == Desired::Absent || running_hash != Some(wanted_hash)
}

/// Whether target health must be looked up: only while the preview is on
/// its way to Ready, so a steady resync costs no per-preview call, and
/// only once its service runs the wanted spec (`runs_wanted`: the running
/// revision's spec hash is the wanted one). Before that the targets are
/// the old generation's: their health says nothing of this one, and a
/// redeploy of many previews would spend the ELB account's reads (10 a
/// second for every ELB read) on it while it waits for its task definition.
pub fn needs_target_health(
    p: &Preview,
    service: Option<&ObservedService>,
    runs_wanted: bool,
) -> bool {
    let stable = service
        .and_then(|s| s.primary())
        .is_some_and(|d| d.rollout_state == RolloutState::Completed);
    p.desired == Desired::Present
        && runs_wanted
        && stable
        && !p.is_ready_at_generation()
        && !p.asleep
}

/// Whether to list the family's ACTIVE revisions: only when target health
/// is looked up too, on the way to Ready at a new generation, so that the
/// pass that finds it Ready can deregister what the rollout superseded;
/// never for a service at zero (a failed generation held there), and never
/// while the service runs revision 1 or 2: the running revision and the
/// one before it are kept, so nothing older can be superseded (a burst of
/// new previews lists nothing).
pub fn needs_revisions(p: &Preview, service: Option<&ObservedService>, runs_wanted: bool) -> bool {
    needs_target_health(p, service, runs_wanted)
        && service.is_some_and(|s| {
            s.desired_count > 0 && revision_of(&s.task_definition).is_none_or(|n| n > 2)
        })
}

/// The revision number of a task definition ARN (`…:family:N`).
pub fn revision_of(arn: &str) -> Option<u64> {
    arn.rsplit_once(':')?.1.parse().ok()
}

/// Whether to ask why a task stopped: only while a rollout is unfinished.
pub fn needs_stopped_reason(p: &Preview, service: Option<&ObservedService>) -> bool {
    p.desired == Desired::Present
        && service.and_then(|s| s.primary()).is_some_and(|d| {
            d.rollout_state != RolloutState::Completed || d.running_count < d.desired_count
        })
}

/// Decides what to change for one preview.
pub fn plan(
    t: &Template,
    p: &Preview,
    w: &Wanted,
    o: &Observation,
    reserved: &BTreeSet<i32>,
) -> Plan {
    let id = t.controller_id.as_str();
    match p.desired {
        Desired::Present => match find_conflict(id, p, w, o) {
            Some(conflict) => Plan::done(Verdict::Failed(conflict)),
            None => match image::gate(p, &o.image, Duration::from_secs(t.image_wait_secs)) {
                // Before anything is created: no half preview waits.
                Some(held) => Plan::done(held),
                None => plan_present(t, p, w, o, reserved),
            },
        },
        // Teardown sees only what is ours: look-alikes are simply not there.
        Desired::Absent => plan_absent(p, &only_ours(id, &p.slug, o)),
    }
}

/// The observation with everything not carrying our tags removed.
fn only_ours(id: &str, slug: &str, o: &Observation) -> Observation {
    let mine = |t: &Tags| ours(id, slug, t).is_some();
    let dns_ours = dns_is_ours(id, slug, o);
    Observation {
        log_group: o.log_group.clone().filter(|x| mine(&x.tags)),
        task_definition: o.task_definition.clone().filter(|x| mine(&x.tags)),
        service: o.service.clone().filter(|x| mine(&x.tags)),
        service_spec_hash: o.service_spec_hash.clone(),
        target_group: o.target_group.clone().filter(|x| mine(&x.tags)),
        listener: ListenerState {
            rules: o
                .listener
                .rules
                .iter()
                .filter(|r| mine(&r.tags))
                .cloned()
                .collect(),
            ..o.listener.clone()
        },
        records: if dns_ours {
            o.records.clone()
        } else {
            Vec::new()
        },
        target_health: o.target_health,
        stopped_reason: o.stopped_reason.clone(),
        image: o.image.clone(),
        revisions: o.revisions.clone(),
        pool: o.pool.clone(),
    }
}

fn ours<'a>(id: &str, slug: &str, t: &'a Tags) -> Option<&'a Tags> {
    (tags::owner_slug(t, id) == Some(slug)).then_some(t)
}

/// A resource with one of our names that is not ours: never touch it.
fn find_conflict(id: &str, p: &Preview, w: &Wanted, o: &Observation) -> Option<String> {
    let taken = |what: &str, name: &str| {
        Some(format!(
            "{what} {name} exists and is not managed by previewd (controller {id}); refusing to touch it"
        ))
    };
    if let Some(lg) = &o.log_group
        && ours(id, &p.slug, &lg.tags).is_none()
    {
        return taken("log group", &lg.name);
    }
    if let Some(svc) = o
        .service
        .as_ref()
        .filter(|s| s.status != ServiceStatus::Inactive)
        && ours(id, &p.slug, &svc.tags).is_none()
    {
        return taken("ECS service", &svc.name);
    }
    if let Some(tg) = &o.target_group
        && ours(id, &p.slug, &tg.tags).is_none()
    {
        return taken("target group", &tg.name);
    }
    if let Some(td) = &o.task_definition
        && ours(id, &p.slug, &td.tags).is_none()
    {
        return taken("task definition family", &td.family);
    }
    let host = &w.names.host;
    if p.desired == Desired::Present
        && let Some(rule) = o
            .listener
            .rules
            .iter()
            .find(|r| r.hosts.contains(host) && ours(id, &p.slug, &r.tags).is_none())
    {
        return Some(format!(
            "host {host} is already routed by listener rule {} that previewd does not own",
            rule.priority.map_or("default".into(), |p| p.to_string())
        ));
    }
    // Any record at our host without our marker is someone else's, TXT too:
    // an UPSERT would replace their record set.
    if p.desired == Desired::Present && !dns_is_ours(id, &p.slug, o) && !o.records.is_empty() {
        return taken("DNS record", host);
    }
    None
}

fn dns_is_ours(id: &str, slug: &str, o: &Observation) -> bool {
    o.records.iter().any(|r| {
        r.kind == RecordType::Txt
            && r.values
                .iter()
                .any(|v| tags::dns_marker_slug(v, id) == Some(slug))
    })
}

fn our_rules<'a>(
    id: &'a str,
    slug: &'a str,
    o: &'a Observation,
) -> impl Iterator<Item = &'a ObservedRule> + 'a {
    o.listener
        .rules
        .iter()
        .filter(move |r| ours(id, slug, &r.tags).is_some())
}

/// The lowest free priority in the band, preferring the one already held.
pub fn choose_priority(
    band: (i32, i32),
    used: &BTreeSet<i32>,
    current: Option<i32>,
) -> Option<i32> {
    if let Some(c) = current
        && c >= band.0
        && c <= band.1
        && !used.contains(&c)
    {
        return Some(c);
    }
    (band.0..=band.1).find(|p| !used.contains(p))
}

fn plan_present(
    t: &Template,
    p: &Preview,
    w: &Wanted,
    o: &Observation,
    reserved: &BTreeSet<i32>,
) -> Plan {
    let id = t.controller_id.as_str();
    let mut changes = Vec::new();
    let rules: Vec<&ObservedRule> = our_rules(id, &p.slug, o).collect();
    // Asleep only where the load balancer has a waker to forward to.
    let waker = o.listener.waker_target_group.as_deref();
    let asleep = p.asleep && waker.is_some();
    let slept;
    let w = if asleep {
        let mut s = w.clone();
        s.service.desired_count = 0;
        slept = s;
        &slept
    } else {
        w
    };

    // Capacity first: when a rule must be added and the ALB is full, create
    // nothing at all rather than leave half a preview behind.
    if rules.is_empty() {
        let limit = MAX_TARGET_GROUPS_PER_ALB;
        if o.target_group.is_none() && o.listener.alb_target_groups >= limit {
            return Plan::done(Verdict::Waiting(format!(
                "waiting for capacity: the load balancer already has {} target groups (AWS limit {limit})",
                o.listener.alb_target_groups
            )));
        }
        if o.listener.alb_rules >= t.alb_rule_quota {
            return Plan::done(Verdict::Waiting(format!(
                "waiting for capacity: the load balancer already has {} listener rules (quota {})",
                o.listener.alb_rules, t.alb_rule_quota
            )));
        }
    }

    match &o.log_group {
        None => changes.push(Change::CreateLogGroup {
            name: w.names.log_group.clone(),
            retention_days: w.log_retention_days,
            tags: w.tags.clone(),
        }),
        Some(lg) if lg.retention_days != Some(w.log_retention_days) => {
            changes.push(Change::SetLogRetention {
                name: lg.name.clone(),
                retention_days: w.log_retention_days,
            })
        }
        Some(_) => {}
    }

    let hash = &w.task_definition.spec_hash;
    let service = o
        .service
        .as_ref()
        .filter(|s| s.status != ServiceStatus::Inactive);
    let service_current = service.is_some_and(|s| s.status == ServiceStatus::Active)
        && o.service_spec_hash.as_ref() == Some(hash);
    let td_arn = if service_current {
        service.map(|s| s.task_definition.clone())
    } else {
        o.task_definition
            .as_ref()
            .filter(|td| td.tags.get(tags::SPEC_HASH) == Some(hash))
            .map(|td| td.arn.clone())
    };
    if td_arn.is_none() {
        changes.push(Change::RegisterTaskDefinition(w.task_definition.clone()));
    }

    let tg_arn = o.target_group.as_ref().map(|tg| tg.arn.clone());
    if tg_arn.is_none() {
        changes.push(Change::CreateTargetGroup(w.target_group.clone()));
    }

    let mut rule_spec = RuleSpec {
        priority: 0,
        host: w.names.host.clone(),
        tags: w.tags.clone(),
        listener_arn: t.listener_arn.clone(),
        auth: rule_auth::wanted(t),
        client_secret: None,
    };
    match rules.as_slice() {
        [] => {
            let mut used: BTreeSet<i32> =
                o.listener.rules.iter().filter_map(|r| r.priority).collect();
            used.extend(reserved);
            let Some(priority) = choose_priority(t.priority_band, &used, p.rule_priority) else {
                return Plan::done(Verdict::Waiting(format!(
                    "waiting for capacity: no free listener rule priority in {}..={}",
                    t.priority_band.0, t.priority_band.1
                )));
            };
            if p.rule_priority != Some(priority) {
                changes.push(Change::ReservePriority(priority));
            }
            rule_spec.priority = priority;
            rule_spec.client_secret = rule_auth::secret_for_create(t);
            changes.push(Change::CreateRule {
                spec: rule_spec,
                target_group_arn: tg_arn.clone(),
            });
        }
        [rule, extra @ ..] => {
            // Keep the rule at the stored priority if there are several
            // (a lost CreateRule response retried); delete the others.
            let keep = rules
                .iter()
                .find(|r| r.priority == p.rule_priority)
                .unwrap_or(rule);
            let priority = keep.priority.unwrap_or_default();
            if p.rule_priority != Some(priority) {
                changes.push(Change::ReservePriority(priority));
            }
            rule_spec.priority = priority;
            let target = sleep_rule::target(p, asleep, waker, keep, tg_arn.as_deref(), o);
            let forwards_right = target.is_some() && keep.target_group_arn.as_deref() == target;
            let drifted = rule_auth::drifted(t, keep);
            if keep.hosts != [w.names.host.clone()] || !forwards_right || drifted {
                rule_spec.client_secret = rule_auth::secret_for_modify(t, keep);
                changes.push(Change::ModifyRule {
                    arn: keep.arn.clone(),
                    spec: rule_spec,
                    target_group_arn: target.map(str::to_owned),
                });
            }
            for r in std::iter::once(rule)
                .chain(extra)
                .filter(|r| r.arn != keep.arn)
            {
                changes.push(Change::DeleteRule { arn: r.arn.clone() });
            }
        }
    }

    match service {
        None => changes.push(Change::CreateService {
            spec: w.service.clone(),
            task_definition_arn: td_arn,
            target_group_arn: tg_arn.clone(),
        }),
        Some(s) if s.status == ServiceStatus::Draining => {
            let verdict = if changes.is_empty() {
                Verdict::Progressing(format!("waiting for service {} to finish draining", s.name))
            } else {
                Verdict::Working
            };
            return Plan { changes, verdict };
        }
        // A rollout that FAILED is retried once per new generation (a rerun
        // after someone fixed IAM or the image), not on every pass. A
        // service this generation's failure scaled to zero stays there
        // until a new generation (a fix, or the retry of an identical
        // dispatch) asks again.
        Some(s)
            if !service_current
                || (s.desired_count != w.service.desired_count && !rollout::held_down(p, s))
                || (s
                    .primary()
                    .is_some_and(|d| d.rollout_state == RolloutState::Failed)
                    && p.status.observed_generation < p.generation) =>
        {
            let desired_count = if rollout::held_down(p, s) {
                0
            } else {
                w.service.desired_count
            };
            changes.push(Change::UpdateService {
                name: s.name.clone(),
                task_definition_arn: td_arn,
                desired_count,
                tags: w.service.tags.clone(),
            });
        }
        Some(_) => {}
    }

    if !w.dns_records.is_empty() && !dns_matches(&w.dns_records, &o.records) {
        let upserts = w
            .dns_records
            .iter()
            .map(|r| DnsChange {
                action: DnsAction::Upsert,
                record: r.clone(),
            })
            .collect();
        changes.push(Change::ChangeDns(upserts));
    }

    if !changes.is_empty() {
        return Plan {
            changes,
            verdict: Verdict::Working,
        };
    }
    if asleep {
        return Plan::done(Verdict::Sleeping);
    }
    let verdict = readiness(p, o);
    match (&verdict, service) {
        // Fail fast, and stop ECS relaunching a task that cannot start.
        (Verdict::Failed(_), Some(s)) if s.desired_count > 0 && rollout::doomed(o).is_some() => {
            changes.push(Change::UpdateService {
                name: s.name.clone(),
                task_definition_arn: Some(s.task_definition.clone()),
                desired_count: 0,
                tags: w.service.tags.clone(),
            });
        }
        (Verdict::Ready, Some(s)) => {
            let family = &w.names.family;
            for arn in rollout::superseded(family, &s.task_definition, o.revisions.as_deref()) {
                changes.push(Change::DeregisterTaskDefinition { arn });
            }
        }
        _ => {}
    }
    Plan { changes, verdict }
}

fn dns_matches(wanted: &[DnsRecord], observed: &[DnsRecord]) -> bool {
    wanted.iter().all(|w| observed.contains(w))
}

mod change;
mod readiness;
mod rollout;
mod rule_auth;
mod sleep_rule;
mod teardown;

pub use change::Change;
use readiness::readiness;
use teardown::plan_absent;

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
