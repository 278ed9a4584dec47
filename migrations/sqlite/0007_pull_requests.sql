-- The pull request each preview's sticky comment is on (`github.pr_comment`),
-- once found: a closed pull request is no longer found by a lookup of open
-- ones, yet its comment must still be edited to say the preview is gone.
-- The comment itself is found by its hidden marker, never by a stored id,
-- so a comment deleted by hand is simply posted again.
CREATE TABLE pull_requests (
    project    TEXT NOT NULL,
    branch     TEXT NOT NULL,
    number     BIGINT NOT NULL CHECK (number > 0),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, branch)
);
