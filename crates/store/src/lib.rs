//! previewd's desired-state table, work schedule and outbox on SQLite and
//! PostgreSQL: the sqlx implementations of [`previewd_core::ports::Store`].
//!
//! ```text
//!            open(url) ──▶ Arc<dyn Store>
//!                 │
//!       ┌─────────┴──────────┐
//!  SqliteStore           PgStore          one body per method (shared.rs),
//!  (file, WAL,           (replicas,       one text per statement (sql.rs),
//!   one replica)          SKIP LOCKED)    one row mapping (rows.rs)
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
mod postgres;
mod rows;
mod shared;
mod sql;
mod sqlite;
mod wake;

pub use error::BackendError;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
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
            Backend::Sqlite => SqliteStore::BACKEND,
            Backend::Postgres => PgStore::BACKEND,
        }
    }
}

/// Connects to the database `url` names and brings its schema up to date.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    let backend = Backend::of(url)?;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => Arc::new(SqliteStore::connect(url).await?),
        Backend::Postgres => Arc::new(PgStore::connect(url).await?),
    };
    tracing::info!(backend = backend.name(), "store opened and migrated");
    Ok(store)
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
