//! Files, template versions, templates and their ACLs.

use std::collections::BTreeMap;

use base64::Engine as _;
use orgsync_policy::{Action, Resource, TemplateAcl};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::members::org_member_by_key;
use super::provisioners::caller_id;
use super::{Caller, Ctx, Page, Work, orgs};
use crate::audit::Change;
use crate::authz::Permit;
use crate::error::{Error, Result};
use crate::jobs::{self, JobsHub};
use crate::model::{Name, Organization, parse_text};
use crate::provisioner::variables::{self, Variable};
use crate::provisioner::{
    JobStatus, JobType, Tags, archive, effective_tags, is_provisioner, validate_tags,
};
pub use crate::store::templates::{Acl, JobRef, Template, TemplateVersion};
use crate::store::{self, Conn};

/// `?organization=` of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// The organization the file is for (optional): binds the file to that
    /// org up front, so every template-admin of the org may use it.
    pub organization: Option<String>,
}

/// Stores an uploaded tar archive; answers its hash. The same content twice is
/// one file, but each uploader gets a grant of their own: a version may name a
/// file only if its creator uploaded it or the version's org is bound to it.
/// The answer is the same whether or not someone uploaded the content before,
/// so an upload reveals nothing about other users' files.
pub async fn upload(ctx: Ctx<'_>, caller: &Caller, q: &FileQuery, body: &[u8]) -> Result<String> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = match &q.organization {
        Some(key) => {
            let (org, _) = orgs::load_in(&mut work, key, Action::ORGANIZATION_READ).await?;
            let permit = work.require(
                Action::FILE_CREATE,
                &Resource::organization(&org.org_ref()),
                "organization",
            )?;
            (Some(org), permit)
        }
        None => {
            // Allowed when the caller may create files in at least one org.
            let orgs = store::orgs::list(work.conn()).await?;
            let permit = orgs
                .iter()
                .find_map(|o| {
                    work.require(
                        Action::FILE_CREATE,
                        &Resource::organization(&o.org_ref()),
                        "organization",
                    )
                    .ok()
                })
                .ok_or_else(Error::forbidden)?;
            (None, permit)
        }
    };
    archive::check(body).map_err(|e| Error::validation("file", e.to_string()))?;
    let hash = hex::encode(Sha256::digest(body));
    let uploader = caller_id(caller);
    let now_s = work.now_s.clone();
    store::templates::insert_file(
        &mut work.write(&permit)?,
        &hash,
        &base64::engine::general_purpose::STANDARD.encode(body),
        body.len() as i64,
        uploader,
        &now_s,
    )
    .await?;
    let granted =
        store::templates::grant_upload(&mut work.write(&permit)?, &hash, uploader, &now_s).await?;
    if let Some(org) = &org {
        store::templates::attach_file(&mut work.write(&permit)?, &hash, &org.id).await?;
    }
    // Audited once per uploader (a fresh grant), not once per content: an entry
    // per content would tell an org's auditors whether anyone else had it.
    if granted {
        work.audit(
            &permit,
            Change {
                organization_id: org.as_ref().map(|o| o.id.as_str()),
                action: "create",
                resource_type: "file",
                resource_id: &hash,
                resource_target: &hash,
                diff: json!({"size": {"old": null, "new": body.len()}}),
                status_code: 201,
            },
        )
        .await?;
    }
    work.commit().await?;
    Ok(hash)
}

/// The one answer for a `file_hash` a version may not name, whether unknown or
/// another org's: nothing tells them apart.
fn file_not_found() -> Error {
    let mut e = Error::not_found("file");
    e.body.validations.push(crate::error::Validation {
        field: "file_hash".to_owned(),
        detail: "no file with this hash was uploaded by you or for this organization".to_owned(),
    });
    e
}

/// The policy view of a version: it carries its template's `use` access.
async fn version_resource(
    conn: &mut Conn,
    org: &Organization,
    v: &TemplateVersion,
) -> Result<Resource> {
    let acl = match &v.template_id {
        Some(t) => store::templates::get_template(conn, t)
            .await?
            .map(|t| t.acl.policy_acl())
            .unwrap_or_default(),
        None => TemplateAcl::default(),
    };
    Ok(Resource::template_version(
        &org.org_ref(),
        &v.id,
        &v.created_by,
        &acl,
    ))
}

/// A new template version as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    pub file_hash: String,
    #[serde(default = "default_provisioner")]
    pub provisioner: String,
    #[serde(default)]
    pub tags: Tags,
    pub name: Option<String>,
    pub template_id: Option<String>,
}

fn default_provisioner() -> String {
    "terraform".to_owned()
}

/// Creates a version and enqueues its import job on that org's provisioners
/// (woken through `hub` once committed).
pub async fn create_version(
    ctx: Ctx<'_>,
    hub: &JobsHub,
    caller: &Caller,
    org_key: &str,
    req: NewVersion,
) -> Result<TemplateVersion> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = orgs::load_in(&mut work, org_key, Action::TEMPLATE_VERSION_CREATE).await?;
    if !is_provisioner(&req.provisioner) {
        return Err(Error::validation(
            "provisioner",
            format!(
                "unknown provisioner type `{}` (terraform or echo)",
                req.provisioner
            ),
        ));
    }
    validate_tags(&req.tags).map_err(|e| Error::validation("tags", e))?;
    let name = match &req.name {
        Some(n) => Name::parse("name", n)?.as_str().to_owned(),
        None => format!("v-{}", &store::new_id()[24..]),
    };
    let creator = caller_id(caller);
    // Files never cross orgs: the caller uploaded this content, or the org is
    // already bound to it. Anything else is the same 404 as an unknown hash.
    if !store::templates::file_usable(work.conn(), &req.file_hash, creator, &org.id).await? {
        return Err(file_not_found());
    }
    if let Some(t) = &req.template_id {
        let template = store::templates::get_template(work.conn(), t).await?;
        if template.is_none_or(|t| t.organization_id != org.id) {
            return Err(Error::validation(
                "template_id",
                "no such template in this organization",
            ));
        }
    }
    store::templates::attach_file(&mut work.write(&permit)?, &req.file_hash, &org.id).await?;
    let variables = declared_variables(work.conn(), &req.file_hash, &org.id).await?;
    let job_id = store::new_id();
    let tags = effective_tags(&req.tags);
    let now_s = work.now_s.clone();
    jobs::enqueue(
        ctx.db,
        &mut work.write(&permit)?,
        &store::jobs::NewJob {
            id: &job_id,
            organization_id: &org.id,
            job_type: JobType::TemplateVersionImport,
            provisioner: &req.provisioner,
            tags: &tags,
            input: json!({}),
            initiator_id: creator,
            now: &now_s,
        },
    )
    .await?;
    let version = TemplateVersion {
        id: store::new_id(),
        organization_id: org.id.clone(),
        template_id: req.template_id,
        name,
        file_hash: req.file_hash,
        provisioner: req.provisioner,
        tags,
        job: JobRef {
            id: job_id,
            status: JobStatus::Pending,
            error: None,
        },
        created_by: creator.to_owned(),
        created_at: now_s,
        variables: Some(variables),
    };
    store::templates::insert_version(&mut work.write(&permit)?, &version).await?;
    work.audit(&permit, Change::created(&version)).await?;
    work.commit().await?;
    jobs::after_commit(hub);
    Ok(version)
}

/// The input variables the Terraform files of a file (bound to the org)
/// declare; a 400 naming the file when they cannot be read.
async fn declared_variables(conn: &mut Conn, hash: &str, org_id: &str) -> Result<Vec<Variable>> {
    let content = store::templates::file_content_for_org(conn, hash, org_id)
        .await?
        .ok_or_else(file_not_found)?;
    let tar = base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|e| Error::internal(format!("stored file is not base64: {e}")))?;
    variables::declared(&tar).map_err(|e| {
        Error::validation(
            "file_hash",
            format!("cannot read the template's variable blocks: {e}"),
        )
    })
}

/// The versions of an organization the caller may read.
pub async fn list_versions(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
) -> Result<Vec<TemplateVersion>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(
        &mut conn,
        ctx.authz,
        caller,
        org_key,
        Action::ORGANIZATION_READ,
    )
    .await?;
    let versions = store::templates::list_versions(&mut conn, &org.id, None).await?;
    let mut out = Vec::new();
    for v in versions {
        let r = version_resource(&mut conn, &org, &v).await?;
        if caller.allowed(ctx.authz, Action::TEMPLATE_VERSION_READ, &r) {
            out.push(v);
        }
    }
    Ok(out)
}

pub async fn get_version(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<TemplateVersion> {
    let mut conn = ctx.conn().await?;
    let v = store::templates::get_version(&mut conn, id).await?;
    let (v, org) = orgs::with_org(&mut conn, v, |v| &v.organization_id, "template version").await?;
    let r = version_resource(&mut conn, &org, &v).await?;
    caller.require(
        ctx.authz,
        Action::TEMPLATE_VERSION_READ,
        &r,
        "template version",
    )?;
    Ok(v)
}

/// A template's resource for the policies.
pub(crate) fn template_resource(org: &Organization, t: &Template) -> Resource {
    Resource::template(&org.org_ref(), &t.id, &t.created_by, &t.acl.policy_acl())
}

/// A new template as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    pub name: String,
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
    /// The version to make active; its import must have succeeded.
    #[serde(alias = "template_version_id")]
    pub version_id: String,
    #[serde(default)]
    pub disable_everyone_group_access: bool,
}

/// A version usable for a template of `org`: in that org, import succeeded.
async fn usable_version(
    conn: &mut Conn,
    org: &Organization,
    id: &str,
    field: &str,
) -> Result<TemplateVersion> {
    let v = store::templates::get_version(conn, id)
        .await?
        .filter(|v| v.organization_id == org.id)
        .ok_or_else(|| Error::validation(field, "no such template version in this organization"))?;
    if v.job.status != JobStatus::Succeeded {
        return Err(Error::validation(
            field,
            format!(
                "the version's import job has not succeeded (it is {})",
                v.job.status.as_str()
            ),
        ));
    }
    Ok(v)
}

pub async fn create_template(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    req: NewTemplate,
) -> Result<Template> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = orgs::load_in(&mut work, org_key, Action::TEMPLATE_CREATE).await?;
    let name = Name::parse("name", &req.name)?;
    let display_name = parse_text(
        "display_name",
        req.display_name.as_deref().unwrap_or(name.as_str()),
        128,
    )?;
    let description = parse_text("description", &req.description, 4096)?;
    let icon = parse_text("icon", &req.icon, 2048)?;
    let version = usable_version(work.conn(), &org, &req.version_id, "version_id").await?;
    if version.template_id.is_some() {
        return Err(Error::validation(
            "version_id",
            "this version already belongs to a template",
        ));
    }
    let mut acl = Acl::default();
    if !req.disable_everyone_group_access {
        acl.groups.insert(org.id.clone(), "use".to_owned());
    }
    let template = Template {
        id: store::new_id(),
        organization_id: org.id.clone(),
        name: name.as_str().to_owned(),
        display_name,
        description,
        icon,
        active_version_id: version.id.clone(),
        provisioner: version.provisioner.clone(),
        created_by: caller_id(caller).to_owned(),
        acl,
        created_at: work.now_s.clone(),
        updated_at: work.now_s.clone(),
    };
    store::templates::insert_template(&mut work.write(&permit)?, &template)
        .await
        .map_err(Error::on_unique(format!(
            "a template named `{}` already exists in `{}`",
            template.name, org.name
        )))?;
    store::templates::set_version_template(&mut work.write(&permit)?, &version.id, &template.id)
        .await?;
    work.audit(&permit, Change::created(&template)).await?;
    work.commit().await?;
    Ok(template)
}

/// Templates (of `org`, or of every org) the caller may read.
async fn visible_templates(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    org: Option<&Organization>,
) -> Result<Vec<Template>> {
    let orgs: BTreeMap<String, Organization> = match org {
        Some(o) => BTreeMap::from([(o.id.clone(), o.clone())]),
        None => {
            // The most a template of another org could grant: created by the
            // caller, which is on its ACL as admin.
            let me = caller.user_id().unwrap_or_default().to_owned();
            let acl = orgsync_policy::TemplateAcl {
                admin_users: vec![me.clone()],
                ..Default::default()
            };
            orgs::candidates(conn, ctx.authz, caller, Action::TEMPLATE_READ, |o| {
                Resource::template(o, "any", &me, &acl)
            })
            .await?
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect()
        }
    };
    let all = match org {
        Some(o) => store::templates::list_templates(conn, Some(&o.id)).await?,
        None => {
            let ids: Vec<&str> = orgs.keys().map(String::as_str).collect();
            store::templates::list_templates_in(conn, &ids).await?
        }
    };
    Ok(all
        .into_iter()
        .filter(|t| {
            orgs.get(&t.organization_id).is_some_and(|o| {
                caller.allowed(ctx.authz, Action::TEMPLATE_READ, &template_resource(o, t))
            })
        })
        .collect())
}

/// The templates of an organization the caller may read.
pub async fn list_org_templates(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    page: Page,
) -> Result<Vec<Template>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(
        &mut conn,
        ctx.authz,
        caller,
        org_key,
        Action::ORGANIZATION_READ,
    )
    .await?;
    page.apply(visible_templates(&mut conn, ctx, caller, Some(&org)).await?)
}

/// Every template the caller may read, across its orgs.
pub async fn list_all_templates(
    ctx: Ctx<'_>,
    caller: &Caller,
    page: Page,
) -> Result<Vec<Template>> {
    let mut conn = ctx.conn().await?;
    page.apply(visible_templates(&mut conn, ctx, caller, None).await?)
}

/// Loads a template and its org and decides `action` on the template.
async fn load_template(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<(Template, Organization, Permit)> {
    let t = store::templates::get_template(conn, id).await?;
    let (t, org) = orgs::with_org(conn, t, |t| &t.organization_id, "template").await?;
    let permit = caller.require(ctx.authz, action, &template_resource(&org, &t), "template")?;
    Ok((t, org, permit))
}

pub async fn get_template(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Template> {
    let mut conn = ctx.conn().await?;
    Ok(
        load_template(&mut conn, ctx, caller, id, Action::TEMPLATE_READ)
            .await?
            .0,
    )
}

/// The fields of a template to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateChanges {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub active_version_id: Option<String>,
}

pub async fn update_template(
    ctx: Ctx<'_>,
    caller: &Caller,
    id: &str,
    req: TemplateChanges,
) -> Result<Template> {
    let mut work = Work::begin(ctx, caller).await?;
    let (t, org, permit) =
        load_template(work.conn(), ctx, caller, id, Action::TEMPLATE_UPDATE).await?;
    let mut updated = t.clone();
    if let Some(n) = &req.name {
        updated.name = Name::parse("name", n)?.as_str().to_owned();
    }
    if let Some(d) = &req.display_name {
        updated.display_name = parse_text("display_name", d, 128)?;
    }
    if let Some(d) = &req.description {
        updated.description = parse_text("description", d, 4096)?;
    }
    if let Some(i) = &req.icon {
        updated.icon = parse_text("icon", i, 2048)?;
    }
    if let Some(v) = &req.active_version_id {
        let version = usable_version(work.conn(), &org, v, "active_version_id").await?;
        match &version.template_id {
            Some(owner) if owner != &t.id => {
                return Err(Error::validation(
                    "active_version_id",
                    "this version belongs to another template",
                ));
            }
            Some(_) => {}
            None => {
                store::templates::set_version_template(
                    &mut work.write(&permit)?,
                    &version.id,
                    &t.id,
                )
                .await?
            }
        }
        updated.active_version_id = version.id;
    }
    if updated == t {
        // Nothing changed: nothing is written (the work rolls back).
        return Ok(t);
    }
    updated.updated_at = work.now_s.clone();
    store::templates::update_template(&mut work.write(&permit)?, &updated)
        .await
        .map_err(Error::on_unique(format!(
            "a template named `{}` already exists in `{}`",
            updated.name, org.name
        )))?;
    work.audit(&permit, Change::updated(&t, &updated)).await?;
    work.commit().await?;
    Ok(updated)
}

/// Deletes a template; 409 while it has workspaces.
pub async fn delete_template(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (t, _, permit) =
        load_template(work.conn(), ctx, caller, id, Action::TEMPLATE_DELETE).await?;
    let n = store::workspaces::count_for_template(work.conn(), &t.id).await?;
    if n > 0 {
        let names = store::workspaces::names_for_template(work.conn(), &t.id, 10).await?;
        let more = if n > 10 { ", ..." } else { "" };
        return Err(
            Error::conflict(format!("template `{}` still has {n} workspace(s)", t.name))
                .with_detail(format!(
                    "used by {}{more}; delete those workspaces first",
                    names.join(", ")
                )),
        );
    }
    store::templates::delete_template(&mut work.write(&permit)?, &t.id).await?;
    work.audit(&permit, Change::deleted(&t)).await?;
    work.commit().await
}

/// A template's ACL as shown: `{users, groups}`.
fn acl_json(acl: &Acl) -> Value {
    json!({"users": acl.users, "groups": acl.groups})
}

pub async fn get_acl(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Value> {
    let mut conn = ctx.conn().await?;
    let (t, _, _) = load_template(&mut conn, ctx, caller, id, Action::TEMPLATE_READ).await?;
    Ok(acl_json(&t.acl))
}

/// Changes to a template's ACL.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AclPatch {
    /// `{user id or username: "use" | "admin" | null}` (null removes).
    #[serde(default)]
    pub users: BTreeMap<String, Option<String>>,
    /// `{group id: "use" | "admin" | null}`.
    #[serde(default)]
    pub groups: BTreeMap<String, Option<String>>,
}

fn check_role(field: &str, role: Option<&str>) -> Result<()> {
    match role {
        None | Some("use") | Some("admin") => Ok(()),
        Some(other) => Err(Error::validation(
            field,
            format!("`{other}` is not a template role (use, admin)"),
        )),
    }
}

pub async fn patch_acl(ctx: Ctx<'_>, caller: &Caller, id: &str, req: AclPatch) -> Result<Value> {
    let mut work = Work::begin(ctx, caller).await?;
    let (t, org, permit) =
        load_template(work.conn(), ctx, caller, id, Action::TEMPLATE_UPDATE).await?;
    let mut acl = t.acl.clone();
    for (key, role) in &req.users {
        let field = format!("users.{key}");
        check_role(&field, role.as_deref())?;
        let user = org_member_by_key(work.conn(), caller, &org, key, &field).await?;
        match role {
            Some(r) => acl.users.insert(user.id, r.clone()),
            None => acl.users.remove(&user.id),
        };
    }
    for (gid, role) in &req.groups {
        let field = format!("groups.{gid}");
        check_role(&field, role.as_deref())?;
        let group = store::groups::find(work.conn(), gid)
            .await?
            .filter(|g| g.organization_id == org.id)
            .ok_or_else(|| Error::validation(&field, "no such group in this organization"))?;
        match role {
            Some(r) => acl.groups.insert(group.id, r.clone()),
            None => acl.groups.remove(&group.id),
        };
    }
    if acl != t.acl {
        let mut updated = t.clone();
        updated.acl = acl.clone();
        updated.updated_at = work.now_s.clone();
        store::templates::update_template(&mut work.write(&permit)?, &updated).await?;
        work.audit(
            &permit,
            Change {
                organization_id: Some(&org.id),
                action: "update",
                resource_type: "template",
                resource_id: &t.id,
                resource_target: &t.name,
                diff: json!({"acl": {"old": t.acl, "new": acl}}),
                status_code: 200,
            },
        )
        .await?;
    }
    work.commit().await?;
    Ok(acl_json(&acl))
}
