//! A user's linked identities. OIDC login links by verified email only to an
//! account without a password and without another subject; every other link
//! is made here, explicitly, by someone with authority over the whole account
//! (by the built-in policies: an owner), and audited.

use orgsync_policy::Action;
use serde::Deserialize;
use serde_json::json;

use super::users::{load, load_in, require_authority_over};
use super::{Caller, Ctx, Work};
use crate::audit::Change;
use crate::authz::Permit;
use crate::error::{Error, Result};
use crate::model::{User, parse_text};
use crate::store;
pub use crate::store::links::Link;

/// The only source linked by hand: directory links are the directory sync's.
const SOURCE: &str = crate::oidc::LINK_SOURCE;

pub async fn list(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<Vec<Link>> {
    let mut conn = ctx.conn().await?;
    let (user, _) = load(&mut conn, ctx, caller, key, Action::USER_READ).await?;
    Ok(store::links::of_user(&mut conn, &user.id).await?)
}

/// A link as asked.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// `oidc` (the default).
    #[serde(default)]
    pub source: Option<String>,
    /// The identity at the source: the OIDC `sub`.
    pub external_id: String,
}

fn source_of(source: Option<&str>) -> Result<&'static str> {
    match source {
        None => Ok(SOURCE),
        Some(s) if s == SOURCE => Ok(SOURCE),
        Some(other) => Err(Error::validation(
            "source",
            format!(
                "`{other}` identities are not linked by hand; only `{SOURCE}` (directory \
                 entries are linked by the directory sync)"
            ),
        )),
    }
}

/// `user:link` on the account, and authority over all of it: whoever controls
/// how an account signs in holds all its roles.
async fn authorize(work: &mut Work<'_>, key: &str, what: &str) -> Result<(User, Permit)> {
    let (user, permit) = load_in(work, key, Action::USER_LINK).await?;
    require_authority_over(work, &user, &format!("{what} `{}`", user.username)).await?;
    Ok((user, permit))
}

/// Links an identity to the account. 409 when the identity is linked to
/// another account, or the account already has an identity of that source.
pub async fn create(ctx: Ctx<'_>, caller: &Caller, key: &str, req: &NewLink) -> Result<Link> {
    let source = source_of(req.source.as_deref())?;
    let external_id = parse_text("external_id", &req.external_id, 255)?;
    if external_id.trim().is_empty() {
        return Err(Error::validation("external_id", "must not be empty"));
    }
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = authorize(&mut work, key, "linking an identity to").await?;
    if let Some(owner) = store::links::user_of(work.conn(), source, &external_id).await? {
        let who = store::users::find_by_id(work.conn(), &owner)
            .await?
            .map_or(owner, |u| u.username);
        return Err(Error::conflict(format!(
            "this {source} identity is already linked to `{who}`; unlink it there first"
        )));
    }
    if store::links::of_user(work.conn(), &user.id)
        .await?
        .iter()
        .any(|l| l.source == source)
    {
        return Err(Error::conflict(format!(
            "`{}` is already linked to another {source} identity; unlink it first",
            user.username
        )));
    }
    let now_s = work.now_s.clone();
    store::links::insert(
        &mut work.write(&permit)?,
        &user.id,
        source,
        &external_id,
        &now_s,
    )
    .await
    .map_err(Error::on_unique("this identity is already linked"))?;
    work.audit(
        &permit,
        Change::user(
            &user,
            "update",
            json!({format!("{source}_subject"): {"old": null, "new": external_id}}),
            201,
        ),
    )
    .await?;
    let link = store::links::of_user(work.conn(), &user.id)
        .await?
        .into_iter()
        .find(|l| l.source == source)
        .ok_or_else(|| Error::internal("link vanished"))?;
    work.commit().await?;
    Ok(link)
}

/// Which link to remove.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Unlink {
    pub source: Option<String>,
    pub external_id: Option<String>,
}

/// Unlinks the account's identities of a source (or the one named).
pub async fn delete(ctx: Ctx<'_>, caller: &Caller, key: &str, q: &Unlink) -> Result<()> {
    let source = source_of(q.source.as_deref())?;
    let mut work = Work::begin(ctx, caller).await?;
    let (user, permit) = authorize(&mut work, key, "unlinking an identity from").await?;
    let external_id = q.external_id.as_deref();
    let removed =
        store::links::delete(&mut work.write(&permit)?, &user.id, source, external_id).await?;
    if removed.is_empty() {
        return Err(Error::not_found("link"));
    }
    work.audit(
        &permit,
        Change::user(
            &user,
            "update",
            json!({format!("{source}_subject"): {"old": removed.join(","), "new": null}}),
            204,
        ),
    )
    .await?;
    work.commit().await
}
