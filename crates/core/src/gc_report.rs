//! What a garbage-collection sweep found and did: the report `previewd
//! gc` prints as a table and `GET /v1/gc` serves as JSON, and the port the
//! API asks for a dry run through.

use crate::gc::Candidate;
use crate::key::PreviewKey;
use crate::model::Timestamp;
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Report what would happen; change nothing, record nothing.
    pub dry_run: bool,
    /// How long a resource must stay unwanted before it is deleted.
    pub grace: Duration,
    /// The brake: more due deletions than this and the sweep deletes none.
    pub max_deletions: usize,
}

/// One unwanted resource and when it may go.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    #[serde(flatten)]
    pub candidate: Candidate,
    pub first_seen: Timestamp,
    /// Past its grace period.
    pub due: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    pub dry_run: bool,
    /// Previews past their TTL, marked absent (or that would be).
    pub expired: Vec<PreviewKey>,
    pub unwanted: Vec<Planned>,
    pub deleted: usize,
    /// True when the brake stopped the sweep.
    pub braked: bool,
    pub errors: Vec<String>,
}

impl SweepReport {
    /// What the sweep found, did, or would do, one resource a line.
    pub fn to_table(&self, grace_secs: u64) -> String {
        render(self, grace_secs)
    }
}

/// What the next sweep would do, changing nothing: how the API serves
/// `GET /v1/gc` without knowing how a sweep is made.
#[async_trait::async_trait]
pub trait GcDryRun: Send + Sync {
    /// The error is a sentence for an operator.
    async fn dry_run(&self, now: Timestamp) -> Result<SweepReport, String>;
}

fn render(r: &SweepReport, grace_secs: u64) -> String {
    let mut out = String::new();
    let verb = if r.dry_run { "would" } else { "will" };
    let _ = writeln!(
        out,
        "{:<17} {:<34} {:<22} {:<42} {:<20} ACTION",
        "KIND", "NAME", "SLUG", "REASON", "FIRST SEEN"
    );
    for p in &r.unwanted {
        let res = &p.candidate.resource;
        let action = match (p.due, r.braked, r.dry_run) {
            (false, _, _) => format!("wait (grace {grace_secs}s)"),
            (true, true, _) => "kept: brake".to_string(),
            (true, false, true) => "delete".to_string(),
            (true, false, false) => "deleted".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<17} {:<34} {:<22} {:<42} {:<20} {action}",
            res.kind.to_string(),
            short(&res.id, 34),
            short(&res.slug, 22),
            p.candidate.reason.to_string(),
            p.first_seen.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    for key in &r.expired {
        let _ = writeln!(
            out,
            "{:<17} {:<34} {:<22} {:<42} {:<20} destroy",
            "preview",
            short(&key.branch, 34),
            "",
            "expired: past its TTL",
            ""
        );
    }
    let due = r.unwanted.iter().filter(|p| p.due).count();
    let _ = writeln!(
        out,
        "\n{} unwanted resource(s): {due} due, {} in grace; {} expired preview(s); {}",
        r.unwanted.len(),
        r.unwanted.len() - due,
        r.expired.len(),
        if r.dry_run {
            format!(
                "dry run: nothing changed ({verb} delete {} now)",
                if r.braked { 0 } else { due }
            )
        } else {
            format!("deleted {}", r.deleted)
        }
    );
    if r.braked {
        let _ = writeln!(
            out,
            "BRAKE: more deletions due than gc.max_deletions allows; nothing was deleted. Check the controller id and the database before raising it."
        );
    }
    for e in &r.errors {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

/// Long ARNs keep their distinctive tail.
fn short(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(width - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}
