//! The layering rules of `ARCHITECTURE.md`, checked on the source itself:
//! SQL only in `store/` and `db.rs`; HTTP handlers reach the database only
//! through the use cases; the use cases and domain modules know nothing of
//! HTTP or of the application state.
//!
//! Each rule names the files that break it, so a failure says where to look;
//! none may.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a missing source file is a failure"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SQL_MARKERS: &[&str] = &[
    "sqlx::query",
    "query_as(",
    "query_scalar(",
    "QueryBuilder",
    "sqlx::raw_sql",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by path relative to it, with its code lines
/// (comment lines dropped).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read src dir")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under src")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("read source");
                let code: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect();
                out.push((rel, code.join("\n")));
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &src(), &mut out);
    assert!(
        out.len() > 50,
        "expected the whole server source, found {} files",
        out.len()
    );
    out
}

fn files_where(pred: impl Fn(&str, &str) -> bool) -> BTreeSet<String> {
    sources()
        .into_iter()
        .filter(|(path, code)| path != "layering.rs" && pred(path, code))
        .map(|(path, _)| path)
        .collect()
}

fn assert_exactly(found: &BTreeSet<String>, listed: &[&str], rule: &str) {
    let listed: BTreeSet<String> = listed.iter().map(|s| (*s).to_owned()).collect();
    let new: Vec<_> = found.difference(&listed).collect();
    let cleaned: Vec<_> = listed.difference(found).collect();
    assert!(
        new.is_empty(),
        "{rule}: these files break the rule: {new:?} (move the code where it belongs)"
    );
    assert!(
        cleaned.is_empty(),
        "{rule}: these files keep the rule now; strike them from the list: {cleaned:?}"
    );
}

#[test]
fn sql_lives_only_in_store_and_db() {
    let found = files_where(|path, code| {
        !path.starts_with("store/")
            && path != "db.rs"
            && SQL_MARKERS.iter().any(|m| code.contains(m))
    });
    assert_exactly(&found, &[], "SQL outside store/ and db.rs");
}

#[test]
fn handlers_reach_the_database_only_through_use_cases() {
    // The adapters: the JSON API and the web console.
    let found = files_where(|path, code| {
        (path.starts_with("api/") || path.starts_with("console/")) && code.contains("store::")
    });
    assert_exactly(&found, &[], "HTTP handler calling store directly");
}

#[test]
fn use_cases_know_nothing_of_http_or_the_app() {
    let found = files_where(|path, code| {
        path.starts_with("usecase/")
            && (code.contains("axum") || code.contains("AppState") || code.contains("app::App"))
    });
    assert_exactly(&found, &[], "use case depending on HTTP or the app state");
}

#[test]
fn the_domain_error_knows_nothing_of_http() {
    // The error, the model and the policy layer name no HTTP status; the use
    // cases use the domain's names for it (the HTTP aliases are the adapters').
    let found = files_where(|path, code| {
        let domain = path == "error.rs" || path == "model.rs" || path == "authz.rs";
        let http = code.contains("StatusCode") || code.contains("axum");
        (domain && http)
            || (path.starts_with("usecase/")
                && (code.contains("ApiError") || code.contains("ApiResult")))
    });
    assert_exactly(&found, &[], "domain code speaking HTTP errors");
}

#[test]
fn domain_modules_do_not_take_the_app_state() {
    let found = files_where(|path, code| {
        !path.starts_with("api/")
            && !path.starts_with("console/")
            && !path.starts_with("cli/")
            && path != "app.rs"
            && path != "main.rs"
            && (code.contains("AppState") || code.contains("app::App"))
    });
    assert_exactly(&found, &[], "domain module taking the app state");
}

#[test]
fn every_permit_is_used() {
    let found = files_where(|_, code| {
        code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|word| word == "_permit")
    });
    assert_exactly(&found, &[], "permit obtained and dropped unused");
}

#[test]
fn use_cases_return_no_string_errors() {
    let found = files_where(|path, code| {
        path.starts_with("usecase/") && code.replace(' ', "").contains(",String>")
    });
    assert_exactly(&found, &[], "use case returning a string as its error");
}

#[test]
fn the_checks_see_what_they_claim_to() {
    // The scanner itself: a store file holds SQL, a converted handler calls a
    // use case, so an empty result above means the rule holds, not that the
    // scan read nothing.
    let all = sources();
    let get = |p: &str| {
        all.iter()
            .find(|(path, _)| path == p)
            .map(|(_, c)| c.as_str())
            .unwrap_or_else(|| panic!("{p} not found"))
    };
    assert!(SQL_MARKERS.iter().any(|m| get("store/orgs.rs").contains(m)));
    assert!(get("api/orgs.rs").contains("usecase::orgs"));
    assert!(get("console/orgs.rs").contains("usecase::orgs"));
    assert!(get("usecase/orgs.rs").contains("store::orgs::insert"));
}
