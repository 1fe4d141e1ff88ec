//! The LDAP directory source of an LDAP sync run (SPEC §5).
//!
//! [`read_directory`] connects (ldap://, ldaps:// or StartTLS), binds, reads
//! every group and user with Simple Paged Results, resolves nested groups
//! (cycles terminate: every group of a cycle gets the union), and computes each
//! user's claims as [`LdapSettings::claims`] says, so the server plans LDAP
//! users with the same org/group/role sync settings as OIDC logins. Any LDAP
//! result other than success (size or time limit, referral, server gone) fails
//! the whole read: there is never a partial [`Directory`].
//!
//! # Decisions
//!
//! - **TLS trust**: with `ca_file`, exactly the certificates of that PEM file
//!   are trusted; without it, the system's roots (`rustls-native-certs`).
//! - **Incremental reads** read every user and group entry (with their
//!   timestamps) in the same paged searches as a full read (10k users take
//!   ~0.13 s), so problems and `present_ids` are always complete; only the
//!   returned `users` are limited to the affected ones (see [`ReadMode`]).
//! - **Group nesting** follows `member` values that name groups (when
//!   `member` is a membership type) and groups' own `memberOf` (when `memberOf`
//!   is); `memberUid` does not nest.
//! - Attribute names and DNs compare case-insensitively; `memberUid` values
//!   match usernames case-insensitively.

mod dn;
mod read;
mod resolve;

pub use dn::escape_filter_value;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// The membership types [`LdapSettings::membership`] may list.
pub const MEMBERSHIP_TYPES: [&str; 3] = ["member", "memberUid", "memberOf"];

/// The claim value meaning "the names of the user's groups".
pub const GROUPS_CLAIM: &str = "groups";

/// Connection timeout: an unreachable server fails fast.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Timeout of one LDAP operation (a bind, one page of a search).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// LDAP sync settings (SPEC §5), as stored and edited through the API.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapSettings {
    pub enabled: bool,
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub start_tls: bool,
    /// PEM file of the CA certificates to trust (else the system's roots).
    pub ca_file: Option<String>,
    /// Empty for an anonymous bind.
    pub bind_dn: String,
    pub bind_password: String,
    pub user_base_dn: String,
    pub user_filter: String,
    pub user_attributes: UserAttributes,
    pub group_base_dn: String,
    pub group_filter: String,
    pub group_name_attribute: String,
    /// Any of `member`, `memberUid`, `memberOf`.
    pub membership: Vec<String>,
    pub nested_groups: bool,
    pub page_size: u32,
    /// Cron expression with a seconds field (`cron` crate syntax).
    pub schedule: String,
    /// `90s`, `15m`, `24h`, `7d`.
    pub full_sync_interval: String,
    /// Claim name -> `groups` (the user's group names) or a user attribute.
    pub claims: BTreeMap<String, String>,
    pub max_removal_percent: f64,
}

/// Which user attributes give the username, email, name and unique id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserAttributes {
    pub username: String,
    pub email: String,
    pub name: String,
    /// `entryUUID`, `objectGUID` (binary: hex-encoded), `nsUniqueId`, ...
    pub id: String,
}

impl Default for UserAttributes {
    fn default() -> Self {
        UserAttributes {
            username: "uid".to_owned(),
            email: "mail".to_owned(),
            name: "cn".to_owned(),
            id: "entryUUID".to_owned(),
        }
    }
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            enabled: false,
            url: String::new(),
            start_tls: false,
            ca_file: None,
            bind_dn: String::new(),
            bind_password: String::new(),
            user_base_dn: String::new(),
            user_filter: "(objectClass=inetOrgPerson)".to_owned(),
            user_attributes: UserAttributes::default(),
            group_base_dn: String::new(),
            group_filter: "(|(objectClass=groupOfNames)(objectClass=posixGroup))".to_owned(),
            group_name_attribute: "cn".to_owned(),
            membership: MEMBERSHIP_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            nested_groups: true,
            page_size: 500,
            schedule: "0 */15 * * * *".to_owned(),
            full_sync_interval: "24h".to_owned(),
            claims: BTreeMap::from([(GROUPS_CLAIM.to_owned(), GROUPS_CLAIM.to_owned())]),
            max_removal_percent: 10.0,
        }
    }
}

impl fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapSettings")
            .field("enabled", &self.enabled)
            .field("url", &self.url)
            .field("start_tls", &self.start_tls)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &if self.bind_password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("user_base_dn", &self.user_base_dn)
            .field("user_filter", &self.user_filter)
            .field("user_attributes", &self.user_attributes)
            .field("group_base_dn", &self.group_base_dn)
            .field("group_filter", &self.group_filter)
            .field("group_name_attribute", &self.group_name_attribute)
            .field("membership", &self.membership)
            .field("nested_groups", &self.nested_groups)
            .field("page_size", &self.page_size)
            .field("schedule", &self.schedule)
            .field("full_sync_interval", &self.full_sync_interval)
            .field("claims", &self.claims)
            .field("max_removal_percent", &self.max_removal_percent)
            .finish()
    }
}

fn err(errors: &mut Vec<FieldError>, field: &str, detail: impl Into<String>) {
    errors.push(FieldError {
        field: field.to_owned(),
        detail: detail.into(),
    });
}

/// Parses `90s`, `15m`, `24h`, `7d` (a positive whole number and one unit).
pub fn parse_interval(s: &str) -> Option<Duration> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Checks an `ldap://` / `ldaps://` URL: scheme, host, optional port, nothing
/// else. Returns whether it is `ldaps`.
fn check_url(url: &str) -> Result<bool, String> {
    let (ldaps, rest) = if let Some(r) = url.strip_prefix("ldaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ldap://") {
        (false, r)
    } else {
        return Err(format!("`{url}` must start with ldap:// or ldaps://"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let Some((h, after)) = r.split_once(']') else {
            return Err(format!("`{url}` has an unterminated IPv6 address"));
        };
        let port = if after.is_empty() {
            None
        } else if let Some(p) = after.strip_prefix(':') {
            Some(p)
        } else {
            return Err(format!("`{url}` has an invalid host"));
        };
        (h, port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')))
    {
        return Err(format!(
            "`{url}` has an invalid host (no path, query or credentials)"
        ));
    }
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("`{url}` has an invalid port")),
        }
    }
    Ok(ldaps)
}

impl LdapSettings {
    /// Every problem at once. Connection fields (url, base DNs) must be set
    /// only when `enabled`; whatever is set is always checked.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        // url / TLS
        if self.url.trim().is_empty() {
            if self.enabled {
                err(e, "url", "is required when LDAP sync is enabled");
            }
        } else {
            match check_url(&self.url) {
                Ok(true) if self.start_tls => err(
                    e,
                    "start_tls",
                    "StartTLS needs an ldap:// url; ldaps:// is already TLS",
                ),
                Ok(_) => {}
                Err(d) => err(e, "url", d),
            }
        }
        if let Some(ca) = &self.ca_file {
            if ca.trim().is_empty() {
                err(
                    e,
                    "ca_file",
                    "must not be empty; use null for the system's roots",
                );
            } else if let Err(d) = read::load_ca(ca) {
                err(e, "ca_file", d);
            }
        }
        // DNs
        for (field, value, required) in [
            ("bind_dn", &self.bind_dn, false),
            ("user_base_dn", &self.user_base_dn, true),
            ("group_base_dn", &self.group_base_dn, true),
        ] {
            if value.trim().is_empty() {
                if required && self.enabled {
                    err(e, field, "is required when LDAP sync is enabled");
                }
            } else if let Err(d) = dn::parse_dn(value) {
                err(e, field, format!("`{value}` is not a valid DN: {d}"));
            }
        }
        if self.enabled && !self.bind_dn.trim().is_empty() && self.bind_password.is_empty() {
            err(
                e,
                "bind_password",
                "is required with a bind_dn (an empty password is an unauthenticated bind)",
            );
        }
        // filters
        for (field, value) in [
            ("user_filter", &self.user_filter),
            ("group_filter", &self.group_filter),
        ] {
            if let Err(d) = dn::check_filter(value) {
                err(e, field, d);
            }
        }
        // attribute names
        for (field, value) in [
            ("user_attributes.username", &self.user_attributes.username),
            ("user_attributes.email", &self.user_attributes.email),
            ("user_attributes.name", &self.user_attributes.name),
            ("user_attributes.id", &self.user_attributes.id),
            ("group_name_attribute", &self.group_name_attribute),
        ] {
            if value.is_empty() {
                err(e, field, "must not be empty");
            } else if !dn::is_attribute_description(value) {
                err(e, field, format!("`{value}` is not a valid attribute name"));
            }
        }
        // membership
        let mut seen = BTreeSet::new();
        for m in &self.membership {
            if !MEMBERSHIP_TYPES.contains(&m.as_str()) {
                err(
                    e,
                    "membership",
                    format!("`{m}` is not one of `member`, `memberUid`, `memberOf`"),
                );
            } else if !seen.insert(m) {
                err(e, "membership", format!("`{m}` is listed twice"));
            }
        }
        if !(1..=10_000).contains(&self.page_size) {
            err(
                e,
                "page_size",
                format!("{} is not within 1..=10000", self.page_size),
            );
        }
        if let Err(d) = cron::Schedule::from_str(&self.schedule) {
            err(
                e,
                "schedule",
                format!(
                    "`{}` is not a cron expression with seconds \
                     (sec min hour day month weekday [year]): {d}",
                    self.schedule
                ),
            );
        }
        if parse_interval(&self.full_sync_interval).is_none() {
            err(
                e,
                "full_sync_interval",
                format!(
                    "`{}` is not a duration such as `90s`, `15m`, `24h` or `7d`",
                    self.full_sync_interval
                ),
            );
        }
        if !self.max_removal_percent.is_finite()
            || !(0.0..=100.0).contains(&self.max_removal_percent)
        {
            err(e, "max_removal_percent", "must be within 0..=100");
        }
        for (claim, source) in &self.claims {
            let field = format!("claims[\"{claim}\"]");
            if claim.trim().is_empty() {
                err(e, "claims", "a claim name must not be empty");
            }
            if source.is_empty() {
                err(e, &field, "must be `groups` or a user attribute name");
            } else if source != GROUPS_CLAIM && !dn::is_attribute_description(source) {
                err(
                    e,
                    &field,
                    format!("`{source}` is not a valid attribute name"),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// `full_sync_interval` as a duration (`None` when it does not parse).
    pub fn full_sync_interval(&self) -> Option<Duration> {
        parse_interval(&self.full_sync_interval)
    }

    fn has_membership(&self, kind: &str) -> bool {
        self.membership.iter().any(|m| m == kind)
    }
}

/// What [`read_directory`] reads.
#[derive(Clone, Debug)]
pub enum ReadMode {
    Full,
    /// Changes since `since` (an LDAP GeneralizedTime like `20261129061500Z`;
    /// the caller passes the previous successful run's start minus an overlap).
    /// `known`: the caller's users from earlier runs: directory id -> the
    /// [`group_names_digest`] of the group names of their last `groups`-type
    /// claims (a digest keeps this small at 100,000 users).
    ///
    /// The affected users are: users whose entry was created or modified at or
    /// after `since`; users not in `known`; users who are (directly or through
    /// nesting) members of a group created or modified at or after `since`;
    /// known users whose last group names differ from their current ones
    /// (this covers removals from groups and deleted groups).
    Incremental {
        since: String,
        known: HashMap<String, u64>,
    },
}

/// Progress of a read, reported at least once per page.
#[derive(Clone, Debug, Default)]
pub struct ReadProgress {
    pub users_read: usize,
    pub groups_read: usize,
}

/// One user of the directory, with the claims the sync plans with.
#[derive(Clone, Debug, Serialize)]
pub struct DirectoryUser {
    pub dn: String,
    /// The value of `user_attributes.id` (binary values hex-encoded).
    pub id: String,
    pub username: String,
    /// `""` when absent.
    pub email: String,
    /// `""` when absent.
    pub name: String,
    /// `groups`-type claims: sorted group names (nested included); attribute
    /// claims: a string when one value, an array when several, absent when none.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// An entry the sync skipped or something odd in the data.
#[derive(Clone, Debug, Serialize)]
pub struct DirectoryProblem {
    pub dn: String,
    /// `missing_attribute`, `duplicate_username`, `duplicate_id`,
    /// `invalid_value`, `group_cycle`.
    pub kind: String,
    pub detail: String,
}

/// The result of a read. Users are kept compact (their strings, their direct
/// groups as indexes, the values of the attributes claims read);
/// [`Directory::user`] builds one user with its claims when asked, so a
/// caller can go through 100,000 users without holding them all as JSON.
#[derive(Clone, Debug)]
pub struct Directory {
    /// Full: every valid user. Incremental: only the affected users. Sorted
    /// by lowercased username.
    entries: Vec<resolve::Entry>,
    group_names: Vec<Box<str>>,
    /// Per group: itself and every group it is nested in.
    ancestors: Vec<Box<[u32]>>,
    claims: Vec<(String, resolve::Source)>,
    /// Ids of every user entry that has an id, including skipped ones.
    pub present_ids: BTreeSet<String>,
    pub groups_seen: usize,
    pub full: bool,
    pub problems: Vec<DirectoryProblem>,
}

impl Directory {
    /// How many users [`Directory::user`] serves.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The directory id of user `i` (without building its claims).
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn id(&self, i: usize) -> &str {
        &self.entries[i].id
    }

    /// User `i` (`0..len()`, in username order) with complete, fresh claims:
    /// `groups`-type claims are the sorted names of its groups (nesting
    /// included); attribute claims are a string for one value, an array for
    /// several, absent for none.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn user(&self, i: usize) -> DirectoryUser {
        let e = &self.entries[i];
        let mut claims = serde_json::Map::new();
        let mut names: Option<Vec<serde_json::Value>> = None;
        for (claim, source) in &self.claims {
            match source {
                resolve::Source::Groups => {
                    let names = names.get_or_insert_with(|| {
                        let all = self.all_groups(e);
                        let set: BTreeSet<&str> = self.names(&all).collect();
                        set.into_iter()
                            .map(|n| serde_json::Value::String(n.to_owned()))
                            .collect()
                    });
                    claims.insert(claim.clone(), serde_json::Value::Array(names.clone()));
                }
                resolve::Source::Attribute(k) => {
                    let values = e.values.get(*k).map_or(&[][..], |v| &v[..]);
                    match values {
                        [] => {}
                        [one] => {
                            claims
                                .insert(claim.clone(), serde_json::Value::String(one.to_string()));
                        }
                        many => {
                            claims.insert(
                                claim.clone(),
                                serde_json::Value::Array(
                                    many.iter()
                                        .map(|v| serde_json::Value::String(v.to_string()))
                                        .collect(),
                                ),
                            );
                        }
                    }
                }
            }
        }
        DirectoryUser {
            dn: e.dn.to_string(),
            id: e.id.to_string(),
            username: e.username.to_string(),
            email: e.email.to_string(),
            name: e.name.to_string(),
            claims,
        }
    }

    /// Every user, built one at a time (see [`Directory::user`]).
    pub fn users(&self) -> impl ExactSizeIterator<Item = DirectoryUser> + '_ {
        (0..self.len()).map(|i| self.user(i))
    }
}

/// A digest of a set of group names (order and duplicates do not matter):
/// what an incremental read compares a known user's last group names with
/// (see [`ReadMode::Incremental`]). FNV-1a, 64 bits, stable across versions.
pub fn group_names_digest<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    let set: BTreeSet<&str> = names.into_iter().collect();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for name in set {
        // 0xff never occurs in UTF-8: an unambiguous separator.
        for b in name.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Why a read failed. Messages are for operators; they never contain the bind
/// password.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("invalid ldap settings: {}", join_fields(.0))]
    InvalidSettings(Vec<FieldError>),
    #[error(
        "invalid incremental `since` `{0}`: expected a GeneralizedTime such as 20261129061500Z"
    )]
    InvalidSince(String),
    #[error("cannot connect to `{url}`: {detail}")]
    Connect { url: String, detail: String },
    #[error("tls failure with `{url}`: {detail}")]
    Tls { url: String, detail: String },
    #[error("bind failed for `{bind_dn}`: {} (rc {rc}){}", rc_name(*.rc), text_suffix(.text))]
    Bind {
        bind_dn: String,
        rc: u32,
        text: String,
    },
    #[error("search of `{base}` failed: {} (rc {rc}){}", rc_name(*.rc), text_suffix(.text))]
    Search { base: String, rc: u32, text: String },
    #[error("search of `{base}` returned referrals, which are not followed: {}", .refs.join(", "))]
    Referral { base: String, refs: Vec<String> },
    #[error("connection to `{url}` lost while reading {what}: {detail}")]
    ConnectionLost {
        url: String,
        what: String,
        detail: String,
    },
    #[error("internal error while reading the directory: {0}")]
    Internal(String),
}

fn join_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

fn text_suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The name of an LDAP result code (RFC 4511), in words.
pub fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operations error",
        2 => "protocol error",
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        7 => "auth method not supported",
        8 => "stronger auth required",
        10 => "referral",
        11 => "admin limit exceeded",
        12 => "unavailable critical extension",
        13 => "confidentiality required",
        14 => "sasl bind in progress",
        16 => "no such attribute",
        17 => "undefined attribute type",
        18 => "inappropriate matching",
        32 => "no such object",
        34 => "invalid DN syntax",
        48 => "inappropriate authentication",
        49 => "invalid credentials",
        50 => "insufficient access rights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwilling to perform",
        54 => "loop detected",
        80 => "other",
        85 => "timeout",
        88 => "user cancelled",
        _ => "unknown result",
    }
}

/// Reads users and groups, resolves nesting and computes claims. Runs the
/// ldap3 work in a spawned task (a panic there becomes
/// [`LdapError::Internal`]). `progress` is called at least once per page.
pub async fn read_directory(
    settings: &LdapSettings,
    mode: ReadMode,
    progress: Arc<dyn Fn(ReadProgress) + Send + Sync>,
) -> Result<Directory, LdapError> {
    settings.validate().map_err(LdapError::InvalidSettings)?;
    let since = match &mode {
        ReadMode::Full => None,
        ReadMode::Incremental { since, .. } => Some(
            resolve::normalize_time(since).ok_or_else(|| LdapError::InvalidSince(since.clone()))?,
        ),
    };
    let s = settings.clone();
    let incremental = since.is_some();
    let mut builder = resolve::Builder::new(settings, since);
    // Entries are folded into the builder page by page: a raw entry never
    // outlives its page.
    let builder = tokio::spawn(async move {
        read::read_into(&s, incremental, progress, &mut builder)
            .await
            .map(|()| builder)
    })
    .await
    .map_err(|e| join_error(&e))??;
    let known = match mode {
        ReadMode::Full => None,
        ReadMode::Incremental { known, .. } => Some(known),
    };
    // Duplicates, sorting and the incremental filter are pure CPU work on
    // owned data; keep them off the async worker.
    tokio::task::spawn_blocking(move || builder.finish(known.as_ref()))
        .await
        .map_err(|e| join_error(&e))
}

/// Connects and binds only (a "test connection").
pub async fn check_connection(settings: &LdapSettings) -> Result<(), LdapError> {
    settings.validate().map_err(LdapError::InvalidSettings)?;
    let s = settings.clone();
    tokio::spawn(async move {
        let mut ldap = read::connect_and_bind(&s).await?;
        let _ = ldap.unbind().await;
        Ok(())
    })
    .await
    .map_err(|e| join_error(&e))?
}

fn join_error(e: &tokio::task::JoinError) -> LdapError {
    if e.is_panic() {
        LdapError::Internal("the directory read panicked (malformed data from the server?)".into())
    } else {
        LdapError::Internal("the directory read was cancelled".into())
    }
}
