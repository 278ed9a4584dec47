//! Applies a plan's changes in order: a preview's plan for the reconciler,
//! a resource's deletion for the sweep. Boring on purpose: every decision
//! was made in core (`plan()`, `gc`); this only calls the ports and carries
//! ARNs forward.

use crate::{Cloud, DnsBatcher};
use previewd_core::CloudError;
use previewd_core::decide::ExecuteError;
use previewd_core::key::PreviewKey;
use previewd_core::plan::Change;
use previewd_core::ports::{CloudResult, Store};
use previewd_core::render::DnsChange;
use std::fmt;

/// The ports changes are applied through.
pub struct Executor<'a> {
    pub cloud: &'a Cloud,
    /// Gathers DNS changes with other previews' into one Route53 batch
    /// (the reconciler's); without one they go straight to `cloud.dns` (a
    /// sweep, which runs seldom and alone).
    pub dns: Option<&'a DnsBatcher>,
    /// Holds and releases a preview's rule priority.
    pub store: &'a dyn Store,
    /// The listener the plan was made for: a reserved priority is held
    /// on it (a sweep reserves none).
    pub listener: Option<&'a str>,
}

/// Whose changes these are.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A preview's row, whose rule priority the store-side changes hold.
    Preview(&'a PreviewKey),
    /// What a sweep collects of a slug; such plans hold no priority.
    Leftovers(&'a str),
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Preview(key) => key.fmt(f),
            Subject::Leftovers(slug) => write!(f, "leftovers of {slug}"),
        }
    }
}

impl Executor<'_> {
    /// Applies `changes` for `subject`, stopping at the first error.
    /// Returns how many changes were applied.
    pub async fn execute(
        &self,
        subject: Subject<'_>,
        changes: &[Change],
    ) -> Result<usize, ExecuteError> {
        let cloud = self.cloud;
        // ARNs produced earlier in this plan, for the steps that need them.
        let mut new_task_definition: Option<String> = None;
        let mut new_target_group: Option<String> = None;
        for (done, change) in changes.iter().enumerate() {
            let step = change.name();
            let result = match change {
                Change::CreateLogGroup {
                    name,
                    retention_days,
                    tags,
                } => {
                    cloud
                        .logs
                        .create_log_group(name, *retention_days, tags)
                        .await
                }
                Change::SetLogRetention {
                    name,
                    retention_days,
                } => cloud.logs.set_retention(name, *retention_days).await,
                Change::RegisterTaskDefinition(td) => {
                    cloud.compute.register_task_definition(td).await.map(|r| {
                        new_task_definition = Some(r.arn);
                    })
                }
                Change::CreateTargetGroup(spec) => cloud
                    .load_balancer
                    .create_target_group(spec)
                    .await
                    .map(|tg| {
                        new_target_group = Some(tg.arn);
                    }),
                Change::ReservePriority(_) | Change::ReleasePriority => {
                    let Subject::Preview(key) = subject else {
                        return Err(incomplete(step, "no preview row"));
                    };
                    let (listener, priority) = match change {
                        Change::ReservePriority(p) => {
                            let Some(l) = self.listener else {
                                return Err(incomplete(step, "no listener"));
                            };
                            (Some(l), Some(*p))
                        }
                        _ => (None, None),
                    };
                    self.store
                        .set_rule_priority(key, listener, priority)
                        .await
                        .map_err(|source| ExecuteError::Store { step, source })?;
                    Ok(())
                }
                Change::CreateRule {
                    spec,
                    target_group_arn,
                } => {
                    let tg = resolve(target_group_arn, &new_target_group, step, "target group")?;
                    cloud.load_balancer.create_rule(spec, tg).await.map(drop)
                }
                Change::ModifyRule {
                    arn,
                    spec,
                    target_group_arn,
                } => {
                    let tg = resolve(target_group_arn, &new_target_group, step, "target group")?;
                    cloud.load_balancer.modify_rule(arn, spec, tg).await
                }
                Change::CreateService {
                    spec,
                    task_definition_arn,
                    target_group_arn,
                } => {
                    let td = resolve(
                        task_definition_arn,
                        &new_task_definition,
                        step,
                        "task definition",
                    )?;
                    let tg = resolve(target_group_arn, &new_target_group, step, "target group")?;
                    cloud.compute.create_service(spec, td, Some(tg)).await
                }
                Change::UpdateService {
                    name,
                    task_definition_arn,
                    desired_count,
                    tags,
                } => {
                    let td = resolve(
                        task_definition_arn,
                        &new_task_definition,
                        step,
                        "task definition",
                    )?;
                    cloud
                        .compute
                        .update_service(name, td, *desired_count, tags)
                        .await
                }
                Change::ChangeDns(changes) => self.change_dns(changes).await,
                Change::DeleteService { name } => cloud.compute.delete_service(name).await,
                Change::DeleteRule { arn } => cloud.load_balancer.delete_rule(arn).await,
                Change::DeleteTargetGroup { arn } => {
                    cloud.load_balancer.delete_target_group(arn).await
                }
                Change::DeregisterTaskDefinitions { family } => {
                    cloud.compute.deregister_task_definitions(family).await
                }
                Change::DeregisterTaskDefinition { arn } => {
                    cloud.compute.deregister_task_definition(arn).await
                }
                Change::DeleteLogGroup { name } => cloud.logs.delete_log_group(name).await,
            };
            match result {
                Ok(()) => {}
                Err(e) if change.done_despite(&e) => {}
                Err(source) => return Err(ExecuteError::Cloud { step, source }),
            }
            tracing::debug!(key = %subject, step, done = done + 1, "applied");
        }
        Ok(changes.len())
    }

    async fn change_dns(&self, changes: &[DnsChange]) -> CloudResult<()> {
        match self.dns {
            Some(batcher) => batcher.change(changes.to_vec()).await,
            None => self.cloud.dns.change(changes).await,
        }
    }
}

/// The ARN a change names, or the one made earlier in the same plan.
fn resolve<'a>(
    given: &'a Option<String>,
    made: &'a Option<String>,
    step: &'static str,
    what: &str,
) -> Result<&'a String, ExecuteError> {
    given
        .as_ref()
        .or(made.as_ref())
        .ok_or_else(|| incomplete(step, &format!("no {what} ARN")))
}

/// A plan referred to something it neither observed nor created (or a
/// sweep's plan to a row); this is a planner bug, surfaced as a retryable
/// error rather than a panic.
fn incomplete(step: &'static str, what: &str) -> ExecuteError {
    ExecuteError::Cloud {
        step,
        source: CloudError::Transient {
            code: "PlanIncomplete".into(),
            message: format!("{what} for {step}"),
        },
    }
}
