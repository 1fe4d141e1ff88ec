//! `orgsync audit [filters]`: the audit log (`GET /audit`), newest first.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::client;
use super::output::{OutputArgs, Table, cell, items};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries of this organization (name or id).
    #[arg(long, short = 'O', value_name = "ORG")]
    pub org: Option<String>,
    /// Only entries made by this user (username or id).
    #[arg(long)]
    pub user: Option<String>,
    /// Only entries about this kind of resource, e.g. `organization`, `group`, `api_key`.
    #[arg(long, value_name = "TYPE")]
    pub resource_type: Option<String>,
    /// Only entries of this action, e.g. `create`, `delete`, `login`.
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries at or after this time: RFC 3339, or an age such as `2h` or `7d`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<String>,
    /// Only entries at or before this time: RFC 3339, or an age such as `30m`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<String>,
    /// At most this many entries (1-1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Skip this many entries first (the next page).
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// A time: RFC 3339 as is, or an age (`2h`: two hours ago) as RFC 3339.
fn parse_time(raw: &str) -> Result<String, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw.trim()) {
        return Ok(t.with_timezone(&chrono::Utc).to_rfc3339());
    }
    let age = super::parse_duration(raw)
        .map_err(|_| format!("`{raw}` is neither an RFC 3339 time nor an age such as 2h or 7d"))?;
    Ok((chrono::Utc::now() - age).to_rfc3339())
}

pub fn run(out: OutputArgs, args: AuditArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let filters = [
            ("organization", args.org),
            ("user", args.user),
            ("resource_type", args.resource_type),
            ("action", args.action),
            ("from", args.since),
            ("to", args.until),
            ("limit", Some(args.limit.to_string())),
            ("offset", Some(args.offset.to_string())),
        ];
        let query: Vec<(&str, String)> = filters
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        let page = api.get_query(&["audit"], &query).await?;
        out.show(&page, || print(&page))
    })
}

fn print(page: &Value) -> Result<()> {
    let entries = items(page.get("audit_logs").unwrap_or(&Value::Null));
    let mut table = Table::new(&[
        "TIME",
        "ACTION",
        "RESOURCE TYPE",
        "TARGET",
        "USER ID",
        "ORGANIZATION ID",
        "STATUS",
    ]);
    for e in entries {
        table.row(vec![
            cell(e, "time"),
            cell(e, "action"),
            cell(e, "resource_type"),
            cell(e, "resource_target"),
            cell(e, "user_id"),
            cell(e, "organization_id"),
            cell(e, "status_code"),
        ]);
    }
    table.print()?;
    let count = page.get("count").and_then(Value::as_i64).unwrap_or(0);
    if count > entries.len() as i64 {
        eprintln!(
            "{} of {count} entries; --limit and --offset page through them",
            entries.len()
        );
    }
    Ok(())
}
