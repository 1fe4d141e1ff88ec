//! Counters of failed logins (table `login_throttle`), one row per key, shared by
//! every replica. Each statement is atomic on its own; callers use the pool, not
//! a use case's transaction, so that a count is visible to other replicas at once.
//! The policy (keys, limits, windows) is in [`crate::throttle`].

use sqlx::Row;

use super::Conn;

/// A key's counter right after [`hit`] counted an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub failures: i64,
    /// When the key's current window opened (RFC 3339, as stored).
    pub window_start: String,
}

/// Counts one attempt for `key` and returns the counter. A window that opened
/// at or before `expired_before` is over: the counter restarts at 1 in a new
/// window opening `now`, with nothing audited yet.
pub async fn hit(
    conn: &mut Conn,
    key: &str,
    now: &str,
    expired_before: &str,
) -> sqlx::Result<Count> {
    let row = sqlx::query(
        "INSERT INTO login_throttle (key, window_start, failures, audited) VALUES ($1, $2, 1, 0) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 \
                    ELSE login_throttle.failures + 1 END, \
         audited = CASE WHEN login_throttle.window_start <= $3 THEN 0 \
                   ELSE login_throttle.audited END, \
         window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 \
                        ELSE login_throttle.window_start END \
         RETURNING failures, window_start",
    )
    .bind(key)
    .bind(now)
    .bind(expired_before)
    .fetch_one(conn)
    .await?;
    Ok(Count {
        failures: row.try_get("failures")?,
        window_start: row.try_get("window_start")?,
    })
}

/// Withdraws one attempt counted by [`hit`] in the window opened at
/// `window_start` (the attempt turned out not to be a failure). Nothing happens
/// when that window is gone.
pub async fn unhit(conn: &mut Conn, key: &str, window_start: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1 \
         WHERE key = $1 AND window_start = $2 AND failures > 0",
    )
    .bind(key)
    .bind(window_start)
    .execute(&mut *conn)
    .await?;
    // A window left with no failures never was one: closing it keeps its age
    // (which `Retry-After` would show) from telling of a successful login.
    sqlx::query(
        "DELETE FROM login_throttle WHERE key = $1 AND window_start = $2 AND failures <= 0",
    )
    .bind(key)
    .bind(window_start)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the audit bit `bit` of the window opened at `window_start`. True for
/// exactly one caller per key, window and bit: the one that must write the
/// audit entry.
pub async fn claim_audit(
    conn: &mut Conn,
    key: &str,
    window_start: &str,
    bit: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE login_throttle SET audited = audited | $3 \
         WHERE key = $1 AND window_start = $2 AND (audited & $3) = 0",
    )
    .bind(key)
    .bind(window_start)
    .bind(bit)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes at most `limit` rows whose window opened at or before
/// `expired_before`; returns how many.
pub async fn prune(conn: &mut Conn, expired_before: &str, limit: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM login_throttle WHERE key IN \
         (SELECT key FROM login_throttle WHERE window_start <= $1 LIMIT $2)",
    )
    .bind(expired_before)
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
