//! The plan serializes to exactly the `POST /idpsync/preview` shape (SPEC §3).

use orgsync_sync::{
    GroupSyncSettings, OrganizationSyncSettings, RoleSyncSettings, Settings, SiteRoleSyncSettings,
    UserState, plan,
};
use serde_json::json;

use crate::common::*;

fn settings() -> Settings {
    let mut s = Settings {
        organization: OrganizationSyncSettings {
            field: Some("groups".into()),
            mapping: mapping(&[("eng", &["engineering"]), ("ghost", &["nowhere"])]),
            organization_assign_default: true,
        },
        site_roles: SiteRoleSyncSettings {
            field: Some("roles".into()),
            mapping: mapping(&[("lead", &["template-admin"])]),
            default_roles: strings(&["auditor"]),
        },
        ..Settings::default()
    };
    s.groups.insert(
        ENG.into(),
        GroupSyncSettings {
            field: Some("groups".into()),
            mapping: mapping(&[("eng", &["backend"])]),
            regex_filter: Some("^(eng|web|data-)".into()),
            auto_create_missing_groups: true,
        },
    );
    s.roles.insert(
        ENG.into(),
        RoleSyncSettings {
            field: Some("roles".into()),
            mapping: mapping(&[("lead", &["organization-admin"])]),
        },
    );
    s
}

#[test]
fn preview_of_a_new_user() {
    let c = claims(json!({
        "groups": ["eng", "ghost", "web", "data-science", "other"],
        "roles": ["lead"]
    }));
    let p = plan(&settings(), &c, &world(), &UserState::default());
    let expected = json!({
        "refused": null,
        "organizations": {
            "add": [
                {"id": CODER, "name": "coder", "reason": "assign_default"},
                {"id": ENG, "name": "engineering", "reason": "mapping \"eng\" -> engineering"}
            ],
            "remove": [],
            "result": ["coder", "engineering"]
        },
        "groups": {
            "coder": {"add": [], "remove": [], "result": ["Everyone"]},
            "engineering": {
                "add": [
                    {"id": BACKEND, "name": "backend", "reason": "mapping \"eng\" -> backend", "create": false},
                    {"name": "data-science", "reason": "claim value \"data-science\" (auto_create_missing_groups)", "create": true},
                    {"name": "web", "reason": "claim value \"web\" (auto_create_missing_groups)", "create": true}
                ],
                "remove": [],
                "result": ["Everyone", "backend", "data-science", "web"]
            }
        },
        "roles": {
            "coder": {"add": [], "remove": [], "result": []},
            "engineering": {
                "add": [{"name": "organization-admin", "reason": "mapping \"lead\" -> organization-admin"}],
                "remove": [],
                "result": ["organization-admin"]
            }
        },
        "site_roles": {
            "add": [
                {"name": "auditor", "reason": "default_roles"},
                {"name": "template-admin", "reason": "mapping \"lead\" -> template-admin"}
            ],
            "remove": [],
            "result": ["auditor", "member", "template-admin"]
        },
        "problems": [
            {"organization": null, "kind": "unknown_organization",
             "detail": "organization sync: mapping \"ghost\" -> `nowhere`: no such organization"}
        ]
    });
    assert_eq!(serde_json::to_value(&p).unwrap(), expected);
}

#[test]
fn preview_of_an_existing_user_lists_removals() {
    let mut u = user(
        &[CODER, ENG, OPS],
        &[FRONTEND, ONCALL],
        &[
            (ENG, &["organization-auditor"]),
            (OPS, &["organization-admin"]),
        ],
    );
    u.site_roles = set(&["auditor", "owner"]);
    let c = claims(json!({"groups": ["eng"], "roles": []}));
    let p = plan(&settings(), &c, &world(), &u);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v["organizations"],
        json!({
            "add": [],
            "remove": [{"id": OPS, "name": "ops", "reason": "not in claims"}],
            "result": ["coder", "engineering"]
        })
    );
    assert_eq!(
        v["groups"]["engineering"],
        json!({
            "add": [{"id": BACKEND, "name": "backend", "reason": "mapping \"eng\" -> backend", "create": false}],
            "remove": [{"id": FRONTEND, "name": "frontend", "reason": "not in claims", "create": false}],
            "result": ["Everyone", "backend"]
        })
    );
    assert_eq!(
        v["groups"]["ops"],
        json!({
            "add": [],
            "remove": [{"id": ONCALL, "name": "oncall", "reason": "leaves organization", "create": false}],
            "result": []
        })
    );
    assert_eq!(
        v["roles"]["ops"],
        json!({"add": [], "remove": [{"name": "organization-admin", "reason": "leaves organization"}], "result": []})
    );
    assert_eq!(
        v["roles"]["engineering"]["remove"],
        json!([{"name": "organization-auditor", "reason": "not in claims"}])
    );
    assert_eq!(
        v["site_roles"],
        json!({"add": [], "remove": [{"name": "owner", "reason": "not in claims"}], "result": ["auditor", "member"]})
    );
}

#[test]
fn preview_of_a_refused_login() {
    let c = claims(json!({"groups": "eng,ops"}));
    let p = plan(&settings(), &c, &world(), &UserState::default());
    let message = "organization sync: claim `groups` is the comma-separated string `eng,ops`; \
                   configure the identity provider to send an array of strings instead";
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({
            "refused": {"status": 403, "message": message},
            "organizations": {"add": [], "remove": [], "result": []},
            "groups": {},
            "roles": {},
            "site_roles": {"add": [], "remove": [], "result": []},
            "problems": [{"organization": null, "kind": "claim_parse_error", "detail": message}]
        })
    );
}

#[test]
fn plans_round_trip_through_json() {
    let c = claims(json!({"groups": ["eng", "web"], "roles": ["lead"]}));
    let p = plan(&settings(), &c, &world(), &UserState::default());
    let text = serde_json::to_string(&p).unwrap();
    let back: orgsync_sync::Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}
