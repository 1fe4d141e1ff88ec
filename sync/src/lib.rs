//! IdP sync for orgsync: claim parsing, sync settings and the pure planner
//! (SPEC §3).
//!
//! # Contract
//!
//! [`plan`] (or [`Planner::plan`] for many users) takes the sync [`Settings`],
//! a user's merged claims, the [`World`] (organizations, groups without
//! `Everyone`, valid role names) and the user's current [`UserState`], and
//! returns a [`Plan`]: what to add and remove, the resulting state by name,
//! and the [`Problem`]s admins should see. It is a pure function: no I/O, no
//! clock, no randomness; the same inputs give the same plan, byte for byte
//! once serialized. The server reads the inputs and applies the plan in one
//! transaction (at OIDC login and for every user of an LDAP sync run) and
//! serves the plan as is from `POST /api/v2/idpsync/preview`; fields the
//! preview must not show (ids of organizations, whether a sync ran) are
//! `#[serde(skip)]`.
//!
//! Order and rules, as SPEC §3:
//!
//! 1. **Organizations**, when organization sync has a `field`: the default
//!    organization (`organization_assign_default`) plus every organization the
//!    mapping gives for a claim value (by id, or by name case-insensitively);
//!    unknown ones are problems. The user joins what is missing and leaves the
//!    rest, with their groups and roles. Without a `field`, memberships stay.
//! 2. **Groups**, per organization the user ends up in whose group sync has a
//!    `field`: values not matching `regex_filter` are dropped; a mapped value
//!    gives its mapped groups (id or name); an unmapped value gives the group
//!    of that name, else a new group (`create: true`) when
//!    `auto_create_missing_groups`, else nothing. `Everyone` is always kept;
//!    the user leaves the organization's other groups.
//! 3. **Roles**, per organization with role sync: mapped roles, or the value
//!    itself when unmapped; names that are not organization roles are dropped;
//!    `organization-member` is implicit. **Site roles** alike, plus
//!    `default_roles`; `member` is implicit.
//!
//! A claim that cannot be read ([`claim_values`]) refuses the login for
//! organization and site role sync ([`Plan::refused`]) and skips that
//! organization for group and role sync. Only real differences appear in
//! `add`/`remove`, so planning again after [`apply`] gives a plan without
//! changes (a property test checks this against a reference model).
//!
//! # Example
//!
//! ```
//! use orgsync_sync::{OrgInfo, Planner, Settings, UserState, World};
//! use serde_json::json;
//!
//! let settings: Settings = serde_json::from_value(json!({
//!     "organization": {"field": "groups", "mapping": {"eng": ["engineering"]}}
//! }))?;
//! let world = World {
//!     orgs: vec![
//!         OrgInfo { id: "o1".into(), name: "coder".into(), is_default: true, custom_roles: vec![] },
//!         OrgInfo { id: "o2".into(), name: "engineering".into(), is_default: false, custom_roles: vec![] },
//!     ],
//!     ..World::default()
//! };
//! let claims = json!({"groups": ["eng"]});
//! let claims = claims.as_object().cloned().unwrap_or_default();
//!
//! // One planner for many users (an LDAP run); `plan()` for one.
//! let planner = Planner::new(&settings, &world);
//! let plan = planner.plan(&claims, &UserState::default());
//! assert!(plan.refused.is_none());
//! assert_eq!(plan.organizations.result, ["coder", "engineering"]);
//! assert_eq!(plan.organizations.add[1].reason, r#"mapping "eng" -> engineering"#);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! # Decisions where SPEC §3 is silent
//!
//! - **Claim fields** are top-level keys taken literally (`groups`,
//!   `https://example.com/roles`); dots are not paths. Empty strings and
//!   repeated values in a claim are dropped, so `""` is no value.
//! - **Matching**: organization and group names match case-insensitively
//!   (Unicode lowercase), ids exactly; mapping keys (claim values) and role
//!   names match exactly. A mapping target is tried as an id first, then as a
//!   name.
//! - **`regex_filter`** is an unanchored match (Go's `regexp.MatchString`, as
//!   in Coder): `^...$` matches whole values. It applies to mapped values too,
//!   before the mapping. A filter that does not compile is a problem
//!   (`invalid_regex`) and leaves that organization's groups unchanged; one
//!   that matches none of at least one value is `regex_matched_nothing`.
//! - **New groups** are named the lowercased claim value, which must be a
//!   valid group name (slug, at most 64 characters, not UUID-shaped, not
//!   `everyone`), else `invalid_group_name`. Only unmapped values create
//!   groups; a mapping to a missing group is `unknown_group`.
//! - **`Everyone`**: a value or mapping target `Everyone` (any case) or the
//!   organization's id is the implicit group: kept, never created, no problem.
//! - **Parse errors**: organization and site role claims are both checked
//!   before anything else; each is a problem and the first refuses the login
//!   (status 403) with every other part of the plan empty. A group or role
//!   claim that cannot be read leaves that organization's groups or roles
//!   unchanged (a problem, no refusal).
//! - **Site role sync** (and `default_roles`) runs only when its `field` is
//!   set; `field: ""` means off everywhere (validation asks for `null`).
//!   `member` and `organization-member` are never added or removed.
//! - **Plan contents**: `groups` and `roles` have an entry for every known
//!   organization the user ends up in (its current state when that sync is
//!   off) and for every organization the user leaves (removals with reason
//!   `leaves organization`, empty `result`). `result` lists are sorted by
//!   name; group results put `Everyone` first; site role results include
//!   `member`; organization role results never list `organization-member`.
//! - **Reasons**: every rule giving an addition is named, joined with `; `
//!   (`assign_default; mapping "eng" -> coder`); removals say `not in claims`,
//!   `claim value "x" dropped by regex_filter` or `leaves organization`.
//! - **Problems** ([`ProblemKind`]) are deduplicated within a plan and name
//!   the sync in their detail. Configuration errors (`unknown_organization`,
//!   `unknown_group`, `unknown_role`, `invalid_regex`) are kept apart from
//!   `unmatched_claim_value` (an unmapped value naming no group or role),
//!   which is frequent when one claim feeds several syncs; the server may
//!   aggregate or filter it. Unmapped values in organization sync are not
//!   problems.

mod apply;
mod claims;
mod fast_hash;
mod plan;
mod settings;

pub use apply::{apply, created_group_id};
pub use claims::{ClaimError, claim_values};
pub use plan::{
    EVERYONE, GroupChange, GroupInfo, GroupsPlan, MEMBER, ORGANIZATION_MEMBER, OrgInfo,
    OrganizationChange, OrganizationsPlan, Plan, Planner, Problem, ProblemKind,
    REASON_LEAVES_ORGANIZATION, REASON_NOT_IN_CLAIMS, REFUSED_STATUS, Refusal, RoleChange,
    RolesPlan, Settings, UserState, World, is_valid_group_name, plan,
};
pub use settings::{
    FieldError, GroupSyncSettings, Mapping, MappingPair, MappingPatch, OrganizationSyncSettings,
    RoleSyncSettings, SiteRoleSyncSettings,
};
pub mod ldap;
