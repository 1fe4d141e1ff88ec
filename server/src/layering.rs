//! The layering rules of `ARCHITECTURE.md`, checked on the source itself:
//! SQL only in `store/` and `db.rs`; HTTP handlers reach the database only
//! through the use cases; the use cases and domain modules know nothing of
//! HTTP or of the application state.
//!
//! Code that predates a rule is listed by file below. Each list must match the
//! source exactly: a file that starts breaking a rule fails, and so does a file
//! that stopped breaking it while still listed (strike it). The lists only
//! shrink.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a missing source file is a failure"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Files outside `store/` and `db.rs` that still hold SQL.
const SQL_NOT_YET_IN_STORE: &[&str] = &[
    "idpsync.rs",
    "ldapsync/apply.rs",
    "ldapsync/mod.rs",
    "oidc.rs",
];

/// HTTP adapters that still call `store` instead of a use case.
const HANDLERS_NOT_YET_ON_USE_CASES: &[&str] = &["api/extract.rs", "api/idpsync.rs"];

/// Domain modules that still take the whole application state.
const DOMAIN_MODULES_ON_APP_STATE: &[&str] = &["ldapsync/mod.rs"];

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
    assert_exactly(&found, SQL_NOT_YET_IN_STORE, "SQL outside store/ and db.rs");
}

#[test]
fn handlers_reach_the_database_only_through_use_cases() {
    let found = files_where(|path, code| path.starts_with("api/") && code.contains("store::"));
    assert_exactly(
        &found,
        HANDLERS_NOT_YET_ON_USE_CASES,
        "HTTP handler calling store directly",
    );
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
fn domain_modules_do_not_take_the_app_state() {
    let found = files_where(|path, code| {
        !path.starts_with("api/")
            && !path.starts_with("cli/")
            && path != "app.rs"
            && path != "main.rs"
            && (code.contains("AppState") || code.contains("app::App"))
    });
    assert_exactly(
        &found,
        DOMAIN_MODULES_ON_APP_STATE,
        "domain module taking the app state",
    );
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
    assert!(get("usecase/orgs.rs").contains("store::orgs::insert"));
}
