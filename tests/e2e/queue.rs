//! The job queue under concurrency: 8 daemons racing over 2,000 queued jobs
//! never take a job twice and never lose one. Each daemon stops when the
//! database holds no pending job of the org any more (or at the deadline).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orgsync::jobs::{self, DaemonIdentity};
use orgsync::provisioner::{JobResult, default_tags};
use serde_json::json;

use crate::harness::TestServer;
use crate::provisioning::{import_version, template_tar};

const JOBS: usize = 2000;
const DAEMONS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_daemons_2000_jobs_no_double_take_no_loss() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let org_id = owner.create_org("batch").await;
    // One imported version... then 1,999 more queued jobs for versions of the
    // same file, written directly (the API path is covered elsewhere).
    let v = import_version(
        &owner,
        "batch",
        "echo",
        template_tar(&[("main.tf", "#")]),
        json!({}),
    )
    .await;
    let file_hash = v["file_hash"].as_str().unwrap().to_owned();
    {
        let mut tx = s.state.db.begin().await.unwrap();
        let tags = serde_json::to_string(&default_tags()).unwrap();
        for i in 1..JOBS {
            let job_id = uuid::Uuid::now_v7().to_string();
            let now = format!(
                "2026-01-01T00:00:{:02}.{:06}Z",
                i / 1_000_000,
                i % 1_000_000
            );
            sqlx::query(
                "INSERT INTO provisioner_jobs (id, organization_id, job_type, provisioner, status, tags, input, initiator_id, created_at, updated_at) \
                 VALUES ($1, $2, 'template_version_import', 'echo', 'pending', $3, '{}', 'x', $4, $4)",
            )
            .bind(&job_id)
            .bind(&org_id)
            .bind(&tags)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO template_versions (id, organization_id, name, file_hash, provisioner, tags, job_id, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, 'echo', $5, $6, 'x', $7)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&org_id)
            .bind(format!("v{i}"))
            .bind(&file_hash)
            .bind(&tags)
            .bind(&job_id)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let org = orgsync_policy::OrgRef::new(org_id.clone(), false);
    let taken: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let doubles: Arc<Mutex<Vec<String>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut tasks = Vec::new();
    for d in 0..DAEMONS {
        let app = s.state.clone();
        let daemon = DaemonIdentity::new(
            format!("daemon-{d}"),
            org.clone(),
            vec!["echo".into()],
            default_tags(),
        );
        let taken = taken.clone();
        let doubles = doubles.clone();
        let org_id = org_id.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                // A short long-poll: the queue's own wait (woken by new jobs).
                match jobs::acquire(app.queue(), &daemon, Duration::from_millis(100))
                    .await
                    .unwrap()
                {
                    Some(job) => {
                        if taken.lock().unwrap().insert(job.id.clone(), d).is_some() {
                            doubles.lock().unwrap().push(job.id.clone());
                        }
                        jobs::complete(app.queue(), &daemon, &job.id, &JobResult::default())
                            .await
                            .unwrap();
                    }
                    // Nothing for this daemon: done once nothing is pending.
                    None if pending(&app, &org_id).await == 0 => return,
                    None => {}
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        doubles.lock().unwrap().is_empty(),
        "jobs taken twice: {:?}",
        doubles.lock().unwrap()
    );
    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), JOBS, "every job taken exactly once");
    let per_daemon: Vec<usize> = (0..DAEMONS)
        .map(|d| taken.values().filter(|v| **v == d).count())
        .collect();
    assert!(
        per_daemon.iter().filter(|n| **n > 0).count() > 1,
        "several daemons shared the work: {per_daemon:?}"
    );
    // The database agrees: all succeeded, each on the daemon that took it.
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, status, worker_id FROM provisioner_jobs WHERE organization_id = $1",
    )
    .bind(&org_id)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), JOBS);
    for (id, status, worker) in rows {
        assert_eq!(status, "succeeded", "{id}");
        assert_eq!(worker, Some(format!("daemon-{}", taken[&id])), "{id}");
    }
}

/// The org's jobs still pending, read from the database.
async fn pending(app: &orgsync::app::AppState, org_id: &str) -> i64 {
    let mut conn = app.db.pool().acquire().await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM provisioner_jobs WHERE organization_id = $1 AND status = 'pending'",
    )
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}
