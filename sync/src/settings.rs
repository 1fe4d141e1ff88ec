//! IdP sync settings (SPEC §3) as stored and edited through the API.
//!
//! Every settings type deserializes with `deny_unknown_fields` and has a
//! [`Default`] that turns its sync off (`field: None`). `validate` checks what
//! can be checked without the database; role names are checked by the caller
//! against the roles it knows with `validate_roles`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Claim value -> what it gives (org ids or names, group ids or names, role names).
pub type Mapping = BTreeMap<String, Vec<String>>;

/// Compiled `regex_filter`s are limited to this size, so a hostile pattern
/// cannot make the planner allocate without bound.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One field-level validation error, in the API's `validations` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The offending field, e.g. `regex_filter` or `mapping["eng"]`.
    pub field: String,
    /// What is wrong with it, lowercase.
    pub detail: String,
}

impl FieldError {
    fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// Deployment-wide organization sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OrganizationSyncSettings {
    /// The claim to read; `None` (or `""`) turns organization sync off.
    pub field: Option<String>,
    /// Claim value -> organization ids or names.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
    pub mapping: Mapping,
    /// Whether every synced user is a member of the default organization.
    pub organization_assign_default: bool,
}

impl Default for OrganizationSyncSettings {
    fn default() -> Self {
        OrganizationSyncSettings {
            field: None,
            mapping: Mapping::new(),
            organization_assign_default: true,
        }
    }
}

impl OrganizationSyncSettings {
    /// The claim field, if organization sync is on.
    pub fn enabled_field(&self) -> Option<&str> {
        enabled(&self.field)
    }

    /// Field-level errors; empty when the settings can be stored.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_field(&self.field, &mut errors);
        validate_mapping(&self.mapping, "organization", &mut errors);
        errors
    }

    /// The organizations (ids or names, as the mapping writes them) these
    /// settings could make someone a member of, whether sync is on or not (a
    /// mapping kept while sync is off takes effect the moment it is turned on).
    /// The default organization is not listed: see `organization_assign_default`.
    pub fn grantable_organizations(&self) -> BTreeSet<String> {
        self.mapping.values().flatten().cloned().collect()
    }
}

/// Per-organization group sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GroupSyncSettings {
    /// The claim to read; `None` (or `""`) turns group sync off for the org.
    pub field: Option<String>,
    /// Claim value -> group ids or names of this organization.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
    pub mapping: Mapping,
    /// Claim values that do not match this regular expression are dropped.
    /// It is a partial match (as Coder's `regexp.MatchString`): anchor it with
    /// `^...$` to match whole values.
    pub regex_filter: Option<String>,
    /// Create a group (source `oidc`) for an unmapped value naming no group.
    pub auto_create_missing_groups: bool,
}

impl GroupSyncSettings {
    /// The claim field, if group sync is on.
    pub fn enabled_field(&self) -> Option<&str> {
        enabled(&self.field)
    }

    /// Field-level errors; empty when the settings can be stored.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_field(&self.field, &mut errors);
        validate_mapping(&self.mapping, "group", &mut errors);
        if let Some(pattern) = &self.regex_filter {
            if pattern.is_empty() {
                errors.push(FieldError::new(
                    "regex_filter",
                    "must not be empty; use null for no filter",
                ));
            } else if let Err(err) = compile_filter(pattern) {
                errors.push(FieldError::new(
                    "regex_filter",
                    format!("invalid regular expression `{pattern}`: {err}"),
                ));
            }
        }
        errors
    }
}

/// Per-organization role sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoleSyncSettings {
    /// The claim to read; `None` (or `""`) turns role sync off for the org.
    pub field: Option<String>,
    /// Claim value -> organization role names.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
    pub mapping: Mapping,
}

impl RoleSyncSettings {
    /// The claim field, if role sync is on.
    pub fn enabled_field(&self) -> Option<&str> {
        enabled(&self.field)
    }

    /// Field-level errors; empty when the settings can be stored.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_field(&self.field, &mut errors);
        validate_mapping(&self.mapping, "role", &mut errors);
        errors
    }

    /// One error per mapping entry that names a role not in `known`.
    pub fn validate_roles(&self, known: &[&str]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_mapping_roles(&self.mapping, known, &mut errors);
        errors
    }

    /// Every role of `all` these settings could make someone hold: see
    /// [`grantable_roles`].
    pub fn grantable_roles(&self, all: &[&str]) -> BTreeSet<String> {
        grantable_roles(&self.field, &self.mapping, &[], all)
    }
}

/// The roles of `all` that settings could grant, whether their sync is on or
/// not: every role the mapping or `defaults` names, and, while a claim field is
/// set, every role of `all`, because a claim value the mapping does not name
/// is used as a role name as it is.
fn grantable_roles(
    field: &Option<String>,
    mapping: &Mapping,
    defaults: &[String],
    all: &[&str],
) -> BTreeSet<String> {
    if enabled(field).is_some() {
        return all.iter().map(|r| (*r).to_owned()).collect();
    }
    mapping
        .values()
        .flatten()
        .chain(defaults)
        .filter(|r| all.contains(&r.as_str()))
        .cloned()
        .collect()
}

/// Deployment-wide site role sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SiteRoleSyncSettings {
    /// The claim to read; `None` (or `""`) turns site role sync off.
    pub field: Option<String>,
    /// Claim value -> site role names.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
    pub mapping: Mapping,
    /// Site roles every synced user gets (only while site role sync is on).
    pub default_roles: Vec<String>,
}

impl SiteRoleSyncSettings {
    /// The claim field, if site role sync is on.
    pub fn enabled_field(&self) -> Option<&str> {
        enabled(&self.field)
    }

    /// Field-level errors; empty when the settings can be stored.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_field(&self.field, &mut errors);
        validate_mapping(&self.mapping, "role", &mut errors);
        for (i, role) in self.default_roles.iter().enumerate() {
            if role.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("default_roles[{i}]"),
                    "role name must not be empty",
                ));
            }
        }
        errors
    }

    /// Every role of `all` these settings could make someone hold: see
    /// [`grantable_roles`].
    pub fn grantable_roles(&self, all: &[&str]) -> BTreeSet<String> {
        grantable_roles(&self.field, &self.mapping, &self.default_roles, all)
    }

    /// One error per mapping entry or default role that names a role not in `known`.
    pub fn validate_roles(&self, known: &[&str]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_mapping_roles(&self.mapping, known, &mut errors);
        for (i, role) in self.default_roles.iter().enumerate() {
            if !known.contains(&role.as_str()) {
                errors.push(FieldError::new(
                    format!("default_roles[{i}]"),
                    format!("unknown role `{role}`"),
                ));
            }
        }
        errors
    }
}

/// One mapping entry: claim value `given` gives `gets`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct MappingPair {
    /// The claim value.
    pub given: String,
    /// What it gives (an org, group or role id or name).
    pub gets: String,
}

/// `PATCH .../mapping`: pairs to add and pairs to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MappingPatch {
    /// Pairs to add (already present ones are kept once).
    pub add: Vec<MappingPair>,
    /// Pairs to remove; a pair both added and removed is removed.
    pub remove: Vec<MappingPair>,
}

impl MappingPatch {
    /// Applies the patch: adds first, then removes, so remove wins over add
    /// for the same pair. The mapping comes out normalized: no duplicate
    /// targets within a value (first occurrence kept) and no empty lists.
    pub fn apply(&self, mapping: &mut Mapping) {
        for pair in &self.add {
            let gets = mapping.entry(pair.given.clone()).or_default();
            if !gets.contains(&pair.gets) {
                gets.push(pair.gets.clone());
            }
        }
        for pair in &self.remove {
            if let Some(gets) = mapping.get_mut(&pair.given) {
                gets.retain(|g| g != &pair.gets);
            }
        }
        for gets in mapping.values_mut() {
            let mut seen: Vec<String> = Vec::with_capacity(gets.len());
            gets.retain(|g| {
                if seen.contains(g) {
                    false
                } else {
                    seen.push(g.clone());
                    true
                }
            });
        }
        mapping.retain(|_, gets| !gets.is_empty());
    }

    /// Field-level errors: empty `given` or `gets`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (list, pairs) in [("add", &self.add), ("remove", &self.remove)] {
            for (i, pair) in pairs.iter().enumerate() {
                if pair.given.is_empty() {
                    errors.push(FieldError::new(
                        format!("{list}[{i}].given"),
                        "claim value must not be empty",
                    ));
                }
                if pair.gets.trim().is_empty() {
                    errors.push(FieldError::new(
                        format!("{list}[{i}].gets"),
                        "must not be empty",
                    ));
                }
            }
        }
        errors
    }
}

/// Compiles a `regex_filter` with the crate's size limit.
pub(crate) fn compile_filter(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn enabled(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|f| !f.is_empty())
}

fn validate_field(field: &Option<String>, errors: &mut Vec<FieldError>) {
    if let Some(f) = field {
        if f.is_empty() {
            errors.push(FieldError::new(
                "field",
                "must not be empty; use null to turn sync off",
            ));
        } else if f.trim() != f {
            errors.push(FieldError::new(
                "field",
                format!("claim name `{f}` must not start or end with whitespace"),
            ));
        }
    }
}

fn mapping_field(given: &str) -> String {
    // JSON string syntax keeps keys with dots, quotes or brackets unambiguous.
    format!("mapping[{}]", serde_json::Value::String(given.to_owned()))
}

fn validate_mapping(mapping: &Mapping, what: &str, errors: &mut Vec<FieldError>) {
    for (given, gets) in mapping {
        let field = mapping_field(given);
        if given.is_empty() {
            errors.push(FieldError::new(
                field.clone(),
                "claim value must not be empty",
            ));
        }
        if gets.is_empty() {
            errors.push(FieldError::new(
                field.clone(),
                format!("must give at least one {what}"),
            ));
        }
        for (i, target) in gets.iter().enumerate() {
            if target.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    format!("{what} must not be empty"),
                ));
            } else if gets[..i].contains(target) {
                errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    format!("duplicate {what} `{target}`"),
                ));
            }
        }
    }
}

fn validate_mapping_roles(mapping: &Mapping, known: &[&str], errors: &mut Vec<FieldError>) {
    for (given, gets) in mapping {
        for (i, role) in gets.iter().enumerate() {
            if !known.contains(&role.as_str()) {
                errors.push(FieldError::new(
                    format!("{}[{i}]", mapping_field(given)),
                    format!("unknown role `{role}`"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &[&str] = &["owner", "member", "auditor", "template-admin", "user-admin"];

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn grantable_roles_are_the_named_ones_while_sync_is_off() {
        let s = SiteRoleSyncSettings {
            field: None,
            mapping: Mapping::from([("ops".to_owned(), vec!["auditor".to_owned()])]),
            default_roles: vec!["template-admin".to_owned()],
        };
        assert_eq!(s.grantable_roles(SITE), set(&["auditor", "template-admin"]));
        // An empty field is off too.
        let off = SiteRoleSyncSettings {
            field: Some(String::new()),
            ..s.clone()
        };
        assert_eq!(
            off.grantable_roles(SITE),
            set(&["auditor", "template-admin"])
        );
    }

    #[test]
    fn a_claim_field_can_grant_every_role_because_unmapped_values_pass_through() {
        let s = SiteRoleSyncSettings {
            field: Some("email".to_owned()),
            mapping: Mapping::new(),
            default_roles: Vec::new(),
        };
        assert_eq!(s.grantable_roles(SITE), set(SITE));
        let r = RoleSyncSettings {
            field: Some("roles".to_owned()),
            mapping: Mapping::new(),
        };
        assert_eq!(
            r.grantable_roles(&["organization-admin", "organization-member"]),
            set(&["organization-admin", "organization-member"])
        );
    }

    #[test]
    fn grantable_organizations_are_every_mapped_one() {
        let s = OrganizationSyncSettings {
            field: None,
            mapping: Mapping::from([
                ("eng".to_owned(), vec!["data-platform".to_owned()]),
                (
                    "ops".to_owned(),
                    vec!["ops".to_owned(), "data-platform".to_owned()],
                ),
            ]),
            organization_assign_default: true,
        };
        assert_eq!(s.grantable_organizations(), set(&["data-platform", "ops"]));
    }

    #[test]
    fn org_sync_defaults_assign_default_on() {
        let s: Result<OrganizationSyncSettings, _> = serde_json::from_str("{}");
        assert_eq!(s.ok(), Some(OrganizationSyncSettings::default()));
        assert!(OrganizationSyncSettings::default().organization_assign_default);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let s: Result<GroupSyncSettings, _> = serde_json::from_str(r#"{"feild": "groups"}"#);
        assert!(s.is_err());
    }

    #[test]
    fn mapping_field_names_quote_keys() {
        assert_eq!(mapping_field("a.b"), r#"mapping["a.b"]"#);
    }

    #[test]
    fn empty_field_is_off() {
        let s = RoleSyncSettings {
            field: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(s.enabled_field(), None);
        assert_eq!(s.validate().len(), 1);
    }
}
