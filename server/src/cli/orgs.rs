//! `orgsync organizations create|list|show|update|delete`, `organizations
//! members ...` and `organizations roles ...`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{self, ApiClient, UsageError};
use super::members::{self, MembersCommand};
use super::output::{self, OutputArgs, Table, cell, items};
use super::roles::{self, RolesCommand};

#[derive(Debug, Args)]
pub struct OrgsArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: OrgsCommand,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an organization (needs the site `owner` role); you become a member.
    Create(CreateArgs),
    /// List the organizations you may see.
    List,
    /// Show one organization (by name or id).
    Show {
        /// The organization's name or id.
        name: String,
    },
    /// Delete an organization; refused while it holds more than its Everyone
    /// group and you.
    Delete {
        /// The organization's name or id.
        name: String,
    },
    /// Change an organization's display name, description or icon.
    Update(UpdateArgs),
    /// Add, remove and list members, and set their organization roles.
    #[command(subcommand)]
    Members(MembersCommand),
    /// An organization's roles (`roles list -O ORG`).
    #[command(subcommand)]
    Roles(RolesCommand),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The organization's name or id.
    pub name: String,
    #[command(flatten)]
    pub fields: OrgFields,
    /// The icon's URL: http(s), or a path on this server (empty: none).
    #[arg(long, value_name = "URL")]
    pub icon: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The organization's name: a lowercase slug such as `data-platform`.
    pub name: String,
    #[command(flatten)]
    pub fields: OrgFields,
}

/// What `create` and `update` set alike.
#[derive(Debug, Args)]
pub struct OrgFields {
    /// Display name [default on create: the name].
    #[arg(long)]
    pub display_name: Option<String>,
    /// Description (empty: none).
    #[arg(long)]
    pub description: Option<String>,
}

pub fn run(args: OrgsArgs) -> ExitCode {
    client::run_with_session(async move |api| match args.command {
        OrgsCommand::Create(c) => create(&api, args.out, c).await,
        OrgsCommand::List => list(&api, args.out).await,
        OrgsCommand::Show { name } => show(&api, args.out, &name).await,
        OrgsCommand::Delete { name } => delete(&api, args.out, &name).await,
        OrgsCommand::Update(u) => update(&api, args.out, u).await,
        OrgsCommand::Members(cmd) => members::run(&api, args.out, cmd).await,
        OrgsCommand::Roles(cmd) => roles::run(&api, args.out, cmd).await,
    })
}

async fn update(api: &ApiClient, out: OutputArgs, args: UpdateArgs) -> Result<()> {
    let OrgFields {
        display_name,
        description,
    } = args.fields;
    if display_name.is_none() && description.is_none() && args.icon.is_none() {
        return Err(UsageError(
            "nothing to change: give --display-name, --description or --icon".into(),
        )
        .into());
    }
    let body = client::fields([
        ("display_name", display_name.map(Value::from)),
        ("description", description.map(Value::from)),
        ("icon", args.icon.map(Value::from)),
    ]);
    let org = api
        .patch(&["organizations", &args.name], &body)
        .await
        .with_context(|| format!("cannot update organization `{}`", args.name))?;
    out.show(&org, || {
        output::line(format!("updated organization `{}`", cell(&org, "name")))?;
        show_fields(&org)
    })
}

async fn create(api: &ApiClient, out: OutputArgs, args: CreateArgs) -> Result<()> {
    let body = client::fields([
        ("name", Some(json!(args.name))),
        ("display_name", args.fields.display_name.map(Value::from)),
        ("description", args.fields.description.map(Value::from)),
    ]);
    let org = api
        .post(&["organizations"], Some(&body))
        .await
        .with_context(|| format!("cannot create organization `{}`", args.name))?;
    out.show(&org, || {
        output::line(format!(
            "created organization `{}` (id {})",
            cell(&org, "name"),
            cell(&org, "id")
        ))
    })
}

async fn list(api: &ApiClient, out: OutputArgs) -> Result<()> {
    let orgs = api.get(&["organizations"]).await?;
    out.show(&orgs, || {
        let mut table = Table::new(&["NAME", "DISPLAY NAME", "DEFAULT", "ID"]);
        for o in items(&orgs) {
            table.row(vec![
                cell(o, "name"),
                cell(o, "display_name"),
                cell(o, "is_default"),
                cell(o, "id"),
            ]);
        }
        table.print()
    })
}

async fn show(api: &ApiClient, out: OutputArgs, name: &str) -> Result<()> {
    let org = api.get(&["organizations", name]).await?;
    out.show(&org, || show_fields(&org))
}

/// An organization as `key: value` lines.
fn show_fields(org: &Value) -> Result<()> {
    output::fields(&[
        ("Name", cell(org, "name")),
        ("Display name", cell(org, "display_name")),
        ("Description", cell(org, "description")),
        ("Icon", cell(org, "icon")),
        ("Default", cell(org, "is_default")),
        ("ID", cell(org, "id")),
        ("Created", cell(org, "created_at")),
        ("Updated", cell(org, "updated_at")),
    ])
}

async fn delete(api: &ApiClient, out: OutputArgs, name: &str) -> Result<()> {
    let body = api
        .delete(&["organizations", name])
        .await
        .with_context(|| format!("cannot delete organization `{name}`"))?;
    out.show(&body, || {
        output::line(format!("deleted organization `{name}`"))
    })
}
