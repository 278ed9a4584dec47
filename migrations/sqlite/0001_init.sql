-- previewd's desired-state table, work schedule and outbox (SQLite).
-- Every timestamp is BIGINT milliseconds since the Unix epoch, as on
-- PostgreSQL, so both backends share their queries. SQLite's default BINARY
-- collation sorts keys bytewise, as the "C" collation does there.

CREATE TABLE previews (
    project             TEXT NOT NULL,
    branch              TEXT NOT NULL,
    -- Allocated once at first insert; every AWS name derives from it.
    slug                TEXT NOT NULL UNIQUE,
    host_label          TEXT NOT NULL UNIQUE,
    -- The spec: a change to any of these is a new generation.
    commit_sha          TEXT,
    ai_run_id           TEXT,
    callback_url        TEXT,
    image               TEXT,
    env_json            TEXT NOT NULL DEFAULT '{}',
    desired             TEXT NOT NULL CHECK (desired IN ('present', 'absent')),
    generation          BIGINT NOT NULL,
    -- The observed side, written only by the controller.
    phase               TEXT NOT NULL,
    conditions_json     TEXT NOT NULL DEFAULT '{}',
    observed_generation BIGINT NOT NULL DEFAULT 0,
    url                 TEXT,
    message             TEXT,
    last_error_json     TEXT,
    rule_priority       INTEGER,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    expires_at          BIGINT,
    -- The schedule and the per-row lease that shares it between replicas.
    next_reconcile_at   BIGINT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    lease_owner         TEXT,
    lease_until         BIGINT,
    -- The generation a lease holder is working on: when a dispatch bumps
    -- `generation` meanwhile, record_status keeps the earlier wake-up.
    claimed_generation  BIGINT,
    PRIMARY KEY (project, branch)
);

CREATE UNIQUE INDEX previews_rule_priority ON previews (rule_priority)
    WHERE rule_priority IS NOT NULL;
CREATE INDEX previews_next_reconcile_at ON previews (next_reconcile_at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project         TEXT NOT NULL,
    branch          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    delivered_at    BIGINT
);

-- Due, undelivered messages, and "is there an earlier one for this preview?".
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_per_preview ON outbox (project, branch, id) WHERE delivered_at IS NULL;
