-- Who uploaded which content. Files are content-addressed and stored once
-- (`files`); each uploader gets a grant of their own here. A template version
-- may name a file only if its creator has a grant or its organization is
-- bound to the file (`file_organizations`: an upload with `?organization=`,
-- or a version of that organization using it). Portable SQL (SQLite and
-- PostgreSQL); see 0001 for the conventions.

CREATE TABLE file_uploads (
    hash TEXT NOT NULL REFERENCES files (hash) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (hash, user_id)
);
CREATE INDEX file_uploads_user ON file_uploads (user_id);

-- Existing files: their recorded uploader keeps a grant.
INSERT INTO file_uploads (hash, user_id, created_at)
SELECT f.hash, f.created_by, f.created_at
FROM files f
WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = f.created_by);

-- Existing versions keep their files: each version's organization is bound to
-- the file it names (versions already bind it when created; this covers any
-- row that predates that).
INSERT INTO file_organizations (hash, organization_id)
SELECT DISTINCT v.file_hash, v.organization_id
FROM template_versions v
WHERE NOT EXISTS (
    SELECT 1 FROM file_organizations o
    WHERE o.hash = v.file_hash AND o.organization_id = v.organization_id
);
