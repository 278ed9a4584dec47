//! Every statement the store runs, written once for both backends.
//!
//! sqlx accepts `$N` placeholders on SQLite as on PostgreSQL, timestamps are
//! BIGINT milliseconds on both, and the smaller of two values is spelled
//! `CASE` (SQLite says `MIN(a, b)`, PostgreSQL `LEAST(a, b)`), so the text is
//! shared. Only the claim statements differ, by one locking clause. The two
//! column lists are small macros only because `concat!` takes literals.

use crate::Backend;

/// The `previews` columns `rows::PreviewRow` reads, in one place.
macro_rules! preview_columns {
    () => {
        "project, branch, slug, host_label, commit_sha, ai_run_id, callback_url, image, \
         env_json, desired, generation, phase, conditions_json, observed_generation, url, \
         message, last_error_json, rule_priority, created_at, updated_at, deployed_at, \
         expires_at, next_reconcile_at, attempts, lease_owner, lease_until, listener_arn, asleep, \
         sleep_changed_at"
    };
}

/// The `outbox` columns `rows::OutboxRow` reads.
macro_rules! outbox_columns {
    () => {
        "id, project, branch, kind, payload, attempts, created_at, last_error"
    };
}

/// Leases due rows. On PostgreSQL the subselect ends `FOR UPDATE SKIP
/// LOCKED`: replicas claiming at once must pass over each other's rows (and
/// a row updated meanwhile is re-checked against the WHERE clause). SQLite
/// has no such clause and needs none: its single writer makes the
/// statement atomic. `lease_taken_from` keeps the other replica whose
/// expired lease this claim replaced (SET sees the old row), for the
/// takeover count.
const CLAIM_DUE_SQLITE: &str = concat!(
    "UPDATE previews SET lease_owner = $1, lease_until = $2, \
     claimed_generation = generation, \
     lease_taken_from = CASE WHEN lease_owner <> $1 THEN lease_owner END \
     WHERE (project, branch) IN (\
       SELECT project, branch FROM previews \
       WHERE next_reconcile_at <= $3 AND (lease_owner IS NULL OR lease_until < $3) \
       ORDER BY next_reconcile_at, project, branch LIMIT $4\
     ) RETURNING lease_taken_from, ",
    preview_columns!()
);
/// [`CLAIM_DUE_SQLITE`] with the lock clause (a test keeps them so).
const CLAIM_DUE_POSTGRES: &str = concat!(
    "UPDATE previews SET lease_owner = $1, lease_until = $2, \
     claimed_generation = generation, \
     lease_taken_from = CASE WHEN lease_owner <> $1 THEN lease_owner END \
     WHERE (project, branch) IN (\
       SELECT project, branch FROM previews \
       WHERE next_reconcile_at <= $3 AND (lease_owner IS NULL OR lease_until < $3) \
       ORDER BY next_reconcile_at, project, branch LIMIT $4 FOR UPDATE SKIP LOCKED\
     ) RETURNING lease_taken_from, ",
    preview_columns!()
);

/// Leases the head of each preview's undelivered queue of each kind. A
/// message with an earlier undelivered sibling of its kind never qualifies,
/// which both keeps per-preview order and allows at most one message per
/// preview and kind in flight: the sticky comment's queue never holds back
/// the reports' (nor the reverse). The lock
/// clause is as in [`CLAIM_DUE_SQLITE`].
const CLAIM_OUTBOX_SQLITE: &str = concat!(
    "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (\
       SELECT o.id FROM outbox o \
       WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $3 \
         AND (o.lease_owner IS NULL OR o.lease_until < $3) \
         AND NOT EXISTS (SELECT 1 FROM outbox e \
           WHERE e.project = o.project AND e.branch = o.branch AND e.kind = o.kind \
             AND e.delivered_at IS NULL AND e.id < o.id) \
       ORDER BY o.id LIMIT $4\
     ) RETURNING ",
    outbox_columns!()
);
/// [`CLAIM_OUTBOX_SQLITE`] with the lock clause (a test keeps them so).
const CLAIM_OUTBOX_POSTGRES: &str = concat!(
    "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (\
       SELECT o.id FROM outbox o \
       WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $3 \
         AND (o.lease_owner IS NULL OR o.lease_until < $3) \
         AND NOT EXISTS (SELECT 1 FROM outbox e \
           WHERE e.project = o.project AND e.branch = o.branch AND e.kind = o.kind \
             AND e.delivered_at IS NULL AND e.id < o.id) \
       ORDER BY o.id LIMIT $4 FOR UPDATE SKIP LOCKED\
     ) RETURNING ",
    outbox_columns!()
);

/// The claim of due rows on `backend`.
pub(crate) fn claim_due(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => CLAIM_DUE_SQLITE,
        Backend::Postgres => CLAIM_DUE_POSTGRES,
    }
}

/// The claim of outbox messages on `backend`.
pub(crate) fn claim_outbox(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => CLAIM_OUTBOX_SQLITE,
        Backend::Postgres => CLAIM_OUTBOX_POSTGRES,
    }
}

pub(crate) const GET: &str = concat!(
    "SELECT ",
    preview_columns!(),
    " FROM previews WHERE project = $1 AND branch = $2"
);

/// A NULL filter matches everything; `$4` is always bound (no LIMIT NULL:
/// SQLite refuses it).
pub(crate) const LIST: &str = concat!(
    "SELECT ",
    preview_columns!(),
    " FROM previews WHERE ($1 IS NULL OR project = $1) AND ($2 IS NULL OR phase = $2) \
      AND ($3 IS NULL OR desired = $3) \
      AND ($5 IS NULL OR (expires_at IS NOT NULL AND expires_at <= $5)) \
      ORDER BY project, branch LIMIT $4"
);

pub(crate) const SLUG_HOLDERS: &str = "SELECT COUNT(*) FROM previews WHERE slug = $1";
pub(crate) const HOST_HOLDERS: &str = "SELECT COUNT(*) FROM previews WHERE host_label = $1";

pub(crate) const INSERT: &str = concat!(
    "INSERT INTO previews (project, branch, slug, host_label, commit_sha, ai_run_id, \
       callback_url, image, env_json, desired, generation, phase, conditions_json, \
       observed_generation, created_at, updated_at, expires_at, next_reconcile_at, attempts, \
       deployed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'present', 1, 'Pending', $10, 0, \
       $11, $11, $12, $11, 0, $11) RETURNING ",
    preview_columns!()
);

/// Guarded by the generation that was read (`$10`), so a concurrent change
/// makes this match nothing and the caller reads again. `deployed_at` moves
/// here and at insert only: it dates the spec, not the status.
pub(crate) const REDEPLOY: &str = concat!(
    "UPDATE previews SET commit_sha = $3, ai_run_id = $4, callback_url = $5, image = $6, \
       env_json = $7, desired = 'present', generation = generation + 1, expires_at = $8, \
       next_reconcile_at = $9, attempts = 0, updated_at = $9, deployed_at = $9, \
       sleep_changed_at = CASE WHEN asleep = 1 THEN $9 ELSE sleep_changed_at END, asleep = 0 \
     WHERE project = $1 AND branch = $2 AND generation = $10 RETURNING ",
    preview_columns!()
);

/// Puts a preview to sleep: only a present, awake row Ready at the
/// generation the idle check saw (`$4`), so a redeploy or a wake that came
/// in since wins.
pub(crate) const SLEEP: &str = concat!(
    "UPDATE previews SET asleep = 1, sleep_changed_at = $3, next_reconcile_at = $3, \
       updated_at = $3, claimed_generation = CASE WHEN claimed_generation IS NULL \
         THEN NULL ELSE -1 END \
     WHERE project = $1 AND branch = $2 AND generation = $4 AND desired = 'present' \
       AND asleep = 0 AND phase = 'Ready' AND observed_generation = generation RETURNING ",
    preview_columns!()
);

/// Wakes a sleeping preview, due at once. Like [`SLEEP`], it marks a pass
/// under way (a claimed row) as having seen another generation, so that
/// pass's status does not push this due time later ([`RECORD_STATUS`]).
pub(crate) const WAKE: &str = concat!(
    "UPDATE previews SET asleep = 0, sleep_changed_at = $3, next_reconcile_at = $3, \
       attempts = 0, updated_at = $3, claimed_generation = CASE WHEN claimed_generation IS NULL \
         THEN NULL ELSE -1 END \
     WHERE project = $1 AND branch = $2 AND desired = 'present' AND asleep = 1 RETURNING ",
    preview_columns!()
);

/// With `$4`, only a row whose current spec was deployed at or before `$4`
/// (or at an unknown time) goes: a webhook about an older event leaves a
/// later redeploy alone. The check is in the statement, so a redeploy
/// committed meanwhile is seen by it. `$5` and `$6`, the destroy's own run
/// id and callback, replace the deploy's when given: the Deleted report
/// goes to them.
pub(crate) const DESTROY: &str = concat!(
    "UPDATE previews SET desired = 'absent', generation = generation + 1, \
       next_reconcile_at = $3, attempts = 0, updated_at = $3, \
       ai_run_id = COALESCE($5, ai_run_id), callback_url = COALESCE($6, callback_url) \
     WHERE project = $1 AND branch = $2 AND desired = 'present' \
       AND ($4 IS NULL OR deployed_at IS NULL OR deployed_at <= $4) RETURNING ",
    preview_columns!()
);

/// Leases a row only while its teardown is finished (and nobody else holds
/// it): the check and the lease are one statement.
pub(crate) const LEASE_DELETED: &str = "UPDATE previews SET lease_owner = $3, lease_until = $4 \
     WHERE project = $1 AND branch = $2 AND desired = 'absent' AND phase = 'Deleted' \
       AND (lease_owner IS NULL OR lease_until < $5)";

pub(crate) const RELEASE_LEASE: &str = "UPDATE previews SET lease_owner = NULL, lease_until = NULL \
     WHERE project = $1 AND branch = $2 AND lease_owner = $3";

pub(crate) const RENEW_LEASE: &str = "UPDATE previews SET lease_until = $4 \
     WHERE project = $1 AND branch = $2 AND lease_owner = $3";

/// The lease check is the WHERE clause, so a lost lease writes nothing.
/// When a dispatch bumped `generation` after the claim, the dispatch's
/// wake-up (and its reset of `attempts`) wins over the stale reconcile's.
pub(crate) const RECORD_STATUS: &str = "UPDATE previews SET phase = $4, conditions_json = $5, \
       observed_generation = $6, url = $7, message = $8, last_error_json = $9, \
       next_reconcile_at = CASE WHEN generation <> claimed_generation \
         AND next_reconcile_at < $10 THEN next_reconcile_at ELSE $10 END, \
       attempts = CASE WHEN generation <> claimed_generation THEN attempts ELSE $11 END, \
       updated_at = $12, lease_owner = NULL, lease_until = NULL, claimed_generation = NULL \
     WHERE project = $1 AND branch = $2 AND lease_owner = $3";

pub(crate) const ENQUEUE: &str = "INSERT INTO outbox \
       (project, branch, kind, payload, created_at, next_attempt_at, attempts) \
     VALUES ($1, $2, $3, $4, $5, $5, 0)";

pub(crate) const SET_PRIORITY: &str = "UPDATE previews SET listener_arn = $3, rule_priority = $4 \
     WHERE project = $1 AND branch = $2";

/// Every row's placement but one. A pre-pool row (a priority, no listener)
/// is left out: `ADOPT_UNPLACED` gives it the first listener at startup.
pub(crate) const RESERVATIONS: &str = "SELECT listener_arn, rule_priority FROM previews \
     WHERE rule_priority IS NOT NULL AND listener_arn IS NOT NULL \
       AND NOT (project = $1 AND branch = $2) \
     ORDER BY listener_arn, rule_priority";

pub(crate) const ADOPT_UNPLACED: &str = "UPDATE previews SET listener_arn = $1 \
     WHERE listener_arn IS NULL AND rule_priority IS NOT NULL";

/// When the loop can next claim something: a leased row is not claimable
/// before its lease runs out, so counting its (past) due time would make the
/// loop spin while another worker holds it.
pub(crate) const NEXT_DUE: &str = "SELECT MIN(CASE WHEN lease_until IS NOT NULL \
       AND lease_until > next_reconcile_at THEN lease_until ELSE next_reconcile_at END) \
     FROM previews";

pub(crate) const SAVE_DEPLOYMENT: &str = "INSERT INTO github_deployments \
       (project, branch, generation, deployment_id, created_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (project, branch, generation) DO NOTHING";

/// The deployment of a generation, or with `$3` NULL the newest one.
pub(crate) const FIND_DEPLOYMENT: &str = "SELECT deployment_id FROM github_deployments \
     WHERE project = $1 AND branch = $2 AND ($3 IS NULL OR generation = $3) \
     ORDER BY generation DESC LIMIT 1";

pub(crate) const FIND_PULL_REQUEST: &str =
    "SELECT number FROM pull_requests WHERE project = $1 AND branch = $2";

pub(crate) const SAVE_PULL_REQUEST: &str = "INSERT INTO pull_requests \
       (project, branch, number, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (project, branch) DO UPDATE \
       SET number = excluded.number, updated_at = excluded.updated_at";

pub(crate) const FORGET_PULL_REQUEST: &str =
    "DELETE FROM pull_requests WHERE project = $1 AND branch = $2";

/// No conflict target: a known id and a known body digest (each unique)
/// both make this insert nothing.
pub(crate) const REMEMBER_DELIVERY: &str = "INSERT INTO webhook_deliveries \
       (delivery_id, body_sha256, event, received_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT DO NOTHING";

/// When the row's current spec was deployed (NULL: never, or no row).
pub(crate) const DEPLOYED_AT: &str =
    "SELECT deployed_at FROM previews WHERE project = $1 AND branch = $2";

/// Forgets one delivery whose write failed, so GitHub's redelivery acts.
pub(crate) const FORGET_DELIVERY: &str = "DELETE FROM webhook_deliveries WHERE delivery_id = $1";

/// Forgets deliveries received before `$1` (an index range scan).
pub(crate) const PRUNE_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE received_at < $1";

/// Marks a resource seen now, keeping its first sighting.
pub(crate) const SIGHT: &str = "INSERT INTO gc_sightings (resource, first_seen, last_seen) \
     VALUES ($1, $2, $2) ON CONFLICT (resource) DO UPDATE SET last_seen = excluded.last_seen";

/// Forgets every resource not seen in this sweep: it is wanted again or gone.
pub(crate) const FORGET_SIGHTINGS: &str = "DELETE FROM gc_sightings WHERE last_seen < $1";

pub(crate) const FIRST_SEEN: &str = "SELECT first_seen FROM gc_sightings WHERE resource = $1";

/// A second ack keeps the first delivery time.
pub(crate) const ACK_OUTBOX: &str = "UPDATE outbox SET delivered_at = COALESCE(delivered_at, $2), \
       lease_owner = NULL, lease_until = NULL WHERE id = $1";

pub(crate) const RETRY_OUTBOX: &str = "UPDATE outbox SET attempts = attempts + 1, \
       last_error = $3, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND delivered_at IS NULL";

pub(crate) const OUTBOX_BACKLOG: &str =
    "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL";

/// Notes the row's new status as an event unless it repeats the newest one
/// (same phase, same message): a resync that changes nothing adds nothing.
pub(crate) const NOTE_EVENT: &str = "INSERT INTO events \
       (project, branch, at, generation, phase, message) \
     SELECT p.project, p.branch, $3, p.generation, p.phase, p.message FROM previews p \
     WHERE p.project = $1 AND p.branch = $2 AND NOT EXISTS (\
       SELECT 1 FROM (SELECT phase, message FROM events \
         WHERE project = $1 AND branch = $2 ORDER BY id DESC LIMIT 1) newest \
       WHERE newest.phase = p.phase AND newest.message IS NOT DISTINCT FROM p.message)";

/// Keeps the newest `$3` events of a preview.
pub(crate) const PRUNE_EVENTS: &str = "DELETE FROM events \
     WHERE project = $1 AND branch = $2 AND id <= (SELECT id FROM events \
       WHERE project = $1 AND branch = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)";

pub(crate) const EVENTS: &str = "SELECT id, at, generation, phase, message FROM events \
     WHERE project = $1 AND branch = $2 ORDER BY id DESC LIMIT $3";

pub(crate) const SEE_REPLICA: &str = "INSERT INTO replicas (id, seen_at) VALUES ($1, $2) \
     ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at";

pub(crate) const FORGET_DEAD_REPLICAS: &str = "DELETE FROM replicas WHERE seen_at < $1";

pub(crate) const COUNT_REPLICAS: &str = "SELECT COUNT(*) FROM replicas WHERE seen_at >= $1";

#[cfg(test)]
mod tests {
    use super::*;

    /// The PostgreSQL claims are the SQLite ones plus the lock clause and
    /// nothing else, so an edit to one that misses the other fails here.
    #[test]
    fn the_claims_differ_only_by_the_lock_clause() {
        let lock = |sql: &str| sql.replacen("LIMIT $4", "LIMIT $4 FOR UPDATE SKIP LOCKED", 1);
        assert_eq!(lock(CLAIM_DUE_SQLITE), CLAIM_DUE_POSTGRES);
        assert_eq!(lock(CLAIM_OUTBOX_SQLITE), CLAIM_OUTBOX_POSTGRES);
        assert_eq!(claim_due(Backend::Postgres), CLAIM_DUE_POSTGRES);
        assert_eq!(claim_outbox(Backend::Sqlite), CLAIM_OUTBOX_SQLITE);
    }
}
