//! Prometheus metrics at `GET /metrics`: after real traffic (logins, an
//! allowed and a denied request, a provisioner job on a built-in daemon) the
//! names and labels are there, counters moved, and route labels are templates
//! (no id, no user, no secret in any label). The server runs as its own
//! process, so its counters are its own.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestDb;
use crate::process::ServerProcess;
use crate::provisioning::{import_version, template_tar, wait_job};
use crate::testkit::wait_for;

/// A scrape: every sample line (`name{labels}` -> value).
pub(crate) async fn scrape(base: &str) -> (String, BTreeMap<String, f64>) {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.unwrap();
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect();
    (text, samples)
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

/// One sample of a scrape of the server at `base` (0 when absent). Servers
/// of one test process share their counters: a check in an in-process test
/// compares before and after (counters only grow).
pub(crate) async fn sample(base: &str, key: &str) -> f64 {
    value(&scrape(base).await.1, key)
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_decisions_jobs_and_the_pool() {
    let (_db, url, _) = TestDb::new().await;
    let server = ServerProcess::start("metrics", &url, &["--provisioner-daemons", "1"]).await;
    let owner = server.owner().await;
    let (_, before) = scrape(&server.base).await;

    // A login (inside `create_user`), an allowed request, a denied one.
    let (member, member_id) = owner.create_user("metrics-member").await;
    let (status, me) = member.get(&format!("/users/{member_id}")).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, denied) = member
        .post("/organizations", json!({"name": "not-allowed"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    // A path no route matches, with an id in it.
    let stray = "0f0e0d0c-0b0a-4909-8807-060504030201";
    let (status, _) = member.get(&format!("/no-such-route/{stray}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An action name a caller made up (`/authcheck` takes names from the
    // request): refused, and never a label (the authorizer would count a
    // name outside the schema as `unknown`).
    let made_up = "zz-made-up-action:read";
    let (status, checked) = member
        .post(
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": "site"}, "action": made_up}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{checked}");
    // A job, run by the built-in daemon.
    let tar = template_tar(&[("main.tf", "# metrics\n")]);
    let version = import_version(&owner, "coder", "echo", tar, json!({})).await;
    let job_id = version["job"]["id"].as_str().unwrap();
    let job = wait_job(&owner, job_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let (text, after) = scrape(&server.base).await;
    let grew = |key: &str| {
        assert!(
            value(&after, key) > value(&before, key),
            "{key}: {} -> {}\n{text}",
            value(&before, key),
            value(&after, key)
        );
    };
    grew(r#"orgsync_http_requests_total{method="POST",route="/api/v2/users/login",status="201"}"#);
    grew(r#"orgsync_http_requests_total{method="GET",route="/api/v2/users/{user}",status="200"}"#);
    grew(
        r#"orgsync_http_requests_total{method="POST",route="/api/v2/organizations",status="403"}"#,
    );
    grew(r#"orgsync_http_requests_total{method="GET",route="unmatched",status="404"}"#);
    grew(
        r#"orgsync_http_request_duration_seconds_count{method="GET",route="/api/v2/users/{user}",status="200"}"#,
    );
    grew(
        r#"orgsync_http_request_duration_seconds_bucket{method="GET",route="/api/v2/users/{user}",status="200",le="+Inf"}"#,
    );
    grew(r#"orgsync_authz_decisions_total{action="user:read",outcome="allow"}"#);
    grew(r#"orgsync_authz_decisions_total{action="organization:create",outcome="deny"}"#);
    grew(r#"orgsync_job_wait_seconds_count{job_type="template_version_import"}"#);
    // The earlier scrape itself was counted under its route.
    assert!(
        value(
            &after,
            r#"orgsync_http_requests_total{method="GET",route="/metrics",status="200"}"#
        ) >= 1.0,
        "{text}"
    );
    // Gauges of the state: the queue is empty again, the pool has connections.
    assert_eq!(
        value(
            &after,
            r#"orgsync_jobs_pending{job_type="template_version_import"}"#
        ),
        0.0,
        "{text}"
    );
    assert!(
        after.contains_key(r#"orgsync_jobs_pending{job_type="workspace_build"}"#),
        "{text}"
    );
    assert!(
        value(&after, "orgsync_db_pool_max_connections") >= 1.0,
        "{text}"
    );
    let open = value(&after, r#"orgsync_db_pool_connections{state="idle"}"#)
        + value(&after, r#"orgsync_db_pool_connections{state="in_use"}"#);
    assert!(
        open >= 1.0 && open <= value(&after, "orgsync_db_pool_max_connections"),
        "{text}"
    );
    // Series there at zero before their first event.
    for series in [
        r#"orgsync_idpsync_changes_total{kind="group_join",source="oidc_login"}"#,
        r#"orgsync_idpsync_changes_total{kind="organization_leave",source="ldap_sync"}"#,
        r#"orgsync_directory_runs_total{status="succeeded"}"#,
        r#"orgsync_directory_run_duration_seconds_count{status="failed"}"#,
    ] {
        assert_eq!(after.get(series), Some(&0.0), "{series}:\n{text}");
    }
    assert!(
        text.contains("# TYPE orgsync_build_info gauge")
            && text.contains(&format!(
                "orgsync_build_info{{version=\"{}\"",
                env!("CARGO_PKG_VERSION")
            )),
        "{text}"
    );
    // Labels are templates and fixed sets: no id, user or secret anywhere.
    for private in [
        member_id.as_str(),
        stray,
        job_id,
        "metrics-member",
        "example.com",
        "password123",
        made_up,
    ] {
        assert!(
            !text.contains(private),
            "`{private}` in the metrics:\n{text}"
        );
    }
    for line in text.lines().filter(|l| l.contains("route=\"")) {
        let route = line.split("route=\"").nth(1).unwrap();
        let route = &route[..route.find('"').unwrap()];
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "route label `{route}` in {line}"
        );
    }

    // The built-in daemon logged the job it ran, at info, with its kind,
    // org, outcome and duration.
    let log = wait_for(
        "the daemon's `provisioner daemon: job finished` line",
        Duration::from_secs(10),
        async || {
            let log = server.log();
            if log
                .lines()
                .any(|l| l.contains("provisioner daemon: job finished") && l.contains(job_id))
            {
                Ok(log)
            } else {
                Err(log)
            }
        },
    )
    .await;
    let acquired = log
        .lines()
        .find(|l| l.contains("provisioner daemon: running a job") && l.contains(job_id))
        .unwrap_or_else(|| panic!("no `provisioner daemon: running a job` line:\n{log}"));
    assert!(acquired.contains("INFO"), "{acquired}");
    assert!(acquired.contains("template_version_import"), "{acquired}");
    let finished = log
        .lines()
        .find(|l| l.contains("provisioner daemon: job finished") && l.contains(job_id))
        .unwrap();
    for field in [
        "INFO",
        "template_version_import",
        "succeeded",
        "duration_ms=",
    ] {
        assert!(finished.contains(field), "{field} missing in: {finished}");
    }
    assert!(
        finished.contains(job["organization_id"].as_str().unwrap()),
        "the org in: {finished}"
    );
}
