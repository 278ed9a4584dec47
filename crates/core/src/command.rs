//! The one vocabulary for changing desired state. Every writer (the API's
//! dispatch and `DELETE`, the webhook, `previewd once`, the sweep's expiry)
//! builds a [`Command`] and hands it to [`Store::apply`], the one write
//! path; the store allocates names, computes the expiry from the row it
//! reads, and wakes the reconcile loop.
//!
//! ```text
//!  dispatch inputs ─ DispatchRequest::command ─┐
//!  DELETE /v1/previews/{branch} ─ Destroy ─────┤
//!  webhook close ─ WebhookDestroy ─────────────┼─▶ Store::apply ─▶ Effect
//!  webhook label ─ WebhookDeploy/Destroy ──────┤
//!  previewd once ─ DispatchRequest::command ───┤    (names, expiry,
//!  sweep ─ Expire ─────────────────────────────┘     wake-up)
//! ```
//!
//! Adding a command (retry, sleep, wake) is one variant here and one arm
//! in the store's `apply`.
//!
//! [`Store::apply`]: crate::ports::Store::apply

mod inputs;

pub(crate) use inputs::validate_commit;
pub use inputs::{DispatchRequest, Refusal};

use crate::decide::expires_at;
use crate::key::PreviewKey;
use crate::model::{ApplyOutcome, DeployRequest, Desired, Phase, Preview, PreviewSpec, Timestamp};
use crate::naming::NamingConfig;
use crate::ports::Delivery;
use std::time::Duration;

/// A change of desired state, as one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The preview should exist with this spec. A new row takes names by
    /// `naming`'s rules; they never change afterwards.
    Deploy {
        request: DeployRequest,
        naming: NamingConfig,
    },
    /// The preview should be gone: a person or the QA tool asked.
    Destroy(PreviewKey),
    /// The preview should be gone, and the outcome reported to the run and
    /// callback this destroy names (a dispatch that brought either). What
    /// it leaves `None` falls back to the deploy's.
    DestroyFor {
        key: PreviewKey,
        report_to: ReportTo,
    },
    /// The preview should be gone: its lifetime is over (the sweep).
    Expire(PreviewKey),
    /// The preview should be gone: GitHub says its pull request closed or
    /// its branch was deleted. The delivery is recorded in the same
    /// transaction as the destroy, so a failure between the two cannot
    /// turn GitHub's redelivery into a no-op.
    WebhookDestroy {
        delivery: Delivery,
        key: PreviewKey,
        /// When the close happened; a close older than the preview's
        /// current deploy is stale. `None` (a branch deletion carries no
        /// time) skips that rule.
        event_at: Option<Timestamp>,
    },
    /// The preview should exist at a labelled pull request's head commit
    /// (`github.preview_label`). The delivery is recorded with the deploy;
    /// a change older than the preview's current deploy is stale.
    WebhookDeploy {
        delivery: Delivery,
        request: DeployRequest,
        naming: NamingConfig,
        /// `pull_request.updated_at`; `None` skips the stale rule.
        event_at: Option<Timestamp>,
        /// The pull request's number: kept with a deploy that applies, so
        /// the sticky comment (`github.pr_comment`) goes to this pull
        /// request rather than one looked up by branch.
        pull_request: Option<i64>,
    },
    /// The preview should sleep: the idle check saw no request for
    /// `sleep.idle_after` ([`crate::sleep::idle`]). Applies only to a
    /// present, awake row still at `generation`, so a redeploy that came
    /// in since is never put to sleep.
    Sleep { key: PreviewKey, generation: i64 },
    /// The preview should wake: a visit reached the waker. Applies only to
    /// a sleeping row; a redeploy wakes one too.
    Wake(PreviewKey),
}

impl Command {
    /// The preview the command is about.
    pub fn key(&self) -> &PreviewKey {
        match self {
            Command::Deploy { request, .. } | Command::WebhookDeploy { request, .. } => {
                &request.key
            }
            Command::Destroy(key) | Command::Expire(key) => key,
            Command::DestroyFor { key, .. } | Command::WebhookDestroy { key, .. } => key,
            Command::Sleep { key, .. } | Command::Wake(key) => key,
        }
    }

    /// The callback URL a deploy or a destroy asks for: it must be
    /// resolved (an IO step) before the command is applied.
    pub fn callback_url(&self) -> Option<&str> {
        match self {
            Command::Deploy { request, .. } => request.spec.callback_url.as_deref(),
            Command::DestroyFor { report_to, .. } => report_to.callback_url.as_deref(),
            _ => None,
        }
    }
}

/// Where a destroy's outcome goes: its own run id and callback, stored on
/// the row with the destroy so that the Deleted report uses them. `None`
/// keeps the deploy's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportTo {
    pub ai_run_id: Option<String>,
    pub callback_url: Option<String>,
}

/// What a deploy does to the row it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployStep {
    /// No row: insert one, names allocated.
    Insert,
    /// The row already asks for this spec and is not a failure of it:
    /// nothing is written, not even the expiry.
    Unchanged,
    /// A new generation: a changed spec, a deleted preview brought back,
    /// or a retry of a failed one.
    Redeploy,
}

/// Decides what a deploy of `spec` does to `row`. An identical resend is a
/// no-op, except over a preview whose current generation `Failed`: asking
/// again is how a person retries it, so it starts a new attempt (a new
/// generation, reported like any other). Only a failure of the current
/// generation counts, so a second resend while the retry runs is a no-op.
pub fn deploy_step(row: Option<&Preview>, spec: &PreviewSpec) -> DeployStep {
    let Some(row) = row else {
        return DeployStep::Insert;
    };
    let failed =
        row.status.phase == Phase::Failed && row.status.observed_generation == row.generation;
    if row.desired == Desired::Present && row.spec == *spec && !failed {
        DeployStep::Unchanged
    } else {
        DeployStep::Redeploy
    }
}

/// How long a preview lives: `ttl` after its last deploy, and never past
/// `max_lifetime` after it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub ttl: Duration,
    pub max_lifetime: Duration,
}

impl Lifetime {
    /// When a deploy applied at `now` over `row` (the row as the store read
    /// it; `None` when there is none) expires. A Deleted row's lifetime is
    /// over: a deploy over it starts a new one.
    pub fn expires_at(&self, row: Option<&Preview>, now: Timestamp) -> Option<Timestamp> {
        let created = row
            .filter(|p| p.status.phase != Phase::Deleted)
            .map(|p| p.created_at);
        expires_at(now, created, self.ttl, self.max_lifetime)
    }
}

/// When a deploy's preview expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never.
    Never,
    /// At this instant, whatever the row says.
    At(Timestamp),
    /// By the lifetime policy, from the row the store reads while applying
    /// (a read before the apply could be outdated by the time it writes).
    Lifetime(Lifetime),
}

impl Expiry {
    /// The expiry a deploy applied at `now` over `row` writes.
    pub fn resolve(&self, row: Option<&Preview>, now: Timestamp) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::At(at) => Some(*at),
            Expiry::Lifetime(lifetime) => lifetime.expires_at(row, now),
        }
    }
}

impl From<Option<Timestamp>> for Expiry {
    fn from(at: Option<Timestamp>) -> Self {
        at.map_or(Expiry::Never, Expiry::At)
    }
}

/// What applying a command did.
// Returned once per command and matched at once; a box would only make
// callers' patterns (`Applied(Some(o))`) clumsier.
#[expect(
    clippy::large_enum_variant,
    reason = "a short-lived return value, matched at once"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The command ran: the row as it now stands (`changed` false when it
    /// already said so), or `None` when a destroy found no row.
    Applied(Option<ApplyOutcome>),
    /// A webhook delivery whose id or body digest was seen before:
    /// nothing was written.
    Duplicate,
    /// A webhook change (a close, a labelled push) older than the
    /// preview's current deploy: the delivery was recorded and the row
    /// left as it is.
    Stale,
}

impl Effect {
    /// Whether the command changed the row, making it due at once: the
    /// store wakes the reconcile loop exactly then.
    pub fn changed(&self) -> bool {
        matches!(self, Effect::Applied(Some(out)) if out.changed)
    }

    /// The row the command left, if it ran and a row exists.
    pub fn outcome(&self) -> Option<&ApplyOutcome> {
        match self {
            Effect::Applied(out) => out.as_ref(),
            Effect::Duplicate | Effect::Stale => None,
        }
    }

    /// The row the command left, if it ran and a row exists.
    pub fn into_outcome(self) -> Option<ApplyOutcome> {
        match self {
            Effect::Applied(out) => out,
            Effect::Duplicate | Effect::Stale => None,
        }
    }
}

#[cfg(test)]
mod tests;
