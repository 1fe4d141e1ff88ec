//! The planner: settings + claims + the world + a user's state -> a [`Plan`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::{ClaimError, claim_values};
use crate::fast_hash::FastMap;
use crate::settings::{
    GroupSyncSettings, OrganizationSyncSettings, RoleSyncSettings, SiteRoleSyncSettings,
    compile_filter,
};

/// The implicit organization role: every member has it; never listed or synced.
pub const ORGANIZATION_MEMBER: &str = "organization-member";
/// The implicit site role: every user has it; always in the site roles `result`.
pub const MEMBER: &str = "member";
/// The name of every organization's implicit group (its id is the organization's id).
pub const EVERYONE: &str = "Everyone";

/// Status of a refused login.
pub const REFUSED_STATUS: u16 = 403;

/// Reason of a removal whose thing the claims no longer give.
pub const REASON_NOT_IN_CLAIMS: &str = "not in claims";
/// Reason of a group or role removal because the user leaves the organization.
pub const REASON_LEAVES_ORGANIZATION: &str = "leaves organization";

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// All sync settings of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Deployment-wide organization sync.
    pub organization: OrganizationSyncSettings,
    /// Group sync, by organization id.
    pub groups: BTreeMap<String, GroupSyncSettings>,
    /// Role sync, by organization id.
    pub roles: BTreeMap<String, RoleSyncSettings>,
    /// Deployment-wide site role sync.
    pub site_roles: SiteRoleSyncSettings,
}

/// An organization as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInfo {
    /// Organization id.
    pub id: String,
    /// Organization name (unique case-insensitively).
    pub name: String,
    /// Whether this is the default organization.
    pub is_default: bool,
    /// The organization's own (custom) role names: roles of this
    /// organization besides `World::org_roles`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_roles: Vec<String>,
}

/// A group as the planner sees it. `Everyone` groups are not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Group id.
    pub id: String,
    /// The organization the group belongs to.
    pub organization_id: String,
    /// Group name (unique case-insensitively in its organization).
    pub name: String,
}

/// What exists: organizations, groups (without `Everyone`) and role names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// Every organization.
    pub orgs: Vec<OrgInfo>,
    /// Every group except the `Everyone` groups.
    pub groups: Vec<GroupInfo>,
    /// Valid organization role names.
    pub org_roles: Vec<String>,
    /// Valid site role names.
    pub site_roles: Vec<String>,
}

/// A user's current memberships, by id. A new user is `UserState::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    /// Organization ids.
    pub orgs: BTreeSet<String>,
    /// Group ids (without `Everyone` groups).
    pub groups: BTreeSet<String>,
    /// Organization role names, by organization id.
    pub org_roles: BTreeMap<String, BTreeSet<String>>,
    /// Site role names.
    pub site_roles: BTreeSet<String>,
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// The plan for one user, serializing to the `POST /idpsync/preview` body.
///
/// Fields marked "not serialized" carry ids for the code that applies the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Set when the login must be refused; everything else is then empty
    /// except `problems`.
    pub refused: Option<Refusal>,
    /// Organization memberships.
    pub organizations: OrganizationsPlan,
    /// Group memberships, by organization name, for every organization the
    /// user ends up in or leaves.
    pub groups: BTreeMap<String, GroupsPlan>,
    /// Organization roles, by organization name, for every organization the
    /// user ends up in or leaves.
    pub roles: BTreeMap<String, RolesPlan>,
    /// Site roles.
    pub site_roles: RolesPlan,
    /// Everything admins should see (`GET /idpsync/problems`).
    pub problems: Vec<Problem>,
}

/// A refused login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// HTTP status the login gets (403).
    pub status: u16,
    /// Message for the user.
    pub message: String,
}

/// Organization membership changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationsPlan {
    /// Organizations the user joins, by name.
    pub add: Vec<OrganizationChange>,
    /// Organizations the user leaves (with their groups and roles), by name.
    pub remove: Vec<OrganizationChange>,
    /// The user's organizations afterwards, names sorted.
    pub result: Vec<String>,
    /// Whether organization sync ran (not serialized).
    #[serde(skip)]
    pub managed: bool,
    /// The user's organization ids afterwards (not serialized).
    #[serde(skip)]
    pub result_ids: BTreeSet<String>,
}

/// One organization joined or left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationChange {
    /// Organization id.
    pub id: String,
    /// Organization name (its id when the organization is unknown).
    pub name: String,
    /// The rule behind the change.
    pub reason: String,
}

/// Group membership changes in one organization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsPlan {
    /// Groups the user joins (some to be created), by name.
    pub add: Vec<GroupChange>,
    /// Groups the user leaves, by name.
    pub remove: Vec<GroupChange>,
    /// The user's groups in the organization afterwards: `Everyone` first,
    /// then the others by name; empty when the user leaves the organization.
    pub result: Vec<String>,
    /// The organization's id (not serialized).
    #[serde(skip)]
    pub organization_id: String,
    /// Whether group sync ran for this organization or the user leaves it
    /// (not serialized).
    #[serde(skip)]
    pub managed: bool,
}

/// One group joined or left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChange {
    /// Group id; absent for a group to be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Group name.
    pub name: String,
    /// The rule behind the change.
    pub reason: String,
    /// Whether the group must be created first (with `source = oidc`).
    pub create: bool,
}

/// Role changes, in one organization or site-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolesPlan {
    /// Roles the user gets, by name.
    pub add: Vec<RoleChange>,
    /// Roles the user loses, by name.
    pub remove: Vec<RoleChange>,
    /// The user's roles afterwards, sorted. Site roles include the implicit
    /// `member`; organization roles never list `organization-member`.
    pub result: Vec<String>,
    /// The organization's id; `None` for site roles (not serialized).
    #[serde(skip)]
    pub organization_id: Option<String>,
    /// Whether role sync ran or the user leaves the organization (not serialized).
    #[serde(skip)]
    pub managed: bool,
}

/// One role given or taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    /// Role name.
    pub name: String,
    /// The rule behind the change.
    pub reason: String,
}

/// Something admins should fix; the plan goes on without the offending part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The organization's name; `None` for deployment-wide sync.
    pub organization: Option<String>,
    /// The organization's id (not serialized).
    #[serde(skip)]
    pub organization_id: Option<String>,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What happened, naming the rule and the value.
    pub detail: String,
}

/// Kinds of [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A claim could not be read (see [`ClaimError`](crate::ClaimError)).
    ClaimParseError,
    /// The organization mapping names an organization that does not exist.
    UnknownOrganization,
    /// A group mapping names a group that does not exist.
    UnknownGroup,
    /// A claim value would create a group but is not a valid group name.
    InvalidGroupName,
    /// A role mapping or `default_roles` names a role that does not exist.
    UnknownRole,
    /// An unmapped claim value names no group (and none is created) or no
    /// role: dropped. Frequent when one claim feeds several syncs; kept apart
    /// from the configuration errors above so it can be filtered.
    UnmatchedClaimValue,
    /// The group `regex_filter` does not compile.
    InvalidRegex,
    /// The group `regex_filter` matched none of the claim's values.
    RegexMatchedNothing,
}

impl ProblemKind {
    /// The kind as serialized, e.g. `unknown_group`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::ClaimParseError => "claim_parse_error",
            ProblemKind::UnknownOrganization => "unknown_organization",
            ProblemKind::UnknownGroup => "unknown_group",
            ProblemKind::InvalidGroupName => "invalid_group_name",
            ProblemKind::UnknownRole => "unknown_role",
            ProblemKind::UnmatchedClaimValue => "unmatched_claim_value",
            ProblemKind::InvalidRegex => "invalid_regex",
            ProblemKind::RegexMatchedNothing => "regex_matched_nothing",
        }
    }
}

impl Plan {
    /// Whether the login must be refused.
    pub fn is_refused(&self) -> bool {
        self.refused.is_some()
    }

    /// Whether applying the plan changes anything.
    pub fn has_changes(&self) -> bool {
        let orgs = &self.organizations;
        !orgs.add.is_empty()
            || !orgs.remove.is_empty()
            || self
                .groups
                .values()
                .any(|g| !g.add.is_empty() || !g.remove.is_empty())
            || self
                .roles
                .values()
                .chain(std::iter::once(&self.site_roles))
                .any(|r| !r.add.is_empty() || !r.remove.is_empty())
    }
}

// ---------------------------------------------------------------------------
// Planner
// ---------------------------------------------------------------------------

/// Plans one user's sync. Equivalent to `Planner::new(settings, world).plan(claims, user)`;
/// use a [`Planner`] to plan many users against the same settings and world.
pub fn plan(
    settings: &Settings,
    claims: &Map<String, Value>,
    world: &World,
    user: &UserState,
) -> Plan {
    Planner::new(settings, world).plan(claims, user)
}

/// Settings and world, indexed once (names folded, mappings hashed, regular
/// expressions compiled), to plan any number of users.
#[derive(Debug)]
pub struct Planner<'a> {
    settings: &'a Settings,
    orgs: FastMap<&'a str, OrgIndex<'a>>,
    orgs_by_name: FastMap<String, &'a OrgInfo>,
    default_org: Option<&'a OrgInfo>,
    groups_by_id: FastMap<&'a str, &'a GroupInfo>,
    org_roles: BTreeSet<&'a str>,
    site_roles: BTreeSet<&'a str>,
    /// Every claim field some setting reads, each parsed once per plan.
    fields: Vec<&'a str>,
}

/// One organization: its groups and its group and role sync, prepared.
#[derive(Debug)]
struct OrgIndex<'a> {
    org: &'a OrgInfo,
    groups_by_id: FastMap<&'a str, &'a GroupInfo>,
    groups_by_name: FastMap<String, &'a GroupInfo>,
    group_sync: Option<GroupSync<'a>>,
    role_sync: Option<(&'a str, &'a RoleSyncSettings)>,
}

/// Group sync of one organization, ready to run.
#[derive(Debug)]
struct GroupSync<'a> {
    field: &'a str,
    settings: &'a GroupSyncSettings,
    mapping: FastMap<&'a str, &'a [String]>,
    /// `None`: no filter; `Some(Err)`: the filter does not compile.
    filter: Option<Result<Regex, String>>,
}

/// Claim fields parsed once per plan (several syncs often read one claim).
struct ParsedClaims<'a>(Vec<(&'a str, Result<Vec<String>, ClaimError>)>);

impl ParsedClaims<'_> {
    fn get(&self, field: &str) -> Result<&[String], &ClaimError> {
        match self.0.iter().find(|(f, _)| *f == field) {
            Some((_, parsed)) => parsed.as_deref(),
            None => Ok(&[]),
        }
    }
}

/// What a group id or name in one organization resolves to.
enum GroupTarget<'a> {
    Everyone,
    Group(&'a GroupInfo),
    Unknown,
}

impl<'a> Planner<'a> {
    /// Indexes `world` and prepares `settings` (compiling `regex_filter`s).
    /// Invalid settings are not an error here: they become problems in plans.
    pub fn new(settings: &'a Settings, world: &'a World) -> Self {
        let mut orgs: FastMap<&str, OrgIndex> = FastMap::default();
        let mut orgs_by_name = FastMap::default();
        let mut default_org = None;
        for org in &world.orgs {
            if orgs.contains_key(org.id.as_str()) {
                continue;
            }
            orgs_by_name
                .entry(fold(&org.name).into_owned())
                .or_insert(org);
            if org.is_default && default_org.is_none() {
                default_org = Some(org);
            }
            let group_sync = settings.groups.get(&org.id).and_then(|s| {
                Some(GroupSync {
                    field: s.enabled_field()?,
                    settings: s,
                    mapping: s
                        .mapping
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice()))
                        .collect(),
                    filter: s
                        .regex_filter
                        .as_deref()
                        .map(|p| compile_filter(p).map_err(|e| e.to_string())),
                })
            });
            let role_sync = settings
                .roles
                .get(&org.id)
                .and_then(|s| Some((s.enabled_field()?, s)));
            orgs.insert(
                &org.id,
                OrgIndex {
                    org,
                    groups_by_id: FastMap::default(),
                    groups_by_name: FastMap::default(),
                    group_sync,
                    role_sync,
                },
            );
        }
        let mut groups_by_id = FastMap::default();
        for group in &world.groups {
            if groups_by_id.contains_key(group.id.as_str()) {
                continue;
            }
            groups_by_id.insert(group.id.as_str(), group);
            if let Some(index) = orgs.get_mut(group.organization_id.as_str()) {
                index.groups_by_id.insert(&group.id, group);
                index
                    .groups_by_name
                    .entry(fold(&group.name).into_owned())
                    .or_insert(group);
            }
        }
        let mut fields: Vec<&str> = [
            settings.organization.enabled_field(),
            settings.site_roles.enabled_field(),
        ]
        .into_iter()
        .chain(
            settings
                .groups
                .values()
                .map(GroupSyncSettings::enabled_field),
        )
        .chain(settings.roles.values().map(RoleSyncSettings::enabled_field))
        .flatten()
        .collect();
        fields.sort_unstable();
        fields.dedup();
        Planner {
            settings,
            orgs,
            orgs_by_name,
            default_org,
            groups_by_id,
            org_roles: world.org_roles.iter().map(String::as_str).collect(),
            site_roles: world.site_roles.iter().map(String::as_str).collect(),
            fields,
        }
    }

    /// Plans the sync of a user in `user` state with `claims`.
    pub fn plan(&self, claims: &Map<String, Value>, user: &UserState) -> Plan {
        let mut problems = Problems::default();
        let claims = ParsedClaims(
            self.fields
                .iter()
                .map(|field| (*field, claim_values(claims, field)))
                .collect(),
        );

        // Parse errors of deployment-wide sync refuse the login: check both first.
        let org_settings = &self.settings.organization;
        let site_settings = &self.settings.site_roles;
        let org_values = org_settings.enabled_field().map(|f| claims.get(f));
        let site_values = site_settings.enabled_field().map(|f| claims.get(f));
        let mut refusal = None;
        for (what, values) in [
            ("organization sync", &org_values),
            ("site role sync", &site_values),
        ] {
            if let Some(Err(err)) = values {
                let message = format!("{what}: {err}");
                problems.push(None, ProblemKind::ClaimParseError, message.clone());
                refusal.get_or_insert(Refusal {
                    status: REFUSED_STATUS,
                    message,
                });
            }
        }
        if refusal.is_some() {
            return Plan {
                refused: refusal,
                problems: problems.0,
                ..Plan::default()
            };
        }

        // The user's current groups, by organization id.
        let mut user_groups: FastMap<&str, Vec<&GroupInfo>> = FastMap::default();
        for id in &user.groups {
            if let Some(group) = self.groups_by_id.get(id.as_str()) {
                user_groups
                    .entry(group.organization_id.as_str())
                    .or_default()
                    .push(group);
            }
        }

        // 1. Organizations.
        let organizations = match &org_values {
            Some(Ok(values)) => self.plan_orgs(org_settings, values, user, &mut problems),
            _ => OrganizationsPlan {
                result: self.org_names(user.orgs.iter()),
                result_ids: user.orgs.clone(),
                ..OrganizationsPlan::default()
            },
        };

        // 2. and 3. Groups and roles of every organization the user ends up
        // in or leaves.
        let mut groups = BTreeMap::new();
        let mut roles = BTreeMap::new();
        let leaving = organizations.remove.iter().map(|c| c.id.as_str());
        for org_id in organizations
            .result_ids
            .iter()
            .map(String::as_str)
            .chain(leaving)
        {
            let Some(index) = self.orgs.get(org_id) else {
                continue;
            };
            let current_groups = user_groups.get(org_id).map_or(&[][..], Vec::as_slice);
            let current_roles = user.org_roles.get(org_id);
            let (group_plan, role_plan) = if organizations.result_ids.contains(org_id) {
                (
                    self.plan_groups(index, &claims, current_groups, &mut problems),
                    self.plan_org_roles(index, &claims, current_roles, &mut problems),
                )
            } else {
                leave_org(index.org, current_groups, current_roles)
            };
            groups.insert(index.org.name.clone(), group_plan);
            roles.insert(index.org.name.clone(), role_plan);
        }

        // 3. Site roles.
        let site_roles = match &site_values {
            Some(Ok(values)) => self.plan_site_roles(site_settings, values, user, &mut problems),
            _ => RolesPlan {
                result: with_implicit(&user.site_roles, MEMBER),
                ..RolesPlan::default()
            },
        };

        Plan {
            refused: None,
            organizations,
            groups,
            roles,
            site_roles,
            problems: problems.0,
        }
    }

    fn resolve_org(&self, target: &str) -> Option<&'a OrgInfo> {
        match self.orgs.get(target) {
            Some(index) => Some(index.org),
            None => self.orgs_by_name.get(fold(target).as_ref()).copied(),
        }
    }

    fn org_name(&self, id: &str) -> String {
        self.orgs
            .get(id)
            .map_or_else(|| id.to_owned(), |index| index.org.name.clone())
    }

    fn org_names<'s>(&self, ids: impl Iterator<Item = &'s String>) -> Vec<String> {
        let mut names: Vec<String> = ids.map(|id| self.org_name(id)).collect();
        names.sort();
        names
    }

    fn plan_orgs(
        &self,
        settings: &OrganizationSyncSettings,
        values: &[String],
        user: &UserState,
        problems: &mut Problems,
    ) -> OrganizationsPlan {
        let mut expected: BTreeMap<&str, (&OrgInfo, Reasons)> = BTreeMap::new();
        if settings.organization_assign_default
            && let Some(org) = self.default_org
        {
            expected
                .entry(org.id.as_str())
                .or_insert_with(|| (org, Reasons::default()))
                .1
                .push(Rule::AssignDefault);
        }
        for value in values {
            let Some(targets) = settings.mapping.get(value) else {
                continue;
            };
            for target in targets {
                match self.resolve_org(target) {
                    Some(org) => expected
                        .entry(org.id.as_str())
                        .or_insert_with(|| (org, Reasons::default()))
                        .1
                        .push(Rule::Mapping(value)),
                    None => problems.push(
                        None,
                        ProblemKind::UnknownOrganization,
                        format!(
                            "organization sync: mapping {} -> `{target}`: no such organization",
                            quote(value)
                        ),
                    ),
                }
            }
        }
        let mut add: Vec<OrganizationChange> = expected
            .iter()
            .filter(|(id, _)| !user.orgs.contains(**id))
            .map(|(id, (org, reasons))| OrganizationChange {
                id: (*id).to_owned(),
                name: org.name.clone(),
                reason: reasons.join(&org.name),
            })
            .collect();
        let mut remove: Vec<OrganizationChange> = user
            .orgs
            .iter()
            .filter(|id| !expected.contains_key(id.as_str()))
            .map(|id| OrganizationChange {
                id: id.clone(),
                name: self.org_name(id),
                reason: REASON_NOT_IN_CLAIMS.to_owned(),
            })
            .collect();
        add.sort_by(|a, b| a.name.cmp(&b.name));
        remove.sort_by(|a, b| a.name.cmp(&b.name));
        let mut result: Vec<String> = expected.values().map(|(o, _)| o.name.clone()).collect();
        result.sort();
        OrganizationsPlan {
            add,
            remove,
            result,
            managed: true,
            result_ids: expected.keys().map(|id| (*id).to_owned()).collect(),
        }
    }

    fn plan_groups(
        &self,
        index: &OrgIndex<'a>,
        claims: &ParsedClaims,
        current: &[&'a GroupInfo],
        problems: &mut Problems,
    ) -> GroupsPlan {
        let org = index.org;
        let unchanged = || GroupsPlan {
            result: group_result(current.iter().map(|g| g.name.clone()).collect()),
            organization_id: org.id.clone(),
            ..GroupsPlan::default()
        };
        let Some(sync) = &index.group_sync else {
            return unchanged();
        };
        let mut report = |kind, detail: String| {
            problems.push(Some(org), kind, format!("group sync: {detail}"));
        };
        let values = match claims.get(sync.field) {
            Ok(values) => values,
            Err(err) => {
                report(ProblemKind::ClaimParseError, err.to_string());
                return unchanged();
            }
        };
        let filter = match &sync.filter {
            None => None,
            Some(Ok(regex)) => Some(regex),
            Some(Err(err)) => {
                let pattern = sync.settings.regex_filter.as_deref().unwrap_or_default();
                report(
                    ProblemKind::InvalidRegex,
                    format!("invalid regex_filter `{pattern}`: {err}; groups left unchanged"),
                );
                return unchanged();
            }
        };

        // Keyed by name (then id) so that additions come out sorted.
        let mut expected: BTreeMap<(&str, &str), (&GroupInfo, Reasons)> = BTreeMap::new();
        let mut give = |group: &'a GroupInfo, rule| {
            expected
                .entry((group.name.as_str(), group.id.as_str()))
                .or_insert_with(|| (group, Reasons::default()))
                .1
                .push(rule);
        };
        let mut create: BTreeMap<String, Reasons> = BTreeMap::new();
        // Values the filter drops; resolved only to explain removals.
        let mut dropped: Vec<&str> = Vec::new();
        for value in values {
            if filter.is_some_and(|r| !r.is_match(value)) {
                dropped.push(value);
                continue;
            }
            if let Some(targets) = sync.mapping.get(value.as_str()) {
                for target in *targets {
                    match resolve_group(index, target) {
                        GroupTarget::Everyone => {}
                        GroupTarget::Group(group) => give(group, Rule::Mapping(value)),
                        GroupTarget::Unknown => report(
                            ProblemKind::UnknownGroup,
                            format!("mapping {} -> `{target}`: no such group", quote(value)),
                        ),
                    }
                }
                continue;
            }
            match resolve_group_name(index, value) {
                GroupTarget::Everyone => {}
                GroupTarget::Group(group) => give(group, Rule::ClaimValue(value)),
                GroupTarget::Unknown if sync.settings.auto_create_missing_groups => {
                    let name = fold(value);
                    if is_valid_group_name(&name) {
                        create
                            .entry(name.into_owned())
                            .or_default()
                            .push(Rule::AutoCreate(value));
                    } else {
                        report(
                            ProblemKind::InvalidGroupName,
                            format!(
                                "claim value {} is not a valid group name; no group created",
                                quote(value)
                            ),
                        );
                    }
                }
                GroupTarget::Unknown => report(
                    ProblemKind::UnmatchedClaimValue,
                    format!(
                        "claim value {} names no group and auto_create_missing_groups is off",
                        quote(value)
                    ),
                ),
            }
        }
        if dropped.len() == values.len()
            && !values.is_empty()
            && let Some(regex) = filter
        {
            report(
                ProblemKind::RegexMatchedNothing,
                format!(
                    "regex_filter `{}` matched none of the {} values of claim `{}`",
                    regex.as_str(),
                    values.len(),
                    sync.field
                ),
            );
        }

        // World group ids are unique, so the index hands out one reference per group.
        let is_current = |group: &GroupInfo| current.iter().any(|c| std::ptr::eq(*c, group));
        let is_expected =
            |group: &GroupInfo| expected.values().any(|(e, _)| std::ptr::eq(*e, group));
        let mut add: Vec<GroupChange> = expected
            .values()
            .filter(|(group, _)| !is_current(group))
            .map(|(group, reasons)| GroupChange {
                id: Some(group.id.clone()),
                name: group.name.clone(),
                reason: reasons.join(&group.name),
                create: false,
            })
            .chain(create.iter().map(|(name, reasons)| GroupChange {
                id: None,
                name: name.clone(),
                reason: reasons.join(name),
                create: true,
            }))
            .collect();
        let leaving: Vec<&GroupInfo> = current
            .iter()
            .copied()
            .filter(|g| !is_expected(g))
            .collect();
        let mut remove: Vec<GroupChange> = leaving
            .iter()
            .map(|g| GroupChange {
                id: Some(g.id.clone()),
                name: g.name.clone(),
                reason: match dropped_giving(index, sync, &dropped, g) {
                    Some(value) => format!("claim value {} dropped by regex_filter", quote(value)),
                    None => REASON_NOT_IN_CLAIMS.to_owned(),
                },
                create: false,
            })
            .collect();
        add.sort_by(|a, b| a.name.cmp(&b.name));
        remove.sort_by(|a, b| a.name.cmp(&b.name));
        let names = expected
            .values()
            .map(|(g, _)| g.name.clone())
            .chain(create.into_keys())
            .collect();
        GroupsPlan {
            add,
            remove,
            result: group_result(names),
            organization_id: org.id.clone(),
            managed: true,
        }
    }

    fn plan_org_roles(
        &self,
        index: &OrgIndex<'a>,
        claims: &ParsedClaims,
        current: Option<&BTreeSet<String>>,
        problems: &mut Problems,
    ) -> RolesPlan {
        let org = index.org;
        let empty = BTreeSet::new();
        let current = current.unwrap_or(&empty);
        let unchanged = || RolesPlan {
            result: without_implicit(current, ORGANIZATION_MEMBER),
            organization_id: Some(org.id.clone()),
            ..RolesPlan::default()
        };
        let Some((field, settings)) = index.role_sync else {
            return unchanged();
        };
        let mut report = |kind, detail: String| {
            problems.push(Some(org), kind, format!("role sync: {detail}"));
        };
        let values = match claims.get(field) {
            Ok(values) => values,
            Err(err) => {
                report(ProblemKind::ClaimParseError, err.to_string());
                return unchanged();
            }
        };
        let mut expected = BTreeMap::new();
        let with_custom: BTreeSet<&str>;
        let known = if org.custom_roles.is_empty() {
            &self.org_roles
        } else {
            with_custom = self
                .org_roles
                .iter()
                .copied()
                .chain(org.custom_roles.iter().map(String::as_str))
                .collect();
            &with_custom
        };
        collect_roles(
            values,
            &settings.mapping,
            known,
            ORGANIZATION_MEMBER,
            "organization role",
            &mut expected,
            &mut report,
        );
        let mut plan = role_diff(expected, current, ORGANIZATION_MEMBER, false);
        plan.organization_id = Some(org.id.clone());
        plan
    }

    fn plan_site_roles(
        &self,
        settings: &SiteRoleSyncSettings,
        values: &[String],
        user: &UserState,
        problems: &mut Problems,
    ) -> RolesPlan {
        let mut expected: BTreeMap<String, Reasons> = BTreeMap::new();
        let mut report = |kind, detail: String| {
            problems.push(None, kind, format!("site role sync: {detail}"));
        };
        for role in &settings.default_roles {
            if role == MEMBER {
                continue;
            }
            if self.site_roles.contains(role.as_str()) {
                expected
                    .entry(role.clone())
                    .or_default()
                    .push(Rule::DefaultRoles);
            } else {
                report(
                    ProblemKind::UnknownRole,
                    format!("default_roles -> `{role}`: no such site role"),
                );
            }
        }
        collect_roles(
            values,
            &settings.mapping,
            &self.site_roles,
            MEMBER,
            "site role",
            &mut expected,
            &mut report,
        );
        role_diff(expected, &user.site_roles, MEMBER, true)
    }
}

/// A group id or name, as a group sync mapping gives it.
fn resolve_group<'a>(index: &OrgIndex<'a>, target: &str) -> GroupTarget<'a> {
    if target == index.org.id {
        return GroupTarget::Everyone;
    }
    match index.groups_by_id.get(target) {
        Some(group) => GroupTarget::Group(group),
        None => resolve_group_name(index, target),
    }
}

/// A group name, case-insensitively; `Everyone` is the implicit group.
fn resolve_group_name<'a>(index: &OrgIndex<'a>, name: &str) -> GroupTarget<'a> {
    let folded = fold(name);
    if folded == "everyone" {
        return GroupTarget::Everyone;
    }
    match index.groups_by_name.get(folded.as_ref()) {
        Some(group) => GroupTarget::Group(group),
        None => GroupTarget::Unknown,
    }
}

/// The first value dropped by the filter that would have given `group`.
fn dropped_giving<'v>(
    index: &OrgIndex<'_>,
    sync: &GroupSync<'_>,
    dropped: &[&'v str],
    group: &GroupInfo,
) -> Option<&'v str> {
    let gives =
        |target: GroupTarget| matches!(target, GroupTarget::Group(g) if std::ptr::eq(g, group));
    let name = fold(&group.name);
    dropped
        .iter()
        .copied()
        .find(|value| match sync.mapping.get(value) {
            Some(targets) => targets.iter().any(|t| gives(resolve_group(index, t))),
            // Compare names first: most dropped values name other groups.
            None => fold(value) == name && gives(resolve_group_name(index, value)),
        })
}

/// A rule that gives something; formatted only for the changes shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule<'v> {
    /// `mapping "<value>" -> <target>`
    Mapping(&'v str),
    /// `claim value "<value>"`
    ClaimValue(&'v str),
    /// `claim value "<value>" (auto_create_missing_groups)`
    AutoCreate(&'v str),
    /// `assign_default`
    AssignDefault,
    /// `default_roles`
    DefaultRoles,
}

/// The rules behind one addition, in the order found, without repeats.
#[derive(Debug, Default)]
struct Reasons<'v>(Vec<Rule<'v>>);

impl<'v> Reasons<'v> {
    fn push(&mut self, rule: Rule<'v>) {
        if !self.0.contains(&rule) {
            self.0.push(rule);
        }
    }

    /// The reasons as text, `target` being what the rules give.
    fn join(&self, target: &str) -> String {
        let mut out = String::new();
        for (i, rule) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            match rule {
                Rule::Mapping(value) => out.push_str(&mapping_reason(value, target)),
                Rule::ClaimValue(value) => {
                    out.push_str("claim value ");
                    out.push_str(&quote(value));
                }
                Rule::AutoCreate(value) => {
                    out.push_str("claim value ");
                    out.push_str(&quote(value));
                    out.push_str(" (auto_create_missing_groups)");
                }
                Rule::AssignDefault => out.push_str("assign_default"),
                Rule::DefaultRoles => out.push_str("default_roles"),
            }
        }
        out
    }
}

/// Problems in the order found, without repeats.
#[derive(Debug, Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, org: Option<&OrgInfo>, kind: ProblemKind, detail: String) {
        let problem = Problem {
            organization: org.map(|o| o.name.clone()),
            organization_id: org.map(|o| o.id.clone()),
            kind,
            detail,
        };
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }
}

fn quote(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

fn mapping_reason(value: &str, target: &str) -> String {
    format!("mapping {} -> {target}", quote(value))
}

/// Roles the claim values give: mapped roles, or the value itself when
/// unmapped. Unknown roles are reported and dropped, `implicit` silently.
fn collect_roles<'v>(
    values: &'v [String],
    mapping: &crate::settings::Mapping,
    known: &BTreeSet<&str>,
    implicit: &str,
    what: &str,
    expected: &mut BTreeMap<String, Reasons<'v>>,
    report: &mut impl FnMut(ProblemKind, String),
) {
    for value in values {
        let (targets, mapped) = match mapping.get(value) {
            Some(targets) => (targets.as_slice(), true),
            None => (std::slice::from_ref(value), false),
        };
        for role in targets {
            if role == implicit {
                continue;
            }
            if known.contains(role.as_str()) {
                let rule = if mapped {
                    Rule::Mapping(value)
                } else {
                    Rule::ClaimValue(value)
                };
                expected.entry(role.clone()).or_default().push(rule);
            } else if mapped {
                report(
                    ProblemKind::UnknownRole,
                    format!("mapping {} -> `{role}`: no such {what}", quote(value)),
                );
            } else {
                let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                report(
                    ProblemKind::UnmatchedClaimValue,
                    format!("claim value {} is not {article} {what}", quote(value)),
                );
            }
        }
    }
}

fn role_diff(
    expected: BTreeMap<String, Reasons>,
    current: &BTreeSet<String>,
    implicit: &str,
    list_implicit: bool,
) -> RolesPlan {
    let add = expected
        .iter()
        .filter(|(role, _)| !current.contains(*role))
        .map(|(role, reasons)| RoleChange {
            name: role.clone(),
            reason: reasons.join(role),
        })
        .collect();
    let remove = current
        .iter()
        .filter(|role| role.as_str() != implicit && !expected.contains_key(*role))
        .map(|role| RoleChange {
            name: role.clone(),
            reason: REASON_NOT_IN_CLAIMS.to_owned(),
        })
        .collect();
    let mut result: Vec<String> = expected.into_keys().collect();
    if list_implicit {
        result.push(implicit.to_owned());
        result.sort();
    }
    RolesPlan {
        add,
        remove,
        result,
        organization_id: None,
        managed: true,
    }
}

fn leave_org(
    org: &OrgInfo,
    groups: &[&GroupInfo],
    roles: Option<&BTreeSet<String>>,
) -> (GroupsPlan, RolesPlan) {
    let mut remove: Vec<GroupChange> = groups
        .iter()
        .map(|g| GroupChange {
            id: Some(g.id.clone()),
            name: g.name.clone(),
            reason: REASON_LEAVES_ORGANIZATION.to_owned(),
            create: false,
        })
        .collect();
    remove.sort_by(|a, b| a.name.cmp(&b.name));
    let role_remove = roles
        .into_iter()
        .flatten()
        .filter(|r| r.as_str() != ORGANIZATION_MEMBER)
        .map(|r| RoleChange {
            name: r.clone(),
            reason: REASON_LEAVES_ORGANIZATION.to_owned(),
        })
        .collect();
    (
        GroupsPlan {
            remove,
            organization_id: org.id.clone(),
            managed: true,
            ..GroupsPlan::default()
        },
        RolesPlan {
            remove: role_remove,
            organization_id: Some(org.id.clone()),
            managed: true,
            ..RolesPlan::default()
        },
    )
}

/// Case-folds a name for case-insensitive matching (Unicode lowercase),
/// without allocating for names that are already lowercase ASCII.
fn fold(name: &str) -> Cow<'_, str> {
    if name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// `Everyone` first, then the other names sorted.
fn group_result(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.insert(0, EVERYONE.to_owned());
    names
}

fn with_implicit(roles: &BTreeSet<String>, implicit: &str) -> Vec<String> {
    let mut out: BTreeSet<&str> = roles.iter().map(String::as_str).collect();
    out.insert(implicit);
    out.into_iter().map(str::to_owned).collect()
}

fn without_implicit(roles: &BTreeSet<String>, implicit: &str) -> Vec<String> {
    roles
        .iter()
        .filter(|r| r.as_str() != implicit)
        .cloned()
        .collect()
}

/// Whether a group may be created with this name: a lowercase slug
/// (`^[a-z0-9](-?[a-z0-9])*$`, 1-64 characters) that does not look like a
/// UUID and is not `everyone`.
pub fn is_valid_group_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let slug = !bytes.is_empty()
        && bytes.len() <= 64
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !name.contains("--");
    slug && !looks_like_uuid(name) && name != "everyone"
}

fn looks_like_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        for ok in ["eng", "a", "a-b", "0x", "backend-2"] {
            assert!(is_valid_group_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a b",
            "a_b",
            "everyone",
            "0196d6a2-5a6b-7c8d-9e0f-123456789abc",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_group_name(bad), "{bad}");
        }
    }

    #[test]
    fn quoting_is_json() {
        assert_eq!(mapping_reason("a\"b", "eng"), r#"mapping "a\"b" -> eng"#);
    }
}
