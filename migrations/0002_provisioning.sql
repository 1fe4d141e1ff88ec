-- Templates, files, provisioner keys, daemons and jobs, workspaces and builds.
-- Portable SQL (SQLite and PostgreSQL); see 0001 for the conventions.

-- Uploaded template archives (tar), content-addressed. The content is stored
-- base64-encoded: portable across both databases, at most 10 MiB raw.
CREATE TABLE files (
    hash TEXT PRIMARY KEY,
    content_base64 TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Which organizations a file belongs to (the orgs of the versions using it).
CREATE TABLE file_organizations (
    hash TEXT NOT NULL REFERENCES files (hash) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    PRIMARY KEY (hash, organization_id)
);

CREATE TABLE provisioner_jobs (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    job_type TEXT NOT NULL,
    provisioner TEXT NOT NULL,
    status TEXT NOT NULL,
    tags TEXT NOT NULL,
    input TEXT NOT NULL,
    initiator_id TEXT NOT NULL,
    worker_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    heartbeat_at TEXT,
    completed_at TEXT,
    error TEXT
);
CREATE INDEX provisioner_jobs_queue ON provisioner_jobs (organization_id, status, created_at);
CREATE INDEX provisioner_jobs_running ON provisioner_jobs (status, heartbeat_at);

CREATE TABLE provisioner_job_logs (
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    time TEXT NOT NULL,
    stage TEXT NOT NULL,
    level TEXT NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE provisioner_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    hashed_secret TEXT NOT NULL UNIQUE,
    tags TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (organization_id, name_lower)
);

CREATE TABLE provisioner_daemons (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key_id TEXT,
    name TEXT NOT NULL,
    provisioners TEXT NOT NULL,
    tags TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    disconnected_at TEXT
);
CREATE INDEX provisioner_daemons_org ON provisioner_daemons (organization_id, last_seen_at);

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '',
    active_version_id TEXT NOT NULL,
    provisioner TEXT NOT NULL,
    acl TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organization_id, name_lower)
);

CREATE TABLE template_versions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    template_id TEXT REFERENCES templates (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    file_hash TEXT NOT NULL REFERENCES files (hash),
    provisioner TEXT NOT NULL,
    tags TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX template_versions_template ON template_versions (template_id, created_at);

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Names are unique per owner among live workspaces.
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces (owner_id, name_lower) WHERE deleted = 0;

CREATE TABLE workspace_builds (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    build_number BIGINT NOT NULL,
    transition TEXT NOT NULL,
    template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id),
    initiator_id TEXT NOT NULL,
    parameters TEXT NOT NULL,
    -- Terraform state after this build (base64), kept per workspace.
    state_base64 TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (workspace_id, build_number)
);
