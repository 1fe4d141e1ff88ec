//! The CLI's global behaviour and its admin commands against a real server:
//! `-O` and `-o` anywhere, named profiles, `login --token`, `whoami`,
//! `logout`, `version`, `completion`, `tokens`, `groups update|delete`,
//! `organizations update|roles list`, `users delete`, `audit`; their table
//! and JSON output, errors and exit codes (1 API, 2 usage, 4 not
//! authenticated); and that every command, flag and argument has a help line.

use clap::CommandFactory;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::{Cli, names, owner_cli, row};
use crate::harness::TestServer;

/// Creates a password user `name` (`name@example.com`, `password123`) with
/// the owner's CLI.
async fn create_user(owner: &Cli, name: &str) {
    let email = format!("{name}@example.com");
    owner
        .ok(&[
            "users",
            "create",
            "--username",
            name,
            "--email",
            &email,
            "--password",
            "password123",
        ])
        .await;
}

/// `orgsync login URL` as the password user `name`, in `profile` when given.
async fn login_as(cli: &Cli, name: &str, profile: Option<&str>) -> String {
    let email = format!("{name}@example.com");
    let mut args = vec![
        "login",
        cli.url.as_str(),
        "--email",
        &email,
        "--password",
        "password123",
    ];
    if let Some(p) = profile {
        args.extend(["--profile", p]);
    }
    cli.ok(&args).await
}

/// The token of a stored session file.
fn session_token(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["session_token"].as_str().unwrap().to_owned()
}

fn parse(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A request with a token in a header of the caller's choice.
async fn get_with(s: &TestServer, path: &str, header: &str, value: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}/api/v2{path}", s.base))
        .header(header, value)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn output_before_or_after_the_subcommand_and_short_org() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;

    // -o/--output before the command group, between, and after.
    for args in [
        &["-o", "json", "organizations", "list"][..],
        &["organizations", "-o", "json", "list"],
        &["organizations", "list", "-o", "json"],
        &["--output", "json", "orgs", "list"],
    ] {
        let orgs = parse(&cli.ok(args).await);
        assert_eq!(names(&orgs, "name"), ["coder"], "{args:?}");
    }
    let me = parse(&cli.ok(&["-o", "json", "whoami"]).await);
    assert_eq!(me["user"]["username"], "admin");
    let me = parse(&cli.ok(&["whoami", "--output", "json"]).await);
    assert_eq!(me["user"]["username"], "admin");
    let table = cli.ok(&["organizations", "list"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    cli.fails(2, &["-o", "yaml", "organizations", "list"]).await;

    // -O is --org: groups, members, roles, audit.
    cli.ok(&["organizations", "create", "data-platform"]).await;
    create_user(&cli, "alice").await;
    cli.ok(&[
        "organizations",
        "members",
        "add",
        "alice",
        "-O",
        "data-platform",
    ])
    .await;
    cli.ok(&["groups", "create", "eng", "-O", "data-platform"])
        .await;
    let groups = cli.json(&["groups", "list", "-O", "data-platform"]).await;
    let mut got = names(&groups, "name");
    got.sort();
    assert_eq!(got, ["Everyone", "eng"]);
    let members = cli
        .json(&["organizations", "members", "list", "-O", "data-platform"])
        .await;
    assert!(names(&members, "username").contains(&"alice".to_owned()));
    let entries = cli
        .json(&["audit", "-O", "data-platform", "--resource-type", "group"])
        .await;
    assert_eq!(entries["audit_logs"][0]["resource_target"], "eng");
    // -O without a value is a usage error.
    cli.fails(2, &["groups", "list", "-O"]).await;
}

#[tokio::test]
async fn profiles_keep_an_admin_and_a_member_side_by_side() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    create_user(&cli, "bob").await;

    let out = login_as(&cli, "bob", Some("member")).await;
    assert!(out.contains("profile `member`"), "{out}");
    // Each profile is its own file, readable by its owner only.
    let default_file = cli.config_dir().join("session.json");
    let member_file = cli.config_dir().join("profiles").join("member.json");
    #[cfg(unix)]
    for path in [&default_file, &member_file] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} mode {mode:o}", path.display());
    }

    // The default profile is still the admin's; the member's is selected by
    // flag or environment, before or after the command.
    let table = cli.ok(&["whoami"]).await;
    assert!(row(&table, "Username:").contains("admin"), "{table}");
    assert!(row(&table, "Site").contains("owner"), "{table}");
    assert!(row(&table, "Organizations:").contains("coder"), "{table}");
    assert!(row(&table, "URL:").contains(&s.base), "{table}");
    let me = cli.json(&["--profile", "member", "whoami"]).await;
    assert_eq!(me["user"]["username"], "bob");
    assert_eq!(me["profile"], "member");
    assert_eq!(me["url"], s.base);
    assert_eq!(names(&me["organizations"], "name"), ["coder"]);
    assert!(!me["user"]["roles"].to_string().contains("owner"), "{me}");
    let me = cli.json(&["whoami", "--profile", "member"]).await;
    assert_eq!(me["user"]["username"], "bob");
    let by_env = Cli {
        env: vec![("ORGSYNC_PROFILE".to_owned(), "member".to_owned())],
        ..cli
    };
    let me = by_env.json(&["whoami"]).await;
    assert_eq!(me["user"]["username"], "bob");
    // The member's profile has the member's rights only.
    by_env.fails(1, &["organizations", "create", "x"]).await;
    let cli = Cli {
        env: Vec::new(),
        ..by_env
    };
    let me = cli.json(&["whoami"]).await;
    assert_eq!(me["user"]["username"], "admin");

    // A profile never logged in: exit 4, naming how to log in to it.
    let err = cli.fails(4, &["--profile", "ci", "whoami"]).await;
    assert!(err.contains("--profile ci"), "{err}");
    // A profile name is a file name: no paths.
    cli.fails(2, &["--profile", "../evil", "whoami"]).await;
    cli.fails(2, &["--profile", "", "whoami"]).await;

    // ORGSYNC_URL + ORGSYNC_SESSION_TOKEN still override any profile.
    let member_token = session_token(&member_file);
    let env_cli = Cli {
        env: vec![
            ("ORGSYNC_URL".to_owned(), s.base.clone()),
            ("ORGSYNC_SESSION_TOKEN".to_owned(), member_token.clone()),
        ],
        ..cli
    };
    let me = env_cli.json(&["whoami"]).await;
    assert_eq!(me["user"]["username"], "bob");
    let cli = Cli {
        env: Vec::new(),
        ..env_cli
    };

    // Logging out of the member's profile revokes its session on the server
    // and removes only that profile.
    let out = cli.ok(&["logout", "--profile", "member"]).await;
    assert!(out.contains("logged out of"), "{out}");
    assert!(!member_file.exists());
    assert!(default_file.exists());
    assert_eq!(
        get_with(
            &s,
            "/users/me",
            "Authorization",
            &format!("Bearer {member_token}")
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let me = cli.json(&["whoami"]).await;
    assert_eq!(me["user"]["username"], "admin");
    cli.fails(4, &["whoami", "--profile", "member"]).await;
    // Logging out again: nothing to do, not an error.
    let out = cli.run(&["logout", "--profile", "member"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("not logged in"), "{}", out.stderr);

    // A server that cannot be reached: the profile is still removed, and the
    // command says the session was not revoked.
    let closed = crate::testkit::ClosedPort::new();
    let gone_file = cli.config_dir().join("profiles").join("gone.json");
    std::fs::write(
        &gone_file,
        json!({"url": format!("http://127.0.0.1:{}", closed.port()), "session_token": "t", "username": "x"})
            .to_string(),
    )
    .unwrap();
    let out = cli
        .run(&["logout", "--profile", "gone", "-o", "json"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("did not revoke"), "{}", out.stderr);
    let answer = parse(&out.stdout);
    assert_eq!(answer["revoked"], false);
    assert_eq!(answer["logged_out"], true);
    assert!(!gone_file.exists());
}

#[tokio::test]
async fn login_with_a_token_for_users_without_a_password() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    // An OIDC-like user: no password; the owner makes it a token here (its
    // own would come from the console or `tokens create`).
    cli.ok(&[
        "users",
        "create",
        "--username",
        "carol",
        "--email",
        "carol@example.com",
        "--login-type",
        "none",
    ])
    .await;
    let token = cli
        .ok(&[
            "tokens", "create", "--user", "carol", "--name", "cli", "--quiet",
        ])
        .await;
    let token = token.trim();
    assert!(token.len() >= 32, "{token}");
    assert!(
        !token.contains(' '),
        "--quiet prints only the token: {token}"
    );

    let carol = Cli::new(&s);
    let out = carol.ok(&["login", &s.base, "--token", token]).await;
    assert!(out.contains("as `carol`"), "{out}");
    let me = carol.json(&["whoami"]).await;
    assert_eq!(me["user"]["username"], "carol");
    assert_eq!(me["user"]["login_type"], "none");
    // Carol manages her own tokens with it.
    let list = carol.json(&["tokens", "list"]).await;
    assert_eq!(names(&list, "token_name"), ["cli"]);

    // A bad token: exit 4, nothing stored.
    let nobody = Cli::new(&s);
    let err = nobody
        .fails(4, &["login", &s.base, "--token", "not-a-token"])
        .await;
    assert!(err.contains("nothing was stored"), "{err}");
    assert!(!nobody.config_dir().join("session.json").exists());
    let err = nobody
        .fails(4, &["login", &s.base, "--token", "x", "--profile", "p"])
        .await;
    assert!(err.contains("refused"), "{err}");
    assert!(!nobody.config_dir().join("profiles").join("p.json").exists());
    // --token excludes the password flags.
    nobody
        .fails(
            2,
            &[
                "login",
                &s.base,
                "--token",
                token,
                "--email",
                "carol@example.com",
            ],
        )
        .await;
}

#[tokio::test]
async fn tokens_create_list_delete_and_only_ones_own() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;

    let made = cli
        .json(&["tokens", "create", "--name", "ci", "--lifetime", "2h"])
        .await;
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    // About two hours.
    let expires =
        chrono::DateTime::parse_from_rfc3339(made["expires_at"].as_str().unwrap()).unwrap();
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_minutes();
    assert!((110..=120).contains(&left), "{made}");
    // The token works as a bearer, and in Coder's header.
    assert_eq!(
        get_with(&s, "/users/me", "Authorization", &format!("Bearer {key}")).await,
        StatusCode::OK
    );
    assert_eq!(
        get_with(&s, "/users/me", "Coder-Session-Token", &key).await,
        StatusCode::OK
    );
    // The table form says it is shown once and prints it.
    let out = cli.ok(&["tokens", "create", "--name", "laptop"]).await;
    assert!(out.contains("shown only once"), "{out}");
    assert!(out.contains("Authorization: Bearer"), "{out}");

    // The list: no secrets; newest first.
    let table = cli.ok(&["tokens", "list"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(row(&table, "ci").contains(&id), "{table}");
    assert!(!table.contains(&key), "{table}");
    let list = cli.json(&["tokens", "list"]).await;
    assert_eq!(names(&list, "token_name"), ["laptop", "ci"]);
    assert!(!list.to_string().contains(&key));
    assert!(list[0].get("hashed_secret").is_none(), "{list}");
    // Login sessions are not tokens.
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Errors: a taken name (409), a lifetime out of range (400), a lifetime
    // that is no duration (usage).
    let err = cli.fails(1, &["tokens", "create", "--name", "CI"]).await;
    assert!(err.contains("already has a token named"), "{err}");
    let err = cli
        .fails(1, &["tokens", "create", "--lifetime", "30s"])
        .await;
    assert!(err.contains("lifetime_seconds"), "{err}");
    cli.fails(2, &["tokens", "create", "--lifetime", "soon"])
        .await;
    let err = cli.fails(1, &["tokens", "delete", "nope"]).await;
    assert!(err.contains("not found"), "{err}");

    // A member can neither list nor delete the owner's tokens (404: it may
    // not even read the owner), through the CLI or the API.
    let mut owner_api = s.client();
    owner_api.token = Some(session_token(&cli.config_dir().join("session.json")));
    let (mallory, _) = owner_api.create_user("mallory").await;
    let member = Cli::new(&s);
    login_as(&member, "mallory", None).await;
    let err = member
        .fails(1, &["tokens", "list", "--user", "admin"])
        .await;
    assert!(err.contains("not found"), "{err}");
    member
        .fails(1, &["tokens", "delete", &id, "--user", "admin"])
        .await;
    let (status, _) = mallory.get("/users/admin/keys/tokens").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = mallory.delete(&format!("/users/admin/keys/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor another user's key through its own user path.
    let (status, _) = mallory.delete(&format!("/users/me/keys/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        get_with(&s, "/users/me", "Authorization", &format!("Bearer {key}")).await,
        StatusCode::OK
    );
    // Its own: yes.
    let own = member.json(&["tokens", "create", "--name", "mine"]).await;
    member.ok(&["tokens", "delete", "mine"]).await;
    assert_eq!(
        get_with(
            &s,
            "/users/me",
            "Authorization",
            &format!("Bearer {}", own["key"].as_str().unwrap())
        )
        .await,
        StatusCode::UNAUTHORIZED
    );

    // The owner deletes its token by name; it stops working; audited.
    let out = cli.ok(&["tokens", "delete", "ci"]).await;
    assert!(out.contains("deleted token `ci`"), "{out}");
    assert_eq!(
        get_with(&s, "/users/me", "Authorization", &format!("Bearer {key}")).await,
        StatusCode::UNAUTHORIZED
    );
    let list = cli.json(&["tokens", "list"]).await;
    assert_eq!(names(&list, "token_name"), ["laptop"]);
    let audit = cli
        .json(&[
            "audit",
            "--resource-type",
            "api_key",
            "--action",
            "delete",
            "--user",
            "admin",
        ])
        .await;
    assert_eq!(audit["count"], 1, "{audit}");
    assert_eq!(audit["audit_logs"][0]["resource_id"], id.as_str());
    assert_eq!(audit["audit_logs"][0]["resource_target"], "ci");
}

#[tokio::test]
async fn groups_update_delete_and_organizations_update() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    cli.ok(&["organizations", "create", "data-platform"]).await;
    cli.ok(&["groups", "create", "eng", "-O", "data-platform"])
        .await;

    let out = cli
        .ok(&[
            "groups",
            "update",
            "eng",
            "-O",
            "data-platform",
            "--name",
            "engineering",
            "--display-name",
            "Engineering",
        ])
        .await;
    assert!(row(&out, "Updated").ends_with("engineering"), "{out}");
    let g = cli
        .json(&[
            "groups",
            "update",
            "ENGINEERING",
            "-O",
            "data-platform",
            "--display-name",
            "Eng",
        ])
        .await;
    assert_eq!(g["name"], "engineering");
    assert_eq!(g["display_name"], "Eng");
    let err = cli
        .fails(
            2,
            &["groups", "update", "engineering", "-O", "data-platform"],
        )
        .await;
    assert!(err.contains("nothing to change"), "{err}");
    let err = cli
        .fails(
            1,
            &[
                "groups",
                "update",
                "engineering",
                "-O",
                "data-platform",
                "--name",
                "Not A Slug",
            ],
        )
        .await;
    assert!(err.contains("name"), "{err}");
    let err = cli
        .fails(1, &["groups", "delete", "nope", "-O", "data-platform"])
        .await;
    assert!(err.contains("not found in organization"), "{err}");
    cli.fails(1, &["groups", "delete", "Everyone", "-O", "data-platform"])
        .await;

    // A plain member of the org may not delete or update groups, nor the org.
    create_user(&cli, "dan").await;
    cli.ok(&[
        "organizations",
        "members",
        "add",
        "dan",
        "-O",
        "data-platform",
    ])
    .await;
    let dan = Cli::new(&s);
    login_as(&dan, "dan", None).await;
    let err = dan
        .fails(
            1,
            &["groups", "delete", "engineering", "-O", "data-platform"],
        )
        .await;
    assert!(err.contains("forbidden"), "{err}");
    dan.fails(
        1,
        &[
            "groups",
            "update",
            "engineering",
            "-O",
            "data-platform",
            "--name",
            "x",
        ],
    )
    .await;
    dan.fails(
        1,
        &[
            "organizations",
            "update",
            "data-platform",
            "--display-name",
            "Mine",
        ],
    )
    .await;

    let out = cli
        .ok(&["groups", "delete", "engineering", "-O", "data-platform"])
        .await;
    assert!(out.contains("deleted group `engineering`"), "{out}");
    let groups = cli.json(&["groups", "list", "-O", "data-platform"]).await;
    assert_eq!(names(&groups, "name"), ["Everyone"]);

    // organizations update: display name, description, icon.
    let out = cli
        .ok(&[
            "organizations",
            "update",
            "data-platform",
            "--display-name",
            "Data Platform",
            "--description",
            "Pipelines",
            "--icon",
            "https://example.com/dp.png",
        ])
        .await;
    assert!(
        out.contains("updated organization `data-platform`"),
        "{out}"
    );
    assert!(
        row(&out, "Icon:").contains("https://example.com/dp.png"),
        "{out}"
    );
    let org = cli.json(&["organizations", "show", "data-platform"]).await;
    assert_eq!(org["display_name"], "Data Platform");
    assert_eq!(org["description"], "Pipelines");
    assert_eq!(org["icon"], "https://example.com/dp.png");
    let org = cli
        .json(&["organizations", "update", "data-platform", "--icon", ""])
        .await;
    assert_eq!(org["icon"], "");
    assert_eq!(org["description"], "Pipelines");
    let err = cli
        .fails(
            1,
            &[
                "organizations",
                "update",
                "data-platform",
                "--icon",
                "javascript:alert(1)",
            ],
        )
        .await;
    assert!(err.contains("icon"), "{err}");
    cli.fails(2, &["organizations", "update", "data-platform"])
        .await;
    cli.fails(
        1,
        &["organizations", "update", "nope", "--description", "x"],
    )
    .await;
}

#[tokio::test]
async fn roles_list_says_what_the_caller_may_assign() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    cli.ok(&["organizations", "create", "data-platform"]).await;
    create_user(&cli, "uma").await;
    create_user(&cli, "ned").await;
    cli.ok(&[
        "organizations",
        "members",
        "add",
        "uma",
        "-O",
        "data-platform",
    ])
    .await;
    cli.ok(&[
        "organizations",
        "members",
        "set-roles",
        "uma",
        "organization-user-admin",
        "-O",
        "data-platform",
    ])
    .await;

    let table = cli
        .ok(&["organizations", "roles", "list", "-O", "data-platform"])
        .await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        row(&table, "organization-admin").ends_with("yes"),
        "{table}"
    );
    let roles = cli
        .json(&["orgs", "roles", "list", "--org", "data-platform"])
        .await;
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["assignable"] == true),
        "{roles}"
    );

    // An organization-user-admin may assign `organization-member`-level roles only.
    let uma = Cli::new(&s);
    login_as(&uma, "uma", None).await;
    let roles = uma
        .json(&["organizations", "roles", "list", "-O", "data-platform"])
        .await;
    let assignable: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["assignable"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(!assignable.contains(&"organization-admin"), "{roles}");
    let table = uma
        .ok(&["organizations", "roles", "list", "-O", "data-platform"])
        .await;
    assert!(row(&table, "organization-admin").ends_with("no"), "{table}");
    // Not a member: the org is not even found.
    let ned = Cli::new(&s);
    login_as(&ned, "ned", None).await;
    let err = ned
        .fails(
            1,
            &["organizations", "roles", "list", "-O", "data-platform"],
        )
        .await;
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn users_delete_shows_why_it_is_refused() {
    // One built-in daemon serves the default org's echo template.
    let s = TestServer::start_with(|a| a.provisioner_daemons = Some(1)).await;
    let cli = owner_cli(&s).await;
    create_user(&cli, "bob").await;
    create_user(&cli, "eve").await;

    // bob owns a workspace (an echo template of the default org).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), "# echo template\n").unwrap();
    cli.ok(&[
        "templates",
        "push",
        "tpl",
        "-O",
        "coder",
        "-d",
        dir.path().to_str().unwrap(),
        "--provisioner",
        "echo",
    ])
    .await;
    let bob = Cli::new(&s);
    login_as(&bob, "bob", None).await;
    bob.ok(&["create", "ws", "--template", "tpl"]).await;

    let err = cli.fails(1, &["users", "delete", "bob"]).await;
    assert!(err.contains("still owns 1 workspace"), "{err}");
    // A member may not delete users.
    let eve = Cli::new(&s);
    login_as(&eve, "eve", None).await;
    eve.fails(1, &["users", "delete", "bob"]).await;
    let err = cli.fails(1, &["users", "delete", "nobody"]).await;
    assert!(err.contains("not found"), "{err}");

    bob.ok(&["delete", "ws"]).await;
    let out = cli.ok(&["users", "delete", "bob"]).await;
    assert!(out.contains("deleted user `bob`"), "{out}");
    let list = cli.json(&["users", "list"]).await;
    assert!(!names(&list["users"], "username").contains(&"bob".to_owned()));
    // bob's stored session is refused from then on: exit 4.
    bob.fails(4, &["whoami"]).await;
    // A delete answers 204: nothing on stdout with `-o json`.
    let out = cli.ok(&["users", "delete", "eve", "-o", "json"]).await;
    assert_eq!(out, "");
}

#[tokio::test]
async fn audit_filters_and_pages() {
    let s = TestServer::start().await;
    let cli = owner_cli(&s).await;
    cli.ok(&["organizations", "create", "data-platform"]).await;
    cli.ok(&["organizations", "create", "ops"]).await;
    cli.ok(&["groups", "create", "eng", "-O", "data-platform"])
        .await;
    cli.ok(&["groups", "create", "sre", "-O", "ops"]).await;

    let table = cli.ok(&["audit"]).await;
    assert!(table.starts_with("TIME"), "{table}");
    assert!(table.contains("organization"), "{table}");
    let all = cli.json(&["audit"]).await;
    let total = all["count"].as_i64().unwrap();
    assert!(total >= 4, "{all}");

    let dp = cli
        .json(&[
            "audit",
            "--org",
            "data-platform",
            "--resource-type",
            "group",
        ])
        .await;
    let targets: Vec<&str> = dp["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource_target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["eng"]);
    let created = cli
        .json(&[
            "audit",
            "--action",
            "create",
            "--resource-type",
            "organization",
            "--user",
            "admin",
        ])
        .await;
    assert_eq!(created["count"], 2, "{created}");
    // Time bounds: an age or RFC 3339.
    let recent = cli.json(&["audit", "--since", "1h"]).await;
    assert_eq!(recent["count"], total);
    let future = cli
        .json(&["audit", "--since", "2999-01-01T00:00:00Z"])
        .await;
    assert_eq!(future["count"], 0);
    let past = cli.json(&["audit", "--until", "1d"]).await;
    assert_eq!(past["count"], 0);
    // Pages.
    let page = cli.json(&["audit", "--limit", "1", "--offset", "1"]).await;
    assert_eq!(page["audit_logs"].as_array().unwrap().len(), 1);
    assert_eq!(page["audit_logs"][0]["id"], all["audit_logs"][1]["id"]);
    let out = cli.run(&["audit", "--limit", "1"]).await;
    assert_eq!(out.code, 0);
    assert!(
        out.stderr.contains("--limit and --offset"),
        "{}",
        out.stderr
    );

    // Usage errors and refusals.
    cli.fails(2, &["audit", "--since", "yesterday"]).await;
    cli.fails(2, &["audit", "--limit", "0"]).await;
    create_user(&cli, "mo").await;
    let mo = Cli::new(&s);
    login_as(&mo, "mo", None).await;
    let err = mo.fails(1, &["audit"]).await;
    assert!(err.contains("forbidden"), "{err}");
    mo.fails(4, &["audit", "--profile", "other"]).await;
}

#[tokio::test]
async fn version_and_completion() {
    let s = TestServer::start().await;
    // Not logged in: the CLI's own version only, exit 0.
    let nobody = Cli::new(&s);
    let out = nobody.ok(&["version"]).await;
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    assert!(row(&out, "Commit:").len() > "Commit:".len(), "{out}");
    assert!(!out.contains("Server"), "{out}");
    let v = nobody.json(&["version"]).await;
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["server"].is_null(), "{v}");

    // Logged in: the server's build info too.
    let cli = owner_cli(&s).await;
    let v = cli.json(&["version"]).await;
    assert_eq!(v["server"]["url"], s.base);
    assert_eq!(
        v["server"]["buildinfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(v["server"]["buildinfo"]["policy_hash"].is_string(), "{v}");
    let out = cli.ok(&["version"]).await;
    assert!(row(&out, "Policies").len() > 20, "{out}");

    // A server that went away: still exit 0, saying so.
    let closed = crate::testkit::ClosedPort::new();
    let gone = Cli::new(&s)
        .with_env(
            "ORGSYNC_URL",
            &format!("http://127.0.0.1:{}", closed.port()),
        )
        .with_env("ORGSYNC_SESSION_TOKEN", "t");
    let v = gone.json(&["version"]).await;
    assert!(
        v["server"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{v}"
    );

    for shell in ["bash", "zsh", "fish"] {
        let script = nobody.ok(&["completion", shell]).await;
        assert!(script.contains("orgsync"), "{shell}: {script}");
        for sub in ["organizations", "whoami", "tokens", "audit", "completion"] {
            assert!(script.contains(sub), "{shell} script lacks `{sub}`");
        }
    }
    nobody.fails(2, &["completion", "powershell-9000"]).await;
    nobody.fails(2, &["completion"]).await;
}

/// Every subcommand, flag and positional argument of the whole command tree
/// has a help line (clap's own `--help`/`--version` aside).
#[test]
fn every_command_flag_and_argument_has_help() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let has = arg
                .get_help()
                .or(arg.get_long_help())
                .is_some_and(|h| !h.to_string().trim().is_empty());
            if !has {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            let has = sub
                .get_about()
                .or(sub.get_long_about())
                .is_some_and(|h| !h.to_string().trim().is_empty());
            if !has {
                missing.push(format!("{sub_path} (command)"));
            }
            walk(sub, &sub_path, missing);
        }
    }
    let mut cmd = orgsync::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "orgsync", &mut missing);
    assert!(
        missing.is_empty(),
        "commands, flags and arguments without a help line:\n{}",
        missing.join("\n")
    );
}
