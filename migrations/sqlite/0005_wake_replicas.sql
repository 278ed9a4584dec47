-- Kept in step with migrations/postgres/0005_wake_replicas.sql, which makes
-- writes wake the other replicas (LISTEN/NOTIFY). SQLite serves a single
-- replica, which its own writes wake in-process: nothing to add here.
SELECT 1;
