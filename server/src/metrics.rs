//! Prometheus metrics, served at `GET /metrics` (Prometheus text format
//! 0.0.4) by `api::metrics`. Names are `orgsync_...` with their unit
//! (`_seconds`) and `_total` for counters (`docs/operations.md#metrics`).
//!
//! The counters and histograms live in one process-wide registry, recorded
//! where things happen: HTTP requests (by matched route template, never the
//! raw path), authorization decisions (`authz.rs`), IdP sync changes
//! (`idpsync/apply.rs` gathers them, counted after commit), directory sync runs (`ldapsync/run.rs`), job waits
//! (`jobs.rs`). Gauges of the state (database pool, pending jobs) are read at
//! scrape time into a [`Snapshot`]. No label holds a user, an id or a secret:
//! every label value comes from a fixed set (routes of the router, actions of
//! the schema, statuses, kinds).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The route label of a request that matched no route (a 404 of the
/// fallback): never the raw path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    action: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    kind: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobTypeLabels {
    job_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

fn run_buckets() -> Histogram {
    Histogram::new([
        0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ])
}

fn wait_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ])
}

/// The process's counters and histograms.
struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<HttpLabels>,
    decisions: Family<DecisionLabels, Counter>,
    sync_changes: Family<ChangeLabels, Counter>,
    directory_runs: Family<StatusLabels, Counter>,
    directory_duration: Histograms<StatusLabels>,
    job_wait: Histograms<JobTypeLabels>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// A counter family registered as `NAME_total`.
fn counters<L>(registry: &mut Registry, name: &str, help: &str) -> Family<L, Counter>
where
    L: EncodeLabelSet + Clone + std::fmt::Debug + std::hash::Hash + Eq + Send + Sync + 'static,
{
    let family = Family::<L, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

/// A histogram family in seconds (`NAME_seconds_bucket`, `_sum`, `_count`).
fn seconds<L>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    buckets: fn() -> Histogram,
) -> Histograms<L>
where
    L: EncodeLabelSet + Clone + std::fmt::Debug + std::hash::Hash + Eq + Send + Sync + 'static,
{
    let family: Histograms<L> = Family::new_with_constructor(buckets);
    registry.register_with_unit(name, help, Unit::Seconds, family.clone());
    family
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let http_requests = counters(
            r,
            "orgsync_http_requests",
            "HTTP requests answered, by method, matched route template and status",
        );
        let http_duration = seconds(
            r,
            "orgsync_http_request_duration",
            "Time to answer an HTTP request (until the response head), by method, route and status",
            request_buckets,
        );
        let decisions = counters(
            r,
            "orgsync_authz_decisions",
            "Cedar authorization decisions, by action and outcome (allow or deny)",
        );
        let sync_changes = counters(
            r,
            "orgsync_idpsync_changes",
            "IdP sync changes written (organization and group joins and leaves, role \
             changes), by kind and source (oidc_login, ldap_sync, ...)",
        );
        let directory_runs = counters(
            r,
            "orgsync_directory_runs",
            "LDAP directory sync runs ended on this replica, by status",
        );
        let directory_duration = seconds(
            r,
            "orgsync_directory_run_duration",
            "Duration of LDAP directory sync runs ended on this replica, by status",
            run_buckets,
        );
        let job_wait = seconds(
            r,
            "orgsync_job_wait",
            "Time provisioner jobs waited from enqueue to acquisition by a daemon, by job type",
            wait_buckets,
        );
        // Series that exist before their first event, at zero (a rate over
        // a series that appears only with its first event misses it).
        for kind in SYNC_CHANGE_KINDS {
            for source in ["oidc_login", "ldap_sync"] {
                sync_changes.get_or_create_owned(&ChangeLabels { kind, source });
            }
        }
        for status in ["succeeded", "failed", "aborted"] {
            directory_runs.get_or_create_owned(&StatusLabels { status });
            directory_duration.get_or_create_owned(&StatusLabels { status });
        }
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("ORGSYNC_COMMIT"),
            })
            .set(1);
        registry.register(
            "orgsync_build_info",
            "Always 1; the version and commit of the running binary as labels",
            build,
        );
        Self {
            registry,
            http_requests,
            http_duration,
            decisions,
            sync_changes,
            directory_runs,
            directory_duration,
            job_wait,
        }
    }
}

/// The method label: the standard methods, anything else as `OTHER` (a
/// client chooses the method; labels stay a fixed set).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

/// One answered request. `route` is the matched route template
/// (`/api/v2/users/{user}`), `None` when no route matched.
pub fn http_request(method: &str, route: Option<&str>, status: u16, took: Duration) {
    let labels = HttpLabels {
        method: method_label(method),
        route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
        status: status.to_string(),
    };
    METRICS.http_requests.get_or_create(&labels).inc();
    METRICS
        .http_duration
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

/// One authorization decision on `action` (an action of the schema; the
/// caller passes `unknown` for a name the schema does not declare).
pub fn authz_decision(action: &str, allowed: bool) {
    let labels = DecisionLabels {
        action: action.to_owned(),
        outcome: if allowed { "allow" } else { "deny" },
    };
    METRICS.decisions.get_or_create(&labels).inc();
}

/// The kinds of IdP sync changes (`orgsync_idpsync_changes_total{kind}`).
pub const SYNC_CHANGE_KINDS: [&str; 6] = [
    "organization_join",
    "organization_leave",
    "group_join",
    "group_leave",
    "organization_roles",
    "site_roles",
];

/// IdP sync changes of these kinds committed for `source` (`oidc_login`,
/// `ldap_sync`, ...).
pub fn idpsync_changes(kinds: &[&'static str], source: &'static str) {
    for &kind in kinds {
        METRICS
            .sync_changes
            .get_or_create(&ChangeLabels { kind, source })
            .inc();
    }
}

/// A directory sync run ended with `status` after `took`.
pub fn directory_run(status: &'static str, took: Duration) {
    let labels = StatusLabels { status };
    METRICS.directory_runs.get_or_create(&labels).inc();
    METRICS
        .directory_duration
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

/// A job of `job_type` was acquired after waiting `waited` since its enqueue.
pub fn job_acquired(job_type: &'static str, waited: Duration) {
    METRICS
        .job_wait
        .get_or_create(&JobTypeLabels { job_type })
        .observe(waited.as_secs_f64());
}

/// The state read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Connections of this replica's database pool: open, idle, the maximum.
    pub pool_size: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    /// Pending jobs per job type (every replica sees the same queue); `None`
    /// when the database could not be read.
    pub pending_jobs: Option<Vec<(&'static str, i64)>>,
}

/// The whole exposition: the process's metrics and the snapshot's gauges.
pub fn render(snapshot: &Snapshot) -> String {
    let mut registry = Registry::default();
    let pool = Family::<PoolLabels, Gauge>::default();
    let in_use = snapshot.pool_size.saturating_sub(snapshot.pool_idle);
    pool.get_or_create(&PoolLabels { state: "idle" })
        .set(i64::from(snapshot.pool_idle));
    pool.get_or_create(&PoolLabels { state: "in_use" })
        .set(i64::from(in_use));
    registry.register(
        "orgsync_db_pool_connections",
        "Connections of this replica's database pool, by state (idle, in_use)",
        pool,
    );
    let max = Gauge::<i64>::default();
    max.set(i64::from(snapshot.pool_max));
    registry.register(
        "orgsync_db_pool_max_connections",
        "The most connections this replica's database pool opens",
        max,
    );
    if let Some(pending) = &snapshot.pending_jobs {
        let jobs = Family::<JobTypeLabels, Gauge>::default();
        for (job_type, count) in pending {
            jobs.get_or_create(&JobTypeLabels { job_type }).set(*count);
        }
        registry.register(
            "orgsync_jobs_pending",
            "Provisioner jobs waiting for a daemon (the queue depth, the same on every replica), \
             by job type",
            jobs,
        );
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &METRICS.registry);
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_units_and_labels_come_from_fixed_sets() {
        http_request(
            "BREW",
            Some("/api/v2/users/{user}"),
            200,
            Duration::from_millis(3),
        );
        http_request("GET", None, 404, Duration::from_millis(1));
        authz_decision("organization:read", false);
        let out = render(&Snapshot {
            pool_size: 3,
            pool_idle: 1,
            pool_max: 4,
            pending_jobs: Some(vec![("workspace_build", 2)]),
        });
        for line in [
            "orgsync_http_requests_total{method=\"OTHER\",route=\"/api/v2/users/{user}\",status=\"200\"}",
            "orgsync_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
            "orgsync_http_request_duration_seconds_bucket{",
            "orgsync_authz_decisions_total{action=\"organization:read\",outcome=\"deny\"}",
            "orgsync_db_pool_connections{state=\"in_use\"} 2",
            "orgsync_db_pool_max_connections 4",
            "orgsync_jobs_pending{job_type=\"workspace_build\"} 2",
            "orgsync_build_info{version=",
        ] {
            assert!(out.contains(line), "{line} missing in:\n{out}");
        }
        assert!(
            !out.contains("# EOF"),
            "Prometheus text format, not OpenMetrics"
        );
    }
}
