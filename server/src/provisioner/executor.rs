//! Executors run one job: `echo` (deterministic, for tests) or `terraform`.

use std::path::PathBuf;

use base64::Engine as _;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::{AcquiredJob, JobResult, JobType, LogLine, Transition, archive};

/// Why a job did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    Failed(String),
    Canceled,
}

pub type Logs = UnboundedSender<LogLine>;

#[derive(Debug, Clone)]
pub enum Executor {
    Echo,
    Terraform { binary: PathBuf },
}

impl Executor {
    pub fn parse(name: &str) -> Option<Executor> {
        match name {
            "echo" => Some(Executor::Echo),
            "terraform" => Some(Executor::Terraform {
                binary: std::env::var_os("ORGSYNC_TERRAFORM_BINARY")
                    .map_or_else(|| PathBuf::from("terraform"), PathBuf::from),
            }),
            _ => None,
        }
    }

    /// The provisioner type this executor serves.
    pub fn provisioner(&self) -> &'static str {
        match self {
            Executor::Echo => "echo",
            Executor::Terraform { .. } => "terraform",
        }
    }

    /// Runs a job in a fresh scratch directory (removed afterwards).
    pub async fn run(
        &self,
        job: &AcquiredJob,
        logs: &Logs,
        cancel: &CancellationToken,
    ) -> Result<JobResult, JobFailure> {
        if job.job_type == JobType::WorkspaceBuild
            && job.transition == Some(Transition::Delete)
            && job.state_base64.is_none()
        {
            // No build ever succeeded (or none left state): nothing to
            // destroy, and nothing to fail on (such as parameters a failed
            // start was given).
            let _ = logs.send(LogLine::new(
                "destroy",
                "the workspace has no state: nothing to destroy",
            ));
            return Ok(JobResult::default());
        }
        let dir = tempfile::Builder::new()
            .prefix("orgsync-job-")
            .tempdir()
            .map_err(|e| JobFailure::Failed(format!("cannot create a scratch directory: {e}")))?;
        let tar = base64::engine::general_purpose::STANDARD
            .decode(&job.template_tar_base64)
            .map_err(|e| {
                JobFailure::Failed(format!("the template archive is not valid base64: {e}"))
            })?;
        archive::extract(&tar, dir.path()).map_err(|e| JobFailure::Failed(e.to_string()))?;
        let _ = logs.send(LogLine::new(
            "setup",
            format!("template files extracted ({} bytes)", tar.len()),
        ));
        match self {
            Executor::Echo => super::echo::run(job, dir.path(), logs, cancel).await,
            Executor::Terraform { binary } => {
                super::terraform::run(binary, job, dir.path(), logs, cancel).await
            }
        }
    }
}
