//! `orgsync groups create|list|add|remove ... --org ORG`. Groups are named
//! within their organization: the CLI looks the name up in the org's groups
//! and edits the group by id (`PATCH /groups/{id}`).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{self, ApiClient, str_of};
use super::output::{self, OutputArgs, Table, cell, items};

#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: GroupsCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Create a group in an organization.
    Create(CreateArgs),
    /// List an organization's groups.
    List(OrgArg),
    /// Add members of the organization to a group.
    Add(MembershipArgs),
    /// Remove users from a group.
    Remove(MembershipArgs),
}

#[derive(Debug, Args)]
pub struct OrgArg {
    /// The organization (name or id).
    #[arg(long, value_name = "ORG")]
    pub org: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The group's name: a lowercase slug.
    pub name: String,
    /// Display name.
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub org: OrgArg,
}

#[derive(Debug, Args)]
pub struct MembershipArgs {
    /// The group (name or id).
    pub group: String,
    /// The users (usernames or ids).
    #[arg(value_name = "USER", required = true, num_args = 1..)]
    pub users: Vec<String>,
    #[command(flatten)]
    pub org: OrgArg,
}

pub fn run(args: GroupsArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        GroupsCommand::Create(c) => create(&api, args.out, c).await,
        GroupsCommand::List(a) => list(&api, args.out, &a.org).await,
        GroupsCommand::Add(a) => change(&api, args.out, a, "add_users").await,
        GroupsCommand::Remove(a) => change(&api, args.out, a, "remove_users").await,
    })
}

async fn create(api: &ApiClient, out: OutputArgs, args: CreateArgs) -> Result<()> {
    let org = args.org.org.as_str();
    let body = client::fields([
        ("name", Some(json!(args.name))),
        ("display_name", args.display_name.map(Value::from)),
    ]);
    let group = api
        .post(&["organizations", org, "groups"], Some(&body))
        .await
        .with_context(|| {
            format!(
                "cannot create group `{}` in organization `{org}`",
                args.name
            )
        })?;
    out.show(&group, || {
        output::line(format!(
            "created group `{}` in organization `{org}` (id {})",
            cell(&group, "name"),
            cell(&group, "id")
        ))
    })
}

async fn list(api: &ApiClient, out: OutputArgs, org: &str) -> Result<()> {
    let groups = api.get(&["organizations", org, "groups"]).await?;
    out.show(&groups, || {
        let mut table = Table::new(&["NAME", "DISPLAY NAME", "SOURCE", "MEMBERS", "ID"]);
        for g in items(&groups) {
            let members = g.get("members").map_or(0, |m| items(m).len());
            table.row(vec![
                cell(g, "name"),
                cell(g, "display_name"),
                cell(g, "source"),
                members.to_string(),
                cell(g, "id"),
            ]);
        }
        table.print()
    })
}

/// The id of the org's group named (case-insensitively) or identified by `key`.
async fn find_group(api: &ApiClient, org: &str, key: &str) -> Result<String> {
    let groups = api.get(&["organizations", org, "groups"]).await?;
    let found = items(&groups).iter().find(|g| {
        g.get("id").and_then(Value::as_str) == Some(key)
            || g.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(key))
    });
    match found {
        Some(g) => Ok(str_of(g, "id")?.to_owned()),
        None => Err(anyhow!(
            "group `{key}` not found in organization `{org}`; `orgsync groups list --org {org}` lists them"
        )),
    }
}

async fn change(api: &ApiClient, out: OutputArgs, args: MembershipArgs, field: &str) -> Result<()> {
    let org = args.org.org.as_str();
    let id = find_group(api, org, &args.group).await?;
    let group = api
        .patch(&["groups", &id], &json!({ field: args.users }))
        .await
        .with_context(|| format!("cannot change the members of group `{}`", args.group))?;
    out.show(&group, || {
        let (verb, prep) = if field == "add_users" {
            ("added", "to")
        } else {
            ("removed", "from")
        };
        let members = group.get("members").map_or(0, |m| items(m).len());
        output::line(format!(
            "{verb} {} {prep} group `{}` in organization `{org}`; it has {members} member{}",
            args.users.join(", "),
            cell(&group, "name"),
            if members == 1 { "" } else { "s" }
        ))
    })
}
