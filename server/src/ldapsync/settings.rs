//! The directory sync settings: stored as one deployment setting, served
//! without the bind password, applied from the config file at start, and
//! the fingerprint of everything a plan depends on besides the directory
//! (which decides whether a run may be incremental).

use chrono::{DateTime, Utc};
use orgsync_sync::ldap::LdapSettings;
use serde_json::{Value, json};

use orgsync_policy::{Action, Resource};

use super::{DirectorySync, SETTINGS_KEY, Stats};
use crate::authz::{Permit, System};
use crate::clock;
use crate::error::Result;
use crate::store::{self, Conn, Write, directory_runs};
use crate::usecase::{Caller, Ctx, Work};

/// The stored settings (the defaults when absent or unreadable).
pub async fn load_settings(conn: &mut Conn) -> sqlx::Result<LdapSettings> {
    Ok(store::settings::get_deployment(conn, SETTINGS_KEY)
        .await?
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

pub async fn store_settings(w: &mut Write<'_>, s: &LdapSettings, now: &str) -> sqlx::Result<()> {
    let value = serde_json::to_string(s).unwrap_or_else(|_| "{}".to_owned());
    store::settings::put_deployment(w, SETTINGS_KEY, &value, now).await
}

/// Applies the config file's `[ldapsync]` settings at start when they differ
/// from the stored ones, on the authority of [`System::Config`] (audited with
/// source `config`).
pub async fn apply_file_settings(
    ctx: Ctx<'_>,
    file: &LdapSettings,
    now: DateTime<Utc>,
) -> Result<()> {
    let caller = Caller::system(System::Config);
    let mut work = Work::begin_at(ctx, &caller, now).await?;
    let old = load_settings(work.conn()).await?;
    if old == *file {
        return Ok(());
    }
    let permit = work.require(
        Action::DEPLOYMENT_SYNC_UPDATE,
        &Resource::site(),
        "settings",
    )?;
    replace_settings(&mut work, &permit, &old, file).await?;
    work.commit().await
}

/// Stores `new` in place of `old` with its audit row (none when nothing
/// changed), in the operation's transaction.
pub async fn replace_settings(
    work: &mut Work<'_>,
    permit: &Permit,
    old: &LdapSettings,
    new: &LdapSettings,
) -> Result<()> {
    let now_s = work.now_s.clone();
    store_settings(&mut work.write(permit)?, new, &now_s).await?;
    let mut diff = crate::audit::diff(&public_settings(old), &public_settings(new));
    if old.bind_password != new.bind_password
        && let Value::Object(d) = &mut diff
    {
        // The secret itself never reaches the audit log.
        d.insert(
            "bind_password".to_owned(),
            json!({"old": "(redacted)", "new": "(changed)"}),
        );
    }
    if diff.as_object().is_some_and(|d| !d.is_empty()) {
        let change = crate::audit::Change {
            organization_id: None,
            action: "update",
            resource_type: "ldapsync_settings",
            resource_id: "deployment",
            resource_target: SETTINGS_KEY,
            diff,
            status_code: 200,
        };
        work.audit(permit, change).await?;
    }
    Ok(())
}

/// The settings as served: everything but the bind password, which is
/// write-only (`bind_password_set` tells whether one is stored).
pub fn public_settings(s: &LdapSettings) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.remove("bind_password");
        m.insert(
            "bind_password_set".to_owned(),
            Value::Bool(!s.bind_password.is_empty()),
        );
    }
    v
}

impl DirectorySync {
    /// The stored settings.
    pub async fn settings(&self) -> sqlx::Result<LdapSettings> {
        let mut conn = self.db.pool().acquire().await?;
        load_settings(&mut conn).await
    }
}

/// Full when no full run succeeded within `full_sync_interval`, or when no
/// run succeeded at all.
pub(super) async fn full_run_due(
    conn: &mut Conn,
    settings: &LdapSettings,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let last_full = directory_runs::last_success_start(conn, true).await?;
    let Some(last) = last_full.as_deref().and_then(clock::parse) else {
        return Ok(true);
    };
    let interval = settings
        .full_sync_interval()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or_else(|| chrono::Duration::hours(24));
    Ok(now - last >= interval)
}

/// A digest of everything a plan depends on besides the directory: the LDAP
/// settings that shape claims, the IdP sync settings, and the organizations
/// and groups. When it differs from the last successful run's, the next run
/// is full (an incremental one would miss users the change affects).
pub(super) async fn fingerprint(conn: &mut Conn, ldap: &LdapSettings) -> sqlx::Result<String> {
    use sha2::Digest as _;
    let (sync, mut world, _) = crate::idpsync::inputs(conn, None).await?;
    world.orgs.sort_by(|a, b| a.id.cmp(&b.id));
    world.groups.sort_by(|a, b| a.id.cmp(&b.id));
    let shaping = json!({
        "user_base_dn": ldap.user_base_dn, "user_filter": ldap.user_filter,
        "user_attributes": ldap.user_attributes, "group_base_dn": ldap.group_base_dn,
        "group_filter": ldap.group_filter, "group_name_attribute": ldap.group_name_attribute,
        "membership": ldap.membership, "nested_groups": ldap.nested_groups, "claims": ldap.claims,
        "url": ldap.url,
    });
    let text = json!([shaping, sync, world]).to_string();
    Ok(hex::encode(sha2::Sha256::digest(text.as_bytes())))
}

/// The fingerprint the last successful run planned with.
pub(super) async fn last_fingerprint(conn: &mut Conn) -> sqlx::Result<Option<String>> {
    Ok(directory_runs::last_success_stats(conn)
        .await?
        .and_then(|s| serde_json::from_str::<Stats>(&s).ok())
        .map(|s| s.settings_fingerprint))
}
