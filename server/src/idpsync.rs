//! IdP sync in the server: settings storage, the planner's inputs read from the
//! database, applying a plan in the caller's transaction, problems.
//! (The planner itself is the pure `orgsync-sync` crate.)

use serde_json::{Map, Value};

use crate::app::AppState;
use crate::audit::AuditCtx;
use crate::store::Conn;

/// A login the IdP sync refuses (e.g. a claim that cannot be parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRefused {
    pub status: u16,
    pub message: String,
}

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Users whose authorization data changed.
    pub changed: bool,
}

/// Runs org, group and role sync for `user_id` with `claims`, inside the
/// caller's (login's) transaction, and records problems. Call after the user
/// row exists.
pub async fn sync_at_login(
    _app: &AppState,
    _tx: &mut Conn,
    _user_id: &str,
    _claims: &Map<String, Value>,
    _now: &str,
    _ctx: &AuditCtx,
) -> Result<SyncOutcome, LoginRefused> {
    // The planner integration lands with the IdP sync settings.
    Ok(SyncOutcome::default())
}
