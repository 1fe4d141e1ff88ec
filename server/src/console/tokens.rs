//! `/settings/tokens`: the viewer's API tokens (for the CLI's `orgsync login
//! URL --token`, for scripts with `Authorization: Bearer`). Create shows the
//! secret once, on the answer page itself (never in a redirect, a cookie or
//! a URL); the list shows no secrets; delete revokes at once. The operations
//! are [`sessions::create_token`], [`sessions::list_tokens`] and
//! [`sessions::delete_token`], as the API's.

use askama::Template;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;

use super::form::{self, CsrfOnly, FormErrors};
use super::page::{Chrome, PageError, PageResult, Section, Viewer, ok, render};
use super::time::When;
use crate::error::Error;
use crate::usecase::sessions::{self, NewToken};

const PATH: &str = "/settings/tokens";

/// Lifetimes offered: `(days, label)`.
const LIFETIMES: &[(i64, &str)] = &[
    (1, "1 day"),
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (365, "1 year"),
];

/// A token as listed.
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct TokenRow {
    id: String,
    name: String,
    created: When,
    expires: When,
    last_used: Option<When>,
}

#[derive(Template)]
#[template(path = "account_tokens.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    /// `(name, secret)` of the token just created: shown once.
    created: Option<(String, String)>,
    name: String,
    days: i64,
    lifetimes: &'static [(i64, &'static str)],
    access_url: String,
    errors: FormErrors,
}

async fn page_of(
    viewer: &Viewer,
    created: Option<(String, String)>,
    name: String,
    days: i64,
    errors: FormErrors,
) -> Result<TokensPage, PageError> {
    let now = crate::clock::now();
    let tokens = sessions::list_tokens(viewer.ctx(), &viewer.caller, "me")
        .await?
        .into_iter()
        .map(|t| TokenRow {
            created: When::new(&t.created_at, now),
            expires: When::new(&t.expires_at, now),
            last_used: (!t.last_used_at.is_empty() && t.last_used_at != t.created_at)
                .then(|| When::new(&t.last_used_at, now)),
            id: t.id,
            name: t.token_name,
        })
        .collect();
    Ok(TokensPage {
        chrome: viewer.chrome("API tokens", Section::None).await?,
        tokens,
        created,
        name,
        days,
        lifetimes: LIFETIMES,
        access_url: viewer.app.config.access_url.clone(),
        errors,
    })
}

/// `GET /settings/tokens`.
pub async fn page(viewer: Viewer) -> PageResult {
    let page = page_of(&viewer, None, String::new(), 30, FormErrors::default()).await?;
    Ok(ok(&viewer, &page))
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    days: String,
}

/// `POST /settings/tokens` (**Create token**): the page with the new
/// token's secret, shown once.
pub async fn create(viewer: Viewer, body: Bytes) -> PageResult {
    let f: CreateForm = form::parse(&viewer, &body)?;
    let name = f.name.trim().to_owned();
    let days = f.days.trim().parse::<i64>().unwrap_or(0);
    let result = if LIFETIMES.iter().any(|(d, _)| *d == days) {
        let req = NewToken {
            token_name: name.clone(),
            lifetime_seconds: Some(days * 86_400),
        };
        sessions::create_token(viewer.ctx(), &viewer.caller, "me", &req).await
    } else {
        Err(Error::validation(
            "days",
            "choose one of the lifetimes offered",
        ))
    };
    match result {
        Ok(session) => {
            let created = Some((name, session.secret));
            let page = page_of(&viewer, created, String::new(), 30, FormErrors::default()).await?;
            Ok(render(
                &viewer.app,
                StatusCode::CREATED,
                &page,
                viewer.flash.is_some(),
            ))
        }
        Err(e) => {
            let status = form::status_of(&e);
            let errors = FormErrors::from_error(e)?;
            let page = page_of(&viewer, None, name, days, errors).await?;
            Ok(render(&viewer.app, status, &page, false))
        }
    }
}

/// `POST /settings/tokens/{id}/delete`: revokes the token.
pub async fn delete(viewer: Viewer, Path(id): Path<String>, body: Bytes) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let result = sessions::delete_token(viewer.ctx(), &viewer.caller, "me", &id).await;
    form::answer_back(&viewer, PATH, result, |()| {
        "Token deleted: requests made with it are refused from now on.".to_owned()
    })
}
