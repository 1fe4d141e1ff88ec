//! `orgsync create|list|show|start|stop|restart|delete`: workspaces. A
//! workspace argument is `NAME` (one of yours) or `OWNER/NAME` (someone
//! else's, when the policies let you read it).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use super::client::{self, ApiClient, UsageError};
use super::output::{self, OutputArgs, cell, items};
use super::provisioner::parse_pairs;
use super::templates::{Follow, follow_job};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The workspace's name (a lowercase slug, unique among yours).
    pub name: String,
    /// The template (name or id).
    #[arg(long, short = 't')]
    pub template: String,
    /// The template's organization; needed when several of your orgs have a
    /// template of that name.
    #[arg(long, short = 'O', value_name = "ORG")]
    pub org: Option<String>,
    /// A rich parameter, `name=value` (repeatable); the template's variables
    /// without a default must be given.
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The workspace: `NAME` (yours) or `OWNER/NAME`.
    pub name: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The workspace: `NAME` (yours) or `OWNER/NAME`.
    pub name: String,
    /// A rich parameter, `name=value` (repeatable); replaces the last build's
    /// parameters, which are reused when none is given.
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The workspace: `NAME` (yours) or `OWNER/NAME`.
    pub name: String,
    /// Remove the workspace without running destroy: its resources, if any,
    /// are left as they are. For template and organization admins.
    #[arg(long)]
    pub orphan: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Every workspace you may read (other users' too), not only yours.
    #[arg(long, short = 'a')]
    pub all: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn build_job(ws: &Value) -> String {
    ws.get("latest_build")
        .and_then(|b| b.get("job_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `--parameter name=value` flags as `rich_parameter_values`.
fn parameter_values(raw: &[String]) -> Result<Vec<Value>> {
    Ok(parse_pairs("--parameter", raw)?
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect())
}

pub fn create(args: CreateArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let templates = match &args.org {
            Some(o) => api.get(&["organizations", o, "templates"]).await?,
            None => api.get(&["templates"]).await?,
        };
        let matches: Vec<&Value> = items(&templates)
            .iter()
            .filter(|t| cell(t, "name") == args.template || cell(t, "id") == args.template)
            .collect();
        let template = match matches.as_slice() {
            [] => bail!(
                "no template `{}` you may use{}",
                args.template,
                args.org
                    .as_ref()
                    .map(|o| format!(" in `{o}`"))
                    .unwrap_or_default()
            ),
            [one] => (*one).clone(),
            _ => {
                return Err(UsageError(format!(
                    "several organizations have a template `{}`: pass --org",
                    args.template
                ))
                .into());
            }
        };
        let org = client::str_of(&template, "organization_id")?.to_owned();
        let params = parameter_values(&args.parameters)?;
        let ws = api
            .post(
                &["organizations", &org, "members", "me", "workspaces"],
                Some(&json!({"template_id": template["id"], "name": args.name, "rich_parameter_values": params})),
            )
            .await
            .with_context(|| format!("cannot create workspace `{}`", args.name))?;
        let ws = follow_build(&api, &ws, "the build").await?;
        args.out.show(&ws, || {
            output::line(format!("workspace `{}` is running", cell(&ws, "name")))
        })
    })
}

/// Follows the latest build of `ws` (just started) to its end, then reads the
/// workspace again (`null` once a delete build removed it).
async fn follow_build(api: &ApiClient, ws: &Value, what: &str) -> Result<Value> {
    let follow = Follow {
        what,
        org: ws.get("organization_name").and_then(Value::as_str),
        timeout: None,
    };
    follow_job(api, &build_job(ws), &follow).await?;
    let id = client::str_of(ws, "id")?;
    match api.get(&["workspaces", id]).await {
        Err(e) if client::api_status(&e) == Some(404) => Ok(Value::Null),
        other => other,
    }
}

/// `OWNER/NAME` or `NAME` (the caller's own).
fn split_owner(arg: &str) -> Result<(&str, &str)> {
    match arg.split_once('/') {
        None => Ok(("me", arg)),
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((owner, name))
        }
        Some(_) => Err(UsageError(format!("`{arg}` is not `NAME` or `OWNER/NAME`")).into()),
    }
}

async fn workspaces_of(api: &ApiClient, owner: Option<&str>) -> Result<Value> {
    let query: Vec<(&str, String)> = owner.map(|o| ("owner", o.to_owned())).into_iter().collect();
    api.get_query(&["workspaces"], &query).await
}

fn workspace_items(list: &Value) -> &[Value] {
    list.get("workspaces").map_or(&[], items)
}

/// Finds a workspace by `NAME` (yours) or `OWNER/NAME`. When you have none of
/// that name, the error names the other users' workspaces of that name you
/// may read, as `OWNER/NAME`.
async fn find(api: &ApiClient, arg: &str) -> Result<Value> {
    let (owner, name) = split_owner(arg)?;
    let list = workspaces_of(api, Some(owner)).await?;
    if let Some(w) = workspace_items(&list)
        .iter()
        .find(|w| cell(w, "name") == name)
    {
        return Ok(w.clone());
    }
    if owner != "me" {
        bail!("no workspace `{owner}/{name}` that you may read");
    }
    let all = workspaces_of(api, None).await?;
    let others: Vec<String> = workspace_items(&all)
        .iter()
        .filter(|w| cell(w, "name") == name)
        .map(|w| format!("`{}/{name}`", cell(w, "owner_name")))
        .collect();
    if others.is_empty() {
        Err(anyhow!("you have no workspace `{name}`"))
    } else {
        Err(anyhow!(
            "`{name}` is not one of your workspaces; did you mean {}? (another user's \
             workspace is named OWNER/NAME)",
            others.join(" or ")
        ))
    }
}

pub fn list(args: ListArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let owner = (!args.all).then_some("me");
        let list = workspaces_of(&api, owner).await?;
        args.out.show(&list, || {
            output::table_of(
                workspace_items(&list),
                &[
                    "NAME",
                    "OWNER",
                    "ORGANIZATION",
                    "TEMPLATE",
                    "LAST BUILD",
                    "STATUS",
                    "ID",
                ],
                |w| {
                    let b = w.get("latest_build").cloned().unwrap_or(Value::Null);
                    vec![
                        cell(w, "name"),
                        cell(w, "owner_name"),
                        cell(w, "organization_name"),
                        cell(w, "template_name"),
                        cell(&b, "transition"),
                        cell(&b, "status"),
                        cell(w, "id"),
                    ]
                },
            )
        })
    })
}

pub fn show(args: NameArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let ws = find(&api, &args.name).await?;
        args.out.show(&ws, || {
            let b = ws.get("latest_build").cloned().unwrap_or(Value::Null);
            let mut pairs = vec![
                ("name", cell(&ws, "name")),
                ("owner", cell(&ws, "owner_name")),
                ("organization", cell(&ws, "organization_name")),
                ("template", cell(&ws, "template_name")),
                ("version", cell(&b, "template_version_name")),
                (
                    "latest build",
                    format!(
                        "#{} {} {}",
                        cell(&b, "build_number"),
                        cell(&b, "transition"),
                        cell(&b, "status")
                    ),
                ),
                ("created", cell(&ws, "created_at")),
                ("id", cell(&ws, "id")),
            ];
            if b.get("error").is_some_and(|e| !e.is_null()) {
                pairs.push(("build error", cell(&b, "error")));
            }
            output::fields(&pairs)
        })
    })
}

/// Starts a build of a workspace and follows it; returns the workspace after.
async fn build(api: &ApiClient, ws: &Value, body: &Value, verb: &str) -> Result<Value> {
    let id = client::str_of(ws, "id")?;
    let started = api
        .post(&["workspaces", id, "builds"], Some(body))
        .await
        .with_context(|| format!("cannot {verb} workspace `{}`", cell(ws, "name")))?;
    follow_build(api, &started, &format!("the {verb} build")).await
}

/// The body of a `start` build: the given parameters, else the last build's.
fn start_body(parameters: &[String]) -> Result<Value> {
    let mut body = json!({"transition": "start"});
    if !parameters.is_empty() {
        body["rich_parameter_values"] = json!(parameter_values(parameters)?);
    }
    Ok(body)
}

pub fn start(args: StartArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let body = start_body(&args.parameters)?;
        let ws = find(&api, &args.name).await?;
        let ws = build(&api, &ws, &body, "start").await?;
        args.out.show(&ws, || {
            output::line(format!("workspace `{}` is running", args.name))
        })
    })
}

/// `restart`: a `stop` build, then a `start` build, each followed to its end.
pub fn restart(args: StartArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let body = start_body(&args.parameters)?;
        let ws = find(&api, &args.name).await?;
        let ws = build(&api, &ws, &json!({"transition": "stop"}), "stop").await?;
        let ws = build(&api, &ws, &body, "start").await?;
        args.out.show(&ws, || {
            output::line(format!("workspace `{}` restarted and running", args.name))
        })
    })
}

pub fn stop(args: NameArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let ws = find(&api, &args.name).await?;
        let ws = build(&api, &ws, &json!({"transition": "stop"}), "stop").await?;
        args.out.show(&ws, || {
            output::line(format!("workspace `{}` stopped", args.name))
        })
    })
}

/// `delete`: a `delete` build (destroy), followed to its end; with
/// `--orphan`, the workspace is removed at once without destroy.
pub fn delete(args: DeleteArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let ws = find(&api, &args.name).await?;
        let id = client::str_of(&ws, "id")?;
        if args.orphan {
            let body = json!({"transition": "delete", "orphan": true});
            let gone = api
                .post(&["workspaces", id, "builds"], Some(&body))
                .await
                .with_context(|| format!("cannot orphan-delete workspace `{}`", args.name))?;
            return args.out.show(&gone, || {
                output::line(format!(
                    "workspace `{}` deleted without running destroy (orphaned: its resources, \
                     if any, were left as they are)",
                    args.name
                ))
            });
        }
        let started = api
            .delete(&["workspaces", id])
            .await
            .with_context(|| format!("cannot delete workspace `{}`", args.name))?;
        follow_build(&api, &started, "the delete build").await?;
        args.out.show(&started, || {
            output::line(format!("workspace `{}` deleted", args.name))
        })
    })
}
