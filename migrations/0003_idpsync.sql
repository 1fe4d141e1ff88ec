-- IdP sync: external identities, stored claims, sync settings, problems.

-- A user's identity at an external source (`oidc`: the `sub`; `ldap`: the
-- directory's unique id). One link per source and external id.
CREATE TABLE user_links (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    claims TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX user_links_user ON user_links (user_id);

-- Per-organization settings (group and role sync), JSON values.
CREATE TABLE organization_settings (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, key)
);

-- Problems found while syncing, for admins (`GET /idpsync/problems`).
CREATE TABLE idpsync_problems (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    user_id TEXT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX idpsync_problems_org ON idpsync_problems (organization_id, time);
