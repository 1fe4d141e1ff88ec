//! The deployment's admin pages (`/deployment...`): users, IdP sync (the
//! deployment-wide organization and site role sync), LDAP directory sync and
//! the policy set. Each page calls the same use cases as the API; the
//! **Deployment** sidebar lists only the pages the policies let the viewer
//! use, and a page the viewer may not use is the use case's 403.
//!
//! - [`users`]: `/deployment/users` (list, search, **Create user**, suspend
//!   and activate, site roles).
//! - [`idp_sync`]: `/deployment/idp-sync` (settings, **Save**, **Preview**).
//! - [`ldap_sync`]: `/deployment/ldap-sync` (settings, **Save**, **Run now**,
//!   **Dry run**, runs) and `/deployment/ldap-sync/runs/{id}`.
//! - [`policies`]: `/deployment/policies` (the running set, **Reload**).

pub mod idp_sync;
pub mod ldap_sync;
pub mod policies;
pub mod users;

use orgsync_policy::{Action, Resource};

use super::page::{Chrome, NavLink, PageError, PageResult, Section, Viewer, redirect};
use crate::error::Error;

/// The deployment pages, in sidebar order: label, path, and the action on the
/// site that lets a viewer use the page.
const PAGES: &[(&str, &str, Action)] = &[
    ("Users", "/deployment/users", Action::USER_LIST),
    (
        "IdP sync",
        "/deployment/idp-sync",
        Action::DEPLOYMENT_SYNC_READ,
    ),
    (
        "LDAP sync",
        "/deployment/ldap-sync",
        Action::DEPLOYMENT_SYNC_READ,
    ),
    ("Policies", "/deployment/policies", Action::POLICY_READ),
];

/// The deployment pages `viewer` may use, as sidebar links (`current` the
/// path of the page shown).
pub fn links(viewer: &Viewer, current: &str) -> Vec<NavLink> {
    PAGES
        .iter()
        .filter(|(_, _, action)| viewer.may(*action, &Resource::site()))
        .map(|(label, path, _)| NavLink::new(label, (*path).to_owned(), *path == current))
        .collect()
}

/// The layout and sidebar of a deployment page.
pub(super) struct DeployContext {
    pub chrome: Chrome,
    pub nav: Vec<NavLink>,
}

pub(super) async fn context(
    viewer: &Viewer,
    current: &str,
    title: &str,
) -> Result<DeployContext, PageError> {
    Ok(DeployContext {
        chrome: viewer.chrome(title, Section::Admin).await?,
        nav: links(viewer, current),
    })
}

/// `GET /deployment`: the first deployment page the viewer may use.
pub async fn index(viewer: Viewer) -> PageResult {
    match links(&viewer, "").first() {
        Some(link) => Ok(redirect(&link.href)),
        None => Err(PageError(Error::refused(
            "You do not administer this deployment. Ask a site owner for a role.",
        ))),
    }
}
