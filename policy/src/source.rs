//! Where policies come from: a directory on disk or the copy built into the binary.

use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, PolicyError};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// A file of a policy directory: its path relative to the directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// The schema, policy files and policy tests of a policy directory.
#[derive(Debug, Clone)]
pub struct PolicySources {
    /// Where the files came from, for messages (`builtin` or a directory).
    pub origin: String,
    pub schema: SourceFile,
    pub policies: Vec<SourceFile>,
    pub tests: Vec<SourceFile>,
}

impl PolicySources {
    /// The policies built into the binary from the repository's `policies/`.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::from_files(
            "builtin",
            builtin::BUILTIN_FILES
                .iter()
                .map(|(p, t)| SourceFile {
                    path: (*p).to_owned(),
                    text: (*t).to_owned(),
                })
                .collect(),
        )
    }

    /// Reads `schema.cedarschema`, every `*.cedar` below `dir`, and the test cases
    /// (`*.json` below `dir/tests`).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        collect(dir, dir, &mut files)?;
        Self::from_files(&dir.display().to_string(), files)
    }

    /// Sorts `files` (paths relative to a policy directory) into the schema,
    /// policies and tests, as [`PolicySources::from_dir`] does.
    pub fn from_files(origin: &str, files: Vec<SourceFile>) -> Result<Self, PolicyError> {
        let mut schema = None;
        let mut policies = Vec::new();
        let mut tests = Vec::new();
        for file in files {
            if file.path == "schema.cedarschema" {
                schema = Some(file);
            } else if file.path.ends_with(".cedar") {
                policies.push(file);
            } else if file.path.starts_with("tests/") && file.path.ends_with(".json") {
                tests.push(file);
            }
        }
        let schema = schema.ok_or_else(|| PolicyError::MissingSchema(origin.to_owned()))?;
        policies.sort_by(|a, b| a.path.cmp(&b.path));
        tests.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self {
            origin: origin.to_owned(),
            schema,
            policies,
            tests,
        })
    }
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<SourceFile>) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out)?;
            continue;
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !matches!(ext, "cedar" | "cedarschema" | "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        out.push(SourceFile { path: rel, text });
    }
    Ok(())
}

/// Converts a byte offset into a 1-based line and column.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

/// Turns a Cedar (miette) diagnostic about `file` into located [`Diagnostic`]s:
/// one per labelled span, or one at line 1 when Cedar gives no span.
pub(crate) fn diagnostics_of(
    file: &SourceFile,
    err: &dyn miette::Diagnostic,
    policy: Option<String>,
) -> Vec<Diagnostic> {
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message = format!("{message} (help: {help})");
    }
    let mut out = Vec::new();
    if let Some(related) = err.related() {
        for inner in related {
            out.extend(diagnostics_of(file, inner, policy.clone()));
        }
    }
    if out.is_empty() {
        let offset = err
            .labels()
            .and_then(|mut l| l.next())
            .map_or(0, |l| l.offset());
        let (line, column) = line_col(&file.text, offset);
        out.push(Diagnostic {
            file: file.path.clone(),
            line,
            column,
            message,
            policy,
        });
    }
    out
}

/// Formats policy text the Cedar way (used by `orgsync policy fmt`).
pub fn format_policies(file: &SourceFile) -> Result<String, PolicyError> {
    let config = cedar_policy_formatter::Config {
        line_width: 100,
        indent_width: 2,
    };
    cedar_policy_formatter::policies_str_to_pretty(&file.text, &config).map_err(|e| {
        let msg = format!("{e:?}");
        let first = msg.lines().next().unwrap_or("cannot format").to_owned();
        PolicyError::Invalid(vec![Diagnostic {
            file: file.path.clone(),
            line: 1,
            column: 1,
            message: first,
            policy: None,
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
    }

    #[test]
    fn builtin_sources_have_schema_and_policies() -> Result<(), PolicyError> {
        let s = PolicySources::builtin()?;
        assert!(s.schema.text.contains("entity User"));
        assert!(s.policies.iter().any(|p| p.path == "guardrails.cedar"));
        Ok(())
    }
}
