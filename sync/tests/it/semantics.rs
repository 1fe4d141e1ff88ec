//! One focused test per rule of SPEC §3.

use orgsync_sync::{
    GroupSyncSettings, OrganizationSyncSettings, Planner, ProblemKind, RoleSyncSettings, Settings,
    SiteRoleSyncSettings, UserState, apply, plan,
};
use serde_json::json;

use crate::common::*;

fn org_sync(mapping_pairs: &[(&str, &[&str])], assign_default: bool) -> Settings {
    Settings {
        organization: OrganizationSyncSettings {
            field: Some("groups".into()),
            mapping: mapping(mapping_pairs),
            organization_assign_default: assign_default,
        },
        ..Settings::default()
    }
}

fn group_sync(org: &str, s: GroupSyncSettings) -> Settings {
    let mut settings = Settings::default();
    settings.groups.insert(org.to_owned(), s);
    settings
}

fn groups_field(mapping_pairs: &[(&str, &[&str])]) -> GroupSyncSettings {
    GroupSyncSettings {
        field: Some("groups".into()),
        mapping: mapping(mapping_pairs),
        ..Default::default()
    }
}

fn kinds(p: &orgsync_sync::Plan) -> Vec<ProblemKind> {
    p.problems.iter().map(|p| p.kind).collect()
}

// ---- organizations ----

#[test]
fn without_org_field_memberships_stay() {
    let u = user(&[ENG], &[], &[]);
    let p = plan(
        &Settings::default(),
        &claims(json!({"groups": ["ops"]})),
        &world(),
        &u,
    );
    assert!(!p.organizations.managed);
    assert!(p.organizations.add.is_empty() && p.organizations.remove.is_empty());
    assert_eq!(p.organizations.result, ["engineering"]);
    assert!(!p.has_changes());
}

#[test]
fn org_sync_joins_default_and_mapped_orgs_by_name_or_id() {
    let s = org_sync(&[("eng", &["Engineering"]), ("ops", &[OPS])], true);
    let p = plan(
        &s,
        &claims(json!({"groups": ["eng", "ops", "unmapped"]})),
        &world(),
        &UserState::default(),
    );
    assert_eq!(names(&p.organizations.add), ["coder", "engineering", "ops"]);
    assert_eq!(p.organizations.add[0].reason, "assign_default");
    assert_eq!(p.organizations.add[0].id, CODER);
    assert_eq!(
        p.organizations.add[1].reason,
        r#"mapping "eng" -> engineering"#
    );
    assert_eq!(p.organizations.add[2].reason, r#"mapping "ops" -> ops"#);
    assert_eq!(p.organizations.result, ["coder", "engineering", "ops"]);
    assert!(p.problems.is_empty(), "unmapped values are not problems");
}

#[test]
fn several_rules_giving_one_org_are_all_named() {
    let s = org_sync(&[("eng", &["coder"]), ("dev", &["coder"])], true);
    let p = plan(
        &s,
        &claims(json!({"groups": ["eng", "dev"]})),
        &world(),
        &UserState::default(),
    );
    assert_eq!(
        p.organizations.add[0].reason,
        r#"assign_default; mapping "eng" -> coder; mapping "dev" -> coder"#
    );
}

#[test]
fn unknown_mapped_org_is_ignored_and_reported() {
    let s = org_sync(&[("eng", &["engineering", "nope"])], true);
    let p = plan(
        &s,
        &claims(json!({"groups": ["eng"]})),
        &world(),
        &UserState::default(),
    );
    assert_eq!(p.organizations.result, ["coder", "engineering"]);
    assert_eq!(kinds(&p), [ProblemKind::UnknownOrganization]);
    assert_eq!(p.problems[0].organization, None);
    assert_eq!(
        p.problems[0].detail,
        r#"organization sync: mapping "eng" -> `nope`: no such organization"#
    );
    assert!(!p.is_refused());
}

#[test]
fn without_assign_default_the_user_leaves_the_default_org() {
    let s = org_sync(&[("eng", &["engineering"])], false);
    let u = user(&[CODER, ENG], &[], &[]);
    let p = plan(&s, &claims(json!({"groups": "eng"})), &world(), &u);
    assert!(p.organizations.add.is_empty());
    assert_eq!(names(&p.organizations.remove), ["coder"]);
    assert_eq!(p.organizations.remove[0].reason, "not in claims");
    assert_eq!(p.organizations.result, ["engineering"]);
}

#[test]
fn leaving_an_org_drops_its_groups_and_roles() {
    let s = org_sync(&[], true);
    let u = user(
        &[CODER, ENG],
        &[BACKEND, FRONTEND, ADMINS],
        &[
            (ENG, &["organization-admin"]),
            (CODER, &["organization-auditor"]),
        ],
    );
    let p = assert_idempotent(&s, &claims(json!({})), &world(), &u);
    assert_eq!(names(&p.organizations.remove), ["engineering"]);
    let eng = &p.groups["engineering"];
    assert_eq!(names(&eng.remove), ["backend", "frontend"]);
    assert!(eng.remove.iter().all(|c| c.reason == "leaves organization"));
    assert!(eng.result.is_empty());
    assert_eq!(
        names(&p.roles["engineering"].remove),
        ["organization-admin"]
    );
    assert!(p.roles["engineering"].result.is_empty());
    // The kept org is untouched (no group or role sync configured).
    assert_eq!(p.groups["coder"].result, ["Everyone", "admins"]);
    assert_eq!(p.roles["coder"].result, ["organization-auditor"]);
    let (after, _) = apply(&p, &u, &world());
    assert_eq!(after, {
        let mut e = user(&[CODER], &[ADMINS], &[(CODER, &["organization-auditor"])]);
        e.site_roles = u.site_roles.clone();
        e
    });
}

#[test]
fn org_claim_parse_error_refuses_the_login_with_an_empty_plan() {
    let mut s = org_sync(&[("eng", &["engineering"])], true);
    s.groups.insert(ENG.into(), groups_field(&[]));
    let u = user(&[CODER, ENG], &[BACKEND], &[]);
    let p = plan(&s, &claims(json!({"groups": "eng,ops"})), &world(), &u);
    let refused = p.refused.clone().unwrap();
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .message
            .starts_with("organization sync: claim `groups`"),
        "{}",
        refused.message
    );
    assert!(!p.has_changes());
    assert!(p.organizations.result.is_empty());
    assert!(p.groups.is_empty() && p.roles.is_empty());
    assert!(p.site_roles.result.is_empty());
    assert_eq!(kinds(&p), [ProblemKind::ClaimParseError]);
    assert_eq!(apply(&p, &u, &world()).0, u);
}

#[test]
fn site_role_claim_parse_error_refuses_the_login() {
    let s = Settings {
        site_roles: SiteRoleSyncSettings {
            field: Some("roles".into()),
            ..Default::default()
        },
        ..Settings::default()
    };
    let p = plan(
        &s,
        &claims(json!({"roles": 7})),
        &world(),
        &UserState::default(),
    );
    assert!(
        p.refused
            .unwrap()
            .message
            .starts_with("site role sync: claim `roles` must be an array")
    );
}

#[test]
fn both_parse_errors_are_reported_and_the_first_refuses() {
    let mut s = org_sync(&[], true);
    s.site_roles.field = Some("roles".into());
    let p = plan(
        &s,
        &claims(json!({"groups": 1, "roles": {"a": 1}})),
        &world(),
        &UserState::default(),
    );
    assert_eq!(
        kinds(&p),
        [ProblemKind::ClaimParseError, ProblemKind::ClaimParseError]
    );
    assert!(p.refused.unwrap().message.starts_with("organization sync"));
}

// ---- groups ----

#[test]
fn group_sync_runs_only_in_orgs_with_a_field() {
    let mut s = group_sync(ENG, groups_field(&[]));
    s.groups.insert(OPS.into(), GroupSyncSettings::default());
    let u = user(&[ENG, OPS], &[ONCALL], &[]);
    let p = plan(&s, &claims(json!({"groups": ["backend"]})), &world(), &u);
    assert!(p.groups["engineering"].managed);
    assert_eq!(names(&p.groups["engineering"].add), ["backend"]);
    assert!(!p.groups["ops"].managed);
    assert_eq!(p.groups["ops"].result, ["Everyone", "oncall"]);
}

#[test]
fn group_sync_runs_for_orgs_joined_in_the_same_plan() {
    let mut s = org_sync(&[("eng", &["engineering"])], true);
    s.groups
        .insert(ENG.into(), groups_field(&[("eng", &["backend"])]));
    let p = assert_idempotent(
        &s,
        &claims(json!({"groups": ["eng"]})),
        &world(),
        &UserState::default(),
    );
    assert_eq!(names(&p.groups["engineering"].add), ["backend"]);
    assert_eq!(p.groups["coder"].result, ["Everyone"]);
}

#[test]
fn regex_filter_is_a_partial_match_and_drops_values() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            regex_filter: Some("end".into()),
            ..groups_field(&[])
        },
    );
    // "backend" and "frontend" contain "end": kept; "oncall" dropped.
    let u = user(&[ENG], &[], &[]);
    let p = plan(
        &s,
        &claims(json!({"groups": ["backend", "frontend", "oncall"]})),
        &world(),
        &u,
    );
    assert_eq!(names(&p.groups["engineering"].add), ["backend", "frontend"]);
    assert!(
        p.problems.is_empty(),
        "dropped values are not problems: {:?}",
        p.problems
    );
}

#[test]
fn regex_filter_applies_to_mapped_values_and_names_the_removal() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            regex_filter: Some("^team-".into()),
            ..groups_field(&[("team-web", &["frontend"]), ("web", &["backend"])])
        },
    );
    let u = user(&[ENG], &[BACKEND], &[]);
    let p = plan(
        &s,
        &claims(json!({"groups": ["team-web", "web"]})),
        &world(),
        &u,
    );
    let g = &p.groups["engineering"];
    assert_eq!(names(&g.add), ["frontend"]);
    assert_eq!(g.add[0].reason, r#"mapping "team-web" -> frontend"#);
    assert_eq!(names(&g.remove), ["backend"]);
    assert_eq!(
        g.remove[0].reason,
        r#"claim value "web" dropped by regex_filter"#
    );
    assert_eq!(g.result, ["Everyone", "frontend"]);
}

#[test]
fn regex_that_matches_nothing_is_a_problem() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            regex_filter: Some("^zzz$".into()),
            ..groups_field(&[])
        },
    );
    let u = user(&[ENG], &[BACKEND], &[]);
    let p = plan(&s, &claims(json!({"groups": ["backend"]})), &world(), &u);
    assert_eq!(kinds(&p), [ProblemKind::RegexMatchedNothing]);
    assert_eq!(p.problems[0].organization.as_deref(), Some("engineering"));
    assert_eq!(p.problems[0].organization_id.as_deref(), Some(ENG));
    assert_eq!(names(&p.groups["engineering"].remove), ["backend"]);
    // No values: nothing to match, no problem.
    let p = plan(&s, &claims(json!({})), &world(), &u);
    assert!(p.problems.is_empty());
}

#[test]
fn invalid_regex_is_a_problem_and_leaves_groups_alone() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            regex_filter: Some("(".into()),
            ..groups_field(&[])
        },
    );
    let u = user(&[ENG], &[BACKEND], &[]);
    let p = plan(&s, &claims(json!({"groups": []})), &world(), &u);
    assert_eq!(kinds(&p), [ProblemKind::InvalidRegex]);
    assert!(!p.has_changes());
    assert_eq!(p.groups["engineering"].result, ["Everyone", "backend"]);
}

#[test]
fn mapped_groups_by_id_or_name_and_unknown_ones_reported() {
    let s = group_sync(
        ENG,
        groups_field(&[("web", &[FRONTEND, "Backend", "ghost", ONCALL])]),
    );
    let p = plan(
        &s,
        &claims(json!({"groups": ["web"]})),
        &world(),
        &user(&[ENG], &[], &[]),
    );
    let g = &p.groups["engineering"];
    assert_eq!(names(&g.add), ["backend", "frontend"]);
    assert_eq!(g.add[0].id.as_deref(), Some(BACKEND));
    assert!(g.add.iter().all(|c| !c.create));
    // `ghost` does not exist; `oncall` is a group of another org.
    assert_eq!(
        kinds(&p),
        [ProblemKind::UnknownGroup, ProblemKind::UnknownGroup]
    );
    assert!(p.problems[0].detail.contains("`ghost`"));
}

#[test]
fn mapped_values_never_create_groups() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            auto_create_missing_groups: true,
            ..groups_field(&[("web", &["web-team"])])
        },
    );
    let p = plan(
        &s,
        &claims(json!({"groups": ["web"]})),
        &world(),
        &user(&[ENG], &[], &[]),
    );
    assert!(p.groups["engineering"].add.is_empty());
    assert_eq!(kinds(&p), [ProblemKind::UnknownGroup]);
}

#[test]
fn unmapped_value_uses_the_group_of_that_name_case_insensitively() {
    let s = group_sync(ENG, groups_field(&[]));
    let p = plan(
        &s,
        &claims(json!({"groups": ["BackEnd"]})),
        &world(),
        &user(&[ENG], &[], &[]),
    );
    let g = &p.groups["engineering"];
    assert_eq!(names(&g.add), ["backend"]);
    assert_eq!(g.add[0].reason, r#"claim value "BackEnd""#);
}

#[test]
fn missing_groups_are_created_when_auto_create_is_on() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            auto_create_missing_groups: true,
            ..groups_field(&[])
        },
    );
    let c = claims(json!({"groups": ["Data-Team", "data-team", "Platform Team", "backend"]}));
    let p = assert_idempotent(&s, &c, &world(), &user(&[ENG], &[], &[]));
    let g = &p.groups["engineering"];
    assert_eq!(names(&g.add), ["backend", "data-team"]);
    let created = &g.add[1];
    assert!(created.create);
    assert_eq!(created.id, None);
    assert_eq!(
        created.reason,
        r#"claim value "Data-Team" (auto_create_missing_groups); claim value "data-team" (auto_create_missing_groups)"#
    );
    assert_eq!(g.result, ["Everyone", "backend", "data-team"]);
    // "Platform Team" is not a valid group name.
    assert_eq!(kinds(&p), [ProblemKind::InvalidGroupName]);

    let (u2, w2) = apply(&p, &user(&[ENG], &[], &[]), &world());
    let created = w2.groups.iter().find(|g| g.name == "data-team").unwrap();
    assert_eq!(created.organization_id, ENG);
    assert!(u2.groups.contains(&created.id));
}

#[test]
fn missing_groups_are_ignored_and_reported_without_auto_create() {
    let s = group_sync(ENG, groups_field(&[]));
    let p = plan(
        &s,
        &claims(json!({"groups": ["data-team"]})),
        &world(),
        &user(&[ENG], &[], &[]),
    );
    assert!(p.groups["engineering"].add.is_empty());
    assert_eq!(kinds(&p), [ProblemKind::UnmatchedClaimValue]);
    assert!(
        p.problems[0]
            .detail
            .contains("auto_create_missing_groups is off")
    );
}

#[test]
fn everyone_is_always_kept_and_never_created() {
    let s = group_sync(
        ENG,
        GroupSyncSettings {
            auto_create_missing_groups: true,
            ..groups_field(&[("all", &[ENG, "everyone"])])
        },
    );
    let c = claims(json!({"groups": ["Everyone", "everyone", "all"]}));
    let p = plan(&s, &c, &world(), &user(&[ENG], &[BACKEND], &[]));
    let g = &p.groups["engineering"];
    assert!(g.add.is_empty());
    assert_eq!(names(&g.remove), ["backend"]);
    assert_eq!(g.remove[0].reason, "not in claims");
    assert_eq!(g.result, ["Everyone"]);
    assert!(p.problems.is_empty());
    // Everyone stays first even before names that sort lower.
    let w = {
        let mut w = world();
        w.groups.push(group("g-0", ENG, "0-day"));
        w
    };
    let p = plan(
        &s,
        &claims(json!({"groups": ["0-day"]})),
        &w,
        &user(&[ENG], &[], &[]),
    );
    assert_eq!(p.groups["engineering"].result, ["Everyone", "0-day"]);
}

#[test]
fn group_claim_parse_error_skips_only_that_org() {
    let mut s = group_sync(ENG, groups_field(&[]));
    s.groups.insert(
        OPS.into(),
        GroupSyncSettings {
            field: Some("teams".into()),
            ..Default::default()
        },
    );
    let u = user(&[ENG, OPS], &[BACKEND, ONCALL], &[]);
    let p = plan(
        &s,
        &claims(json!({"groups": "a,b", "teams": []})),
        &world(),
        &u,
    );
    assert!(!p.is_refused());
    assert_eq!(kinds(&p), [ProblemKind::ClaimParseError]);
    assert_eq!(p.problems[0].organization.as_deref(), Some("engineering"));
    assert!(p.groups["engineering"].add.is_empty() && p.groups["engineering"].remove.is_empty());
    assert_eq!(p.groups["engineering"].result, ["Everyone", "backend"]);
    assert_eq!(names(&p.groups["ops"].remove), ["oncall"]);
}

#[test]
fn only_real_differences_are_listed() {
    let s = group_sync(ENG, groups_field(&[("web", &["frontend"])]));
    let u = user(&[ENG], &[FRONTEND], &[]);
    let p = plan(&s, &claims(json!({"groups": ["web"]})), &world(), &u);
    assert!(!p.has_changes());
    assert_eq!(p.groups["engineering"].result, ["Everyone", "frontend"]);
}

// ---- roles ----

fn role_sync(org: &str, mapping_pairs: &[(&str, &[&str])]) -> Settings {
    let mut s = Settings::default();
    s.roles.insert(
        org.to_owned(),
        RoleSyncSettings {
            field: Some("roles".into()),
            mapping: mapping(mapping_pairs),
        },
    );
    s
}

#[test]
fn role_sync_uses_mapped_roles_or_the_value_itself() {
    let s = role_sync(
        ENG,
        &[("admins", &["organization-admin", "organization-auditor"])],
    );
    let c = claims(json!({"roles": ["admins", "organization-template-admin"]}));
    let p = plan(&s, &c, &world(), &user(&[ENG], &[], &[]));
    let r = &p.roles["engineering"];
    assert_eq!(
        names(&r.add),
        [
            "organization-admin",
            "organization-auditor",
            "organization-template-admin"
        ]
    );
    assert_eq!(r.add[0].reason, r#"mapping "admins" -> organization-admin"#);
    assert_eq!(
        r.add[2].reason,
        r#"claim value "organization-template-admin""#
    );
    assert_eq!(r.organization_id.as_deref(), Some(ENG));
}

#[test]
fn unknown_roles_are_dropped_and_reported() {
    let s = role_sync(ENG, &[("admins", &["org-admin"])]);
    let p = plan(
        &s,
        &claims(json!({"roles": ["admins", "superuser"]})),
        &world(),
        &user(&[ENG], &[], &[]),
    );
    assert!(p.roles["engineering"].add.is_empty());
    assert_eq!(
        kinds(&p),
        [ProblemKind::UnknownRole, ProblemKind::UnmatchedClaimValue]
    );
    assert_eq!(
        p.problems[0].detail,
        r#"role sync: mapping "admins" -> `org-admin`: no such organization role"#
    );
    assert_eq!(
        p.problems[1].detail,
        r#"role sync: claim value "superuser" is not an organization role"#
    );
}

#[test]
fn organization_member_is_implicit() {
    let s = role_sync(ENG, &[("x", &["organization-member"])]);
    let u = user(
        &[ENG],
        &[],
        &[(ENG, &["organization-member", "organization-admin"])],
    );
    let p = plan(
        &s,
        &claims(json!({"roles": ["x", "organization-member"]})),
        &world(),
        &u,
    );
    let r = &p.roles["engineering"];
    assert!(r.add.is_empty());
    assert_eq!(names(&r.remove), ["organization-admin"]);
    assert!(r.result.is_empty());
    assert!(p.problems.is_empty());
}

#[test]
fn missing_role_claim_means_no_roles() {
    let s = role_sync(ENG, &[]);
    let u = user(&[ENG], &[], &[(ENG, &["organization-admin"])]);
    let p = assert_idempotent(&s, &claims(json!({})), &world(), &u);
    assert_eq!(
        names(&p.roles["engineering"].remove),
        ["organization-admin"]
    );
    assert_eq!(p.roles["engineering"].remove[0].reason, "not in claims");
}

#[test]
fn role_claim_parse_error_skips_the_org() {
    let s = role_sync(ENG, &[]);
    let u = user(&[ENG], &[], &[(ENG, &["organization-admin"])]);
    let p = plan(&s, &claims(json!({"roles": true})), &world(), &u);
    assert!(!p.is_refused());
    assert!(!p.has_changes());
    assert_eq!(kinds(&p), [ProblemKind::ClaimParseError]);
    assert_eq!(p.roles["engineering"].result, ["organization-admin"]);
}

#[test]
fn site_roles_with_defaults_and_implicit_member() {
    let s = Settings {
        site_roles: SiteRoleSyncSettings {
            field: Some("roles".into()),
            mapping: mapping(&[("ops", &["template-admin", "root"])]),
            default_roles: strings(&["auditor", "member"]),
        },
        ..Settings::default()
    };
    let u = UserState {
        site_roles: set(&["owner", "member"]),
        ..UserState::default()
    };
    let p = assert_idempotent(
        &s,
        &claims(json!({"roles": ["ops", "user-admin"]})),
        &world(),
        &u,
    );
    let r = &p.site_roles;
    assert_eq!(names(&r.add), ["auditor", "template-admin", "user-admin"]);
    assert_eq!(r.add[0].reason, "default_roles");
    assert_eq!(names(&r.remove), ["owner"]);
    assert_eq!(
        r.result,
        ["auditor", "member", "template-admin", "user-admin"]
    );
    assert_eq!(kinds(&p), [ProblemKind::UnknownRole]);
    assert_eq!(p.problems[0].organization, None);
}

#[test]
fn site_roles_stay_without_a_field() {
    let u = UserState {
        site_roles: set(&["owner"]),
        ..UserState::default()
    };
    let p = plan(&Settings::default(), &claims(json!({})), &world(), &u);
    assert!(!p.site_roles.managed);
    assert_eq!(p.site_roles.result, ["member", "owner"]);
}

// ---- planner ----

#[test]
fn a_planner_plans_many_users_like_plan() {
    let mut s = org_sync(&[("eng", &["engineering"])], true);
    s.groups
        .insert(ENG.into(), groups_field(&[("eng", &["backend"])]));
    let w = world();
    let planner = Planner::new(&s, &w);
    for (c, u) in [
        (json!({"groups": ["eng"]}), UserState::default()),
        (json!({}), user(&[ENG], &[BACKEND], &[])),
    ] {
        let c = claims(c);
        assert_eq!(planner.plan(&c, &u), plan(&s, &c, &w, &u));
    }
}
