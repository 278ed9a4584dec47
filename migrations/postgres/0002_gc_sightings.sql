-- Resources the garbage collector found unwanted, and since when. A
-- resource is deleted only after it has stayed unwanted for the grace
-- period, and that must hold across restarts and one-shot `previewd gc`
-- runs, so the first sighting is kept here rather than in memory.
CREATE TABLE gc_sightings (
    -- "<kind>:<id>", e.g. "target-group:arn:aws:elasticloadbalancing:..."
    resource   TEXT PRIMARY KEY,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
