-- Sleep (issue 18): `asleep` is desired state, set by the idle check and
-- cleared by a visit to the waker or a redeploy; `sleep_changed_at` is
-- when it last flipped, which a wake's duration counts from and which
-- restarts the idle clock.
ALTER TABLE previews ADD COLUMN asleep INTEGER NOT NULL DEFAULT 0;
ALTER TABLE previews ADD COLUMN sleep_changed_at BIGINT;
