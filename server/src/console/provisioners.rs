//! `/organizations/{org}/provisioners`: the org's daemons (status, tags, last
//! seen), its provisioner keys (**Create key** shows the secret once, with a
//! copy button; delete) and the jobs waiting for a daemon.

use askama::Template;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::form::{self, CsrfOnly, FormErrors};
use super::orgs::org_context;
use super::page::{Chrome, OrgNav, PageError, PageResult, Viewer, ok, render};
use super::time::When;
use crate::error::{Error, Kind};
use crate::model::Organization;
use crate::provisioner::Tags;
use crate::usecase::provisioners::{self, JobsQuery, NewKey};

#[allow(dead_code, reason = "fields read by the askama templates only")]
struct KeyRow {
    name: String,
    tags: String,
    created: When,
}

#[allow(dead_code, reason = "fields read by the askama templates only")]
struct DaemonRow {
    name: String,
    status: String,
    provisioners: String,
    tags: String,
    version: String,
    last_seen: When,
}

#[allow(dead_code, reason = "fields read by the askama templates only")]
struct JobRow {
    id: String,
    kind: &'static str,
    created: When,
    message: String,
}

#[derive(Template)]
#[template(path = "org_provisioners.html")]
#[allow(dead_code, reason = "fields read by the askama templates only")]
struct ProvisionersPage {
    chrome: Chrome,
    nav: OrgNav,
    org: Organization,
    daemons: Option<Vec<DaemonRow>>,
    keys: Option<Vec<KeyRow>>,
    jobs: Option<Vec<JobRow>>,
    can_create_key: bool,
    can_delete_key: bool,
    /// The secret of the key just created: shown once, never again.
    new_key: Option<(String, String)>,
    key_name: String,
    errors: FormErrors,
}

/// `key=value, ...`; a tag with an empty value shows as its key alone.
fn tags_text(tags: &Tags) -> String {
    tags.iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A list the viewer may not read is left out of the page (`None`); other
/// errors are the page's.
fn readable<T>(r: Result<T, Error>) -> Result<Option<T>, PageError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.kind, Kind::Forbidden | Kind::NotFound) => Ok(None),
        Err(e) => Err(PageError(e)),
    }
}

async fn page_of(
    viewer: &Viewer,
    key: &str,
    new_key: Option<(String, String)>,
    key_name: String,
    errors: FormErrors,
) -> Result<ProvisionersPage, PageError> {
    let c = org_context(viewer, key, "provisioners", "Provisioners").await?;
    let (ctx, caller, org_id) = (viewer.ctx(), &viewer.caller, c.org.id.as_str());
    let now = crate::clock::now();
    let daemons = readable(provisioners::list_daemons(ctx, caller, org_id).await)?.map(|ds| {
        ds.into_iter()
            .filter(|d| !d.disconnected)
            .map(|d| DaemonRow {
                status: d.status.clone(),
                provisioners: d.provisioners.join(", "),
                tags: tags_text(&d.tags),
                version: d.version.clone(),
                last_seen: When::new(&d.last_seen_at, now),
                name: d.name,
            })
            .collect()
    });
    let keys = readable(provisioners::list_keys(ctx, caller, org_id).await)?.map(|ks| {
        ks.into_iter()
            .map(|k| KeyRow {
                tags: tags_text(&k.tags),
                created: When::new(&k.created_at, now),
                name: k.name,
            })
            .collect()
    });
    let q = JobsQuery {
        status: Some("pending".to_owned()),
        limit: Some(50),
        offset: None,
    };
    let jobs = readable(provisioners::list_jobs(ctx, caller, org_id, &q).await)?.map(|js| {
        js.into_iter()
            .map(|j| JobRow {
                kind: match j.job_type {
                    crate::provisioner::JobType::TemplateVersionImport => "template import",
                    crate::provisioner::JobType::WorkspaceBuild => "workspace build",
                },
                created: When::new(&j.created_at, now),
                message: j.queue_message.unwrap_or_default(),
                id: j.id,
            })
            .collect()
    });
    let o = c.org.org_ref();
    Ok(ProvisionersPage {
        can_create_key: viewer.may(
            Action::PROVISIONER_KEY_CREATE,
            &Resource::provisioner_key(&o, "new"),
        ),
        can_delete_key: viewer.may(
            Action::PROVISIONER_KEY_DELETE,
            &Resource::provisioner_key(&o, "any"),
        ),
        chrome: c.chrome,
        nav: c.nav,
        org: c.org,
        daemons,
        keys,
        jobs,
        new_key,
        key_name,
        errors,
    })
}

/// `GET /organizations/{org}/provisioners`.
pub async fn page(viewer: Viewer, Path(key): Path<String>) -> PageResult {
    let page = page_of(&viewer, &key, None, String::new(), FormErrors::default()).await?;
    Ok(ok(&viewer, &page))
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: String,
}

/// `key=value` pairs separated by commas or new lines.
fn parse_tags(text: &str) -> Result<Tags, Error> {
    let mut tags = Tags::new();
    for item in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| Error::validation("tags", format!("`{item}` is not `key=value`")))?;
        tags.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(tags)
}

/// `POST /organizations/{org}/provisioners/keys` (**Create key**):
/// [`provisioners::create_key`]. The answer is the page itself with the new
/// key (not a redirect: the secret must not travel in a cookie or a URL).
pub async fn create_key(viewer: Viewer, Path(key): Path<String>, body: Bytes) -> PageResult {
    let f: KeyForm = form::parse(&viewer, &body)?;
    let name = f.name.trim().to_owned();
    let result = match parse_tags(&f.tags) {
        Ok(tags) => {
            let req = NewKey {
                name: name.clone(),
                tags,
            };
            provisioners::create_key(viewer.ctx(), &viewer.caller, &key, req).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            let secret = created["key"].as_str().unwrap_or_default().to_owned();
            let page = page_of(
                &viewer,
                &key,
                Some((name, secret)),
                String::new(),
                FormErrors::default(),
            )
            .await?;
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
            let page = page_of(&viewer, &key, None, name, errors).await?;
            Ok(render(&viewer.app, status, &page, false))
        }
    }
}

/// `POST /organizations/{org}/provisioners/keys/{name}/delete`:
/// [`provisioners::delete_key`]; its daemons are disconnected.
pub async fn delete_key(
    viewer: Viewer,
    Path((key, name)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let _: CsrfOnly = form::parse(&viewer, &body)?;
    let back = format!("/organizations/{key}/provisioners");
    let result = provisioners::delete_key(viewer.ctx(), &viewer.caller, &key, &name).await;
    form::answer_back(&viewer, &back, result, |()| {
        format!("Key `{name}` deleted; its daemons are disconnected.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_key_value_pairs() {
        let t = parse_tags("scope=organization, owner=\nregion = eu").unwrap_or_default();
        assert_eq!(t.get("region").map(String::as_str), Some("eu"));
        assert_eq!(t.get("owner").map(String::as_str), Some(""));
        assert_eq!(t.len(), 3);
        assert_eq!(tags_text(&t), "owner, region=eu, scope=organization");
        assert!(parse_tags("nope").is_err());
        assert!(parse_tags("").is_ok_and(|t| t.is_empty()));
    }
}
