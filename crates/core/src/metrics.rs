//! Every metric previewd exports, by name, with the label values each may
//! take. Names live here, in the crate every other crate depends on, so the
//! controller, the store, the simulator and the AWS adapter record under
//! one spelling; recording itself (the `metrics` facade) happens in those
//! crates, keeping this one free of IO.

use crate::error::CloudError;
use crate::model::text_enum;

/// Counter, label `result`: one of [`RESULTS`] ([`ReconcileResult`]).
pub const RECONCILES: &str = "previewd_reconciles_total";
/// Histogram of one reconcile pass, claim to status written, in seconds.
pub const RECONCILE_DURATION: &str = "previewd_reconcile_duration_seconds";
/// Gauge: rows due now and not held by a live lease (waiting for a worker).
pub const QUEUE_DEPTH: &str = "previewd_queue_depth";
/// Gauge, label `phase`: previews per phase (every phase, zeros included).
pub const PREVIEWS: &str = "previewd_previews";
/// Gauge, labels `project`, `phase`: previews by project, for a previewd
/// serving several (`previews` stays the total by phase).
pub const PROJECT_PREVIEWS: &str = "previewd_project_previews";
/// Counter, labels `service` (`ecs`, `elbv2`, `route53`, `logs`),
/// `operation` (the AWS API name, e.g. `CreateService`) and `outcome`
/// (see [`aws_outcome`]). One per AWS request, pages included.
pub const AWS_CALLS: &str = "previewd_aws_calls_total";
/// Counter, labels `target` ([`DeliveryTarget`]) and `outcome` (`ok`,
/// `retry`, `refused`).
pub const DELIVERIES: &str = "previewd_deliveries_total";

/// Where a report is delivered: the `target` label of [`DELIVERIES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryTarget {
    /// A GitHub deployment and its status.
    Github,
    /// The QA tool's signed callback.
    Callback,
    /// The pull request's sticky comment (`github.pr_comment`).
    Comment,
}

text_enum!(DeliveryTarget {
    Github = "github",
    Callback = "callback",
    Comment = "comment",
});
/// Gauge: outbox messages not yet delivered.
pub const OUTBOX_BACKLOG: &str = "previewd_outbox_backlog";
/// Gauge: age of the oldest undelivered outbox message, in seconds (0 when
/// the outbox is empty).
pub const OUTBOX_OLDEST_AGE: &str = "previewd_outbox_oldest_age_seconds";
/// Counter, label `kind` (`gc::ResourceKind`'s names): resources deleted
/// by garbage collection.
pub const SWEEP_DELETIONS: &str = "previewd_sweep_deletions_total";
/// Counter: previews marked absent because they passed their TTL.
pub const SWEEP_EXPIRED: &str = "previewd_sweep_expired_total";
/// Counter: previews the idle check put to sleep (`sleep.idle_after`).
pub const SLEEPS: &str = "previewd_sleeps_total";
/// Counter: sleeping previews a visit to the waker woke.
pub const WAKES: &str = "previewd_wakes_total";
/// Histogram, in seconds: from the visit that woke a preview (or the
/// redeploy) to the pass that found it Ready again.
pub const WAKE_DURATION: &str = "previewd_wake_duration_seconds";
/// Counter: claims of a row whose lease had run out while another replica
/// held it (that replica died or stalled mid-pass).
pub const LEASE_TAKEOVERS: &str = "previewd_lease_takeovers_total";

/// Counter, label `reason` (one of [`AUTH_FAILURE_REASONS`]): requests to
/// `/v1` refused for their bearer token.
pub const AUTH_FAILURES: &str = "previewd_auth_failures_total";
/// Why a bearer token was refused: no `Authorization` header; a header that
/// is not `Bearer <token>`; `Bearer` with nothing after it; a token that is
/// not ours.
pub const AUTH_FAILURE_REASONS: [&str; 4] = ["missing", "malformed", "empty", "wrong"];

/// The `result` of a reconcile pass, the label of [`RECONCILES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    /// It reached a verdict.
    Ok,
    /// It failed and will be retried.
    RetryableError,
    /// It failed for good.
    TerminalError,
    /// It ran out of time (its deadline, or its lease).
    Timeout,
}

text_enum!(ReconcileResult {
    Ok = "ok",
    RetryableError = "retryable_error",
    TerminalError = "terminal_error",
    Timeout = "timeout",
});

impl ReconcileResult {
    pub const ALL: [ReconcileResult; 4] = [
        ReconcileResult::Ok,
        ReconcileResult::RetryableError,
        ReconcileResult::TerminalError,
        ReconcileResult::Timeout,
    ];
}

/// Every value of the `result` label, in [`ReconcileResult::ALL`] order.
pub const RESULTS: [&str; ReconcileResult::ALL.len()] = {
    let mut out = [""; ReconcileResult::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = ReconcileResult::ALL[i].as_str();
        i += 1;
    }
    out
};

/// Reconcile durations range from a no-op pass on cached listings
/// (milliseconds) to a slow create under throttling (up to the 90 s pass
/// timeout).
pub const RECONCILE_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 90.0,
];

/// The `outcome` label of one AWS request: `ok`, `throttled`, or the class
/// of the error (a bounded set, unlike AWS's error codes).
pub fn aws_outcome<T>(result: &Result<T, CloudError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => match e {
            CloudError::Throttled(_) | CloudError::Paced { .. } => "throttled",
            CloudError::AccessDenied { .. } => "access_denied",
            CloudError::NotFound(_) => "not_found",
            CloudError::PriorityInUse(_)
            | CloudError::ResourceInUse(_)
            | CloudError::AlreadyExists(_) => "conflict",
            CloudError::LimitExceeded { .. } => "limit_exceeded",
            CloudError::Invalid { .. } => "invalid",
            CloudError::Transient { .. } => "transient",
        },
    }
}

/// Splits a metering key such as `ecs:CreateService` into the `service`
/// and `operation` labels.
pub fn aws_labels(key: &str) -> (&str, &str) {
    key.split_once(':').unwrap_or(("unknown", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_bounded_outcome() {
        let throttled: Result<(), _> = Err(CloudError::Throttled("Rate exceeded".into()));
        assert_eq!(aws_outcome(&throttled), "throttled");
        let odd_code: Result<(), _> = Err(CloudError::Transient {
            code: "SomeNewAwsCode".into(),
            message: "x".into(),
        });
        assert_eq!(aws_outcome(&odd_code), "transient");
        assert_eq!(aws_outcome(&Ok::<_, CloudError>(1)), "ok");
    }

    #[test]
    fn reconcile_results_keep_their_label_spelling() {
        assert_eq!(
            RESULTS,
            ["ok", "retryable_error", "terminal_error", "timeout"]
        );
        for r in ReconcileResult::ALL {
            assert_eq!(r.as_str().parse::<ReconcileResult>(), Ok(r));
        }
        assert_eq!(
            [
                DeliveryTarget::Github,
                DeliveryTarget::Callback,
                DeliveryTarget::Comment
            ]
            .map(DeliveryTarget::as_str),
            ["github", "callback", "comment"]
        );
    }

    #[test]
    fn a_metering_key_splits_into_service_and_operation() {
        assert_eq!(aws_labels("elbv2:ModifyRule"), ("elbv2", "ModifyRule"));
        assert_eq!(aws_labels("Odd"), ("unknown", "Odd"));
    }
}
