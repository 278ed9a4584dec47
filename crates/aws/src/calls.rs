//! Runs and counts each AWS call. What previewd may call is the registry
//! in `previewd_core::operations` (the source of the README's API table
//! and the IAM policy): calling a controller operation outside it is
//! impossible, as an [`Op`] is a variant of it.

use crate::error::{self, Op};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use previewd_core::CloudError;

pub use previewd_core::operations::{OPERATIONS, Purpose, Spec};

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
        op.permission().is_some(),
        "{} is one of the doctor's checks; the controller's calls are granted by the policy",
        op.action()
    );
    let result = call.await.map_err(|e| error::map(op, e));
    // The metric's service label is the simulator's too (`elbv2`, not
    // IAM's `elasticloadbalancing`), so dashboards work on both.
    metrics::counter!(
        previewd_core::metrics::AWS_CALLS,
        "service" => op.service().label(),
        "operation" => op.name(),
        "outcome" => previewd_core::metrics::aws_outcome(&result),
    )
    .increment(1);
    if let Err(e) = &result {
        tracing::debug!(action = %op.action(), error = %e, "AWS call failed");
    }
    result
}

#[cfg(test)]
mod readme {
    use previewd_core::operations::controller_operations;

    /// The README's API table is for people; this keeps it complete.
    #[test]
    fn the_readme_table_names_every_operation() {
        let readme = include_str!("../../../README.md");
        for s in controller_operations() {
            let action = format!("`{}`", s.op.action());
            assert!(readme.contains(&action), "README does not list {action}");
        }
    }
}

#[cfg(test)]
mod registry {
    use previewd_core::operations::{OPERATIONS, controller_operations};

    /// The adapter's sources, where every call names its `Op`.
    const SOURCES: [&str; 9] = [
        include_str!("dns.rs"),
        include_str!("metrics.rs"),
        include_str!("ecr.rs"),
        include_str!("ecs.rs"),
        include_str!("elb.rs"),
        include_str!("logs.rs"),
        include_str!("doctor.rs"),
        include_str!("doctor_iam.rs"),
        include_str!("lib.rs"),
    ];

    /// The registry holds nothing the adapter no longer calls, so the
    /// policy grants nothing that is not used.
    #[test]
    fn the_adapter_calls_every_operation_of_the_registry() {
        for s in OPERATIONS {
            let handle = format!("Op::{}", s.name);
            assert!(
                SOURCES.iter().any(|src| src.contains(&handle)),
                "{} is in the registry but the adapter never calls it",
                s.op.action()
            );
        }
        assert!(controller_operations().count() < OPERATIONS.len());
    }
}
