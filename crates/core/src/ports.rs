//! The ports: one trait per outside system, in previewd's words. The store
//! crate, the AWS crate and the simulator implement them.

use crate::command::{Command, Effect};
use crate::error::CloudError;
use crate::key::PreviewKey;
use crate::model::*;
use crate::naming::NamingConfig;
use crate::observed::*;
use crate::pool::Reservation;
use crate::render::{DnsChange, RuleSpec, ServiceSpec, TargetGroupSpec, TaskDefinition};
use crate::tags::Tags;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

mod report;
pub use report::{ReportError, Reporter};

pub type CloudResult<T> = Result<T, CloudError>;

/// CloudWatch Logs.
#[async_trait]
pub trait Logs: Send + Sync {
    /// Every log group whose name starts with `prefix`, paged through
    /// (DescribeLogGroups, 50 a page), with `tags` left empty:
    /// DescribeLogGroups carries none. [`Logs::log_group_tags`] reads them
    /// (`crate::tagged::log_groups` lists with them).
    async fn log_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>>;
    /// The tags of one log group (ListTagsForResource); `None` if it is gone.
    async fn log_group_tags(&self, name: &str) -> CloudResult<Option<Tags>>;
    async fn create_log_group(
        &self,
        name: &str,
        retention_days: i32,
        tags: &Tags,
    ) -> CloudResult<()>;
    async fn set_retention(&self, name: &str, retention_days: i32) -> CloudResult<()>;
    /// Deleting a group that is already gone succeeds.
    async fn delete_log_group(&self, name: &str) -> CloudResult<()>;
}

/// ECS task definitions and services in the preview cluster.
#[async_trait]
pub trait Compute: Send + Sync {
    /// The named services that exist (any status); batched ten per call.
    async fn services(&self, names: &[String]) -> CloudResult<Vec<ObservedService>>;
    /// Every ACTIVE or DRAINING service in the cluster (ListServices).
    async fn service_names(&self) -> CloudResult<Vec<String>>;
    /// As DescribeTaskDefinition: a family names its latest ACTIVE
    /// revision; `family:N` or an ARN names that revision, ACTIVE or not.
    async fn task_definition(&self, reference: &str)
    -> CloudResult<Option<ObservedTaskDefinition>>;
    /// Every family with an ACTIVE revision whose name starts with `prefix`.
    async fn task_definition_families(&self, prefix: &str) -> CloudResult<Vec<String>>;
    async fn register_task_definition(
        &self,
        td: &TaskDefinition,
    ) -> CloudResult<ObservedTaskDefinition>;
    /// Deregisters every ACTIVE revision of the family.
    async fn deregister_task_definitions(&self, family: &str) -> CloudResult<()>;
    /// Creates the service; with a target group, wired to it (ECS takes the
    /// group's ARN, and the group must already be on a load balancer).
    async fn create_service(
        &self,
        spec: &ServiceSpec,
        task_definition_arn: &str,
        target_group_arn: Option<&str>,
    ) -> CloudResult<()>;
    async fn update_service(
        &self,
        name: &str,
        task_definition_arn: &str,
        desired_count: i32,
        tags: &Tags,
    ) -> CloudResult<()>;
    /// Deletes a service already scaled to zero; gone already is success.
    async fn delete_service(&self, name: &str) -> CloudResult<()>;
    /// Why the newest stopped task that the service's deployment
    /// `deployment` (its id, the tasks' `startedBy`) launched stopped, if
    /// one did. Tasks of earlier deployments are not asked about: ECS lists
    /// stopped tasks for an hour, and a retry must not fail on the last
    /// attempt's reason.
    async fn stopped_reason(&self, name: &str, deployment: &str) -> CloudResult<Option<String>>;
    /// The ARNs of the family's ACTIVE revisions (ListTaskDefinitions), of
    /// that family exactly, oldest first.
    async fn active_revisions(&self, family: &str) -> CloudResult<Vec<String>>;
    /// Deregisters one revision (it turns INACTIVE; running tasks go on).
    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()>;
}

/// The pool's ALB listeners and the target groups behind them.
#[async_trait]
pub trait LoadBalancer: Send + Sync {
    /// Every rule on the listener `listener_arn`, and its ALB's fill
    /// level, with every rule's `tags` left empty: [`LoadBalancer::tags`]
    /// reads them by ARN (`crate::tagged::listener` lists with them).
    async fn listener(&self, listener_arn: &str) -> CloudResult<ListenerState>;
    /// Every target group whose name starts with `prefix`, with `tags` left
    /// empty (`crate::tagged::target_groups` lists with them).
    async fn target_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedTargetGroup>>;
    /// The tags of rules and target groups by ARN. Fails with `NotFound`
    /// when one of them no longer exists.
    async fn tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Tags>>;
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth>;
    async fn create_target_group(&self, spec: &TargetGroupSpec)
    -> CloudResult<ObservedTargetGroup>;
    /// Fails with `ResourceInUse` while a rule still forwards to it.
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()>;
    /// Creates the rule on `spec.listener_arn`.
    async fn create_rule(&self, spec: &RuleSpec, target_group_arn: &str) -> CloudResult<String>;
    /// Rewrites the rule's host condition and forward action in place.
    async fn modify_rule(
        &self,
        arn: &str,
        spec: &RuleSpec,
        target_group_arn: &str,
    ) -> CloudResult<()>;
    async fn set_rule_priority(&self, arn: &str, priority: i32) -> CloudResult<()>;
    async fn delete_rule(&self, arn: &str) -> CloudResult<()>;
}

/// The preview hosted zone.
#[async_trait]
pub trait Dns: Send + Sync {
    /// Every record set in the zone, paged through.
    async fn records(&self) -> CloudResult<Vec<DnsRecord>>;
    /// One atomic change batch; a DELETE must match the record exactly.
    async fn change(&self, changes: &[DnsChange]) -> CloudResult<()>;
}

/// Container images in ECR, read only.
#[async_trait]
pub trait Images: Send + Sync {
    /// Which of `references` exist in `repository` (DescribeImages, up to
    /// 100 image ids a request). One missing image does not hide the
    /// others: AWS fails a whole request with ImageNotFoundException when
    /// any id in it is missing, so an adapter splits such a batch until
    /// each answer is known. A repository that does not exist holds none.
    async fn existing_images(
        &self,
        repository: &crate::image::Repository,
        references: &[crate::image::ImageRef],
    ) -> CloudResult<Vec<crate::image::ImageRef>>;
}

/// One target group's request count, as CloudWatch keeps it: `RequestCount`
/// in `AWS/ApplicationELB` by `LoadBalancer` and `TargetGroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCountQuery {
    /// `app/<name>/<id>` ([`crate::sleep::load_balancer_of`]).
    pub load_balancer: String,
    pub target_group_arn: String,
}

/// What CloudWatch says of one target group over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestCount {
    /// Requests over the window (0 without a datapoint).
    pub sum: f64,
    /// The newest request was at least this long before the read (from
    /// per-minute datapoints: the end of its minute); `None` when there
    /// was none in the window. The idle check's schedule counts from it
    /// ([`crate::sleep::last_request`]).
    pub newest_age: Option<Duration>,
}

/// CloudWatch metrics, read only: how busy previews are (sleep).
#[async_trait]
pub trait Metrics: Send + Sync {
    /// The requests each target group was sent over the `window` before
    /// now, and how recent the newest was, in the order of `queries`
    /// (nothing where CloudWatch has no datapoint). GetMetricData takes up
    /// to [`crate::sleep::MAX_QUERIES_PER_CALL`] queries a request, so
    /// hundreds of previews cost one request.
    async fn request_counts(
        &self,
        queries: &[RequestCountQuery],
        window: Duration,
    ) -> CloudResult<Vec<RequestCount>>;
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Input the store refuses; names the field and the rule.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// The caller's lease is gone: another replica owns the row now.
    #[error("lease lost on {0}")]
    LeaseLost(PreviewKey),
    #[error("no preview {0}")]
    NotFound(PreviewKey),
    /// The priority is reserved by another row.
    #[error("rule priority {0} is taken")]
    PriorityTaken(i32),
    #[error("database: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The desired-state table, the work schedule and the outbox.
#[async_trait]
pub trait Store: Send + Sync {
    /// The one write path of desired state: applies `command` at `now`.
    ///
    /// # Guarantees
    /// - `Deploy` inserts or updates the row as
    ///   [`crate::command::deploy_step`] decides: it bumps `generation` only
    ///   when the spec or `desired` really changes, or to retry a `Failed`
    ///   current generation, and then makes the row due at `now`. Any other
    ///   identical resend changes nothing, not even the expiry. A new row takes the first free slug of
    ///   `naming::slug_candidates` and the first free host of
    ///   `naming::host_label_candidates` (both unique across all rows), so
    ///   names are decided once and never change. The expiry is resolved
    ///   ([`crate::command::Expiry::resolve`]) against the row read for the
    ///   write, not one read earlier by the caller.
    /// - `Destroy`, `DestroyFor` and `Expire` mark the row absent (a no-op
    ///   if it is already absent; `Applied(None)` if there is no row);
    ///   `DestroyFor` also keeps its run id and callback on the row, for the
    ///   Deleted report.
    /// - `WebhookDestroy` records the delivery and performs the destroy in
    ///   one transaction. A delivery whose id or body digest is known is
    ///   [`Effect::Duplicate`] and writes nothing. With `event_at`, a close
    ///   that happened before the preview's current spec was deployed is
    ///   [`Effect::Stale`]: the delivery is recorded, the row untouched.
    ///   `Invalid` names the field when the delivery breaks
    ///   [`Delivery::check`].
    /// - `WebhookDeploy` records the delivery, then deploys as `Deploy`
    ///   does; a delivery seen before is [`Effect::Duplicate`], a change
    ///   older than the row's current deploy ([`crate::pull_request::stale`])
    ///   is [`Effect::Stale`] with the delivery recorded. A deploy that
    ///   applies keeps its pull request's number ([`Store::pull_request`]),
    ///   best effort: the comment can look the pull request up without it.
    /// - On any error nothing is written (for a webhook, the delivery
    ///   included, so GitHub's redelivery is acted on).
    /// - When the effect [`Effect::changed`] the row, [`Store::wakeups`] is
    ///   notified after the write is committed: no caller wakes the loop.
    async fn apply(&self, command: &Command, now: Timestamp) -> StoreResult<Effect>;
    /// Notified after a write of this process that made a row due; on
    /// PostgreSQL also by `wake_on_writes` when any replica's write did.
    /// The reconcile loop waits on it.
    fn wakeups(&self) -> Arc<Notify>;
    /// [`Store::apply`] of a deploy, for callers that hold its parts.
    async fn apply_deploy(
        &self,
        req: &DeployRequest,
        naming: &NamingConfig,
        now: Timestamp,
    ) -> StoreResult<ApplyOutcome> {
        let command = Command::Deploy {
            request: req.clone(),
            naming: naming.clone(),
        };
        self.apply(&command, now)
            .await?
            .into_outcome()
            .ok_or_else(|| StoreError::Invalid {
                field: "command",
                rule: "a deploy always leaves a row".into(),
            })
    }
    /// [`Store::apply`] of a destroy.
    async fn apply_destroy(
        &self,
        key: &PreviewKey,
        now: Timestamp,
    ) -> StoreResult<Option<ApplyOutcome>> {
        let command = Command::Destroy(key.clone());
        Ok(self.apply(&command, now).await?.into_outcome())
    }
    async fn get(&self, key: &PreviewKey) -> StoreResult<Option<Preview>>;
    async fn list(&self, filter: &ListFilter) -> StoreResult<Vec<Preview>>;
    /// Leases up to `limit` rows due at `now` whose lease is free or expired.
    async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<Preview>>;
    /// Leases a row only if its teardown has finished (absent and
    /// `Deleted`) and nobody holds it, checked in the same statement;
    /// garbage collection holds it while it deletes leftovers, so a
    /// redeploy meanwhile waits instead of racing the deletes.
    async fn lease_deleted(
        &self,
        key: &PreviewKey,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<bool>;
    /// Records the GitHub deployment made for a generation; if one was
    /// recorded already (a redelivery), keeps and returns that one.
    async fn save_deployment(
        &self,
        key: &PreviewKey,
        generation: i64,
        deployment_id: i64,
        now: Timestamp,
    ) -> StoreResult<i64>;
    /// The deployment of `generation`, or with `None` the newest.
    async fn deployment(
        &self,
        key: &PreviewKey,
        generation: Option<i64>,
    ) -> StoreResult<Option<i64>>;
    /// The pull request the preview's sticky comment is on, once found
    /// (`github.pr_comment`): kept so that the comment of a closed pull
    /// request, which a lookup of open ones no longer finds, can still be
    /// edited to say the preview is gone.
    async fn pull_request(&self, key: &PreviewKey) -> StoreResult<Option<i64>>;
    /// Records (`Some`) or forgets (`None`) the preview's pull request.
    async fn set_pull_request(
        &self,
        key: &PreviewKey,
        number: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// `replica`'s heartbeat at `now`: how many replicas share this store,
    /// counting those seen since `alive_since` (at least 1: this one).
    async fn heartbeat(
        &self,
        replica: &str,
        now: Timestamp,
        alive_since: Timestamp,
    ) -> StoreResult<u32>;
    /// Records a webhook delivery: true the first time, false when its id
    /// **or** its body digest was seen before (a replay under a fresh id).
    /// Deliveries older than [`DELIVERIES_KEPT_FOR`] are forgotten on the way.
    /// `Invalid` names the field when the delivery breaks [`Delivery::check`].
    async fn remember_delivery(&self, delivery: &Delivery, now: Timestamp) -> StoreResult<bool>;
    /// [`Store::apply`] of a webhook's destroy.
    async fn apply_webhook_destroy(
        &self,
        delivery: &Delivery,
        key: &PreviewKey,
        event_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<WebhookDestroy> {
        let command = Command::WebhookDestroy {
            delivery: delivery.clone(),
            key: key.clone(),
            event_at,
        };
        self.apply(&command, now).await
    }
    /// Gives up a lease we hold (a no-op otherwise).
    async fn release_lease(&self, key: &PreviewKey, owner: &str) -> StoreResult<()>;
    /// Extends a held lease; `LeaseLost` if it is no longer ours.
    async fn renew_lease(&self, key: &PreviewKey, owner: &str, until: Timestamp)
    -> StoreResult<()>;
    /// Writes status, schedules the next look, enqueues the reports, notes
    /// an event when the phase or message changed, and releases the lease,
    /// all in one transaction; `LeaseLost` if not ours.
    async fn record_status(
        &self,
        key: &PreviewKey,
        owner: &str,
        update: &StatusUpdate,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Places the row: reserves a rule priority on a listener of the pool
    /// (`None` frees both); `PriorityTaken` if another row holds that
    /// priority on that listener.
    async fn set_rule_priority(
        &self,
        key: &PreviewKey,
        listener_arn: Option<&str>,
        priority: Option<i32>,
    ) -> StoreResult<()>;
    /// The listener and priority held by every row other than `except`.
    async fn reservations(&self, except: &PreviewKey) -> StoreResult<Vec<Reservation>>;
    /// Records rows placed before the pool existed (a priority, no
    /// listener) on `first`, the pool's first listener; returns how many.
    /// Changes nothing in AWS: their rules are on that listener already.
    async fn adopt_unplaced(&self, first: &str) -> StoreResult<u64>;
    /// The earliest `next_reconcile_at` of any row (for the loop's sleep).
    async fn next_due(&self) -> StoreResult<Option<Timestamp>>;
    /// Outbox: lease up to `limit` undelivered messages that are due, oldest
    /// first, at most one in flight per preview so order is kept.
    async fn claim_outbox(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxItem>>;
    async fn ack_outbox(&self, id: i64, now: Timestamp) -> StoreResult<()>;
    async fn retry_outbox(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()>;
    /// The newest `limit` events of a preview, newest first. `record_status`
    /// writes one whenever the phase or the message changes, and keeps the
    /// last [`EVENTS_KEPT`] per preview.
    async fn events(&self, key: &PreviewKey, limit: i64) -> StoreResult<Vec<Event>>;
    /// Undelivered messages and the age of the oldest, for metrics.
    async fn outbox_backlog(&self) -> StoreResult<(i64, Option<Timestamp>)>;
    /// Garbage collection's memory: returns when each of `resources` was
    /// first seen unwanted (`now` if never). With `record`, also notes them
    /// as seen now and forgets every resource not in this list.
    async fn gc_sightings(
        &self,
        resources: &[String],
        now: Timestamp,
        record: bool,
    ) -> StoreResult<Vec<Timestamp>>;
    /// The right to run a garbage-collection sweep, so replicas sharing a
    /// database do not sweep at once: `None` while another holder has it.
    /// Dropping the returned guard gives it up; so does the holder's death.
    async fn try_sweep_lock(&self) -> StoreResult<Option<SweepLock>>;
}

/// How long a webhook delivery is remembered. GitHub lets a repository
/// owner redeliver a delivery for a few days (three, at the time of
/// writing) and a replayed body is only useful to an attacker while the
/// preview it names might still exist; thirty days covers both with room
/// to spare while keeping the table a month of webhooks small.
pub const DELIVERIES_KEPT_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The longest `X-GitHub-Delivery` id the store keeps (GitHub's are
/// 36-character UUIDs).
pub const DELIVERY_ID_MAX: usize = 128;

/// The longest `X-GitHub-Event` name the store keeps.
pub const DELIVERY_EVENT_MAX: usize = 64;

/// A webhook delivery, known by GitHub's delivery id and by the SHA-256 of
/// its signed body: a replay under a fresh id still carries the same body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// The SHA-256 of the raw (signed) body, as 64 lowercase hex digits.
    pub body_sha256: String,
    /// `X-GitHub-Event`, kept for whoever reads the table.
    pub event: String,
}

impl Delivery {
    /// The delivery of `body`, digesting it.
    pub fn of_body(id: &str, event: &str, body: &[u8]) -> Self {
        use sha2::Digest;
        Self {
            id: id.to_owned(),
            body_sha256: hex::encode(sha2::Sha256::digest(body)),
            event: event.to_owned(),
        }
    }

    /// The rules the store holds a delivery to, each failure naming its field.
    pub fn check(&self) -> StoreResult<()> {
        let invalid = |field, rule: String| Err(StoreError::Invalid { field, rule });
        if self.id.is_empty() || self.id.len() > DELIVERY_ID_MAX {
            return invalid(
                "delivery_id",
                format!(
                    "must be 1 to {DELIVERY_ID_MAX} bytes (got {})",
                    self.id.len()
                ),
            );
        }
        let hex_digit = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if self.body_sha256.len() != 64 || !self.body_sha256.bytes().all(hex_digit) {
            return invalid("body_sha256", "must be 64 lowercase hex digits".into());
        }
        if self.event.is_empty() || self.event.len() > DELIVERY_EVENT_MAX {
            return invalid(
                "event",
                format!(
                    "must be 1 to {DELIVERY_EVENT_MAX} bytes (got {})",
                    self.event.len()
                ),
            );
        }
        Ok(())
    }
}

/// What [`Store::apply_webhook_destroy`] did: an [`Effect`].
pub type WebhookDestroy = Effect;

/// Proof that this process holds the sweep lock; dropping it releases the
/// lock. What it holds (a database transaction, nothing) is the store's
/// business.
pub struct SweepLock {
    /// Never read: only its drop matters.
    _held: Box<dyn std::any::Any + Send>,
}

impl SweepLock {
    /// Wraps whatever keeps the lock held until it is dropped.
    pub fn new(held: impl Send + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for SweepLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SweepLock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str, digest: &str, event: &str) -> Delivery {
        Delivery {
            id: id.into(),
            body_sha256: digest.into(),
            event: event.into(),
        }
    }

    #[test]
    fn a_delivery_is_known_by_the_sha256_of_its_body() {
        let d = Delivery::of_body("72d3162e", "pull_request", b"");
        assert_eq!(
            d.body_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(d.check().is_ok());
    }

    #[test]
    fn a_delivery_breaking_a_bound_is_refused_with_the_field_named() {
        let good = "a".repeat(64);
        for (d, named) in [
            (delivery("", &good, "push"), "delivery_id"),
            (delivery(&"x".repeat(129), &good, "push"), "delivery_id"),
            (delivery("1", &"a".repeat(63), "push"), "body_sha256"),
            (delivery("1", &"A".repeat(64), "push"), "body_sha256"),
            (delivery("1", &"g".repeat(64), "push"), "body_sha256"),
            (delivery("1", &good, ""), "event"),
            (delivery("1", &good, &"e".repeat(65)), "event"),
        ] {
            match d.check() {
                Err(StoreError::Invalid { field, .. }) => assert_eq!(field, named, "{d:?}"),
                other => panic!("{d:?}: {other:?}"),
            }
        }
        assert!(delivery(&"x".repeat(128), &good, "push").check().is_ok());
    }
}
