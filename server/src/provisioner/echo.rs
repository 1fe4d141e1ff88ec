//! The `echo` executor: deterministic, no external tools. A template may hold an
//! `echo.json` with `{"delay_ms": N, "fail": "message", "lines": N}` to make
//! jobs slow, fail, or log more, which tests use for heartbeats and cancel.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::executor::{JobFailure, Logs};
use super::{AcquiredJob, JobResult, JobType, LogLine};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoConfig {
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    fail: Option<String>,
    #[serde(default)]
    lines: u32,
}

pub async fn run(
    job: &AcquiredJob,
    dir: &Path,
    logs: &Logs,
    cancel: &CancellationToken,
) -> Result<JobResult, JobFailure> {
    let config: EchoConfig = match std::fs::read_to_string(dir.join("echo.json")) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| JobFailure::Failed(format!("echo.json: {e}")))?,
        Err(_) => EchoConfig::default(),
    };
    let mut files: Vec<String> = Vec::new();
    list(dir, dir, &mut files);
    files.sort();
    let _ = logs.send(LogLine::new(
        "init",
        format!("echo: {} file(s): {}", files.len(), files.join(", ")),
    ));
    for i in 0..config.lines {
        let _ = logs.send(LogLine::new("plan", format!("echo: line {}", i + 1)));
    }
    if config.delay_ms > 0 {
        let _ = logs.send(LogLine::new(
            "plan",
            format!("echo: waiting {} ms", config.delay_ms),
        ));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(config.delay_ms)) => {}
            () = cancel.cancelled() => {
                let _ = logs.send(LogLine::new("plan", "echo: canceled"));
                return Err(JobFailure::Canceled);
            }
        }
    }
    if let Some(message) = config.fail {
        return Err(JobFailure::Failed(message));
    }
    match job.job_type {
        JobType::TemplateVersionImport => {
            let _ = logs.send(LogLine::new("import", "echo: template imported"));
            Ok(JobResult::default())
        }
        JobType::WorkspaceBuild => {
            let transition = job.transition.map_or("start", |t| t.as_str());
            let name = job.workspace_name.as_deref().unwrap_or_default();
            let _ = logs.send(LogLine::new(
                "apply",
                format!(
                    "echo: {transition} workspace `{name}` build #{}",
                    job.build_number.unwrap_or_default()
                ),
            ));
            for p in &job.parameters {
                let _ = logs.send(LogLine::new(
                    "apply",
                    format!("echo: parameter {} = {}", p.name, p.value),
                ));
            }
            let previous = job.state_base64.is_some();
            let state = serde_json::json!({
                "echo": true,
                "transition": transition,
                "build_number": job.build_number,
                "had_previous_state": previous,
                "parameters": job.parameters,
            });
            Ok(JobResult {
                state_base64: Some(
                    base64::engine::general_purpose::STANDARD.encode(state.to_string()),
                ),
            })
        }
    }
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            list(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
    }
}
