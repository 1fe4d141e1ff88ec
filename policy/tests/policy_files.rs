//! Runs the data-driven cases of `policies/tests/` (what `orgsync policy test` runs).

use orgsync_policy::{Engine, PolicyError, PolicySources, testing::run_tests};

#[test]
fn policy_test_cases_pass() -> Result<(), PolicyError> {
    let sources = PolicySources::builtin()?;
    let engine = Engine::load(&sources)?;
    assert!(
        !sources.tests.is_empty(),
        "policies/tests/ has no test files"
    );
    let results = run_tests(&engine, &sources.tests);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{} / {}: {}",
                r.file,
                r.name,
                r.detail.clone().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
    Ok(())
}
