//! `orgsync create|list|stop|delete`: your workspaces.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::client::{self, ApiClient, UsageError};
use super::output::{self, OutputArgs, Table, cell, items};
use super::provisioner::parse_pairs;
use super::templates::follow_job;

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
    /// A rich parameter, `name=value` (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The workspace's name (one of yours).
    pub name: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
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
        let params: Vec<Value> = parse_pairs("--parameter", &args.parameters)?
            .into_iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        let ws = api
            .post(
                &["organizations", &org, "members", "me", "workspaces"],
                Some(&json!({"template_id": template["id"], "name": args.name, "rich_parameter_values": params})),
            )
            .await
            .with_context(|| format!("cannot create workspace `{}`", args.name))?;
        follow_job(&api, &build_job(&ws), "the build").await?;
        let ws = api.get(&["workspaces", client::str_of(&ws, "id")?]).await?;
        args.out.show(&ws, || {
            output::line(format!("workspace `{}` is running", cell(&ws, "name")))
        })
    })
}

async fn mine(api: &ApiClient, name: &str) -> Result<Value> {
    let list = api
        .get_query(&["workspaces"], &[("owner", "me".to_owned())])
        .await?;
    items(&list.get("workspaces").cloned().unwrap_or(Value::Null))
        .iter()
        .find(|w| cell(w, "name") == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("you have no workspace `{name}`"))
}

pub fn list(args: ListArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let list = api
            .get_query(&["workspaces"], &[("owner", "me".to_owned())])
            .await?;
        args.out.show(&list, || {
            let mut table = Table::new(&["NAME", "TEMPLATE", "LAST BUILD", "STATUS", "ID"]);
            for w in items(&list.get("workspaces").cloned().unwrap_or(Value::Null)) {
                let b = w.get("latest_build").cloned().unwrap_or(Value::Null);
                table.row(vec![
                    cell(w, "name"),
                    cell(w, "template_name"),
                    cell(&b, "transition"),
                    cell(&b, "status"),
                    cell(w, "id"),
                ]);
            }
            table.print()
        })
    })
}

pub fn stop(args: NameArgs) -> ExitCode {
    end_build(args, "stop", "stopped")
}

pub fn delete(args: NameArgs) -> ExitCode {
    end_build(args, "delete", "deleted")
}

/// `stop` or `delete` one of your workspaces: starts that build (a `stop`
/// build, or `DELETE /workspaces/{id}`), follows its job, and says it is `done`.
fn end_build(args: NameArgs, verb: &'static str, done: &'static str) -> ExitCode {
    client::run_with_session(async move |api| {
        let ws = mine(&api, &args.name).await?;
        let id = client::str_of(&ws, "id")?;
        let started = if verb == "delete" {
            api.delete(&["workspaces", id]).await
        } else {
            let body = json!({ "transition": verb });
            api.post(&["workspaces", id, "builds"], Some(&body)).await
        };
        let ws = started.with_context(|| format!("cannot {verb} workspace `{}`", args.name))?;
        follow_job(&api, &build_job(&ws), &format!("the {verb} build")).await?;
        args.out.show(&ws, || {
            output::line(format!("workspace `{}` {done}", args.name))
        })
    })
}
