//! Organizations: list, read, create (with its Everyone group and the creator
//! as member), update, delete (refused while it holds anything); the default
//! organization at startup.

use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::{Caller, Ctx, Page, Work};
use crate::audit::Change;
use crate::authz::{Authz, Permit, System};
use crate::error::{Error, Result};
use crate::model::{DEFAULT_ORG_NAME, Name, Organization, parse_image_url, parse_text};
use crate::store::{self, Conn};

/// Loads the organization `key` (id or name) and decides `action` on it; 404
/// when it does not exist or the caller may not read it.
pub async fn load(
    conn: &mut Conn,
    authz: &Authz,
    caller: &Caller,
    key: &str,
    action: Action,
) -> Result<(Organization, Permit)> {
    let org = store::orgs::find(conn, key)
        .await?
        .ok_or_else(|| Error::not_found("organization"))?;
    let permit = caller.require(
        authz,
        action,
        &Resource::organization(&org.org_ref()),
        "organization",
    )?;
    Ok((org, permit))
}

/// An object of an organization (`found`, when it exists) with its
/// organization (`org_id` of the object); 404 naming `what` when either is
/// missing.
pub(crate) async fn with_org<T>(
    conn: &mut Conn,
    found: Option<T>,
    org_id: impl Fn(&T) -> &str,
    what: &str,
) -> Result<(T, Organization)> {
    let found = found.ok_or_else(|| Error::not_found(what))?;
    let org = store::orgs::find(conn, org_id(&found)).await?;
    Ok((found, org.ok_or_else(|| Error::not_found(what))?))
}

/// [`load`] inside an operation's transaction.
pub async fn load_in(
    work: &mut Work<'_>,
    key: &str,
    action: Action,
) -> Result<(Organization, Permit)> {
    let org = store::orgs::find(work.conn(), key)
        .await?
        .ok_or_else(|| Error::not_found("organization"))?;
    let permit = work.require(
        action,
        &Resource::organization(&org.org_ref()),
        "organization",
    )?;
    Ok((org, permit))
}

/// The id of an organization that does not exist, for [`candidates`].
const ELSEWHERE: &str = "00000000-0000-0000-0000-000000000000";

/// The organizations where `action` on `resource_in(org)` may be allowed for
/// the caller: a pre-filter for listings, each item is still decided. A user
/// whose request on an organization it is not a member of is denied (the
/// policies' `guardrail.cross-org`: only site roles reach other orgs) gets its
/// own organizations; one decision on an organization that does not exist
/// tells which case holds. Everyone else gets every organization. On 1,000
/// organizations this spares about 1,000 decisions per listing.
pub(crate) async fn candidates(
    conn: &mut Conn,
    authz: &Authz,
    caller: &Caller,
    action: Action,
    resource_in: impl Fn(&orgsync_policy::OrgRef) -> Resource,
) -> Result<Vec<Organization>> {
    if let Some(user_id) = caller.user_id() {
        let elsewhere = orgsync_policy::OrgRef::new(ELSEWHERE, false);
        if !caller.allowed(authz, action, &resource_in(&elsewhere)) {
            return Ok(store::users::organizations(conn, user_id).await?);
        }
    }
    Ok(store::orgs::list(conn).await?)
}

/// The organizations the caller may read.
pub async fn list(ctx: Ctx<'_>, caller: &Caller, page: Page) -> Result<Vec<Organization>> {
    let mut conn = ctx.conn().await?;
    let orgs = candidates(
        &mut conn,
        ctx.authz,
        caller,
        Action::ORGANIZATION_READ,
        Resource::organization,
    )
    .await?;
    page.apply(
        orgs.into_iter()
            .filter(|o| {
                caller.allowed(
                    ctx.authz,
                    Action::ORGANIZATION_READ,
                    &Resource::organization(&o.org_ref()),
                )
            })
            .collect(),
    )
}

pub async fn get(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<Organization> {
    let mut conn = ctx.conn().await?;
    Ok(
        load(&mut conn, ctx.authz, caller, key, Action::ORGANIZATION_READ)
            .await?
            .0,
    )
}

/// A new organization as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    pub name: String,
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
}

/// Creates the org, its Everyone group, and makes the creator a member.
pub async fn create(ctx: Ctx<'_>, caller: &Caller, req: NewOrg) -> Result<Organization> {
    let mut work = Work::begin(ctx, caller).await?;
    let permit = work.require(
        Action::ORGANIZATION_CREATE,
        &Resource::site(),
        "organization",
    )?;
    let name = Name::parse("name", &req.name)?;
    let display_name = parse_text(
        "display_name",
        req.display_name.as_deref().unwrap_or(name.as_str()),
        128,
    )?;
    let description = parse_text("description", &req.description, 1024)?;
    let icon = parse_image_url("icon", &req.icon)?;
    let org = Organization {
        id: store::new_id(),
        name: name.as_str().to_owned(),
        display_name,
        description,
        icon,
        is_default: false,
        created_at: work.now_s.clone(),
        updated_at: work.now_s.clone(),
    };
    let now_s = work.now_s.clone();
    let mut w = work.write(&permit)?;
    store::orgs::insert(&mut w, &org)
        .await
        .map_err(Error::on_unique(name_taken(&org.name)))?;
    store::groups::insert_everyone(&mut w, &org.id, &now_s).await?;
    if let Some(creator) = caller.user_id() {
        store::members::insert(&mut w, &org.id, creator, &now_s).await?;
        work.touch(creator);
    }
    work.audit(&permit, Change::created(&org)).await?;
    work.commit().await?;
    Ok(org)
}

/// Creates the default organization and its Everyone group when missing, at
/// startup, on the authority of [`System::Setup`]. Replicas starting at once on
/// a fresh database race here: the loser's insert hits the unique name and
/// finds the winner's organization on its retry.
pub async fn ensure_default(ctx: Ctx<'_>) -> Result<()> {
    match create_default(ctx).await {
        Err(e) if e.kind == crate::error::Kind::Conflict => create_default(ctx).await,
        other => other,
    }
}

async fn create_default(ctx: Ctx<'_>) -> Result<()> {
    let caller = Caller::system(System::Setup);
    let mut work = Work::begin(ctx, &caller).await?;
    if store::orgs::default_org(work.conn()).await?.is_some() {
        return Ok(());
    }
    let permit = work.require(
        Action::ORGANIZATION_CREATE,
        &Resource::site(),
        "organization",
    )?;
    let org = Organization {
        id: store::new_id(),
        name: DEFAULT_ORG_NAME.to_owned(),
        display_name: "Coder".to_owned(),
        description: "The default organization; every new user joins it.".to_owned(),
        icon: String::new(),
        is_default: true,
        created_at: work.now_s.clone(),
        updated_at: work.now_s.clone(),
    };
    let now_s = work.now_s.clone();
    let mut w = work.write(&permit)?;
    store::orgs::insert(&mut w, &org).await?;
    store::groups::insert_everyone(&mut w, &org.id, &now_s).await?;
    work.commit().await
}

fn name_taken(name: &str) -> String {
    format!("an organization named `{name}` already exists")
}

/// The fields of an organization to change; `None` keeps a field.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgChanges {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
}

pub async fn update(
    ctx: Ctx<'_>,
    caller: &Caller,
    key: &str,
    req: OrgChanges,
) -> Result<Organization> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = load_in(&mut work, key, Action::ORGANIZATION_UPDATE).await?;
    let mut updated = org.clone();
    if let Some(n) = &req.name {
        updated.name = Name::parse("name", n)?.as_str().to_owned();
    }
    if let Some(d) = &req.display_name {
        updated.display_name = parse_text("display_name", d, 128)?;
    }
    if let Some(d) = &req.description {
        updated.description = parse_text("description", d, 1024)?;
    }
    if let Some(i) = &req.icon {
        updated.icon = parse_image_url("icon", i)?;
    }
    if updated == org {
        return Ok(org);
    }
    updated.updated_at = work.now_s.clone();
    store::orgs::update(&mut work.write(&permit)?, &updated)
        .await
        .map_err(Error::on_unique(name_taken(&updated.name)))?;
    work.audit(&permit, Change::updated(&org, &updated)).await?;
    work.commit().await?;
    Ok(updated)
}

/// Deletes the org; refused (409, naming what remains) while it holds anything
/// but its Everyone group and the caller.
pub async fn delete(ctx: Ctx<'_>, caller: &Caller, key: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = load_in(&mut work, key, Action::ORGANIZATION_DELETE).await?;
    let remaining =
        store::orgs::remaining(work.conn(), &org.id, caller.user_id().unwrap_or("")).await?;
    if !remaining.is_empty() {
        return Err(Error::conflict(format!(
            "organization `{}` still has {}; remove them first",
            org.name,
            remaining.join(", ")
        )));
    }
    let members = store::members::user_ids(work.conn(), &org.id).await?;
    store::orgs::delete(&mut work.write(&permit)?, &org.id).await?;
    work.audit(&permit, Change::deleted(&org)).await?;
    work.touch_all(members);
    work.commit().await?;
    Ok(())
}
