//! How the outside world fails, in the controller's terms.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the controller does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Retrying will not help (bad spec, missing permission): stop, report.
    Terminal,
    /// Throttling, 5xx, timeouts: back off and try again.
    Retryable,
}

/// A failed cloud call. Adapters map their SDK errors into this; the sim
/// produces it directly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The caller lacks an IAM permission; `action` is e.g.
    /// `elasticloadbalancing:ModifyRule` when AWS names it.
    #[error("AccessDenied: {action} ({message})")]
    AccessDenied { action: String, message: String },
    #[error("Throttling: {0}")]
    Throttled(String),
    /// previewd's own pacer kept the request back, unsent: its tokens
    /// would have been free only `free_in` after it asked, longer than a
    /// request may wait (`limits::MAX_PACED_WAIT`). Unlike AWS's
    /// throttling, this says when to try again.
    #[error("Throttling: {message}")]
    Paced { message: String, free_in: Duration },
    /// The listener already has a rule at this priority.
    #[error("PriorityInUse: priority {0} is already in use")]
    PriorityInUse(i32),
    /// The resource is still referenced (e.g. a target group by a rule).
    #[error("ResourceInUse: {0}")]
    ResourceInUse(String),
    /// A hard quota such as 100 target groups per load balancer.
    #[error("{code}: {message}")]
    LimitExceeded { code: String, message: String },
    #[error("NotFound: {0}")]
    NotFound(String),
    /// Creating something that already exists.
    #[error("AlreadyExists: {0}")]
    AlreadyExists(String),
    /// AWS refused the request as malformed.
    #[error("{code}: {message}")]
    Invalid { code: String, message: String },
    /// 5xx, timeouts, connection errors.
    #[error("{code}: {message}")]
    Transient { code: String, message: String },
}

impl CloudError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CloudError::AccessDenied { .. } | CloudError::Invalid { .. } => ErrorClass::Terminal,
            // LimitExceeded too: capacity frees up when other previews go.
            _ => ErrorClass::Retryable,
        }
    }

    /// The AWS-style error code, kept on the row and used as a metric label.
    pub fn code(&self) -> &str {
        match self {
            CloudError::AccessDenied { .. } => "AccessDenied",
            CloudError::Throttled(_) | CloudError::Paced { .. } => "Throttling",
            CloudError::PriorityInUse(_) => "PriorityInUse",
            CloudError::ResourceInUse(_) => "ResourceInUse",
            CloudError::LimitExceeded { code, .. } => code,
            CloudError::NotFound(_) => "NotFound",
            CloudError::AlreadyExists(_) => "AlreadyExists",
            CloudError::Invalid { code, .. } => code,
            CloudError::Transient { code, .. } => code,
        }
    }
}

/// Deleting something already gone is success: teardown must be
/// idempotent, and a delete that raced another (or a lost response of our
/// own) has done its job. Every delete of ours passes through this one rule.
pub fn gone_is_fine(result: Result<(), CloudError>) -> Result<(), CloudError> {
    match result {
        Err(CloudError::NotFound(_)) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_found_turns_into_success() {
        assert_eq!(gone_is_fine(Err(CloudError::NotFound("x".into()))), Ok(()));
        assert_eq!(gone_is_fine(Ok(())), Ok(()));
        let in_use = CloudError::ResourceInUse("rule".into());
        assert_eq!(gone_is_fine(Err(in_use.clone())), Err(in_use));
    }
}
