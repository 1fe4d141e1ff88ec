//! Settings: serde shape, validation, mapping patches.

use orgsync_sync::{
    FieldError, GroupSyncSettings, MappingPair, MappingPatch, OrganizationSyncSettings,
    RoleSyncSettings, Settings, SiteRoleSyncSettings,
};
use serde_json::json;

use crate::common::{mapping, strings};

fn pair(given: &str, gets: &str) -> MappingPair {
    MappingPair {
        given: given.into(),
        gets: gets.into(),
    }
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn patch_adds_and_removes() {
    let mut m = mapping(&[("eng", &["engineering"]), ("ops", &["ops"])]);
    MappingPatch {
        add: vec![pair("eng", "platform"), pair("data", "data")],
        remove: vec![pair("ops", "ops")],
    }
    .apply(&mut m);
    assert_eq!(
        m,
        mapping(&[("data", &["data"]), ("eng", &["engineering", "platform"])])
    );
}

#[test]
fn patch_remove_wins_over_add() {
    let mut m = mapping(&[]);
    MappingPatch {
        add: vec![pair("eng", "engineering"), pair("eng", "platform")],
        remove: vec![pair("eng", "engineering")],
    }
    .apply(&mut m);
    assert_eq!(m, mapping(&[("eng", &["platform"])]));

    // Also for a pair that already existed.
    let mut m = mapping(&[("eng", &["engineering"])]);
    MappingPatch {
        add: vec![pair("eng", "engineering")],
        remove: vec![pair("eng", "engineering")],
    }
    .apply(&mut m);
    assert!(m.is_empty());
}

#[test]
fn patch_never_duplicates_and_drops_empty_lists() {
    let mut m = mapping(&[("eng", &["a", "a"]), ("empty", &[])]);
    MappingPatch {
        add: vec![pair("eng", "a"), pair("eng", "b"), pair("eng", "b")],
        remove: vec![pair("nothing", "x")],
    }
    .apply(&mut m);
    assert_eq!(m, mapping(&[("eng", &["a", "b"])]));
}

#[test]
fn patch_deserializes_and_validates() {
    let patch: MappingPatch =
        serde_json::from_value(json!({"add": [{"given": "", "gets": "x"}]})).unwrap();
    assert!(patch.remove.is_empty());
    assert_eq!(fields(&patch.validate()), ["add[0].given"]);
    assert!(serde_json::from_value::<MappingPatch>(json!({"add": [{"given": "a"}]})).is_err());
    assert!(serde_json::from_value::<MappingPatch>(json!({"put": []})).is_err());
}

#[test]
fn settings_deserialize_with_defaults_and_refuse_unknown_fields() {
    let s: OrganizationSyncSettings = serde_json::from_value(json!({"field": "groups"})).unwrap();
    assert!(s.organization_assign_default);
    assert_eq!(s.enabled_field(), Some("groups"));
    let g: GroupSyncSettings = serde_json::from_value(json!({})).unwrap();
    assert_eq!(g, GroupSyncSettings::default());
    assert!(!g.auto_create_missing_groups);
    assert!(serde_json::from_value::<RoleSyncSettings>(json!({"fields": "x"})).is_err());
    assert!(serde_json::from_value::<SiteRoleSyncSettings>(json!({"default": []})).is_err());
    let all: Settings = serde_json::from_value(json!({
        "organization": {"field": "groups", "mapping": {"eng": ["engineering"]}},
        "groups": {"o1": {"field": "groups", "regex_filter": "^eng"}},
        "site_roles": {"field": "roles", "default_roles": ["auditor"]}
    }))
    .unwrap();
    assert_eq!(all.site_roles.default_roles, strings(&["auditor"]));
    assert_eq!(all.roles.len(), 0);
}

#[test]
fn invalid_regex_is_a_field_error() {
    let s = GroupSyncSettings {
        field: Some("groups".into()),
        regex_filter: Some("(eng".into()),
        ..Default::default()
    };
    let errors = s.validate();
    assert_eq!(fields(&errors), ["regex_filter"]);
    assert!(
        errors[0]
            .detail
            .starts_with("invalid regular expression `(eng`")
    );
    let ok = GroupSyncSettings {
        regex_filter: Some("^eng-.*$".into()),
        ..s
    };
    assert!(ok.validate().is_empty());
}

#[test]
fn empty_claim_values_and_targets_are_field_errors() {
    let s = OrganizationSyncSettings {
        field: Some(String::new()),
        mapping: mapping(&[
            ("", &["coder"]),
            ("eng", &[]),
            ("ops", &["ops", " ", "ops"]),
        ]),
        organization_assign_default: true,
    };
    assert_eq!(
        fields(&s.validate()),
        [
            "field",
            r#"mapping[""]"#,
            r#"mapping["eng"]"#,
            r#"mapping["ops"][1]"#,
            r#"mapping["ops"][2]"#
        ]
    );
}

#[test]
fn unknown_roles_name_the_mapping_entry() {
    let known = ["organization-admin", "organization-auditor"];
    let s = RoleSyncSettings {
        field: Some("roles".into()),
        mapping: mapping(&[("admins", &["organization-admin", "org-admin"])]),
    };
    assert!(s.validate().is_empty());
    assert_eq!(
        s.validate_roles(&known),
        [FieldError {
            field: r#"mapping["admins"][1]"#.into(),
            detail: "unknown role `org-admin`".into()
        }]
    );

    let site = SiteRoleSyncSettings {
        field: Some("roles".into()),
        mapping: mapping(&[("ops", &["auditor"])]),
        default_roles: strings(&["auditr"]),
    };
    assert_eq!(
        fields(&site.validate_roles(&["auditor", "owner"])),
        ["default_roles[0]"]
    );
}
