//! The orgsync policy engine.
//!
//! Loads the Cedar schema and policies of a `policies/` directory, validates them
//! strictly, and answers authorization requests. Policies are re-keyed by their
//! `@id` annotation, which is what decisions report as reasons, and indexed per
//! action so that a decision only evaluates the policies that can apply to it.
//!
//! The crate knows nothing of HTTP or SQL: callers describe principals
//! ([`Principal`]) and resources ([`Resource`]) and get [`Decision`]s back.

mod engine;
mod error;
pub mod impact;
mod model;
mod source;
pub mod testing;

pub use engine::{Decision, Engine, PolicyInfo};
pub use error::{Diagnostic, PolicyError};
pub use model::{
    Action, EntityKind, ORG_ROLES, OrgMembership, OrgRef, Principal, PrincipalEntity,
    RequestContext, Resource, SITE_ID, SITE_ROLES, TemplateAcl, is_org_role, is_site_role,
};
pub use source::{PolicySources, SourceFile, format_policies};
