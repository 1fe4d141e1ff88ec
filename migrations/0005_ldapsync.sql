-- LDAP directory sync: runs, the scheduler's ticks, the one-run-at-a-time lease.
-- Settings live in deployment_settings under the key `ldapsync`; directory
-- identities in user_links (source `ldap`, external id = the entry's unique id).

-- Whether the directory sync suspended the user (gone from the directory): only
-- such users are reactivated when they come back; a suspension by an admin stays.
ALTER TABLE user_links ADD COLUMN suspended_by_sync BIGINT NOT NULL DEFAULT 0;

CREATE TABLE ldapsync_runs (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    -- running | succeeded | failed | aborted
    status TEXT NOT NULL,
    -- schedule | manual
    trigger TEXT NOT NULL,
    -- The scheduled tick this run belongs to (schedule runs only).
    tick TEXT,
    dry_run BIGINT NOT NULL,
    forced BIGINT NOT NULL,
    full_sync BIGINT NOT NULL,
    started_by TEXT,
    node TEXT NOT NULL,
    stats TEXT NOT NULL DEFAULT '{}',
    progress TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    problems TEXT NOT NULL DEFAULT '[]',
    -- dry runs and aborted runs: the changes the run would make
    plan TEXT,
    heartbeat_at TEXT
);
CREATE INDEX ldapsync_runs_started ON ldapsync_runs (started_at, id);

-- One row per scheduled tick: the replica that inserts it runs that tick.
CREATE TABLE ldapsync_ticks (
    tick TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    claimed_at TEXT NOT NULL
);

-- The lease that keeps runs one at a time across replicas: held by a node for
-- a run, renewed by the run's heartbeat, free again when it expires (a crashed
-- node never blocks the next run for long).
CREATE TABLE ldapsync_lease (
    id BIGINT PRIMARY KEY,
    run_id TEXT,
    node TEXT,
    expires_at TEXT
);
INSERT INTO ldapsync_lease (id, run_id, node, expires_at) VALUES (1, NULL, NULL, NULL);
