//! Job queue benchmarks on PostgreSQL (`ORGSYNC_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per run):
//! - throughput: 8 concurrent daemons draining 10,000 queued echo jobs;
//! - latency: from the commit that enqueues a job to an idle daemon (blocked in
//!   its long-poll) holding it: woken by notification, not by polling.
//!
//! Numbers and method: BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup fails loudly"
)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use orgsync::app::{App, AppState};
use orgsync::config::{ServerArgs, ServerConfig};
use orgsync::jobs::{self, DaemonIdentity};
use orgsync::provisioner::{JobResult, default_tags};
use sqlx::Connection;

const DAEMONS: usize = 8;

async fn setup() -> (AppState, String, String) {
    let admin = std::env::var("ORGSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("orgsync_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is required for this benchmark");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap().keep();
    let args = ServerArgs {
        data_dir: Some(dir),
        database_url: Some(url),
        provisioner_daemons: Some(0),
        log: Some("error".into()),
        ..Default::default()
    };
    let app = App::init(ServerConfig::resolve(&args).unwrap())
        .await
        .unwrap();
    // One org, one file, one version whose import job is reused as a template.
    let org_id = uuid::Uuid::now_v7().to_string();
    let now = "2026-01-01T00:00:00.000000Z";
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("INSERT INTO organizations (id, name, name_lower, display_name, is_default, created_at, updated_at) VALUES ($1, 'bench', 'bench', 'Bench', 0, $2, $2)")
        .bind(&org_id).bind(now).execute(&mut *tx).await.unwrap();
    let tar = orgsync::provisioner::archive::pack_dir(&{
        let d = tempfile::tempdir().unwrap().keep();
        std::fs::write(d.join("main.tf"), "#").unwrap();
        d
    })
    .unwrap();
    use base64::Engine as _;
    sqlx::query("INSERT INTO files (hash, content_base64, size, created_by, created_at) VALUES ('h', $1, 1, 'x', $2)")
        .bind(base64::engine::general_purpose::STANDARD.encode(tar))
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
    // The archive belongs to the org, or the queue fails every job of it.
    sqlx::query("INSERT INTO file_organizations (hash, organization_id) VALUES ('h', $1)")
        .bind(&org_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (app, org_id, name)
}

/// Queues `n` import jobs (one transaction; not timed).
async fn enqueue(app: &AppState, org_id: &str, n: usize) {
    let tags = serde_json::to_string(&default_tags()).unwrap();
    let mut tx = app.db.begin().await.unwrap();
    for _ in 0..n {
        let job = uuid::Uuid::now_v7().to_string();
        let now = orgsync::clock::fmt(orgsync::clock::now());
        sqlx::query("INSERT INTO provisioner_jobs (id, organization_id, job_type, provisioner, status, tags, input, initiator_id, created_at, updated_at) VALUES ($1, $2, 'template_version_import', 'echo', 'pending', $3, '{}', 'x', $4, $4)")
            .bind(&job).bind(org_id).bind(&tags).bind(&now).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO template_versions (id, organization_id, name, file_hash, provisioner, tags, job_id, created_by, created_at) VALUES ($1, $2, 'v', 'h', 'echo', $3, $4, 'x', $5)")
            .bind(uuid::Uuid::now_v7().to_string()).bind(org_id).bind(&tags).bind(&job).bind(&now).execute(&mut *tx).await.unwrap();
    }
    app.db.notify_jobs(&mut tx, org_id).await.unwrap();
    tx.commit().await.unwrap();
    jobs::after_commit(&app.jobs);
}

fn daemon(i: usize, org_id: &str) -> DaemonIdentity {
    DaemonIdentity::new(
        format!("bench-{i}"),
        orgsync_policy::OrgRef::new(org_id.to_owned(), false),
        vec!["echo".into()],
        default_tags(),
    )
}

/// How long one drain may take before the bench gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// 8 daemons take and complete every queued job; returns the elapsed time.
async fn drain(app: &AppState, org_id: &str, total: usize) -> Duration {
    let start = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..DAEMONS {
        let app = app.clone();
        let d = daemon(i, org_id);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while done.load(std::sync::atomic::Ordering::SeqCst) < total {
                // Bounded: jobs that fail at acquire are never counted done.
                assert!(
                    start.elapsed() < DRAIN_LIMIT,
                    "the drain did not end within {DRAIN_LIMIT:?}: are jobs failing at acquire?"
                );
                if let Some(job) = jobs::acquire(app.queue(), &d, Duration::from_millis(50))
                    .await
                    .unwrap()
                {
                    jobs::complete(app.queue(), &d, &job.id, &JobResult::default())
                        .await
                        .unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, org_id, _db) = rt.block_on(setup());
    let jobs_per_iter: usize = std::env::var("ORGSYNC_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    let mut g = c.benchmark_group("queue");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(criterion::Throughput::Elements(jobs_per_iter as u64));
    g.bench_function(format!("drain_{jobs_per_iter}_jobs_8_daemons"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(enqueue(&app, &org_id, jobs_per_iter));
                total += rt.block_on(drain(&app, &org_id, jobs_per_iter));
            }
            total
        });
    });
    g.finish();

    let mut g = c.benchmark_group("queue");
    g.sample_size(50);
    g.bench_function("enqueue_to_start_latency_idle_daemon", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(async {
                    let d = daemon(100, &org_id);
                    let app2 = app.clone();
                    // The daemon is idle in its long-poll before the job exists.
                    let waiter = tokio::spawn(async move {
                        let job = jobs::acquire(app2.queue(), &d, Duration::from_secs(30))
                            .await
                            .unwrap()
                            .unwrap();
                        let at = Instant::now();
                        jobs::complete(app2.queue(), &d, &job.id, &JobResult::default())
                            .await
                            .unwrap();
                        at
                    });
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let t0 = Instant::now();
                    enqueue(&app, &org_id, 1).await;
                    let started = waiter.await.unwrap();
                    started.duration_since(t0)
                });
            }
            total
        });
    });
    g.finish();
}

criterion_group!(queue, benches);
criterion_main!(queue);
