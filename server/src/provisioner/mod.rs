//! Provisioning: the job queue's domain types, tag matching, template archives,
//! the executors (`echo`, `terraform`) and the daemon loop shared by the
//! built-in daemons (in-process) and `orgsync provisionerd` (over HTTP).

pub mod archive;
pub mod builtin;
pub mod daemon;
pub mod echo;
pub mod executor;
pub mod http;
pub mod terraform;
pub mod variables;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Provisioner tags: `{key: value}`.
pub type Tags = BTreeMap<String, String>;

/// The provisioner types a daemon can run.
pub const PROVISIONERS: &[&str] = &["terraform", "echo"];

pub fn is_provisioner(name: &str) -> bool {
    PROVISIONERS.contains(&name)
}

/// The tags every job and daemon has unless told otherwise.
pub fn default_tags() -> Tags {
    Tags::from([
        ("scope".to_owned(), "organization".to_owned()),
        ("owner".to_owned(), String::new()),
    ])
}

/// Effective tags: the defaults overlaid with the given ones.
pub fn effective_tags(given: &Tags) -> Tags {
    let mut t = default_tags();
    t.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    t
}

/// Validates user-supplied tags: keys are `[A-Za-z0-9_.-]{1,64}`, values at most
/// 256 printable characters, at most 32 tags.
pub fn validate_tags(tags: &Tags) -> Result<(), String> {
    if tags.len() > 32 {
        return Err("at most 32 tags".to_owned());
    }
    for (k, v) in tags {
        let key_ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !key_ok {
            return Err(format!("tag key `{k}` must be 1-64 of A-Z a-z 0-9 _ . -"));
        }
        if v.chars().count() > 256 || v.chars().any(char::is_control) {
            return Err(format!(
                "tag `{k}` has a value longer than 256 characters or with control characters"
            ));
        }
    }
    Ok(())
}

/// Whether a daemon with `daemon` tags may take a job with `job` tags: the
/// job's tags are a subset of the daemon's, and an untagged job (only the
/// default tags) goes only to an untagged daemon.
pub fn tags_match(job: &Tags, daemon: &Tags) -> bool {
    let subset = job.iter().all(|(k, v)| daemon.get(k) == Some(v));
    let untagged = default_tags();
    subset && (job != &untagged || daemon == &untagged)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    TemplateVersionImport,
    WorkspaceBuild,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::TemplateVersionImport => "template_version_import",
            JobType::WorkspaceBuild => "workspace_build",
        }
    }

    pub fn parse(s: &str) -> JobType {
        if s == "workspace_build" {
            JobType::WorkspaceBuild
        } else {
            JobType::TemplateVersionImport
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceling,
    Canceled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceling => "canceling",
            JobStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "pending" => JobStatus::Pending,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "canceling" => JobStatus::Canceling,
            "canceled" => JobStatus::Canceled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// Workspace build transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Start,
    Stop,
    Delete,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Start => "start",
            Transition::Stop => "stop",
            Transition::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Transition {
        match s {
            "stop" => Transition::Stop,
            "delete" => Transition::Delete,
            _ => Transition::Start,
        }
    }
}

/// A rich parameter value given at workspace creation or build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
}

/// What a daemon receives when it acquires a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcquiredJob {
    pub id: String,
    pub job_type: JobType,
    pub organization_id: String,
    pub provisioner: String,
    /// The template archive (tar), base64.
    pub template_tar_base64: String,
    pub template_version_id: String,
    /// For builds.
    pub workspace_id: Option<String>,
    pub workspace_name: Option<String>,
    pub workspace_owner: Option<String>,
    pub transition: Option<Transition>,
    pub build_number: Option<i64>,
    #[serde(default)]
    pub parameters: Vec<ParameterValue>,
    /// The workspace's Terraform state from its previous build (base64).
    pub state_base64: Option<String>,
}

/// What a daemon reports when a job succeeds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    /// The new Terraform state of a build (base64).
    #[serde(default)]
    pub state_base64: Option<String>,
}

/// One log line of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    #[serde(default = "default_stage")]
    pub stage: String,
    #[serde(default = "default_level")]
    pub level: String,
    pub output: String,
}

fn default_stage() -> String {
    "provision".to_owned()
}

fn default_level() -> String {
    "info".to_owned()
}

impl LogLine {
    pub fn new(stage: &str, output: impl Into<String>) -> Self {
        Self {
            stage: stage.to_owned(),
            level: "info".to_owned(),
            output: output.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        effective_tags(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn tag_matching_follows_the_subset_and_untagged_rules() {
        // Untagged job -> untagged daemon only.
        assert!(tags_match(&t(&[]), &t(&[])));
        assert!(!tags_match(&t(&[]), &t(&[("env", "prod")])));
        // Tagged job -> daemon with a superset.
        assert!(tags_match(
            &t(&[("env", "prod")]),
            &t(&[("env", "prod"), ("gpu", "yes")])
        ));
        assert!(!tags_match(&t(&[("env", "prod")]), &t(&[("env", "dev")])));
        assert!(!tags_match(
            &t(&[("env", "prod"), ("gpu", "yes")]),
            &t(&[("env", "prod")])
        ));
        assert!(!tags_match(&t(&[("env", "prod")]), &t(&[])));
    }

    #[test]
    fn tag_validation() {
        assert!(validate_tags(&t(&[("env", "prod")])).is_ok());
        let bad: Tags = [("bad key".to_owned(), "x".to_owned())].into();
        assert!(validate_tags(&bad).is_err());
        let long: Tags = [("k".to_owned(), "x".repeat(300))].into();
        assert!(validate_tags(&long).is_err());
    }
}
