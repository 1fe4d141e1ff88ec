//! A user's linked identities. OIDC login links by verified email only to an
//! account without a password and without another subject; every other link
//! is made here, explicitly, by someone with authority over the whole account
//! (by the built-in policies: an owner), and audited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::Action;
use serde::Deserialize;
use serde_json::json;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::users::{require_authority_over, target_user};
use crate::app::AppState;
use crate::audit::{self, Change};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{User, parse_text};
use crate::store;
use crate::store::links::Link;

/// The only source linked by hand: directory links are the directory sync's.
const SOURCE: &str = crate::oidc::LINK_SOURCE;

/// `GET /users/{user}/links`.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<Link>>> {
    let (user, _) = target_user(&app, &actor, &key, Action::USER_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(store::links::of_user(&mut conn, &user.id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// `oidc` (the default).
    #[serde(default)]
    pub source: Option<String>,
    /// The identity at the source: the OIDC `sub`.
    pub external_id: String,
}

fn source_of(source: Option<&str>) -> ApiResult<&'static str> {
    match source {
        None => Ok(SOURCE),
        Some(s) if s == SOURCE => Ok(SOURCE),
        Some(other) => Err(ApiError::validation(
            "source",
            format!(
                "`{other}` identities are not linked by hand; only `{SOURCE}` (directory \
                 entries are linked by the directory sync)"
            ),
        )),
    }
}

async fn authorize(app: &AppState, actor: &Actor, key: &str, what: &str) -> ApiResult<User> {
    let (user, _permit) = target_user(app, actor, key, Action::USER_LINK).await?;
    require_authority_over(app, actor, &user, &format!("{what} `{}`", user.username)).await?;
    Ok(user)
}

/// `POST /users/{user}/links {source?, external_id}`: links an identity to the
/// account. 409 when the identity is linked to another account, or the account
/// already has an identity of that source (unlink it first).
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<LinkRequest>,
) -> ApiResult<(StatusCode, Json<Link>)> {
    let source = source_of(req.source.as_deref())?;
    let external_id = parse_text("external_id", &req.external_id, 255)?;
    if external_id.trim().is_empty() {
        return Err(ApiError::validation("external_id", "must not be empty"));
    }
    let user = authorize(&app, &actor, &key, "linking an identity to").await?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    if let Some(owner) = store::links::owner_of(&mut tx, source, &external_id).await? {
        let who = store::users::find_by_id(&mut tx, &owner)
            .await?
            .map_or(owner, |u| u.username);
        return Err(ApiError::conflict(format!(
            "this {source} identity is already linked to `{who}`; unlink it there first"
        )));
    }
    if store::links::of_user(&mut tx, &user.id)
        .await?
        .iter()
        .any(|l| l.source == source)
    {
        return Err(ApiError::conflict(format!(
            "`{}` is already linked to another {source} identity; unlink it first",
            user.username
        )));
    }
    store::links::insert(&mut tx, &user.id, source, &external_id, &now_s)
        .await
        .map_err(ApiError::on_unique("this identity is already linked"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "update",
            resource_type: "user",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: json!({format!("{source}_subject"): {"old": null, "new": external_id}}),
            status_code: 201,
        },
    )
    .await?;
    let link = store::links::of_user(&mut tx, &user.id)
        .await?
        .into_iter()
        .find(|l| l.source == source)
        .ok_or_else(|| ApiError::internal("link vanished"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(link)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlinkQuery {
    pub source: Option<String>,
    pub external_id: Option<String>,
}

/// `DELETE /users/{user}/links?source=oidc[&external_id=..]`: unlinks.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<UnlinkQuery>,
) -> ApiResult<StatusCode> {
    let source = source_of(q.source.as_deref())?;
    let user = authorize(&app, &actor, &key, "unlinking an identity from").await?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let removed = store::links::delete(&mut tx, &user.id, source, q.external_id.as_deref()).await?;
    if removed.is_empty() {
        return Err(ApiError::not_found("link"));
    }
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: None,
            action: "update",
            resource_type: "user",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: json!({format!("{source}_subject"): {"old": removed.join(","), "new": null}}),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
