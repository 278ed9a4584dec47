//! When an unwanted resource may go: after its grace period, never past
//! the brake, and only if a look at the rows just before deleting still
//! agrees.

use super::{Candidate, Reason};
use crate::gc_report::{Planned, SweepOptions};
use crate::model::{Preview, Timestamp};
use chrono::Duration as ChronoDuration;

/// What a sweep may do with what it found.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Every candidate, in deletion order, each marked due or in grace.
    pub planned: Vec<Planned>,
    /// More candidates are due than `max_deletions` allows: delete none.
    /// A sudden mass of orphans more likely means a lost database or a
    /// wrong controller id than real garbage, and a person should look.
    pub braked: bool,
}

impl Schedule {
    /// What may be deleted now (if a dry run does not forbid it): every
    /// due candidate, or none when braked.
    pub fn deletable(&self) -> impl Iterator<Item = &Planned> {
        self.planned.iter().filter(|p| p.due && !self.braked)
    }
}

/// Marks each candidate due once it has stayed unwanted for the grace
/// period (`first_seen[i]` is when `candidates[i]` was first seen, as the
/// store remembers it) and applies the brake to the due ones.
pub fn schedule(
    candidates: Vec<Candidate>,
    first_seen: Vec<Timestamp>,
    opts: &SweepOptions,
    now: Timestamp,
) -> Schedule {
    let grace = ChronoDuration::from_std(opts.grace).unwrap_or(ChronoDuration::MAX);
    let planned: Vec<Planned> = candidates
        .into_iter()
        .zip(first_seen)
        .map(|(candidate, first_seen)| Planned {
            // An overflowing deadline lies beyond any `now`.
            due: first_seen
                .checked_add_signed(grace)
                .is_some_and(|deadline| deadline <= now),
            candidate,
            first_seen,
        })
        .collect();
    let due = planned.iter().filter(|p| p.due).count();
    Schedule {
        braked: due > opts.max_deletions,
        planned,
    }
}

/// What to do with a due candidate once the rows have been read again,
/// just before deleting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Still an orphan: no row has its slug.
    Delete,
    /// Its row's teardown had finished: delete under the row's lease, so
    /// that a redeploy landing meanwhile waits for the sweep instead of
    /// racing it. The store grants that lease only while the row is still
    /// absent and Deleted, and the candidate stays only if it does.
    LeaseRow,
    /// Things changed since the listing (a row appeared, or vanished
    /// under a half-deleted resource): leave it to the next sweep.
    Keep,
}

/// The look again: `row` is the row now holding the candidate's slug.
pub fn recheck(reason: Reason, row: Option<&Preview>) -> Recheck {
    match (reason, row) {
        (Reason::Orphan, None) => Recheck::Delete,
        (Reason::HalfDeleted, Some(_)) => Recheck::LeaseRow,
        _ => Recheck::Keep,
    }
}
