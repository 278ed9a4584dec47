//! Why an ECS task stopped, judged: will launching it again help?
//!
//! ECS keeps relaunching a service's tasks until its deployment circuit
//! breaker gives up, which takes minutes. Some reasons can never heal on a
//! relaunch — the image is not there, the log group or a secret cannot be
//! read, a role lacks a permission — and waiting for the breaker only
//! delays the failure the QA tool needs to see. Others (a container that
//! exited, a failed health check, a scaling activity, a Spot interruption,
//! a network timeout on the way to the registry) may well heal, and are
//! left to ECS.
//!
//! The reasons are ECS's `stoppedReason` (and the containers' `reason`s
//! the adapters join to it), for example:
//! - `CannotPullContainerError: pull image manifest has been retried 5
//!   time(s): failed to resolve ref …/app:4f2a9c1: not found`
//! - `ResourceInitializationError: failed to validate logger args: … The
//!   specified log group does not exist.`
//! - `ResourceInitializationError: unable to pull secrets or registry auth:
//!   … AccessDeniedException: … is not authorized to perform:
//!   secretsmanager:GetSecretValue …`

/// Words of an access refusal: a role lacks a permission, which no
/// relaunch grants.
const ACCESS_DENIED: [&str; 4] = [
    "accessdenied",
    "not authorized to perform",
    "is not authorized",
    "unauthorizedoperation",
];

/// The error classes whose tasks never got to start, for a reason in the
/// task definition or the account rather than in the moment.
const CANNOT_START: [&str; 2] = ["cannotpullcontainererror", "resourceinitializationerror"];

/// Words of a network or registry hiccup inside those classes: the pull
/// or the fetch may succeed on the next launch.
const PASSING: [&str; 16] = [
    "i/o timeout",
    "timed out",
    "timeout",
    "toomanyrequests",
    "rate limit",
    "connection reset",
    "connection refused",
    "request canceled",
    "send request failed",
    "service unavailable",
    "context deadline exceeded",
    "context canceled",
    "unexpected eof",
    "internal server error",
    "bad gateway",
    "gateway timeout",
];

/// Whether a task that stopped for `reason` would stop again however often
/// ECS relaunched it: an access refusal anywhere in the reason, or a
/// `CannotPullContainerError` / `ResourceInitializationError` that is not
/// a network or rate-limit hiccup. Everything else (an exited container,
/// a health check, a scaling activity, a Spot interruption) may heal.
pub fn never_heals(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    if ACCESS_DENIED.iter().any(|w| r.contains(w)) {
        return true;
    }
    CANNOT_START.iter().any(|w| r.contains(w)) && !PASSING.iter().any(|w| r.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Stopped reasons as ECS writes them (account, region and names
    /// changed), from the ECS developer guide's stopped-task error pages
    /// and reports of them.
    const NEVER_HEAL: &[&str] = &[
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:4f2a9c1: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:4f2a9c1: not found",
        "CannotPullContainerError: Error response from daemon: manifest for 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:latest not found: manifest unknown: Requested image not found",
        "CannotPullContainerError: pull access denied for shop, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
        "CannotPullContainerError: failed to resolve ref ghcr.io/acme/shop:4f2a9c1: failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
        "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist.",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/8f3c is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-db-AbCdEf because no identity-based policy allows the secretsmanager:GetSecretValue action",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/8f3c is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-db from secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret.",
        "Task failed to start; app: CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:4f2a9c1: not found",
    ];

    const MAY_HEAL: &[&str] = &[
        "Essential container in task exited",
        "Essential container in task exited; app: Essential container in task exited",
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pv-qanote-issue-42/73e2d6bc24d8a067)",
        "Task failed container health checks",
        "Scaling activity initiated by (deployment ecs-svc/0123456789012345678)",
        "Your Spot Task was interrupted.",
        "Task stopped by user",
        "ECS is performing maintenance on the underlying infrastructure hosting the task",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/acme/shop:2.110.5: failed to do request: Head \"https://registry-1.docker.io/v2/acme/shop/manifests/2.110.5\": dial tcp 34.205.13.154:443: i/o timeout",
        "CannotPullContainerError: inspect image has been retried 5 time(s): httpReaderSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/sha256:abc: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post \"https://api.ecr.us-east-1.amazonaws.com/\": dial tcp 10.0.0.1:443: i/o timeout. Please check your task network configuration.",
        "CannotStartContainerError: failed to get container status: context deadline exceeded",
        "OutOfMemoryError: Container killed due to memory usage",
        "CannotPullContainerError: failed to copy: httpReadSeeker: failed open: failed to do request: Get \"https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/8f3c-123456789012-0a1b/2c3d\": context deadline exceeded",
        "CannotPullContainerError: error pulling image configuration: download failed after attempts=6: unexpected EOF",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:4f2a9c1: unexpected status from HEAD request to https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/shop/manifests/4f2a9c1: 500 Internal Server Error",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestCanceled: request context canceled caused by: context canceled",
    ];

    #[test]
    fn real_reasons_that_never_heal_are_known() {
        for reason in NEVER_HEAL {
            assert!(never_heals(reason), "should never heal: {reason}");
        }
    }

    #[test]
    fn real_reasons_that_may_heal_are_left_to_ecs() {
        for reason in MAY_HEAL {
            assert!(!never_heals(reason), "may heal: {reason}");
        }
    }

    fn noise() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 :,./()-]{0,40}"
    }

    proptest! {
        /// An access refusal never heals, whatever surrounds it.
        #[test]
        fn an_access_refusal_never_heals(
            before in noise(),
            after in noise(),
            word in prop::sample::select(&["AccessDenied", "AccessDeniedException", "is not authorized to perform: ecr:BatchGetImage"][..]),
        ) {
            let reason = format!("{before}{word}{after}");
            prop_assert!(never_heals(&reason));
        }

        /// A reason without any of the classes or refusal words is left to
        /// ECS: the default is to wait, never to give up early.
        #[test]
        fn an_unknown_reason_may_heal(reason in "[a-z0-9 :,./()-]{0,80}") {
            let r = reason.to_ascii_lowercase();
            prop_assume!(!CANNOT_START.iter().chain(ACCESS_DENIED.iter()).any(|w| r.contains(w)));
            prop_assert!(!never_heals(&reason));
        }

        /// A class that cannot start stops being final once a network or
        /// rate-limit word is in the reason, unless access was refused.
        #[test]
        fn a_hiccup_inside_a_start_failure_may_heal(
            class in prop::sample::select(&CANNOT_START[..]),
            hiccup in prop::sample::select(&PASSING[..]),
            rest in "[a-z0-9 :,./()-]{0,40}",
        ) {
            prop_assume!(!ACCESS_DENIED.iter().any(|w| rest.contains(w)));
            let plain = format!("{class}: {rest}");
            let passing = format!("{class}: {rest} {hiccup}");
            prop_assert!(never_heals(&plain) || PASSING.iter().any(|w| rest.contains(w)));
            prop_assert!(!never_heals(&passing));
        }

        /// Case does not matter: ECS's spelling varies between platform
        /// versions and the adapters join container reasons in.
        #[test]
        fn the_judgement_ignores_case(reason in prop::sample::select(NEVER_HEAL)) {
            prop_assert!(never_heals(&reason.to_uppercase()));
            prop_assert!(never_heals(&reason.to_lowercase()));
        }
    }
}
