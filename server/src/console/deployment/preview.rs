//! The **Preview** panel of IdP sync: a preview's plan (SPEC §3) as the page
//! shows it, read from the use case's JSON answer.

use serde_json::Value;

/// One change of a plan section.
pub struct Change {
    pub name: String,
    pub reason: String,
    /// A group that the login would create.
    pub create: bool,
}

/// A section of the plan: organizations, the groups or roles of one org, or
/// site roles.
pub struct Section {
    pub title: String,
    pub add: Vec<Change>,
    pub remove: Vec<Change>,
    pub result: Vec<String>,
}

/// A problem the plan reports.
pub struct Problem {
    pub organization: String,
    pub kind: String,
    pub detail: String,
}

/// The plan as shown.
pub struct Plan {
    /// What the login would get instead of a session, if refused.
    pub refused: Option<String>,
    pub sections: Vec<Section>,
    pub problems: Vec<Problem>,
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn changes(v: &Value, key: &str) -> Vec<Change> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| Change {
                    name: text(c, "name"),
                    reason: text(c, "reason"),
                    create: c.get("create").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn section(title: String, v: &Value) -> Section {
    Section {
        title,
        add: changes(v, "add"),
        remove: changes(v, "remove"),
        result: v
            .get("result")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl Plan {
    /// The plan of a preview answer.
    pub fn of(v: &Value) -> Plan {
        let mut sections = Vec::new();
        if let Some(o) = v.get("organizations") {
            sections.push(section("Organizations".to_owned(), o));
        }
        for (key, label) in [("groups", "Groups"), ("roles", "Roles")] {
            if let Some(Value::Object(per_org)) = v.get(key) {
                for (org, s) in per_org {
                    sections.push(section(format!("{label} in {org}"), s));
                }
            }
        }
        if let Some(s) = v.get("site_roles") {
            sections.push(section("Site roles".to_owned(), s));
        }
        let refused = v
            .get("refused")
            .filter(|r| !r.is_null())
            .map(|r| format!("{} {}", text(r, "status"), text(r, "message")));
        let problems = v
            .get("problems")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|p| Problem {
                        organization: text(p, "organization"),
                        kind: text(p, "kind"),
                        detail: text(p, "detail"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Plan {
            refused,
            sections,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_preview_answer_becomes_sections_and_problems() {
        let plan = Plan::of(&json!({
            "refused": null,
            "organizations": {"add": [{"id": "1", "name": "eng", "reason": "mapping \"a\" -> eng"}],
                              "remove": [], "result": ["coder", "eng"]},
            "groups": {"eng": {"add": [{"name": "ops", "reason": "claim", "create": true}],
                               "remove": [], "result": ["Everyone", "ops"]}},
            "roles": {},
            "site_roles": {"add": [], "remove": [], "result": ["member"]},
            "problems": [{"organization": null, "kind": "unknown_org", "detail": "no `x`"}]
        }));
        assert!(plan.refused.is_none());
        let titles: Vec<&str> = plan.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["Organizations", "Groups in eng", "Site roles"]);
        assert_eq!(plan.sections[0].add[0].reason, "mapping \"a\" -> eng");
        assert!(plan.sections[1].add[0].create);
        assert_eq!(plan.problems[0].organization, "");
        assert_eq!(plan.problems[0].kind, "unknown_org");
    }
}
