//! Decisions of the built-in policies through the same path the server uses.

use orgsync_policy::{
    Action, Engine, OrgMembership, OrgRef, PolicyError, PolicySources, Principal, RequestContext,
    Resource, SourceFile,
};

fn user(id: &str, site_roles: &[&str], orgs: &[(&str, &[&str])]) -> Principal {
    Principal {
        id: id.to_owned(),
        status: "active".to_owned(),
        site_roles: site_roles.iter().map(|s| (*s).to_owned()).collect(),
        memberships: orgs
            .iter()
            .map(|(o, r)| OrgMembership {
                org_id: (*o).to_owned(),
                roles: r.iter().map(|s| (*s).to_owned()).collect(),
                permissions: Vec::new(),
            })
            .collect(),
        groups: Vec::new(),
    }
}

#[test]
fn builtin_policies_load_and_decide() -> Result<(), PolicyError> {
    let engine = Engine::builtin()?;
    assert!(
        engine
            .policies()
            .iter()
            .any(|p| p.id == "guardrail.suspended")
    );
    let a = OrgRef::new("org-a", false);
    let b = OrgRef::new("org-b", false);
    let ctx = RequestContext::new();

    let admin = user("u1", &[], &[("org-a", &["organization-admin"])]).prepare();
    let d = engine.authorize(
        &admin,
        Action::ORGANIZATION_UPDATE,
        &Resource::organization(&a),
        &ctx,
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reasons, vec!["org.admin".to_owned()]);
    let d = engine.authorize(
        &admin,
        Action::ORGANIZATION_UPDATE,
        &Resource::organization(&b),
        &ctx,
    );
    assert!(!d.allowed);
    let d = engine.authorize(
        &admin,
        Action::ORGANIZATION_READ,
        &Resource::organization(&b),
        &ctx,
    );
    assert!(!d.allowed);

    let owner = user("u0", &["owner"], &[]).prepare();
    let d = engine.authorize(
        &owner,
        Action::ORGANIZATION_DELETE,
        &Resource::organization(&b),
        &ctx,
    );
    assert!(d.allowed, "{d:?}");
    let default_org = OrgRef::new("org-d", true);
    let d = engine.authorize(
        &owner,
        Action::ORGANIZATION_DELETE,
        &Resource::organization(&default_org),
        &ctx,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reasons,
        vec!["guardrail.default-org-undeletable".to_owned()]
    );

    let mut suspended = user("u2", &["owner"], &[]);
    suspended.status = "suspended".to_owned();
    let d = engine.authorize(
        &suspended.prepare(),
        Action::ORGANIZATION_READ,
        &Resource::organization(&a),
        &ctx,
    );
    assert!(!d.allowed);
    assert_eq!(d.reasons, vec!["guardrail.suspended".to_owned()]);

    // Creation ban: members may not create workspaces, the site owner may.
    let banned = user(
        "u3",
        &[],
        &[("org-a", &["organization-workspace-creation-ban"])],
    )
    .prepare();
    let d = engine.authorize(
        &banned,
        Action::WORKSPACE_CREATE,
        &Resource::workspace(&a, "new", "u3"),
        &ctx,
    );
    assert!(!d.allowed);
    let banned_owner = user(
        "u4",
        &["owner"],
        &[("org-a", &["organization-workspace-creation-ban"])],
    )
    .prepare();
    let d = engine.authorize(
        &banned_owner,
        Action::WORKSPACE_CREATE,
        &Resource::workspace(&a, "new", "u4"),
        &ctx,
    );
    assert!(d.allowed, "{d:?}");

    // Role assignment bounds: the grant rule is one decision per role.
    let ua = user("u5", &["user-admin"], &[]).prepare();
    let no_ctx = RequestContext::new();
    let d = engine.authorize(
        &ua,
        Action::SITE_ROLE_ASSIGN,
        &Resource::site_role("owner"),
        &no_ctx,
    );
    assert!(!d.allowed);
    let d = engine.authorize(
        &ua,
        Action::SITE_ROLE_ASSIGN,
        &Resource::site_role("auditor"),
        &no_ctx,
    );
    assert!(d.allowed, "{d:?}");
    let d = engine.authorize(
        &ua,
        Action::USER_UPDATE_ROLES,
        &Resource::user("u9", "active"),
        &no_ctx,
    );
    assert!(d.allowed, "{d:?}");
    let d = engine.authorize(
        &ua,
        Action::USER_UPDATE_ROLES,
        &Resource::user("u5", "active"),
        &no_ctx,
    );
    assert!(!d.allowed, "nobody changes their own roles");
    let d = engine.authorize(
        &ua,
        Action::USER_UPDATE,
        &Resource::user("u9", "active").with_site_roles(&["owner".to_owned()]),
        &no_ctx,
    );
    assert_eq!(d.reasons, ["guardrail.owner-protected"], "{d:?}");
    Ok(())
}

#[test]
fn invalid_policy_reports_file_and_line() -> Result<(), PolicyError> {
    let mut sources = PolicySources::builtin()?;
    sources.policies.push(SourceFile {
        path: "broken.cedar".to_owned(),
        text: "// a comment\n\n@id(\"broken\")\npermit (principal, action == Action::\"organization:read\", resource)\nwhen { resource.nope == 1 };\n".to_owned(),
    });
    let err = Engine::load(&sources)
        .err()
        .ok_or_else(|| PolicyError::Request("accepted".into()))?;
    let d = err.diagnostics();
    assert!(!d.is_empty());
    assert_eq!(d[0].file, "broken.cedar");
    assert!(d[0].line >= 3, "{:?}", d[0]);
    assert_eq!(d[0].policy.as_deref(), Some("broken"));
    Ok(())
}

#[test]
fn duplicate_and_missing_ids_are_refused() -> Result<(), PolicyError> {
    let mut sources = PolicySources::builtin()?;
    sources.policies.push(SourceFile {
        path: "dup.cedar".to_owned(),
        text: "@id(\"site.owner\")\npermit (principal, action, resource);\n\npermit (principal, action, resource);\n".to_owned(),
    });
    let err = Engine::load(&sources)
        .err()
        .ok_or_else(|| PolicyError::Request("accepted".into()))?;
    let msgs: Vec<String> = err.diagnostics().iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("duplicate policy id `site.owner`")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("dup.cedar:4:") && m.contains("no `@id")),
        "{msgs:?}"
    );
    Ok(())
}
