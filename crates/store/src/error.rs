//! How the store fails below the core's `StoreError`, one variant per step.

use previewd_core::ports::StoreError;

/// The detail inside `StoreError::Backend`: which step failed and why.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connecting to {backend}: {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the {backend} schema: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed; `step` names the store operation and its part.
    #[error("{step}: {source}")]
    Query {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A stored value this version cannot read (a newer version wrote it,
    /// or someone edited the table by hand).
    #[error("{table}.{column} holds {value:?}: {problem}")]
    BadColumn {
        table: &'static str,
        column: &'static str,
        value: String,
        problem: String,
    },
    /// A value could not be turned into the JSON text the table keeps.
    #[error("encoding {column} as JSON: {source}")]
    Encode {
        column: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Concurrent writers kept invalidating what the operation had read.
    #[error("{step}: gave up after {tries} tries against concurrent writers")]
    Contention { step: &'static str, tries: u32 },
    /// Every candidate name was taken, which only a pathological table allows.
    #[error("no free {what} for branch {branch:?}")]
    NamesExhausted { what: &'static str, branch: String },
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// `map_err` adapter for a failed statement of `step`.
pub(crate) fn query(step: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| BackendError::Query { step, source }.into()
}

/// True for a UNIQUE or PRIMARY KEY violation on either backend.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
