//! Maps AWS SDK errors to the controller's classes (`CloudError`).
//!
//! The codes come from the four services' API references; a code we do not
//! know falls back on the HTTP status: 5xx is retryable, 4xx terminal.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use previewd_core::CloudError;

/// One AWS operation; its IAM action is [`Op::action`].
pub use previewd_core::operations::Op;

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "PriorRequestNotComplete",
    "SlowDown",
];

const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
];

const NOT_FOUND: &[&str] = &[
    "TargetGroupNotFound",
    "RuleNotFound",
    "ListenerNotFound",
    "LoadBalancerNotFound",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "ClusterNotFoundException",
    "ResourceNotFoundException",
    "NoSuchHostedZone",
    "ImageNotFoundException",
    "RepositoryNotFoundException",
];

const ALREADY_EXISTS: &[&str] = &[
    "DuplicateTargetGroupName",
    "ResourceAlreadyExistsException",
    "DuplicateTagKeys",
];

const LIMITS: &[&str] = &[
    "TooManyTargetGroups",
    "TooManyRules",
    "TooManyTags",
    "TooManyActions",
    "TooManyConditionValues",
    "TooManyRegistrationsForTargetId",
    "TooManyTargets",
    "LimitExceededException",
];

const TRANSIENT: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServerException",
    "OperationAborted",
];

/// Maps one SDK error of `op`.
pub fn map<E>(op: Op, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let e = ctx.err();
            classify(
                op,
                e.code().unwrap_or(""),
                e.message().unwrap_or(""),
                status,
            )
        }
        SdkError::TimeoutError(_) => CloudError::Transient {
            code: "Timeout".into(),
            message: format!("{}: the call timed out", op.action()),
        },
        SdkError::DispatchFailure(e) => CloudError::Transient {
            code: "DispatchFailure".into(),
            message: format!("{}: {:?}", op.action(), e),
        },
        SdkError::ResponseError(e) => CloudError::Transient {
            code: "ResponseError".into(),
            message: format!("{}: {:?}", op.action(), e.raw().status()),
        },
        // The request could not even be built: a bug or bad configuration,
        // which retrying will not fix.
        other => CloudError::Invalid {
            code: "ConstructionFailure".into(),
            message: format!("{}: {}", op.action(), DisplayChain(&other)),
        },
    }
}

/// The error code, message and HTTP status of a service error, classified.
pub fn classify(op: Op, code: &str, message: &str, status: u16) -> CloudError {
    let msg = if message.is_empty() {
        code.to_owned()
    } else {
        message.to_owned()
    };
    let is = |set: &[&str]| set.contains(&code);
    if is(THROTTLING) || status == 429 || message.contains("Rate exceeded") {
        CloudError::Throttled(format!("{}: {msg}", op.action()))
    } else if is(DENIED) {
        CloudError::AccessDenied {
            action: denied_action(message).unwrap_or_else(|| op.action()),
            message: msg,
        }
    } else if code == "PriorityInUse" {
        // The caller knows the priority; `rule_error` fills it in.
        CloudError::PriorityInUse(-1)
    } else if code == "ResourceInUse" || code == "ResourceInUseException" {
        CloudError::ResourceInUse(msg)
    } else if is(NOT_FOUND) || is_route53_missing(code, message) {
        CloudError::NotFound(format!("{code}: {msg}"))
    } else if is(ALREADY_EXISTS) || is_ecs_duplicate(code, message) {
        CloudError::AlreadyExists(format!("{code}: {msg}"))
    } else if is(LIMITS) {
        CloudError::LimitExceeded {
            code: code.to_owned(),
            message: msg,
        }
    } else if is(TRANSIENT) || status >= 500 {
        CloudError::Transient {
            code: if code.is_empty() {
                format!("HTTP{status}")
            } else {
                code.to_owned()
            },
            message: msg,
        }
    } else {
        CloudError::Invalid {
            code: if code.is_empty() {
                format!("HTTP{status}")
            } else {
                code.to_owned()
            },
            message: format!("{}: {msg}", op.action()),
        }
    }
}

/// AWS names the denied action in its message: "User: arn:… is not
/// authorized to perform: elasticloadbalancing:ModifyRule on resource: …".
fn denied_action(message: &str) -> Option<String> {
    let rest = message.split("perform: ").nth(1)?;
    let action: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    action.contains(':').then_some(action)
}

/// Route53 answers a DELETE of a record that is not there with
/// `InvalidChangeBatch` "… but it was not found".
fn is_route53_missing(code: &str, message: &str) -> bool {
    code == "InvalidChangeBatch" && message.contains("not found")
}

/// ECS answers a second CreateService of a live service with
/// `InvalidParameterException` "Creation of service was not idempotent".
fn is_ecs_duplicate(code: &str, message: &str) -> bool {
    code == "InvalidParameterException" && message.contains("not idempotent")
}

/// An error and its sources on one line.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODIFY_RULE: Op = Op::ModifyRule;

    #[test]
    fn access_denied_names_the_action_from_the_message() {
        let e = classify(
            MODIFY_RULE,
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticloadbalancing:ModifyRule on resource: arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/a/b/c/d",
            403,
        );
        assert_eq!(
            e,
            CloudError::AccessDenied {
                action: "elasticloadbalancing:ModifyRule".into(),
                message: "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticloadbalancing:ModifyRule on resource: arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/a/b/c/d".into(),
            }
        );
        assert_eq!(e.class(), previewd_core::ErrorClass::Terminal);
    }

    #[test]
    fn access_denied_without_an_action_in_the_message_names_the_call() {
        let e = classify(MODIFY_RULE, "AccessDeniedException", "", 400);
        assert!(
            matches!(e, CloudError::AccessDenied { ref action, .. } if action == "elasticloadbalancing:ModifyRule"),
            "{e:?}"
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for (code, status) in [
            ("Throttling", 400),
            ("ThrottlingException", 400),
            ("", 429),
            ("PriorRequestNotComplete", 400),
            ("InternalFailure", 500),
            ("", 503),
            ("SomethingNew", 502),
        ] {
            let e = classify(MODIFY_RULE, code, "boom", status);
            assert_eq!(
                e.class(),
                previewd_core::ErrorClass::Retryable,
                "{code} {status}: {e:?}"
            );
        }
    }

    #[test]
    fn unknown_client_errors_are_terminal_and_keep_their_code() {
        let e = classify(MODIFY_RULE, "ValidationError", "bad host", 400);
        assert_eq!(e.class(), previewd_core::ErrorClass::Terminal);
        assert_eq!(e.code(), "ValidationError");
    }

    #[test]
    fn planner_codes_map_to_their_own_variants() {
        assert!(matches!(
            classify(MODIFY_RULE, "PriorityInUse", "", 400),
            CloudError::PriorityInUse(_)
        ));
        assert!(matches!(
            classify(MODIFY_RULE, "ResourceInUse", "in use", 400),
            CloudError::ResourceInUse(_)
        ));
        assert!(matches!(
            classify(MODIFY_RULE, "TooManyTargetGroups", "", 400),
            CloudError::LimitExceeded { .. }
        ));
        assert!(matches!(
            classify(MODIFY_RULE, "TooManyRules", "", 400),
            CloudError::LimitExceeded { .. }
        ));
    }

    #[test]
    fn missing_things_are_not_found() {
        for (code, msg) in [
            ("TargetGroupNotFound", ""),
            ("RuleNotFound", ""),
            ("ServiceNotFoundException", ""),
            ("ResourceNotFoundException", ""),
            (
                "InvalidChangeBatch",
                "Tried to delete resource record set [name='a.example.com.', type='A'] but it was not found",
            ),
        ] {
            assert!(
                matches!(
                    classify(MODIFY_RULE, code, msg, 400),
                    CloudError::NotFound(_)
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn duplicates_are_already_exists() {
        assert!(matches!(
            classify(
                Op::CreateService,
                "InvalidParameterException",
                "Creation of service was not idempotent.",
                400
            ),
            CloudError::AlreadyExists(_)
        ));
        assert!(matches!(
            classify(
                Op::CreateLogGroup,
                "ResourceAlreadyExistsException",
                "",
                400
            ),
            CloudError::AlreadyExists(_)
        ));
    }
}
