//! `/deployment/policies`: the running policy set (hash, origin, the policy
//! files and the schema as text) and **Reload** for those the policies allow
//! ([`crate::usecase::authz::policy_set`], [`crate::usecase::authz::reload`]).

use askama::Template;
use axum::body::Bytes;

use super::super::form::{self, CsrfOnly, Done, FormErrors};
use super::super::page::{Chrome, NavLink, PageError, PageResult, Viewer, ok};
use crate::usecase::authz::{self, PolicySet};

const PATH: &str = "/deployment/policies";

#[derive(Template)]
#[template(path = "deployment/policies.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct PoliciesPage {
    chrome: Chrome,
    nav: Vec<NavLink>,
    set: PolicySet,
    errors: FormErrors,
}

async fn page_of(viewer: &Viewer, errors: FormErrors) -> Result<PoliciesPage, PageError> {
    let set = authz::policy_set(viewer.ctx(), &viewer.caller).await?;
    let c = super::context(viewer, PATH, "Policies").await?;
    Ok(PoliciesPage {
        chrome: c.chrome,
        nav: c.nav,
        set,
        errors,
    })
}

/// `GET /deployment/policies`.
pub async fn page(viewer: Viewer) -> PageResult {
    let page = page_of(&viewer, FormErrors::default()).await?;
    Ok(ok(&viewer, &page))
}

/// `POST /deployment/policies/reload` (**Reload**): [`authz::reload`]. An
/// invalid set is refused with its diagnostics; the running set stays.
pub async fn reload(viewer: Viewer, body: Bytes) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let result = authz::reload(viewer.ctx(), &viewer.caller).await;
    let done = |v: serde_json::Value| {
        let hash = v["hash"].as_str().map_or("", |h| &h[..h.len().min(12)]);
        Done::new(
            PATH,
            format!(
                "Policies reloaded: {} policies, hash {hash}.",
                v["policies"]
            ),
        )
    };
    form::answer(&viewer, result, done, |errors| page_of(&viewer, errors)).await
}
