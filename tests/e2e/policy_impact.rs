//! `POST /policies/impact`, `orgsync policy diff` and `policy reload
//! [--dry-run]`: the impact of a policy change on a data set with a known answer.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::owner_cli;
use crate::harness::{Client, TestServer};
use crate::provisioning::{import_version, template_tar, wait_job};

/// Org auditors may also update templates.
const WIDEN: &str = "@id(\"test.auditor-updates-templates\")\npermit (\n  principal,\n  action == Action::\"template:update\",\n  resource is Template\n)\nwhen\n{\n  principal in resource.organization &&\n  principal.hasTag(resource.organization.key) &&\n  principal.getTag(resource.organization.key).contains(\"organization-auditor\")\n};\n";

fn policy_dir(to: &Path, extra: Option<&str>, narrow: bool) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            continue;
        }
        let mut text = std::fs::read_to_string(e.path()).unwrap();
        if narrow && e.file_name() == "org-roles.cedar" {
            // Organization user-admins may no longer make people members.
            let start = text.find("// An organization-user-admin only").unwrap();
            let end = text[start..].find("};\n").unwrap() + start + 3;
            text.replace_range(start..end, "");
        }
        std::fs::write(to.join(e.file_name()), text).unwrap();
    }
    if let Some(extra) = extra {
        std::fs::write(to.join("zz-test.cedar"), extra).unwrap();
    }
}

fn files_of(dir: &Path) -> Value {
    let mut files = serde_json::Map::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let name = e.file_name().to_string_lossy().into_owned();
            files.insert(name, json!(std::fs::read_to_string(e.path()).unwrap()));
        }
    }
    json!({ "files": files })
}

struct World {
    s: TestServer,
    owner: Client,
    auditors: Vec<String>,
    templates: Vec<String>,
    member: Client,
}

/// Two org auditors, one org user-admin and one plain member of `coder`, and
/// two templates there.
async fn world(tweak: impl FnOnce(&mut orgsync::config::ServerArgs)) -> World {
    let s = TestServer::start_with(|a| {
        a.provisioner_daemons = Some(1);
        tweak(a);
    })
    .await;
    let owner = s.owner().await;
    let mut auditors = Vec::new();
    for name in ["aud1", "aud2"] {
        let (_, id) = owner.create_user(name).await;
        let (status, body) = owner
            .put(
                &format!("/organizations/coder/members/{id}/roles"),
                json!({"roles": ["organization-auditor"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        auditors.push(id);
    }
    let (_, ua) = owner.create_user("uadmin").await;
    let (status, body) = owner
        .put(
            &format!("/organizations/coder/members/{ua}/roles"),
            json!({"roles": ["organization-user-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (member, _) = owner.create_user("plain").await;
    let mut templates = Vec::new();
    for name in ["t1", "t2"] {
        let tar = template_tar(&[("main.tf", &format!("# {name}\n"))]);
        let v = import_version(&owner, "coder", "echo", tar, json!({})).await;
        let job = wait_job(
            &owner,
            v["job"]["id"].as_str().unwrap(),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let (status, t) = owner
            .post(
                "/organizations/coder/templates",
                json!({"name": name, "version_id": v["id"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        templates.push(t["id"].as_str().unwrap().to_owned());
    }
    World {
        s,
        owner,
        auditors,
        templates,
        member,
    }
}

fn groups_of<'a>(answer: &'a Value, action: &str) -> Vec<&'a Value> {
    answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["action"] == action)
        .collect()
}

#[tokio::test]
async fn impact_of_a_widening_and_a_narrowing_change_has_the_known_answer() {
    let w = world(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();

    // Widen: exactly the two auditors x the two templates flip to allow.
    policy_dir(dir.path(), Some(WIDEN), false);
    let (status, a) = w.owner.post("/policies/impact", files_of(dir.path())).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["changed"], 4, "{a:#}");
    assert_eq!(a["granted"], 4, "{a:#}");
    assert_eq!(a["revoked"], 0, "{a:#}");
    let groups = groups_of(&a, "template:update");
    assert_eq!(groups.len(), 1, "{a:#}");
    let g = groups[0];
    assert_eq!(g["count"], 4);
    assert!(
        g["role"].as_str().unwrap().contains("organization-auditor"),
        "{g}"
    );
    assert_eq!(
        (g["before"].as_str(), g["after"].as_str()),
        (Some("deny"), Some("allow"))
    );
    assert_eq!(g["policies_before"], json!([]));
    assert_eq!(
        g["policies_after"],
        json!(["test.auditor-updates-templates"])
    );
    let mut pairs: Vec<(String, String)> = Vec::new();
    assert_eq!(g["examples"].as_array().unwrap().len(), 3);
    for e in g["examples"].as_array().unwrap() {
        assert!(
            w.auditors.iter().any(|id| e["user_id"] == id.as_str()),
            "{e}"
        );
        let r = e["resource"].as_str().unwrap();
        assert!(
            w.templates.iter().any(|t| r == format!("Template::{t:?}")),
            "{e}"
        );
        assert_eq!(
            e["policies_after"],
            json!(["test.auditor-updates-templates"])
        );
        pairs.push((e["user"].as_str().unwrap().into(), r.into()));
    }
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 3);
    assert_eq!(a["users"], 5, "{a:#}");
    assert!(a["decisions"].as_u64().unwrap() > 100, "{a:#}");
    assert_eq!(a["sample"]["sampled"], json!([]));

    // Narrow: the org user-admin may no longer assign organization-member.
    let dir2 = tempfile::tempdir().unwrap();
    policy_dir(dir2.path(), None, true);
    let (status, n) = w
        .owner
        .post("/policies/impact", files_of(dir2.path()))
        .await;
    assert_eq!(status, StatusCode::OK, "{n}");
    assert_eq!(
        (n["changed"].as_u64(), n["revoked"].as_u64()),
        (Some(1), Some(1)),
        "{n:#}"
    );
    let g = &n["groups"][0];
    assert_eq!(g["action"], "org_role:assign");
    assert!(
        g["role"]
            .as_str()
            .unwrap()
            .contains("organization-user-admin"),
        "{g}"
    );
    assert_eq!(g["policies_before"], json!(["org.user-admin.assign-roles"]));
    assert_eq!(g["policies_after"], json!([]));
    assert_eq!(g["examples"][0]["user"], "uadmin");
    assert!(
        g["examples"][0]["resource"]
            .as_str()
            .unwrap()
            .ends_with("/organization-member\""),
        "{g}"
    );

    // The running set against itself changes nothing.
    let same = tempfile::tempdir().unwrap();
    policy_dir(same.path(), None, false);
    let (status, z) = w
        .owner
        .post("/policies/impact", files_of(same.path()))
        .await;
    assert_eq!(status, StatusCode::OK, "{z}");
    assert_eq!(z["changed"], 0, "{z:#}");

    // An invalid set: 400 with the validator's file:line.
    let mut bad = files_of(same.path());
    bad["files"]["zz-bad.cedar"] = json!(
        "@id(\"bad\")\npermit (principal, action == Action::\"organization:read\", resource)\nwhen { resource.nope };\n"
    );
    let (status, body) = w.owner.post("/policies/impact", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["validations"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("zz-bad.cedar:3:"),
        "{body}"
    );
    // Without --policy-dir there is no server directory to propose.
    let (status, body) = w
        .owner
        .post("/policies/impact", json!({"policy_dir": true}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Neither a member nor an org auditor may ask (they may not reload).
    let (status, body) = w
        .member
        .post("/policies/impact", files_of(dir.path()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    w.s.stop().await;
}

#[tokio::test]
async fn policy_diff_and_reload_dry_run_by_cli_and_a_widening_reload_says_so() {
    let live = tempfile::tempdir().unwrap();
    let live_dir = live.path().join("policies");
    // The live directory holds a placeholder of WIDEN's length that grants
    // nothing: overwritten with WIDEN and its mtime kept, the server's file
    // watch (which compares sizes and mtimes) does not reload by itself, so
    // the dry run and the API reload see the change.
    let placeholder = WIDEN.replace("organization-auditor", "organization-nobody1");
    policy_dir(&live_dir, Some(&placeholder), false);
    let d = live_dir.clone();
    let w = world(move |a| a.policy_dir = Some(d)).await;
    let cli = owner_cli(&w.s).await;
    let proposed = tempfile::tempdir().unwrap();
    policy_dir(proposed.path(), Some(WIDEN), false);
    let dir = proposed.path().to_str().unwrap();

    // Table: the totals and one row per group.
    let out = cli.ok(&["policy", "diff", "--policy-dir", dir]).await;
    assert!(out.contains("4 change (4 granted, 0 revoked)"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("template:update"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("organization-auditor"), "{row}");
    assert!(row.contains("deny -> allow"), "{row}");
    assert!(row.contains("test.auditor-updates-templates"), "{row}");
    // JSON: the API's answer.
    let j = cli.json(&["policy", "diff", "--policy-dir", dir]).await;
    assert_eq!(j["granted"], 4, "{j}");

    // The dry run of a reload shows the same, and reloads nothing.
    let live_file = live_dir.join("zz-test.cedar");
    let mtime = std::fs::metadata(&live_file).unwrap().modified().unwrap();
    std::fs::write(&live_file, WIDEN).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&live_file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let hash0 = w.owner.get_ok("/policies").await["hash"].clone();
    let j = cli.json(&["policy", "reload", "--dry-run"]).await;
    assert_eq!(j["granted"], 4, "{j}");
    assert_eq!(w.owner.get_ok("/policies").await["hash"], hash0);

    // A real reload that grants more says so, and so does its audit entry.
    let out = cli.ok(&["policy", "reload"]).await;
    assert!(out.contains("grant 4 decisions"), "{out}");
    let audit = w.owner.get_ok("/audit?limit=1000").await;
    let text = audit.to_string();
    assert!(text.contains("\"grants_more\":true"), "{text}");

    w.s.stop().await;
}
