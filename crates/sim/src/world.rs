//! The simulated account's state and the gate every API request passes:
//! counting, throttling, IAM denials and injected faults.

use crate::config::{ACCOUNT, SimConfig};
use crate::dns::DnsState;
use crate::elb::ElbState;
use crate::images::ImagesState;
use crate::logs::LogsState;
use crate::service::EcsState;
use previewd_core::CloudError;
use previewd_core::limits::{Bucket, Buckets, MAX_PACED_WAIT, Pacer, paced_out};
use previewd_core::operations::Op;
use previewd_core::ports::CloudResult;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::time::Instant;

/// The whole simulated account. Only [`crate::Sim`] touches it, under its
/// mutex, and never across an await.
pub(crate) struct World {
    pub cfg: SimConfig,
    /// The one random source, seeded from the config for replayable runs.
    rng: StdRng,
    /// AWS's side of the API limits.
    buckets: Buckets,
    /// Requests attempted per API key, including refused ones.
    pub calls: BTreeMap<String, u64>,
    /// IAM actions (`elasticloadbalancing:ModifyRule`) the caller lacks.
    pub denied: BTreeSet<String>,
    /// Requests made by the port call in progress, by API key, in order:
    /// it pays `latency` per request once the lock is released, and each
    /// is counted in the `previewd_aws_calls_total` metric.
    pub requests: Vec<Op>,
    /// previewd's client-side pacer, when the caller runs one.
    pub pacer: Option<Arc<Pacer>>,
    /// When the next request of the call in progress goes: its start,
    /// plus one latency per earlier request, plus any wait for the pacer.
    pub cursor: Instant,
    /// The first request's API and its reserved time, when the pacer held
    /// it back: the call is retried then, with its tokens already paid.
    pub held: Option<(Op, Instant)>,
    /// The API whose first request already holds a reservation.
    prepaid: Option<Op>,
    /// Feeds every generated id, so ARNs are unique and replayable.
    next_id: u64,
    /// The time of the call in progress; state has been advanced to it.
    pub now: Instant,
    pub logs: LogsState,
    pub ecs: EcsState,
    pub elb: ElbState,
    pub dns: DnsState,
    pub images: ImagesState,
    pub traffic: crate::traffic::TrafficState,
}

pub(crate) fn invalid(code: &str, message: impl Into<String>) -> CloudError {
    CloudError::Invalid {
        code: code.into(),
        message: message.into(),
    }
}

pub(crate) fn limit(code: &str, message: impl Into<String>) -> CloudError {
    CloudError::LimitExceeded {
        code: code.into(),
        message: message.into(),
    }
}

fn internal_failure() -> CloudError {
    CloudError::Transient {
        code: "InternalFailure".into(),
        message: "We encountered an internal error. Please try again.".into(),
    }
}

impl World {
    pub(crate) fn new(cfg: SimConfig) -> Self {
        let now = Instant::now();
        let elb = ElbState::new(&cfg.albs, &cfg.region);
        Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            buckets: Buckets::full(cfg.limits.clone(), now.into_std()),
            calls: BTreeMap::new(),
            denied: BTreeSet::new(),
            requests: Vec::new(),
            pacer: None,
            cursor: now,
            held: None,
            prepaid: None,
            next_id: 0,
            now,
            logs: LogsState::default(),
            ecs: EcsState::default(),
            elb,
            dns: DnsState::default(),
            images: ImagesState::default(),
            traffic: crate::traffic::TrafficState::default(),
            cfg,
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Brings time-driven state (rollouts, draining) up to `now`. Every call
    /// does this first, so a change made by a later call can never reach
    /// back and alter what should already have happened.
    pub(crate) fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.advance_ecs();
    }

    /// Refills every bucket, so switching throttling on starts from a
    /// quiet account.
    pub(crate) fn reset_buckets(&mut self) {
        self.buckets = Buckets::full(self.cfg.limits.clone(), self.now.into_std());
    }

    /// Starts a port call at the present.
    pub(crate) fn begin_call(&mut self, prepaid: Option<Op>) {
        self.requests.clear();
        self.cursor = self.now;
        self.held = None;
        self.prepaid = prepaid;
    }

    /// Moves the call's clock to when `op`'s request may go: one latency
    /// after the previous request, and no sooner than the pacer allows.
    /// `Err` when the call's first request must wait (nothing has happened).
    fn pace(&mut self, op: Op) -> CloudResult<()> {
        let first = self.requests.is_empty();
        if !first {
            self.cursor += self.cfg.latency;
        }
        let Some(pacer) = &self.pacer else {
            return Ok(());
        };
        // A call's first request gives up past MAX_PACED_WAIT, spending
        // nothing; its later requests (pages) always wait their turn.
        let go = if first && self.prepaid == Some(op) {
            self.cursor
        } else {
            let max_wait = first.then_some(MAX_PACED_WAIT);
            match pacer.try_reserve(&op, self.cursor.into_std(), max_wait) {
                Ok(go) => Instant::from_std(go),
                Err(wait) => return Err(paced_out(&op, wait)),
            }
        };
        self.prepaid = None;
        if go > self.cursor {
            if first {
                self.held = Some((op, go));
                return Err(CloudError::Throttled(
                    "held back by previewd's pacer".into(),
                ));
            }
            self.cursor = go;
        }
        Ok(())
    }

    /// One API request: paced, counted, then throttled, then authorized, then
    /// possibly failed before it is applied.
    pub(crate) fn gate(&mut self, op: Op, resource: &str) -> CloudResult<()> {
        self.gate_costing(op, resource, &[])
    }

    /// [`World::gate`] for a request that also takes `extra` tokens (Route53
    /// counts change throughput in records).
    pub(crate) fn gate_costing(
        &mut self,
        op: Op,
        resource: &str,
        extra: &[(Bucket, f64)],
    ) -> CloudResult<()> {
        self.pace(op)?;
        self.requests.push(op);
        *self.calls.entry(op.key()).or_default() += 1;
        if self.cfg.throttling {
            let mut cost: Vec<(Bucket, f64)> = op.buckets().iter().map(|b| (*b, 1.0)).collect();
            cost.extend_from_slice(extra);
            if !self.buckets.take(&cost, self.cursor.into_std()) {
                tracing::debug!(api = %op, "sim: throttled");
                return Err(CloudError::Throttled("Rate exceeded".into()));
            }
        }
        self.authorize(&op.action(), resource)?;
        if self.roll(self.cfg.fault_rate) {
            tracing::debug!(api = %op, "sim: injected fault before apply");
            return Err(internal_failure());
        }
        Ok(())
    }

    /// Refuses `action` on `resource` when it is denied. Also used alone for
    /// the permissions AWS checks on tag-on-create (e.g. CreateRule with
    /// tags needs `elasticloadbalancing:AddTags` too).
    pub(crate) fn authorize(&self, action: &str, resource: &str) -> CloudResult<()> {
        if !self.denied.contains(action) {
            return Ok(());
        }
        Err(CloudError::AccessDenied {
            action: action.to_string(),
            message: format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/previewd/i-1 is not authorized to \
                 perform: {action} on resource: {resource} because no identity-based policy \
                 allows the {action} action"
            ),
        })
    }

    /// Called after a request took effect: a mutating one may still lose
    /// its response.
    pub(crate) fn applied(&mut self, op: Op) -> CloudResult<()> {
        if op.mutates() && self.roll(self.cfg.fault_after_apply_rate) {
            tracing::debug!(api = %op, "sim: injected fault after apply");
            return Err(internal_failure());
        }
        Ok(())
    }

    fn roll(&mut self, p: f64) -> bool {
        // No draw at all when off, so enabling faults elsewhere does not
        // shift the sequence a seeded run sees.
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    /// Pages of `per_page` needed to list `n` items; an empty list still
    /// costs one request.
    pub(crate) fn pages(n: usize, per_page: usize) -> usize {
        n.div_ceil(per_page).max(1)
    }
}
