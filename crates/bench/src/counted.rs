//! A pass-through `Store` that counts the calls made to it, by method: the
//! store's load, for the lease scenario (how many of the writes are lease
//! renewals). Made `holding`, it also keeps tokio's paused clock still
//! while each call is under way (the trace scenario): the database answers
//! from another thread, and a paused runtime waiting on it would otherwise
//! take itself for idle and jump to its next timer.

use async_trait::async_trait;
use previewd_core::pool::Reservation;
use previewd_core::ports::{Delivery, Store, StoreResult, SweepLock};
use previewd_core::{
    Command, Effect, Event, ListFilter, OutboxItem, Preview, PreviewKey, StatusUpdate, Timestamp,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The methods that only read; every other one writes (a claim that
/// finds nothing due still runs its UPDATE).
pub const READS: [&str; 8] = [
    "get",
    "list",
    "deployment",
    "pull_request",
    "reserved_priorities",
    "next_due",
    "events",
    "outbox_backlog",
];

pub struct Counted {
    inner: Arc<dyn Store>,
    /// Method name → calls so far.
    calls: Mutex<BTreeMap<&'static str, u64>>,
    holding: bool,
}

/// While alive, a paused tokio clock does not auto-advance: tokio holds
/// it still while any `spawn_blocking` task runs, and one waits here for
/// this guard's drop.
pub struct Hold {
    _tx: std::sync::mpsc::Sender<()>,
}

impl Hold {
    pub fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            // Returns when the sender is dropped.
            let _ = rx.recv();
        });
        Self { _tx: tx }
    }
}

impl Default for Hold {
    fn default() -> Self {
        Self::new()
    }
}

impl Counted {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            holding: false,
        }
    }

    /// Counts, and holds a paused clock still during every call.
    pub fn holding(inner: Arc<dyn Store>) -> Self {
        Self {
            holding: true,
            ..Self::new(inner)
        }
    }

    /// The calls so far, by method.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().expect("not poisoned").clone()
    }

    fn count(&self, method: &'static str) {
        *self
            .calls
            .lock()
            .expect("not poisoned")
            .entry(method)
            .or_default() += 1;
    }

    /// Counts a call; the guard (when holding) lives as long as it does.
    #[must_use]
    fn note(&self, method: &'static str) -> Option<Hold> {
        self.count(method);
        self.holding.then(Hold::new)
    }
}

#[async_trait]
impl Store for Counted {
    async fn apply(&self, command: &Command, now: Timestamp) -> StoreResult<Effect> {
        let _held = self.note("apply");
        if let Command::Sleep { .. } = command {
            self.count("apply:sleep");
        } else if let Command::Wake(_) = command {
            self.count("apply:wake");
        }
        self.inner.apply(command, now).await
    }

    fn wakeups(&self) -> Arc<Notify> {
        self.inner.wakeups()
    }

    async fn get(&self, key: &PreviewKey) -> StoreResult<Option<Preview>> {
        let _held = self.note("get");
        self.inner.get(key).await
    }

    async fn list(&self, filter: &ListFilter) -> StoreResult<Vec<Preview>> {
        let _held = self.note("list");
        self.inner.list(filter).await
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<Preview>> {
        let _held = self.note("claim_due");
        self.inner.claim_due(owner, now, lease, limit).await
    }

    async fn lease_deleted(
        &self,
        key: &PreviewKey,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<bool> {
        let _held = self.note("lease_deleted");
        self.inner.lease_deleted(key, owner, now, lease).await
    }

    async fn save_deployment(
        &self,
        key: &PreviewKey,
        generation: i64,
        deployment_id: i64,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let _held = self.note("save_deployment");
        self.inner
            .save_deployment(key, generation, deployment_id, now)
            .await
    }

    async fn deployment(
        &self,
        key: &PreviewKey,
        generation: Option<i64>,
    ) -> StoreResult<Option<i64>> {
        let _held = self.note("deployment");
        self.inner.deployment(key, generation).await
    }

    async fn pull_request(&self, key: &PreviewKey) -> StoreResult<Option<i64>> {
        let _held = self.note("pull_request");
        self.inner.pull_request(key).await
    }

    async fn set_pull_request(
        &self,
        key: &PreviewKey,
        number: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let _held = self.note("set_pull_request");
        self.inner.set_pull_request(key, number, now).await
    }

    async fn heartbeat(
        &self,
        replica: &str,
        now: Timestamp,
        alive_since: Timestamp,
    ) -> StoreResult<u32> {
        let _held = self.note("heartbeat");
        self.inner.heartbeat(replica, now, alive_since).await
    }

    async fn remember_delivery(&self, delivery: &Delivery, now: Timestamp) -> StoreResult<bool> {
        let _held = self.note("remember_delivery");
        self.inner.remember_delivery(delivery, now).await
    }

    async fn release_lease(&self, key: &PreviewKey, owner: &str) -> StoreResult<()> {
        let _held = self.note("release_lease");
        self.inner.release_lease(key, owner).await
    }

    async fn renew_lease(
        &self,
        key: &PreviewKey,
        owner: &str,
        until: Timestamp,
    ) -> StoreResult<()> {
        let _held = self.note("renew_lease");
        self.inner.renew_lease(key, owner, until).await
    }

    async fn record_status(
        &self,
        key: &PreviewKey,
        owner: &str,
        update: &StatusUpdate,
        now: Timestamp,
    ) -> StoreResult<()> {
        let _held = self.note("record_status");
        self.inner.record_status(key, owner, update, now).await
    }

    async fn set_rule_priority(
        &self,
        key: &PreviewKey,
        listener_arn: Option<&str>,
        priority: Option<i32>,
    ) -> StoreResult<()> {
        let _held = self.note("set_rule_priority");
        self.inner
            .set_rule_priority(key, listener_arn, priority)
            .await
    }

    async fn reservations(&self, except: &PreviewKey) -> StoreResult<Vec<Reservation>> {
        let _held = self.note("reservations");
        self.inner.reservations(except).await
    }

    async fn adopt_unplaced(&self, first: &str) -> StoreResult<u64> {
        let _held = self.note("adopt_unplaced");
        self.inner.adopt_unplaced(first).await
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        let _held = self.note("next_due");
        self.inner.next_due().await
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxItem>> {
        let _held = self.note("claim_outbox");
        self.inner.claim_outbox(owner, now, lease, limit).await
    }

    async fn ack_outbox(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        let _held = self.note("ack_outbox");
        self.inner.ack_outbox(id, now).await
    }

    async fn retry_outbox(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        let _held = self.note("retry_outbox");
        self.inner.retry_outbox(id, next_attempt_at, error).await
    }

    async fn events(&self, key: &PreviewKey, limit: i64) -> StoreResult<Vec<Event>> {
        let _held = self.note("events");
        self.inner.events(key, limit).await
    }

    async fn outbox_backlog(&self) -> StoreResult<(i64, Option<Timestamp>)> {
        let _held = self.note("outbox_backlog");
        self.inner.outbox_backlog().await
    }

    async fn gc_sightings(
        &self,
        resources: &[String],
        now: Timestamp,
        record: bool,
    ) -> StoreResult<Vec<Timestamp>> {
        let _held = self.note("gc_sightings");
        self.inner.gc_sightings(resources, now, record).await
    }

    async fn try_sweep_lock(&self) -> StoreResult<Option<SweepLock>> {
        let _held = self.note("try_sweep_lock");
        self.inner.try_sweep_lock().await
    }
}
