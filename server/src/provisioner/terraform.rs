//! The `terraform` executor: `terraform init`, then `validate` (imports),
//! `apply` (start, stop) or `destroy` (delete) in the scratch directory, with
//! the workspace's state from its previous build. Parameters are passed as
//! `-var name=value`; the transition, workspace and owner names as
//! `TF_VAR_orgsync_*` environment variables (templates may declare them).

use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::executor::{JobFailure, Logs};
use super::{AcquiredJob, JobResult, JobType, LogLine, Transition};

const STATE_FILE: &str = "terraform.tfstate";

pub async fn run(
    binary: &Path,
    job: &AcquiredJob,
    dir: &Path,
    logs: &Logs,
    cancel: &CancellationToken,
) -> Result<JobResult, JobFailure> {
    if let Some(state) = &job.state_base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(state)
            .map_err(|e| JobFailure::Failed(format!("stored state is not valid base64: {e}")))?;
        std::fs::write(dir.join(STATE_FILE), bytes)
            .map_err(|e| JobFailure::Failed(format!("cannot write state: {e}")))?;
    }
    let env = [
        ("TF_IN_AUTOMATION", "1".to_owned()),
        ("TF_INPUT", "0".to_owned()),
        ("CHECKPOINT_DISABLE", "1".to_owned()),
        (
            "TF_VAR_orgsync_transition",
            job.transition.map_or("start", |t| t.as_str()).to_owned(),
        ),
        (
            "TF_VAR_orgsync_workspace_name",
            job.workspace_name.clone().unwrap_or_default(),
        ),
        (
            "TF_VAR_orgsync_workspace_owner",
            job.workspace_owner.clone().unwrap_or_default(),
        ),
    ];
    terraform(
        binary,
        dir,
        &["init", "-input=false", "-no-color"],
        &env,
        "init",
        logs,
        cancel,
    )
    .await?;
    match job.job_type {
        JobType::TemplateVersionImport => {
            terraform(
                binary,
                dir,
                &["validate", "-no-color"],
                &env,
                "validate",
                logs,
                cancel,
            )
            .await?;
            Ok(JobResult::default())
        }
        JobType::WorkspaceBuild => {
            let mut args: Vec<String> = match job.transition.unwrap_or(Transition::Start) {
                Transition::Start | Transition::Stop => vec!["apply".into()],
                Transition::Delete => vec!["destroy".into()],
            };
            args.extend([
                "-auto-approve".into(),
                "-input=false".into(),
                "-no-color".into(),
            ]);
            for p in &job.parameters {
                args.push("-var".into());
                args.push(format!("{}={}", p.name, p.value));
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let stage = if job.transition == Some(Transition::Delete) {
                "destroy"
            } else {
                "apply"
            };
            terraform(binary, dir, &refs, &env, stage, logs, cancel).await?;
            let state = std::fs::read(dir.join(STATE_FILE))
                .map_err(|e| JobFailure::Failed(format!("terraform wrote no state: {e}")))?;
            Ok(JobResult {
                state_base64: Some(base64::engine::general_purpose::STANDARD.encode(state)),
            })
        }
    }
}

/// Runs one terraform command, streaming its output to the job's logs.
async fn terraform(
    binary: &Path,
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
    stage: &str,
    logs: &Logs,
    cancel: &CancellationToken,
) -> Result<(), JobFailure> {
    let _ = logs.send(LogLine::new(
        stage,
        format!("$ terraform {}", args.join(" ")),
    ));
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| {
        JobFailure::Failed(format!(
            "cannot run `{}`: {e} (is terraform installed and on PATH?)",
            binary.display()
        ))
    })?;
    let forward = |stream: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
                   level: &'static str| {
        let logs = logs.clone();
        let stage = stage.to_owned();
        tokio::spawn(async move {
            let Some(stream) = stream else { return };
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = logs.send(LogLine {
                    stage: stage.clone(),
                    level: level.to_owned(),
                    output: line,
                });
            }
        })
    };
    let out = forward(child.stdout.take().map(|s| Box::new(s) as _), "info");
    let err = forward(child.stderr.take().map(|s| Box::new(s) as _), "error");
    let status = tokio::select! {
        s = child.wait() => s.map_err(|e| JobFailure::Failed(format!("terraform: {e}")))?,
        () = cancel.cancelled() => {
            let _ = child.kill().await;
            let _ = logs.send(LogLine::new(stage, "terraform interrupted: the job was canceled"));
            return Err(JobFailure::Canceled);
        }
    };
    let _ = out.await;
    let _ = err.await;
    if status.success() {
        Ok(())
    } else {
        Err(JobFailure::Failed(format!(
            "terraform {} exited with {status}",
            args.first().unwrap_or(&"")
        )))
    }
}
