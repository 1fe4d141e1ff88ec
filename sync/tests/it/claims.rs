//! Claim parsing (SPEC §3 "Claim values").

use orgsync_sync::{ClaimError, claim_values};
use serde_json::json;

use crate::common::{claims, strings};

fn values(v: serde_json::Value) -> Result<Vec<String>, ClaimError> {
    claim_values(&claims(json!({ "groups": v })), "groups")
}

#[test]
fn array_of_strings_is_used_as_is() {
    assert_eq!(
        values(json!(["b", "a", "C"])),
        Ok(strings(&["b", "a", "C"]))
    );
}

#[test]
fn empty_array_is_no_value() {
    assert_eq!(values(json!([])), Ok(vec![]));
}

#[test]
fn single_string_is_one_value() {
    assert_eq!(values(json!("eng")), Ok(strings(&["eng"])));
}

#[test]
fn string_with_spaces_is_still_one_value() {
    assert_eq!(
        values(json!("Platform Team")),
        Ok(strings(&["Platform Team"]))
    );
}

#[test]
fn empty_string_is_no_value() {
    assert_eq!(values(json!("")), Ok(vec![]));
}

#[test]
fn comma_string_is_an_error_asking_for_an_array() {
    let err = values(json!("eng,ops")).unwrap_err();
    assert_eq!(
        err,
        ClaimError::CommaSeparated {
            field: "groups".into(),
            value: "eng,ops".into()
        }
    );
    let message = err.to_string();
    assert!(message.contains("`eng,ops`"), "{message}");
    assert!(message.contains("array"), "{message}");
    assert_eq!(err.field(), "groups");
}

#[test]
fn comma_inside_an_array_element_is_fine() {
    assert_eq!(values(json!(["a,b"])), Ok(strings(&["a,b"])));
}

#[test]
fn null_and_missing_are_empty() {
    assert_eq!(values(json!(null)), Ok(vec![]));
    assert_eq!(claim_values(&claims(json!({})), "groups"), Ok(vec![]));
}

#[test]
fn other_types_are_errors() {
    for (v, found) in [
        (json!(42), "a number"),
        (json!(true), "a boolean"),
        (json!({"a": "b"}), "an object"),
    ] {
        assert_eq!(
            values(v),
            Err(ClaimError::NotAnArray {
                field: "groups".into(),
                found
            })
        );
    }
}

#[test]
fn array_with_a_non_string_is_an_error() {
    let err = values(json!(["a", 1])).unwrap_err();
    assert_eq!(
        err,
        ClaimError::NonStringElement {
            field: "groups".into(),
            index: 1,
            found: "a number"
        }
    );
    assert_eq!(
        err.to_string(),
        "claim `groups` must be an array of strings, but element 1 is a number"
    );
    assert!(values(json!(["a", null])).is_err());
    assert!(values(json!([["a"]])).is_err());
}

#[test]
fn messages_are_lowercase() {
    for v in [json!(1), json!("a,b"), json!([1])] {
        let message = values(v).unwrap_err().to_string();
        assert!(message.starts_with("claim `groups`"), "{message}");
    }
}
