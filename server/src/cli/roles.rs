//! `orgsync organizations roles list -O ORG`: an organization's roles, and
//! whether you may assign each (`GET /organizations/{org}/members/roles`).

use anyhow::Result;
use clap::Subcommand;

use super::OrgArg;
use super::client::ApiClient;
use super::output::OutputArgs;

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// List the organization's roles, with whether you may assign each.
    List(OrgArg),
}

pub async fn run(api: &ApiClient, out: OutputArgs, cmd: RolesCommand) -> Result<()> {
    match cmd {
        RolesCommand::List(a) => {
            let roles = api
                .get(&["organizations", &a.org, "members", "roles"])
                .await?;
            out.list(
                &roles,
                &[
                    ("NAME", "name"),
                    ("DISPLAY NAME", "display_name"),
                    ("ASSIGNABLE", "assignable"),
                ],
            )
        }
    }
}
