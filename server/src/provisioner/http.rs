//! The daemon side of the HTTP protocol (see `api::provisionerd`): what
//! `orgsync provisionerd start` runs.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::daemon::{JobSource, SourceError};
use super::{AcquiredJob, JobResult, LogLine};

const KEY_HEADER: &str = "Orgsync-Provisioner-Key";

/// A registered daemon talking to a server.
pub struct HttpSource {
    http: reqwest::Client,
    base: String,
    key: String,
    pub daemon_id: String,
    pub organization_id: String,
    pub organization_name: String,
    /// How long one acquire call waits on the server.
    pub wait: Duration,
}

fn transport(e: reqwest::Error) -> SourceError {
    SourceError::Transient(format!("cannot reach the server: {e}"))
}

async fn read<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, SourceError> {
    let status = resp.status();
    let text = resp.text().await.map_err(transport)?;
    if status.is_success() {
        return serde_json::from_str(&text)
            .map_err(|e| SourceError::Transient(format!("bad response: {e}")));
    }
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or(text);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        Err(SourceError::Unauthorized(message))
    } else {
        Err(SourceError::Transient(format!("{status}: {message}")))
    }
}

impl HttpSource {
    /// Registers a daemon with the key's organization and tags.
    pub async fn register(
        url: &str,
        key: &str,
        name: &str,
        provisioners: &[String],
    ) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| SourceError::Transient(e.to_string()))?;
        let base = format!("{}/api/v2/provisionerd", url.trim_end_matches('/'));
        let resp = http
            .post(format!("{base}/register"))
            .header(KEY_HEADER, key)
            .json(&json!({"name": name, "provisioners": provisioners, "version": env!("CARGO_PKG_VERSION")}))
            .send()
            .await
            .map_err(transport)?;
        let body: Value = read(resp).await?;
        let field = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Self {
            http,
            base,
            key: key.to_owned(),
            daemon_id: field("id"),
            organization_id: field("organization_id"),
            organization_name: field("organization_name"),
            wait: Duration::from_secs(20),
        })
    }

    fn job_url(&self, job_id: &str, what: &str) -> String {
        format!("{}/{}/jobs/{job_id}/{what}", self.base, self.daemon_id)
    }

    async fn post_empty(&self, url: String, body: Value) -> Result<(), SourceError> {
        let resp = self
            .http
            .post(url)
            .header(KEY_HEADER, &self.key)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(());
        }
        read::<Value>(resp).await.map(|_| ())
    }
}

impl JobSource for HttpSource {
    async fn acquire(&self) -> Result<Option<AcquiredJob>, SourceError> {
        let resp = self
            .http
            .post(format!(
                "{}/{}/acquire?wait_ms={}",
                self.base,
                self.daemon_id,
                self.wait.as_millis()
            ))
            .header(KEY_HEADER, &self.key)
            .send()
            .await
            .map_err(transport)?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        read::<AcquiredJob>(resp).await.map(Some)
    }

    async fn heartbeat(&self, job_id: &str) -> Result<bool, SourceError> {
        let resp = self
            .http
            .post(self.job_url(job_id, "heartbeat"))
            .header(KEY_HEADER, &self.key)
            .send()
            .await
            .map_err(transport)?;
        let body: Value = read(resp).await?;
        Ok(body.get("cancel").and_then(Value::as_bool).unwrap_or(false))
    }

    async fn logs(&self, job_id: &str, lines: Vec<LogLine>) -> Result<(), SourceError> {
        self.post_empty(self.job_url(job_id, "logs"), json!({"logs": lines}))
            .await
    }

    async fn complete(&self, job_id: &str, result: JobResult) -> Result<(), SourceError> {
        self.post_empty(
            self.job_url(job_id, "complete"),
            serde_json::to_value(result).unwrap_or_default(),
        )
        .await
    }

    async fn fail(&self, job_id: &str, error: &str, canceled: bool) -> Result<(), SourceError> {
        self.post_empty(
            self.job_url(job_id, "fail"),
            json!({"error": error, "canceled": canceled}),
        )
        .await
    }
}
