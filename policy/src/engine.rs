//! The loaded, validated policy set, indexed per action.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid,
    Policy, PolicyId, PolicySet, Request, Schema, ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

use crate::error::{Diagnostic, PolicyError};
use crate::model::{Action, PrincipalEntity, RequestContext, Resource};
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
}

/// A validated policy set with its schema, ready to answer requests.
pub struct Engine {
    schema: Schema,
    all: PolicySet,
    policies: Vec<PolicyInfo>,
    actions: HashMap<String, ActionSlice>,
    hash: String,
    origin: String,
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
        Ok(Self {
            schema,
            all,
            policies: infos,
            actions,
            hash: hex::encode(hasher.finalize()),
            origin: sources.origin.clone(),
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
        let mut entities = Vec::with_capacity(slice.entities.len() + 3);
        entities.push(principal.entity.clone());
        resource.entities(&mut entities, &principal.uid);
        entities.extend(slice.entities.iter().cloned());
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
        decide(&slice.policies, &request, &entities)
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
        for policy in all.policies() {
            let applies = match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => &a == uid,
                ActionConstraint::In(list) => list.iter().any(|a| ancestors.contains(a)),
            };
            if applies {
                set.add(policy.clone())
                    .map_err(|e| PolicyError::Request(format!("policy slice: {e}")))?;
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
            },
        );
    }
    Ok(out)
}
