//! The desired-state row and its observed status, as the store keeps them.

use crate::key::PreviewKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub type Timestamp = DateTime<Utc>;

/// What a dispatch asks for; a change to any field is a new generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewSpec {
    pub commit_sha: Option<String>,
    pub ai_run_id: Option<String>,
    pub callback_url: Option<String>,
    /// Overrides the configured image pattern for this preview.
    pub image: Option<String>,
    /// Extra container environment for this preview.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Present,
    Absent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Provisioning,
    Ready,
    Failed,
    Deleting,
    Deleted,
    /// Scaled to zero after `sleep.idle_after` without a request; its rule
    /// forwards to the waker. Waking is not a phase of its own: a preview
    /// on its way back stays `Sleeping` with its Ready condition's reason
    /// `Waking` until it serves, so its GitHub status stays `success`.
    Sleeping,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(format!("unknown {} {other:?}", stringify!($t))),
                }
            }
        }
    };
}
/// For the other closed sets of core (`report`, `metrics`).
pub(crate) use text_enum;

text_enum!(Desired { Present = "present", Absent = "absent" });
text_enum!(Phase {
    Pending = "Pending",
    Provisioning = "Provisioning",
    Ready = "Ready",
    Failed = "Failed",
    Deleting = "Deleting",
    Deleted = "Deleted",
    Sleeping = "Sleeping",
});

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Pending,
        Phase::Provisioning,
        Phase::Ready,
        Phase::Failed,
        Phase::Deleting,
        Phase::Deleted,
        Phase::Sleeping,
    ];
}

/// One condition, Kubernetes style: *Synced* (AWS matches the spec) and
/// *Ready* (the preview serves traffic) are kept apart because a preview can
/// be synced and still starting, or ready and about to be updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub status: bool,
    pub reason: String,
    pub message: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub synced: Option<Condition>,
    pub ready: Option<Condition>,
}

/// The last error a reconcile met, with its AWS code and class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub code: String,
    pub message: String,
    pub class: crate::ErrorClass,
    pub at: Timestamp,
}

/// The observed side of a row, written only by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewStatus {
    pub phase: Phase,
    pub conditions: Conditions,
    pub observed_generation: i64,
    /// Set once the preview is reachable.
    pub url: Option<String>,
    /// A sentence for people: why it is Pending, what failed.
    pub message: Option<String>,
    pub last_error: Option<LastError>,
}

/// One row of `previews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub key: PreviewKey,
    /// Allocated once at first insert; every AWS name derives from it.
    pub slug: String,
    /// Allocated once at first insert, unique across rows.
    pub host_label: String,
    pub spec: PreviewSpec,
    pub desired: Desired,
    pub generation: i64,
    pub status: PreviewStatus,
    /// Listener rule priority reserved for this preview.
    pub rule_priority: Option<i32>,
    /// The listener of the pool the preview is placed on (with
    /// `rule_priority`, its reservation). `None` with a priority: a row
    /// placed before the pool existed, on the pool's first listener.
    #[serde(default)]
    pub listener_arn: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the current spec was deployed (insert, redeploy, retry): when
    /// this generation was asked for, which the image wait counts from.
    /// `None` on a row older than the column.
    #[serde(default)]
    pub deployed_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub next_reconcile_at: Timestamp,
    /// Consecutive failed reconciles, for backoff.
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    /// Desired: the preview should sleep (scaled to zero, its rule on the
    /// waker). Set by the idle check (`Command::Sleep`), cleared by a visit
    /// (`Command::Wake`) and by a redeploy.
    #[serde(default)]
    pub asleep: bool,
    /// When `asleep` last flipped: the wake a wake duration counts from.
    #[serde(default)]
    pub sleep_changed_at: Option<Timestamp>,
}

impl Preview {
    /// A row as it is first inserted: present, generation 1, Pending, due
    /// at `now`, nothing observed yet.
    pub fn fresh(
        key: PreviewKey,
        slug: &str,
        host_label: &str,
        spec: PreviewSpec,
        now: Timestamp,
    ) -> Self {
        Preview {
            key,
            slug: slug.into(),
            host_label: host_label.into(),
            spec,
            desired: Desired::Present,
            generation: 1,
            status: PreviewStatus {
                phase: Phase::Pending,
                conditions: Conditions::default(),
                observed_generation: 0,
                url: None,
                message: None,
                last_error: None,
            },
            rule_priority: None,
            listener_arn: None,
            created_at: now,
            updated_at: now,
            deployed_at: Some(now),
            expires_at: None,
            next_reconcile_at: now,
            attempts: 0,
            lease_owner: None,
            lease_until: None,
            asleep: false,
            sleep_changed_at: None,
        }
    }
}

/// A deploy as the API or CLI asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    pub key: PreviewKey,
    pub spec: PreviewSpec,
    /// When the preview expires; the store resolves it against the row it
    /// reads while applying (see [`crate::command::Expiry::resolve`]).
    pub expiry: crate::command::Expiry,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub preview: Preview,
    /// False when the request repeated what the row already said.
    pub changed: bool,
}

/// What a reconcile writes back, together with the reports it owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub status: PreviewStatus,
    /// When the controller wants to look again.
    pub next_reconcile_at: Timestamp,
    pub attempts: i32,
    /// Reports (GitHub statuses, callbacks) to enqueue atomically with it.
    pub outbox: Vec<OutboxMessage>,
}

/// How many events the store keeps per preview; older ones are pruned.
pub const EVENTS_KEPT: i64 = 50;

/// One change of a preview's observed status (its phase or its message),
/// kept for people to read on the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Increases with every event of the store, so it orders them.
    pub id: i64,
    pub at: Timestamp,
    /// The row's generation when the status was written.
    pub generation: i64,
    pub phase: Phase,
    pub message: Option<String>,
}

/// What an outbox message is, spelled as the `outbox.kind` column keeps it.
///
/// # Caveats
/// A row a newer version wrote may carry a kind this one does not know: it
/// is read as [`OutboxKind::Other`], spelling kept, and the delivery worker
/// refuses that one message instead of the claim failing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum OutboxKind {
    /// A phase change ([`crate::outbox_report::Report`]); the delivery worker fans
    /// it out to GitHub and the callback.
    Report,
    /// The same report, owed to the pull request's sticky comment
    /// (`github.pr_comment`, [`crate::pr_comment`]): a queue of its own, so
    /// a comment that cannot be written never holds back a status.
    Comment,
    /// A kind this version does not know, as stored.
    Other(String),
}

impl OutboxKind {
    pub fn as_str(&self) -> &str {
        match self {
            OutboxKind::Report => "report",
            OutboxKind::Comment => "comment",
            OutboxKind::Other(s) => s,
        }
    }
}

impl From<&str> for OutboxKind {
    fn from(s: &str) -> Self {
        match s {
            "report" => OutboxKind::Report,
            "comment" => OutboxKind::Comment,
            other => OutboxKind::Other(other.to_owned()),
        }
    }
}

impl From<String> for OutboxKind {
    fn from(s: String) -> Self {
        OutboxKind::from(s.as_str())
    }
}

impl From<OutboxKind> for String {
    fn from(k: OutboxKind) -> Self {
        match k {
            OutboxKind::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A report waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
}

/// An outbox row as claimed by a delivery worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub key: PreviewKey,
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub created_at: Timestamp,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub project: Option<String>,
    pub phase: Option<Phase>,
    pub desired: Option<Desired>,
    /// Only rows whose `expires_at` is at or before this instant.
    pub expired_at: Option<Timestamp>,
    pub limit: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_kind_is_spelled_report_on_the_wire() {
        let json = serde_json::to_value(OutboxKind::Report).unwrap();
        assert_eq!(json, serde_json::json!("report"));
        assert_eq!(
            serde_json::from_value::<OutboxKind>(json).unwrap(),
            OutboxKind::Report
        );
        assert_eq!(OutboxKind::from("report"), OutboxKind::Report);
        assert_eq!(String::from(OutboxKind::Report), "report");
        assert_eq!(OutboxKind::from("comment"), OutboxKind::Comment);
        assert_eq!(String::from(OutboxKind::Comment), "comment");
    }

    #[test]
    fn an_outbox_kind_from_a_newer_version_is_kept_not_refused() {
        let later = OutboxKind::from("digest");
        assert_eq!(later, OutboxKind::Other("digest".into()));
        assert_eq!(later.as_str(), "digest");
        assert_eq!(serde_json::to_string(&later).unwrap(), r#""digest""#);
    }
}
