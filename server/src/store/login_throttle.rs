//! Counters of failed logins (table `login_throttle`), one row per key, shared by
//! every replica. Each counting runs in a short transaction of its own, not in a
//! login's, so that a count is visible to other replicas at once. The policy
//! (keys, limits, windows) is in [`crate::throttle`].

use sqlx::Result;

use super::Write;
use super::query::{affected, execute, one};

/// A key's counter right after [`hit`] counted an attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Count {
    pub failures: i64,
    /// When the key's current window opened (RFC 3339, as stored).
    pub window_start: String,
}

/// Counts one attempt for `key` and returns the counter. A window that opened
/// at or before `expired_before` is over: the counter restarts at 1 in a new
/// window opening `now`, with nothing audited yet.
pub async fn hit(w: &mut Write<'_>, key: &str, now: &str, expired_before: &str) -> Result<Count> {
    let sql = "INSERT INTO login_throttle (key, window_start, failures, audited) \
         VALUES ($1, $2, 1, 0) ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 \
                    ELSE login_throttle.failures + 1 END, \
         audited = CASE WHEN login_throttle.window_start <= $3 THEN 0 \
                   ELSE login_throttle.audited END, \
         window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 \
                        ELSE login_throttle.window_start END \
         RETURNING failures, window_start";
    one(w.conn(), sql, (key, now, expired_before)).await
}

/// Withdraws one attempt counted by [`hit`] in the window opened at
/// `window_start` (the attempt turned out not to be a failure). Nothing happens
/// when that window is gone.
pub async fn unhit(w: &mut Write<'_>, key: &str, window_start: &str) -> Result<()> {
    let of_window = "key = $1 AND window_start = $2";
    let sql = super::query::sql!(
        "UPDATE login_throttle SET failures = failures - 1 WHERE {of_window} AND failures > 0"
    );
    execute(w, sql, (key, window_start)).await?;
    // A window left with no failures never was one: closing it keeps its age
    // (which `Retry-After` would show) from telling of a successful login.
    let sql = super::query::sql!("DELETE FROM login_throttle WHERE {of_window} AND failures <= 0");
    execute(w, sql, (key, window_start)).await
}

/// Sets the audit bit `bit` of the window opened at `window_start`. True for
/// exactly one caller per key, window and bit: the one that must write the
/// audit entry.
pub async fn claim_audit(w: &mut Write<'_>, key: &str, window: &str, bit: i64) -> Result<bool> {
    let sql = "UPDATE login_throttle SET audited = audited | $3 \
         WHERE key = $1 AND window_start = $2 AND (audited & $3) = 0";
    Ok(affected(w, sql, (key, window, bit)).await? == 1)
}

/// Deletes at most `limit` rows whose window opened at or before
/// `expired_before`; returns how many.
pub async fn prune(w: &mut Write<'_>, expired_before: &str, limit: i64) -> Result<u64> {
    let sql = "DELETE FROM login_throttle WHERE key IN \
         (SELECT key FROM login_throttle WHERE window_start <= $1 LIMIT $2)";
    affected(w, sql, (expired_before, limit)).await
}
