-- A webhook delivery is known by its body as well as its id: GitHub's
-- "redeliver" reuses the id, but a replayed signed body can come under a
-- fresh X-GitHub-Delivery, and only its digest gives it away.
ALTER TABLE webhook_deliveries
    -- SHA-256 of the signed body, lowercase hex; NULL only for deliveries
    -- recorded before this migration (they age out with the rest).
    ADD COLUMN body_sha256 TEXT UNIQUE CHECK (body_sha256 ~ '^[0-9a-f]{64}$'),
    -- X-GitHub-Event, for people reading the table; NULL as above.
    ADD COLUMN event TEXT CHECK (length(event) BETWEEN 1 AND 64);

-- An id longer than the new bound can only have come from a signed
-- request with a doctored header; forgetting it lets nothing new through
-- that the digest would not stop.
DELETE FROM webhook_deliveries WHERE length(delivery_id) NOT BETWEEN 1 AND 128;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_id_bounded
    CHECK (length(delivery_id) BETWEEN 1 AND 128);

-- Every insert first forgets deliveries older than DELIVERIES_KEPT_FOR;
-- this index makes that a range scan of what actually goes.
CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at);

-- When the preview's current spec was applied: set by apply_deploy alone
-- (updated_at moves on every status write too), so a "PR closed" webhook
-- older than the last redeploy can be recognised as stale. NULL means not
-- known: only a row never changed since its insert (generation 1) can be
-- dated, and the staleness rule is skipped for the rest until redeployed.
ALTER TABLE previews ADD COLUMN deployed_at BIGINT;
UPDATE previews SET deployed_at = created_at WHERE generation = 1;
