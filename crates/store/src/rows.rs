//! Rows as both backends hold them, and their conversion to the core model.
//!
//! Both schemas use the same column names and types (TEXT, BIGINT, INTEGER,
//! timestamps as BIGINT milliseconds), so one `FromRow` struct per table
//! serves SQLite and PostgreSQL alike.

use crate::error::BackendError;
use previewd_core::ports::{StoreError, StoreResult};
use previewd_core::{
    Conditions, Desired, Event, LastError, OutboxItem, Phase, Preview, PreviewKey, PreviewSpec,
    PreviewStatus, Timestamp,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Timestamps are stored as whole milliseconds since the epoch; anything
/// finer is dropped (rounded towards the past).
pub(crate) fn to_ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// A lease length in milliseconds, saturating rather than wrapping.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(
    table: &'static str,
    column: &'static str,
    ms: i64,
) -> StoreResult<Timestamp> {
    Timestamp::from_timestamp_millis(ms).ok_or_else(|| {
        BackendError::BadColumn {
            table,
            column,
            value: ms.to_string(),
            problem: "not a representable time in milliseconds since the epoch".into(),
        }
        .into()
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| {
        BackendError::BadColumn {
            table,
            column,
            value: text.to_owned(),
            problem: format!("not the JSON this version expects: {e}"),
        }
        .into()
    })
}

fn to_json<T: serde::Serialize>(column: &'static str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|source| BackendError::Encode { column, source }.into())
}

fn parse_text<T: std::str::FromStr<Err = String>>(
    column: &'static str,
    text: &str,
) -> StoreResult<T> {
    text.parse().map_err(|problem| {
        BackendError::BadColumn {
            table: "previews",
            column,
            value: text.to_owned(),
            problem,
        }
        .into()
    })
}

/// One `previews` row exactly as selected by `sql::preview_columns!`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PreviewRow {
    project: String,
    branch: String,
    slug: String,
    host_label: String,
    commit_sha: Option<String>,
    ai_run_id: Option<String>,
    callback_url: Option<String>,
    image: Option<String>,
    env_json: String,
    desired: String,
    generation: i64,
    phase: String,
    conditions_json: String,
    observed_generation: i64,
    url: Option<String>,
    message: Option<String>,
    last_error_json: Option<String>,
    rule_priority: Option<i32>,
    created_at: i64,
    updated_at: i64,
    deployed_at: Option<i64>,
    expires_at: Option<i64>,
    next_reconcile_at: i64,
    attempts: i32,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    listener_arn: Option<String>,
    asleep: i32,
    sleep_changed_at: Option<i64>,
}

impl PreviewRow {
    pub(crate) fn into_preview(self) -> StoreResult<Preview> {
        let t = |column, ms| from_ms("previews", column, ms);
        let last_error = match &self.last_error_json {
            Some(text) => Some(parse_json::<LastError>(
                "previews",
                "last_error_json",
                text,
            )?),
            None => None,
        };
        Ok(Preview {
            // Keys were validated when the row was written; re-validating here
            // would only turn a readable row into an unreadable one.
            key: PreviewKey {
                project: self.project,
                branch: self.branch,
            },
            slug: self.slug,
            host_label: self.host_label,
            spec: PreviewSpec {
                commit_sha: self.commit_sha,
                ai_run_id: self.ai_run_id,
                callback_url: self.callback_url,
                image: self.image,
                env: parse_json::<BTreeMap<String, String>>(
                    "previews",
                    "env_json",
                    &self.env_json,
                )?,
            },
            desired: parse_text::<Desired>("desired", &self.desired)?,
            generation: self.generation,
            status: PreviewStatus {
                phase: parse_text::<Phase>("phase", &self.phase)?,
                conditions: parse_json::<Conditions>(
                    "previews",
                    "conditions_json",
                    &self.conditions_json,
                )?,
                observed_generation: self.observed_generation,
                url: self.url,
                message: self.message,
                last_error,
            },
            rule_priority: self.rule_priority,
            listener_arn: self.listener_arn,
            created_at: t("created_at", self.created_at)?,
            updated_at: t("updated_at", self.updated_at)?,
            deployed_at: self
                .deployed_at
                .map(|ms| t("deployed_at", ms))
                .transpose()?,
            expires_at: self.expires_at.map(|ms| t("expires_at", ms)).transpose()?,
            next_reconcile_at: t("next_reconcile_at", self.next_reconcile_at)?,
            attempts: self.attempts,
            lease_owner: self.lease_owner,
            lease_until: self
                .lease_until
                .map(|ms| t("lease_until", ms))
                .transpose()?,
            asleep: self.asleep != 0,
            sleep_changed_at: self
                .sleep_changed_at
                .map(|ms| t("sleep_changed_at", ms))
                .transpose()?,
        })
    }
}

/// A row as a claim returns it: the preview, and whose expired lease the
/// claim took over.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ClaimRow {
    #[sqlx(flatten)]
    pub preview: PreviewRow,
    pub lease_taken_from: Option<String>,
}

/// One `events` row as `sql::EVENTS` selects it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    at: i64,
    generation: i64,
    phase: String,
    message: Option<String>,
}

impl EventRow {
    pub(crate) fn into_event(self) -> StoreResult<Event> {
        let phase = self
            .phase
            .parse::<Phase>()
            .map_err(|problem| BackendError::BadColumn {
                table: "events",
                column: "phase",
                value: self.phase.clone(),
                problem,
            })?;
        Ok(Event {
            id: self.id,
            at: from_ms("events", "at", self.at)?,
            generation: self.generation,
            phase,
            message: self.message,
        })
    }
}

/// The spec as the columns that hold it.
pub(crate) struct SpecColumns<'a> {
    pub commit_sha: Option<&'a str>,
    pub ai_run_id: Option<&'a str>,
    pub callback_url: Option<&'a str>,
    pub image: Option<&'a str>,
    pub env_json: String,
}

impl<'a> SpecColumns<'a> {
    pub(crate) fn new(spec: &'a PreviewSpec) -> StoreResult<Self> {
        Ok(Self {
            commit_sha: spec.commit_sha.as_deref(),
            ai_run_id: spec.ai_run_id.as_deref(),
            callback_url: spec.callback_url.as_deref(),
            image: spec.image.as_deref(),
            env_json: to_json("env_json", &spec.env)?,
        })
    }
}

/// The observed status as the columns that hold it.
pub(crate) struct StatusColumns<'a> {
    pub phase: &'static str,
    pub conditions_json: String,
    pub observed_generation: i64,
    pub url: Option<&'a str>,
    pub message: Option<&'a str>,
    pub last_error_json: Option<String>,
}

impl<'a> StatusColumns<'a> {
    pub(crate) fn new(status: &'a PreviewStatus) -> StoreResult<Self> {
        Ok(Self {
            phase: status.phase.as_str(),
            conditions_json: to_json("conditions_json", &status.conditions)?,
            observed_generation: status.observed_generation,
            url: status.url.as_deref(),
            message: status.message.as_deref(),
            last_error_json: status
                .last_error
                .as_ref()
                .map(|e| to_json("last_error_json", e))
                .transpose()?,
        })
    }
}

/// The conditions a fresh row starts with.
pub(crate) fn empty_conditions_json() -> StoreResult<String> {
    to_json("conditions_json", &Conditions::default())
}

pub(crate) fn payload_json(payload: &serde_json::Value) -> StoreResult<String> {
    to_json("payload", payload)
}

/// One `outbox` row as selected by `sql::outbox_columns!`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: i64,
    project: String,
    branch: String,
    kind: String,
    payload: String,
    attempts: i32,
    created_at: i64,
    last_error: Option<String>,
}

impl OutboxRow {
    pub(crate) fn into_item(self) -> Result<OutboxItem, StoreError> {
        Ok(OutboxItem {
            id: self.id,
            key: PreviewKey {
                project: self.project,
                branch: self.branch,
            },
            kind: self.kind.into(),
            payload: parse_json("outbox", "payload", &self.payload)?,
            attempts: self.attempts,
            created_at: from_ms("outbox", "created_at", self.created_at)?,
            last_error: self.last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(phase: &str) -> PreviewRow {
        PreviewRow {
            project: "acme/shop".into(),
            branch: "main".into(),
            slug: "main".into(),
            host_label: "main-preview".into(),
            commit_sha: None,
            ai_run_id: None,
            callback_url: None,
            image: None,
            env_json: "{}".into(),
            desired: "present".into(),
            generation: 1,
            phase: phase.into(),
            conditions_json: "{}".into(),
            observed_generation: 0,
            url: None,
            message: None,
            last_error_json: None,
            rule_priority: None,
            listener_arn: None,
            created_at: 0,
            updated_at: 0,
            deployed_at: None,
            expires_at: None,
            next_reconcile_at: 0,
            attempts: 0,
            lease_owner: None,
            lease_until: None,
            asleep: 0,
            sleep_changed_at: None,
        }
    }

    #[test]
    fn an_unknown_phase_is_a_backend_error_naming_the_column() {
        let err = row("Exploded").into_preview().unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("previews.phase") && text.contains("Exploded"),
            "{text}"
        );
    }

    #[test]
    fn a_known_row_converts() {
        let p = row("Ready").into_preview().unwrap();
        assert_eq!(p.status.phase, Phase::Ready);
        assert_eq!(p.status.conditions, Conditions::default());
    }

    #[test]
    fn sub_millisecond_precision_is_dropped_towards_the_past() {
        let t = Timestamp::from_timestamp(1_700_000_000, 123_987_654).unwrap();
        assert_eq!(to_ms(t), 1_700_000_000_123);
    }
}
