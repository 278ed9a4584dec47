//! previewd's desired-state table, work schedule and outbox on SQLite and PostgreSQL.
#![forbid(unsafe_code)]
