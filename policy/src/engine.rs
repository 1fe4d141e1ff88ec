//! The loaded, validated policy set, indexed per action.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid,
    Policy, PolicyId, PolicySet, PrincipalConstraint, Request, Schema, ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

use crate::error::{Diagnostic, PolicyError};
use crate::model::{Action, EntityKind, Keep, PrincipalEntity, RequestContext, Resource};
use crate::source::{PolicySources, SourceFile, diagnostics_of, line_col};

/// What a decision says and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The `@id`s of the policies that decided: the permits that allowed, or the
    /// forbids that denied. Empty for a default deny.
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate (they are skipped by Cedar).
    pub errors: Vec<String>,
}

impl Decision {
    fn deny_with(error: String) -> Self {
        Self {
            allowed: false,
            reasons: Vec::new(),
            errors: vec![error],
        }
    }
}

/// A policy as loaded: its id, where it is, and its effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyInfo {
    pub id: String,
    pub file: String,
    pub line: usize,
    pub effect: String,
}

struct ActionSlice {
    uid: EntityUid,
    /// The action's entity and its ancestors (the role bundles).
    entities: Vec<Entity>,
    /// Only the policies whose action scope can match this action.
    policies: PolicySet,
    /// The same policies with their action scope, which this action satisfies by
    /// construction of the slice, rewritten to `action`: they decide exactly as
    /// `policies` do without the action entities in the request, and are kept
    /// once per combination of the roles they are filtered on (see [`Filters`]).
    unscoped: Filtered,
    /// Whether a policy of the slice still needs the action entities: its
    /// condition reads `action`, or its scope could not be rewritten.
    needs_action_entities: bool,
}

/// A role whose absence makes a policy evaluate to false, without error, before
/// Cedar evaluates it; such a policy can be left out of a decision for a
/// principal without the role, which changes neither the decision, nor its
/// reasons, nor its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    /// A site role: the policy is scoped `principal in Role::"x"` (Cedar checks
    /// the scope first, and a scope never errors).
    Site(String),
    /// An organization role: the policy's first condition is a `when` whose
    /// first conjuncts are (optionally `principal in resource.organization &&`)
    /// `principal.hasTag(resource.organization.key) &&
    /// principal.getTag(resource.organization.key).contains("x")`. For a user and
    /// a resource in an organization (whose entity, with its `key`, is in every
    /// request), none of these errors, and the conjunction is false unless one of
    /// the user's memberships in that organization has the role.
    Org(String),
}

impl Filter {
    /// Whether `principal` may hold this role for `resource`; `true` when that
    /// cannot be known (then the policy is kept, which is always sound).
    fn held(&self, principal: &PrincipalEntity, resource: &Resource) -> bool {
        match self {
            Filter::Site(role) => principal.has_role(role),
            Filter::Org(role) => match resource.org() {
                Some(org) => principal.may_have_org_role(&org.id, role),
                None => true,
            },
        }
    }
}

/// The filters of the policies of one slice, at most [`Filtered::MAX`] of them
/// (the others are kept in every set).
struct Filtered {
    filters: Vec<Filter>,
    /// Each rewritten policy with the filters (bits) it needs.
    policies: Vec<(Policy, usize)>,
    /// One set per combination of the filters held (index: the mask), built on
    /// first use.
    sets: Vec<OnceLock<Option<PolicySet>>>,
}

impl Filtered {
    const MAX: usize = 8;

    fn new(policies: Vec<Policy>) -> Self {
        let mut filters: Vec<Filter> = Vec::new();
        let mut out = Vec::with_capacity(policies.len());
        for policy in policies {
            let mut need = 0;
            for f in filters_of(&policy) {
                let i = match filters.iter().position(|x| *x == f) {
                    Some(i) => i,
                    None if filters.len() < Self::MAX => {
                        filters.push(f);
                        filters.len() - 1
                    }
                    None => continue,
                };
                need |= 1 << i;
            }
            out.push((policy, need));
        }
        let sets = (0..1usize << filters.len())
            .map(|_| OnceLock::new())
            .collect();
        Self {
            filters,
            policies: out,
            sets,
        }
    }

    /// The combination of the filters that `principal` holds for `resource`.
    fn mask(&self, principal: &PrincipalEntity, resource: &Resource) -> usize {
        self.filters
            .iter()
            .enumerate()
            .filter(|(_, f)| f.held(principal, resource))
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// The policies of combination `mask`: those whose filters it all holds.
    fn set(&self, mask: usize) -> Option<&PolicySet> {
        self.sets
            .get(mask)?
            .get_or_init(|| {
                let mut set = PolicySet::new();
                for (policy, need) in &self.policies {
                    if need & !mask == 0 {
                        set.add(policy.clone()).ok()?;
                    }
                }
                Some(set)
            })
            .as_ref()
    }
}

/// The filters of a policy (see [`Filter`]).
fn filters_of(policy: &Policy) -> Vec<Filter> {
    let mut out = Vec::new();
    if let Some(role) = scope_role(policy) {
        out.push(Filter::Site(role));
    }
    if let Some(role) = policy.to_json().ok().as_ref().and_then(org_role_guard) {
        out.push(Filter::Org(role));
    }
    out
}

/// The organization role of a policy's guard (see [`Filter::Org`]), from its
/// JSON form.
fn org_role_guard(json: &serde_json::Value) -> Option<String> {
    use serde_json::json;
    let first = json.get("conditions")?.as_array()?.first()?;
    if first.get("kind")?.as_str()? != "when" {
        return None;
    }
    let mut conjuncts = Vec::new();
    conjunction(first.get("body")?, &mut conjuncts);
    let principal = json!({"Var": "principal"});
    let org = json!({".": {"left": {"Var": "resource"}, "attr": "organization"}});
    let key = json!({".": {"left": org, "attr": "key"}});
    let member = json!({"in": {"left": principal, "right": org}});
    let has_tag = json!({"hasTag": {"left": principal, "right": key}});
    let get_tag = json!({"getTag": {"left": principal, "right": key}});
    let mut rest = conjuncts.into_iter();
    let mut next = rest.next()?;
    if *next == member {
        next = rest.next()?;
    }
    if *next != has_tag {
        return None;
    }
    let contains = rest.next()?.get("contains")?;
    if *contains.get("left")? != get_tag {
        return None;
    }
    Some(contains.get("right")?.get("Value")?.as_str()?.to_owned())
}

/// The conjuncts of `expr` in the order Cedar evaluates them.
fn conjunction<'a>(expr: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match expr.get("&&") {
        Some(and) => {
            if let (Some(left), Some(right)) = (and.get("left"), and.get("right")) {
                conjunction(left, out);
                conjunction(right, out);
            } else {
                out.push(expr);
            }
        }
        None => out.push(expr),
    }
}

/// The role of a policy scoped `principal in Role::"..."` (or `is .. in`).
fn scope_role(policy: &Policy) -> Option<String> {
    let uid = match policy.principal_constraint() {
        PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) => uid,
        _ => return None,
    };
    (uid.type_name().to_string() == EntityKind::Role.name())
        .then(|| uid.id().unescaped().to_owned())
}

/// The entity literals of the policies, by type (see [`Keep`]). `None` when a
/// policy could not be read back, in which case every parent is kept.
struct Literals(Option<HashMap<EntityKind, HashSet<String>>>);

impl Literals {
    fn of(all: &PolicySet) -> Self {
        let mut out: HashMap<EntityKind, HashSet<String>> = HashMap::new();
        for policy in all.policies() {
            let Ok(json) = policy.to_json() else {
                return Self(None);
            };
            let mut uids = Vec::new();
            entity_literals(&json, &mut uids);
            for (ty, id) in uids {
                // A type that is no `EntityKind` is never a parent of ours.
                if let Some(kind) = EntityKind::parse(ty) {
                    out.entry(kind).or_default().insert(id.to_owned());
                }
            }
        }
        Self(Some(out))
    }

    fn contains(&self, kind: EntityKind, id: &str) -> bool {
        match &self.0 {
            None => true,
            Some(map) => map.get(&kind).is_some_and(|ids| ids.contains(id)),
        }
    }
}

/// Every `{"type": .., "id": ..}` of a policy's JSON form: the entities of its
/// scope and the entity literals of its conditions (`{"__entity": {..}}`). Taking
/// any such object is conservative: a parent kept needlessly changes nothing.
fn entity_literals<'a>(json: &'a serde_json::Value, out: &mut Vec<(&'a str, &'a str)>) {
    match json {
        serde_json::Value::Object(map) => {
            if let (Some(serde_json::Value::String(ty)), Some(serde_json::Value::String(id))) =
                (map.get("type"), map.get("id"))
            {
                out.push((ty, id));
            }
            for v in map.values() {
                entity_literals(v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                entity_literals(v, out);
            }
        }
        _ => {}
    }
}

/// Whether a policy's JSON form reads the `action` variable.
fn reads_action(json: &serde_json::Value) -> bool {
    match json {
        serde_json::Value::Object(map) => {
            map.get("Var").and_then(serde_json::Value::as_str) == Some("action")
                || map.values().any(reads_action)
        }
        serde_json::Value::Array(items) => items.iter().any(reads_action),
        _ => false,
    }
}

/// `policy` with its action scope replaced by `action` (any action), and whether
/// its conditions read `action`. `None` if Cedar cannot round-trip it.
fn unscoped(policy: &Policy) -> Option<(Policy, bool)> {
    let mut json = policy.to_json().ok()?;
    let reads = json.get("conditions").is_some_and(reads_action);
    let map = json.as_object_mut()?;
    map.insert("action".to_owned(), serde_json::json!({"op": "All"}));
    let rewritten = Policy::from_json(Some(policy.id().clone()), json).ok()?;
    Some((rewritten, reads))
}

/// The parents a decision about `resource` needs (see [`Keep`]): the policies'
/// entity literals, and the resource, its organization and the entities its
/// attributes name. The request's other entities (the principal, the action) are
/// never parents of ours. `RequestContext` holds no entities.
struct KeepFor<'a> {
    literals: &'a Literals,
    resource: &'a Resource,
}

impl Keep for KeepFor<'_> {
    fn keep(&self, kind: EntityKind, id: &str) -> bool {
        self.literals.contains(kind, id) || self.resource.refers_to(kind, id)
    }
}

/// A validated policy set with its schema, ready to answer requests.
pub struct Engine {
    schema: Schema,
    all: PolicySet,
    policies: Vec<PolicyInfo>,
    actions: HashMap<String, ActionSlice>,
    literals: Literals,
    hash: String,
    origin: String,
    /// The schema and policy files this set was loaded from, as read.
    files: Vec<SourceFile>,
    schema_file: SourceFile,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("origin", &self.origin)
            .field("policies", &self.policies.len())
            .field("hash", &self.hash)
            .finish()
    }
}

fn action_id(uid: &EntityUid) -> String {
    uid.id().unescaped().to_owned()
}

impl Engine {
    /// The policies built into the binary.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::load(&PolicySources::builtin()?)
    }

    /// Parses and strictly validates `sources`. Every problem is reported with its
    /// file, line and column; nothing is accepted unless everything is valid.
    pub fn load(sources: &PolicySources) -> Result<Self, PolicyError> {
        let schema = parse_schema(&sources.schema)?;
        let validator = Validator::new(schema.clone());
        let mut diags = Vec::new();
        let mut all = PolicySet::new();
        let mut infos = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut hasher = Sha256::new();
        hasher.update(sources.schema.text.as_bytes());

        for file in &sources.policies {
            hasher.update(file.path.as_bytes());
            hasher.update(file.text.as_bytes());
            let parsed = match PolicySet::from_str(&file.text) {
                Ok(p) => p,
                Err(e) => {
                    diags.extend(diagnostics_of(file, &e, None));
                    continue;
                }
            };
            let result = validator.validate(&parsed, ValidationMode::Strict);
            for err in result.validation_errors() {
                let policy = parsed
                    .policy(err.policy_id())
                    .and_then(|p| p.annotation("id"))
                    .map(str::to_owned);
                let internal = format!("`{}`", err.policy_id());
                let mut found = diagnostics_of(file, err, policy.clone());
                if let Some(id) = &policy {
                    for d in &mut found {
                        d.message = d.message.replace(&internal, &format!("`{id}`"));
                    }
                }
                diags.extend(found);
            }
            for policy in parsed.policies() {
                let (line, column) = line_col(&file.text, policy_offset(file, policy));
                let Some(id) = policy.annotation("id") else {
                    diags.push(Diagnostic {
                        file: file.path.clone(),
                        line,
                        column,
                        message: "policy has no `@id(\"...\")` annotation".to_owned(),
                        policy: None,
                    });
                    continue;
                };
                if let Some(other) = seen.insert(id.to_owned(), file.path.clone()) {
                    diags.push(Diagnostic {
                        file: file.path.clone(),
                        line,
                        column,
                        message: format!("duplicate policy id `{id}` (also in `{other}`)"),
                        policy: Some(id.to_owned()),
                    });
                    continue;
                }
                let keyed = policy.new_id(PolicyId::new(id));
                if let Err(e) = all.add(keyed) {
                    diags.push(Diagnostic {
                        file: file.path.clone(),
                        line,
                        column,
                        message: e.to_string(),
                        policy: Some(id.to_owned()),
                    });
                    continue;
                }
                infos.push(PolicyInfo {
                    id: id.to_owned(),
                    file: file.path.clone(),
                    line,
                    effect: policy.effect().to_string(),
                });
            }
        }
        if !diags.is_empty() {
            return Err(PolicyError::Invalid(diags));
        }
        let actions = slice_by_action(&schema, &all)?;
        let literals = Literals::of(&all);
        Ok(Self {
            schema,
            all,
            policies: infos,
            actions,
            literals,
            hash: hex::encode(hasher.finalize()),
            origin: sources.origin.clone(),
            files: sources.policies.clone(),
            schema_file: sources.schema.clone(),
        })
    }

    pub fn policies(&self) -> &[PolicyInfo] {
        &self.policies
    }

    /// SHA-256 over the schema and every policy file.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The policy files of the running set, as they were read.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The schema file of the running set, as it was read.
    pub fn schema_file(&self) -> &SourceFile {
        &self.schema_file
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Whether the schema declares this action.
    pub fn has_action(&self, action: &str) -> bool {
        self.actions.contains_key(action)
    }

    /// The action names the schema declares (role bundles included).
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// Decides one request about a resource described by the caller.
    pub fn authorize(
        &self,
        principal: &PrincipalEntity,
        action: Action,
        resource: &Resource,
        context: &RequestContext,
    ) -> Decision {
        self.authorize_named(principal, action.name(), resource, context)
    }

    /// [`Engine::authorize`] with the action given by name (for callers that take
    /// action names from requests, like `POST /authcheck`).
    pub fn authorize_named(
        &self,
        principal: &PrincipalEntity,
        action: &str,
        resource: &Resource,
        context: &RequestContext,
    ) -> Decision {
        let Some(slice) = self.actions.get(action) else {
            return Decision::deny_with(format!("unknown action `{action}`"));
        };
        let keep = KeepFor {
            literals: &self.literals,
            resource,
        };
        let mut entities = Vec::with_capacity(3);
        entities.push(principal.entity(&keep));
        resource.entities(&mut entities, &principal.uid, &keep);
        let policies = if slice.needs_action_entities {
            entities.extend(slice.entities.iter().cloned());
            &slice.policies
        } else {
            match slice.unscoped.set(slice.unscoped.mask(principal, resource)) {
                Some(set) => set,
                None => &slice.policies,
            }
        };
        let context = match Context::from_pairs(context.pairs.iter().cloned()) {
            Ok(c) => c,
            Err(e) => return Decision::deny_with(e.to_string()),
        };
        let request = match Request::new(
            principal.uid.clone(),
            slice.uid.clone(),
            resource.uid(),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => return Decision::deny_with(e.to_string()),
        };
        let entities = match Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(e) => return Decision::deny_with(e.to_string()),
        };
        decide(policies, &request, &entities)
    }

    /// Decides a Cedar-native request with caller-supplied entities (used by policy
    /// tests and `POST /authorize`). The request is validated against the schema.
    pub fn authorize_raw(
        &self,
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        context: Context,
        entities: &Entities,
    ) -> Decision {
        let name = action_id(&action);
        let policies = match self.actions.get(&name) {
            Some(slice) => &slice.policies,
            None => return Decision::deny_with(format!("unknown action `{name}`")),
        };
        let request = match Request::new(principal, action, resource, context, Some(&self.schema)) {
            Ok(r) => r,
            Err(e) => return Decision::deny_with(e.to_string()),
        };
        decide(policies, &request, entities)
    }

    /// Action entities (for callers that build whole entity sets, like tests).
    pub fn action_entities(&self) -> Result<Entities, PolicyError> {
        self.schema
            .action_entities()
            .map_err(|e| PolicyError::Request(e.to_string()))
    }

    /// Every policy, unsliced.
    pub fn policy_set(&self) -> &PolicySet {
        &self.all
    }
}

fn decide(policies: &PolicySet, request: &Request, entities: &Entities) -> Decision {
    let response = Authorizer::new().is_authorized(request, policies, entities);
    let mut reasons: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    reasons.sort();
    let errors = response
        .diagnostics()
        .errors()
        .map(|e| e.to_string())
        .collect();
    Decision {
        allowed: response.decision() == CedarDecision::Allow,
        reasons,
        errors,
    }
}

fn parse_schema(file: &SourceFile) -> Result<Schema, PolicyError> {
    match Schema::from_cedarschema_str(&file.text) {
        Ok((schema, _warnings)) => Ok(schema),
        Err(e) => Err(PolicyError::Invalid(diagnostics_of(file, &e, None))),
    }
}

/// Where a policy starts in its file. Cedar's public API keeps no source span for
/// parsed policies, but it names them `policy0..N` in file order, so the N-th
/// statement of the file is the policy.
fn policy_offset(file: &SourceFile, policy: &Policy) -> usize {
    let index = policy
        .id()
        .to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    statement_starts(&file.text)
        .get(index)
        .copied()
        .unwrap_or(0)
}

/// Byte offsets where each `;`-terminated statement begins, skipping comments,
/// whitespace and string literals.
fn statement_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    let mut in_statement = false;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                if !in_statement {
                    starts.push(i);
                    in_statement = true;
                }
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                in_statement = false;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                if !in_statement {
                    starts.push(i);
                    in_statement = true;
                }
                i += 1;
            }
        }
    }
    starts
}

/// For every action of the schema, the policies whose action scope can match it.
fn slice_by_action(
    schema: &Schema,
    all: &PolicySet,
) -> Result<HashMap<String, ActionSlice>, PolicyError> {
    let action_entities = schema
        .action_entities()
        .map_err(|e| PolicyError::Request(format!("schema actions: {e}")))?;
    let mut out = HashMap::new();
    for uid in schema.actions() {
        let mut ancestors: HashSet<EntityUid> = action_entities
            .ancestors(uid)
            .map(|a| a.cloned().collect())
            .unwrap_or_default();
        ancestors.insert(uid.clone());
        let mut set = PolicySet::new();
        let mut rewritten_all = Vec::new();
        let mut needs_action_entities = false;
        let slice_err =
            |e: cedar_policy::PolicySetError| PolicyError::Request(format!("policy slice: {e}"));
        for policy in all.policies() {
            let applies = match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => &a == uid,
                ActionConstraint::In(list) => list.iter().any(|a| ancestors.contains(a)),
            };
            if applies {
                set.add(policy.clone()).map_err(slice_err)?;
                let rewritten = match unscoped(policy) {
                    Some((p, reads)) => {
                        needs_action_entities |= reads;
                        p
                    }
                    None => {
                        needs_action_entities = true;
                        policy.clone()
                    }
                };
                rewritten_all.push(rewritten);
            }
        }
        let entities = ancestors
            .iter()
            .filter_map(|a| action_entities.get(a).cloned())
            .collect();
        out.insert(
            action_id(uid),
            ActionSlice {
                uid: uid.clone(),
                entities,
                policies: set,
                unscoped: Filtered::new(rewritten_all),
                needs_action_entities,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a test fails loudly")]
mod tests {
    use super::*;

    fn guard_of(engine: &Engine, id: &str) -> Vec<Filter> {
        let policy = engine.all.policy(&PolicyId::new(id));
        policy.map(filters_of).unwrap_or_default()
    }

    #[test]
    fn org_role_guards_of_the_builtin_policies() {
        let engine = Engine::builtin().unwrap_or_else(|e| panic!("{e}"));
        let org = |r: &str| vec![Filter::Org(r.to_owned())];
        assert_eq!(guard_of(&engine, "org.admin"), org("organization-admin"));
        assert_eq!(
            guard_of(&engine, "org.template-admin"),
            org("organization-template-admin")
        );
        assert_eq!(
            guard_of(&engine, "guardrail.workspace-creation-ban"),
            org("organization-workspace-creation-ban")
        );
        assert_eq!(
            guard_of(&engine, "site.auditor"),
            vec![Filter::Site("auditor".to_owned())]
        );
        // No guard: a condition that does not start with the tag test.
        assert_eq!(guard_of(&engine, "org.member.template-acl"), vec![]);
        assert_eq!(guard_of(&engine, "org.member"), vec![]);
        assert_eq!(guard_of(&engine, "guardrail.cross-org"), vec![]);
    }

    #[test]
    fn a_guard_must_come_first_and_test_the_tag_before_reading_it() {
        let parse = |text: &str| -> Option<String> {
            let set = PolicySet::from_str(text).ok()?;
            let policy = set.policies().next()?;
            org_role_guard(&policy.to_json().ok()?)
        };
        let guarded = r#"permit (principal, action, resource) when {
            principal.hasTag(resource.organization.key) &&
            principal.getTag(resource.organization.key).contains("x") && resource.y };"#;
        assert_eq!(parse(guarded), Some("x".to_owned()));
        // getTag without hasTag first may error: not a guard.
        let unguarded = r#"permit (principal, action, resource) when {
            principal.getTag(resource.organization.key).contains("x") };"#;
        assert_eq!(parse(unguarded), None);
        // Something evaluated before the guard (it may error): not a guard.
        let late = r#"permit (principal, action, resource) when { resource.y &&
            principal.hasTag(resource.organization.key) &&
            principal.getTag(resource.organization.key).contains("x") };"#;
        assert_eq!(parse(late), None);
        // An `unless` first is not a guard.
        let unless = r#"permit (principal, action, resource) unless {
            principal.hasTag(resource.organization.key) &&
            principal.getTag(resource.organization.key).contains("x") };"#;
        assert_eq!(parse(unless), None);
    }
}
