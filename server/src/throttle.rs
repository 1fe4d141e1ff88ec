//! Login throttling, shared by every replica through the database.
//!
//! Each password login attempt is counted before the password is checked, per
//! account (the normalized email, whether or not such a user exists) and per
//! client address, in fixed windows that open at a key's first counted attempt
//! and last `login_failure_window_seconds`. An attempt whose count goes past a
//! limit is refused with 429 and a `Retry-After` of the seconds until that
//! window ends, without looking at the password or writing an audit entry.
//! An attempt that succeeds withdraws its own count; it does not reset the
//! counters (see `docs/security.md`). A failed attempt stays counted, and the
//! first failure of each kind per account and window is audited.
//!
//! Counting first and checking after makes the limit hold under concurrency:
//! two replicas (or a hundred parallel requests) cannot both take the last
//! allowed attempt, because each upsert returns the count including itself.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use orgsync_policy::{Action, Resource};

use crate::authz::Permit;
use crate::clock;
use crate::config::ServerConfig;
use crate::error::Result;
use crate::secrets::sha256_hex;
use crate::store::login_throttle::{self as store, Count};
use crate::usecase::{Caller, Ctx, Work};

/// Expired rows deleted at most per pruning (one pruning per window opened).
const PRUNE_BATCH: i64 = 100;

/// The limits of [`ServerConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures per account in a window; 0: no limit.
    pub per_account: u32,
    /// Failures per client address in a window; 0: no limit.
    pub per_address: u32,
    pub window: Duration,
}

impl Limits {
    pub fn of(config: &ServerConfig) -> Limits {
        Limits {
            per_account: config.login_max_failures_per_account,
            per_address: config.login_max_failures_per_address,
            window: Duration::seconds(
                i64::try_from(config.login_failure_window_seconds).unwrap_or(i64::MAX / 2_000),
            ),
        }
    }
}

/// The account key of a login: the email as typed, trimmed and lowercased (the
/// way users are looked up), hashed so that no typed text is stored.
pub fn account_key(email: &str) -> String {
    format!("account:{}", sha256_hex(&email.trim().to_lowercase()))
}

/// The address key of a client: an IPv4 address, or the /64 prefix of an IPv6
/// address (one host usually holds a whole /64).
pub fn address_key(addr: Option<IpAddr>) -> String {
    match addr.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => format!("address:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("address:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "address:unknown".to_owned(),
    }
}

/// Seconds from `now` until the window opened at `window_start` ends, rounded
/// up, at least 1 (a `Retry-After` value).
pub fn retry_after(window_start: &str, window: Duration, now: DateTime<Utc>) -> u64 {
    let end = clock::parse(window_start).unwrap_or(now) + window;
    let ms = (end - now).num_milliseconds().max(1);
    u64::try_from((ms + 999) / 1000).unwrap_or(1)
}

/// Whether a count is past `limit` (0: no limit).
fn over(count: &Count, limit: u32) -> bool {
    limit > 0 && count.failures > i64::from(limit)
}

/// What a counted attempt may do.
#[derive(Debug)]
pub enum Verdict {
    /// Check the password; then report the outcome on the attempt.
    Proceed(Attempt),
    /// Refuse with 429 and `Retry-After: retry_after`.
    Throttled { retry_after: u64 },
}

/// A counted login attempt that may check the password.
#[derive(Debug)]
pub struct Attempt {
    account: (String, Count),
    address: (String, Count),
}

/// Why a login failed, as far as auditing goes: each kind is audited at most
/// once per account and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Unknown account, wrong password, or an account without a password.
    Credentials,
    /// The right password of a suspended account.
    Suspended,
}

impl Failure {
    fn audit_bit(self) -> i64 {
        match self {
            Failure::Credentials => 1,
            Failure::Suspended => 2,
        }
    }
}

/// A short transaction of the counters' own, committed at once (so every
/// replica sees a count before the password is checked), on the authority
/// of the login (`caller`: [`System::PasswordLogin`]) for what it attempts:
/// `user:create_token`.
///
/// [`System::PasswordLogin`]: crate::authz::System::PasswordLogin
async fn counting<'a>(ctx: Ctx<'a>, caller: &'a Caller) -> Result<(Work<'a>, Permit)> {
    let work = Work::begin(ctx, caller).await?;
    let permit = work.require(Action::USER_CREATE_TOKEN, &Resource::site(), "login")?;
    Ok((work, permit))
}

/// Counts a login attempt for `email` from `addr` and decides whether it may
/// check the password.
pub async fn attempt(
    ctx: Ctx<'_>,
    caller: &Caller,
    limits: Limits,
    email: &str,
    addr: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let now_s = clock::fmt(now);
    let expired_before = clock::fmt(now - limits.window);
    let account_key = account_key(email);
    let address_key = address_key(addr);
    let (mut work, permit) = counting(ctx, caller).await?;
    let mut w = work.write(&permit)?;
    // The address first: an address past its limit counts against no account
    // (it could otherwise lock out any account it names) and opens no rows.
    let address = store::hit(&mut w, &address_key, &now_s, &expired_before).await?;
    if over(&address, limits.per_address) {
        work.commit().await?;
        warn_once("address", &address, limits.per_address, addr);
        return Ok(Verdict::Throttled {
            retry_after: retry_after(&address.window_start, limits.window, now),
        });
    }
    let account = store::hit(&mut w, &account_key, &now_s, &expired_before).await?;
    work.commit().await?;
    if account.window_start == now_s || address.window_start == now_s {
        // A window opened: a good moment to drop a bounded batch of old rows
        // (on its own, so it never waits for a row a counting holds).
        let (mut work, permit) = counting(ctx, caller).await?;
        store::prune(&mut work.write(&permit)?, &expired_before, PRUNE_BATCH).await?;
        work.commit().await?;
    }
    let retry = over(&account, limits.per_account).then(|| {
        warn_once("account", &account, limits.per_account, addr);
        retry_after(&account.window_start, limits.window, now)
    });
    Ok(match retry {
        Some(retry_after) => Verdict::Throttled { retry_after },
        None => Verdict::Proceed(Attempt {
            account: (account_key, account),
            address: (address_key, address),
        }),
    })
}

/// Logs once per window, when a key first goes past its limit.
fn warn_once(scope: &str, count: &Count, limit: u32, addr: Option<IpAddr>) {
    if count.failures == i64::from(limit) + 1 {
        tracing::warn!(
            scope,
            address = %addr.map(|a| a.to_string()).unwrap_or_default(),
            limit,
            "too many failed logins: throttling until the window ends"
        );
    }
}

impl Attempt {
    /// The login succeeded: its attempt no longer counts.
    pub async fn succeeded(self, ctx: Ctx<'_>, caller: &Caller) -> Result<()> {
        let (mut work, permit) = counting(ctx, caller).await?;
        let mut w = work.write(&permit)?;
        // The address first, as counted: two transactions never wait for
        // each other's rows.
        for (key, count) in [&self.address, &self.account] {
            store::unhit(&mut w, key, &count.window_start).await?;
        }
        work.commit().await
    }

    /// The login failed (it stays counted): whether this failure is the one
    /// of its kind to audit in the account's window.
    pub async fn failed(&self, ctx: Ctx<'_>, caller: &Caller, failure: Failure) -> Result<bool> {
        let (mut work, permit) = counting(ctx, caller).await?;
        let (key, count) = &self.account;
        let bit = failure.audit_bit();
        let first =
            store::claim_audit(&mut work.write(&permit)?, key, &count.window_start, bit).await?;
        work.commit().await?;
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        clock::parse(s).unwrap_or_default()
    }

    #[test]
    fn keys_hide_typed_text_and_group_ipv6() {
        assert_eq!(
            account_key(" Alice@Example.COM "),
            account_key("alice@example.com")
        );
        assert!(!account_key("<script>x").contains("script"));
        let v4: IpAddr = [192, 0, 2, 7].into();
        assert_eq!(address_key(Some(v4)), "address:192.0.2.7");
        let mapped = "::ffff:192.0.2.7".parse::<IpAddr>().ok();
        assert_eq!(address_key(mapped), "address:192.0.2.7");
        let a = "2001:db8:1:2:aaaa::1".parse::<IpAddr>().ok();
        let b = "2001:db8:1:2:bbbb::9".parse::<IpAddr>().ok();
        assert_eq!(address_key(a), "address:2001:db8:1:2::/64");
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key(None), "address:unknown");
    }

    #[test]
    fn retry_after_counts_down_to_the_window_end() {
        let w = Duration::seconds(300);
        let start = "2026-01-01T00:00:00.000000Z";
        assert_eq!(retry_after(start, w, at("2026-01-01T00:00:00Z")), 300);
        assert_eq!(retry_after(start, w, at("2026-01-01T00:04:59.200Z")), 1);
        assert_eq!(retry_after(start, w, at("2026-01-01T00:01:00.5Z")), 240);
        // Past the end (a race with the window's reset): still at least 1.
        assert_eq!(retry_after(start, w, at("2026-01-01T01:00:00Z")), 1);
    }

    #[test]
    fn limits_are_exceeded_past_the_count_and_zero_is_none() {
        let c = |failures| Count {
            failures,
            window_start: String::new(),
        };
        assert!(!over(&c(10), 10));
        assert!(over(&c(11), 10));
        assert!(!over(&c(1_000), 0));
    }
}
