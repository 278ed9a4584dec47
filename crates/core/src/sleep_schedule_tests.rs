//! The idle check's schedule (`due`, `remember`) against a model of a few
//! previews' visits: it never sleeps a visited preview, and skipping reads
//! never leaves an idle preview awake for more than one check interval.

use super::*;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

const IDLE_AFTER: Duration = Duration::from_secs(3600);

fn t0() -> Timestamp {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

fn at(secs: u32) -> Timestamp {
    t0() + chrono::Duration::seconds(i64::from(secs))
}

fn key(i: usize) -> PreviewKey {
    PreviewKey::new("acme/shop", &format!("b{i}")).unwrap()
}

/// One preview of the model: awake from `awake` (seconds), visited at
/// `visits` (seconds, any order).
#[derive(Debug, Clone)]
struct Model {
    awake: u32,
    visits: Vec<u32>,
}

impl Model {
    /// Visits within `idle_after` before `t` (the window a read sums).
    fn visited_within(&self, t: u32) -> bool {
        let w = IDLE_AFTER.as_secs() as u32;
        self.visits.iter().any(|v| *v <= t && *v + w > t)
    }

    /// Truly idle at `t`: awake that long and no visit in the window.
    fn idle(&self, t: u32) -> bool {
        self.awake + IDLE_AFTER.as_secs() as u32 <= t && !self.visited_within(t)
    }

    /// What a read at `t` says: the sum, and the newest visit's age
    /// rounded down to whole minutes as per-minute datapoints give it
    /// (`round`), or exact.
    fn read(&self, t: u32, round: bool) -> RequestCount {
        let w = IDLE_AFTER.as_secs() as u32;
        let inside: Vec<u32> = self
            .visits
            .iter()
            .copied()
            .filter(|v| *v <= t && *v + w > t)
            .collect();
        let newest_age = inside.iter().max().map(|v| {
            let age = t - v;
            Duration::from_secs(u64::from(if round { age / 60 * 60 } else { age }))
        });
        RequestCount {
            sum: inside.len() as f64,
            newest_age,
        }
    }
}

/// Runs checks every `interval` from `first`; per preview, the check
/// that slept it, and how many reads were made.
fn run(
    models: &[Model],
    first: u32,
    interval: u32,
    end: u32,
    round: bool,
) -> (Vec<Option<u32>>, usize) {
    let mut slept: Vec<Option<u32>> = vec![None; models.len()];
    let mut seen = Seen::new();
    let mut reads = 0;
    let mut t = first;
    while t <= end {
        let candidates: Vec<Candidate> = models
            .iter()
            .enumerate()
            .filter(|(i, m)| slept[*i].is_none() && m.awake <= t)
            .map(|(i, m)| Candidate {
                key: key(i),
                awake_since: at(m.awake),
            })
            .collect();
        if due(&candidates, &seen, at(t), IDLE_AFTER) {
            reads += 1;
            let read: BTreeMap<PreviewKey, RequestCount> = models
                .iter()
                .enumerate()
                .filter(|(i, _)| candidates.iter().any(|c| c.key == key(*i)))
                .map(|(i, m)| (key(i), m.read(t, round)))
                .collect();
            remember(&mut seen, &candidates, &read, at(t));
            let sums: BTreeMap<PreviewKey, f64> =
                read.iter().map(|(k, c)| (k.clone(), c.sum)).collect();
            for k in idle(&candidates, &sums, at(t), IDLE_AFTER) {
                let i = (0..models.len()).find(|i| key(*i) == k).unwrap();
                slept[i] = Some(t);
            }
        }
        t += interval;
    }
    (slept, reads)
}

fn models() -> impl Strategy<Value = Vec<Model>> {
    prop::collection::vec(
        (0u32..7200, prop::collection::vec(0u32..30_000, 0..12))
            .prop_map(|(awake, visits)| Model { awake, visits }),
        1..5,
    )
}

proptest! {
    #[test]
    fn a_visited_preview_never_sleeps_and_an_idle_one_waits_at_most_one_interval(
        ms in models(),
        first in 0u32..600,
        interval in prop::sample::select(vec![60u32, 300, 600]),
        round in any::<bool>(),
    ) {
        let end = 36_000;
        let (slept, reads) = run(&ms, first, interval, end, round);
        let ticks = (first..=end).step_by(interval as usize).count();
        prop_assert!(reads <= ticks);
        for (m, s) in ms.iter().zip(&slept) {
            if let Some(t) = s {
                // Never a preview with a request within idle_after, nor
                // one awake for less.
                prop_assert!(m.idle(*t), "slept at {t} but {m:?}");
            }
            // Idle at two checks in a row: asleep by the second.
            let mut t = first;
            while t + interval <= end {
                let next = t + interval;
                if m.idle(t) && m.idle(next) {
                    prop_assert!(
                        s.is_some_and(|s| s <= next),
                        "idle at {t} and {next}, slept {s:?}: {m:?}"
                    );
                }
                t = next;
            }
            // With exact ages, asleep at the first check where it is idle.
            if !round {
                let first_idle = (first..=end).step_by(interval as usize).find(|t| m.idle(*t));
                if let Some(fi) = first_idle {
                    prop_assert!(s.is_some_and(|s| s <= fi), "idle at {fi}, slept {s:?}");
                }
            }
        }
    }
}

#[test]
fn a_check_with_nobody_due_reads_nothing_and_one_read_covers_everyone() {
    let young = Candidate {
        key: key(0),
        awake_since: at(0),
    };
    let visited = Candidate {
        key: key(1),
        awake_since: at(0),
    };
    let both = [young.clone(), visited.clone()];
    let mut seen = Seen::new();
    // Awake for 50 minutes: nobody could be idle yet.
    assert!(!due(&both, &seen, at(3000), IDLE_AFTER));
    // At the hour both are due; the read finds a visit at 3400 s.
    assert!(due(&both, &seen, at(3600), IDLE_AFTER));
    let read = BTreeMap::from([
        (key(0), RequestCount::default()),
        (
            key(1),
            RequestCount {
                sum: 4.0,
                newest_age: Some(Duration::from_secs(200)),
            },
        ),
    ]);
    remember(&mut seen, &both, &read, at(3600));
    assert_eq!(seen.get(&key(1)), Some(&at(3400)));
    // Preview 0 slept at 3600; preview 1 is next due an hour after its visit.
    let left = [visited];
    assert!(!due(&left, &seen, at(6900), IDLE_AFTER));
    assert!(due(&left, &seen, at(7000), IDLE_AFTER));
    // A preview no longer a candidate is forgotten.
    remember(&mut seen, &[], &BTreeMap::new(), at(7000));
    assert!(seen.is_empty());
}
