//! LDAP directory sync against a real OpenLDAP slapd: settings, runs and their
//! lifecycle (create, update, suspend, reactivate), the safety rules (failed
//! reads change nothing, the removal guard, dry runs), incremental runs, the
//! schedule (one replica per tick) and the CLI.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};
use crate::slapd::Slapd;
use crate::testkit::wait_for;

const BASE: &str = "dc=example,dc=test";

fn user_ldif(uid: &str, dept: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid} Example\nsn: {uid}\n\
         mail: {uid}@example.com\ndepartmentNumber: {dept}\n\n"
    )
}

fn group_ldif(cn: &str, members: &[&str]) -> String {
    let mut s = format!("dn: cn={cn},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        s.push_str(&format!("member: {m}\n"));
    }
    s.push('\n');
    s
}

fn udn(uid: &str) -> String {
    format!("uid={uid},ou=people,{BASE}")
}

fn gdn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{BASE}")
}

/// alice, bob, carol, dave; eng = {alice, bob}; platform-leads = {alice};
/// staff = {eng} (nested); posixGroup ops = {carol}.
fn seed(slapd: &Slapd) {
    let mut ldif = String::new();
    for (u, d) in [
        ("alice", "d1"),
        ("bob", "d1"),
        ("carol", "d2"),
        ("dave", "d3"),
    ] {
        ldif.push_str(&user_ldif(u, d));
    }
    ldif.push_str(&group_ldif("eng", &[&udn("alice"), &udn("bob")]));
    ldif.push_str(&group_ldif("platform-leads", &[&udn("alice")]));
    ldif.push_str(&group_ldif("staff", &[&gdn("eng")]));
    ldif.push_str(&format!(
        "dn: cn=ops,ou=groups,{BASE}\nobjectClass: posixGroup\ncn: ops\ngidNumber: 5000\nmemberUid: carol\n\n"
    ));
    slapd.ldapadd(&ldif);
}

fn settings(slapd: &Slapd) -> Value {
    json!({
        "enabled": true,
        "url": slapd.url(),
        "bind_dn": format!("cn=sync,ou=services,{BASE}"),
        "bind_password": "sync-password",
        "user_base_dn": format!("ou=people,{BASE}"),
        "group_base_dn": format!("ou=groups,{BASE}"),
        "claims": {"groups": "groups", "department": "departmentNumber"},
        "schedule": "0 0 0 1 1 *",
        "max_removal_percent": 50,
        "page_size": 2,
    })
}

/// Orgs and IdP sync settings the directory's claims feed.
async fn setup(owner: &Client, slapd: &Slapd) {
    owner.create_org("data-platform").await;
    owner.create_org("ops-org").await;
    for (path, body) in [
        (
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"], "ops": ["ops-org"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/groups",
            json!({"field": "groups", "regex_filter": "^(eng|staff|platform-leads)$", "auto_create_missing_groups": true}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/roles",
            json!({"field": "groups", "mapping": {"platform-leads": ["organization-admin"]}}),
        ),
    ] {
        let (status, body) = owner.patch(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    put_settings(owner, settings(slapd)).await;
}

/// PUTs the directory settings and reads them back: each field sent is stored
/// as sent (the password only as `bind_password_set`).
async fn put_settings(c: &Client, body: Value) {
    let (status, resp) = c.put("/settings/ldapsync", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let stored = c.get_ok("/settings/ldapsync").await;
    for (field, sent) in body.as_object().unwrap() {
        if field == "bind_password" {
            assert_eq!(stored["bind_password_set"], true, "{stored}");
            assert!(stored.get("bind_password").is_none(), "{stored}");
        } else if let Some(n) = sent.as_f64() {
            // Numbers may come back as floats (`max_removal_percent`).
            assert_eq!(stored[field].as_f64(), Some(n), "{field}: {stored}");
        } else {
            assert_eq!(&stored[field], sent, "{field}: {stored}");
        }
    }
}

/// Starts a run and waits for its end.
async fn run(c: &Client, body: Value) -> Value {
    let (status, started) = c.post("/ldapsync/runs", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["status"], "running");
    wait(c, started["id"].as_str().unwrap()).await
}

async fn wait(c: &Client, id: &str) -> Value {
    wait_for(
        &format!("run {id} to end"),
        Duration::from_secs(60),
        async || {
            let r = c.get_ok(&format!("/ldapsync/runs/{id}")).await;
            if r["status"] != "running" {
                Ok(r)
            } else {
                Err(r)
            }
        },
    )
    .await
}

async fn audit_count(c: &Client) -> i64 {
    c.get_ok("/audit?limit=1").await["count"].as_i64().unwrap()
}

async fn user(c: &Client, name: &str) -> Value {
    let (status, u) = c.get(&format!("/users/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{name}: {u}");
    u
}

async fn org_names(c: &Client, name: &str) -> Vec<String> {
    let orgs = c.get_ok(&format!("/users/{name}/organizations")).await;
    let mut v: Vec<String> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// The user's groups in data-platform (names, sorted, without Everyone).
async fn dp_groups(c: &Client, name: &str) -> Vec<String> {
    let groups = c.get_ok("/organizations/data-platform/groups").await;
    let mut out: Vec<String> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"] != "Everyone")
        .filter(|g| {
            g["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["username"] == name)
        })
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn dp_roles(c: &Client, name: &str) -> Value {
    let members = c.get_ok("/organizations/data-platform/members").await;
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == name)
        .map(|m| m["roles"].clone())
        .unwrap_or(Value::Null)
}

/// Activates or suspends a user and reads its status back.
async fn set_status(c: &Client, name: &str, action: &str, status_after: &str) {
    let (status, body) = c
        .put(&format!("/users/{name}/status/{action}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{action} {name}: {body}");
    assert_eq!(user(c, name).await["status"], status_after);
}

fn stat(run: &Value, key: &str) -> u64 {
    run["stats"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no stat {key}: {run}"))
}

#[tokio::test]
async fn settings_are_validated_redacted_and_audited() {
    let slapd = Slapd::start();
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (status, d) = owner.get("/settings/ldapsync").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["enabled"], false);
    assert_eq!(d["bind_password_set"], false);

    let (status, body) = owner.put("/settings/ldapsync", settings(&slapd)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("bind_password").is_none(), "{body}");
    assert_eq!(body["bind_password_set"], true);
    // Audited without the secret.
    let audit = owner
        .get_ok("/audit?q=resource_type:ldapsync_settings")
        .await;
    let entry = audit["audit_logs"][0].to_string();
    assert!(entry.contains("bind_password"), "{entry}");
    assert!(!entry.contains("sync-password"), "{entry}");
    // A PUT without the password keeps it.
    let mut again = settings(&slapd);
    again.as_object_mut().unwrap().remove("bind_password");
    again["page_size"] = json!(100);
    let (status, body) = owner.put("/settings/ldapsync", again).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bind_password_set"], true);
    // ... but not when it would go to another server or bind DN.
    for (field, value) in [
        ("url", json!("ldap://127.0.0.1:1")),
        ("bind_dn", json!(format!("cn=other,{BASE}"))),
    ] {
        let mut moved = settings(&slapd);
        moved.as_object_mut().unwrap().remove("bind_password");
        moved[field] = value;
        let (status, body) = owner.put("/settings/ldapsync", moved).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["validations"][0]["field"], "bind_password", "{body}");
    }

    // Bad input: each a 400 naming the field, nothing stored.
    for (field, value) in [
        ("schedule", json!("every tuesday")),
        ("schedule", json!("61 * * * * *")),
        ("user_base_dn", json!("ou=people,,dc=example")),
        ("bind_dn", json!("not a dn")),
        ("user_filter", json!("(objectClass=inetOrgPerson")),
        ("group_filter", json!("objectClass=*)(")),
        ("url", json!("http://127.0.0.1:389")),
        ("page_size", json!(0)),
        ("max_removal_percent", json!(150)),
    ] {
        let mut bad = settings(&slapd);
        bad[field] = value.clone();
        let (status, body) = owner.put("/settings/ldapsync", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {body}");
        assert!(
            body["validations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["field"].as_str().unwrap().starts_with(field)),
            "{field}: {body}"
        );
    }
    let stored = owner.get_ok("/settings/ldapsync").await;
    assert_eq!(stored["page_size"], 100);
    let (status, body) = owner
        .put("/settings/ldapsync", json!({"colour": "blue"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(owner.get_ok("/settings/ldapsync").await, stored);

    // Only site user admins (and auditors read).
    let (alice, _) = owner.create_user("alice").await;
    // An org admin (of any org) is not a deployment admin: the directory sync
    // is deployment-wide.
    owner.create_org("data-platform").await;
    owner
        .add_member("data-platform", "alice", &["organization-admin"])
        .await;
    let mut elsewhere = settings(&slapd);
    elsewhere["page_size"] = json!(7);
    for (status, body) in [
        alice.get("/settings/ldapsync").await,
        alice.put("/settings/ldapsync", elsewhere).await,
        alice.post("/ldapsync/runs", json!({})).await,
        alice.get("/ldapsync/runs").await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(owner.get_ok("/settings/ldapsync").await, stored);
    assert_eq!(owner.get_ok("/ldapsync/runs").await["count"], 0);
}

#[tokio::test]
async fn a_run_creates_users_in_orgs_groups_and_roles_and_a_second_writes_nothing() {
    let slapd = Slapd::start();
    seed(&slapd);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;

    // A dry run first: the plan, nothing written.
    let before = audit_count(&owner).await;
    let dry = run(&owner, json!({"dry_run": true})).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(stat(&dry, "users_created"), 4, "{dry}");
    let plan = dry["plan"].as_array().unwrap();
    assert!(
        plan.iter()
            .any(|c| c["username"] == "alice" && c["action"] == "create"),
        "{dry}"
    );
    assert_eq!(audit_count(&owner).await, before);
    let (status, body) = owner.get("/users/alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let runs = r#"orgsync_directory_runs_total{status="succeeded"}"#;
    let took = r#"orgsync_directory_run_duration_seconds_count{status="succeeded"}"#;
    let joins = r#"orgsync_idpsync_changes_total{kind="group_join",source="ldap_sync"}"#;
    let counted = async || {
        let mut now = Vec::new();
        for key in [runs, took, joins] {
            now.push(crate::metrics::sample(&s.base, key).await);
        }
        now
    };
    let before_run = counted().await;
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["trigger"], "manual");
    assert_eq!(r["full"], true);
    // The run, its duration and the group joins it wrote are counted (just
    // after the run's end is committed).
    wait_for(
        "the run in the metrics",
        Duration::from_secs(10),
        async || {
            let now = counted().await;
            let grew = now[0] > before_run[0] && now[1] > before_run[1];
            (grew && now[2] >= before_run[2] + 4.0)
                .then_some(())
                .ok_or(format!("{before_run:?} -> {now:?}"))
        },
    )
    .await;
    assert_eq!(stat(&r, "users_seen"), 4);
    assert_eq!(stat(&r, "users_created"), 4);
    assert!(stat(&r, "groups_seen") >= 4, "{r}");
    assert_eq!(r["progress"]["phase"], "done");
    assert_eq!(r["progress"]["users_read"], 4);

    let alice = user(&owner, "alice").await;
    assert_eq!(alice["login_type"], "ldap");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(org_names(&owner, "alice").await, ["coder", "data-platform"]);
    // Nested: alice and bob are in staff through eng.
    assert_eq!(
        dp_groups(&owner, "alice").await,
        ["eng", "platform-leads", "staff"]
    );
    assert_eq!(dp_groups(&owner, "bob").await, ["eng", "staff"]);
    assert_eq!(
        dp_roles(&owner, "alice").await,
        json!(["organization-admin"])
    );
    assert_eq!(dp_roles(&owner, "bob").await, json!([]));
    // posixGroup memberUid.
    assert_eq!(org_names(&owner, "carol").await, ["coder", "ops-org"]);
    assert_eq!(org_names(&owner, "dave").await, ["coder"]);
    // Groups auto-created by the directory sync say so.
    let groups = owner.get_ok("/organizations/data-platform/groups").await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "staff")
        .unwrap();
    assert_eq!(staff["source"], "ldap", "{staff}");
    // Changes are audited as the directory sync's.
    let audit = owner.get_ok("/audit?limit=200").await;
    assert!(
        audit["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "ldap_sync"),
        "{audit}"
    );

    // A second run with no change in the directory writes nothing.
    let before = audit_count(&owner).await;
    let again = run(&owner, json!({"full": true})).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(stat(&again, "users_unchanged"), 4, "{again}");
    assert_eq!(stat(&again, "users_created"), 0);
    assert_eq!(
        stat(&again, "memberships_added") + stat(&again, "memberships_removed"),
        0
    );
    assert_eq!(audit_count(&owner).await, before);

    // Manual changes to what the directory manages are refused.
    let (status, body) = owner
        .put(
            "/organizations/data-platform/members/bob/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(dp_roles(&owner, "bob").await, json!([]));

    // Runs are listed newest first.
    let list = owner.get_ok("/ldapsync/runs").await;
    assert_eq!(list["count"], 3, "{list}");
    assert_eq!(list["runs"][0]["id"], again["id"]);
}

#[tokio::test]
async fn directory_changes_are_reflected_gone_users_suspended_and_reactivated() {
    let slapd = Slapd::start();
    seed(&slapd);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    assert_eq!(run(&owner, json!({})).await["status"], "succeeded");

    // bob leaves eng (and so staff and data-platform); carol's department changes;
    // dave is deleted.
    slapd.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n\n",
        gdn("eng"),
        udn("bob")
    ));
    slapd.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: d9\n\n",
        udn("carol")
    ));
    slapd.delete(&udn("dave"));
    let r = run(&owner, json!({"full": true})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(stat(&r, "users_suspended"), 1, "{r}");
    assert_eq!(org_names(&owner, "bob").await, ["coder"]);
    assert_eq!(user(&owner, "dave").await["status"], "suspended");
    assert_eq!(user(&owner, "alice").await["status"], "active");
    // Suspended, not deleted: a suspended user cannot log in, and comes back.
    slapd.ldapadd(&user_ldif("dave", "d3"));
    let r = run(&owner, json!({"full": true})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(stat(&r, "users_reactivated"), 1, "{r}");
    assert_eq!(user(&owner, "dave").await["status"], "active");

    // An email change to another account's address is not applied (reported).
    slapd.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: bob@example.com\n\n",
        udn("carol")
    ));
    let r = run(&owner, json!({"full": true})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(user(&owner, "carol").await["email"], "carol@example.com");
    assert!(r["problems"].to_string().contains("email_conflict"), "{r}");

    // Once an admin sets a status, the sync no longer reactivates on its own:
    // suspended by the sync, activated and then suspended by an admin.
    slapd.delete(&udn("dave"));
    assert_eq!(
        run(&owner, json!({"full": true})).await["status"],
        "succeeded"
    );
    assert_eq!(user(&owner, "dave").await["status"], "suspended");
    set_status(&owner, "dave", "activate", "active").await;
    set_status(&owner, "dave", "suspend", "suspended").await;
    slapd.ldapadd(&user_ldif("dave", "d3"));
    assert_eq!(
        run(&owner, json!({"full": true})).await["status"],
        "succeeded"
    );
    assert_eq!(user(&owner, "dave").await["status"], "suspended");

    // A user an admin suspended stays suspended.
    set_status(&owner, "alice", "suspend", "suspended").await;
    assert_eq!(
        run(&owner, json!({"full": true})).await["status"],
        "succeeded"
    );
    assert_eq!(user(&owner, "alice").await["status"], "suspended");
}

#[tokio::test]
async fn a_run_that_removes_too_much_is_aborted_unless_forced() {
    let slapd = Slapd::start();
    seed(&slapd);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    let mut strict = settings(&slapd);
    strict["max_removal_percent"] = json!(10);
    put_settings(&owner, strict).await;
    assert_eq!(run(&owner, json!({})).await["status"], "succeeded");

    slapd.delete(&udn("carol"));
    slapd.delete(&udn("dave"));
    let before = audit_count(&owner).await;
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "aborted", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("max_removal_percent") && error.contains("force"),
        "{error}"
    );
    assert_eq!(stat(&r, "users_suspended"), 2);
    assert!(
        r["plan"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["action"] == "suspend"),
        "{r}"
    );
    assert_eq!(audit_count(&owner).await, before);
    assert_eq!(user(&owner, "carol").await["status"], "active");

    let r = run(&owner, json!({"force": true})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["force"], true);
    assert_eq!(user(&owner, "carol").await["status"], "suspended");
    assert_eq!(user(&owner, "dave").await["status"], "suspended");
}

#[tokio::test]
async fn failed_reads_change_nothing() {
    let slapd = Slapd::start();
    seed(&slapd);
    // More entries than the frontend size limit (50) of the `limited` account.
    let mut many = String::new();
    for i in 0..60 {
        many.push_str(&user_ldif(&format!("user{i:03}"), "d0"));
    }
    slapd.ldapadd(&many);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    let users_before = owner.get_ok("/users?limit=1").await["count"].clone();
    let before = audit_count(&owner).await;

    // The size limit: the run fails and nothing is written.
    let mut limited = settings(&slapd);
    limited["bind_dn"] = json!(format!("cn=limited,ou=services,{BASE}"));
    limited["bind_password"] = json!("limited-password");
    limited["page_size"] = json!(500);
    put_settings(&owner, limited).await;
    let before_settings = audit_count(&owner).await;
    assert_eq!(before_settings, before + 1);
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("size limit"), "{error}");
    assert_eq!(owner.get_ok("/users?limit=1").await["count"], users_before);
    assert_eq!(audit_count(&owner).await, before_settings);

    // A wrong password: a clear bind error, never the password.
    let mut wrong = settings(&slapd);
    wrong["bind_password"] = json!("not-the-password");
    put_settings(&owner, wrong).await;
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.to_lowercase().contains("bind") && error.contains("cn=sync"),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    assert_eq!(owner.get_ok("/users?limit=1").await["count"], users_before);

    // The directory down: a clear connection error, nothing changed.
    put_settings(&owner, settings(&slapd)).await;
    let mut slapd = slapd;
    slapd.kill();
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("127.0.0.1"), "{r}");
    assert_eq!(owner.get_ok("/users?limit=1").await["count"], users_before);

    // Back up: the next run converges.
    slapd.restart();
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(stat(&r, "users_created"), 64);
}

#[tokio::test]
async fn incremental_runs_pick_up_deletions_and_membership_changes() {
    let slapd = Slapd::start();
    seed(&slapd);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    let first = run(&owner, json!({})).await;
    assert_eq!(first["full"], true, "{first}");
    assert_eq!(stat(&first, "users_created"), 4);

    slapd.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n\n",
        gdn("eng"),
        udn("bob")
    ));
    slapd.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        gdn("eng"),
        udn("dave")
    ));
    slapd.delete(&udn("carol"));
    // Not forced full: the full run is not due yet (24h), so this is incremental.
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["full"], false, "{r}");
    assert_eq!(stat(&r, "users_suspended"), 1, "{r}");
    assert_eq!(user(&owner, "carol").await["status"], "suspended");
    assert_eq!(org_names(&owner, "bob").await, ["coder"]);
    assert_eq!(org_names(&owner, "dave").await, ["coder", "data-platform"]);
    assert_eq!(dp_groups(&owner, "dave").await, ["eng", "staff"]);
    // alice did not change: not planned again.
    assert!(stat(&r, "users_planned") < 4, "{r}");
    assert_eq!(
        dp_groups(&owner, "alice").await,
        ["eng", "platform-leads", "staff"]
    );

    // A changed mapping concerns users the directory did not change: the next
    // run is full.
    let (status, body) = owner
        .patch(
            "/settings/idpsync/organization/mapping",
            json!({"add": [{"given": "staff", "gets": "ops-org"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["full"], true, "{r}");
    assert_eq!(
        org_names(&owner, "alice").await,
        ["coder", "data-platform", "ops-org"]
    );
    // Nothing changed since: incremental again.
    let r = run(&owner, json!({})).await;
    assert_eq!(r["full"], false, "{r}");
}

/// Runs the sync every second until `at_least` scheduled runs ended, puts the
/// schedule back to once a year, and checks that no tick ran twice and every
/// run succeeded.
async fn scheduled_runs_once_per_tick(owner: &Client, slapd: &Slapd, at_least: usize) {
    let mut every_second = settings(slapd);
    every_second["schedule"] = json!("* * * * * *");
    put_settings(owner, every_second).await;
    let runs = wait_for(
        &format!("{at_least} scheduled runs to end"),
        Duration::from_secs(40),
        async || {
            let list = owner.get_ok("/ldapsync/runs?limit=100").await;
            let done: Vec<Value> = list["runs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["trigger"] == "schedule" && r["status"] != "running")
                .cloned()
                .collect();
            if done.len() >= at_least {
                Ok(done)
            } else {
                Err(list)
            }
        },
    )
    .await;
    put_settings(owner, settings(slapd)).await;
    let mut ticks: Vec<&str> = runs.iter().map(|r| r["tick"].as_str().unwrap()).collect();
    let n = ticks.len();
    ticks.sort_unstable();
    ticks.dedup();
    assert_eq!(ticks.len(), n, "a tick ran twice: {runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    assert_eq!(org_names(owner, "alice").await, ["coder", "data-platform"]);
}

#[tokio::test]
async fn the_schedule_runs_syncs_and_two_replicas_share_each_tick() {
    let slapd = Slapd::start();
    seed(&slapd);
    let s = TestServer::start().await;
    let replica = s.replica().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    scheduled_runs_once_per_tick(&owner, &slapd, 4).await;
    drop(replica);
}

#[tokio::test]
async fn the_cli_runs_a_sync_with_a_progress_line() {
    let slapd = Slapd::start();
    seed(&slapd);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    let token = owner.token.clone().unwrap();
    let base = s.base.clone();
    let cli = move |args: &'static [&'static str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"));
        let home = tempfile::tempdir().unwrap();
        cmd.env("ORGSYNC_URL", &base)
            .env("ORGSYNC_SESSION_TOKEN", &token)
            .env("HOME", home.path())
            .env("ORGSYNC_CONFIG_DIR", home.path())
            .args(args)
            .stdin(std::process::Stdio::null());
        let since = crate::logscan::mark();
        let out = cmd.output().unwrap();
        crate::logscan::register_cli_run(args, &[], None, &out.stdout, &out.stderr, since);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let r = cli(&["ldapsync", "run", "--dry-run"]);
        let r2 = cli(&["ldapsync", "run"]);
        let r3 = cli(&["ldapsync", "runs", "--output", "json"]);
        (r, r2, r3)
    })
    .await
    .map(|(a, b, c)| {
        assert_eq!(a.0, 0, "dry run: {} {}", a.1, a.2);
        assert!(a.1.contains("create"), "{}", a.1);
        assert_eq!(c.0, 0, "{}", c.2);
        let list: Value = serde_json::from_str(&c.1).unwrap();
        assert_eq!(list["count"], 2, "{list}");
        b
    })
    .unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("succeeded"), "{out}");
    assert!(out.contains("users_created"), "{out}");
    assert!(err.contains("users") || out.contains("users_seen"), "{err}");
    assert_eq!(user(&owner, "alice").await["login_type"], "ldap");
    // A run that cannot succeed exits non-zero with the reason on stderr.
    let mut slapd = slapd;
    slapd.kill();
    let token = owner.token.clone().unwrap();
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"))
            .env("ORGSYNC_URL", &base)
            .env("ORGSYNC_SESSION_TOKEN", &token)
            .env("HOME", home.path())
            .env("ORGSYNC_CONFIG_DIR", home.path())
            .args(["ldapsync", "run"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed"), "{err}");
}

#[tokio::test]
async fn a_run_in_progress_reports_its_counts_and_runs_are_one_at_a_time() {
    let slapd = Slapd::start();
    let mut many = String::new();
    for i in 0..800 {
        many.push_str(&user_ldif(&format!("user{i:04}"), "d0"));
    }
    slapd.ldapadd(&many);
    // Two entries per LDAP page (`settings`) and ten users per batch: the run
    // takes seconds.
    let s = TestServer::start_with(|a| a.ldapsync_batch_size = Some(10)).await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    let (status, started) = owner.post("/ldapsync/runs", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    // While it runs, another run is refused with 409.
    let (status, body) = owner.post("/ldapsync/runs", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&id), "{body}");
    // A run only ever leaves `running`: still running now, it was running
    // when the second one was refused.
    let (_, r) = owner.get(&format!("/ldapsync/runs/{id}")).await;
    assert_eq!(r["status"], "running", "{r}");
    let mut last_applied = 0;
    // Every poll checks the progress against the one before.
    let done = wait_for(
        &format!("run {id} to end"),
        Duration::from_secs(120),
        async || {
            let r = owner.get_ok(&format!("/ldapsync/runs/{id}")).await;
            let applied = r["progress"]["users_applied"].as_u64().unwrap_or(0);
            assert!(applied >= last_applied, "progress went back: {r}");
            last_applied = applied;
            if r["status"] != "running" {
                Ok(r)
            } else {
                Err(r)
            }
        },
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"]["users_read"], 800);
    assert_eq!(done["progress"]["users_applied"], 800);
    assert_eq!(stat(&done, "users_created"), 800);
    assert_eq!(user_count(&owner).await, 801);
}

/// Everything the sync decides for a user: orgs, data-platform groups and roles.
async fn synced_state(c: &Client, name: &str) -> Value {
    json!({
        "orgs": org_names(c, name).await,
        "groups": dp_groups(c, name).await,
        "roles": dp_roles(c, name).await,
    })
}

#[tokio::test]
async fn directory_sync_and_oidc_login_with_equivalent_claims_agree() {
    let slapd = Slapd::start();
    seed(&slapd);
    // alice at the provider has the claims the directory gives her; erin (not in
    // the directory) has bob's.
    let op = crate::oidc::Provider::start(
        json!({
            "sub-alice": {"email": "alice@example.com", "email_verified": true, "preferred_username": "alice",
                          "groups": ["eng", "platform-leads", "staff"], "department": "d1"},
            "sub-erin": {"email": "erin@example.com", "email_verified": true, "preferred_username": "erin",
                         "groups": ["eng", "staff"], "department": "d1"},
        }),
        false,
    );
    let s = crate::oidc::server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    assert_eq!(run(&owner, json!({})).await["status"], "succeeded");
    let alice_by_ldap = synced_state(&owner, "alice").await;
    assert_eq!(
        alice_by_ldap["roles"],
        json!(["organization-admin"]),
        "{alice_by_ldap}"
    );

    // alice logs in with OIDC: linked by verified email, nothing to change.
    let before = audit_count(&owner).await;
    crate::oidc::Browser::new(&s).login("sub-alice").await;
    assert_eq!(synced_state(&owner, "alice").await, alice_by_ldap);
    let audit = owner
        .get_ok(&format!(
            "/audit?limit={}",
            audit_count(&owner).await - before
        ))
        .await;
    let sync_changes: Vec<&Value> = audit["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_type"] == "organization_member" || e["resource_type"] == "group")
        .collect();
    assert!(
        sync_changes.is_empty(),
        "the login changed what the directory set: {sync_changes:?}"
    );

    // erin, by OIDC only, ends up exactly where the directory put bob.
    crate::oidc::Browser::new(&s).login("sub-erin").await;
    assert_eq!(
        synced_state(&owner, "erin").await,
        synced_state(&owner, "bob").await
    );

    // And the next directory run leaves both alone.
    let before = audit_count(&owner).await;
    let r = run(&owner, json!({"full": true})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(audit_count(&owner).await, before, "{r}");
}

async fn user_count(c: &Client) -> i64 {
    c.get_ok("/users?limit=1").await["count"].as_i64().unwrap()
}

// A server killed mid-run (SIGKILL, the real process): `crash.rs`.

#[tokio::test]
async fn bad_entries_are_reported_and_the_run_goes_on() {
    let slapd = Slapd::start();
    seed(&slapd);
    // No mail; and two entries with one username (different DNs).
    slapd.ldapadd(&format!(
        "dn: uid=nomail,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: nomail\ncn: No Mail\nsn: m\n\n\
         dn: cn=twin one,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: twin\ncn: twin one\nsn: t\nmail: twin1@example.com\n\n\
         dn: cn=twin two,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: twin\ncn: twin two\nsn: t\nmail: twin2@example.com\n\n\
         dn: cn=reserved,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: me\ncn: reserved\nsn: r\nmail: me@example.com\n\n\
         dn: uid=boss,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: boss\ncn: boss\nsn: b\nmail: admin@example.com\n\n"
    ));
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(stat(&r, "users_created"), 4, "{r}");
    let kinds: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"duplicate_username"), "{kinds:?}");
    assert!(kinds.contains(&"missing_attribute"), "{kinds:?}");
    // A reserved username is refused; a password account is not taken over
    // by a directory entry with its email.
    assert!(kinds.contains(&"invalid_value"), "{kinds:?}");
    assert!(kinds.contains(&"email_conflict"), "{kinds:?}");
    assert_eq!(user(&owner, "admin").await["login_type"], "password");
    let (status, reply) = owner.get("/users/boss").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, reply) = owner.get("/users/twin").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, reply) = owner.get("/users/nomail").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    // Recorded for admins too.
    let (status, problems) = owner.get("/idpsync/problems").await;
    assert_eq!(status, StatusCode::OK, "{problems}");
    assert!(
        problems.to_string().contains("duplicate_username"),
        "{problems}"
    );

    // Fixed in the directory: an incremental run sees only affected users, so
    // the stored problems stay; the next full run drops the ones it no longer
    // meets and keeps the others.
    slapd.delete(&format!("cn=twin two,ou=people,{BASE}"));
    slapd.delete(&format!("uid=nomail,ou=people,{BASE}"));
    let r = run(&owner, json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["full"], false, "{r}");
    let problems = owner.get_ok("/idpsync/problems").await;
    assert!(
        problems.to_string().contains("duplicate_username"),
        "{problems}"
    );
    let r = run(&owner, json!({"full": true})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(user(&owner, "twin").await["email"], "twin1@example.com");
    let problems = owner.get_ok("/idpsync/problems").await;
    let text = problems.to_string();
    assert!(!text.contains("duplicate_username"), "{problems}");
    assert!(!text.contains("uid=nomail"), "{problems}");
    assert!(text.contains("email_conflict"), "{problems}");
    assert!(text.contains("invalid_value"), "{problems}");
    // Still there and met again: not recorded twice.
    let conflicts = problems["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "email_conflict")
        .count();
    assert_eq!(conflicts, 1, "{problems}");
}

#[tokio::test]
async fn settings_from_the_config_file_are_applied_at_start() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orgsync.toml");
    std::fs::write(
        &path,
        format!(
            "[ldapsync]\nenabled = true\nurl = \"{}\"\nbind_dn = \"cn=sync,ou=services,{BASE}\"\n\
             bind_password = \"sync-password\"\nuser_base_dn = \"ou=people,{BASE}\"\n\
             group_base_dn = \"ou=groups,{BASE}\"\nschedule = \"0 0 3 * * *\"\n",
            slapd.url()
        ),
    )
    .unwrap();
    let s = TestServer::start_with(|a| a.config = Some(path.clone())).await;
    let owner = s.owner().await;
    let d = owner.get_ok("/settings/ldapsync").await;
    assert_eq!(d["enabled"], true, "{d}");
    assert_eq!(d["schedule"], "0 0 3 * * *");
    assert_eq!(d["bind_password_set"], true);
    seed(&slapd);
    assert_eq!(run(&owner, json!({})).await["status"], "succeeded");
    // An invalid file refuses to start, naming the field.
    std::fs::write(
        &path,
        "[ldapsync]\nenabled = true\nschedule = \"whenever\"\n",
    )
    .unwrap();
    let args = orgsync::config::ServerArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    let err = orgsync::config::ServerConfig::resolve(&args)
        .unwrap_err()
        .to_string();
    assert!(err.contains("schedule"), "{err}");
}

#[tokio::test]
async fn two_server_processes_on_one_database_run_each_tick_once() {
    use crate::walkthrough::spawn_server;
    let slapd = Slapd::start();
    seed(&slapd);
    let (_db, database_url, data_dir) = crate::harness::TestDb::new().await;
    let mut procs = Vec::new();
    let mut urls = Vec::new();
    for i in 0..2 {
        let (proc, url) = spawn_server(
            &database_url,
            &data_dir,
            &data_dir.join(format!("server{i}.log")),
            &["--provisioner-daemons", "0"],
        )
        .await;
        procs.push(proc);
        urls.push(url);
    }
    let http = reqwest::Client::new();
    let mut owner = Client {
        http: http.clone(),
        base: format!("{}/api/v2", urls[0]),
        token: None,
    };
    let (status, body) = owner
        .post(
            "/users/first",
            json!({"username": "admin", "email": "admin@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    owner.token = Some(body["session_token"].as_str().unwrap().to_owned());
    setup(&owner, &slapd).await;
    scheduled_runs_once_per_tick(&owner, &slapd, 6).await;
    drop(procs);
}

#[tokio::test]
async fn the_directory_dying_mid_run_fails_the_run_and_changes_nothing() {
    let mut slapd = Slapd::start();
    let mut many = String::new();
    for i in 0..5000 {
        many.push_str(&user_ldif(&format!("user{i:04}"), "d0"));
    }
    slapd.ldapadd(&many);
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup(&owner, &slapd).await;
    // One entry per page: the read takes long enough to be interrupted.
    let mut slow = settings(&slapd);
    slow["page_size"] = json!(1);
    put_settings(&owner, slow).await;
    let before = audit_count(&owner).await;
    let (status, started) = owner.post("/ldapsync/runs", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    wait_for(
        "the run to read its first users",
        Duration::from_secs(60),
        async || {
            let r = owner.get_ok(&format!("/ldapsync/runs/{id}")).await;
            assert_eq!(
                r["status"], "running",
                "the read ended before slapd could be killed: {r}"
            );
            if r["progress"]["users_read"].as_u64().unwrap_or(0) > 0 {
                Ok(())
            } else {
                Err(r)
            }
        },
    )
    .await;
    slapd.kill();
    let r = wait(&owner, &id).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(!r["error"].as_str().unwrap().is_empty(), "{r}");
    assert_eq!(
        user_count(&owner).await,
        1,
        "users were created by a failed run"
    );
    assert_eq!(audit_count(&owner).await, before);
}
