//! `orgsync idpsync preview --claims FILE [--user U] [--organization ORG]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{self, ApiClient, UsageError};
use super::output::{self, OutputArgs, cell, items};

#[derive(Debug, Args)]
pub struct IdpsyncArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(subcommand)]
    pub command: IdpsyncCommand,
}

#[derive(Debug, Subcommand)]
pub enum IdpsyncCommand {
    /// Show what a login with these claims would change (writes nothing).
    Preview {
        /// A JSON file with the claims (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        claims: PathBuf,
        /// An existing user (username or id); absent: a new user.
        #[arg(long)]
        user: Option<String>,
        /// Only this organization's group and role sync (for a member of it):
        /// what an organization admin may preview.
        #[arg(long, short = 'O', visible_alias = "org", value_name = "ORG")]
        organization: Option<String>,
    },
}

pub fn run(args: IdpsyncArgs) -> ExitCode {
    client::run(async move {
        let IdpsyncCommand::Preview {
            claims,
            user,
            organization,
        } = args.command;
        // The local input first: a bad file is reported as such, logged in or not.
        let claims = read_claims(&claims)?;
        let api = ApiClient::from_session()?;
        let mut body = json!({"claims": claims});
        if let Some(u) = user {
            body["user"] = json!(u);
        }
        if let Some(o) = organization {
            body["organization"] = json!(o);
        }
        let plan = api.post(&["idpsync", "preview"], Some(&body)).await?;
        args.out.show(&plan, || print_plan(&plan))
    })
}

/// The claims of `--claims FILE` (`-`: standard input): a JSON object. An
/// unreadable file is an I/O error (exit 1); content that is not a JSON object
/// is a usage error (exit 2). Both name the file.
fn read_claims(path: &Path) -> Result<Value> {
    let (text, source) = if path.as_os_str() == "-" {
        (
            std::io::read_to_string(std::io::stdin())
                .context("cannot read claims from standard input")?,
            "standard input".to_owned(),
        )
    } else {
        (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the claims file `{}`", path.display()))?,
            format!("the claims file `{}`", path.display()),
        )
    };
    let claims: Value = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("{source} is not JSON: {e}")))?;
    if !claims.is_object() {
        return Err(UsageError(format!(
            "{source} must hold a JSON object (claim name -> value), not {}",
            kind(&claims)
        ))
        .into());
    }
    Ok(claims)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn changes(section: &Value, what: &str, scope: &str) -> Result<()> {
    for c in items(section.get("add").unwrap_or(&Value::Null)) {
        let create = if c.get("create").and_then(Value::as_bool) == Some(true) {
            " (create)"
        } else {
            ""
        };
        output::line(format!(
            "  + {what} {}{create} in {scope}   ({})",
            cell(c, "name"),
            cell(c, "reason")
        ))?;
    }
    for c in items(section.get("remove").unwrap_or(&Value::Null)) {
        output::line(format!(
            "  - {what} {} in {scope}   ({})",
            cell(c, "name"),
            cell(c, "reason")
        ))?;
    }
    let result: Vec<String> = items(section.get("result").unwrap_or(&Value::Null))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    output::line(format!(
        "  = {what}s in {scope}: {}",
        if result.is_empty() {
            "-".to_owned()
        } else {
            result.join(", ")
        }
    ))
}

fn print_plan(plan: &Value) -> Result<()> {
    if let Some(r) = plan.get("refused").filter(|r| !r.is_null()) {
        output::line(format!(
            "login refused ({}): {}",
            cell(r, "status"),
            cell(r, "message")
        ))?;
    }
    // An org-scoped preview has no organization or site role sync.
    if plan.get("organizations").is_some() {
        output::line("organizations:")?;
        changes(&plan["organizations"], "organization", "the deployment")?;
    }
    if let Some(groups) = plan.get("groups").and_then(Value::as_object) {
        output::line("groups:")?;
        for (org, g) in groups {
            changes(g, "group", org)?;
        }
    }
    if let Some(roles) = plan.get("roles").and_then(Value::as_object) {
        output::line("roles:")?;
        for (org, r) in roles {
            changes(r, "role", org)?;
        }
    }
    if plan.get("site_roles").is_some() {
        output::line("site roles:")?;
        changes(&plan["site_roles"], "site role", "the deployment")?;
    }
    let problems = items(plan.get("problems").unwrap_or(&Value::Null));
    if !problems.is_empty() {
        output::line("problems:")?;
        for p in problems {
            let org = p
                .get("organization")
                .and_then(Value::as_str)
                .unwrap_or("deployment");
            output::line(format!(
                "  ! [{org}] {}: {}",
                cell(p, "kind"),
                cell(p, "detail")
            ))?;
        }
    }
    Ok(())
}
