-- Login throttling: failed password logins counted per account and per client
-- address, shared by every replica. `key` is `account:<SHA-256 of the
-- normalized email>` or `address:<client address>` (never the typed text);
-- `window_start` is the first counted failure of the current window (RFC 3339,
-- sorts as text); `audited` holds bits of the audit entries already written in
-- this window (1: wrong credentials, 2: suspended account). Rows whose window
-- has ended are reset on the next failure or pruned.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    window_start TEXT NOT NULL,
    failures BIGINT NOT NULL,
    audited BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX login_throttle_window ON login_throttle (window_start);
