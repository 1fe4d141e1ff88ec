//! The data-driven cases of `policies/tests/` (what `orgsync policy test` runs),
//! and the rules of the test-file formats.

use orgsync_policy::testing::{CaseResult, run_tests};
use orgsync_policy::{Engine, PolicyError, PolicySources, SourceFile};
use serde_json::{Value, json};

fn failures(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{} / {}: {}",
                r.file,
                r.name,
                r.detail.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn policy_test_cases_pass() -> Result<(), PolicyError> {
    let sources = PolicySources::builtin()?;
    let engine = Engine::load(&sources)?;
    assert!(
        !sources.tests.is_empty(),
        "policies/tests/ has no test files"
    );
    // Every built-in case goes through the server's model.
    for file in &sources.tests {
        let v: Value =
            serde_json::from_str(&file.text).map_err(|e| PolicyError::Request(e.to_string()))?;
        assert!(
            v.get("world").is_some(),
            "{} is not in orgsync terms",
            file.path
        );
    }
    let results = run_tests(&engine, &sources.tests);
    let failed = failures(&results);
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
    assert!(results.len() > 300, "{}", results.len());
    Ok(())
}

/// Runs one test file (given as JSON) with the built-in policies.
fn run(file: &Value) -> Result<Vec<CaseResult>, PolicyError> {
    let engine = Engine::builtin()?;
    Ok(run_tests(
        &engine,
        &[SourceFile {
            path: "tests/t.json".to_owned(),
            text: file.to_string(),
        }],
    ))
}

fn world() -> Value {
    json!({
        "organizations": [{"id": "org-d", "default": true}, {"id": "org-a"}],
        "groups": [{"id": "devs", "organization": "org-a"}],
        "users": [
            {"id": "owner", "site_roles": ["owner"], "memberships": {"org-d": [], "org-a": []}},
            {"id": "ua", "site_roles": ["user-admin"], "memberships": {"org-d": []}},
            {"id": "admin", "memberships": {"org-d": [], "org-a": ["organization-admin"]}, "groups": ["devs"]},
            {"id": "plain", "memberships": {"org-d": []}}
        ]
    })
}

/// The outcome of each case of a file with `world()`, by name.
fn outcomes(cases: Value) -> Result<Vec<(String, Option<String>)>, PolicyError> {
    let results = run(&json!({"world": world(), "cases": cases}))?;
    Ok(results.into_iter().map(|r| (r.name, r.detail)).collect())
}

#[test]
fn cases_in_orgsync_terms_run_through_the_model() -> Result<(), PolicyError> {
    let results = outcomes(json!([
        // The member resource carries its user's site roles (from the world).
        {"name": "owner protected", "principal": "ua", "action": "member:delete",
         "resource": {"member": {"organization": "org-a", "user": "owner"}},
         "decision": "deny", "reasons": ["guardrail.owner-membership-protected"]},
        {"name": "user resource too", "principal": "ua", "action": "user:update",
         "resource": {"user": "owner"}, "decision": "deny", "reasons": ["guardrail.owner-protected"]},
        {"name": "org role", "principal": "admin", "action": "org_role:assign",
         "resource": {"org_role": {"organization": "org-a", "role": "organization-admin"}},
         "decision": "allow", "reasons": ["org.admin"]},
        {"name": "site role", "principal": "ua", "action": "site_role:assign",
         "resource": {"site_role": "owner"}, "decision": "deny", "nothing_permits": true},
        {"name": "group acl", "principal": "admin", "action": "template:use",
         "resource": {"template": {"organization": "org-a", "id": "t", "created_by": "owner",
                                   "acl": {"use_groups": ["devs"]}}},
         "decision": "allow", "reasons": ["org.admin", "org.member.template-acl"]},
        {"name": "daemon", "principal": {"daemon": "pd", "organization": "org-a"},
         "action": "provisioner_job:acquire", "resource": {"organization": "org-d"},
         "decision": "deny", "nothing_permits": true},
        {"name": "site", "principal": "plain", "action": "organization:create",
         "resource": {"site": true}, "decision": "deny", "nothing_permits": true}
    ]))?;
    for (name, detail) in &results {
        assert_eq!(detail, &None, "{name}");
    }
    assert_eq!(results.len(), 7);
    Ok(())
}

#[test]
fn every_case_says_why() -> Result<(), PolicyError> {
    let case = |name: &str, extra: Value| {
        let mut c = json!({"name": name, "principal": "plain", "action": "user:read",
                           "resource": {"user": "owner"}});
        if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
            c.extend(extra);
        }
        c
    };
    let results = outcomes(json!([
        case("deny without a why", json!({"decision": "deny"})),
        case("empty reasons", json!({"decision": "deny", "reasons": []})),
        case("both", json!({"decision": "deny", "reasons": ["x"], "nothing_permits": true})),
        case("allow without reasons", json!({"decision": "allow"})),
        case("allow says nothing permits", json!({"decision": "allow", "nothing_permits": true})),
        // A forbid decides, so something did decide.
        {"name": "nothing permits, but a forbid denies", "principal": "admin",
         "action": "organization:delete", "resource": {"organization": "org-d"},
         "decision": "deny", "nothing_permits": true},
        {"name": "nothing permits, but a permit allows", "principal": "owner",
         "action": "organization:delete", "resource": {"organization": "org-a"},
         "decision": "deny", "nothing_permits": true},
        case("really nothing permits", json!({"decision": "deny", "nothing_permits": true})),
        case("really nothing permits", json!({"decision": "deny", "nothing_permits": true}))
    ]))?;
    let detail = |i: usize| results[i].1.clone().unwrap_or_default();
    assert!(
        detail(0).contains("`\"nothing_permits\": true`"),
        "{}",
        detail(0)
    );
    assert!(
        detail(1).contains("`\"reasons\": []` says neither"),
        "{}",
        detail(1)
    );
    assert!(detail(2).contains("not both"), "{}", detail(2));
    assert!(
        detail(3).contains("names the permit policies"),
        "{}",
        detail(3)
    );
    assert!(
        detail(4).contains("cannot say `nothing_permits`"),
        "{}",
        detail(4)
    );
    assert!(
        detail(5).contains("got deny by [guardrail.default-org-undeletable]"),
        "{}",
        detail(5)
    );
    assert!(detail(6).contains("got allow"), "{}", detail(6));
    assert_eq!(results[7].1, None);
    assert!(detail(8).contains("same name"), "{}", detail(8));
    Ok(())
}

#[test]
fn unknown_names_and_unschematic_requests_fail() -> Result<(), PolicyError> {
    let results = outcomes(json!([
        {"name": "unknown user", "principal": "nobody", "action": "user:read",
         "resource": {"site": true}, "decision": "deny", "nothing_permits": true},
        {"name": "unknown org", "principal": "plain", "action": "organization:read",
         "resource": {"organization": "org-z"}, "decision": "deny", "nothing_permits": true},
        {"name": "unknown acl group", "principal": "plain", "action": "template:use",
         "resource": {"template": {"organization": "org-a", "id": "t", "created_by": "owner",
                                   "acl": {"use_groups": ["nope"]}}},
         "decision": "deny", "nothing_permits": true},
        {"name": "unknown role", "principal": "ua", "action": "site_role:assign",
         "resource": {"site_role": "superuser"}, "decision": "deny", "nothing_permits": true},
        {"name": "wrong resource type", "principal": "admin", "action": "group:update",
         "resource": {"organization": "org-a"}, "decision": "deny", "nothing_permits": true},
        {"name": "unknown action", "principal": "admin", "action": "group:frobnicate",
         "resource": {"organization": "org-a"}, "decision": "deny", "nothing_permits": true}
    ]))?;
    let want = [
        "unknown user `nobody`",
        "unknown organization `org-z`",
        "unknown group `nope`",
        "unknown site role `superuser`",
        "request not valid for the schema",
        "unknown action `group:frobnicate`",
    ];
    for ((name, detail), want) in results.iter().zip(want) {
        let detail = detail.clone().unwrap_or_default();
        assert!(detail.contains(want), "{name}: {detail}");
    }

    // An inconsistent world fails the whole file.
    let results = run(&json!({
        "world": {"organizations": [{"id": "o"}],
                  "users": [{"id": "u", "status": "gone", "memberships": {"p": []}, "groups": ["o"]}]},
        "cases": []
    }))?;
    let failed = failures(&results);
    assert_eq!(failed.len(), 1, "{failed:?}");
    for want in [
        "(file)",
        "status `gone`",
        "unknown organization `p`",
        "Everyone group `o`",
    ] {
        assert!(failed[0].contains(want), "{want}: {}", failed[0]);
    }
    Ok(())
}

/// A policy directory whose tests are all in the earlier Cedar-entity format.
const CEDAR_FORMAT: &str = r#"{
  "description": "A member of one org reads it and not another.",
  "entities": [
    {"uid": {"type": "Organization", "id": "org-a"}, "attrs": {"key": "org-a", "is_default": false, "organization": {"__entity": {"type": "Organization", "id": "org-a"}}}, "parents": [{"type": "Site", "id": "site"}]},
    {"uid": {"type": "Organization", "id": "org-b"}, "attrs": {"key": "org-b", "is_default": false, "organization": {"__entity": {"type": "Organization", "id": "org-b"}}}, "parents": [{"type": "Site", "id": "site"}]},
    {"uid": {"type": "User", "id": "alice"}, "attrs": {"key": "alice", "status": "active"}, "parents": [{"type": "Organization", "id": "org-a"}, {"type": "Role", "id": "member"}], "tags": {"org-a": []}}
  ],
  "cases": [
    {"name": "member reads own org", "principal": {"type": "User", "id": "alice"}, "action": "organization:read", "resource": {"type": "Organization", "id": "org-a"}, "decision": "allow", "reasons": ["org.member"]},
    {"name": "member cannot read other org", "principal": {"type": "User", "id": "alice"}, "action": "organization:read", "resource": {"type": "Organization", "id": "org-b"}, "decision": "deny", "reasons": ["guardrail.cross-org"]},
    {"name": "no reasons asked", "principal": {"type": "User", "id": "alice"}, "action": "organization:update", "resource": {"type": "Organization", "id": "org-a"}, "decision": "deny"}
  ]
}"#;

#[test]
fn a_directory_with_only_cedar_entity_tests_still_runs() -> Result<(), PolicyError> {
    let dir = tempfile::tempdir().map_err(|e| PolicyError::Request(e.to_string()))?;
    let builtin = PolicySources::builtin()?;
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    };
    let io = |e: std::io::Error| PolicyError::Request(e.to_string());
    write("schema.cedarschema", &builtin.schema.text).map_err(io)?;
    for file in &builtin.policies {
        write(&file.path, &file.text).map_err(io)?;
    }
    write("tests/smoke.json", CEDAR_FORMAT).map_err(io)?;
    let sources = PolicySources::from_dir(dir.path())?;
    let engine = Engine::load(&sources)?;
    let results = run_tests(&engine, &sources.tests);
    assert_eq!(results.len(), 3);
    assert_eq!(failures(&results), Vec::<String>::new());

    // A failing case is reported with its file and name.
    write(
        "tests/smoke.json",
        &CEDAR_FORMAT.replace(r#""decision": "allow""#, r#""decision": "deny""#),
    )
    .map_err(io)?;
    let sources = PolicySources::from_dir(dir.path())?;
    let failed = failures(&run_tests(&engine, &sources.tests));
    assert_eq!(
        failed,
        [
            "tests/smoke.json / member reads own org: expected deny, got allow (reasons: [org.member])"
        ]
    );
    Ok(())
}
