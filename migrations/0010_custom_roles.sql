-- Custom organization roles (`/organizations/{org}/members/roles`): a name in
-- one organization and its permissions, a JSON list of {resource_type, action,
-- negate}. Members hold them by name in `organization_members.roles`, like the
-- built-in roles; the policies read the permissions (policies/custom-roles.cedar).
CREATE TABLE organization_roles (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, name)
);
