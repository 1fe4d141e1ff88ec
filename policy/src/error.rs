use std::fmt;

/// One problem found in a policy file, located by file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The policy the problem belongs to, when known.
    pub policy: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(policy) = &self.policy {
            write!(f, " (policy `{policy}`)")?;
        }
        Ok(())
    }
}

/// Errors of the policy crate.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy directory `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy directory `{0}` has no `schema.cedarschema`")]
    MissingSchema(String),
    #[error("invalid policies:\n{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("invalid request: {0}")]
    Request(String),
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl PolicyError {
    /// The diagnostics when the policies are invalid.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) => d,
            _ => &[],
        }
    }
}
