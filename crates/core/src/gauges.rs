//! The gauges read from the table at each scrape (queue depth, previews
//! per phase, outbox backlog), counted as data; recording them is the
//! API's business.

use crate::model::{Phase, Preview, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

/// The table-derived gauges, as of one look at the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableGauges {
    /// Rows due and not held by a live lease.
    pub queue_depth: u64,
    /// Previews per phase, in `Phase::ALL` order.
    pub by_phase: [u64; Phase::ALL.len()],
    /// Previews per project and phase (`Phase::ALL` order).
    pub by_project: BTreeMap<String, [u64; Phase::ALL.len()]>,
    pub outbox_backlog: i64,
    pub outbox_oldest_age: Duration,
}

impl TableGauges {
    /// Counts `rows` as of `now`.
    pub fn count(rows: &[Preview], outbox: (i64, Option<Timestamp>), now: Timestamp) -> Self {
        let mut g = TableGauges {
            outbox_backlog: outbox.0,
            outbox_oldest_age: outbox
                .1
                .and_then(|t| (now - t).to_std().ok())
                .unwrap_or_default(),
            ..Default::default()
        };
        for p in rows {
            let leased = p.lease_owner.is_some() && p.lease_until.is_some_and(|u| u >= now);
            if p.next_reconcile_at <= now && !leased {
                g.queue_depth += 1;
            }
            if let Some(i) = Phase::ALL.iter().position(|ph| *ph == p.status.phase) {
                g.by_phase[i] += 1;
                g.by_project.entry(p.key.project.clone()).or_default()[i] += 1;
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PreviewKey;
    use crate::model::PreviewSpec;

    fn row(branch: &str, phase: Phase, now: Timestamp) -> Preview {
        let key = PreviewKey::new("acme/shop", branch).unwrap();
        let mut p = Preview::fresh(key, branch, branch, PreviewSpec::default(), now);
        p.status.phase = phase;
        p
    }

    #[test]
    fn queue_depth_counts_due_rows_nobody_holds() {
        let now = chrono::Utc::now();
        let due = row("a", Phase::Pending, now);
        let mut held = row("b", Phase::Provisioning, now);
        held.lease_owner = Some("r1".into());
        held.lease_until = Some(now + chrono::Duration::seconds(30));
        let mut expired = row("c", Phase::Provisioning, now);
        expired.lease_owner = Some("r2".into());
        expired.lease_until = Some(now - chrono::Duration::seconds(1));
        let mut later = row("d", Phase::Ready, now);
        later.next_reconcile_at = now + chrono::Duration::seconds(60);
        let g = TableGauges::count(&[due, held, expired, later], (0, None), now);
        assert_eq!(g.queue_depth, 2);
        assert_eq!(g.by_phase, [1, 2, 1, 0, 0, 0, 0]);
        assert_eq!(g.by_project["acme/shop"], g.by_phase);
    }

    #[test]
    fn the_oldest_outbox_age_is_measured_from_now() {
        let now = chrono::Utc::now();
        let g = TableGauges::count(&[], (3, Some(now - chrono::Duration::seconds(90))), now);
        assert_eq!(
            (g.outbox_backlog, g.outbox_oldest_age),
            (3, Duration::from_secs(90))
        );
    }
}
