//! The directory (LDAP) sync as its administrators use it: the settings (the
//! bind password write-only), the runs, and starting one. Every entry point
//! (the API, the console) calls these; the runs themselves are the
//! [`DirectorySync`] service's, on its own authority.

use orgsync_policy::{Action, Resource};
use orgsync_sync::FieldError;
use orgsync_sync::ldap::LdapSettings;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::idpsync::invalid;
use super::{Caller, Ctx, Page, Work};
use crate::error::{Error, Result};
use crate::ldapsync::{self, DirectorySync, Run, RunRequest, StartError, Trigger};
use crate::store;

/// Decides `action` on the deployment's settings for a read.
fn require(ctx: Ctx<'_>, caller: &Caller, action: Action) -> Result<()> {
    caller.require(ctx.authz, action, &Resource::site(), "settings")?;
    Ok(())
}

/// The settings as served: without the bind password (`bind_password_set`
/// tells whether one is stored).
pub async fn settings(ctx: Ctx<'_>, caller: &Caller) -> Result<Value> {
    require(ctx, caller, Action::DEPLOYMENT_SYNC_READ)?;
    let mut conn = ctx.conn().await?;
    let s = ldapsync::load_settings(&mut conn).await?;
    Ok(ldapsync::public_settings(&s))
}

/// Replaces the settings with `body` (absent fields take their defaults), in
/// one transaction: what is replaced is what was read. A missing or null
/// `bind_password` keeps the stored one, `""` clears it; the stored password
/// is never kept for another server (`url`, `bind_dn`, `start_tls` or
/// `ca_file` changed). The directory is a source of identity for every
/// account without a password, so who configures it must be allowed every
/// grant its settings can make.
pub async fn replace_settings(
    ctx: Ctx<'_>,
    caller: &Caller,
    mut body: Map<String, Value>,
) -> Result<Value> {
    let mut work = Work::begin(ctx, caller).await?;
    let permit = work.require(
        Action::DEPLOYMENT_SYNC_UPDATE,
        &Resource::site(),
        "settings",
    )?;
    // Served back, so tolerated on the way in.
    body.remove("bind_password_set");
    let old = ldapsync::load_settings(work.conn()).await?;
    let keep_password = body.get("bind_password").is_none_or(Value::is_null);
    if keep_password {
        body.insert(
            "bind_password".to_owned(),
            Value::String(old.bind_password.clone()),
        );
    }
    let new: LdapSettings = serde_json::from_value(Value::Object(body)).map_err(|e| {
        let detail = e.to_string();
        let field = detail.split('`').nth(1).unwrap_or("body").to_owned();
        invalid(vec![FieldError { field, detail }])
    })?;
    let moved = new.url != old.url
        || new.bind_dn != old.bind_dn
        || new.start_tls != old.start_tls
        || new.ca_file != old.ca_file;
    if keep_password && moved && !old.bind_password.is_empty() {
        return Err(invalid(vec![FieldError {
            field: "bind_password".to_owned(),
            detail: "must be given again when `url`, `bind_dn`, `start_tls` or `ca_file` \
                     change: the stored password is never sent to another server unasked"
                .to_owned(),
        }]));
    }
    new.validate().map_err(invalid)?;
    let grants = crate::idpsync::directory_grants(work.conn()).await?;
    work.require_grants(
        &grants,
        "the directory sync settings (the directory feeds the claims every sync setting reads, \
         and links, renames and suspends the accounts without a password it shows)",
    )?;
    ldapsync::replace_settings(&mut work, &permit, &old, &new).await?;
    work.commit().await?;
    Ok(ldapsync::public_settings(&new))
}

/// The runs, newest first, and how many there are.
pub async fn runs(sync: &DirectorySync, caller: &Caller, page: Page) -> Result<(Vec<Run>, i64)> {
    require(sync.ctx(), caller, Action::DEPLOYMENT_SYNC_READ)?;
    let (limit, offset) = page.resolve(25, 500)?;
    Ok(sync.list_runs(limit, offset, crate::clock::now()).await?)
}

/// One run, with its progress while it runs and the plan of a dry or aborted
/// run.
pub async fn run(sync: &DirectorySync, caller: &Caller, id: &str) -> Result<Run> {
    require(sync.ctx(), caller, Action::DEPLOYMENT_SYNC_READ)?;
    sync.get_run(id, crate::clock::now())
        .await?
        .ok_or_else(|| Error::not_found("LDAP sync run"))
}

/// What starts a run by hand.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StartRun {
    pub dry_run: bool,
    pub force: bool,
    /// `true`: a full run even when an incremental one would do; `false`: an
    /// incremental run even when a full one is due.
    pub full: Option<bool>,
}

/// Starts a run (it goes on in the background, on the sync's own authority)
/// and returns it with `status: running`.
pub async fn start(sync: &DirectorySync, caller: &Caller, req: StartRun) -> Result<Run> {
    require(sync.ctx(), caller, Action::LDAPSYNC_RUN)?;
    let started_by = match caller.user_id() {
        Some(id) => {
            let mut conn = sync.ctx().conn().await?;
            store::users::find_by_id(&mut conn, id)
                .await?
                .map(|u| u.username)
        }
        None => None,
    };
    sync.start(
        RunRequest {
            trigger: Trigger::Manual,
            dry_run: req.dry_run,
            force: req.force,
            full: req.full,
            started_by,
            tick: None,
        },
        crate::clock::now(),
    )
    .await
    .map_err(start_error)
}

fn start_error(e: StartError) -> Error {
    match e {
        StartError::Disabled => Error::bad_request(
            "LDAP sync is not enabled: set `enabled: true` with `PUT /api/v2/settings/ldapsync` first",
        ),
        StartError::Busy(id) => Error::conflict(match id {
            Some(id) => format!("an LDAP sync run is already in progress (run {id})"),
            None => "an LDAP sync run is already in progress".to_owned(),
        }),
        StartError::Db(e) => Error::from(e),
    }
}
