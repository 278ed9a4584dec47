//! Applies a plan's changes in order. Boring on purpose: every decision was
//! made by `plan()`; this only calls the ports and carries ARNs forward.

use crate::{Cloud, DnsBatcher};
use previewd_core::CloudError;
use previewd_core::decide::ExecuteError;
use previewd_core::key::PreviewKey;
use previewd_core::plan::Change;
use previewd_core::ports::Store;

/// Applies `changes` for `key`, stopping at the first error. Returns how
/// many changes were applied.
pub async fn execute(
    cloud: &Cloud,
    dns: &DnsBatcher,
    store: &dyn Store,
    key: &PreviewKey,
    changes: &[Change],
) -> Result<usize, ExecuteError> {
    // ARNs produced earlier in this plan, for the steps that need them.
    let mut new_task_definition: Option<String> = None;
    let mut new_target_group: Option<String> = None;
    for (done, change) in changes.iter().enumerate() {
        let step = change.name();
        let cloud_err = |source| ExecuteError::Cloud { step, source };
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
                let priority = match change {
                    Change::ReservePriority(p) => Some(*p),
                    _ => None,
                };
                store
                    .set_rule_priority(key, priority)
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
            Change::ChangeDns(changes) => dns.change(changes.clone()).await,
            Change::DeleteService { name } => {
                gone_is_fine(cloud.compute.delete_service(name).await)
            }
            Change::DeleteRule { arn } => gone_is_fine(cloud.load_balancer.delete_rule(arn).await),
            Change::DeleteTargetGroup { arn } => {
                gone_is_fine(cloud.load_balancer.delete_target_group(arn).await)
            }
            Change::DeregisterTaskDefinitions { family } => {
                cloud.compute.deregister_task_definitions(family).await
            }
            Change::DeleteLogGroup { name } => {
                gone_is_fine(cloud.logs.delete_log_group(name).await)
            }
        };
        match result {
            Ok(()) => {}
            // Someone (a lost response of ours) created it already; the next
            // observation adopts it.
            Err(CloudError::AlreadyExists(_))
                if matches!(change, Change::CreateLogGroup { .. }) => {}
            Err(e) => return Err(cloud_err(e)),
        }
        tracing::debug!(%key, step, done = done + 1, "applied");
    }
    Ok(changes.len())
}

/// Deleting something already gone is success: teardown must be idempotent.
fn gone_is_fine(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(CloudError::NotFound(_)) => Ok(()),
        other => other,
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
        .ok_or_else(|| missing(step, what))
}

/// A plan referred to an ARN it neither observed nor created; this is a
/// planner bug, surfaced as a retryable error rather than a panic.
fn missing(step: &'static str, what: &str) -> ExecuteError {
    ExecuteError::Cloud {
        step,
        source: CloudError::Transient {
            code: "PlanIncomplete".into(),
            message: format!("no {what} ARN for {step}"),
        },
    }
}
