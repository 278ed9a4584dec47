-- The GitHub deployment created for each generation of a preview, so the
-- delivery worker posts every status of that generation to the same
-- deployment (and `inactive` to the last one on destroy), across restarts.
CREATE TABLE github_deployments (
    project       TEXT NOT NULL,
    branch        TEXT NOT NULL,
    generation    BIGINT NOT NULL,
    deployment_id BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (project, branch, generation)
);

-- Webhook deliveries already acted on: GitHub redelivers, and an attacker
-- may replay a signed body; each X-GitHub-Delivery id is acted on once.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
