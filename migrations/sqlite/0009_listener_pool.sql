-- A pool of listeners (issue 17): each row records the listener its rule
-- priority is reserved on, and a priority is unique per listener, not
-- across the table. A row with a priority and no listener was placed
-- before the pool existed; previewd records it on the pool's first
-- listener (the one the single-listener configuration named) when it
-- starts, which changes nothing in AWS.
ALTER TABLE previews ADD COLUMN listener_arn TEXT;

DROP INDEX previews_rule_priority;

CREATE UNIQUE INDEX previews_listener_rule_priority
    ON previews (listener_arn, rule_priority)
    WHERE rule_priority IS NOT NULL;
