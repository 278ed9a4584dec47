-- The replicas sharing this database, each seen at its last heartbeat:
-- `cloud.api_share_percent` is the share of AWS's rate limits for all of
-- them together, and each paces itself to its part of it, so the sum
-- holds whatever the replica count. A row not seen for a while belongs to
-- a replica that died; it stops counting and is deleted by the next
-- heartbeat.
CREATE TABLE replicas (
    id      TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
