//! The impact of a policy change on the real data (`POST /policies/impact`,
//! `orgsync policy diff`, `orgsync policy reload --dry-run`, and what a reload
//! reports): every user x every action x the resources of their organizations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use orgsync_policy::impact::{Impact, ImpactUser, ImpactWorld, impact};
use orgsync_policy::{
    Action, Engine, ORG_ROLES, PolicyError, PolicySources, Resource, SITE_ROLES, SourceFile,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Caller, Ctx};
use crate::db::Db;
use crate::error::{Error, Result, Validation};
use crate::store::{self, Conn};

/// At most this many resources of one kind per organization (and users as
/// resources overall) are decided; above it the first ones by id are a sample,
/// which the answer states.
pub const SAMPLE_PER_KIND: usize = 50;

/// The text of a proposed policy file.
pub type FileText = String;

/// The proposed policy set: the files of a policy directory (`{path: text}`,
/// paths relative to it; `schema.cedarschema` among them or in `schema`), or
/// `policy_dir: true` for the server's own `--policy-dir` as it is on disk now.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpactRequest {
    #[serde(default)]
    pub files: BTreeMap<String, FileText>,
    /// The schema's text; without it, `files["schema.cedarschema"]`, else the
    /// running schema.
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub policy_dir: bool,
}

/// Where a sample stood for more resources than it decided.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Sampled {
    pub organization_id: Option<String>,
    pub kind: &'static str,
    pub total: usize,
    pub evaluated: usize,
}

/// A 400 with the validator's diagnostics, one validation per problem
/// (`file:line:column`).
pub fn invalid_policies(message: &str, e: &PolicyError) -> Error {
    let mut err = Error::bad_request(message);
    err.body.validations = e
        .diagnostics()
        .iter()
        .map(|d| Validation {
            field: format!("{}:{}:{}", d.file, d.line, d.column),
            detail: d.message.clone(),
        })
        .collect();
    if err.body.validations.is_empty() {
        err = err.with_detail(e.to_string());
    }
    err
}

/// Keeps the first [`SAMPLE_PER_KIND`] of `items`, noting a sample.
fn sample<T>(
    mut items: Vec<T>,
    org: Option<&str>,
    kind: &'static str,
    notes: &mut Vec<Sampled>,
) -> Vec<T> {
    if items.len() > SAMPLE_PER_KIND {
        notes.push(Sampled {
            organization_id: org.map(str::to_owned),
            kind,
            total: items.len(),
            evaluated: SAMPLE_PER_KIND,
        });
        items.truncate(SAMPLE_PER_KIND);
    }
    items
}

/// The users and resources the impact is evaluated against: the site, the site
/// roles, users (a sample), and per organization the organization, its audit
/// log, IdP sync settings, org roles, members, groups, templates, template
/// versions' templates and workspaces.
pub async fn world(conn: &mut Conn) -> Result<(ImpactWorld, Vec<Sampled>)> {
    let mut notes = Vec::new();
    let users = store::principals::load_all(conn).await?;
    let orgs = store::orgs::list(conn).await?;
    let refs: HashMap<String, orgsync_policy::OrgRef> =
        orgs.iter().map(|o| (o.id.clone(), o.org_ref())).collect();
    let mut site = vec![Resource::site()];
    site.extend(SITE_ROLES.iter().map(|r| Resource::site_role(r)));
    let as_user = |(p, _): &(orgsync_policy::Principal, String)| {
        Resource::user(&p.id, &p.status).with_site_roles(&p.site_roles)
    };
    site.extend(sample(
        users.iter().map(as_user).collect(),
        None,
        "User",
        &mut notes,
    ));
    let mut by_org: HashMap<String, Vec<Resource>> = HashMap::new();
    for (id, org) in &refs {
        let list = by_org.entry(id.clone()).or_default();
        list.push(Resource::organization(org));
        list.push(Resource::audit_log(org));
        list.push(Resource::idpsync_settings(org));
        list.push(Resource::group(org, &org.id));
        list.extend(ORG_ROLES.iter().map(|r| Resource::org_role(org, r)));
        let members: Vec<Resource> = users
            .iter()
            .filter(|(p, _)| p.memberships.iter().any(|m| &m.org_id == id))
            .map(|(p, _)| Resource::member(org, &p.id).with_site_roles(&p.site_roles))
            .collect();
        list.extend(sample(members, Some(id), "Member", &mut notes));
    }
    let mut groups: HashMap<String, Vec<Resource>> = HashMap::new();
    for (gid, org_id, _) in store::groups::list_all_named(conn).await? {
        if let Some(org) = refs.get(&org_id) {
            groups
                .entry(org_id)
                .or_default()
                .push(Resource::group(org, &gid));
        }
    }
    let mut templates: HashMap<String, Vec<Resource>> = HashMap::new();
    for t in store::templates::list_templates(conn, None).await? {
        if let Some(org) = refs.get(&t.organization_id) {
            let acl = t.acl.policy_acl();
            templates
                .entry(t.organization_id.clone())
                .or_default()
                .push(Resource::template(org, &t.id, &t.created_by, &acl));
        }
    }
    let mut workspaces: HashMap<String, Vec<Resource>> = HashMap::new();
    for w in store::workspaces::list(conn, None).await? {
        if let Some(org) = refs.get(&w.organization_id) {
            workspaces
                .entry(w.organization_id.clone())
                .or_default()
                .push(Resource::workspace(org, &w.id, &w.owner_id));
        }
    }
    for (kind, found) in [
        ("Group", groups),
        ("Template", templates),
        ("Workspace", workspaces),
    ] {
        for (org_id, list) in found {
            let kept = sample(list, Some(&org_id), kind, &mut notes);
            by_org.entry(org_id).or_default().extend(kept);
        }
    }
    notes.sort_by(|a, b| (&a.organization_id, a.kind).cmp(&(&b.organization_id, b.kind)));
    let users = users
        .into_iter()
        .map(|(principal, name)| ImpactUser { principal, name })
        .collect();
    Ok((
        ImpactWorld {
            users,
            site,
            orgs: by_org,
        },
        notes,
    ))
}

/// Decides the world with both sets on the blocking pool.
async fn evaluate(before: Arc<Engine>, after: Arc<Engine>, world: ImpactWorld) -> Result<Impact> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    tokio::task::spawn_blocking(move || impact(&before, &after, &world, threads))
        .await
        .map_err(|e| Error::internal(format!("impact evaluation failed: {e}")))
}

/// The answer: the impact with both sets' hashes and what was sampled.
fn answer(before: &Engine, after: &Engine, impact: &Impact, sampled: &[Sampled]) -> Value {
    let mut out = json!(impact);
    if let Value::Object(map) = &mut out {
        map.insert(
            "before".into(),
            json!({"hash": before.hash(), "origin": before.origin()}),
        );
        map.insert(
            "after".into(),
            json!({"hash": after.hash(), "origin": after.origin()}),
        );
        map.insert(
            "sample".into(),
            json!({"resources_per_kind": SAMPLE_PER_KIND, "sampled": sampled}),
        );
    }
    out
}

/// The impact of `after` over `before` on the data of `db`.
pub async fn between(db: &Db, before: Arc<Engine>, after: Arc<Engine>) -> Result<Value> {
    let mut conn = db.pool().acquire().await?;
    let (world, sampled) = world(&mut conn).await?;
    drop(conn);
    let impact = evaluate(before.clone(), after.clone(), world).await?;
    Ok(answer(&before, &after, &impact, &sampled))
}

/// The proposed set of a request, validated (400 with diagnostics).
fn proposed(ctx: Ctx<'_>, running: &Engine, req: &ImpactRequest) -> Result<Engine> {
    let sources = if req.policy_dir {
        if !req.files.is_empty() || req.schema.is_some() {
            return Err(Error::validation(
                "policy_dir",
                "give either `files` or `policy_dir`, not both",
            ));
        }
        let dir = ctx.authz.policy_dir().ok_or_else(|| {
            Error::validation(
                "policy_dir",
                "the server was started without --policy-dir (its policies are built in)",
            )
        })?;
        PolicySources::from_dir(dir)
    } else {
        if req.files.is_empty() {
            return Err(Error::validation(
                "files",
                "give the proposed policy files ({path: text}) or `policy_dir: true`",
            ));
        }
        let mut files: Vec<SourceFile> = req
            .files
            .iter()
            .filter(|(path, _)| path.as_str() != "schema.cedarschema" || req.schema.is_none())
            .map(|(path, text)| SourceFile {
                path: path.clone(),
                text: text.clone(),
            })
            .collect();
        if !files.iter().any(|f| f.path == "schema.cedarschema") {
            files.push(SourceFile {
                path: "schema.cedarschema".to_owned(),
                text: req
                    .schema
                    .clone()
                    .unwrap_or_else(|| running.schema_file().text.clone()),
            });
        }
        PolicySources::from_files("proposed", files)
    };
    sources
        .and_then(|s| Engine::load(&s))
        .map_err(|e| invalid_policies("the proposed policies are invalid", &e))
}

/// `POST /policies/impact`: what the proposed set would change, for those who
/// may reload the policies.
pub async fn propose(ctx: Ctx<'_>, caller: &Caller, req: &ImpactRequest) -> Result<Value> {
    let site = Resource::site();
    caller.require(ctx.authz, Action::POLICY_RELOAD, &site, "policies")?;
    let running = ctx.authz.engine();
    let after = Arc::new(proposed(ctx, &running, req)?);
    between(ctx.db, running, after).await
}
