//! `orgsync organizations members add|remove|list|set-roles ... -O ORG`.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::OrgArg;
use super::client::ApiClient;
use super::output::{self, OutputArgs, Table, cell, items};

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Add a user to an organization (no organization role).
    Add(MemberArgs),
    /// Remove a member from an organization and from all its groups.
    Remove(MemberArgs),
    /// List an organization's members and their organization roles.
    List(OrgArg),
    /// Set a member's organization roles (none given: clear them).
    SetRoles(SetRolesArgs),
}

#[derive(Debug, Args)]
pub struct MemberArgs {
    /// The user (username, id, or `me`).
    pub user: String,
    #[command(flatten)]
    pub org: OrgArg,
}

#[derive(Debug, Args)]
pub struct SetRolesArgs {
    /// The member (username, id, or `me`).
    pub user: String,
    /// Organization roles, e.g. `organization-admin` (replaces the current ones).
    #[arg(value_name = "ROLE", num_args = 0..)]
    pub roles: Vec<String>,
    #[command(flatten)]
    pub org: OrgArg,
}

pub async fn run(api: &ApiClient, out: OutputArgs, cmd: MembersCommand) -> Result<()> {
    match cmd {
        MembersCommand::Add(a) => {
            let org = a.org.org.as_str();
            let member = api
                .post(&["organizations", org, "members", &a.user], None)
                .await
                .with_context(|| format!("cannot add `{}` to organization `{org}`", a.user))?;
            out.show(&member, || {
                output::line(format!(
                    "added `{}` to organization `{org}`",
                    cell(&member, "username")
                ))
            })
        }
        MembersCommand::Remove(a) => {
            let org = a.org.org.as_str();
            let body = api
                .delete(&["organizations", org, "members", &a.user])
                .await
                .with_context(|| format!("cannot remove `{}` from organization `{org}`", a.user))?;
            out.show(&body, || {
                output::line(format!("removed `{}` from organization `{org}`", a.user))
            })
        }
        MembersCommand::List(a) => {
            let members = api.get(&["organizations", &a.org, "members"]).await?;
            out.show(&members, || {
                let mut table = Table::new(&["USERNAME", "NAME", "EMAIL", "ROLES", "USER ID"]);
                for m in items(&members) {
                    table.row(vec![
                        cell(m, "username"),
                        cell(m, "name"),
                        cell(m, "email"),
                        cell(m, "roles"),
                        cell(m, "user_id"),
                    ]);
                }
                table.print()
            })
        }
        MembersCommand::SetRoles(a) => {
            let org = a.org.org.as_str();
            let member = api
                .put(
                    &["organizations", org, "members", &a.user, "roles"],
                    Some(&json!({"roles": a.roles})),
                )
                .await
                .with_context(|| {
                    format!(
                        "cannot set the roles of `{}` in organization `{org}`",
                        a.user
                    )
                })?;
            out.show(&member, || {
                let roles = match cell(&member, "roles").as_str() {
                    "-" => "none besides organization-member".to_owned(),
                    r => r.to_owned(),
                };
                output::line(format!(
                    "roles of `{}` in organization `{org}`: {roles}",
                    cell(&member, "username")
                ))
            })
        }
    }
}
