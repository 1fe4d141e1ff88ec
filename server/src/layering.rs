//! The layering rules of `ARCHITECTURE.md`, checked on the source itself:
//! SQL only in `store/` and `db.rs`; HTTP handlers reach the database only
//! through the use cases; the use cases and domain modules know nothing of
//! HTTP or of the application state; a store function whose SQL writes takes
//! the write handle that only a `Permit` opens, and only `Work::write` opens
//! one.
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
    "AssertSqlSafe",
    "sql!(",
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

/// What an adapter would use to open its own connection or transaction, or
/// to decide on its own.
const ADAPTER_BYPASSES: &[&str] = &[
    "db.pool()",
    "db.begin()",
    ".begin().await",
    "sqlx::",
    "authz.require",
    "Permit::system(",
];

fn bypasses_the_use_cases(code: &str) -> bool {
    ADAPTER_BYPASSES.iter().any(|m| code.contains(m))
}

#[test]
fn handlers_open_no_transaction_and_decide_nothing_themselves() {
    // A handler runs its operation through a use case, which opens the
    // transaction and asks Cedar; its reads go through the use case too.
    let found = files_where(|path, code| {
        (path.starts_with("api/") || path.starts_with("console/")) && bypasses_the_use_cases(code)
    });
    assert_exactly(
        &found,
        &[],
        "HTTP handler opening its own connection or transaction, or deciding itself",
    );
}

#[test]
fn the_bypass_rule_catches_a_handler_with_its_own_transaction() {
    let handler = r#"
        pub async fn start(app: AppState) -> ApiResult<()> {
            let mut tx = app.db.begin().await?;
            oidc::insert_state(&mut tx, "s").await?;
            tx.commit().await?;
            Ok(())
        }
    "#;
    assert!(bypasses_the_use_cases(handler));
    assert!(bypasses_the_use_cases(
        "let mut conn = app.db.pool().acquire().await?;"
    ));
    assert!(bypasses_the_use_cases(
        "app.authz.require(&actor.principal.entity, action, &Resource::site(), \"settings\")?;"
    ));
    assert!(!bypasses_the_use_cases(
        "Ok(Json(ldapsync::settings(c.ctx(), &c.caller).await?))"
    ));
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

/// The functions of a store file whose SQL writes (`INSERT`, `UPDATE`,
/// `DELETE`, upserts included) but whose signature takes no [`Write`] handle.
///
/// [`Write`]: crate::authz::Write
fn writes_without_handle(code: &str) -> Vec<String> {
    // Where string literals are (their braces and words are SQL, not code).
    let chars: Vec<char> = code.chars().collect();
    let mut in_string = vec![false; chars.len()];
    let mut i = 0;
    let mut open = false;
    while i < chars.len() {
        if open && chars[i] == '\\' {
            in_string[i] = true;
            if i + 1 < chars.len() {
                in_string[i + 1] = true;
            }
            i += 2;
            continue;
        }
        if chars[i] == '"' {
            open = !open;
        }
        in_string[i] = open || chars[i] == '"';
        i += 1;
    }
    let code_at = |i: usize| !in_string[i];
    let word_at = |i: usize, w: &str| {
        let end = i + w.chars().count();
        end <= chars.len()
            && chars[i..end].iter().copied().eq(w.chars())
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
            && chars
                .get(end)
                .is_none_or(|c| !(c.is_alphanumeric() || *c == '_'))
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !(code_at(i) && word_at(i, "fn")) {
            i += 1;
            continue;
        }
        let name: String = chars[i + 2..]
            .iter()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        // The signature runs to the body's `{` (or a `;`: no body).
        let Some(start) = (i..chars.len()).find(|&j| code_at(j) && matches!(chars[j], '{' | ';'))
        else {
            break;
        };
        if chars[start] == ';' {
            i = start + 1;
            continue;
        }
        let mut depth = 0;
        let mut end = start;
        for (j, c) in chars.iter().enumerate().skip(start) {
            if !code_at(j) {
                continue;
            }
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = j;
                break;
            }
        }
        let signature: String = chars[i..start].iter().collect();
        let writes =
            (start..end).any(|j| ["INSERT", "UPDATE", "DELETE"].iter().any(|w| word_at(j, w)));
        if writes && !signature.contains("Write<") {
            found.push(name);
        }
        // Nested functions are checked on their own.
        i = start + 1;
    }
    found
}

#[test]
fn store_writes_take_the_write_handle() {
    let found: BTreeSet<String> = sources()
        .into_iter()
        .filter(|(path, _)| path.starts_with("store/"))
        .flat_map(|(path, code)| {
            writes_without_handle(&code)
                .into_iter()
                .map(move |name| format!("{path}: {name}"))
        })
        .map(|f| f.split(':').next().unwrap_or_default().to_owned())
        .collect();
    assert_exactly(
        &found,
        &[],
        "store function writing without the write handle",
    );
}

#[test]
fn the_write_rule_catches_a_write_without_the_handle() {
    let snippet = r#"
        pub async fn rename(conn: &mut Conn, id: &str, name: &str) -> sqlx::Result<()> {
            let sql = "UPDATE orgs SET name = $2 WHERE id = $1";
            execute(conn, sql, (id, name)).await.map(|_| ())
        }
        pub async fn find(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Org>> {
            optional(conn, "SELECT {COLUMNS} FROM orgs WHERE id = $1", (id,)).await
        }
        pub async fn forget(w: &mut Write<'_>, id: &str) -> sqlx::Result<u64> {
            execute(w, "DELETE FROM orgs WHERE id = $1", (id,)).await
        }
        async fn upsert(
            conn: &mut Conn,
            key: &str,
        ) -> sqlx::Result<()> {
            if key.is_empty() { return Ok(()); }
            let sql = format!("INSERT INTO t (k) VALUES ($1) ON CONFLICT (k) DO {}", "NOTHING");
            Ok(())
        }
        fn updated_at(row: &Row) -> String { row.updated_at.clone() }
    "#;
    assert_eq!(writes_without_handle(snippet), ["rename", "upsert"]);
}

#[test]
fn a_write_handle_is_opened_only_by_a_work() {
    let found = files_where(|path, code| {
        path != "authz.rs" && path != "usecase/mod.rs" && code.contains("Write::new(")
    });
    assert_exactly(&found, &[], "write handle opened outside Work::write");
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
    assert!(get("store/orgs.rs").contains("INSERT INTO organizations"));
    assert!(get("api/orgs.rs").contains("usecase::orgs"));
    assert!(get("console/orgs.rs").contains("usecase::orgs"));
    assert!(get("usecase/orgs.rs").contains("store::orgs::insert"));
    // The write rule reads real store functions: without their handle, the
    // writes of a store file are found.
    let unguarded = get("store/orgs.rs").replace("Write<", "Conn<");
    assert!(writes_without_handle(&unguarded).contains(&"insert".to_owned()));
}
