//! previewd's desired-state table, work schedule and outbox on SQLite and
//! PostgreSQL: [`SqlStore`], the sqlx implementation of
//! [`previewd_core::ports::Store`].
//!
//! ```text
//!   open(url) ──▶ SqlStore ──▶ Arc<dyn Store>
//!                    │  one sqlx `Any` pool; each method written once
//!                    │  (store.rs, apply.rs, deliveries.rs, events.rs),
//!                    │  each statement once (sql.rs), each row mapping
//!                    │  once (rows.rs)
//!          ┌─────────┴──────────┐
//!     sqlite.rs             postgres.rs     what differs: opening the
//!     (file lock, WAL,      (replicas,      database, the claim's lock
//!      one replica)          SKIP LOCKED,   clause, the sweep lock
//!                            advisory lock)
//! ```
//!
//! Both run the migrations in `migrations/<backend>/` at connect time and
//! keep every timestamp as BIGINT milliseconds since the epoch, so anything
//! finer than a millisecond is dropped on the way in.
#![forbid(unsafe_code)]

mod apply;
mod deliveries;
mod error;
mod events;
mod gc;
mod placement;
mod postgres;
mod pull_requests;
mod replicas;
mod rows;
mod sql;
mod sqlite;
mod store;
mod wake;

pub use error::BackendError;
pub use store::SqlStore;
pub use wake::{WAKE_CHANNEL, wake_on_writes};

use previewd_core::ports::{Store, StoreError, StoreResult};
use std::sync::Arc;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Chooses by scheme: `sqlite:` or `postgres:` / `postgresql:`.
    pub fn of(url: &str) -> StoreResult<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            // Only the scheme is echoed: the rest may hold a password.
            other => Err(StoreError::Invalid {
                field: "database_url",
                rule: format!(
                    "must start with sqlite:, postgres: or postgresql: (found {other:?})"
                ),
            }),
        }
    }

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connects to the database `url` names and brings its schema up to date.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    let store = SqlStore::connect(url).await?;
    tracing::info!(
        backend = store.backend().name(),
        "store opened and migrated"
    );
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("sqlite:///tmp/x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(
            Backend::of("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
    }

    #[test]
    fn an_unknown_scheme_is_refused_without_echoing_the_url() {
        let err = Backend::of("mysql://root:hunter2@db/x").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("database_url: must start with sqlite:"),
            "{text}"
        );
        assert!(
            text.contains("\"mysql\"") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
