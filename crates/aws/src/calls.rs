//! Every AWS operation previewd calls, what it is for, and a counter of
//! the calls made. The table is the single source for the README's API
//! table and the IAM policy: calling an operation that is not in it is a
//! bug, caught by a debug assertion on every call the tests make.

use crate::error::{self, Op};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use previewd_core::CloudError;

/// What a call does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    Observe,
    Create,
    Update,
    Delete,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Use {
    pub op: Op,
    /// The resource it touches, in previewd's words.
    pub resource: &'static str,
    pub purposes: &'static [Purpose],
    /// IAM actions the call also needs (tag on create, pass a role).
    pub also_needs: &'static [&'static str],
}

const fn row(
    service: &'static str,
    operation: &'static str,
    resource: &'static str,
    purposes: &'static [Purpose],
    also_needs: &'static [&'static str],
) -> Use {
    Use {
        op: Op::new(service, operation),
        resource,
        purposes,
        also_needs,
    }
}

use Purpose::*;

const LOGS: &str = "logs";
const ECS: &str = "ecs";
const ELB: &str = "elasticloadbalancing";
const R53: &str = "route53";

/// Every operation the adapters call.
pub const OPERATIONS: &[Use] = &[
    row(LOGS, "DescribeLogGroups", "log group", &[Observe], &[]),
    row(LOGS, "ListTagsForResource", "log group", &[Observe], &[]),
    row(
        LOGS,
        "CreateLogGroup",
        "log group",
        &[Create],
        &["logs:TagResource"],
    ),
    row(
        LOGS,
        "PutRetentionPolicy",
        "log group",
        &[Create, Update],
        &[],
    ),
    row(LOGS, "DeleteLogGroup", "log group", &[Delete], &[]),
    row(
        ECS,
        "DescribeTaskDefinition",
        "task definition",
        &[Observe],
        &[],
    ),
    row(
        ECS,
        "ListTaskDefinitionFamilies",
        "task definition",
        &[Observe],
        &[],
    ),
    row(
        ECS,
        "ListTaskDefinitions",
        "task definition",
        &[Delete],
        &[],
    ),
    row(
        ECS,
        "RegisterTaskDefinition",
        "task definition",
        &[Create, Update],
        &["ecs:TagResource", "iam:PassRole"],
    ),
    row(
        ECS,
        "DeregisterTaskDefinition",
        "task definition",
        &[Delete],
        &[],
    ),
    row(ECS, "DescribeServices", "service", &[Observe], &[]),
    row(ECS, "ListServices", "service", &[Observe], &[]),
    row(ECS, "ListTasks", "service", &[Observe], &[]),
    row(ECS, "DescribeTasks", "service", &[Observe], &[]),
    row(
        ECS,
        "CreateService",
        "service",
        &[Create],
        &["ecs:TagResource"],
    ),
    row(ECS, "UpdateService", "service", &[Update, Delete], &[]),
    row(ECS, "TagResource", "service", &[Update], &[]),
    row(ECS, "DeleteService", "service", &[Delete], &[]),
    row(ELB, "DescribeListeners", "listener rule", &[Observe], &[]),
    row(ELB, "DescribeRules", "listener rule", &[Observe], &[]),
    row(
        ELB,
        "DescribeTags",
        "listener rule, target group",
        &[Observe],
        &[],
    ),
    row(
        ELB,
        "CreateRule",
        "listener rule",
        &[Create],
        &["elasticloadbalancing:AddTags"],
    ),
    row(ELB, "ModifyRule", "listener rule", &[Update], &[]),
    row(ELB, "SetRulePriorities", "listener rule", &[Update], &[]),
    row(ELB, "DeleteRule", "listener rule", &[Delete], &[]),
    row(ELB, "DescribeTargetGroups", "target group", &[Observe], &[]),
    row(ELB, "DescribeTargetHealth", "target group", &[Observe], &[]),
    row(
        ELB,
        "CreateTargetGroup",
        "target group",
        &[Create],
        &["elasticloadbalancing:AddTags"],
    ),
    row(ELB, "DeleteTargetGroup", "target group", &[Delete], &[]),
    row(R53, "ListResourceRecordSets", "DNS record", &[Observe], &[]),
    row(
        R53,
        "ChangeResourceRecordSets",
        "DNS record",
        &[Create, Update, Delete],
        &[],
    ),
];

/// Whether `op` is in the table.
pub fn is_known(op: Op) -> bool {
    OPERATIONS.iter().any(|u| u.op == op)
}

/// Awaits one SDK call of `op`, maps its error and counts it as the
/// metric `previewd_aws_calls_total{service, operation, outcome}`.
pub async fn run<T, E>(
    op: Op,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, CloudError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    debug_assert!(
        is_known(op),
        "{} is called but missing from calls::OPERATIONS (and so from the IAM policy)",
        op.action()
    );
    let result = call.await.map_err(|e| error::map(op, e));
    // The metric's service label is the simulator's too (`elbv2`, not
    // IAM's `elasticloadbalancing`), so dashboards work on both.
    let service = match op.service {
        "elasticloadbalancing" => "elbv2",
        other => other,
    };
    metrics::counter!(
        previewd_core::metrics::AWS_CALLS,
        "service" => service,
        "operation" => op.operation,
        "outcome" => previewd_core::metrics::aws_outcome(&result),
    )
    .increment(1);
    if let Err(e) = &result {
        tracing::debug!(action = %op.action(), error = %e, "AWS call failed");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for u in OPERATIONS {
            assert!(seen.insert(u.op), "{} listed twice", u.op.action());
            assert!(!u.purposes.is_empty(), "{} has no purpose", u.op.action());
        }
    }
}

#[cfg(test)]
mod readme {
    use super::OPERATIONS;

    /// The README's API table is for people; this keeps it complete.
    #[test]
    fn the_readme_table_names_every_operation() {
        let readme = include_str!("../../../README.md");
        for u in OPERATIONS {
            let action = format!("`{}`", u.op.action());
            assert!(readme.contains(&action), "README does not list {action}");
        }
    }
}
