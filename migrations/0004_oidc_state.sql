-- OIDC login: the state of a login between `/users/oidc/login` and the
-- provider's redirect back to `/users/oidc/callback`. Kept server-side so that
-- any replica can finish a login; a row is deleted when used and is void after
-- 10 minutes. Only the SHA-256 of the `state` parameter is stored.
CREATE TABLE oidc_states (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX oidc_states_created ON oidc_states (created_at);
