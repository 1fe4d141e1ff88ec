//! Reading sync values out of IdP claims.
//!
//! A claim field is a plain top-level key of the claims object, looked up
//! literally: `"groups"`, `"roles"`, or a namespaced key such as
//! `"https://example.com/groups"`. Dots are *not* paths into nested objects,
//! because namespaced claim names routinely contain dots.

use std::collections::HashSet;

use serde_json::{Map, Value};

/// Why a claim could not be read as a list of values.
///
/// This is the crate's one error type: everything else the planner finds is a
/// [`Problem`](crate::Problem) in the plan, not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The claim is neither an array, a string nor null.
    #[error("claim `{field}` must be an array of strings, got {found}")]
    NotAnArray {
        /// The claim field.
        field: String,
        /// The JSON type found, e.g. `a number`.
        found: &'static str,
    },
    /// An element of the claim's array is not a string.
    #[error("claim `{field}` must be an array of strings, but element {index} is {found}")]
    NonStringElement {
        /// The claim field.
        field: String,
        /// Index of the offending element.
        index: usize,
        /// The JSON type found, e.g. `a number`.
        found: &'static str,
    },
    /// The claim is a single string with a comma in it: almost certainly a
    /// comma-separated list, which is ambiguous and refused.
    #[error(
        "claim `{field}` is the comma-separated string `{value}`; configure the identity \
         provider to send an array of strings instead"
    )]
    CommaSeparated {
        /// The claim field.
        field: String,
        /// The claim's value.
        value: String,
    },
    /// A value holds a NUL character, which no database column stores alike
    /// (PostgreSQL refuses it). The value is not repeated in the message.
    #[error("claim `{field}` holds a value with a NUL character (element {index})")]
    InvalidText {
        /// The claim field.
        field: String,
        /// Index of the offending value (0 for a single string).
        index: usize,
    },
}

impl ClaimError {
    /// The claim field the error is about.
    pub fn field(&self) -> &str {
        match self {
            ClaimError::NotAnArray { field, .. }
            | ClaimError::NonStringElement { field, .. }
            | ClaimError::CommaSeparated { field, .. }
            | ClaimError::InvalidText { field, .. } => field,
        }
    }
}

/// The values of claim `field`, distinct, in first-seen order.
///
/// - a JSON array of strings is used as is (an element that is not a string is
///   an error);
/// - a single string is one value, unless it contains a comma, which is an
///   error asking for an array;
/// - null or a missing claim is no value;
/// - any other type (number, boolean, object) is an error;
/// - a value with a NUL character is an error (no database stores it alike;
///   this covers every claim source: OIDC claims, directory attributes,
///   previews).
///
/// Empty strings carry no value and are skipped (so `""` is no value, as
/// identity providers send it for "no groups"). Values are not trimmed or
/// case-folded.
pub fn claim_values(claims: &Map<String, Value>, field: &str) -> Result<Vec<String>, ClaimError> {
    let mut out: Vec<String> = Vec::new();
    match claims.get(field) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if s.contains('\0') {
                return Err(ClaimError::InvalidText {
                    field: field.to_owned(),
                    index: 0,
                });
            }
            if s.contains(',') {
                return Err(ClaimError::CommaSeparated {
                    field: field.to_owned(),
                    value: s.clone(),
                });
            }
            if !s.is_empty() {
                out.push(s.clone());
            }
        }
        Some(Value::Array(items)) => {
            out.reserve(items.len());
            // Linear duplicate checks for short arrays, a set for long ones.
            let mut seen: HashSet<&str> = HashSet::new();
            let long = items.len() > 8;
            for (index, item) in items.iter().enumerate() {
                let Value::String(s) = item else {
                    return Err(ClaimError::NonStringElement {
                        field: field.to_owned(),
                        index,
                        found: json_type(item),
                    });
                };
                if s.contains('\0') {
                    return Err(ClaimError::InvalidText {
                        field: field.to_owned(),
                        index,
                    });
                }
                let new = if long {
                    seen.insert(s)
                } else {
                    !out.contains(s)
                };
                if !s.is_empty() && new {
                    out.push(s.clone());
                }
            }
        }
        Some(other) => {
            return Err(ClaimError::NotAnArray {
                field: field.to_owned(),
                found: json_type(other),
            });
        }
    }
    Ok(out)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn top_level_keys_are_literal() {
        let c = claims(json!({"https://x.test/groups": ["a"], "a": {"b": ["x"]}}));
        assert_eq!(
            claim_values(&c, "https://x.test/groups"),
            Ok(vec!["a".to_owned()])
        );
        // Dotted names are not paths.
        assert_eq!(claim_values(&c, "a.b"), Ok(vec![]));
    }

    #[test]
    fn duplicates_and_empty_strings_are_dropped() {
        let c = claims(json!({"g": ["a", "", "b", "a"]}));
        assert_eq!(
            claim_values(&c, "g"),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
    }

    #[test]
    fn values_with_nul_are_refused_without_repeating_them() {
        let c = claims(json!({"g": ["ok", "bad\0,x"], "s": "a\0"}));
        assert_eq!(
            claim_values(&c, "g"),
            Err(ClaimError::InvalidText {
                field: "g".to_owned(),
                index: 1
            })
        );
        let err = claim_values(&c, "s").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("claim `s` holds a value with a NUL character (element 0)")
        );
    }

    #[test]
    fn error_messages_are_lowercase_and_quote_input() {
        let c = claims(json!({"g": "a,b"}));
        let err = claim_values(&c, "g").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "claim `g` is the comma-separated string `a,b`; configure the identity provider \
                 to send an array of strings instead"
            )
        );
    }
}
