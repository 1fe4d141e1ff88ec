//! The input variables a template declares: the `variable` blocks of the
//! Terraform files at the root of its archive (`*.tf` in HCL native syntax,
//! `*.tf.json` in JSON syntax). A variable without a `default` is required.
//! They are read once, when a template version is created, so a workspace's
//! parameters are checked against them before any build.
//!
//! This is not an HCL parser: it skips comments, quoted strings (with their
//! `${...}` interpolations) and heredocs, matches braces, and looks only at
//! top-level `variable` blocks and their top-level `default` attribute.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Component;

use serde::{Deserialize, Serialize};

use super::ParameterValue;

/// One declared input variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variable {
    pub name: String,
    /// True when the block has no `default`.
    pub required: bool,
}

/// The variables declared by the root-module Terraform files of a template
/// archive, sorted by name. An error names the file that could not be read.
pub fn declared(tar_bytes: &[u8]) -> Result<Vec<Variable>, String> {
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let parts: Vec<Component<'_>> = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let [Component::Normal(name)] = parts.as_slice() else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let json = name.ends_with(".tf.json");
        if !json && !name.ends_with(".tf") {
            continue;
        }
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("{name}: {e}"))?;
        let vars = if json {
            from_json(&text)
        } else {
            from_hcl(&text)
        }
        .map_err(|e| format!("{name}: {e}"))?;
        for v in vars {
            // An override file may add a default; a default anywhere wins.
            let required = found.get(&v.name).copied().unwrap_or(true) && v.required;
            found.insert(v.name, required);
        }
    }
    Ok(found
        .into_iter()
        .map(|(name, required)| Variable { name, required })
        .collect())
}

/// The variable blocks of a `.tf.json` file: `{"variable": {"name": {...}}}`
/// (or a list of such objects).
fn from_json(text: &str) -> Result<Vec<Variable>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let blocks = match doc.get("variable") {
        None => return Ok(Vec::new()),
        Some(serde_json::Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
    };
    let mut out = Vec::new();
    for block in blocks {
        let Some(map) = block.as_object() else {
            return Err("`variable` must be an object".to_owned());
        };
        for (name, body) in map {
            out.push(Variable {
                name: name.clone(),
                required: body.get("default").is_none(),
            });
        }
    }
    Ok(out)
}

/// A cursor over HCL native syntax that knows what to skip.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
}

impl Scan<'_> {
    fn peek(&self, ahead: usize) -> u8 {
        self.b.get(self.i + ahead).copied().unwrap_or(0)
    }

    fn bump(&mut self) {
        if self.peek(0) == b'\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn err(&self, what: &str) -> String {
        format!("line {}: {what}", self.line)
    }

    /// Skips a comment, string or heredoc starting here; false if none does.
    fn skip_opaque(&mut self) -> Result<bool, String> {
        match (self.peek(0), self.peek(1)) {
            (b'#', _) | (b'/', b'/') => {
                while !self.done() && self.peek(0) != b'\n' {
                    self.bump();
                }
            }
            (b'/', b'*') => {
                let start = self.line;
                self.i += 2;
                while !(self.peek(0) == b'*' && self.peek(1) == b'/') {
                    if self.done() {
                        return Err(format!("line {start}: unterminated /* comment"));
                    }
                    self.bump();
                }
                self.i += 2;
            }
            (b'"', _) => self.skip_string()?,
            (b'<', b'<') => self.skip_heredoc()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Skips a quoted string, with its `${...}` and `%{...}` templates.
    fn skip_string(&mut self) -> Result<(), String> {
        let start = self.line;
        self.bump();
        loop {
            match (self.peek(0), self.peek(1)) {
                _ if self.done() => return Err(format!("line {start}: unterminated string")),
                (b'\\', _) => {
                    self.bump();
                    self.bump();
                }
                (b'"', _) => {
                    self.bump();
                    return Ok(());
                }
                (b'$' | b'%', b'{') => {
                    self.i += 2;
                    self.skip_until_close()?;
                }
                (b'\n', _) => return Err(format!("line {start}: unterminated string")),
                _ => self.bump(),
            }
        }
    }

    /// Skips `<<EOF` / `<<-EOF` up to its terminator line. `<<` not followed
    /// by an identifier is an operator-like token: left alone.
    fn skip_heredoc(&mut self) -> Result<(), String> {
        let start = self.line;
        let mut j = self.i + 2;
        if self.b.get(j) == Some(&b'-') {
            j += 1;
        }
        let id_start = j;
        while self
            .b
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            j += 1;
        }
        if j == id_start {
            self.i += 2;
            return Ok(());
        }
        let marker = &self.b[id_start..j];
        while !self.done() && self.peek(0) != b'\n' {
            self.bump();
        }
        loop {
            if self.done() {
                return Err(format!("line {start}: unterminated heredoc"));
            }
            self.bump(); // the newline
            let line_start = self.i;
            while !self.done() && self.peek(0) != b'\n' {
                self.bump();
            }
            if self.b[line_start..self.i].trim_ascii() == marker {
                return Ok(());
            }
        }
    }

    /// Skips to just after the `}` closing a `{` already consumed.
    fn skip_until_close(&mut self) -> Result<(), String> {
        let start = self.line;
        let mut depth = 1usize;
        while depth > 0 {
            if self.done() {
                return Err(format!("line {start}: unbalanced `{{`"));
            }
            if self.skip_opaque()? {
                continue;
            }
            match self.peek(0) {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            self.bump();
        }
        Ok(())
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(0), b' ' | b'\t' | b'\r') {
            self.bump();
        }
    }

    fn ident(&mut self) -> &[u8] {
        let start = self.i;
        while self.peek(0).is_ascii_alphanumeric() || matches!(self.peek(0), b'_' | b'-') {
            self.bump();
        }
        &self.b[start..self.i]
    }
}

/// The variable blocks of an HCL native syntax file.
fn from_hcl(text: &str) -> Result<Vec<Variable>, String> {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
        line: 1,
    };
    let mut out = Vec::new();
    let mut line_start = true;
    while !s.done() {
        if s.skip_opaque()? {
            continue;
        }
        let c = s.peek(0);
        if c == b'\n' {
            line_start = true;
            s.bump();
            continue;
        }
        if c.is_ascii_whitespace() {
            s.bump();
            continue;
        }
        if line_start && (c.is_ascii_alphabetic() || c == b'_') {
            line_start = false;
            let word = s.ident().to_vec();
            if word == b"variable" {
                out.push(variable_block(&mut s)?);
            }
            continue;
        }
        line_start = false;
        match c {
            b'{' | b'[' | b'(' => {
                s.bump();
                skip_nested(&mut s, c)?;
            }
            b'}' | b']' | b')' => return Err(s.err(&format!("unexpected `{}`", c as char))),
            _ => s.bump(),
        }
    }
    Ok(out)
}

/// Skips a bracketed expression whose opener `open` was consumed.
fn skip_nested(s: &mut Scan<'_>, open: u8) -> Result<(), String> {
    if open == b'{' {
        return s.skip_until_close();
    }
    let close = if open == b'[' { b']' } else { b')' };
    let start = s.line;
    while s.peek(0) != close {
        if s.done() {
            return Err(format!("line {start}: unbalanced `{}`", open as char));
        }
        if s.skip_opaque()? {
            continue;
        }
        let c = s.peek(0);
        s.bump();
        if matches!(c, b'{' | b'[' | b'(') {
            skip_nested(s, c)?;
        }
    }
    s.bump();
    Ok(())
}

/// After the word `variable`: its label, then the block; whether its body
/// sets `default` at its top level.
fn variable_block(s: &mut Scan<'_>) -> Result<Variable, String> {
    s.skip_blank();
    let name = if s.peek(0) == b'"' {
        let start = s.i + 1;
        s.skip_string()?;
        String::from_utf8_lossy(&s.b[start..s.i - 1]).into_owned()
    } else {
        String::from_utf8_lossy(s.ident()).into_owned()
    };
    if name.is_empty() {
        return Err(s.err("a `variable` block has no name"));
    }
    s.skip_blank();
    if s.peek(0) != b'{' {
        return Err(s.err(&format!("variable `{name}`: expected `{{`")));
    }
    s.bump();
    let mut has_default = false;
    let mut line_start = true;
    loop {
        if s.done() {
            return Err(format!("variable `{name}`: unbalanced `{{`"));
        }
        if s.skip_opaque()? {
            continue;
        }
        let c = s.peek(0);
        match c {
            b'}' => {
                s.bump();
                break;
            }
            b'\n' => {
                line_start = true;
                s.bump();
            }
            _ if c.is_ascii_whitespace() => s.bump(),
            _ if line_start && (c.is_ascii_alphabetic() || c == b'_') => {
                line_start = false;
                let word = s.ident().to_vec();
                s.skip_blank();
                if word == b"default" && s.peek(0) == b'=' && s.peek(1) != b'=' {
                    has_default = true;
                }
            }
            b'{' | b'[' | b'(' => {
                line_start = false;
                s.bump();
                skip_nested(s, c)?;
            }
            _ => {
                line_start = false;
                s.bump();
            }
        }
    }
    Ok(Variable {
        name,
        required: !has_default,
    })
}

/// Checks parameter values against the declared variables: every name must
/// be declared (and given once), every required variable given. Returns the
/// problems as `(field, detail)`, each naming the parameter.
pub fn check(declared: &[Variable], given: &[ParameterValue]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in given.iter().enumerate() {
        if !declared.iter().any(|v| v.name == p.name) {
            problems.push((
                format!("rich_parameter_values[{i}].name"),
                format!(
                    "unknown parameter `{}`: the template declares no such variable",
                    p.name
                ),
            ));
        } else if seen.contains(&p.name.as_str()) {
            problems.push((
                format!("rich_parameter_values[{i}].name"),
                format!("parameter `{}` is given twice", p.name),
            ));
        }
        seen.push(&p.name);
    }
    for v in declared.iter().filter(|v| v.required) {
        if !given.iter().any(|p| p.name == v.name) {
            problems.push((
                format!("rich_parameter_values.{}", v.name),
                format!(
                    "missing required parameter `{}` (the template's variable has no default)",
                    v.name
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Result<Vec<(String, bool)>, String> {
        Ok(from_hcl(text)?
            .into_iter()
            .map(|v| (v.name, v.required))
            .collect())
    }

    #[test]
    fn variable_blocks_with_and_without_defaults() -> Result<(), String> {
        let text = r#"
# variable "commented" {}
// variable "also_commented" {}
/* variable "block_commented" {} */
variable "region" {
  type        = string
  description = "a } brace in a string, and ${var.x == "}" ? 1 : 2}"
  default     = "us"
}
variable "size" {
  type = number
  validation {
    condition     = var.size > 0 && var.default == 1
    error_message = <<-EOT
      default = must not count { here
    EOT
  }
}
variable nullable_default {
  default = null
}
variable "map" { default = { a = "b", default = 1 } }
resource "terraform_data" "x" {
  input = { variable = "not a block" }
}
variable "compared" {
  description = "x"
  nullable = var.default == 1
}
"#;
        assert_eq!(
            vars(text)?,
            vec![
                ("region".to_owned(), false),
                ("size".to_owned(), true),
                ("nullable_default".to_owned(), false),
                ("map".to_owned(), false),
                ("compared".to_owned(), true),
            ]
        );
        Ok(())
    }

    #[test]
    fn broken_files_are_reported_with_a_line() {
        for bad in [
            "variable \"a\" {\n",
            "variable \"a\" {\n  default = \"x\n}",
            "resource \"x\" \"y\" {\n}\n}",
            "/* never closed",
            "variable {}",
        ] {
            let err = from_hcl(bad).err();
            assert!(err.is_some(), "{bad:?} parsed");
        }
    }

    #[test]
    fn json_syntax() {
        let text = r#"{"variable": {"a": {"default": 1}, "b": {"type": "string"}}}"#;
        let got: Vec<(String, bool)> = from_json(text)
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.required))
            .collect();
        assert_eq!(got, vec![("a".into(), false), ("b".into(), true)]);
        assert!(from_json("{}").is_ok_and(|v| v.is_empty()));
        assert!(from_json("[").is_err());
    }

    #[test]
    fn archives_read_only_root_terraform_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let write = |rel: &str, text: &str| -> std::io::Result<()> {
            let p = dir.path().join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(p, text)
        };
        write("main.tf", "variable \"a\" {}\n")?;
        write("vars.tf.json", r#"{"variable": {"b": {"default": "x"}}}"#)?;
        write("modules/m/main.tf", "variable \"inner\" {}\n")?;
        write("README.md", "variable \"doc\" {}\n")?;
        let tar = super::super::archive::pack_dir(dir.path())?;
        assert_eq!(
            declared(&tar),
            Ok(vec![
                Variable {
                    name: "a".into(),
                    required: true
                },
                Variable {
                    name: "b".into(),
                    required: false
                },
            ])
        );
        Ok(())
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let declared = [
            Variable {
                name: "region".into(),
                required: false,
            },
            Variable {
                name: "size".into(),
                required: true,
            },
        ];
        let p = |n: &str| ParameterValue {
            name: n.into(),
            value: "v".into(),
        };
        assert!(check(&declared, &[p("size")]).is_empty());
        assert!(check(&declared, &[p("size"), p("region")]).is_empty());
        let problems = check(&declared, &[p("regoin")]);
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "rich_parameter_values[0].name",
                "rich_parameter_values.size"
            ]
        );
        assert!(problems[0].1.contains("`regoin`"));
        assert!(problems[1].1.contains("`size`"));
        assert_eq!(check(&declared, &[p("size"), p("size")]).len(), 1);
    }
}
