//! Policy tests as data (`policies/tests/*.json`), run by `orgsync policy test`.
//!
//! A test file holds entities in Cedar's JSON entity format and cases:
//! ```json
//! { "description": "...",
//!   "entities": [ {"uid": {"type": "User", "id": "alice"}, "attrs": {...}, "parents": [...], "tags": {...}} ],
//!   "cases": [ { "name": "...", "principal": {"type": "User", "id": "alice"},
//!                "action": "organization:read", "resource": {"type": "Organization", "id": "o1"},
//!                "context": {}, "decision": "allow", "reasons": ["org.member"] } ] }
//! ```
//! `reasons`, when given, must equal the decision's reasons (sorted policy ids).

use cedar_policy::{Context, Entities, EntityUid};
use serde::Deserialize;

use crate::engine::Engine;
use crate::error::PolicyError;
use crate::source::SourceFile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    description: String,
    entities: serde_json::Value,
    cases: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    principal: serde_json::Value,
    action: String,
    resource: serde_json::Value,
    #[serde(default)]
    context: Option<serde_json::Value>,
    decision: ExpectedDecision,
    #[serde(default)]
    reasons: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ExpectedDecision {
    Allow,
    Deny,
}

/// The outcome of one case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// Why it failed.
    pub detail: Option<String>,
}

/// Runs every case of every test file. An unreadable file is one failed case.
pub fn run_tests(engine: &Engine, files: &[SourceFile]) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for file in files {
        match run_file(engine, file) {
            Ok(results) => out.extend(results),
            Err(e) => out.push(CaseResult {
                file: file.path.clone(),
                name: "(file)".to_owned(),
                passed: false,
                detail: Some(e.to_string()),
            }),
        }
    }
    out
}

fn uid_of(v: &serde_json::Value) -> Result<EntityUid, PolicyError> {
    EntityUid::from_json(v.clone())
        .map_err(|e| PolicyError::Request(format!("bad entity uid {v}: {e}")))
}

fn run_file(engine: &Engine, file: &SourceFile) -> Result<Vec<CaseResult>, PolicyError> {
    let parsed: TestFile = serde_json::from_str(&file.text)
        .map_err(|e| PolicyError::Request(format!("`{}`: {e}", file.path)))?;
    let _ = parsed.description;
    let entities = Entities::from_json_value(parsed.entities, Some(engine.schema()))
        .map_err(|e| PolicyError::Request(format!("`{}` entities: {e}", file.path)))?;
    let actions = engine.action_entities()?;
    let entities = entities
        .add_entities(actions.iter().cloned(), None)
        .map_err(|e| PolicyError::Request(format!("`{}` entities: {e}", file.path)))?;
    let mut out = Vec::new();
    for case in parsed.cases {
        let result = run_case(engine, &entities, &case);
        out.push(CaseResult {
            file: file.path.clone(),
            name: case.name.clone(),
            passed: result.is_ok(),
            detail: result.err(),
        });
    }
    Ok(out)
}

fn run_case(engine: &Engine, entities: &Entities, case: &TestCase) -> Result<(), String> {
    let principal = uid_of(&case.principal).map_err(|e| e.to_string())?;
    let resource = uid_of(&case.resource).map_err(|e| e.to_string())?;
    let action = uid_of(&serde_json::json!({"type": "Action", "id": case.action}))
        .map_err(|e| e.to_string())?;
    let context = match &case.context {
        None => Context::empty(),
        Some(v) => Context::from_json_value(v.clone(), Some((engine.schema(), &action)))
            .map_err(|e| format!("bad context: {e}"))?,
    };
    let decision = engine.authorize_raw(principal, action, resource, context, entities);
    if !decision.errors.is_empty() {
        return Err(format!("evaluation errors: {}", decision.errors.join("; ")));
    }
    let expected = case.decision == ExpectedDecision::Allow;
    if decision.allowed != expected {
        return Err(format!(
            "expected {:?}, got {} (reasons: [{}])",
            case.decision,
            if decision.allowed { "allow" } else { "deny" },
            decision.reasons.join(", ")
        ));
    }
    if let Some(reasons) = &case.reasons {
        let mut want = reasons.clone();
        want.sort();
        if want != decision.reasons {
            return Err(format!(
                "expected reasons [{}], got [{}]",
                want.join(", "),
                decision.reasons.join(", ")
            ));
        }
    }
    Ok(())
}
