//! Rendering shared by the IdP sync pages (an org's `/organizations/{org}/idp-sync`
//! and the deployment's `/deployment/idp-sync`) and the LDAP sync pages: the
//! editable mapping table (`mapping_table.html`), the **Preview** form
//! (`sync_preview_form.html`) and the plan it shows (`sync_preview.html`),
//! also used for the plan of a directory run.
//!
//! A mapping table is a form part that works with JavaScript off: each row is
//! `{prefix}.{i}.given` / `{prefix}.{i}.gets` with a **Remove** checkbox
//! `{prefix}.{i}.remove`, followed by blank rows; a **More rows** submit
//! (`more={prefix}`) re-renders the form with what was typed and more blank
//! rows, saving nothing. `console.js` adds rows in place when it runs.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::http::StatusCode;
use orgsync_sync::Mapping;
use serde_json::{Map, Value};

use super::form::{self, FormErrors, status_of};
use super::page::{PageError, Viewer};
use crate::error::Error;
use crate::usecase::idpsync::{self, PreviewRequest};

/// Blank rows under a table's filled ones.
pub const BLANK_ROWS: usize = 2;
/// Blank rows a **More rows** submit adds.
pub const MORE_ROWS: usize = 3;
/// The most rows a form may carry (beyond: refused as invalid).
pub const MAX_ROWS: usize = 500;

/// One row of a mapping table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingRow {
    pub given: String,
    pub gets: String,
    /// The use case's error for this row's claim value, if any.
    pub error: String,
}

/// An editable mapping (claim value -> target) as a table of inputs.
#[derive(Template, Debug, Clone)]
#[template(path = "mapping_table.html")]
pub struct MappingTable {
    /// The prefix of the inputs' names (and of their ids).
    pub prefix: String,
    /// The table's caption, e.g. "Group mapping".
    pub caption: String,
    /// Label of the claim value column.
    pub given_label: String,
    /// Label of the target column, e.g. "Group".
    pub gets_label: String,
    /// What the target column takes.
    pub hint: String,
    /// Known targets, offered as suggestions (a `<datalist>`).
    pub choices: Vec<String>,
    pub rows: Vec<MappingRow>,
    /// An error about the whole mapping (e.g. the grant rule's refusal).
    pub error: String,
    /// Whether the viewer may change it (else the inputs are read-only).
    pub editable: bool,
}

impl MappingTable {
    /// A table of `pairs` followed by `blank` blank rows.
    pub fn new(
        prefix: &str,
        caption: &str,
        gets_label: &str,
        pairs: Vec<(String, String)>,
        blank: usize,
    ) -> Self {
        let mut rows: Vec<MappingRow> = pairs
            .into_iter()
            .map(|(given, gets)| MappingRow {
                given,
                gets,
                error: String::new(),
            })
            .collect();
        rows.extend(std::iter::repeat_n(MappingRow::default(), blank));
        MappingTable {
            prefix: prefix.to_owned(),
            caption: caption.to_owned(),
            given_label: "Claim value".to_owned(),
            gets_label: gets_label.to_owned(),
            hint: String::new(),
            choices: Vec::new(),
            rows,
            error: String::new(),
            editable: true,
        }
    }

    /// Puts the use case's validations on their rows: `mapping["eng"]` (or
    /// `{mapping_field}["eng"]`) on the rows of claim value `eng`, `{mapping_field}`
    /// itself on the table. Returns whether any was placed.
    pub fn place_errors(&mut self, mapping_field: &str, errors: &BTreeMap<String, String>) -> bool {
        let mut placed = false;
        for (field, detail) in errors {
            if field == mapping_field {
                self.error = detail.clone();
                placed = true;
                continue;
            }
            let Some(rest) = field.strip_prefix(mapping_field) else {
                continue;
            };
            let given = rest
                .strip_prefix("[\"")
                .and_then(|r| r.split_once("\"]"))
                .map(|(g, _)| g);
            if let Some(given) = given {
                for row in self.rows.iter_mut().filter(|r| r.given == given) {
                    row.error = detail.clone();
                    placed = true;
                }
            }
        }
        placed
    }

    /// The table's HTML (for a page template's `|safe`).
    pub fn html(&self) -> String {
        self.render()
            .unwrap_or_else(|e| format!("<p class=\"err\">mapping table: {e}</p>"))
    }
}

/// The pairs of a mapping in table order: by claim value, targets as stored.
pub fn pairs_of(mapping: &Mapping) -> Vec<(String, String)> {
    mapping
        .iter()
        .flat_map(|(given, gets)| gets.iter().map(move |g| (given.clone(), g.clone())))
        .collect()
}

/// The rows of table `prefix` in a posted form, in row order: blank rows and
/// rows marked **Remove** left out, values trimmed.
pub fn parse_rows(body: &[u8], prefix: &str) -> Result<Vec<(String, String)>, Error> {
    let mut rows: BTreeMap<usize, (String, String, bool)> = BTreeMap::new();
    let lead = format!("{prefix}.");
    for (k, v) in form_urlencoded::parse(body) {
        let Some(rest) = k.strip_prefix(&lead) else {
            continue;
        };
        let Some((i, part)) = rest.split_once('.') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else {
            continue;
        };
        if i >= MAX_ROWS {
            return Err(Error::validation(
                prefix,
                format!("at most {MAX_ROWS} rows"),
            ));
        }
        let row = rows.entry(i).or_default();
        match part {
            "given" => row.0 = v.trim().to_owned(),
            "gets" => row.1 = v.trim().to_owned(),
            "remove" => row.2 = true,
            _ => {}
        }
    }
    Ok(rows
        .into_values()
        .filter(|(given, gets, removed)| !*removed && (!given.is_empty() || !gets.is_empty()))
        .map(|(given, gets, _)| (given, gets))
        .collect())
}

/// What a form with mapping table `prefix` posted: its rows, to show again,
/// and the mapping to save, unless the form asked for more rows
/// (`more={prefix}`).
pub struct PostedMapping {
    pub rows: Vec<(String, String)>,
    /// Blank rows to show under them.
    pub blank: usize,
    /// `None` for **More rows**; else the mapping or why there is none.
    pub save: Option<Result<Mapping, Error>>,
}

/// Reads table `prefix` of a posted form whose fields are `fields`.
pub fn posted_mapping(
    body: &[u8],
    fields: &BTreeMap<String, String>,
    prefix: &str,
) -> PostedMapping {
    let rows = match parse_rows(body, prefix) {
        Ok(rows) => rows,
        Err(e) => {
            return PostedMapping {
                rows: Vec::new(),
                blank: BLANK_ROWS,
                save: Some(Err(e)),
            };
        }
    };
    if fields.get("more").is_some_and(|m| m == prefix) {
        return PostedMapping {
            rows,
            blank: BLANK_ROWS + MORE_ROWS,
            save: None,
        };
    }
    let save = Some(to_mapping(prefix, &rows));
    PostedMapping {
        rows,
        blank: BLANK_ROWS,
        save,
    }
}

/// The mapping of `pairs`: a row with no claim value or no target is an
/// error naming `{prefix}`.
pub fn to_mapping(prefix: &str, pairs: &[(String, String)]) -> Result<Mapping, Error> {
    let mut m = Mapping::new();
    for (given, gets) in pairs {
        if given.is_empty() {
            return Err(Error::validation(
                prefix,
                format!("the row for `{gets}` has no claim value"),
            ));
        }
        if gets.is_empty() {
            return Err(Error::validation(
                &format!("{prefix}[\"{given}\"]"),
                "give what this claim value maps to, or tick Remove",
            ));
        }
        let targets = m.entry(given.clone()).or_default();
        if !targets.contains(gets) {
            targets.push(gets.clone());
        }
    }
    Ok(m)
}

/// One change of a preview.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    /// `add` or `remove`.
    pub kind: &'static str,
    pub name: String,
    pub reason: String,
    /// A group that would be created.
    pub create: bool,
}

/// One part of a preview: organizations, one org's groups or roles, site roles.
#[derive(Debug, Clone)]
pub struct PreviewSection {
    pub title: String,
    pub changes: Vec<ChangeRow>,
    pub result: Vec<String>,
}

/// A problem of a preview.
#[derive(Debug, Clone)]
pub struct ProblemRow {
    pub organization: String,
    pub kind: String,
    pub detail: String,
}

/// The plan of `POST /idpsync/preview` as a panel.
#[derive(Template, Debug, Clone, Default)]
#[template(path = "sync_preview.html")]
pub struct SyncPreview {
    /// What a login would get when refused.
    pub refused: Option<String>,
    pub sections: Vec<PreviewSection>,
    pub problems: Vec<ProblemRow>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn section(title: String, part: &Value) -> PreviewSection {
    let mut changes = Vec::new();
    for kind in ["add", "remove"] {
        for c in part
            .get(kind)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            changes.push(ChangeRow {
                kind,
                name: text(c, "name"),
                reason: text(c, "reason"),
                create: c.get("create").and_then(Value::as_bool).unwrap_or(false),
            });
        }
    }
    let result = part
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    PreviewSection {
        title,
        changes,
        result,
    }
}

impl SyncPreview {
    /// The panel of a preview answer (the API's JSON shape). Parts the answer
    /// leaves out (an org-scoped preview has no organizations or site roles)
    /// are not shown.
    pub fn of(plan: &Value) -> SyncPreview {
        let refused = plan
            .get("refused")
            .filter(|r| !r.is_null())
            .map(|r| text(r, "message"));
        let mut sections = Vec::new();
        if let Some(orgs) = plan.get("organizations").filter(|v| v.is_object()) {
            sections.push(section("Organizations".to_owned(), orgs));
        }
        for (key, label) in [("groups", "Groups"), ("roles", "Roles")] {
            if let Some(Value::Object(per_org)) = plan.get(key) {
                for (org, part) in per_org {
                    sections.push(section(format!("{label} in {org}"), part));
                }
            }
        }
        if let Some(site) = plan.get("site_roles").filter(|v| v.is_object()) {
            sections.push(section("Site roles".to_owned(), site));
        }
        let problems = plan
            .get("problems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| ProblemRow {
                organization: text(p, "organization"),
                kind: text(p, "kind").replace('_', " "),
                detail: text(p, "detail"),
            })
            .collect();
        SyncPreview {
            refused,
            sections,
            problems,
        }
    }

    /// Whether the plan changes nothing.
    pub fn no_changes(&self) -> bool {
        self.sections.iter().all(|s| s.changes.is_empty())
    }

    /// The panel's HTML (for a page template's `|safe`).
    pub fn html(&self) -> String {
        self.render()
            .unwrap_or_else(|e| format!("<p class=\"err\">preview: {e}</p>"))
    }
}

/// The **Preview** form of an IdP sync page (`sync_preview_form.html`) and
/// the plan it answered.
#[derive(Debug, Default)]
pub struct PreviewForm {
    /// Where the form posts.
    pub action: String,
    /// What the page previews, shown above the form.
    pub intro: &'static str,
    /// Label and hint of the optional user field.
    pub user_label: &'static str,
    pub user_hint: &'static str,
    pub claims: String,
    pub user: String,
    /// The plan's panel (HTML of [`SyncPreview`]), empty before a preview.
    pub result: String,
    pub errors: FormErrors,
}

impl PreviewForm {
    /// The preview of an organization's group and role sync.
    pub fn org(org: &str) -> PreviewForm {
        PreviewForm {
            action: format!("/organizations/{org}/idp-sync/preview"),
            intro: "Paste the claims of a login to see what this organization's group and role sync would do. Nothing is written.",
            user_label: "Member (optional)",
            user_hint: "Username or email of a member, to start from their current groups and roles; blank for a new member.",
            ..PreviewForm::default()
        }
    }

    /// The preview of a whole login: organizations, groups, roles, site roles.
    pub fn deployment() -> PreviewForm {
        PreviewForm {
            action: "/deployment/idp-sync/preview".to_owned(),
            intro: "What a login with these claims would change, and why. Nothing is written.",
            user_label: "Existing user (optional)",
            user_hint: "A username: the plan starts from that user's memberships. Empty: a new user.",
            ..PreviewForm::default()
        }
    }

    /// Answers a posted preview form (`claims`, `user`): the plan of
    /// [`idpsync::preview`] (of `organization` only when given) as a panel,
    /// or the errors next to their fields, with the page's status.
    pub async fn run(
        mut self,
        viewer: &Viewer,
        body: &Bytes,
        organization: Option<String>,
    ) -> Result<(StatusCode, PreviewForm), PageError> {
        let fields = form::fields(body)?;
        let _: form::CsrfOnly = form::parse(viewer, body)?;
        self.claims = fields.get("claims").cloned().unwrap_or_default();
        self.user = fields
            .get("user")
            .map(|u| u.trim().to_owned())
            .unwrap_or_default();
        let result = match parse_claims(&self.claims) {
            Err(e) => Err(e),
            Ok(claims) => {
                let req = PreviewRequest {
                    claims,
                    user: (!self.user.is_empty()).then(|| self.user.clone()),
                    organization,
                };
                idpsync::preview(viewer.ctx(), &viewer.caller, &req).await
            }
        };
        match result {
            Ok(plan) => {
                self.result = SyncPreview::of(&plan).html();
                Ok((StatusCode::OK, self))
            }
            Err(e) => {
                let status = status_of(&e);
                self.errors = FormErrors::from_error(e)?;
                Ok((status, self))
            }
        }
    }
}

/// The claims typed in a preview form: a JSON object.
pub fn parse_claims(text: &str) -> Result<Map<String, Value>, Error> {
    if text.trim().is_empty() {
        return Err(Error::validation(
            "claims",
            "paste the claims of a login, as a JSON object",
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::validation(
            "claims",
            "must be a JSON object, e.g. {\"groups\": [\"eng\"]}",
        )),
        Err(e) => Err(Error::validation(
            "claims",
            format!("is not valid JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_parse_in_order_without_blanks_and_removed_ones() {
        let body = b"m.1.given=b&m.1.gets=B&m.0.given=a&m.0.gets=A&m.2.given=&m.2.gets=&m.3.given=c&m.3.gets=C&m.3.remove=on&x.0.given=z";
        let rows = parse_rows(body, "m").map_err(|e| e.body.message);
        assert_eq!(
            rows,
            Ok(vec![
                ("a".to_owned(), "A".to_owned()),
                ("b".to_owned(), "B".to_owned())
            ])
        );
        let m = to_mapping("m", &[("a".into(), "A".into()), ("a".into(), "B".into())]);
        assert_eq!(
            m.ok().and_then(|m| m.get("a").cloned()),
            Some(vec!["A".to_owned(), "B".to_owned()])
        );
        assert!(to_mapping("m", &[("a".into(), String::new())]).is_err());
    }

    #[test]
    fn errors_land_on_their_rows_and_html_is_escaped() {
        let mut t = MappingTable::new(
            "mapping",
            "Mapping",
            "Role",
            vec![("<eng>".into(), "x".into())],
            1,
        );
        let mut errors = BTreeMap::new();
        errors.insert(
            "mapping[\"<eng>\"]".to_owned(),
            "you may not assign it".to_owned(),
        );
        assert!(t.place_errors("mapping", &errors));
        let html = t.html();
        assert!(html.contains("you may not assign it"), "{html}");
        assert!(
            html.contains("&lt;eng&gt;") || html.contains("&#60;eng&#62;"),
            "{html}"
        );
        assert!(!html.contains("<eng>"), "{html}");
    }

    #[test]
    fn a_preview_shows_changes_and_problems() {
        let plan = json!({
            "refused": null,
            "groups": {"acme": {"add": [{"name": "eng", "reason": "mapping \"e\" -> eng", "create": true}], "remove": [], "result": ["Everyone", "eng"]}},
            "roles": {"acme": {"add": [], "remove": [], "result": []}},
            "problems": [{"organization": "acme", "kind": "unknown_group", "detail": "no group `x`"}]
        });
        let p = SyncPreview::of(&plan);
        assert_eq!(p.sections.len(), 2);
        assert!(!p.no_changes());
        let html = p.html();
        assert!(
            html.contains("Groups in acme") && html.contains("unknown group"),
            "{html}"
        );
    }
}
