-- Replicas wake each other: a write that makes a preview due sooner sends
-- NOTIFY previewd_wake, which every replica LISTENs for (polling stays the
-- fallback). A trigger rather than a statement in each write: it covers
-- every path that changes the schedule (dispatch, destroy, a status write,
-- a released lease, an operator's hand edit) without touching the SQL text
-- the two backends share, and NOTIFY inside it is transactional: it is sent
-- on commit, never for a rolled-back write, and PostgreSQL folds duplicates
-- within one transaction into one.
CREATE FUNCTION previewd_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A leased row cannot be claimed anyway; its holder's status write or
    -- release is the moment it becomes claimable.
    IF NEW.lease_owner IS NULL AND (
        TG_OP = 'INSERT'
        OR NEW.generation <> OLD.generation
        OR NEW.next_reconcile_at < OLD.next_reconcile_at
        -- A lease given up on a row that is already due (a replica shutting
        -- down, or a dispatch that came during the pass). The database's
        -- clock only decides whether to wake; a wrong guess costs one
        -- needless look, or leaves the row to polling.
        OR (OLD.lease_owner IS NOT NULL
            AND NEW.next_reconcile_at <= (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
    ) THEN
        -- The key, for logs and tests; listeners only need the wake-up.
        PERFORM pg_notify('previewd_wake', NEW.project || ' ' || NEW.branch);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER previews_wake
    AFTER INSERT OR UPDATE OF generation, next_reconcile_at, lease_owner ON previews
    FOR EACH ROW EXECUTE FUNCTION previewd_wake();
