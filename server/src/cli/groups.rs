//! `orgsync groups create|list|add|remove|update|delete ... -O ORG`. Groups
//! are named within their organization: the CLI looks the name up in the
//! org's groups and edits the group by id (`PATCH|DELETE /groups/{id}`).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::OrgArg;
use super::client::{self, ApiClient, UsageError};
use super::output::{self, OutputArgs, Table, cell, find_id, items};

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
    /// Rename a group or change its display name.
    Update(UpdateArgs),
    /// Delete a group (not `Everyone`); its members stay in the organization.
    Delete(GroupArg),
}

#[derive(Debug, Args)]
pub struct GroupArg {
    /// The group (name or id).
    pub group: String,
    #[command(flatten)]
    pub org: OrgArg,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub target: GroupArg,
    /// The new name: a lowercase slug.
    #[arg(long)]
    pub name: Option<String>,
    /// The new display name (empty: none).
    #[arg(long)]
    pub display_name: Option<String>,
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
        GroupsCommand::Update(a) => update(&api, args.out, a).await,
        GroupsCommand::Delete(a) => delete(&api, args.out, a).await,
    })
}

async fn update(api: &ApiClient, out: OutputArgs, args: UpdateArgs) -> Result<()> {
    let GroupArg { group, org } = &args.target;
    if args.name.is_none() && args.display_name.is_none() {
        return Err(UsageError("nothing to change: give --name or --display-name".into()).into());
    }
    let id = find_group(api, &org.org, group).await?;
    let body = client::fields([
        ("name", args.name.map(Value::from)),
        ("display_name", args.display_name.map(Value::from)),
    ]);
    let updated = api
        .patch(&["groups", &id], &body)
        .await
        .with_context(|| format!("cannot update group `{group}`"))?;
    out.show(&updated, || {
        output::fields(&[
            ("Updated group", cell(&updated, "name")),
            ("Display name", cell(&updated, "display_name")),
            ("Organization", org.org.clone()),
            ("ID", id),
        ])
    })
}

async fn delete(api: &ApiClient, out: OutputArgs, args: GroupArg) -> Result<()> {
    let org = args.org.org.as_str();
    let id = find_group(api, org, &args.group).await?;
    let body = api
        .delete(&["groups", &id])
        .await
        .with_context(|| format!("cannot delete group `{}`", args.group))?;
    out.show(&body, || {
        output::line(format!(
            "deleted group `{}` from organization `{org}`",
            args.group
        ))
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
    find_id(&groups, key, "name").ok_or_else(|| {
        anyhow!(
            "group `{key}` not found in organization `{org}`; `orgsync groups list -O {org}` lists them"
        )
    })
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
