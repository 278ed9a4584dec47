//! What the last attempt at a preview ended with, as data.

use crate::error::{CloudError, ErrorClass};
use crate::plan::Verdict;
use crate::ports::StoreError;
use std::time::Duration;

/// Why applying a plan (or observing for it) stopped. The error's class and
/// code are the adapters' (`CloudError::class`/`code`); this only says which
/// step met it.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("{step}: {source}")]
    Cloud {
        step: &'static str,
        #[source]
        source: CloudError,
    },
    #[error("{step}: {source}")]
    Store {
        step: &'static str,
        #[source]
        source: StoreError,
    },
}

impl ExecuteError {
    /// The cloud error behind it, if a cloud call failed.
    pub fn cloud(&self) -> Option<&CloudError> {
        match self {
            ExecuteError::Cloud { source, .. } => Some(source),
            ExecuteError::Store { .. } => None,
        }
    }

    /// Store errors are all worth another pass (a conflict, a lost race).
    pub fn class(&self) -> ErrorClass {
        self.cloud()
            .map_or(ErrorClass::Retryable, CloudError::class)
    }

    /// The code kept on the row and used as a metric label.
    pub fn code(&self) -> &str {
        self.cloud().map_or("StoreConflict", CloudError::code)
    }

    /// Lost a rule priority to a concurrent pass: no failure of this row.
    pub fn is_contention(&self) -> bool {
        matches!(
            self,
            ExecuteError::Store {
                source: StoreError::PriorityTaken(_),
                ..
            }
        )
    }
}

/// A pass the runner stopped before it ended by itself. Retryable; the
/// messages read as they did when these were written as cloud errors of
/// a `Reconcile` step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The pass outran `reconcile_timeout` (the value carried).
    #[error("Reconcile: Timeout: reconcile took longer than {0:?}")]
    Timeout(Duration),
    /// The lease (of the length carried) could not be renewed in time.
    #[error(
        "Reconcile: LeaseNotRenewed: could not renew the {0:?} lease in time; stopped before another replica may take the row"
    )]
    LeaseNotRenewed(Duration),
}

impl Stop {
    pub fn code(&self) -> &'static str {
        match self {
            Stop::Timeout(_) => "Timeout",
            Stop::LeaseNotRenewed(_) => "LeaseNotRenewed",
        }
    }
}

/// What the last attempt ended with.
#[derive(Debug)]
pub enum Outcome {
    /// The plan was applied (or there was nothing to do).
    Planned(Verdict),
    /// Observation or execution failed at a step.
    Error(ExecuteError),
    /// The runner stopped the pass.
    Stopped(Stop),
}

/// The parts of a failed outcome the decision reads.
pub(super) struct Failure<'a> {
    pub cloud: Option<&'a CloudError>,
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
    pub contention: bool,
}

impl Outcome {
    /// The plan's verdict, or what the failure was.
    pub(super) fn result(&self) -> Result<&Verdict, Failure<'_>> {
        match self {
            Outcome::Planned(v) => Ok(v),
            Outcome::Error(e) => Err(Failure {
                cloud: e.cloud(),
                class: e.class(),
                code: e.code().to_string(),
                message: e.to_string(),
                contention: e.is_contention(),
            }),
            Outcome::Stopped(s) => Err(Failure {
                cloud: None,
                class: ErrorClass::Retryable,
                code: s.code().to_string(),
                message: s.to_string(),
                contention: false,
            }),
        }
    }
}
