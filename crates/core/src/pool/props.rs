//! Property tests of placement: a simulated pool of ALBs with foreign
//! target groups and rules, previews arriving, getting their rule created
//! (or refused, as AWS refuses the 101st target group), leaving, and
//! listeners draining, in any order.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// A new preview asks to be placed and reserves where it lands.
    Arrive,
    /// The n-th reserved preview's pass runs: it is placed again (it may
    /// move while its rule does not exist), then creates its rule if the
    /// ALB still takes it.
    Create(usize),
    /// The n-th preview is destroyed: its rule, target group and
    /// reservation go.
    Leave(usize),
    /// A redeploy of the n-th preview: placed again, it must not move.
    Redeploy(usize),
    /// Another team adds a rule and target group to listener n.
    Foreign(usize),
    /// Listener n is marked draining.
    Drain(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Arrive),
        4 => any::<usize>().prop_map(Step::Create),
        1 => any::<usize>().prop_map(Step::Leave),
        1 => any::<usize>().prop_map(Step::Redeploy),
        1 => any::<usize>().prop_map(Step::Foreign),
        1 => any::<usize>().prop_map(Step::Drain),
    ]
}

/// One ALB with its listener, as AWS holds it.
#[derive(Debug, Clone)]
struct Alb {
    foreign_tgs: usize,
    foreign_rules: usize,
    /// Previews whose rule (and attached target group) exist.
    ours: usize,
}

#[derive(Debug, Clone)]
struct Row {
    listener: usize,
    priority: i32,
    /// Its rule exists on `listener`.
    created: bool,
}

struct World {
    pool: Pool,
    albs: Vec<Alb>,
    rows: Vec<Row>,
    next_priority: i32,
}

impl World {
    fn new(quotas: &[(usize, usize, usize)]) -> Self {
        let listeners = quotas
            .iter()
            .enumerate()
            .map(|(i, (quota, _, _))| PoolListener {
                arn: format!("arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/a{i}/1/1"),
                alb_dns_name: format!("a{i}.elb.amazonaws.com"),
                alb_zone_id: "Z".into(),
                priority_band: (1, 50_000),
                rule_quota: *quota,
                draining: false,
            })
            .collect();
        World {
            pool: Pool { listeners },
            albs: quotas
                .iter()
                .map(|(_, tgs, rules)| Alb {
                    foreign_tgs: *tgs,
                    foreign_rules: *rules,
                    ours: 0,
                })
                .collect(),
            rows: Vec::new(),
            next_priority: 1,
        }
    }

    fn index(&self, arn: &str) -> usize {
        self.pool
            .listeners
            .iter()
            .position(|l| l.arn == arn)
            .unwrap()
    }

    /// The fills a controller would compute, leaving `except` out of the
    /// reservations, and how many rank before it on its listener.
    fn fills(&self, except: Option<usize>) -> (BTreeMap<String, Fill>, usize) {
        let mut fills = BTreeMap::new();
        for (i, l) in self.pool.listeners.iter().enumerate() {
            let a = &self.albs[i];
            fills.insert(
                l.arn.clone(),
                Fill {
                    target_groups: a.foreign_tgs + a.ours,
                    rules: a.foreign_rules + a.ours,
                    pending: 0,
                },
            );
        }
        let mut ahead = 0;
        for (n, r) in self.rows.iter().enumerate() {
            if Some(n) == except || r.created {
                continue;
            }
            fills
                .get_mut(&self.pool.listeners[r.listener].arn)
                .unwrap()
                .pending += 1;
            if let Some(me) = except.map(|e| &self.rows[e])
                && me.listener == r.listener
                && r.priority < me.priority
            {
                ahead += 1;
            }
        }
        (fills, ahead)
    }

    fn place_row(&self, n: usize) -> Placement {
        let (fills, ahead) = self.fills(Some(n));
        let r = &self.rows[n];
        let arn = self.pool.listeners[r.listener].arn.as_str();
        let seat = if r.created {
            Seat {
                settled: Some(arn),
                reserved: None,
            }
        } else {
            Seat {
                settled: None,
                reserved: Some((arn, ahead)),
            }
        };
        place(&self.pool, &fills, seat)
    }

    fn room(&self, i: usize) -> bool {
        let a = &self.albs[i];
        a.foreign_tgs + a.ours < MAX_TARGET_GROUPS_PER_ALB
            && a.foreign_rules + a.ours < self.pool.listeners[i].rule_quota
    }
}

fn quotas() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
    // (rule quota, foreign target groups, foreign rules) per listener.
    prop::collection::vec((1usize..=120, 0usize..=101, 0usize..=30), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No ALB exceeds 100 target groups nor any listener its quota, with
    /// foreign ones counted; a placed preview never moves; a full pool
    /// answers `Full` with a reason; a draining listener takes no new one.
    #[test]
    fn placement_respects_limits_and_never_moves_a_placed_preview(
        quotas in quotas(),
        steps in prop::collection::vec(step(), 1..400),
    ) {
        let mut w = World::new(&quotas);
        let mut gone: Vec<bool> = Vec::new();
        // Until another team adds to a listener, placement alone must keep
        // every ALB within its limits: AWS never has to refuse a rule.
        let mut foreign_grew = false;
        for s in steps {
            match s {
                Step::Arrive => {
                    let (fills, _) = w.fills(None);
                    match place(&w.pool, &fills, Seat::default()) {
                        Placement::Placed(arn) => {
                            let i = w.index(&arn);
                            let l = &w.pool.listeners[i];
                            prop_assert!(!l.draining, "draining listener {i} took a new preview");
                            let f = fills[&arn];
                            prop_assert!(f.target_groups + f.pending < MAX_TARGET_GROUPS_PER_ALB);
                            prop_assert!(f.rules + f.pending < l.rule_quota);
                            w.rows.push(Row { listener: i, priority: w.next_priority, created: false });
                            gone.push(false);
                            w.next_priority += 1;
                        }
                        Placement::Full(why) => {
                            prop_assert!(why.contains("every listener of the pool is full"));
                            for (i, l) in w.pool.listeners.iter().enumerate() {
                                let f = fills[&l.arn];
                                prop_assert!(
                                    l.draining
                                        || f.target_groups + f.pending >= MAX_TARGET_GROUPS_PER_ALB
                                        || f.rules + f.pending >= l.rule_quota,
                                    "listener {i} had room and the answer was Full"
                                );
                            }
                        }
                    }
                }
                Step::Create(n) if !w.rows.is_empty() => {
                    let n = n % w.rows.len();
                    if gone[n] || w.rows[n].created {
                        continue;
                    }
                    let (fills, ahead) = w.fills(Some(n));
                    match w.place_row(n) {
                        Placement::Placed(arn) => {
                            let i = w.index(&arn);
                            let l = &w.pool.listeners[i];
                            let stays = i == w.rows[n].listener;
                            let f = fills[&arn];
                            let counted = if stays { ahead } else { f.pending };
                            prop_assert!(stays || !l.draining, "moved onto draining listener {i}");
                            prop_assert!(f.target_groups + counted < MAX_TARGET_GROUPS_PER_ALB);
                            prop_assert!(f.rules + counted < l.rule_quota);
                            prop_assert!(
                                foreign_grew || w.room(i),
                                "placed on listener {i}, which AWS would refuse"
                            );
                            if !stays {
                                w.rows[n].listener = i;
                                w.rows[n].priority = w.next_priority;
                                w.next_priority += 1;
                            }
                            // AWS refuses a rule past either limit; the
                            // pass fails and the preview is placed again.
                            if w.room(i) {
                                w.albs[i].ours += 1;
                                w.rows[n].created = true;
                            }
                        }
                        Placement::Full(_) => {}
                    }
                }
                Step::Leave(n) if !w.rows.is_empty() => {
                    let n = n % w.rows.len();
                    if gone[n] {
                        continue;
                    }
                    gone[n] = true;
                    let r = w.rows[n].clone();
                    if r.created {
                        w.albs[r.listener].ours -= 1;
                    }
                    // A destroyed row holds nothing: mark it created so it
                    // is not pending, and empty.
                    w.rows[n].created = true;
                    w.rows[n].listener = r.listener;
                }
                Step::Redeploy(n) if !w.rows.is_empty() => {
                    let n = n % w.rows.len();
                    if gone[n] || !w.rows[n].created {
                        continue;
                    }
                    let before = w.pool.listeners[w.rows[n].listener].arn.clone();
                    prop_assert_eq!(w.place_row(n), Placement::Placed(before));
                }
                Step::Foreign(n) => {
                    let i = n % w.albs.len();
                    w.albs[i].foreign_tgs += 1;
                    w.albs[i].foreign_rules += 1;
                    foreign_grew = true;
                }
                Step::Drain(n) => {
                    let i = n % w.albs.len();
                    w.pool.listeners[i].draining = true;
                    // Draining keeps every placed preview where it is.
                    for (k, r) in w.rows.iter().enumerate() {
                        if r.created && !gone[k] && r.listener == i {
                            prop_assert_eq!(
                                w.place_row(k),
                                Placement::Placed(w.pool.listeners[i].arn.clone())
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[test]
fn a_pool_of_one_from_the_single_listener_template() {
    let t = Template::default();
    let pool = Pool::single(&t);
    assert_eq!(pool.listeners.len(), 1);
    assert_eq!(pool.first().arn, t.listener_arn);
    assert_eq!(template_for(&t, pool.first()), t);
}

#[test]
fn a_pre_pool_row_with_a_priority_is_on_the_first_listener() {
    let pool = Pool::single(&Template::default());
    let first = pool.first().arn.as_str();
    assert_eq!(pool.recorded(None, Some(1000)), Some(first));
    assert_eq!(pool.recorded(None, None), None);
    assert_eq!(pool.recorded(Some("other"), Some(1)), Some("other"));
}

#[test]
fn of_two_racing_for_the_last_slot_the_lower_priority_keeps_it() {
    let mut w = World::new(&[(100, 99, 0), (100, 0, 0)]);
    w.rows.push(Row {
        listener: 0,
        priority: 5,
        created: false,
    });
    w.rows.push(Row {
        listener: 0,
        priority: 7,
        created: false,
    });
    let first = w.pool.listeners[0].arn.clone();
    let second = w.pool.listeners[1].arn.clone();
    assert_eq!(w.place_row(0), Placement::Placed(first));
    assert_eq!(w.place_row(1), Placement::Placed(second));
}

#[test]
fn a_full_pool_says_why_for_every_listener() {
    let mut w = World::new(&[(100, 100, 0), (10, 0, 10)]);
    w.pool.listeners.push(PoolListener {
        draining: true,
        arn: "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/d/1/1".into(),
        ..w.pool.listeners[1].clone()
    });
    w.albs.push(w.albs[1].clone());
    let (mut fills, _) = w.fills(None);
    fills.insert(
        w.pool.listeners[2].arn.clone(),
        Fill {
            target_groups: 0,
            rules: 0,
            pending: 0,
        },
    );
    let Placement::Full(why) = place(&w.pool, &fills, Seat::default()) else {
        panic!("placed on a full pool");
    };
    assert!(
        why.contains("app/a0/1/1: 100 target groups on its ALB (AWS limit 100)"),
        "{why}"
    );
    assert!(
        why.contains("app/a1/1/1: 10 rules on its ALB (quota 10)"),
        "{why}"
    );
    assert!(why.contains("app/d/1/1: draining"), "{why}");
}
