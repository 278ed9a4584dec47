-- What happened to each preview, for people: a row per change of its
-- observed phase or message, written by record_status in the same
-- transaction as the status, the last 50 kept per preview.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT NOT NULL,
    branch     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    phase      TEXT NOT NULL,
    message    TEXT
);

CREATE INDEX events_per_preview ON events (project, branch, id);

-- The replica whose lease a claim took over after it ran out (NULL when the
-- row was free): a claim sets it from the old lease_owner in the same
-- statement, so the claimer can count takeovers.
ALTER TABLE previews ADD COLUMN lease_taken_from TEXT;
